// Opens checkout URLs one after another, each in a fresh browser context, and reports
// what the customer sees: the pay form, or a result page (an invalid or used token …).
//
// Input: { visits: [{ url, locale?, viewport?, shot?, callbackPrefix?, axe? }] }
// Result: { visits: [{ status (of the page's document), url (after redirects), lang,
//           form (a pay form is shown), summary?, result?, text (visible text),
//           redirectedTo?, payload?, violations? }] }
import { scenario, input } from './lib.mjs';
import { summary, result, payload, returnedTo, holdReturn } from './checkout.mjs';

await scenario(async (t) => {
  const visits = [];
  for (const visit of input.visits) {
    const options = {};
    if (visit.locale) options.locale = visit.locale;
    if (visit.viewport) options.viewport = visit.viewport;
    const page = await t.page(options);
    const release = visit.callbackPrefix ? await holdReturn(page, visit.callbackPrefix) : null;
    const response = await page.goto(visit.url);
    const seen = {
      status: response.status(),
      url: page.url(),
      lang: await page.getAttribute('html', 'lang'),
      form: (await page.locator('#card-form, #bank-form').count()) > 0,
    };
    if (seen.form) seen.summary = await summary(page);
    if ((await page.locator('#result').count()) > 0) seen.result = await result(page);
    seen.text = (await page.locator('body').innerText()).trim();
    if (visit.axe) seen.violations = await t.axe(page);
    if (visit.shot) await t.screenshot(page, visit.shot);
    if (visit.callbackPrefix) {
      release();
      seen.redirectedTo = await returnedTo(page, visit.callbackPrefix);
      seen.payload = payload(page.url());
    }
    visits.push(seen);
    await page.context().close();
  }
  return { visits };
});
