// API keys across the accounts the caller manages: create one for an
// account (the secret is shown once, with a copy button and a plain
// warning), see each with its owner, last use and expiry, revoke.
// `?user_id=` narrows the list to one account.

import { api, fieldOf, message, qs } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, confirmAction, field, fill, formDialog, h, modal, more, noticeBox, pageHead, say, secretBox, stackable, table, toast, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 'keys',
  title: 'API keys',
  nav: 'API keys',
  visible: (ctx) => ctx.level === 'admin' || ctx.level === 'reseller' || ctx.level === 'merchant',
  render,
};

const LIFETIMES = [
  ['2592000', '30 days'],
  ['7776000', '90 days'],
  ['31536000', '1 year'],
  ['', 'No expiry'],
];

async function render(main, ctx) {
  const error = alertBox();
  error.tabIndex = -1;
  const list = h('div', { class: 'card' }, h('p', { class: 'muted', text: 'Loading keys…' }));
  const reload = () => load(list, ctx, error, reload);
  fill(main, 
    pageHead('API keys', button('Create key', () => create(ctx, reload), 'primary')),
    h('p', { class: 'muted intro', text: 'Keys let a script act as an account without its password. A key is shown once when created; latchkey keeps only its digest.' }),
    ownerNotice(ctx),
    error,
    list,
  );
  await reload();
}

function ownerNotice(ctx) {
  const p = ctx.params;
  if (!p.get('user_id') && !p.get('reseller_id') && !p.get('merchant_id')) return null;
  const n = noticeBox();
  n.hidden = false;
  n.append(p.get('user_id') ? 'Showing the keys of one account. ' : 'Showing the keys of one tenant\'s accounts. ', h('a', { href: '#/keys', text: 'Show all keys' }));
  return n;
}

function keyState(k) {
  if (k.expired) return badge('Expired', 'warn');
  if (k.owner && k.owner.disabled) return badge('Owner disabled', 'warn');
  return badge('Active', 'ok');
}

/** One page of keys, each with its owner. `?user_id=`, `?reseller_id=`
 * and `?merchant_id=` narrow the list as the API does. */
async function fetchKeys(ctx, cursor) {
  const p = ctx.params;
  const r = await api('GET', `/api/v1/admin/keys${qs({
    owner: p.get('user_id'),
    reseller_id: p.get('reseller_id'),
    merchant_id: p.get('merchant_id'),
    limit: 100,
    cursor,
  })}`);
  if (r.status !== 200) return { error: r };
  return { items: r.body.items || [], next: r.body.next };
}

async function load(holder, ctx, error, reload) {
  const rows = [];
  const show = async (cursor) => {
    const got = await fetchKeys(ctx, cursor);
    if (got.error) {
      say(error, message(got.error, 'The keys could not be loaded.'));
      fill(holder, );
      return;
    }
    rows.push(...got.items);
    fill(holder, 
      stackable(table({
        caption: 'API keys',
        empty: ctx.params.get('user_id') ? 'This account has no API keys.' : 'No API keys yet. Create one for an account a script acts as.',
        rows,
        columns: [
          { label: 'Name', cell: (k) => h('span', { class: 'token-name' }, h('strong', { text: k.name }), h('code', { class: 'mono muted', text: k.keyId })) },
          { label: 'Owner', cell: (k) => h('a', { href: `#/keys?user_id=${encodeURIComponent(k.owner.id)}`, text: k.owner.username, attrs: { title: `Only the keys of ${k.owner.username}` } }) },
          { label: 'Roles', cell: (k) => (k.roles ? k.roles.join(', ') : k.role || h('span', { class: 'muted', text: 'As its owner' })) },
          { label: 'Created', cell: (k) => when(k.createdAt) },
          { label: 'Last used', cell: (k) => (k.lastUsed ? when(k.lastUsed) : h('span', { class: 'muted', text: 'Never' })) },
          { label: 'Expires', cell: (k) => (k.expiresAt ? when(k.expiresAt) : h('span', { class: 'muted', text: 'Never' })) },
          { label: 'State', cell: (k) => keyState(k) },
          { label: 'Actions', class: 'row-actions', cell: (k) => button('Revoke', (e) => revoke(k, error, reload, e.currentTarget), 'subtle small danger-text', { attrs: { 'aria-label': `Revoke key ${k.name}` } }) },
        ],
      })),
      more(got.next, (next) => show(next)),
    );
  };
  await show('');
}

/** The account a username or email names among those the caller
 * manages, or null. */
async function findAccount(text) {
  const r = await api('GET', `/api/v1/admin/users${qs({ q: text, limit: 50 })}`);
  if (r.status !== 200) return null;
  const want = text.toLowerCase();
  return (r.body.items || []).find((a) => a.username.toLowerCase() === want || (a.email || '').toLowerCase() === want) || null;
}

async function create(ctx, reload) {
  const preset = ctx.params.get('user_id');
  let presetName = '';
  if (preset) {
    const r = await api('GET', `/api/v1/admin/users/${encodeURIComponent(preset)}`);
    if (r.status === 200) presetName = r.body.username;
  }
  const owner = field({ name: 'account', label: 'Account', value: presetName, required: true, help: 'The username or email of the account the key acts as.' });
  const name = field({ name: 'name', label: 'Key name', required: true, help: 'What the key is for, such as the script that holds it.' });
  const lifetime = field({ name: 'expires_in', label: 'Expires after', type: 'select', options: LIFETIMES, value: '7776000' });
  let created = null;
  const ok = await formDialog({
    title: 'Create an API key',
    fields: [owner, name, lifetime],
    submit: 'Create key',
    busy: 'Creating…',
    send: async () => {
      const who = await findAccount(owner.input.value.trim());
      if (!who) return { field: 'account', text: `No account you manage is called ${owner.input.value.trim()}.` };
      const body = { name: name.input.value.trim() };
      if (lifetime.input.value) body.expiresIn = Number(lifetime.input.value);
      // Through the admin route even for the caller's own account, so it
      // is audited as made by a manager; it may ask for the password
      // again first.
      const r = await api('POST', `/api/v1/admin/users/${encodeURIComponent(who.id)}/keys`, body);
      if (r.status === 201 || r.status === 200) {
        created = { ...r.body, username: who.username };
        return null;
      }
      const named = fieldOf(r);
      return { field: named === 'expiresIn' || named === 'expires_in' ? 'expires_in' : named, text: message(r, 'The key could not be created.') };
    },
  });
  if (!ok || !created) return;
  await reload();
  const done = h('button', { class: 'button primary', type: 'button', value: 'cancel', text: 'Done' });
  modal(`Key ${created.name} created for ${created.username}`, [
    secretBox(created.apiKey, 'key'),
    h('p', { class: 'muted', text: 'Send it in the Authorization header as a Bearer token. It acts as its account.' }),
  ], [done]);
  done.focus();
}

async function revoke(k, error, reload, control) {
  const yes = await confirmAction({
    title: `Revoke key ${k.name}?`,
    body: `Scripts using ${k.name} (a key of ${k.owner.username}) are refused from their next request on. This cannot be undone.`,
    confirm: 'Revoke key',
  });
  if (!yes) return;
  say(error, '');
  const restore = busy(control, 'Revoking…');
  const r = await api('DELETE', `/api/v1/admin/users/${encodeURIComponent(k.owner.id)}/keys/${encodeURIComponent(k.keyId)}`);
  restore();
  if (r.status === 204) {
    toast(`Key ${k.name} revoked.`);
    await reload();
    return;
  }
  say(error, message(r, 'The key could not be revoked.'));
  error.focus();
}
