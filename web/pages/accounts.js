// Accounts: the list (`#/accounts?q=&role=&tenant=&state=`, searched and
// filtered by the server, with bulk actions and CSV export) and one
// account (`#/accounts/<id>`: edit, password, unlock, disable, delete,
// sessions, keys). Everything is offered as the API scopes it: a reseller
// or merchant sees its own subtree, and the role picker holds only the
// roles the signed-in account may grant (never one stronger than its
// own).

import { api, download, fieldOf, message, qs } from '{{asset lib/api.js}}';
import {
  alertBox, badge, busy, button, card, clearErrors, confirmAction, field, fieldError, h, modal, more,
  pageHead, say, table, toast, uid, when,
} from '{{asset lib/dom.js}}';
import { createKeyDialog, keyTable, revokeKey } from '{{asset pages/key-parts.js}}';

export const page = {
  id: 'accounts',
  title: 'Accounts',
  nav: 'Accounts',
  visible: (ctx) => ctx.level !== 'user',
  render: (main, ctx) => (ctx.rest[0] ? renderOne(main, ctx, ctx.rest[0]) : renderList(main, ctx)),
};

const USERS = '/api/v1/admin/users';
const PAGE_SIZE = 50;
const BUILTIN = ['admin', 'reseller', 'merchant', 'user'];

/** Strength of a role, as the API ranks it (src/domain/rbac.rs). */
function strength(role) {
  return { admin: 4, reseller: 3, merchant: 2 }[role] || 1;
}

/** Whether the signed-in account may give `role` to an account: never a
 * role stronger than its own; custom roles count as `user`. */
function mayGrant(ctx, role) {
  return strength(role) <= strength(ctx.level);
}

const userPath = (id) => `${USERS}/${encodeURIComponent(id)}`;

// ---- choices: roles and tenants the signed-in account can see ----

/** Roles and tenants for pickers and labels, as far as the API shows them. */
async function loadChoices(ctx) {
  const all = (path) => api('GET', `${path}?limit=1000`).then((r) => (r.status === 200 && r.body && r.body.items) || []);
  const [roles, resellers, merchants] = await Promise.all([
    all('/api/v1/admin/roles'),
    ctx.level === 'admin' || ctx.level === 'reseller' ? all('/api/v1/admin/resellers') : [],
    all('/api/v1/admin/merchants'),
  ]);
  const names = roles.length ? roles.map((r) => r.name) : BUILTIN;
  const resellerName = new Map(resellers.map((r) => [r.id, r.name]));
  const merchantName = new Map(merchants.map((m) => [m.id, m.name]));
  // Resellers, each followed by its merchants.
  const tenants = [];
  for (const r of resellers) {
    tenants.push({ value: `r:${r.id}`, label: r.name, reseller_id: r.id, merchant_id: null });
    for (const m of merchants.filter((x) => x.reseller_id === r.id)) {
      tenants.push({ value: `m:${m.id}`, label: `${r.name} › ${m.name}`, reseller_id: r.id, merchant_id: m.id });
    }
  }
  for (const m of merchants.filter((x) => !resellerName.has(x.reseller_id))) {
    tenants.push({ value: `m:${m.id}`, label: m.name, reseller_id: m.reseller_id, merchant_id: m.id });
  }
  return {
    roles: names,
    grantable: names.filter((n) => mayGrant(ctx, n)),
    tenants,
    tenantLabel: (a) => {
      if (a.merchant_id) return merchantName.get(a.merchant_id) || a.merchant_id;
      if (a.reseller_id) return resellerName.get(a.reseller_id) || a.reseller_id;
      return null;
    },
  };
}

/** The tenant value (`r:<id>`, `m:<id>` or '') an account sits in. */
function tenantValue(a) {
  if (a.merchant_id) return `m:${a.merchant_id}`;
  if (a.reseller_id) return `r:${a.reseller_id}`;
  return '';
}

function stateBadge(a) {
  return a.disabled ? badge('Disabled', 'danger') : badge('Active', 'ok');
}

function roleBadges(roles) {
  return h('span', { class: 'roles' }, (roles || []).map((r) => badge(r, r === 'admin' ? 'warn' : 'neutral')));
}

// ---- the list ----

/** The filters as the URL keeps them, and as the API takes them. */
function filtersOf(params) {
  return {
    q: params.get('q') || '',
    role: params.get('role') || '',
    tenant: params.get('tenant') || '',
    state: params.get('state') || '',
  };
}

function apiQuery(f) {
  const q = { q: f.q, role: f.role, state: f.state };
  if (f.tenant.startsWith('r:')) q.reseller_id = f.tenant.slice(2);
  if (f.tenant.startsWith('m:')) q.merchant_id = f.tenant.slice(2);
  return q;
}

async function renderList(main, ctx) {
  const choices = await loadChoices(ctx);
  let filters = filtersOf(ctx.params);
  const selected = new Set();
  let rows = [];
  let next = null;

  const search = field({ name: 'q', label: 'Search', type: 'search', value: filters.q, placeholder: 'Username or email' });
  search.root.classList.add('grow');
  const role = field({ name: 'role', label: 'Role', type: 'select', value: filters.role, options: [['', 'Any role'], ...choices.grantable.map((r) => [r, r])] });
  const tenant = field({ name: 'tenant', label: 'Tenant', type: 'select', value: filters.tenant, options: [['', 'Any tenant'], ...choices.tenants.map((t) => [t.value, t.label])] });
  const state = field({ name: 'state', label: 'State', type: 'select', value: filters.state, options: [['', 'Any state'], ['active', 'Active'], ['disabled', 'Disabled']] });
  const apply = h('button', { class: 'button primary', type: 'submit', text: 'Search' });
  const toolbar = h('form', { class: 'toolbar', attrs: { role: 'search', 'aria-label': 'Find accounts' }, novalidate: true },
    search.root, role.root, ctx.level === 'merchant' ? null : tenant.root, state.root, apply);

  const error = alertBox();
  const summary = h('p', { class: 'muted list-summary', attrs: { 'aria-live': 'polite' } });
  const selection = h('div', { class: 'selection', attrs: { role: 'region', 'aria-label': 'Selected accounts' }, hidden: true });
  const results = h('div');
  const list = h('div');
  const pager = h('div');

  const exportCsv = button('Export CSV', async () => {
    const done = busy(exportCsv, 'Exporting…');
    const r = await download(`${USERS}.csv${qs(apiQuery(filters))}`, 'accounts.csv');
    done();
    if (r.status !== 200) toast(message(r, 'The export failed.'), 'error');
  });
  const create = button('New account', () => createAccount(ctx, choices), 'primary');

  main.replaceChildren(
    pageHead('Accounts', exportCsv, create),
    toolbar, error, results, selection, summary, list, pager);

  const drawSelection = () => {
    selection.hidden = selected.size === 0;
    if (selected.size === 0) return selection.replaceChildren();
    const act = (label, action, kind = 'subtle') => button(label, () => bulk(action), `${kind} small`);
    selection.replaceChildren(
      h('strong', { text: `${selected.size} selected` }),
      act('Disable', 'disable'), act('Enable', 'enable'), act('Revoke sessions', 'revoke_sessions'), act('Delete', 'delete', 'danger'),
      button('Clear selection', () => {
        selected.clear();
        draw();
      }, 'subtle small'));
  };

  const draw = () => {
    list.replaceChildren(table({
      caption: 'Accounts',
      empty: filters.q || filters.role || filters.tenant || filters.state
        ? 'No account matches these filters.'
        : 'No accounts yet. Create one with "New account".',
      rows,
      select: { id: (a) => a.id, label: (a) => a.username, selected, onChange: drawSelection },
      columns: [
        {
          label: 'Username',
          cell: (a) => h('span', { class: 'who-cell' },
            h('a', { href: `#/accounts/${encodeURIComponent(a.id)}`, text: a.username }),
            h('span', { class: 'narrow-only muted', text: a.email })),
        },
        { label: 'Email', class: 'email wide-only', cell: (a) => a.email },
        { label: 'Roles', cell: (a) => roleBadges(a.roles) },
        { label: 'Tenant', class: 'wide-only', cell: (a) => choices.tenantLabel(a) },
        { label: 'State', cell: stateBadge },
        { label: 'Created', class: 'wide-only', cell: (a) => when(a.created_at) },
      ],
    }));
    pager.replaceChildren(more(next, (cursor) => load(cursor)) || '');
    summary.textContent = rows.length === 0 ? '' : `${rows.length} account${rows.length === 1 ? '' : 's'} shown${next ? ', more below' : ''}.`;
    drawSelection();
  };

  const load = async (cursor) => {
    say(error, '');
    const r = await api('GET', `${USERS}${qs({ ...apiQuery(filters), limit: PAGE_SIZE, cursor })}`);
    if (r.status !== 200) {
      say(error, message(r, 'The accounts could not be loaded.'));
      return;
    }
    rows = cursor ? rows.concat(r.body.items || []) : r.body.items || [];
    next = r.body.next || null;
    draw();
  };

  const reapply = () => {
    filters = { q: search.input.value.trim(), role: role.input.value, tenant: tenant.input.value, state: state.input.value };
    ctx.setParams(filters);
    selected.clear();
    return load(null);
  };
  toolbar.addEventListener('submit', (e) => {
    e.preventDefault();
    const done = busy(apply, 'Searching…');
    reapply().finally(done);
  });
  for (const f of [role, tenant, state]) f.input.addEventListener('change', () => reapply());

  const bulk = async (action) => {
    const chosen = rows.filter((a) => selected.has(a.id));
    const verb = { disable: 'Disable', enable: 'Enable', revoke_sessions: 'Revoke the sessions of', delete: 'Delete' }[action];
    const names = chosen.map((a) => a.username).join(', ');
    const yes = await confirmAction({
      title: `${verb} ${chosen.length} account${chosen.length === 1 ? '' : 's'}?`,
      body: action === 'delete'
        ? `${names} will be deleted with their sessions and keys. This cannot be undone.`
        : action === 'revoke_sessions'
          ? `${names} will be signed out everywhere.`
          : `${verb} ${names}.`,
      confirm: action === 'revoke_sessions' ? 'Revoke sessions' : verb,
      danger: action !== 'enable',
    });
    if (!yes) return;
    const r = await api('POST', `${USERS}/bulk`, { action, ids: chosen.map((a) => a.id) });
    if (r.status !== 200) {
      say(error, message(r, 'The bulk action failed.'));
      return;
    }
    const byId = new Map(chosen.map((a) => [a.id, a.username]));
    results.replaceChildren(bulkResults(verb, r.body, byId, () => results.replaceChildren()));
    selected.clear();
    await load(null);
  };

  await load(null);
}

/** What a bulk action did, item by item. */
function bulkResults(verb, body, names, dismiss) {
  const items = (body && (body.results || body.items)) || [];
  const failed = items.filter((i) => !(i.ok === true || (i.status >= 200 && i.status < 300)));
  const rows = items.map((i) => {
    const ok = !failed.includes(i);
    return h('li', {},
      ok ? badge('Done', 'ok') : badge('Failed', 'danger'), ' ',
      h('span', { text: names.get(i.id) || i.id }),
      ok ? null : h('span', { class: 'muted', text: ` — ${i.error || `status ${i.status}`}` }));
  });
  return h('section', { class: `card bulk-results ${failed.length ? 'has-failures' : ''}`.trim(), attrs: { 'aria-label': 'Bulk action results', role: 'status' } },
    h('div', { class: 'card-head' },
      h('h2', { text: `${verb}: ${items.length - failed.length} done, ${failed.length} failed` }),
      button('Dismiss', dismiss, 'subtle small')),
    h('ul', { class: 'result-list' }, rows));
}

// ---- the account form (create and edit) ----

/** The role checkboxes as one labelled group that errors can name. */
function roleGroup(choices, held) {
  const id = uid('roles');
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  // Roles the account holds but the viewer may not grant stay shown,
  // checked and fixed, so saving never drops them by accident.
  const names = [...new Set([...choices.grantable, ...held])];
  const boxes = names.map((name) => {
    const box = h('input', { type: 'checkbox', id: uid('role'), value: name, checked: held.includes(name), disabled: !choices.grantable.includes(name), attrs: { 'aria-describedby': error.id } });
    return { name, box, root: h('div', { class: 'field check' }, box, h('label', { htmlFor: box.id, text: name })) };
  });
  const root = h('fieldset', { class: 'field role-group' }, h('legend', { text: 'Roles' }), h('div', { class: 'role-choices' }, boxes.map((b) => b.root)), error);
  return { name: 'roles', root, error, input: boxes[0] ? boxes[0].box : root, value: () => boxes.filter((b) => b.box.checked).map((b) => b.name) };
}

/** The tenant picker, offered as far as the viewer's scope reaches. */
function tenantPicker(ctx, choices, current) {
  const options = ctx.level === 'admin' ? [['', 'No tenant']] : [];
  const f = field({ name: 'tenant', label: 'Tenant', type: 'select', value: current, options: [...options, ...choices.tenants.map((t) => [t.value, t.label])], help: ctx.level === 'admin' ? 'A merchant sits under its reseller.' : null });
  if (ctx.level === 'merchant') f.input.disabled = true;
  const placement = () => {
    const t = choices.tenants.find((x) => x.value === f.input.value);
    return t ? { reseller_id: t.reseller_id, merchant_id: t.merchant_id } : { reseller_id: null, merchant_id: null };
  };
  // The API names reseller_id or merchant_id; both are this field.
  return { field: f, placement, aliases: [{ ...f, name: 'reseller_id' }, { ...f, name: 'merchant_id' }] };
}

/** `key=value` lines to attributes; null (after showing why) when a line
 * has no `=`. */
function parseAttributes(f, fields) {
  const out = {};
  const lines = f.input.value.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const [i, line] of lines.entries()) {
    const at = line.indexOf('=');
    if (at < 1) {
      fieldError(fields, 'attributes', `Line ${i + 1} is not key=value.`);
      return null;
    }
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function attributesText(attrs) {
  return Object.entries(attrs || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

/** Shows a refusal beside the field it names, else in `error`. */
function refusal(r, fields, error, fallback) {
  const text = message(r, fallback);
  const named = fieldOf(r);
  if (named && fieldError(fields, named, text)) return;
  say(error, text);
}

function createAccount(ctx, choices) {
  const error = alertBox();
  const username = field({ name: 'username', label: 'Username', required: true, autocomplete: 'off' });
  const email = field({ name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'off' });
  const password = field({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', help: 'The account can change it after signing in.' });
  const roles = roleGroup(choices, choices.grantable.includes('user') ? ['user'] : []);
  const tenant = tenantPicker(ctx, choices, ctx.level === 'admin' ? '' : (choices.tenants[0] || {}).value || '');
  const attributes = field({ name: 'attributes', label: 'Attributes', type: 'textarea', rows: 3, help: 'Optional. One key=value a line.' });
  const fields = [username, email, password, roles, tenant.field, ...tenant.aliases, attributes];
  const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
  const submit = h('button', { class: 'button primary', type: 'submit', text: 'Create account' });
  const form = h('form', { id: uid('create-account'), novalidate: true },
    error, username.root, email.root, password.root, roles.root, tenant.field.root, attributes.root);
  submit.setAttribute('form', form.id);
  const { close } = modal('New account', form, [cancel, submit]);
  username.input.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(fields);
    say(error, '');
    if (!username.input.value.trim()) return void fieldError(fields, 'username', 'Enter a username.');
    if (!email.input.value.trim()) return void fieldError(fields, 'email', 'Enter an email address.');
    if (!password.input.value) return void fieldError(fields, 'password', 'Enter a password.');
    if (roles.value().length === 0) return void fieldError(fields, 'roles', 'Choose at least one role.');
    const attrs = parseAttributes(attributes, fields);
    if (!attrs) return;
    const where = tenant.placement();
    const body = {
      username: username.input.value.trim(),
      email: email.input.value.trim(),
      password: password.input.value,
      roles: roles.value(),
      attributes: attrs,
    };
    // A merchant names its reseller by itself; sending only the merchant
    // lets the API place it.
    if (where.merchant_id) body.merchant_id = where.merchant_id;
    else if (where.reseller_id) body.reseller_id = where.reseller_id;
    const done = busy(submit, 'Creating…');
    const r = await api('POST', USERS, body);
    done();
    if (r.status === 201) {
      close();
      toast(`Account ${r.body.username} created.`);
      ctx.go(`#/accounts/${encodeURIComponent(r.body.id)}`);
      return;
    }
    refusal(r, fields, error, 'The account could not be created.');
  });
}

// ---- one account ----

async function renderOne(main, ctx, id) {
  const [r, choices] = await Promise.all([api('GET', userPath(id)), loadChoices(ctx)]);
  if (r.status !== 200) {
    main.replaceChildren(
      pageHead('Account'),
      h('p', { class: 'alert', attrs: { role: 'alert' }, text: message(r, 'This account could not be loaded.') }),
      h('p', {}, h('a', { href: '#/accounts', text: 'Back to accounts' })));
    return;
  }
  const a = r.body;
  const self = ctx.me && ctx.me.id === a.id;
  const reload = () => renderOne(main, ctx, id);

  const toggle = a.disabled
    ? button('Enable', () => simple('enable', `Account ${a.username} enabled.`), 'subtle')
    : button('Disable', async () => {
      if (await confirmAction({ title: `Disable ${a.username}?`, body: 'The account is signed out everywhere and cannot sign in or use its keys until it is enabled again.', confirm: 'Disable' })) {
        simple('disable', `Account ${a.username} disabled.`);
      }
    }, 'subtle');
  const simple = async (what, done) => {
    const res = await api('POST', `${userPath(id)}/${what}`);
    if (res.status === 200) {
      toast(what === 'unlock' && res.body && res.body.was_locked === false ? `${a.username} was not locked; its failure count is cleared.` : done);
      reload();
    } else toast(message(res, `The account could not be changed.`), 'error');
  };
  const unlock = button('Unlock', () => simple('unlock', `Account ${a.username} unlocked.`));
  const reset = button('Reset password', () => resetPassword(a));
  const remove = button('Delete', async () => {
    const yes = await confirmAction({ title: `Delete ${a.username}?`, body: `${a.username} (${a.email}) is deleted with its sessions and API keys. This cannot be undone.`, confirm: 'Delete account' });
    if (!yes) return;
    const res = await api('DELETE', userPath(id));
    if (res.status === 204) {
      toast(`Account ${a.username} deleted.`);
      ctx.go('#/accounts');
    } else toast(message(res, 'The account could not be deleted.'), 'error');
  }, 'danger');

  const head = pageHead(a.username, reset, unlock, self ? null : toggle, self ? null : remove);
  head.querySelector('h1').append(' ', stateBadge(a));

  const sessions = h('div');
  const keys = h('div');
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/accounts', text: 'Accounts' }), h('span', { attrs: { 'aria-hidden': 'true' }, text: ' / ' }), h('span', { text: a.username })),
    head,
    h('div', { class: 'grid detail-grid' },
      card('Details', h('dl', { class: 'facts' },
        h('dt', { text: 'Email' }), h('dd', { text: a.email }),
        h('dt', { text: 'Roles' }), h('dd', {}, roleBadges(a.roles)),
        h('dt', { text: 'Tenant' }), h('dd', { text: choices.tenantLabel(a) || 'None' }),
        h('dt', { text: 'State' }), h('dd', {}, stateBadge(a)),
        h('dt', { text: 'Created' }), h('dd', {}, when(a.created_at)),
        h('dt', { text: 'Updated' }), h('dd', {}, when(a.updated_at)),
        h('dt', { text: 'Account id' }), h('dd', { class: 'mono', text: a.id }),
        Object.entries(a.attributes || {}).map(([k, v]) => [h('dt', { class: 'mono', title: 'Attribute', text: k }), h('dd', { text: v })]))),
      editCard(ctx, a, choices, reload)),
    sessions, keys);
  await Promise.all([loadSessions(sessions, a), loadKeys(keys, a)]);
}

function editCard(ctx, a, choices, reload) {
  const error = alertBox();
  const username = field({ name: 'username', label: 'Username', value: a.username, required: true });
  const email = field({ name: 'email', label: 'Email', type: 'email', value: a.email, required: true });
  const roles = roleGroup(choices, a.roles || []);
  const tenant = tenantPicker(ctx, choices, tenantValue(a));
  const attributes = field({ name: 'attributes', label: 'Attributes', type: 'textarea', rows: 3, value: attributesText(a.attributes), help: 'One key=value a line.' });
  const fields = [username, email, roles, tenant.field, ...tenant.aliases, attributes];
  const submit = h('button', { class: 'button primary', type: 'submit', text: 'Save changes' });
  const form = h('form', { novalidate: true }, error, username.root, email.root, roles.root, tenant.field.root, attributes.root, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(fields);
    say(error, '');
    if (roles.value().length === 0) return void fieldError(fields, 'roles', 'Choose at least one role.');
    const attrs = parseAttributes(attributes, fields);
    if (!attrs) return;
    const patch = {};
    if (username.input.value.trim() !== a.username) patch.username = username.input.value.trim();
    if (email.input.value.trim() !== a.email) patch.email = email.input.value.trim();
    const chosen = roles.value();
    if (chosen.join('\n') !== (a.roles || []).join('\n')) patch.roles = chosen;
    if (ctx.level !== 'merchant' && tenant.field.input.value !== tenantValue(a)) Object.assign(patch, tenant.placement());
    if (attributesText(attrs) !== attributesText(a.attributes)) patch.attributes = attrs;
    if (Object.keys(patch).length === 0) return void toast('Nothing to save.');
    const done = busy(submit, 'Saving…');
    const r = await api('PATCH', userPath(a.id), patch);
    done();
    if (r.status === 200) {
      toast(`Account ${r.body.username} saved.`);
      reload();
      return;
    }
    refusal(r, fields, error, 'The changes could not be saved.');
  });
  return card('Edit', form);
}

function resetPassword(a) {
  const error = alertBox();
  const password = field({ name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true, help: 'The account is signed out everywhere.' });
  const fields = [password];
  const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
  const submit = h('button', { class: 'button primary', type: 'submit', text: 'Set password' });
  const form = h('form', { id: uid('reset-password'), novalidate: true }, error, password.root);
  submit.setAttribute('form', form.id);
  const { close } = modal(`Reset the password of ${a.username}`, form, [cancel, submit]);
  password.input.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(fields);
    say(error, '');
    if (!password.input.value) return void fieldError(fields, 'password', 'Enter a new password.');
    const done = busy(submit, 'Setting…');
    const r = await api('POST', `${userPath(a.id)}/password`, { password: password.input.value });
    done();
    if (r.status === 204) {
      close();
      toast(`The password of ${a.username} is set.`);
      return;
    }
    refusal(r, fields, error, 'The password could not be set.');
  });
}

async function loadSessions(holder, a) {
  const path = `${userPath(a.id)}/sessions`;
  const r = await api('GET', `${path}?limit=100`);
  const items = (r.status === 200 && r.body.items) || [];
  const revokeAll = button('Revoke all', async () => {
    const yes = await confirmAction({ title: `Revoke every session of ${a.username}?`, body: `${a.username} is signed out everywhere: browsers, apps and the console.`, confirm: 'Revoke all' });
    if (!yes) return;
    const res = await api('DELETE', path);
    if (res.status === 200) toast(`${res.body.revoked} session${res.body.revoked === 1 ? '' : 's'} revoked.`);
    else toast(message(res, 'The sessions could not be revoked.'), 'error');
    loadSessions(holder, a);
  }, 'danger small', { disabled: items.length === 0 });
  let content;
  if (r.status !== 200) {
    content = alertBox();
    say(content, message(r, 'The sessions could not be loaded.'));
  } else {
    content = table({
      caption: `Live sessions of ${a.username}`,
      empty: 'No live sessions: this account is signed in nowhere.',
      rows: items,
      columns: [
        { label: 'Started', cell: (s) => h('span', { class: 'who-cell' }, when(s.created_at), h('span', { class: 'narrow-only muted', text: s.user_agent || '' })) },
        { label: 'Last used', class: 'wide-only', cell: (s) => when(s.last_used_at) },
        { label: 'Expires', class: 'wide-only', cell: (s) => when(s.expires_at) },
        { label: 'Kind', class: 'wide-only', cell: (s) => s.kind },
        { label: 'Address', class: 'wide-only', cell: (s) => s.client_ip },
        { label: 'Client', class: 'client wide-only', cell: (s) => s.user_agent },
        {
          label: 'Actions',
          class: 'row-actions',
          cell: (s) => button('Revoke', async () => {
            const res = await api('DELETE', `${path}/${encodeURIComponent(s.id)}`);
            if (res.status === 204) toast('Session revoked.');
            else toast(message(res, 'The session could not be revoked.'), 'error');
            loadSessions(holder, a);
          }, 'subtle small', { attrs: { 'aria-label': `Revoke the session started ${new Date(s.created_at).toLocaleString()}` } }),
        },
      ],
    });
  }
  const titleId = uid('sessions');
  holder.replaceChildren(h('section', { class: 'card', attrs: { 'aria-labelledby': titleId } },
    h('div', { class: 'card-head' }, h('h2', { id: titleId, text: 'Sessions' }), revokeAll),
    content));
}

async function loadKeys(holder, a) {
  const path = `${userPath(a.id)}/keys`;
  const r = await api('GET', `${path}?limit=100`);
  const create = button('Create key', async () => {
    if (await createKeyDialog(path, a.username)) loadKeys(holder, a);
  }, 'primary small');
  let content;
  if (r.status !== 200) {
    content = alertBox();
    say(content, message(r, 'The API keys could not be loaded.'));
  } else {
    content = keyTable({
      keys: r.body.items || [],
      caption: `API keys of ${a.username}`,
      empty: 'This account has no API keys.',
      onRevoke: async (k) => {
        if (await revokeKey(k, `${path}/${encodeURIComponent(k.keyId)}`)) loadKeys(holder, a);
      },
    });
  }
  const titleId = uid('keys');
  holder.replaceChildren(h('section', { class: 'card', attrs: { 'aria-labelledby': titleId } },
    h('div', { class: 'card-head' }, h('h2', { id: titleId, text: 'API keys' }), create),
    content));
}
