// Signing keys: the keys the JWKS publishes, and rotation. The new key
// signs every token from then on; the old one stays published and keeps
// verifying until the last token it signed has expired. Admins only.

import { api, message } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, confirmAction, fill, h, pageHead, say, stackable, table, toast, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 'signing-keys',
  title: 'Signing keys',
  nav: 'Signing keys',
  visible: (ctx) => ctx.level === 'admin',
  render,
};

async function render(main, ctx) {
  const error = alertBox();
  error.tabIndex = -1;
  const list = h('div', { class: 'card' }, h('p', { class: 'muted', text: 'Loading keys…' }));
  const reload = () => load(list, error);
  const rotate = button('Rotate signing key', () => doRotate(rotate, error, reload), 'primary');
  fill(main, 
    pageHead('Signing keys', rotate),
    h('p', { class: 'muted intro' },
      'Access tokens are signed with the active key (ES256). Verifiers find every published key at ',
      h('a', { href: '/.well-known/jwks.json', text: '/.well-known/jwks.json' }),
      '. After a rotation the retired key stays published until the last token it signed has expired.'),
    error,
    list,
  );
  await reload();
}

async function load(holder, error) {
  const r = await api('GET', '/api/v1/admin/signing-keys?limit=1000');
  if (r.status !== 200) {
    say(error, message(r, 'The signing keys could not be loaded.'));
    fill(holder, );
    return;
  }
  fill(holder, stackable(table({
    caption: 'Signing keys, the active one first',
    empty: 'No signing key is published.',
    rows: r.body.items || [],
    columns: [
      { label: 'Key id', cell: (k) => h('code', { class: 'mono', text: k.kid }) },
      { label: 'Algorithm', cell: (k) => k.algorithm },
      { label: 'State', cell: (k) => (k.state === 'active' ? badge('Signs and verifies', 'ok') : badge('Verifies only', 'warn')) },
      { label: 'Created', cell: (k) => when(k.created_at) },
      { label: 'Retired', cell: (k) => when(k.retired_at) },
      { label: 'Published until', cell: (k) => (k.state === 'active' ? h('span', { class: 'muted', text: 'While active' }) : when(k.verify_until)) },
    ],
  })));
}

async function doRotate(rotate, error, reload) {
  const yes = await confirmAction({
    title: 'Rotate the signing key?',
    body: 'A new key will sign every token from now on. The current key stops signing but stays in the JWKS, so the tokens it signed keep verifying until they expire; then it is removed. Verifiers that cache the JWKS must fetch it again to see the new key.',
    confirm: 'Rotate key',
    danger: false,
  });
  if (!yes) return;
  say(error, '');
  const restore = busy(rotate, 'Rotating…');
  const r = await api('POST', '/api/v1/admin/signing-keys/rotate');
  restore();
  if (r.status === 201 || r.status === 200) {
    toast(`Rotated: key ${r.body.kid} now signs.`);
    await reload();
    return;
  }
  say(error, message(r, 'The key could not be rotated.'));
  error.focus();
}
