// The admin pages in Debian's Chromium (see lib.mjs), as a reseller and
// as a merchant: only their own subtree is shown, and no control is
// offered for what the API would refuse them (no signing keys, no new
// reseller, no renaming or deleting their reseller, no custom roles; for
// a merchant no tenant changes and no reseller token).
//
// Environment: LATCHKEY_URL, LATCHKEY_USER, LATCHKEY_PASSWORD (a reseller
// of `acme`), LATCHKEY_MERCHANT_USER, LATCHKEY_MERCHANT_PASSWORD (a
// merchant of `acme-shop`); another reseller, `other`, exists with a
// merchant and a token, and `acme-cafe` is a second merchant of `acme`.

import { base, check, open, run, signIn } from './lib.mjs';

const user = process.env.LATCHKEY_USER;
const password = process.env.LATCHKEY_PASSWORD;
const merchantUser = process.env.LATCHKEY_MERCHANT_USER;
const merchantPassword = process.env.LATCHKEY_MERCHANT_PASSWORD;

const row = (page, id) => page.locator(`li[data-tenant="${id}"] > .tenant`);

async function none(page, role, name) {
  const n = await page.getByRole(role, { name }).count();
  if (n) throw new Error(`the page offers ${role} "${name}"`);
}

await run(async (t) => {
  const page = await t.newPage();

  await t.step('sign in as a reseller: no signing-keys page', async () => {
    await signIn(page, user, password);
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    if (links.includes('Signing keys')) throw new Error(`navigation offers ${links.join(', ')}`);
    for (const want of ['Tenants', 'API keys', 'S2S tokens', 'Audit log']) {
      if (!links.includes(want)) throw new Error(`navigation lacks ${want}: ${links.join(', ')}`);
    }
    // Asked for by URL, the page is not shown either.
    await page.goto(`${base}/admin/#/signing-keys`);
    await page.waitForFunction(() => !location.hash.startsWith('#/signing-keys'));
    await none(page, 'heading', 'Signing keys');
  });

  await t.step('tenants: its own reseller and merchants only', async () => {
    await open(page, 'tenants', 'Tenants');
    await row(page, 'acme').waitFor();
    await row(page, 'acme-shop').waitFor();
    if (await page.locator('li[data-tenant="other"], li[data-tenant="other-shop"]').count()) throw new Error('another reseller is shown');
    await none(page, 'button', 'New reseller');
    await none(page, 'button', /^Rename Acme Resale$/);
    await none(page, 'button', /^Delete Acme Resale$/);
    // Its merchants it may manage.
    await page.getByRole('button', { name: 'New merchant' }).waitFor();
    await row(page, 'acme-shop').getByRole('button', { name: /^Rename / }).waitFor();
    await check(page, 'tenants-reseller', t.problems);
  });

  await t.step('tenants: create a merchant under its reseller', async () => {
    await page.getByRole('button', { name: 'New merchant' }).click();
    const dialog = page.getByRole('dialog');
    if (!(await dialog.getByLabel('Reseller').isDisabled())) throw new Error('the reseller can be chosen');
    await dialog.getByLabel('Name', { exact: true }).fill('Acme Kiosk');
    await dialog.getByLabel('Id', { exact: true }).fill('acme-kiosk');
    await dialog.getByRole('button', { name: 'Create merchant' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('li[data-tenant="acme"] li[data-tenant="acme-kiosk"]').waitFor();
  });

  await t.step('roles: no custom-role controls', async () => {
    await open(page, 'roles', 'Roles');
    await page.getByRole('row', { name: /support/ }).waitFor();
    await none(page, 'button', 'New role');
    await none(page, 'button', /^Delete role/);
  });

  await t.step('S2S: its tenants only, and only what it may issue', async () => {
    await open(page, 's2s', 'Server-to-server tokens');
    await page.getByRole('row', { name: /nightly-export/ }).waitFor();
    if (await page.getByRole('row', { name: /other-feed/ }).count()) throw new Error("another reseller's token is shown");
    await page.getByRole('button', { name: 'Issue token' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reseller').waitFor();
    const resellers = await dialog.getByLabel('Reseller').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (resellers.join('|') !== 'acme') throw new Error(`resellers offered: ${resellers.join('|')}`);
    if (!(await dialog.getByLabel('Reseller').isDisabled())) throw new Error('the reseller can be chosen');
    await dialog.getByLabel('Role').selectOption('merchant');
    const merchants = await dialog.getByLabel('Merchant').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (merchants.includes('other-shop') || !merchants.includes('acme-shop')) throw new Error(`merchants offered: ${merchants.join('|')}`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  await t.step('audit: its subtree only', async () => {
    await open(page, 'audit', 'Audit log');
    await page.locator('.audit-results tbody tr').first().waitFor();
    const tenants = await page.getByLabel('Tenant').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (tenants.some((v) => v.includes('other'))) throw new Error(`tenants offered: ${tenants.join('|')}`);
    const shown = await page.locator('.audit-results tbody tr').allTextContents();
    if (shown.some((r) => r.includes('other'))) throw new Error('an event of another reseller is shown');
    if (!shown.some((r) => r.includes('acme-kiosk'))) throw new Error('its own merchant_created is missing');
  });

  const shop = await t.newPage();

  await t.step('sign in as a merchant: its merchant only, no tenant changes', async () => {
    await signIn(shop, merchantUser, merchantPassword);
    const links = await shop.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    if (links.includes('Signing keys')) throw new Error(`navigation offers ${links.join(', ')}`);
    await open(shop, 'tenants', 'Tenants');
    await row(shop, 'acme-shop').waitFor();
    if (await shop.locator('li[data-tenant="acme-cafe"], li[data-tenant="acme"], li[data-tenant="other"]').count()) throw new Error('a tenant beyond its merchant is shown');
    await none(shop, 'button', 'New reseller');
    await none(shop, 'button', 'New merchant');
    await none(shop, 'button', /^Rename /);
    await none(shop, 'button', /^Delete /);
    await check(shop, 'tenants-merchant', t.problems);
  });

  await t.step('S2S as a merchant: no reseller token, its own tenant fixed', async () => {
    await open(shop, 's2s', 'Server-to-server tokens');
    await shop.getByRole('row', { name: /nightly-export/ }).waitFor();
    await shop.getByRole('button', { name: 'Issue token' }).click();
    const dialog = shop.getByRole('dialog');
    await dialog.getByLabel('Role').waitFor();
    const roles = await dialog.getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (roles.join('|') !== 'merchant|user') throw new Error(`roles offered: ${roles.join('|')}`);
    const merchants = await dialog.getByLabel('Merchant').locator('option').evaluateAll((os) => os.map((o) => o.value));
    if (merchants.join('|') !== 'acme-shop') throw new Error(`merchants offered: ${merchants.join('|')}`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });
});
