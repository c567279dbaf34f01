// Server-to-server tokens: issue one (the form offers only the roles and
// tenants the caller may issue for), see them with their issuer, expiry
// and last use, revoke. A reseller or merchant sees only its own tenants'
// tokens, as the API does. `?reseller_id=` or `?merchant_id=` narrows the
// list to one tenant (the tenants page links here).

import { api, fieldOf, message } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, confirmAction, field, fill, formDialog, h, modal, more, noticeBox, pageHead, say, secretBox, stackable, table, toast, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 's2s',
  title: 'Server-to-server tokens',
  nav: 'S2S tokens',
  visible: (ctx) => ctx.level === 'admin' || ctx.level === 'reseller' || ctx.level === 'merchant',
  render,
};

const LIFETIMES = [
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
  ['2592000', '30 days'],
];

const ROLE_NOTE = {
  reseller: 'acts for the whole reseller',
  merchant: 'acts for one merchant',
  user: 'acts as a plain user of one merchant',
};

async function render(main, ctx) {
  const error = alertBox();
  error.tabIndex = -1;
  const list = h('div', { class: 'card' }, h('p', { class: 'muted', text: 'Loading tokens…' }));
  const reload = () => load(list, ctx, error, reload);
  fill(main, 
    pageHead('Server-to-server tokens', button('Issue token', () => issue(ctx, reload), 'primary')),
    h('p', { class: 'muted intro', text: 'Tokens your services use to call latchkey for a tenant. A token is shown once when issued; latchkey keeps only its digest.' }),
    tenantNotice(ctx),
    error,
    list,
  );
  await reload();
}

function tenantNotice(ctx) {
  const r = ctx.params.get('reseller_id');
  const m = ctx.params.get('merchant_id');
  if (!r && !m) return null;
  const n = noticeBox();
  n.hidden = false;
  n.append(`Showing the tokens of ${m ? 'merchant' : 'reseller'} `, h('code', { class: 'mono', text: m || r }), '. ',
    h('a', { href: '#/s2s', text: 'Show all tokens' }));
  return n;
}

function state(t) {
  if (t.revoked_at) return badge('Revoked', 'danger');
  if (t.expires_at && new Date(t.expires_at) <= new Date()) return badge('Expired', 'warn');
  return badge('Active', 'ok');
}

/** Account ids to usernames, for the issuer column; ids the caller cannot
 * see stay ids. */
async function issuers(tokens) {
  const names = new Map();
  const ids = [...new Set(tokens.filter((t) => t.created_by_exists).map((t) => t.created_by))].slice(0, 50);
  await Promise.all(ids.map(async (id) => {
    const r = await api('GET', `/api/v1/admin/users/${encodeURIComponent(id)}`);
    if (r.status === 200) names.set(id, r.body.username);
  }));
  return names;
}

async function load(holder, ctx, error, reload) {
  const wantReseller = ctx.params.get('reseller_id');
  const wantMerchant = ctx.params.get('merchant_id');
  const rows = [];
  const show = async (cursor) => {
    const r = await api('GET', `/api/v1/admin/s2s-tokens?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) {
      say(error, message(r, 'The tokens could not be loaded.'));
      fill(holder, );
      return;
    }
    const items = (r.body.items || []).filter((t) => (!wantReseller || t.reseller_id === wantReseller) && (!wantMerchant || t.merchant_id === wantMerchant));
    const names = await issuers(items);
    for (const t of items) t.issuer = names.get(t.created_by) || null;
    // Newest first within what has been loaded (the API pages by id).
    rows.push(...items);
    rows.sort((x, y) => String(y.created_at).localeCompare(String(x.created_at)));
    fill(holder, 
      stackable(table({
        caption: 'Server-to-server tokens',
        empty: wantReseller || wantMerchant ? 'This tenant has no tokens.' : 'No tokens yet. Issue one for a service that calls latchkey.',
        rows,
        columns: [
          { label: 'Name', cell: (t) => h('span', { class: 'token-name' }, h('strong', { text: t.name }), h('code', { class: 'mono muted', text: t.id })) },
          { label: 'Role', cell: (t) => t.role },
          { label: 'Tenant', cell: (t) => h('code', { class: 'mono', text: [t.reseller_id, t.merchant_id].filter(Boolean).join(' › ') }) },
          { label: 'Issued by', cell: (t) => (t.issuer ? t.issuer
            : h('span', { class: 'muted', text: t.created_by_exists ? 'An account you do not manage' : 'A deleted account' })) },
          { label: 'Issued', cell: (t) => when(t.created_at) },
          { label: 'Expires', cell: (t) => when(t.expires_at) },
          { label: 'Last used', cell: (t) => (t.last_used ? when(t.last_used) : h('span', { class: 'muted', text: 'Never' })) },
          { label: 'State', cell: (t) => state(t) },
          { label: 'Actions', class: 'row-actions', cell: (t) => (t.revoked_at ? null
            : button('Revoke', (e) => revoke(t, error, reload, e.currentTarget), 'subtle small danger-text', { attrs: { 'aria-label': `Revoke token ${t.name}` } })) },
        ],
      })),
      more(r.body.next, (next) => show(next)),
    );
  };
  await show('');
}

/** What the caller may issue, as the API says (roles, a fixed reseller
 * or merchant, the longest lifetime), with the tenants to choose from. */
async function issuable() {
  const [sc, rs, ms] = await Promise.all([
    api('GET', '/api/v1/admin/s2s-tokens/scopes'),
    api('GET', '/api/v1/admin/resellers?limit=1000'),
    api('GET', '/api/v1/admin/merchants?limit=1000'),
  ]);
  if (sc.status !== 200) return { error: sc };
  const scope = sc.body;
  let resellers = rs.status === 200 ? (rs.body.items || []).map((r) => [r.id, `${r.name} (${r.id})`]) : [];
  if (scope.reseller_id) {
    const own = resellers.find(([id]) => id === scope.reseller_id);
    resellers = [own || [scope.reseller_id, scope.reseller_id]];
  }
  let merchants = ms.status === 200 ? ms.body.items || [] : [];
  if (scope.merchant_id) merchants = merchants.filter((m) => m.id === scope.merchant_id);
  return { roles: scope.roles || [], resellers, merchants, fixedReseller: Boolean(scope.reseller_id), max: scope.max_expires_in };
}

function lifetimes(max) {
  const longest = max ? `The longest allowed (${Math.round(max / 86400)} days)` : 'The longest allowed';
  return [...LIFETIMES.filter(([v]) => v && (!max || Number(v) <= max)), ['', longest]];
}

async function issue(ctx, reload) {
  const can = await issuable();
  if (can.error) {
    toast(message(can.error, 'What you may issue could not be loaded.'), 'error');
    return;
  }
  if (can.resellers.length === 0 || can.roles.length === 0) {
    toast('Create a reseller first: every token belongs to a tenant.', 'error');
    return;
  }
  const name = field({ name: 'name', label: 'Name', required: true, help: 'What the token is for, such as the service that holds it.' });
  const role = field({ name: 'role', label: 'Role', type: 'select', options: can.roles.map((r) => [r, `${r} (${ROLE_NOTE[r]})`]), value: can.roles[0] });
  const reseller = field({ name: 'reseller_id', label: 'Reseller', type: 'select', options: can.resellers, value: ctx.params.get('reseller_id') || '' });
  const merchant = field({ name: 'merchant_id', label: 'Merchant', type: 'select', options: [] });
  const lifetime = field({ name: 'expires_in', label: 'Lifetime', type: 'select', options: lifetimes(can.max), value: '2592000' });
  reseller.input.disabled = can.fixedReseller;
  const fillMerchants = () => {
    const mine = can.merchants.filter((m) => m.reseller_id === reseller.input.value);
    fill(merchant.input, ...(mine.length
      ? mine.map((m) => h('option', { value: m.id, text: m.name === m.id ? m.id : `${m.name} (${m.id})`, selected: m.id === ctx.params.get('merchant_id') }))
      : [h('option', { value: '', text: 'This reseller has no merchants' })]));
    merchant.input.disabled = mine.length === 0;
  };
  const showMerchant = () => {
    merchant.root.hidden = role.input.value === 'reseller';
  };
  reseller.input.addEventListener('change', fillMerchants);
  role.input.addEventListener('change', showMerchant);
  fillMerchants();
  showMerchant();
  let issued = null;
  const ok = await formDialog({
    title: 'Issue a server-to-server token',
    fields: [name, role, reseller, merchant, lifetime],
    submit: 'Issue token',
    busy: 'Issuing…',
    send: async () => {
      const body = { name: name.input.value.trim(), role: role.input.value, reseller_id: reseller.input.value };
      if (role.input.value !== 'reseller') body.merchant_id = merchant.input.value;
      if (lifetime.input.value) body.expires_in = Number(lifetime.input.value);
      const r = await api('POST', '/api/v1/admin/s2s-tokens', body);
      if (r.status === 201 || r.status === 200) {
        issued = r.body;
        return null;
      }
      return { field: fieldOf(r), text: message(r, 'The token could not be issued.') };
    },
  });
  if (!ok || !issued) return;
  await reload();
  const done = h('button', { class: 'button primary', type: 'button', value: 'cancel', text: 'Done' });
  modal(`Token ${issued.name} issued`, [
    secretBox(issued.token, 'token'),
    h('p', { class: 'muted', text: `Role ${issued.role}, tenant ${[issued.reseller_id, issued.merchant_id].filter(Boolean).join(' › ')}; expires ` }, when(issued.expires_at), '.'),
  ], [done]);
  done.focus();
}

async function revoke(t, error, reload, control) {
  const yes = await confirmAction({
    title: `Revoke token ${t.name}?`,
    body: `Every service using ${t.name} is refused from its next request on. This cannot be undone; issue a new token to replace it.`,
    confirm: 'Revoke token',
  });
  if (!yes) return;
  say(error, '');
  const restore = busy(control, 'Revoking…');
  const r = await api('DELETE', `/api/v1/admin/s2s-tokens/${encodeURIComponent(t.id)}`);
  restore();
  if (r.status === 204) {
    toast(`Token ${t.name} revoked.`);
    await reload();
    return;
  }
  say(error, message(r, 'The token could not be revoked.'));
  error.focus();
}
