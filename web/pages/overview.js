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

/** The figures shown, in order: [label, value(o), where it leads, or
 * null]. A figure the answer lacks is left out. */
const FIGURES = [
  ['Accounts', (o) => o.accounts && o.accounts.total, '#/accounts'],
  ['Disabled accounts', (o) => o.accounts && o.accounts.disabled, '#/accounts?state=disabled'],
  ['Locked accounts', (o) => o.accounts && o.accounts.locked, null],
  ['Resellers', (o) => o.resellers, '#/tenants'],
  ['Merchants', (o) => o.merchants, '#/tenants'],
  ['API keys', (o) => o.api_keys, '#/keys'],
  ['Live S2S tokens', (o) => o.s2s_tokens && o.s2s_tokens.live, '#/s2s'],
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
  const stats = h('ul', { class: 'stats', attrs: { 'aria-label': 'Counts' } },
    FIGURES.filter(([, value]) => typeof value(o) === 'number').map(([label, value, href]) => {
      const figure = h('span', { class: 'figure', text: value(o).toLocaleString() });
      const words = h('span', { class: 'label', text: label });
      return h('li', { class: 'stat', dataset: { count: label.toLowerCase().replace(/\W+/g, '-') } },
        href ? h('a', { class: 'stat-link', href }, figure, words) : h('div', {}, figure, words));
    }));
  main.replaceChildren(...[
    pageHead('Overview', refresh),
    o.complete === false
      ? h('p', { class: 'notice', attrs: { role: 'status' }, text: 'The store is large: counting stopped early, so these figures are at least what they say.' })
      : null,
    stats,
    h('div', { class: 'overview-grid' },
      eventsCard(o.recent_events || []),
      healthCard(o.health || {})),
  ].filter(Boolean));
}

function eventsCard(events) {
  return card('Recent events',
    table({
      caption: 'The latest audit events',
      empty: 'Nothing has happened yet.',
      rows: events,
      columns: [
        { label: 'When', class: 'wide-only', cell: (e) => when(e.at) },
        { label: 'Event', cell: (e) => h('span', { class: 'who-cell' }, eventName(e.event), h('span', { class: 'narrow-only muted' }, when(e.at))) },
        { label: 'Outcome', cell: (e) => badge(e.outcome, e.outcome === 'success' ? 'ok' : 'danger') },
        { label: 'By', cell: (e) => e.actor_name || e.actor },
      ],
    }),
    h('p', { class: 'more-link' }, h('a', { href: '#/audit', text: 'All events in the audit log' })));
}

/** The server's health as the overview reports it: readiness, each
 * check, the hashing pool and the version. */
function healthCard(health) {
  const ready = health.status === 'ready';
  const facts = [];
  const checks = health.checks || {};
  const names = { store: 'Store', signing_key: 'Signing key' };
  for (const [k, c] of Object.entries(checks)) {
    facts.push(h('dt', { text: names[k] || k }),
      h('dd', {}, c && c.ok ? badge('OK', 'ok') : badge('Failing', 'danger'), c && c.error ? h('span', { class: 'muted', text: ` ${c.error}` }) : null));
  }
  const pool = health.hashing;
  if (pool) {
    facts.push(h('dt', { text: 'Password hashing' }),
      h('dd', { text: `${pool.running} running, ${pool.queued} queued, ${pool.refused} refused since start` }));
  }
  if (health.version) facts.push(h('dt', { text: 'Version' }), h('dd', { class: 'mono', text: health.version }));
  return card('Server health',
    h('p', { class: 'health-status' }, ready ? badge('Ready', 'ok') : badge(health.status || 'Unknown', 'danger')),
    facts.length ? h('dl', { class: 'facts' }, facts) : null);
}

/** An event's name, allowed to break after each underscore. */
function eventName(name) {
  const parts = String(name || '').split('_');
  return h('span', { class: 'mono' }, parts.map((p, i) => (i < parts.length - 1 ? [`${p}_`, h('wbr')] : p)));
}
