// What a customer does on Baton's hosted checkout, in terms of the page's stable hooks
// (documented at the top of crates/baton-http/templates/checkout/page.html).

/** Opens `url` in a new page and waits for it to load. */
export async function open(t, url, options = {}) {
  const page = await t.page(options);
  await page.goto(url);
  return page;
}

/** What the pay page shows the customer before they pay. */
export async function summary(page) {
  return {
    lang: await page.getAttribute('html', 'lang'),
    title: (await page.locator('#page-title').textContent())?.trim(),
    merchant: (await page.locator('#merchant-name').textContent())?.trim(),
    amount: (await page.locator('#amount').textContent())?.trim(),
  };
}

/** Picks a payment method when the page offers a choice. */
export async function chooseMethod(page, method) {
  const radio = page.locator(`#method-${method}`);
  if ((await radio.count()) > 0) await radio.check();
}

/**
 * Types a card as a person would (so the page's formatting runs): number, expiry as
 * digits (`1234` for 12/34), CVC, and the cardholder's name when asked for.
 */
export async function fillCard(page, card) {
  await chooseMethod(page, 'card');
  await page.locator('#card-number').pressSequentially(card.number);
  await page.locator('#card-expiry').pressSequentially(card.expiry ?? '1234');
  await page.locator('#card-cvc').fill(card.cvc ?? '123');
  const name = page.locator('#cardholder-name');
  if ((await name.count()) > 0) await name.fill(card.name ?? 'Jane Doe');
}

/** Fills the bank form (IBAN, holder) and gives the mandate consent. */
export async function fillBank(page, bank) {
  await chooseMethod(page, 'bank');
  await page.locator('#iban').fill(bank.iban);
  await page.locator('#account-holder').fill(bank.holder ?? 'Jane Doe');
  await page.locator('#mandate-consent').check();
}

/** Clicks `button` and waits for the page that follows: a challenge or a result. */
export async function submit(page, button) {
  await page.locator(button).click();
  await page.locator('#result, #challenge-approve').first().waitFor();
}

/** The result page as shown: its outcome, title and message. */
export async function result(page) {
  const section = page.locator('#result');
  await section.waitFor();
  return {
    outcome: await section.getAttribute('data-outcome'),
    pending: (await section.getAttribute('data-pending')) === 'true',
    title: (await page.locator('#page-title').textContent())?.trim(),
    message: (await page.locator('#result-message').textContent())?.trim(),
    retry: (await page.locator('#try-again').count()) > 0,
  };
}

/** Decodes the `payload` query parameter of a failed callback (standard base64 JSON). */
export function payload(url) {
  const value = new URL(url).searchParams.get('payload');
  return value === null ? null : JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
}
