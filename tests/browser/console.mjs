// Sign-in and "My account" in Debian's Chromium (see lib.mjs). Run by
// tests/it/console_browser.rs against a server it started.
//
// Environment: LATCHKEY_URL, LATCHKEY_USER, LATCHKEY_OLD_PASSWORD,
// LATCHKEY_NEW_PASSWORD.

import { base, check, run, signIn } from './lib.mjs';

const user = process.env.LATCHKEY_USER;
const oldPassword = process.env.LATCHKEY_OLD_PASSWORD;
const newPassword = process.env.LATCHKEY_NEW_PASSWORD;

await run(async (t) => {
  const page = await t.newPage();

  await t.step('open the console', async () => {
    const r = await page.goto(`${base}/admin/`);
    if (!r || r.status() !== 200) throw new Error(`status ${r && r.status()}`);
    await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
    await check(page, 'sign-in', t.problems);
  });

  await t.step('sign in', async () => {
    await signIn(page, user, oldPassword);
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    await page.locator('#me-username').filter({ hasText: user }).waitFor();
    await page.getByText('This session').waitFor();
    if (!page.url().endsWith('#/account')) throw new Error(`url ${page.url()}`);
    // A plain user is offered "My account" and nothing else.
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    if (links.join('|') !== 'My account') throw new Error(`navigation offers ${links.join(', ')}`);
    await check(page, 'my-account-user', t.problems);
  });

  await t.step('a wrong current password is refused beside its field', async () => {
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Repeat new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.locator('#current-password-error').filter({ hasText: /\S/ }).waitFor();
  });

  await t.step('change the password', async () => {
    await page.getByLabel('Current password').fill(oldPassword);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Repeat new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
  });

  await t.step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to latchkey' }).waitFor();
  });

  await t.step("the old password fails with the API's words", async () => {
    await page.getByLabel('Username or email').fill(user);
    await page.getByLabel('Password', { exact: true }).fill(oldPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid credentials' }).waitFor();
  });

  await t.step('the new password signs in', async () => {
    await signIn(page, user, newPassword);
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
  });
});
