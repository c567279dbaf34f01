// What every browser run shares: Debian's Chromium through playwright-core
// (never a downloaded browser), bounded steps, the problems a user or an
// auditor would see (script errors, CSP violations), and the page check
// (axe-core in the page at 1280 and 360 px, light and dark, with a
// screenshot of each under target/console-screenshots/).
//
// A run prints one JSON line, { ok, steps, problems, error }, and exits 0
// only when every step passed and nothing went wrong on the way.

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const SHOTS = join(here, '..', '..', 'target', 'console-screenshots');

/** Every wait is bounded by this; a step that does not happen fails. */
export const STEP_MS = 15000;

export const base = process.env.LATCHKEY_URL;

/** A run: a browser, the steps passed and the problems seen. */
export async function run(body) {
  const steps = [];
  const problems = [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  let error = null;
  try {
    const t = {
      browser,
      steps,
      problems,
      /** A new page (own context: own cookies) that records problems. */
      newPage: async (options = {}) => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
        const page = await context.newPage();
        watch(page, problems);
        return page;
      },
      step: async (name, fn) => {
        try {
          await fn();
          steps.push(name);
        } catch (e) {
          throw new Error(`step "${name}" failed: ${e.message}`);
        }
      },
    };
    await body(t);
    if (problems.length > 0) throw new Error(problems.join('; '));
  } catch (e) {
    error = e.message;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ ok: !error, steps, problems, error }));
  process.exit(error ? 1 : 0);
}

/** Records script errors and CSP violations. Chromium logs every 4xx
 * answer as an error; refusals a run provokes on purpose are asserted on
 * the page instead. */
export function watch(page, problems) {
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (msg) => {
    const text = msg.text();
    const refusal = /^Failed to load resource: the server responded with a status of 4\d\d /.test(text);
    if (msg.type() === 'error' && !refusal) problems.push(`console error: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
}

/** Signs in through the sign-in form and waits for the shell. */
export async function signIn(page, user, password) {
  await page.goto(`${base}/admin/`);
  await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name').filter({ hasText: user }).waitFor();
}

/** Opens `#/<hash>` and waits for its level-1 heading. */
export async function open(page, hash, heading) {
  await page.goto(`${base}/admin/#/${hash}`);
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
}

/** The page as it stands, at 1280 and 360 px, light and dark: axe-core's
 * serious and critical violations become problems, and a screenshot of
 * each is saved as `<name>-<width>-<scheme>.png`. */
export async function check(page, name, problems) {
  mkdirSync(SHOTS, { recursive: true });
  const size = page.viewportSize();
  for (const width of [1280, 360]) {
    for (const scheme of ['light', 'dark']) {
      await page.setViewportSize({ width, height: 800 });
      await page.emulateMedia({ colorScheme: scheme });
      // The console's CSP refuses inline scripts; evaluation through the
      // DevTools protocol is not the page's script and is not refused.
      await page.evaluate(AXE);
      const violations = await page.evaluate(async () => {
        const result = await window.axe.run(document, { resultTypes: ['violations'] });
        return result.violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
      });
      for (const v of violations) problems.push(`axe ${name} ${width}px ${scheme}: ${v}`);
      // Responsive means no sideways scrolling of the page itself (a
      // table may scroll inside its own region).
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (wide > 0) problems.push(`${name} ${width}px ${scheme}: the page is ${wide}px wider than the window`);
      await page.screenshot({ path: join(SHOTS, `${name}-${width}-${scheme}.png`), fullPage: true });
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  if (size) await page.setViewportSize(size);
}
