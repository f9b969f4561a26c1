// A customer opens a checkout (or pay-by-link) URL and pays by card or by bank.
//
// Input: { url, card?: {number, expiry?, cvc?, name?}, bank?: {iban, holder?},
//          challenge?: "approve" | "fail",
//          retryCard? (after a failure: "try another card" with this one),
//          callbackPrefix?  (a result that redirects there is followed and reported),
//          locale?, viewport?, shots?: {form?, challenge?, result?} }
// Result: { opened (the URL after redirects), summary, challenge (shown?), result, retried?,
//           redirectedTo?, payload?, violations (axe, serious or critical, per state) }
import { scenario, input, check } from './lib.mjs';
import { summary, fillCard, fillBank, submit, result, payload, returnedTo, holdReturn } from './checkout.mjs';

await scenario(async (t) => {
  const shots = input.shots ?? {};
  const options = {};
  if (input.locale) options.locale = input.locale;
  if (input.viewport) options.viewport = input.viewport;
  const page = await t.page(options);
  const release = input.callbackPrefix ? await holdReturn(page, input.callbackPrefix) : null;
  await page.goto(input.url);
  const opened = page.url();
  const violations = {};

  const shown = await summary(page);
  violations.form = await t.axe(page);
  if (input.bank) await fillBank(page, input.bank);
  else await fillCard(page, input.card);
  if (shots.form) await t.screenshot(page, shots.form);
  await submit(page, input.bank ? '#bank-pay-button' : '#pay-button');

  let challenge = false;
  if ((await page.locator('#challenge-approve').count()) > 0) {
    challenge = true;
    violations.challenge = await t.axe(page);
    if (shots.challenge) await t.screenshot(page, shots.challenge);
    check(input.challenge, 'an authentication challenge appeared that the scenario did not expect');
    await submit(page, input.challenge === 'approve' ? '#challenge-approve' : '#challenge-fail');
  }

  const outcome = await result(page);
  violations.result = await t.axe(page);
  // A page on its way back to the merchant (held, see holdReturn) draws no more frames.
  check(!(shots.result && input.callbackPrefix), 'no result screenshot in a scenario with callbacks');
  if (shots.result) await t.screenshot(page, shots.result);

  const report = { opened, summary: shown, challenge, result: outcome, violations };
  if (input.retryCard) {
    // "Try another card": back to the form of the same session, and pay again.
    await page.locator('#try-again').click();
    await fillCard(page, input.retryCard);
    await submit(page, '#pay-button');
    report.retried = { url: page.url(), result: await result(page) };
  }
  if (input.callbackPrefix) {
    // The result page sends the customer back to the merchant after a moment.
    release();
    report.redirectedTo = await returnedTo(page, input.callbackPrefix);
    report.payload = payload(page.url());
  }
  return report;
});
