// Accounts, My keys and the overview in Debian's Chromium (see lib.mjs).
// Run by tests/it/console_browser_accounts.rs against a server it
// started and seeded; what the page did is checked from the Rust side
// afterwards through the API.
//
// PHASE=main (the default) runs the pages; PHASE=idle-sign-in signs in
// and saves the browser's state to STATE_FILE; PHASE=reauth-delete
// loads the console with that state (after the server's clock has moved
// past the password's window) and deletes TARGET_USER, entering the
// password again; PHASE=idle-return loads it (after the idle timeout)
// and must land on sign-in.
//
// Environment: LATCHKEY_URL, ADMIN_USER, ADMIN_PASSWORD, LOCK_USER,
// RESELLER_USER (a reseller over the bulk accounts), USER_PASSWORD, ROLE (a custom role to grant), OUT_FILE (facts for the
// Rust side, JSON), STATE_FILE, VICTIM_ID (an account a cross-site
// request tries to disable).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { base, check, open, run, signIn, STEP_MS } from './lib.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const phase = process.env.PHASE || 'main';
const admin = env('ADMIN_USER');
const adminPassword = env('ADMIN_PASSWORD');

/** curl, returning the HTTP status and the body. */
function curl(args) {
  const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: STEP_MS });
  const at = out.lastIndexOf('\n');
  return { status: Number(out.slice(at + 1)), body: out.slice(0, at) };
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/** Waits for a dialog titled `title` and returns it. */
async function dialog(page, title) {
  const d = page.getByRole('dialog', { name: title });
  await d.waitFor();
  return d;
}

async function confirm(page, title, button) {
  const d = await dialog(page, title);
  await d.getByRole('button', { name: button, exact: true }).click();
  await d.waitFor({ state: 'detached' });
}

/** The row of a table that holds `text`. */
const row = (page, text) => page.getByRole('row').filter({ hasText: text });

if (phase === 'idle-sign-in') {
  await run(async (t) => {
    const page = await t.newPage();
    await t.step('sign in and keep the browser state', async () => {
      await signIn(page, admin, adminPassword);
      await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
      const csrf = await page.evaluate(() => sessionStorage.getItem('latchkey.csrf'));
      expect(csrf, 'no CSRF token in the tab');
      const state = await page.context().storageState();
      writeFileSync(env('STATE_FILE'), JSON.stringify({ state, csrf }));
    });
  });
} else if (phase === 'reauth-delete') {
  await run(async (t) => {
    const { state, csrf } = JSON.parse(readFileSync(env('STATE_FILE'), 'utf8'));
    const page = await t.newPage({ storageState: state });
    await page.addInitScript((token) => sessionStorage.setItem('latchkey.csrf', token), csrf);
    const target = env('TARGET_USER');
    await t.step('deleting an account asks for the password again, then deletes it', async () => {
      await page.goto(`${base}/admin/#/accounts?q=${target}`);
      await page.getByRole('link', { name: target, exact: true }).click();
      await page.getByRole('heading', { name: target, level: 1 }).waitFor();
      await page.getByRole('button', { name: 'Delete', exact: true }).click();
      await confirm(page, `Delete ${target}?`, 'Delete account');
      const again = await dialog(page, 'Confirm it is you');
      await again.getByLabel('Your password').fill('not my password');
      await again.getByRole('button', { name: 'Confirm' }).click();
      await again.getByRole('alert').filter({ hasText: /\S/ }).waitFor();
      await check(page, 'reauth-dialog', t.problems);
      await again.getByLabel('Your password').fill(adminPassword);
      await again.getByRole('button', { name: 'Confirm' }).click();
      await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
      await page.getByText(`Account ${target} deleted.`).waitFor();
    });
  });
} else if (phase === 'idle-return') {
  await run(async (t) => {
    const { state, csrf } = JSON.parse(readFileSync(env('STATE_FILE'), 'utf8'));
    const page = await t.newPage({ storageState: state });
    // The same tab again: its CSRF token lives in sessionStorage, which a
    // saved state does not carry, so it is put back before the page runs.
    await page.addInitScript((token) => sessionStorage.setItem('latchkey.csrf', token), csrf);
    await t.step('after the idle timeout the console asks to sign in', async () => {
      await page.goto(`${base}/admin/#/accounts`);
      await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
      expect(!(await page.locator('#shell-view').isVisible()), 'the shell is shown');
    });
  });
} else {
  const lockUser = env('LOCK_USER');
  const userPassword = env('USER_PASSWORD');
  const role = env('ROLE');
  const facts = {};
  const save = () => writeFileSync(env('OUT_FILE'), JSON.stringify(facts));

  await run(async (t) => {
    const page = await t.newPage({ acceptDownloads: true });

    await t.step("a wrong password shows the API's error", async () => {
      await page.goto(`${base}/admin/`);
      await page.getByLabel('Username or email').fill(lockUser);
      await page.getByLabel('Password', { exact: true }).fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#signin-error').filter({ hasText: 'Invalid credentials' }).waitFor();
    });

    await t.step('the lockout applies to console sign-in', async () => {
      // The Rust side set the threshold to 3 failures.
      for (let i = 0; i < 2; i += 1) {
        await page.getByLabel('Password', { exact: true }).fill(`wrong ${i}`);
        const [answer] = await Promise.all([
          page.waitForResponse((r) => r.url().endsWith('/api/v1/console/session')),
          page.getByRole('button', { name: 'Sign in' }).click(),
        ]);
        expect(answer.status() === 401, `attempt ${i + 2}: ${answer.status()}`);
      }
      await page.getByLabel('Password', { exact: true }).fill(userPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#signin-error').filter({ hasText: 'Account locked' }).waitFor();
      expect(!(await page.locator('#shell-view').isVisible()), 'the shell is shown');
    });

    await t.step('sign in; the overview shows counts, events and health', async () => {
      await signIn(page, admin, adminPassword);
      await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
      facts.overviewAccounts = Number((await page.locator('[data-count="accounts"] .figure').textContent()).replace(/\D/g, ''));
      save();
      await page.getByRole('heading', { name: 'Recent events' }).waitFor();
      await page.getByRole('heading', { name: 'Server health' }).waitFor();
      await check(page, 'overview', t.problems);
    });

    await t.step('create an account', async () => {
      await open(page, 'accounts', 'Accounts');
      await page.getByRole('button', { name: 'New account' }).click();
      const d = await dialog(page, 'New account');
      await d.getByLabel('Username').fill('erin');
      await d.getByLabel('Email').fill('not an email');
      await d.getByLabel('Password', { exact: true }).fill(userPassword);
      await d.getByRole('button', { name: 'Create account' }).click();
      // The API's refusal, beside the field it names.
      await d.locator('.field-error').filter({ hasText: /\S/ }).first().waitFor();
      expect(await d.getByLabel('Email').getAttribute('aria-invalid') === 'true', 'the email field is not marked');
      await check(page, 'account-create', t.problems);
      await d.getByLabel('Email').fill('erin@example.com');
      await d.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('heading', { name: 'erin', level: 1 }).waitFor();
      facts.erin = decodeURIComponent(page.url().split('#/accounts/')[1]);
      save();
    });

    await t.step('find it by search, kept in the URL', async () => {
      await open(page, 'accounts', 'Accounts');
      await page.getByRole('searchbox', { name: 'Search' }).fill('eri');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.waitForURL(/q=eri/);
      await page.getByRole('link', { name: 'erin', exact: true }).waitFor();
      await row(page, 'bulk1').waitFor({ state: 'detached' });
      await page.reload();
      await page.getByRole('link', { name: 'erin', exact: true }).waitFor();
      expect(await page.getByRole('searchbox', { name: 'Search' }).inputValue() === 'eri', 'the search was lost on reload');
      expect(await page.getByRole('link', { name: 'admin', exact: true }).count() === 0, 'the search did not filter');
    });

    await t.step('change its roles', async () => {
      await page.getByRole('link', { name: 'erin', exact: true }).click();
      await page.getByRole('heading', { name: 'erin', level: 1 }).waitFor();
      await page.getByRole('checkbox', { name: role, exact: true }).check();
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.locator('.facts').getByText(role, { exact: true }).waitFor();
    });

    await t.step("create a key for the account: its secret once", async () => {
      const keys = page.getByRole('region', { name: 'API keys of erin' }).or(page.getByText('This account has no API keys.'));
      await keys.waitFor();
      await page.getByRole('button', { name: 'Create key' }).click();
      const d = await dialog(page, 'Create an API key');
      await d.getByLabel('Name').fill('erin-ci');
      await d.getByRole('button', { name: 'Create key' }).click();
      const secret = await dialog(page, 'Your new API key');
      facts.erinKey = (await secret.locator('[data-secret]').textContent()).trim();
      save();
      await secret.getByRole('button', { name: 'I have copied it' }).click();
      // The dialog, closed, is then taken out of the page with the secret.
      await page.locator('[data-secret]').waitFor({ state: 'detached' });
      await row(page, 'erin-ci').waitFor();
      expect(!(await page.content()).includes(facts.erinKey), 'the secret is still in the page');
      // The key acts as erin.
      const me = curl(['-H', `Authorization: Bearer ${facts.erinKey}`, `${base}/api/v1/auth/me`]);
      expect(me.status === 200, `with erin's key: ${me.status} ${me.body}`);
      facts.erinKeyActsAs = JSON.parse(me.body).username;
      save();
    });

    await t.step('see its sessions and revoke them', async () => {
      // Two sign-ins as erin, from elsewhere.
      facts.erinTokens = [];
      for (let i = 0; i < 2; i += 1) {
        const r = curl(['-A', `erin-device-${i}`, '-H', 'content-type: application/json', '-d', JSON.stringify({ username: 'erin', password: userPassword }), `${base}/api/v1/auth/login`]);
        expect(r.status === 200, `erin's login: ${r.status} ${r.body}`);
        facts.erinTokens.push(JSON.parse(r.body).token);
      }
      save();
      await page.reload();
      const sessions = page.getByRole('region', { name: 'Live sessions of erin' });
      await sessions.getByRole('row').nth(2).waitFor();
      await check(page, 'account-detail', t.problems);
      await row(page, 'erin-device-0').getByRole('button', { name: /^Revoke/ }).click();
      await row(page, 'erin-device-0').waitFor({ state: 'detached' });
      await row(page, 'erin-device-1').waitFor();
      await page.getByRole('button', { name: 'Revoke all' }).click();
      await confirm(page, 'Revoke every session of erin?', 'Revoke all');
      await page.getByText('No live sessions').waitFor();
    });

    await t.step('disable it', async () => {
      await page.getByRole('button', { name: 'Disable', exact: true }).click();
      await confirm(page, 'Disable erin?', 'Disable');
      await page.getByRole('button', { name: 'Enable', exact: true }).waitFor();
      await page.getByRole('heading', { name: 'erin', level: 1 }).getByText('Disabled').waitFor();
    });

    await t.step('create an API key: the secret once, with a warning', async () => {
      await open(page, 'account', 'My account');
      await page.getByRole('button', { name: 'Create key' }).click();
      const d = await dialog(page, 'Create an API key');
      await d.getByLabel('Name').fill('deploy-bot');
      await d.getByRole('button', { name: 'Create key' }).click();
      const secret = await dialog(page, 'Your new API key');
      await secret.getByText('this is the only time it is shown').waitFor();
      await secret.getByRole('button', { name: 'Copy' }).waitFor();
      facts.key = (await secret.locator('[data-secret]').textContent()).trim();
      expect(facts.key.startsWith('sk_live_'), `the secret shown is ${facts.key}`);
      save();
      await row(page, 'deploy-bot').waitFor();
      await check(page, 'account-key-secret', t.problems);
      await secret.getByRole('button', { name: 'I have copied it' }).click();
      // The dialog, closed, is then taken out of the page with the secret.
      await page.locator('[data-secret]').waitFor({ state: 'detached' });
      expect(!(await page.content()).includes(facts.key), 'the secret is still in the page');
      await page.reload();
      await row(page, 'deploy-bot').waitFor();
      expect(!(await page.content()).includes(facts.key), 'the secret is shown again after reload');
      await check(page, 'my-account-admin', t.problems);
    });

    await t.step('the key works with curl, then revoked in the page it is refused', async () => {
      const me = () => curl(['-H', `Authorization: Bearer ${facts.key}`, `${base}/api/v1/auth/me`]);
      const before = me();
      expect(before.status === 200 && JSON.parse(before.body).username === admin, `with the key: ${before.status} ${before.body}`);
      await row(page, 'deploy-bot').getByRole('button', { name: 'Revoke key deploy-bot' }).click();
      await confirm(page, 'Revoke this API key?', 'Revoke key');
      await row(page, 'deploy-bot').waitFor({ state: 'detached' });
      const after = me();
      expect(after.status === 401, `after revoking: ${after.status} ${after.body}`);
    });

    await t.step('a reseller sees its subtree, and no role above its own', async () => {
      const other = await t.newPage();
      await signIn(other, env('RESELLER_USER'), userPassword);
      await open(other, 'accounts', 'Accounts');
      await other.getByRole('link', { name: 'bulk1', exact: true }).waitFor();
      for (const hidden of [admin, 'erin', 'victim']) {
        expect(await other.getByRole('link', { name: hidden, exact: true }).count() === 0, `a reseller sees ${hidden}`);
      }
      await other.getByRole('button', { name: 'New account' }).click();
      const d = await dialog(other, 'New account');
      await d.getByRole('checkbox', { name: 'reseller', exact: true }).waitFor();
      expect(await d.getByRole('checkbox', { name: 'admin', exact: true }).count() === 0, 'a reseller is offered the admin role');
      const tenants = await d.getByLabel('Tenant').locator('option').allTextContents();
      expect(!tenants.includes('No tenant'), `a reseller is offered ${tenants.join(', ')}`);
      await d.getByRole('button', { name: 'Cancel' }).click();
      await check(other, 'accounts-reseller', t.problems);
      await other.context().close();
    });

    await t.step('bulk disable two accounts, with results per account', async () => {
      await open(page, 'accounts?q=bulk', 'Accounts');
      await page.getByRole('checkbox', { name: 'Select bulk1' }).check();
      await page.getByRole('checkbox', { name: 'Select bulk2' }).check();
      const selection = page.getByRole('region', { name: 'Selected accounts' });
      await selection.getByText('2 selected').waitFor();
      await check(page, 'accounts-selection', t.problems);
      await selection.getByRole('button', { name: 'Disable' }).click();
      await confirm(page, 'Disable 2 accounts?', 'Disable');
      const results = page.getByRole('status', { name: 'Bulk action results' });
      await results.getByText('2 done, 0 failed').waitFor();
      await row(page, 'bulk1').getByText('Disabled').waitFor();
      await row(page, 'bulk2').getByText('Disabled').waitFor();
      await row(page, 'bulk3').getByText('Active').waitFor();
      await check(page, 'accounts-bulk-results', t.problems);
    });

    await t.step('filter by state, kept in the URL, and export that list as CSV', async () => {
      await page.getByLabel('State').selectOption('disabled');
      await page.waitForURL(/state=disabled/);
      await row(page, 'bulk3').waitFor({ state: 'detached' });
      await row(page, 'bulk1').waitFor();
      await row(page, 'bulk2').waitFor();
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Export CSV' }).click(),
      ]);
      const csv = readFileSync(await download.path(), 'utf8');
      const lines = csv.trim().split(/\r?\n/);
      expect(/username/.test(lines[0]), `header: ${lines[0]}`);
      for (const name of ['bulk1', 'bulk2']) expect(lines.some((l) => l.includes(name)), `${name} is missing: ${csv}`);
      for (const name of ['bulk3', 'erin']) expect(!csv.includes(name), `the export ignored the filters: ${csv}`);
      expect(lines.length === 3, `lines: ${lines.length}`);
      facts.csvLines = lines.length;
      save();
    });

    await t.step('a cross-site request with the cookie is refused', async () => {
      const cookies = await page.context().cookies();
      const cookie = cookies.find((c) => c.name.includes('latchkey_console'));
      expect(cookie, 'no console cookie');
      const csrf = await page.evaluate(() => sessionStorage.getItem('latchkey.csrf'));
      const jar = `${cookie.name}=${cookie.value}`;
      const path = `${base}/api/v1/admin/users/${env('VICTIM_ID')}/disable`;
      const wrongOrigin = curl(['-X', 'POST', '-H', `Cookie: ${jar}`, '-H', `X-CSRF-Token: ${csrf}`, '-H', 'Origin: https://evil.example', path]);
      expect(wrongOrigin.status === 403, `wrong Origin: ${wrongOrigin.status} ${wrongOrigin.body}`);
      const noToken = curl(['-X', 'POST', '-H', `Cookie: ${jar}`, '-H', `Origin: ${base}`, path]);
      expect(noToken.status === 403, `no CSRF token: ${noToken.status} ${noToken.body}`);
      // The same cookie reads, so the refusals are about where the
      // request came from, not a dead session.
      const read = curl(['-H', `Cookie: ${jar}`, `${base}/api/v1/admin/users/${env('VICTIM_ID')}`]);
      expect(read.status === 200, `read with the cookie: ${read.status}`);
    });
  });
}
