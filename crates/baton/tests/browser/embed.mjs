// The checkout component on a merchant's page (examples/checkout-embed, served from
// another origin): the iframe follows its content's height, forged messages are
// ignored, paying inside the frame calls onSuccess with the checkout's outcome, and a
// site the tenant does not allow cannot frame the checkout.
//
// Input: { host (the example page's URL, with ?baton=&token=), token, forge (a page on
//          a third origin posting forged messages to its parent), card,
//          secondToken? (mounted again after unmount, in German: decline, then cancel),
//          blockedHost? (the same page on an origin the tenant does not allow), shot? }
// Result: { heights, forged: {events, status, height}, events, raw, unmounted, second?,
//           blocked? }
import { scenario, input, baseUrl, check, eventually } from './lib.mjs';
import { fillCard, submit, result } from './checkout.mjs';

/** The mounted checkout's frame, once its pay form is there. */
async function checkoutFrame(page) {
  const element = await page.locator('#checkout iframe').elementHandle();
  const frame = await element.contentFrame();
  await frame.locator('#card-form').waitFor();
  return frame;
}

/** What the example page reported through the callbacks. */
async function events(page) {
  return page.locator('#events li').evaluateAll((items) =>
    items.map((li) => ({ callback: li.dataset.callback, messageType: li.dataset.messageType })),
  );
}

const iframeHeight = (page) => page.locator('#checkout iframe').evaluate((f) => f.getBoundingClientRect().height);

await scenario(async (t) => {
  const page = await t.page();
  await page.goto(input.host);
  const frame = await checkoutFrame(page);
  // Every message the merchant's window receives, as the component sees it.
  await page.evaluate(() => {
    window.received = [];
    window.addEventListener('message', (e) =>
      window.received.push({
        origin: e.origin,
        mounted: e.source === document.querySelector('#checkout iframe')?.contentWindow,
        data: e.data,
      }),
    );
  });
  check(frame.url().startsWith(`${baseUrl}/checkout`), `the frame shows the checkout: ${frame.url()}`);

  // The iframe takes the height of the checkout's content (no inner scroll bar).
  const contentHeight = () => frame.evaluate(() => Math.ceil(document.documentElement.getBoundingClientRect().height));
  await eventually(async () => Math.abs((await iframeHeight(page)) - (await contentHeight())) <= 1, 'the iframe to fit its content');
  const heights = { iframe: await iframeHeight(page), content: await contentHeight() };

  // Forged messages: from the merchant's own window, from a frame on a third origin,
  // and from a frame on the checkout's origin that is not the mounted checkout.
  const forgery = [
    { source: 'baton-checkout', type: 'outcome', messageType: 'imburse_payment_succeeded', bearerToken: 'forged' },
    { source: 'baton-checkout', type: 'resize', height: 5 },
  ];
  await page.evaluate((messages) => messages.forEach((m) => window.postMessage(m, '*')), forgery);
  await page.evaluate((src) => {
    const frame = document.createElement('iframe');
    frame.src = src;
    frame.title = 'third party';
    document.body.append(frame);
  }, input.forge);
  await page.evaluate((src) => {
    const frame = document.createElement('iframe');
    frame.id = 'same-origin-stranger';
    frame.src = src;
    frame.title = 'another page of the checkout origin';
    document.body.append(frame);
  }, `${baseUrl}/healthz`);
  const stranger = await (await page.locator('#same-origin-stranger').elementHandle()).contentFrame();
  await stranger.waitForLoadState();
  await stranger.evaluate((messages) => messages.forEach((m) => window.parent.postMessage(m, '*')), forgery);
  // Six forged messages arrive (listeners run in order: the component's first).
  await eventually(
    () => page.evaluate(() => window.received.filter((r) => r.data?.bearerToken === 'forged' || r.data?.height === 5).length >= 6),
    'the forged messages to be delivered',
  );
  const forged = {
    origins: await page.evaluate(() => [...new Set(window.received.map((r) => r.origin))]),
    events: await events(page),
    status: (await page.locator('#status').textContent()).trim(),
    height: await iframeHeight(page),
  };
  // The forgers' frames were the test's doing, not the merchant's page: take them away.
  await page.evaluate(() => document.querySelectorAll('body > iframe').forEach((f) => f.remove()));

  // The customer pays inside the frame.
  await fillCard(frame, input.card);
  await submit(frame, '#pay-button');
  const shown = await result(frame);
  await page.locator('#events li').first().waitFor();
  await eventually(async () => Math.abs((await iframeHeight(page)) - (await contentHeight())) <= 1, 'the iframe to fit the result');
  if (input.shot) await t.screenshot(page, input.shot);
  const report = {
    heights,
    forged,
    result: shown,
    events: await events(page),
    status: (await page.locator('#status').textContent()).trim(),
    // What the mounted checkout itself sent.
    raw: await page.evaluate((origin) => window.received.filter((r) => r.origin === origin && r.mounted).map((r) => r.data), baseUrl),
    violations: await t.axe(page),
  };

  // unmount() takes the frame away.
  await page.evaluate(() => window.checkout.unmount());
  report.unmounted = (await page.locator('#checkout iframe').count()) === 0;

  if (input.secondToken) {
    // Mounted again for another premium: a declined card calls onFailure (the customer
    // stays and may try again), then cancelling calls onCancel.
    await page.evaluate((token) => {
      window.calls = [];
      const record = (callback) => (outcome) => window.calls.push({ callback, ...outcome });
      window.second = Baton.mount('#checkout', {
        token,
        language: 'de-DE',
        onSuccess: record('onSuccess'),
        onFailure: record('onFailure'),
        onCancel: record('onCancel'),
      });
    }, input.secondToken);
    const second = await checkoutFrame(page);
    await fillCard(second, { ...input.card, number: '4000000000000002' });
    await submit(second, '#pay-button');
    await eventually(() => page.evaluate(() => window.calls.length >= 1), 'onFailure');
    await second.locator('#try-again').click();
    await second.locator('#cancel-button').click();
    await second.locator('#result[data-outcome="cancelled"]').waitFor();
    await eventually(() => page.evaluate(() => window.calls.length >= 2), 'onCancel');
    report.second = {
      lang: await second.getAttribute('html', 'lang'),
      calls: await page.evaluate(() => window.calls),
    };
  }

  if (input.blockedHost) {
    // The tenant does not list this origin: Chromium refuses to show the checkout in it.
    t.expectProblem(/frame-ancestors|Refused to frame|ERR_BLOCKED_BY_RESPONSE/);
    const other = await t.page();
    await other.goto(input.blockedHost);
    const element = await other.locator('#checkout iframe').elementHandle();
    const blocked = await element.contentFrame();
    await blocked.waitForLoadState();
    report.blocked = {
      url: blocked.url(),
      form: await blocked.locator('#card-form').count().catch(() => 0),
      events: await events(other),
    };
  }
  return report;
});
