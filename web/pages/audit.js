// Audit log: what happened, newest first, filtered by actor, action,
// outcome, tenant and time range. The filters live in the URL, so a
// filtered view can be reloaded, bookmarked and shared; the same filters
// export the log as CSV.

import { api, download, message, qs } from '{{asset lib/api.js}}';
import { alertBox, badge, busy, button, clearErrors, field, fieldError, fill, h, more, pageHead, say, stackable, table, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 'audit',
  title: 'Audit log',
  nav: 'Audit log',
  visible: (ctx) => ctx.level === 'admin' || ctx.level === 'reseller' || ctx.level === 'merchant',
  render,
};

const PAGE = 25;

/** The actions latchkey records, offered as suggestions. */
const ACTIONS = [
  'account_created', 'account_updated', 'account_deleted', 'account_disabled', 'account_enabled', 'accounts_imported',
  'admin_recovered', 'api_key_created', 'api_key_first_used', 'api_key_revoked', 'external_linked', 'external_login',
  'external_unlinked', 'lockout', 'login', 'logout', 'merchant_created', 'merchant_updated', 'merchant_deleted',
  'password_changed', 'refresh', 'refresh_reuse_detected', 'reseller_created', 'reseller_updated', 'reseller_deleted',
  'role_created', 'role_deleted', 's2s_token_created', 's2s_token_first_used', 's2s_token_revoked', 'session_revoked',
  'sessions_revoked', 'signing_key_rotated', 'unlock',
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A `datetime-local` value (the viewer's time) as RFC 3339 UTC. */
function utc(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace('.000Z', 'Z');
}

async function tenantOptions(ctx) {
  if (ctx.level === 'merchant') return null;
  const [rs, ms] = await Promise.all([
    api('GET', '/api/v1/admin/resellers?limit=1000'),
    api('GET', '/api/v1/admin/merchants?limit=1000'),
  ]);
  const options = [['', 'Any tenant']];
  const merchants = ms.status === 200 ? ms.body.items || [] : [];
  for (const r of rs.status === 200 ? rs.body.items || [] : []) {
    options.push([`r:${r.id}`, `${r.name} (reseller)`]);
    for (const m of merchants.filter((x) => x.reseller_id === r.id)) options.push([`m:${m.id}`, `${r.name} › ${m.name}`]);
  }
  return options;
}

async function render(main, ctx) {
  const p = ctx.params;
  const tenants = await tenantOptions(ctx);
  const tenantValue = p.get('merchant_id') ? `m:${p.get('merchant_id')}` : p.get('reseller_id') ? `r:${p.get('reseller_id')}` : '';
  if (tenants && tenantValue && !tenants.some(([v]) => v === tenantValue)) tenants.push([tenantValue, tenantValue.slice(2)]);
  const f = {
    actor: field({ name: 'actor', label: 'Actor', value: p.get('actor') || '', placeholder: 'username or id' }),
    event: field({ name: 'event', label: 'Action', value: p.get('event') || '', placeholder: 'any action' }),
    outcome: field({ name: 'outcome', label: 'Outcome', type: 'select', value: p.get('outcome') || '', options: [['', 'Any outcome'], ['success', 'Success'], ['failure', 'Failure']] }),
    tenant: tenants ? field({ name: 'tenant', label: 'Tenant', type: 'select', value: tenantValue, options: tenants }) : null,
    since: field({ name: 'since', label: 'From', type: 'datetime-local', value: p.get('since') || '' }),
    until: field({ name: 'until', label: 'Until', type: 'datetime-local', value: p.get('until') || '' }),
  };
  const fields = Object.values(f).filter(Boolean);
  const list = h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a })));
  f.event.input.setAttribute('list', list.id);
  const error = alertBox();
  const results = h('div', { class: 'card audit-results' });
  const apply = h('button', { class: 'button primary', type: 'submit', text: 'Apply filters' });
  const reset = button('Clear', () => {
    ctx.setParams({});
    ctx.refresh();
  });
  const exportCsv = button('Export CSV', () => doExport(exportCsv, f, fields, ctx, error));
  const form = h('form', { class: 'filters card', attrs: { role: 'search', 'aria-label': 'Filter the audit log' }, novalidate: true },
    h('div', { class: 'toolbar' }, fields.map((x) => x.root)),
    h('div', { class: 'actions' }, apply, reset),
    list);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = await filters(f, fields, ctx, error);
    if (!query) return;
    ctx.setParams(query.url);
    await load(results, query.api, error);
  });
  fill(main, 
    pageHead('Audit log', exportCsv),
    form,
    error,
    results,
  );
  const query = await filters(f, fields, ctx, error);
  if (query) await load(results, query.api, error);
}

/** The filters as the URL keeps them and as the API takes them; null
 * (with the reason beside its field) when one cannot be used. */
async function filters(f, fields, ctx, error) {
  clearErrors(fields);
  say(error, '');
  const url = {
    actor: f.actor.input.value.trim(),
    event: f.event.input.value.trim(),
    outcome: f.outcome.input.value,
    since: f.since.input.value,
    until: f.until.input.value,
  };
  const tenant = f.tenant ? f.tenant.input.value : '';
  if (tenant.startsWith('r:')) url.reseller_id = tenant.slice(2);
  if (tenant.startsWith('m:')) url.merchant_id = tenant.slice(2);
  const apiQuery = { ...url, since: utc(url.since), until: utc(url.until) };
  if (apiQuery.since === null) return void fieldError(fields, 'since', 'Enter a date and time.');
  if (apiQuery.until === null) return void fieldError(fields, 'until', 'Enter a date and time.');
  if (apiQuery.since && apiQuery.until && apiQuery.since > apiQuery.until) return void fieldError(fields, 'until', 'The end is before the start.');
  if (url.actor && !UUID.test(url.actor)) {
    // The log names actors by id; a username is looked up among the
    // accounts the caller manages.
    const r = await api('GET', `/api/v1/admin/users?q=${encodeURIComponent(url.actor)}&limit=50`);
    const want = url.actor.toLowerCase();
    const found = r.status === 200 ? (r.body.items || []).find((a) => a.username.toLowerCase() === want || (a.email || '').toLowerCase() === want) : null;
    if (!found) return void fieldError(fields, 'actor', `No account you manage is called ${url.actor}.`);
    apiQuery.actor = found.id;
  }
  return { url, api: apiQuery };
}

/** An id as short as it can be read: a UUID by its first eight digits,
 * the whole id on hover. */
function shortId(id) {
  if (!id) return null;
  const short = UUID.test(id) ? `${id.slice(0, 8)}…` : id;
  return h('code', { class: 'mono', text: short, title: short === id ? undefined : id });
}

async function load(holder, query, error) {
  const rows = [];
  const show = async (cursor) => {
    const r = await api('GET', `/api/v1/admin/audit${qs({ ...query, limit: PAGE, cursor })}`);
    if (r.status !== 200) {
      say(error, message(r, 'The audit log could not be loaded.'));
      fill(holder, );
      return;
    }
    rows.push(...(r.body.items || []));
    fill(holder, 
      stackable(table({
        caption: 'Audit events, newest first',
        empty: 'No event matches these filters.',
        rows,
        columns: [
          { label: 'When', cell: (e) => when(e.at) },
          { label: 'Action', cell: (e) => h('code', { class: 'mono', text: e.event }) },
          { label: 'Outcome', cell: (e) => (e.outcome === 'success' ? badge('Success', 'ok') : badge(e.outcome === 'failure' ? 'Failure' : e.outcome, 'danger')) },
          { label: 'Actor', cell: (e) => h('span', { class: 'actor' }, e.actor_name || e.actor || h('span', { class: 'muted', text: '—' }),
            e.client_ip ? h('code', { class: 'mono muted', text: e.client_ip, title: 'Address' }) : null) },
          { label: 'Target', class: 'target', cell: (e) => shortId(e.target) },
          { label: 'Tenant', cell: (e) => (e.reseller_id ? h('code', { class: 'mono', text: [e.reseller_id, e.merchant_id].filter(Boolean).join(' › ') }) : null) },
          { label: 'Detail', class: 'detail', cell: (e) => e.detail },
        ],
      })),
      h('p', { class: 'muted count', attrs: { role: 'status' }, text: `${rows.length} ${rows.length === 1 ? 'event' : 'events'} shown${r.body.next ? '; more below' : ''}.` }),
      more(r.body.next, (next) => show(next)),
    );
  };
  fill(holder, h('p', { class: 'muted', text: 'Loading events…' }));
  await show('');
}

async function doExport(b, f, fields, ctx, error) {
  const query = await filters(f, fields, ctx, error);
  if (!query) return;
  const restore = busy(b, 'Exporting…');
  const r = await download(`/api/v1/admin/audit.csv${qs(query.api)}`, 'latchkey-audit.csv');
  restore();
  if (r.status !== 200) say(error, message(r, 'The audit log could not be exported.'));
}
