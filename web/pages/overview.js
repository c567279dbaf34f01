// Overview: how many of everything the signed-in account can see, what
// happened last, and whether the server is well. One call,
// GET /api/v1/admin/overview, scoped by the API like every list.

import { api, message } from '{{asset lib/api.js}}';
import { alertBox, badge, button, card, h, pageHead, say, table, when } from '{{asset lib/dom.js}}';

export const page = {
  id: 'overview',
  title: 'Overview',
  nav: 'Overview',
  visible: (ctx) => ctx.level !== 'user',
  render,
};

/** The figures shown, in order, with their words and where they lead. */
const FIGURES = [
  ['accounts', 'Accounts', '#/accounts'],
  ['disabled_accounts', 'Disabled accounts', '#/accounts?state=disabled'],
  ['locked_accounts', 'Locked accounts', null],
  ['resellers', 'Resellers', '#/tenants'],
  ['merchants', 'Merchants', '#/tenants'],
  ['roles', 'Custom roles', '#/roles'],
  ['api_keys', 'API keys', '#/keys'],
  ['s2s_tokens', 'Server-to-server tokens', '#/s2s'],
  ['sessions', 'Live sessions', null],
];

async function render(main, ctx) {
  const refresh = button('Refresh', () => ctx.refresh());
  const r = await api('GET', '/api/v1/admin/overview');
  if (r.status !== 200) {
    const error = alertBox();
    say(error, message(r, 'The overview could not be loaded.'));
    main.replaceChildren(pageHead('Overview', refresh), error);
    return;
  }
  const o = r.body || {};
  const counts = o.counts || {};
  const known = FIGURES.filter(([key]) => typeof counts[key] === 'number');
  const stats = h('div', { class: 'stats', attrs: { role: 'list', 'aria-label': 'Counts' } },
    known.map(([key, label, href]) => {
      const figure = h('span', { class: 'figure', text: counts[key].toLocaleString() });
      const words = h('span', { class: 'label', text: label });
      const inner = href
        ? h('a', { class: 'stat-link', href }, figure, words)
        : h('div', {}, figure, words);
      return h('div', { class: 'stat', attrs: { role: 'listitem' }, dataset: { count: key } }, inner);
    }));
  main.replaceChildren(
    pageHead('Overview', refresh),
    stats,
    h('div', { class: 'overview-grid' },
      eventsCard(o.recent_events || o.events || []),
      healthCard(o.health || {})));
}

function eventsCard(events) {
  return card('Recent events',
    table({
      caption: 'The latest audit events',
      empty: 'Nothing has happened yet.',
      rows: events,
      columns: [
        { label: 'When', cell: (e) => when(e.at) },
        { label: 'Event', cell: (e) => h('span', { class: 'mono', text: e.event }) },
        { label: 'Outcome', cell: (e) => badge(e.outcome, e.outcome === 'success' ? 'ok' : 'danger') },
        { label: 'By', cell: (e) => e.actor_name || e.actor },
      ],
    }),
    h('p', { class: 'more-link' }, h('a', { href: '#/audit', text: 'All events in the audit log' })));
}

/** Health facts as the API reports them; numbers of seconds read as
 * durations, RFC 3339 strings as dates. */
function healthCard(health) {
  const status = health.status || 'unknown';
  const facts = [];
  const label = (k) => k.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  for (const [k, v] of Object.entries(health)) {
    if (k === 'status' || v === null || typeof v === 'object') continue;
    let shown;
    if (k.endsWith('_seconds') && typeof v === 'number') shown = duration(v);
    else if (k.endsWith('_at')) shown = when(v);
    else shown = String(v);
    facts.push(h('dt', { text: label(k.replace(/_seconds$/, '')) }), h('dd', {}, shown));
  }
  return card('Server health',
    h('p', { class: 'health-status' }, badge(status === 'ok' ? 'Healthy' : status, status === 'ok' ? 'ok' : 'danger')),
    facts.length ? h('dl', { class: 'facts' }, facts) : null);
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const hr = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${m} min`;
  return `${m} min`;
}
