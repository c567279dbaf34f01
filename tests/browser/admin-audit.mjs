// The admin pages in Debian's Chromium (see lib.mjs), second part: as the
// admin, revoke the S2S token and the API key admin.mjs made, then find
// every action of both parts in the audit log through the page's filters
// (kept in the URL, so a reload keeps them).
//
// Environment: LATCHKEY_URL, LATCHKEY_USER, LATCHKEY_PASSWORD.

import { readFileSync } from 'node:fs';
import { base, check, open, run, signIn } from './lib.mjs';

const user = process.env.LATCHKEY_USER;
const password = process.env.LATCHKEY_PASSWORD;

async function confirm(page, name) {
  await page.getByRole('dialog').getByRole('button', { name }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

/** A `datetime-local` value `days` from now, in the browser's time. */
function local(days) {
  const d = new Date(Date.now() + days * 86400000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Applies the audit filters and waits for the list to answer. */
async function filter(page, { actor = '', action = '', outcome = '', tenant = '', since = '', until = '' }) {
  await page.getByLabel('Actor').fill(actor);
  await page.getByLabel('Action').fill(action);
  await page.getByLabel('Outcome').selectOption(outcome);
  await page.getByLabel('Tenant').selectOption(tenant);
  await page.getByLabel('From').fill(since);
  await page.getByLabel('Until').fill(until);
  const answered = page.waitForResponse((r) => r.url().includes('/api/v1/admin/audit?'));
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await answered;
}

/** The text of every row the list shows. */
async function rows(page) {
  await page.locator('.audit-results table, .audit-results .empty').first().waitFor();
  return page.locator('.audit-results tbody tr').allTextContents();
}

/** Asserts that the filtered list holds only `action` rows, at least one
 * of them containing each of `texts`. */
async function expectRows(page, action, texts) {
  const found = await rows(page);
  if (found.length === 0) throw new Error(`no ${action} event`);
  for (const r of found) if (!r.includes(action)) throw new Error(`filter ${action} shows ${r}`);
  for (const text of texts) if (!found.some((r) => r.includes(text))) throw new Error(`no ${action} event with ${text}: ${found.join(' / ')}`);
}

await run(async (t) => {
  const page = await t.newPage();

  await t.step('sign in as the admin', async () => {
    await signIn(page, user, password);
  });

  await t.step('S2S: revoke the token', async () => {
    await open(page, 's2s', 'Server-to-server tokens');
    await page.getByRole('button', { name: 'Revoke token billing-sync' }).click();
    await confirm(page, 'Revoke token');
    await page.getByRole('row', { name: /billing-sync/ }).getByText('Revoked').waitFor();
    if (await page.getByRole('button', { name: 'Revoke token billing-sync' }).count()) throw new Error('a revoked token offers revoke');
  });

  await t.step('API keys: revoke the key', async () => {
    await open(page, 'keys', 'API keys');
    await page.getByRole('button', { name: 'Revoke key reporting' }).click();
    await confirm(page, 'Revoke key');
    await page.getByRole('row', { name: /reporting/ }).waitFor({ state: 'detached' });
  });

  await t.step('audit: every action is found through the filters', async () => {
    await open(page, 'audit', 'Audit log');
    const checks = [
      ['reseller_created', ['borealis']],
      ['reseller_updated', ['borealis']],
      ['reseller_deleted', ['borealis']],
      ['merchant_created', ['north']],
      ['merchant_updated', ['north']],
      ['merchant_deleted', ['north']],
      ['role_created', ['auditor']],
      ['role_deleted', ['auditor']],
      ['signing_key_rotated', []],
      ['s2s_token_created', ['billing-sync']],
      ['s2s_token_revoked', []],
      ['api_key_created', []],
      ['api_key_revoked', []],
    ];
    for (const [action, texts] of checks) {
      await filter(page, { actor: user, action, outcome: 'success' });
      await expectRows(page, action, texts);
    }
  });

  await t.step('audit: tenant and time range narrow the list', async () => {
    // The token was issued for a merchant of acme: found under that
    // merchant, not under the other reseller.
    await filter(page, { action: 's2s_token_created', tenant: 'm:acme-shop' });
    await expectRows(page, 's2s_token_created', ['billing-sync']);
    await filter(page, { action: 's2s_token_created', tenant: 'r:other' });
    for (const r of await rows(page)) if (r.includes('billing-sync')) throw new Error(`other's tokens show ${r}`);
    await filter(page, { action: 'role_created', since: local(-1), until: local(1) });
    await expectRows(page, 'role_created', ['auditor']);
    await filter(page, { action: 'role_created', since: local(1) });
    await page.getByText('No event matches these filters.').waitFor();
    // A start after the end is refused beside its field.
    await page.getByLabel('From').fill(local(1));
    await page.getByLabel('Until').fill(local(-1));
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('The end is before the start.').waitFor();
  });

  await t.step('audit: the filters are in the URL and survive a reload', async () => {
    await filter(page, { actor: user, action: 'reseller_deleted', outcome: 'success' });
    const url = new URL(page.url());
    const query = new URLSearchParams(url.hash.split('?')[1] || '');
    if (query.get('event') !== 'reseller_deleted' || query.get('actor') !== user || query.get('outcome') !== 'success') throw new Error(`url ${page.url()}`);
    await page.goto(`${base}/admin/${url.hash}`);
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    if ((await page.getByLabel('Action').inputValue()) !== 'reseller_deleted') throw new Error('the action filter was lost');
    await expectRows(page, 'reseller_deleted', ['borealis']);
  });

  await t.step('audit: the filtered log exports as CSV', async () => {
    await filter(page, { action: 'role_created', outcome: 'success' });
    const saved = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const download = await saved;
    if (download.suggestedFilename() !== 'latchkey-audit.csv') throw new Error(`saved as ${download.suggestedFilename()}`);
    const csv = readFileSync(await download.path(), 'utf8');
    const lines = csv.trim().split(/\r?\n/);
    if (lines.length < 2 || !lines.slice(1).every((l) => l.includes('role_created'))) throw new Error(`csv: ${csv}`);
    if (!csv.includes('auditor')) throw new Error(`csv lacks the role: ${csv}`);
  });

  await t.step('audit: the whole log, paged, checked', async () => {
    await page.goto(`${base}/admin/#/audit`);
    // A fresh document: no toast of the revocations covers the screenshots.
    await page.reload();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    await page.locator('.audit-results tbody tr').first().waitFor();
    const first = await page.locator('.audit-results tbody tr').count();
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction((n) => document.querySelectorAll('.audit-results tbody tr').length > n, first);
    await check(page, 'audit', t.problems);
  });
});
