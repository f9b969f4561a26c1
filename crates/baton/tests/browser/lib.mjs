// Shared by the browser test scripts. Each script is started by the Rust harness
// (crates/baton/tests/common/browser.rs) with:
//
//   BATON_URL          the Baton node under test, e.g. http://127.0.0.1:41234
//   BATON_INPUT        JSON with whatever else the scenario needs (tokens, URLs, …)
//   BATON_RESULT       a file to write the scenario's JSON result to
//   BATON_CHROMIUM     the Chromium binary to drive
//   BATON_SCREENSHOTS  the directory screenshots are saved to
//   BATON_FAILURES     the directory screenshots of a failed scenario's pages go to
//
// A script exports nothing: it calls `scenario(async (t) => { … return result })`.
// Any thrown error, JavaScript error on a page, console error (a CSP violation is
// one) or failed request to Baton fails the scenario with a message on stderr.

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const baseUrl = process.env.BATON_URL;
export const input = JSON.parse(process.env.BATON_INPUT || '{}');

/** Fails the scenario with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Fails unless `actual` equals `expected` (compared as JSON). */
export function equal(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** Polls `probe` until it returns a truthy value (or throws after `ms`). */
export async function eventually(probe, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class Run {
  constructor(browser) {
    this.browser = browser;
    this.problems = [];
    this.log = [];
    this.pages = [];
  }

  /** Where each page was and what it showed, for the failure report. */
  async describePages() {
    const lines = [];
    for (const [i, page] of this.pages.entries()) {
      if (page.isClosed()) continue;
      const text = await page
        .locator('body')
        .innerText({ timeout: 1000 })
        .catch(() => '(no body)');
      lines.push(`page ${i + 1} at ${page.url()}:\n    ${text.trim().replace(/\s*\n\s*/g, ' | ').slice(0, 600)}`);
      const dir = process.env.BATON_FAILURES;
      if (dir) {
        mkdirSync(dir, { recursive: true });
        const name = `${process.argv[1].split('/').pop().replace('.mjs', '')}-${process.pid}-${i + 1}.png`;
        await page.screenshot({ path: join(dir, name), fullPage: true }).catch(() => {});
        lines.push(`  (screenshot: ${join(dir, name)})`);
      }
    }
    return lines.join('\n  ');
  }

  /**
   * A new page in a fresh context (no shared cookies or storage). `options` go to
   * `browser.newContext` (viewport, locale, …). JavaScript errors, console errors and
   * failed requests on it are collected and fail the scenario at the end, unless the
   * scenario expects them (`t.expectProblem(regex)`).
   */
  async page(options = {}) {
    const context = await this.browser.newContext({ viewport: { width: 1024, height: 800 }, ...options });
    // Everything is local: an element that has not appeared by then will not appear.
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    this.pages.push(page);
    page.on('pageerror', (e) => this.problems.push(`page error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      this.log.push(`[${m.type()}] ${m.text()}`);
      // Failed loads are reported with their address by the 'response' handler below.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
        this.problems.push(`console error on ${page.url()}: ${m.text()}`);
      }
    });
    page.on('response', (r) => {
      const request = r.request();
      // Pages may answer with an error status on purpose (an expired link); what they
      // load (scripts, styles, images) must not fail. Browsers ask for a favicon unasked.
      if (r.status() < 400 || request.resourceType() === 'document') return;
      if (new URL(r.url()).pathname === '/favicon.ico') return;
      this.problems.push(`${request.method()} ${r.url()} answered ${r.status()}`);
    });
    page.on('requestfailed', (r) => {
      const reason = r.failure()?.errorText ?? '';
      // A navigation superseded by another one (a redirect, a form post) is aborted: not a fault.
      if (reason === 'net::ERR_ABORTED') return;
      this.problems.push(`request failed: ${r.method()} ${r.url()}: ${reason}`);
    });
    return page;
  }

  /** Ignores collected problems matching `pattern` (for scenarios that provoke them). */
  expectProblem(pattern) {
    this.expected = [...(this.expected ?? []), pattern];
  }

  /** Saves a full-page screenshot as `<name>.png` in the screenshots directory. */
  async screenshot(page, name) {
    const dir = process.env.BATON_SCREENSHOTS;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true, animations: 'disabled', caret: 'hide' });
  }

  /** Runs axe-core on the page (all frames) and returns its violations of `impacts`. */
  async axe(page, impacts = ['serious', 'critical']) {
    const { default: axe } = await import('axe-core');
    const violations = [];
    for (const frame of page.frames()) {
      // `evaluate` runs through the DevTools protocol, which the page's CSP does not govern.
      await frame.evaluate(axe.source);
      const result = await frame.evaluate(() =>
        window.axe.run(document, { resultTypes: ['violations'], runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }),
      );
      for (const v of result.violations) {
        if (!impacts.includes(v.impact)) continue;
        violations.push({
          frame: frame.url(),
          id: v.id,
          impact: v.impact,
          help: v.help,
          nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
        });
      }
    }
    return violations;
  }
}

/**
 * Runs a scenario in headless Chromium and writes its result for the Rust test.
 * The whole scenario is bounded in time so that a hung page cannot hang `cargo test`.
 */
export async function scenario(body, { timeoutMs = 90_000 } = {}) {
  const timer = setTimeout(() => {
    console.error(`scenario timed out after ${timeoutMs} ms`);
    process.exit(124);
  }, timeoutMs);
  const args = ['--disable-gpu', '--font-render-hinting=none'];
  // Chromium's sandbox refuses to start as root (CI and containers run as root).
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: process.env.BATON_CHROMIUM, headless: true, args });
  const t = new Run(browser);
  try {
    const result = (await body(t)) ?? {};
    const unexpected = t.problems.filter((p) => !(t.expected ?? []).some((re) => re.test(p)));
    if (unexpected.length > 0) {
      throw new Error(`problems in the browser:\n  ${unexpected.join('\n  ')}`);
    }
    writeFileSync(process.env.BATON_RESULT, JSON.stringify(result));
  } catch (e) {
    console.error(e?.stack ?? String(e));
    console.error(`pages:\n  ${await t.describePages()}`);
    if (t.log.length > 0) console.error(`browser console:\n  ${t.log.join('\n  ')}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    await browser.close();
  }
}
