// Roles: the built-in roles and the custom ones, with the accounts that
// hold each (as far as the caller may see them). Only an admin creates or
// deletes a custom role, as the API says.

import { api, fieldOf, message } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, confirmAction, field, fill, formDialog, h, pageHead, say, stackable, table, toast } from '{{asset lib/dom.js}}';

export const page = {
  id: 'roles',
  title: 'Roles',
  nav: 'Roles',
  visible: (ctx) => ctx.level === 'admin' || ctx.level === 'reseller' || ctx.level === 'merchant',
  render,
};

/** How many holders a row names before "and more". */
const SHOWN = 5;

const BUILTIN_NOTE = {
  admin: 'Everything, every tenant.',
  reseller: 'Its reseller, the merchants under it and their accounts.',
  merchant: 'Its merchant and its accounts.',
  user: 'Its own account only.',
};

async function render(main, ctx) {
  const admin = ctx.level === 'admin';
  const error = alertBox();
  error.tabIndex = -1;
  const list = h('div', { class: 'card' }, h('p', { class: 'muted', text: 'Loading roles…' }));
  const reload = () => load(list, ctx, error, reload);
  fill(main, 
    pageHead('Roles', admin ? button('New role', () => createRole(reload), 'primary') : null),
    h('p', { class: 'muted intro', text: admin
      ? 'Custom roles are names an account can carry for your applications; they grant no admin rights. A role can be deleted once no account holds it.'
      : 'The roles in use, and who holds each among the accounts you manage.' }),
    error,
    list,
  );
  await reload();
}

async function holders(name) {
  const r = await api('GET', `/api/v1/admin/users?role=${encodeURIComponent(name)}&limit=${SHOWN + 1}`);
  if (r.status !== 200) return { names: [], more: false, failed: true };
  const items = r.body.items || [];
  return { names: items.slice(0, SHOWN).map((a) => a.username), more: items.length > SHOWN || Boolean(r.body.next), failed: false };
}

async function load(holder, ctx, error, reload) {
  const r = await api('GET', '/api/v1/admin/roles?limit=1000');
  if (r.status !== 200) {
    say(error, message(r, 'The roles could not be loaded.'));
    fill(holder, );
    return;
  }
  const roles = r.body.items || [];
  const held = await Promise.all(roles.map((x) => holders(x.name)));
  const custom = roles.filter((x) => !x.builtin);
  fill(holder, 
    stackable(table({
      caption: 'Roles and who holds them',
      rows: roles.map((x, i) => ({ ...x, held: held[i] })),
      columns: [
        { label: 'Role', cell: (x) => h('span', { class: 'role-name' }, h('strong', { text: x.name }), x.builtin ? badge('Built-in', 'plain') : badge('Custom')) },
        { label: 'What it reaches', class: 'role-note', cell: (x) => BUILTIN_NOTE[x.name] || 'Its own account; your applications read the role from tokens.' },
        { label: 'Held by', class: 'role-held', cell: (x) => heldBy(x) },
        ctx.level === 'admin' ? { label: 'Actions', class: 'row-actions', cell: (x) => (x.builtin
          ? h('span', { class: 'muted small-note', text: 'Built in' })
          : button('Delete', (e) => remove(x, error, reload, e.currentTarget), 'subtle small danger-text', { attrs: { 'aria-label': `Delete role ${x.name}` } })) } : null,
      ].filter(Boolean),
    })),
    custom.length === 0 ? h('p', { class: 'empty', text: ctx.level === 'admin' ? 'No custom roles yet. Create one to tag accounts for your applications.' : 'No custom roles.' }) : null,
  );
}

function heldBy(x) {
  const { names, more, failed } = x.held;
  if (failed) return h('span', { class: 'muted', text: 'Not shown' });
  const text = more ? 'See all' : 'See accounts';
  const link = h('a', { href: `#/accounts?role=${encodeURIComponent(x.name)}`, text, attrs: { 'aria-label': `${text} holding ${x.name}` } });
  if (names.length === 0) return h('span', { class: 'muted', text: 'No account' });
  return h('span', { class: 'holders' }, names.join(', '), more ? ' and more · ' : ' · ', link);
}

async function createRole(reload) {
  const name = field({ name: 'name', label: 'Role name', required: true, help: 'Up to 64 letters, digits, -, _ or ., starting with a letter. Built-in names are taken.' });
  const ok = await formDialog({
    title: 'New role',
    fields: [name],
    submit: 'Create role',
    busy: 'Creating…',
    send: async () => {
      const r = await api('POST', '/api/v1/admin/roles', { name: name.input.value.trim() });
      if (r.status === 201) {
        toast(`Role ${r.body.name} created.`);
        return null;
      }
      return { field: fieldOf(r) || 'name', text: message(r, 'The role could not be created.') };
    },
  });
  if (ok) await reload();
}

async function remove(x, error, reload, control) {
  const yes = await confirmAction({
    title: `Delete role ${x.name}?`,
    body: `The custom role ${x.name} will be deleted. latchkey refuses while an account holds it.`,
    confirm: 'Delete role',
  });
  if (!yes) return;
  say(error, '');
  const restore = busy(control, 'Deleting…');
  const r = await api('DELETE', `/api/v1/admin/roles/${encodeURIComponent(x.name)}`);
  restore();
  if (r.status === 204) {
    toast(`Role ${x.name} deleted.`);
    await reload();
    return;
  }
  say(error, message(r, 'The role could not be deleted.'));
  error.focus();
}
