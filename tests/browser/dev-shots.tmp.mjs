import { check, run, signIn, open } from './lib.mjs';
const who = process.env.WHO || 'admin';
const pw = process.env.PW || 'correct horse battery staple';
const pages = (process.env.PAGES || 'overview:Overview').split(',');
await run(async (t) => {
  const page = await t.newPage();
  await signIn(page, who, pw);
  for (const spec of pages) {
    const [hash, heading, name] = spec.split(':');
    await t.step(hash, async () => {
      await open(page, hash, heading);
      await page.waitForTimeout(300);
      await check(page, name || hash.replace(/[^a-z0-9]+/gi, '-'), t.problems);
    });
  }
});
