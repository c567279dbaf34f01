// Drives the console in Debian's Chromium through playwright-core (which
// never downloads a browser). Run by tests/it/console_browser.rs against a
// server it started; prints one JSON line and exits 0 when every step saw
// what a user would see, or prints the failed step and exits 1.
//
// Environment: LATCHKEY_URL (http://127.0.0.1:port), LATCHKEY_USER,
// LATCHKEY_OLD_PASSWORD, LATCHKEY_NEW_PASSWORD, CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from 'playwright-core';

const base = process.env.LATCHKEY_URL;
const user = process.env.LATCHKEY_USER;
const oldPassword = process.env.LATCHKEY_OLD_PASSWORD;
const newPassword = process.env.LATCHKEY_NEW_PASSWORD;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// Every wait is bounded by this; a step that does not happen fails.
const STEP_MS = 15000;

const problems = [];
const steps = [];

async function step(name, fn) {
  try {
    await fn();
    steps.push(name);
  } catch (e) {
    throw new Error(`step "${name}" failed: ${e.message}`);
  }
}

async function signIn(page, password) {
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (msg) => {
    // Chromium logs every 4xx answer as an error; the refusals this run
    // provokes on purpose are asserted on the page instead. Everything
    // else (a script error, a CSP violation) is a problem.
    const text = msg.text();
    const refusal = /^Failed to load resource: the server responded with a status of 4\d\d /.test(text);
    if (msg.type() === 'error' && !refusal) problems.push(`console error: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

  await step('open the console', async () => {
    const r = await page.goto(`${base}/admin/`);
    if (!r || r.status() !== 200) throw new Error(`status ${r && r.status()}`);
    await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
  });

  await step('sign in', async () => {
    await signIn(page, oldPassword);
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    const who = await page.locator('#who-name').textContent();
    if (who !== user) throw new Error(`header names ${who}`);
    await page.locator('#me-username').filter({ hasText: user }).waitFor();
    await page.getByText('This session').waitFor();
    if (!page.url().endsWith('#/account')) throw new Error(`url ${page.url()}`);
  });

  await step('a wrong current password is refused beside its field', async () => {
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Repeat new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    const error = page.locator('#current-password-error');
    await error.filter({ hasText: /\S/ }).waitFor();
  });

  await step('change the password', async () => {
    await page.getByLabel('Current password').fill(oldPassword);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Repeat new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
  });

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
  });

  await step('the old password fails with the API\'s words', async () => {
    await signIn(page, oldPassword);
    await page.getByRole('alert').filter({ hasText: 'Invalid credentials' }).waitFor();
  });

  await step('the new password signs in', async () => {
    await signIn(page, newPassword);
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
  });

  if (problems.length > 0) throw new Error(problems.join('; '));
} catch (e) {
  failed = e.message;
} finally {
  await browser.close();
}

if (failed) {
  console.log(JSON.stringify({ ok: false, steps, error: failed, problems }));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, steps, problems }));
