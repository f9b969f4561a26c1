// The harness itself: Chromium opens Baton's API reference page and reads it.
import { scenario, baseUrl, check } from './lib.mjs';

await scenario(async (t) => {
  const page = await t.page();
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));
  const response = await page.goto(`${baseUrl}/docs`);
  check(response.ok(), `GET /docs answered ${response.status()}`);
  const heading = await page.getByRole('heading', { level: 1 }).textContent();
  // The stylesheet applied: the reference page's own CSS was loaded and used.
  const styled = await page.evaluate(() => document.styleSheets.length > 0 && document.styleSheets[0].cssRules.length > 0);
  return { heading, styled, requested, userAgent: await page.evaluate(() => navigator.userAgent) };
});
