import { check, run, signIn, open } from './lib.mjs';
await run(async (t) => {
  const page = await t.newPage();
  await signIn(page, 'admin', 'correct horse battery staple');
  await t.step('dialog', async () => {
    await open(page, 'accounts', 'Accounts');
    await page.getByRole('button', { name: 'New account' }).click();
    await page.getByRole('dialog', { name: 'New account' }).waitFor();
    await check(page, 'dev-create', t.problems);
  });
});
