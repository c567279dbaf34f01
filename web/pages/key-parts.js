// API key parts shared by "My keys" (My account) and an account's keys
// (Accounts): the list, the create form and revoking. Not a page of its
// own. The secret of a new key is shown once, in a dialog, and kept
// nowhere.

import { api, message, fieldOf } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, clearErrors, confirmAction, field, fieldError, h, modal, say, showSecret, table, toast, uid, when } from '{{asset lib/dom.js}}';

/** How long a new key lives, offered as a choice: [seconds or '', label]. */
const EXPIRIES = [
  ['', 'Never expires'],
  [String(30 * 86400), '30 days'],
  [String(90 * 86400), '90 days'],
  [String(365 * 86400), '1 year'],
];

/** Whether a key's expiry has passed. */
function expired(key) {
  const at = key.expiresAt || key.expires_at;
  return at ? new Date(at).getTime() <= Date.now() : false;
}

/** The keys as a table. `spec`: { keys, caption, empty, onRevoke(key) }. */
export function keyTable(spec) {
  return table({
    caption: spec.caption,
    empty: spec.empty,
    rows: spec.keys,
    columns: [
      {
        label: 'Name',
        cell: (k) => h('span', { class: 'who-cell' },
          h('span', { class: 'key-name' }, k.name, expired(k) ? badge('Expired', 'warn') : null),
          h('span', { class: 'narrow-only muted' }, 'Last used ', k.lastUsed ? when(k.lastUsed) : 'never', ' · expires ', k.expiresAt ? when(k.expiresAt) : 'never')),
      },
      { label: 'Key id', class: 'wide-only', cell: (k) => h('span', { class: 'mono', text: k.keyId }) },
      { label: 'Roles', class: 'wide-only', cell: (k) => (k.roles || (k.role ? [k.role] : null) || ['all of the account\'s']).join(', ') },
      { label: 'Created', class: 'wide-only', cell: (k) => when(k.createdAt) },
      { label: 'Last used', class: 'wide-only', cell: (k) => (k.lastUsed ? when(k.lastUsed) : h('span', { class: 'muted', text: 'Never' })) },
      { label: 'Expires', class: 'wide-only', cell: (k) => (k.expiresAt ? when(k.expiresAt) : h('span', { class: 'muted', text: 'Never' })) },
      {
        label: 'Actions',
        class: 'row-actions',
        cell: (k) => button('Revoke', () => spec.onRevoke(k), 'subtle small', { attrs: { 'aria-label': `Revoke key ${k.name}` } }),
      },
    ],
  });
}

/** Asks, then revokes one key at `path`; resolves to true when it went. */
export async function revokeKey(key, path) {
  const yes = await confirmAction({
    title: 'Revoke this API key?',
    body: `"${key.name}" (${key.keyId}) stops working at once, for every program that uses it. This cannot be undone.`,
    confirm: 'Revoke key',
  });
  if (!yes) return false;
  const r = await api('DELETE', path);
  if (r.status === 204 || r.status === 200) {
    toast(`Key "${key.name}" revoked.`);
    return true;
  }
  toast(message(r, 'The key could not be revoked.'), 'error');
  return false;
}

/** The create-a-key dialog: a name and an expiry, POSTed to `path`; the
 * secret is then shown once. `whose`: words for the dialog ("your
 * account", "dana"). Resolves to true when a key was made. */
export function createKeyDialog(path, whose) {
  return new Promise((resolve) => {
    let made = false;
    const error = alertBox();
    const name = field({ name: 'name', label: 'Name', required: true, help: 'What the key is for, so you know it when you see it in the list.' });
    const expiry = field({ name: 'expiresIn', label: 'Expires', type: 'select', options: EXPIRIES, value: String(90 * 86400) });
    const fields = [name, expiry];
    const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
    const submit = h('button', { class: 'button primary', type: 'submit', text: 'Create key' });
    const form = h('form', { id: uid('create-key'), novalidate: true },
      h('p', { class: 'muted', text: `The key acts as ${whose} with the account's roles.` }), error, name.root, expiry.root);
    submit.setAttribute('form', form.id);
    const { dialog, close } = modal('Create an API key', form, [cancel, submit]);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(fields);
      say(error, '');
      if (!name.input.value.trim()) return void fieldError(fields, 'name', 'Give the key a name.');
      const body = { name: name.input.value.trim() };
      if (expiry.input.value) body.expiresIn = Number(expiry.input.value);
      const done = busy(submit, 'Creating…');
      const r = await api('POST', path, body);
      done();
      if (r.status === 201 || r.status === 200) {
        made = true;
        close();
        resolve(true);
        showSecret({ title: 'Your new API key', secret: r.body.apiKey, label: 'API key', note: `Key "${r.body.name}" (${r.body.keyId}).` });
        return;
      }
      const text = message(r, 'The key could not be created.');
      const named = fieldOf(r);
      if (named && fieldError(fields, named === 'expires_in' ? 'expiresIn' : named, text)) return;
      say(error, text);
    });
    dialog.addEventListener('close', () => {
      if (!made) resolve(false);
    });
    name.input.focus();
  });
}
