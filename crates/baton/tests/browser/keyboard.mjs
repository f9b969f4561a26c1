// A customer on a phone-sized screen pays with the keyboard only: Tab to each field,
// type, Enter to pay. Every focused control must show where the focus is.
//
// Input: { url, card: {number, expiry, cvc, name?}, shot? }
// Result: { overflow (horizontal scrolling needed), tabs (ids focused on the way),
//           focusVisible {id: bool}, fields {id: {inputmode, autocomplete}}, result, violations }
import { scenario, input, check } from './lib.mjs';
import { chooseMethod, result } from './checkout.mjs';

await scenario(async (t) => {
  const page = await t.page({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await page.goto(input.url);
  await chooseMethod(page, 'card');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  const violations = await t.axe(page);

  const tabs = [];
  const focusVisible = {};
  /** Presses Tab until `id` has the focus (at most 15 times). */
  async function tabTo(id) {
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const shown = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
        return { id: el.id || el.tagName.toLowerCase(), shown };
      });
      tabs.push(focused.id);
      focusVisible[focused.id] = focused.shown;
      if (focused.id === id) return;
    }
    throw new Error(`Tab never reached #${id} (focus went ${tabs.join(' → ')})`);
  }

  const fields = {};
  for (const [id, text] of [
    ['card-number', input.card.number],
    ['card-expiry', input.card.expiry],
    ['card-cvc', input.card.cvc],
  ]) {
    await tabTo(id);
    await page.keyboard.type(text);
    fields[id] = await page.locator(`#${id}`).evaluate((el) => ({
      inputmode: el.getAttribute('inputmode'),
      autocomplete: el.getAttribute('autocomplete'),
      value: el.value,
    }));
  }
  if ((await page.locator('#cardholder-name').count()) > 0) {
    await tabTo('cardholder-name');
    await page.keyboard.type(input.card.name ?? 'Jane Doe');
  }
  await tabTo('pay-button');
  if (input.shot) await t.screenshot(page, input.shot);
  check(focusVisible['pay-button'], 'the focused pay button shows its focus');
  await page.keyboard.press('Enter');
  const outcome = await result(page);
  return { overflow, tabs, focusVisible, fields, result: outcome, violations };
});
