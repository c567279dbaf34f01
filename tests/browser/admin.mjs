// The admin pages in Debian's Chromium (see lib.mjs), first part: as the
// admin, tenants (create, rename, delete, a refusal in the API's words),
// roles, signing-key rotation, issuing an S2S token and creating an API
// key for another account. The two secrets the page showed once are
// written to LATCHKEY_OUT for tests/it/console_browser_admin.rs to use.
//
// Environment: LATCHKEY_URL, LATCHKEY_USER, LATCHKEY_PASSWORD,
// LATCHKEY_OUT, LATCHKEY_KEY_OWNER (the account the key is made for).

import { writeFileSync } from 'node:fs';
import { check, open, run, signIn } from './lib.mjs';

const user = process.env.LATCHKEY_USER;
const password = process.env.LATCHKEY_PASSWORD;
const out = process.env.LATCHKEY_OUT;
const keyOwner = process.env.LATCHKEY_KEY_OWNER;

/** The tree row of tenant `id`. */
const row = (page, id) => page.locator(`li[data-tenant="${id}"] > .tenant`);

/** Fills and sends the dialog's form, waiting for it to close. */
async function submitDialog(page, values, submit) {
  const dialog = page.getByRole('dialog');
  for (const [label, value] of values) {
    const input = dialog.getByLabel(label, { exact: true });
    if ((await input.evaluate((el) => el.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
  await dialog.getByRole('button', { name: submit }).click();
}

/** Reloads (so no toast covers the screenshots) and waits for `ready`. */
async function reloaded(page, heading, ready) {
  await page.reload();
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
  await ready.waitFor();
}

async function confirm(page, name) {
  await page.getByRole('dialog').getByRole('button', { name }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

await run(async (t) => {
  const page = await t.newPage();
  const secrets = {};

  await t.step('sign in as the admin', async () => {
    await signIn(page, user, password);
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    for (const want of ['Tenants', 'Roles', 'API keys', 'S2S tokens', 'Audit log', 'Signing keys']) {
      if (!links.includes(want)) throw new Error(`navigation lacks ${want}: ${links.join(', ')}`);
    }
  });

  await t.step('tenants: create a reseller and a merchant under it', async () => {
    await open(page, 'tenants', 'Tenants');
    await row(page, 'acme').waitFor();
    // By keyboard: the button opens the form with its first field focused,
    // and Escape closes it.
    await page.getByRole('button', { name: 'New reseller' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').getByLabel('Name', { exact: true }).waitFor();
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.labels && document.activeElement.labels[0].textContent);
    if (focused !== 'Name') throw new Error(`focus is on ${focused}`);
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'New reseller' }).click();
    // An empty name is named beside its field before anything is sent.
    await page.getByRole('dialog').getByRole('button', { name: 'Create reseller' }).click();
    await page.getByRole('dialog').getByText('Name is required.').waitFor();
    // A malformed id is refused by the API, beside the id field.
    await submitDialog(page, [['Name', 'Borealis Partners'], ['Id', 'bad id!']], 'Create reseller');
    await page.getByRole('dialog').locator('.field-error').filter({ hasText: 'id must be 1 to 64' }).waitFor();
    await submitDialog(page, [['Id', 'borealis']], 'Create reseller');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await row(page, 'borealis').getByText('Borealis Partners').waitFor();
    // From the reseller's row, the reseller is chosen already.
    await row(page, 'borealis').getByRole('button', { name: 'Add merchant to Borealis Partners' }).click();
    const chosen = await page.getByRole('dialog').getByLabel('Reseller').inputValue();
    if (chosen !== 'borealis') throw new Error(`the form chose ${chosen}`);
    await submitDialog(page, [['Name', 'North Shop'], ['Id', 'north']], 'Create merchant');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    // The merchant sits under its reseller in the tree.
    await page.locator('li[data-tenant="borealis"] li[data-tenant="north"]').getByText('North Shop').waitFor();
  });

  await t.step('tenants: rename both', async () => {
    await row(page, 'north').getByRole('button', { name: 'Rename North Shop' }).click();
    await submitDialog(page, [['New name', 'North Shop Online']], 'Rename');
    await row(page, 'north').getByText('North Shop Online').waitFor();
    await row(page, 'borealis').getByRole('button', { name: 'Rename Borealis Partners' }).click();
    await submitDialog(page, [['New name', 'Borealis Group']], 'Rename');
    await row(page, 'borealis').getByText('Borealis Group').waitFor();
    // The links to the tenant's accounts and tokens.
    const accounts = await row(page, 'north').getByRole('link', { name: 'Accounts of North Shop Online' }).getAttribute('href');
    if (accounts !== '#/accounts?merchant_id=north') throw new Error(`accounts link ${accounts}`);
    const tokens = await row(page, 'borealis').getByRole('link', { name: 'Tokens of Borealis Group' }).getAttribute('href');
    if (tokens !== '#/s2s?reseller_id=borealis') throw new Error(`tokens link ${tokens}`);
  });

  await t.step("tenants: a refused delete shows the API's words", async () => {
    await row(page, 'borealis').getByRole('button', { name: 'Delete Borealis Group' }).click();
    await confirm(page, 'Delete reseller');
    await page.getByRole('alert').filter({ hasText: 'the reseller still has merchants; delete them first' }).waitFor();
  });

  await t.step('tenants: delete the merchant, then the reseller', async () => {
    await row(page, 'north').getByRole('button', { name: 'Delete North Shop Online' }).click();
    await confirm(page, 'Delete merchant');
    await row(page, 'north').waitFor({ state: 'detached' });
    await row(page, 'borealis').getByRole('button', { name: 'Delete Borealis Group' }).click();
    await confirm(page, 'Delete reseller');
    await row(page, 'borealis').waitFor({ state: 'detached' });
    await reloaded(page, 'Tenants', row(page, 'acme-shop'));
    await check(page, 'tenants', t.problems);
  });

  await t.step('roles: create and delete a custom role', async () => {
    await open(page, 'roles', 'Roles');
    // Who holds the seeded custom role.
    await page.getByRole('row', { name: /support/ }).getByText('sam').waitFor();
    await page.getByRole('button', { name: 'New role' }).click();
    await submitDialog(page, [['Role name', '9-lives']], 'Create role');
    await page.getByRole('dialog').locator('.field-error').filter({ hasText: 'role names are 1 to 64' }).waitFor();
    await submitDialog(page, [['Role name', 'auditor']], 'Create role');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.getByRole('row', { name: /auditor/ }).getByText('No account').waitFor();
    await page.getByRole('button', { name: 'Delete role auditor' }).click();
    await confirm(page, 'Delete role');
    await page.getByRole('row', { name: /auditor/ }).waitFor({ state: 'detached' });
    // Built-in roles offer no delete.
    if (await page.getByRole('button', { name: 'Delete role admin' }).count()) throw new Error('a built-in role offers delete');
    await reloaded(page, 'Roles', page.getByRole('row', { name: /support/ }));
    await check(page, 'roles', t.problems);
  });

  await t.step('signing keys: rotate, and the JWKS holds both', async () => {
    await open(page, 'signing-keys', 'Signing keys');
    const rows = page.locator('table tbody tr');
    await rows.first().waitFor();
    if ((await rows.count()) !== 1) throw new Error(`${await rows.count()} keys before rotating`);
    const before = await rows.first().locator('td').first().textContent();
    await page.getByRole('button', { name: 'Rotate signing key' }).click();
    await confirm(page, 'Rotate key');
    await page.locator('table tbody tr').nth(1).waitFor();
    const states = await page.locator('table tbody tr td:nth-child(3)').allTextContents();
    if (states.join('|') !== 'Signs and verifies|Verifies only') throw new Error(`states ${states.join('|')}`);
    const retired = await rows.nth(1).locator('td').first().textContent();
    if (retired !== before) throw new Error(`the retired key is ${retired}, not ${before}`);
    const kids = await page.evaluate(async () => (await (await fetch('/.well-known/jwks.json')).json()).keys.map((k) => k.kid));
    if (kids.length !== 2 || !kids.includes(before)) throw new Error(`JWKS holds ${kids.join(', ')}`);
    await reloaded(page, 'Signing keys', page.locator('table tbody tr').nth(1));
    await check(page, 'signing-keys', t.problems);
  });

  await t.step('S2S: issue a token, shown once', async () => {
    await open(page, 's2s', 'Server-to-server tokens');
    await page.getByRole('row', { name: /nightly-export/ }).waitFor();
    await page.getByRole('button', { name: 'Issue token' }).click();
    // The admin may issue every role.
    await page.getByRole('dialog').getByLabel('Role').waitFor();
    const roles = await page.getByRole('dialog').getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (roles.join('|') !== 'reseller|merchant|user') throw new Error(`roles offered: ${roles.join('|')}`);
    await submitDialog(page, [['Name', 'billing-sync'], ['Role', 'merchant'], ['Reseller', 'acme'], ['Merchant', 'acme-shop'], ['Lifetime', '86400']], 'Issue token');
    const shown = page.getByRole('dialog', { name: 'Token billing-sync issued' });
    const secret = (await shown.locator('code').textContent()).trim();
    if (!secret.startsWith('s2s_')) throw new Error(`secret ${secret}`);
    await shown.getByText('It is shown only once').waitFor();
    await shown.getByRole('button', { name: 'Copy' }).waitFor();
    secrets.s2s = secret;
    await check(page, 's2s-token-issued', t.problems);
    await shown.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('row', { name: /billing-sync/ }).getByText('Active').waitFor();
    // Never again: not on the page, not after a reload.
    await page.reload();
    await page.getByRole('row', { name: /billing-sync/ }).waitFor();
    if ((await page.content()).includes(secret)) throw new Error('the secret is shown again');
    await check(page, 's2s', t.problems);
  });

  await t.step('API keys: create one for another account, shown once', async () => {
    await open(page, 'keys', 'API keys');
    await page.getByRole('row', { name: /deploy-bot/ }).waitFor();
    await page.getByRole('button', { name: 'Create key' }).click();
    await submitDialog(page, [['Account', 'nobody-here'], ['Key name', 'reporting']], 'Create key');
    await page.getByRole('dialog').getByText('No account you manage is called nobody-here.').waitFor();
    await submitDialog(page, [['Account', keyOwner]], 'Create key');
    const shown = page.getByRole('dialog', { name: `Key reporting created for ${keyOwner}` });
    const secret = (await shown.locator('code').textContent()).trim();
    await shown.getByText('It is shown only once').waitFor();
    secrets.key = secret;
    await shown.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('row', { name: /reporting/ }).getByRole('link', { name: keyOwner }).waitFor();
    await page.reload();
    await page.getByRole('row', { name: /reporting/ }).waitFor();
    if ((await page.content()).includes(secret)) throw new Error('the secret is shown again');
    await check(page, 'keys', t.problems);
  });

  writeFileSync(out, JSON.stringify(secrets));
});
