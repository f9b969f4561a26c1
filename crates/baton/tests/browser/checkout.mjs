// What a customer does on Baton's hosted checkout, in terms of the page's stable hooks
// (documented at the top of crates/baton-http/templates/checkout/page.html).

/** What the pay page shows the customer before they pay. */
export async function summary(page) {
  return {
    lang: await page.getAttribute('html', 'lang'),
    title: (await page.locator('#page-title').textContent())?.trim(),
    merchant: (await page.locator('#merchant-name').textContent())?.trim(),
    amount: (await page.locator('#amount').textContent())?.trim(),
  };
}

/** Picks a payment method when the page offers a choice (by its label, as a person would). */
export async function chooseMethod(page, method) {
  if ((await page.locator(`#method-${method}`).count()) > 0) await page.locator(`label[for="method-${method}"]`).click();
}

/**
 * Result pages with a callback send the customer on after a few seconds. To look at
 * such a page first, a scenario holds the way back: requests for addresses starting
 * with `prefix` wait until the returned function is called, so the result page stays
 * until then.
 */
export async function holdReturn(page, prefix) {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  await page.route(
    (url) => url.href.startsWith(prefix),
    async (route) => {
      await released;
      await route.continue();
    },
  );
  return release;
}

/**
 * Waits until the page has been sent back to the merchant (an address starting with
 * `prefix`) and returns that address. Polls, because the result page may start the
 * same navigation more than once, aborting the first.
 */
export async function returnedTo(page, prefix) {
  const deadline = Date.now() + 20_000;
  while (!page.url().startsWith(prefix)) {
    if (Date.now() > deadline) {
      const target = await page.evaluate(() => document.body.dataset.redirect).catch(() => undefined);
      throw new Error(`not sent back to ${prefix}; still at ${page.url()} (the page's redirect: ${target})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.waitForLoadState();
  return page.url();
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
