// My account: every signed-in account's own page (profile, password,
// sessions).

import { api, message, fieldOf } from '{{asset lib/api.js}}';
import { alertBox, busy, button, card, clearErrors, field, fieldError, h, noticeBox, say, table, when, badge } from '{{asset lib/dom.js}}';
import { createKeyDialog, keyTable, revokeKey } from '{{asset pages/key-parts.js}}';

export const page = {
  id: 'account',
  title: 'My account',
  nav: 'My account',
  visible: () => true,
  render,
};

async function render(main, ctx) {
  const r = await api('GET', '/api/v1/auth/me');
  if (r.status !== 200) {
    main.replaceChildren(h('p', { class: 'alert', attrs: { role: 'alert' }, text: message(r, 'Your account could not be loaded.') }));
    return;
  }
  const me = r.body;
  const sessions = h('div');
  const myKeys = h('div');
  main.replaceChildren(
    h('h1', { text: 'My account', tabIndex: -1 }),
    h('div', { class: 'grid' },
      card('Profile', h('dl', { class: 'facts' },
        h('dt', { text: 'Username' }), h('dd', { id: 'me-username', text: me.username || me.name || '' }),
        h('dt', { text: 'Email' }), h('dd', { id: 'me-email', text: me.email || '—' }),
        h('dt', { text: 'Roles' }), h('dd', { id: 'me-roles', text: (me.roles || []).join(', ') || '—' }),
        h('dt', { text: 'Member since' }), h('dd', { id: 'me-created' }, when(me.created_at)))),
      passwordCard(ctx, () => loadSessions(sessions))),
    sessions,
    myKeys,
  );
  await Promise.all([loadSessions(sessions), loadKeys(myKeys)]);
}

function passwordCard(ctx, reloadSessions) {
  const error = alertBox();
  const done = noticeBox();
  const current = field({ name: 'current_password', label: 'Current password', type: 'password', autocomplete: 'current-password', required: true });
  const next = field({ name: 'new_password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true });
  const confirm = field({ name: 'confirm_password', label: 'Repeat new password', type: 'password', autocomplete: 'new-password', required: true });
  // The existing ids the page has always had.
  current.error.id = 'current-password-error';
  current.input.setAttribute('aria-describedby', current.error.id);
  const fields = [current, next, confirm];
  const submit = h('button', { class: 'button primary', type: 'submit', text: 'Change password' });
  const form = h('form', { novalidate: true }, error, done, current.root, next.root, confirm.root, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(fields);
    say(error, '');
    say(done, '');
    if (!current.input.value) return void fieldError(fields, 'current_password', 'Enter your current password.');
    if (!next.input.value) return void fieldError(fields, 'new_password', 'Enter a new password.');
    if (next.input.value !== confirm.input.value) return void fieldError(fields, 'confirm_password', 'The two new passwords differ.');
    const restore = busy(submit, 'Changing…');
    const r = await api('POST', '/api/v1/auth/password', {
      current_password: current.input.value,
      new_password: next.input.value,
    }, { quiet401: true });
    restore();
    if (r.status === 204) {
      form.reset();
      say(done, 'Password changed. Your other sessions have ended; this one stays signed in.');
      reloadSessions();
      return;
    }
    const text = message(r, 'The password could not be changed.');
    if (r.status === 401 && text === 'Authentication required') return ctx.signedOut();
    const named = fieldOf(r);
    if (named && fieldError(fields, named, text)) return;
    // A wrong current password is the API's 401 or 403.
    if (r.status === 401 || r.status === 403) return void fieldError(fields, 'current_password', text);
    say(error, text);
  });
  return card('Change password', form);
}

async function loadSessions(holder) {
  const error = alertBox();
  const refresh = button('Refresh', () => loadSessions(holder));
  const r = await api('GET', '/api/v1/auth/sessions?limit=100');
  let content;
  if (r.status !== 200) {
    content = error;
    say(error, message(r, 'Your sessions could not be loaded.'));
  } else {
    content = table({
      caption: 'Your live sessions, newest first',
      empty: 'No live sessions.',
      rows: r.body.items || [],
      columns: [
        { label: 'Started', cell: (s) => h('span', {}, when(s.created_at), s.current ? badge('This session', 'ok') : null) },
        { label: 'Last used', cell: (s) => when(s.last_used_at) },
        { label: 'Expires', class: 'wide-only', cell: (s) => when(s.expires_at) },
        { label: 'Address', class: 'wide-only', cell: (s) => s.client_ip },
        { label: 'Client', class: 'client wide-only', cell: (s) => s.user_agent },
      ],
    });
  }
  holder.replaceChildren(h('section', { class: 'card', attrs: { 'aria-labelledby': 'sessions-title' } },
    h('div', { class: 'card-head' }, h('h2', { id: 'sessions-title', text: 'My sessions' }), refresh),
    content));
}

// My keys: the signed-in account's own API keys.

const MY_KEYS = '/api/v1/auth/keys';

async function loadKeys(holder) {
  const create = button('Create key', async () => {
    if (await createKeyDialog(MY_KEYS, 'your account')) loadKeys(holder);
  }, 'primary');
  const r = await api('GET', MY_KEYS);
  let content;
  if (r.status !== 200) {
    content = alertBox();
    say(content, message(r, 'Your API keys could not be loaded.'));
  } else {
    const keys = Array.isArray(r.body) ? r.body : (r.body && r.body.items) || [];
    content = keyTable({
      keys,
      caption: 'Your API keys',
      empty: 'You have no API keys. A key lets a program act as you without your password.',
      onRevoke: async (k) => {
        if (await revokeKey(k, `${MY_KEYS}/${encodeURIComponent(k.keyId)}`)) loadKeys(holder);
      },
    });
  }
  holder.replaceChildren(h('section', { class: 'card', attrs: { 'aria-labelledby': 'my-keys-title' } },
    h('div', { class: 'card-head' }, h('h2', { id: 'my-keys-title', text: 'My keys' }), create),
    content));
}
