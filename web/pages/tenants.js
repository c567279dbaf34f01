// Tenants: resellers and their merchants as a tree. An admin creates,
// renames and deletes both; a reseller sees its own reseller and manages
// the merchants under it; a merchant sees its merchant only. Each tenant
// links to its accounts and its server-to-server tokens.

import { api, fieldOf, message } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, confirmAction, field, fill, formDialog, h, pageHead, say, toast, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 'tenants',
  title: 'Tenants',
  nav: 'Tenants',
  visible: (ctx) => ctx.level === 'admin' || ctx.level === 'reseller' || ctx.level === 'merchant',
  render,
};

const refusal = (r, fallback) => ({ field: fieldOf(r), text: message(r, fallback) });

/** Every item of a paged admin list (bounded: at most `pages` pages). */
async function all(path, pages = 20) {
  const items = [];
  let cursor = '';
  for (let i = 0; i < pages; i += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await api('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) return { error: r };
    items.push(...(r.body.items || []));
    if (!r.body.next) break;
    cursor = r.body.next;
  }
  return { items };
}

async function render(main, ctx) {
  const admin = ctx.level === 'admin';
  const error = alertBox();
  error.tabIndex = -1;
  const tree = h('div', { class: 'card tenants-card' }, h('p', { class: 'muted', text: 'Loading tenants…' }));
  const reload = () => load(tree, ctx, error, reload);
  const actions = [];
  if (admin) actions.push(button('New reseller', () => createReseller(reload), 'primary'));
  if (admin || ctx.level === 'reseller') actions.push(button('New merchant', () => createMerchant(ctx, reload), admin ? 'subtle' : 'primary'));
  fill(main, 
    pageHead('Tenants', actions),
    h('p', { class: 'muted intro', text: tenantIntro(ctx) }),
    error,
    tree,
  );
  await reload();
}

function tenantIntro(ctx) {
  if (ctx.level === 'admin') return 'Resellers and the merchants under them. A tenant can be deleted once it has no merchants, accounts or live tokens.';
  if (ctx.level === 'reseller') return 'Your reseller and its merchants. You can create, rename and delete merchants.';
  return 'The merchant your account belongs to.';
}

async function load(holder, ctx, error, reload) {
  if (ctx.level === 'merchant') {
    const m = await all('/api/v1/admin/merchants');
    if (m.error) return void say(error, message(m.error, 'The merchant could not be loaded.'));
    fill(holder, h('ul', { class: 'tree', attrs: { 'aria-label': 'Tenants' } },
      m.items.map((x) => merchantItem(x, ctx, reload, error))));
    return;
  }
  const [rs, ms] = await Promise.all([all('/api/v1/admin/resellers'), all('/api/v1/admin/merchants')]);
  if (rs.error || ms.error) return void say(error, message(rs.error || ms.error, 'The tenants could not be loaded.'));
  if (rs.items.length === 0) {
    fill(holder, h('div', { class: 'empty-state' },
      h('p', { class: 'empty', text: 'No resellers yet.' }),
      ctx.level === 'admin' ? h('p', { class: 'muted', text: 'Create a reseller, then the merchants under it. Accounts and tokens are placed in a tenant.' }) : null));
    return;
  }
  const byReseller = new Map();
  for (const m of ms.items) {
    if (!byReseller.has(m.reseller_id)) byReseller.set(m.reseller_id, []);
    byReseller.get(m.reseller_id).push(m);
  }
  fill(holder, h('ul', { class: 'tree', attrs: { 'aria-label': 'Tenants' } },
    rs.items.map((r) => {
      const merchants = byReseller.get(r.id) || [];
      return h('li', { dataset: { tenant: r.id } },
        tenantRow({
          kind: 'Reseller',
          tenant: r,
          accounts: `#/accounts?reseller_id=${encodeURIComponent(r.id)}`,
          tokens: `#/s2s?reseller_id=${encodeURIComponent(r.id)}`,
          add: () => createMerchant(ctx, reload, r.id),
          rename: ctx.level === 'admin' ? () => rename('reseller', r, reload) : null,
          remove: ctx.level === 'admin' ? (e) => remove('reseller', r, reload, error, e.currentTarget) : null,
          count: `${merchants.length} ${merchants.length === 1 ? 'merchant' : 'merchants'}`,
        }),
        merchants.length
          ? h('ul', { attrs: { 'aria-label': `Merchants of ${r.name}` } }, merchants.map((m) => merchantItem(m, ctx, reload, error)))
          : h('p', { class: 'empty tree-empty', text: 'No merchants yet.' }));
    })));
}

function merchantItem(m, ctx, reload, error) {
  const manage = ctx.level === 'admin' || ctx.level === 'reseller';
  return h('li', { dataset: { tenant: m.id } }, tenantRow({
    kind: 'Merchant',
    tenant: m,
    accounts: `#/accounts?merchant_id=${encodeURIComponent(m.id)}`,
    tokens: `#/s2s?merchant_id=${encodeURIComponent(m.id)}`,
    rename: manage ? () => rename('merchant', m, reload) : null,
    remove: manage ? (e) => remove('merchant', m, reload, error, e.currentTarget) : null,
  }));
}

function tenantRow(spec) {
  const t = spec.tenant;
  const name = t.name;
  return h('div', { class: 'tenant' },
    h('div', { class: 'tenant-name' },
      h('span', { class: 'tenant-title' }, badge(spec.kind, spec.kind === 'Reseller' ? '' : 'plain'), h('strong', { text: name })),
      h('span', { class: 'tenant-meta muted' },
        h('code', { class: 'mono', text: t.id }),
        spec.count ? h('span', { text: spec.count }) : null,
        h('span', {}, 'created ', when(t.created_at)))),
    h('div', { class: 'tenant-actions' },
      h('a', { class: 'button subtle small', href: spec.accounts, text: 'Accounts', attrs: { 'aria-label': `Accounts of ${name}` } }),
      h('a', { class: 'button subtle small', href: spec.tokens, text: 'Tokens', attrs: { 'aria-label': `Tokens of ${name}` } }),
      spec.add ? button('Add merchant', spec.add, 'subtle small', { attrs: { 'aria-label': `Add merchant to ${name}` } }) : null,
      spec.rename ? button('Rename', spec.rename, 'subtle small', { attrs: { 'aria-label': `Rename ${name}` } }) : null,
      spec.remove ? button('Delete', spec.remove, 'subtle small danger-text', { attrs: { 'aria-label': `Delete ${name}` } }) : null));
}

function idHelp(prefix) {
  return `Optional: letters, digits, - and _. Left empty, latchkey makes one (${prefix}_…).`;
}

async function createReseller(reload) {
  const name = field({ name: 'name', label: 'Name', required: true });
  const id = field({ name: 'id', label: 'Id', help: idHelp('res') });
  const ok = await formDialog({
    title: 'New reseller',
    fields: [name, id],
    submit: 'Create reseller',
    busy: 'Creating…',
    send: async () => {
      const r = await api('POST', '/api/v1/admin/resellers', { name: name.input.value.trim(), id: id.input.value.trim() || undefined });
      if (r.status === 201) {
        toast(`Reseller ${r.body.name} created.`);
        return null;
      }
      return refusal(r, 'The reseller could not be created.');
    },
  });
  if (ok) await reload();
}

async function createMerchant(ctx, reload, preset) {
  // An admin chooses the reseller; a reseller's own is the only one it
  // sees, and the only one the API lets it use.
  const rs = await all('/api/v1/admin/resellers');
  if (rs.error) return void toast(message(rs.error, 'The resellers could not be loaded.'), 'error');
  if (rs.items.length === 0) return void toast('Create a reseller first: every merchant belongs to one.', 'error');
  const options = rs.items.map((r) => [r.id, `${r.name} (${r.id})`]);
  const reseller = field({ name: 'reseller_id', label: 'Reseller', type: 'select', options, value: preset || '' });
  reseller.input.disabled = ctx.level !== 'admin';
  const name = field({ name: 'name', label: 'Name', required: true });
  const id = field({ name: 'id', label: 'Id', help: idHelp('mer') });
  const ok = await formDialog({
    title: preset ? `New merchant of ${(rs.items.find((r) => r.id === preset) || { name: preset }).name}` : 'New merchant',
    fields: [reseller, name, id],
    submit: 'Create merchant',
    busy: 'Creating…',
    send: async () => {
      const r = await api('POST', '/api/v1/admin/merchants', {
        reseller_id: reseller.input.value,
        name: name.input.value.trim(),
        id: id.input.value.trim() || undefined,
      });
      if (r.status === 201) {
        toast(`Merchant ${r.body.name} created.`);
        return null;
      }
      return refusal(r, 'The merchant could not be created.');
    },
  });
  if (ok) await reload();
}

async function rename(kind, t, reload) {
  const name = field({ name: 'name', label: 'New name', value: t.name, required: true });
  const ok = await formDialog({
    title: `Rename ${t.name}`,
    fields: [name],
    submit: 'Rename',
    busy: 'Renaming…',
    send: async () => {
      const r = await api('PATCH', `/api/v1/admin/${kind}s/${encodeURIComponent(t.id)}`, { name: name.input.value.trim() });
      if (r.status === 200) {
        toast(`Renamed to ${r.body.name}.`);
        return null;
      }
      return refusal(r, `The ${kind} could not be renamed.`);
    },
  });
  if (ok) await reload();
}

async function remove(kind, t, reload, error, control) {
  const yes = await confirmAction({
    title: `Delete ${kind} ${t.name}?`,
    body: `The ${kind} ${t.name} (${t.id}) will be deleted. This cannot be undone. latchkey refuses while it still has ${kind === 'reseller' ? 'merchants, ' : ''}accounts or live tokens.`,
    confirm: `Delete ${kind}`,
  });
  if (!yes) return;
  say(error, '');
  const restore = busy(control, 'Deleting…');
  const r = await api('DELETE', `/api/v1/admin/${kind}s/${encodeURIComponent(t.id)}`);
  restore();
  if (r.status === 204) {
    toast(`${kind === 'reseller' ? 'Reseller' : 'Merchant'} ${t.name} deleted.`);
    await reload();
    return;
  }
  say(error, message(r, `The ${kind} could not be deleted.`));
  error.focus();
}
