// The console's entry module: sign-in, the shell (header, navigation,
// main area) and the router. Each page is a module under pages/ that
// exports `page`: { id, title, nav (label, or null for pages reached
// from others), visible(ctx), render(main, ctx) }. The URL names the
// page as `#/<id>/<more>?<query>`, so reload and back work.
//
// ctx: { me (GET /api/v1/auth/me), level ('admin' | 'reseller' |
// 'merchant' | 'user'), rest (path segments after the id), params
// (URLSearchParams of the query), go(hash), setParams(object) (replaces
// the query without a new history entry), refresh(), signedOut() }.

import { api, message, onReauth, onSignedOut, session } from '{{asset lib/api.js}}';
import { alertBox, busy, field, h, modal, say } from '{{asset lib/dom.js}}';
import { page as overview } from '{{asset pages/overview.js}}';
import { page as accounts } from '{{asset pages/accounts.js}}';
import { page as tenants } from '{{asset pages/tenants.js}}';
import { page as roles } from '{{asset pages/roles.js}}';
import { page as keys } from '{{asset pages/keys.js}}';
import { page as s2s } from '{{asset pages/s2s.js}}';
import { page as audit } from '{{asset pages/audit.js}}';
import { page as signingKeys } from '{{asset pages/signing-keys.js}}';
import { page as account } from '{{asset pages/account.js}}';

const PAGES = [overview, accounts, tenants, roles, keys, s2s, audit, signingKeys, account];

const $ = (id) => document.getElementById(id);

let me = null;
let rendering = 0;

/** How far the signed-in account reaches, as the API's scope rules say:
 * the strongest built-in role it carries, with its tenant. */
function levelOf(who) {
  const roles = (who.credential && who.credential.roles) || who.roles || [];
  if (roles.includes('admin')) return 'admin';
  if (roles.includes('reseller') && who.reseller_id) return 'reseller';
  if (roles.includes('merchant') && who.merchant_id) return 'merchant';
  return 'user';
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { id: parts[0] || '', rest: parts.slice(1), params: new URLSearchParams(query) };
}

function context(rest, params) {
  const level = levelOf(me);
  const ctx = {
    me,
    level,
    rest,
    params,
    go: (hash) => {
      location.hash = hash;
    },
    setParams: (obj) => {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      const { id } = parseHash();
      const path = [id, ...rest.map(encodeURIComponent)].join('/');
      const s = q.toString();
      history.replaceState(null, '', `#/${path}${s ? `?${s}` : ''}`);
      ctx.params = q;
    },
    refresh: () => route(),
    signedOut: () => signedOut(),
  };
  return ctx;
}

function visiblePages(ctx) {
  return PAGES.filter((p) => p.visible(ctx));
}

function buildNav(ctx) {
  const nav = $('nav');
  nav.replaceChildren(...visiblePages(ctx).filter((p) => p.nav).map((p) =>
    h('a', { href: `#/${p.id}`, text: p.nav, dataset: { page: p.id } })));
}

/** Shows the page the URL names (or the first the account may see). */
async function route() {
  if (!me) return;
  const { id, rest, params } = parseHash();
  const ctx = context(rest, params);
  const pages = visiblePages(ctx);
  const target = pages.find((p) => p.id === id);
  if (!target) {
    history.replaceState(null, '', `#/${pages[0].id}`);
    return route();
  }
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.page === target.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${target.title} · latchkey console`;
  rendering += 1;
  const mine = rendering;
  const main = $('main');
  const holder = h('div', { class: 'page-body' });
  main.replaceChildren(holder);
  try {
    await target.render(holder, ctx);
  } catch (e) {
    if (mine !== rendering) return;
    holder.replaceChildren(h('p', { class: 'alert', attrs: { role: 'alert' }, text: `This page could not be shown: ${e.message}` }));
  }
}

// Signing in and out.

function showSignIn() {
  me = null;
  $('loading').hidden = true;
  $('shell-view').hidden = true;
  $('signin-view').hidden = false;
  $('signin-username').focus();
}

function showShell(who) {
  me = who;
  $('loading').hidden = true;
  $('signin-view').hidden = true;
  $('shell-view').hidden = false;
  $('who-name').textContent = who.username || who.name || '';
  buildNav(context([], new URLSearchParams()));
  route();
}

async function signIn(event) {
  event.preventDefault();
  const error = $('signin-error');
  say(error, '');
  const username = $('signin-username').value.trim();
  const password = $('signin-password').value;
  if (!username || !password) {
    say(error, 'Enter your username or email and your password.');
    (username ? $('signin-password') : $('signin-username')).focus();
    return;
  }
  const done = busy($('signin-submit'), 'Signing in…');
  const r = await api('POST', '/api/v1/console/session', { username, password }, { quiet401: true });
  done();
  if (r.status !== 200) {
    say(error, message(r, 'Sign-in failed.'));
    $('signin-password').select();
    return;
  }
  session.set(r.body.csrf_token);
  $('signin-form').reset();
  const who = await api('GET', '/api/v1/auth/me');
  if (who.status !== 200) return signedOut();
  showShell(who.body);
  $('main').focus();
}

async function signOut() {
  const done = busy($('signout'), 'Signing out…');
  await api('DELETE', '/api/v1/console/session', undefined, { quiet401: true });
  done();
  signedOut();
}

function signedOut() {
  session.clear();
  for (const d of document.querySelectorAll('dialog')) d.remove();
  showSignIn();
}

/** Asks for the password again before a sensitive action; resolves to
 * true when the server took it. */
function reauthenticate() {
  return new Promise((resolve) => {
    let ok = false;
    const error = alertBox();
    const pw = field({ name: 'password', label: 'Your password', type: 'password', autocomplete: 'current-password', required: true });
    const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
    const submit = h('button', { class: 'button primary', type: 'submit', text: 'Confirm' });
    const form = h('form', { novalidate: true },
      h('p', { text: 'This action needs your password again (you entered it more than a few minutes ago).' }),
      error, pw.root);
    const { dialog, close } = modal('Confirm it is you', form, [cancel, submit]);
    submit.setAttribute('form', form.id || (form.id = 'reauth-form'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const done = busy(submit, 'Checking…');
      const r = await api('POST', '/api/v1/console/reauth', { password: pw.input.value }, { quiet401: true });
      done();
      if (r.status === 204 || r.status === 200) {
        ok = true;
        close();
        return;
      }
      say(error, message(r, 'The password was not accepted.'));
      pw.input.select();
    });
    dialog.addEventListener('close', () => resolve(ok));
    pw.input.focus();
  });
}

// Start: a tab that holds a CSRF token and whose cookie still works goes
// straight to the shell; any other signs in.

async function start() {
  onSignedOut(signedOut);
  onReauth(reauthenticate);
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  if (!session.csrf()) return showSignIn();
  const r = await api('GET', '/api/v1/auth/me', undefined, { quiet401: true });
  if (r.status === 200) return showShell(r.body);
  signedOut();
}

start();
