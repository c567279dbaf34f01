// The console's entry module. It talks to the server only through the
// JSON API (same-origin fetch; the session is an HttpOnly cookie the page
// never sees) and writes text with textContent, never innerHTML, so
// nothing the API returns can become markup.

const CSRF_KEY = 'latchkey.csrf';

const $ = (id) => document.getElementById(id);

/** The CSRF token of this tab's console session. */
function csrf() {
  return sessionStorage.getItem(CSRF_KEY) || '';
}

/** A JSON API call: resolves to { status, body } and never throws for an
 * HTTP status; a network failure becomes status 0 with a message. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = csrf();
  }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  try {
    const r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const text = await r.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: r.status, body: parsed };
  } catch {
    return { status: 0, body: { error: 'The server could not be reached.' } };
  }
}

/** The API's own words for a refusal. */
function message(r, fallback) {
  if (r.body && typeof r.body.error === 'string') return r.body.error;
  if (r.body && typeof r.body.message === 'string') return r.body.message;
  return fallback;
}

function show(el, text) {
  el.textContent = text;
  el.hidden = false;
}

function hide(el) {
  el.textContent = '';
  el.hidden = true;
}

/** A date in the viewer's locale, with the UTC time on hover. */
function dateCell(value) {
  const td = document.createElement('td');
  if (!value) {
    td.textContent = '—';
    return td;
  }
  const d = new Date(value);
  const time = document.createElement('time');
  time.dateTime = value;
  time.title = d.toISOString().replace('.000Z', 'Z') + ' UTC';
  time.textContent = d.toLocaleString();
  td.append(time);
  return td;
}

function busy(button, text) {
  button.dataset.label = button.textContent;
  button.textContent = text;
  button.disabled = true;
}

function idle(button) {
  button.textContent = button.dataset.label || button.textContent;
  button.disabled = false;
}

// Views.

function showSignIn() {
  $('loading').hidden = true;
  $('shell-view').hidden = true;
  $('signin-view').hidden = false;
  $('signin-username').focus();
}

async function showShell(me) {
  $('loading').hidden = true;
  $('signin-view').hidden = true;
  $('shell-view').hidden = false;
  $('who-name').textContent = me.username;
  route();
}

/** The page the URL names; only "My account" exists so far. */
function route() {
  if (location.hash !== '#/account') {
    history.replaceState(null, '', '#/account');
  }
  document.title = 'My account · latchkey console';
  loadAccount();
}

// My account.

async function loadAccount() {
  const r = await api('GET', '/api/v1/auth/me');
  if (r.status === 401) return signedOut();
  if (r.status === 200) {
    const me = r.body;
    $('me-username').textContent = me.username;
    $('me-email').textContent = me.email || '—';
    $('me-roles').textContent = (me.roles || []).join(', ') || '—';
    const created = $('me-created');
    created.textContent = '';
    if (me.created_at) {
      const cell = dateCell(me.created_at);
      created.append(...cell.childNodes);
    }
  }
  loadSessions();
}

async function loadSessions() {
  const error = $('sessions-error');
  hide(error);
  const r = await api('GET', '/api/v1/auth/sessions?limit=100');
  if (r.status === 401) return signedOut();
  const tbody = $('sessions-body');
  tbody.replaceChildren();
  if (r.status !== 200) {
    show(error, message(r, 'Your sessions could not be loaded.'));
    return;
  }
  const items = r.body.items || [];
  $('sessions-empty').hidden = items.length > 0;
  $('sessions-table').hidden = items.length === 0;
  for (const s of items) {
    const tr = document.createElement('tr');
    const started = dateCell(s.created_at);
    if (s.current) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'This session';
      started.append(badge);
    }
    const ip = document.createElement('td');
    ip.textContent = s.client_ip || '—';
    const client = document.createElement('td');
    client.className = 'client';
    client.textContent = s.user_agent || '—';
    tr.append(started, dateCell(s.last_used_at), dateCell(s.expires_at), ip, client);
    tbody.append(tr);
  }
}

const passwordFields = {
  current_password: 'current-password',
  new_password: 'new-password',
  confirm_password: 'confirm-password',
};

function clearPasswordErrors() {
  hide($('password-error'));
  hide($('password-done'));
  for (const id of Object.values(passwordFields)) {
    hide($(`${id}-error`));
    $(id).removeAttribute('aria-invalid');
  }
}

function fieldError(field, text) {
  const id = passwordFields[field];
  if (!id) return false;
  show($(`${id}-error`), text);
  $(id).setAttribute('aria-invalid', 'true');
  $(id).focus();
  return true;
}

async function changePassword(event) {
  event.preventDefault();
  clearPasswordErrors();
  const current = $('current-password').value;
  const next = $('new-password').value;
  const confirm = $('confirm-password').value;
  if (!current) return void fieldError('current_password', 'Enter your current password.');
  if (!next) return void fieldError('new_password', 'Enter a new password.');
  if (next !== confirm) return void fieldError('confirm_password', 'The two new passwords differ.');
  const button = $('password-submit');
  busy(button, 'Changing…');
  const r = await api('POST', '/api/v1/auth/password', {
    current_password: current,
    new_password: next,
  });
  idle(button);
  if (r.status === 204) {
    $('password-form').reset();
    show($('password-done'), 'Password changed. Your other sessions have ended; this one stays signed in.');
    loadSessions();
    return;
  }
  if (r.status === 401 && message(r, '') === 'Authentication required') return signedOut();
  const text = message(r, 'The password could not be changed.');
  const field = r.body && r.body.field;
  if (field && fieldError(field, text)) return;
  if (r.status === 401 || r.status === 403) {
    // A wrong current password is the API's 401 or 403.
    fieldError('current_password', text);
    return;
  }
  show($('password-error'), text);
}

// Signing in and out.

async function signIn(event) {
  event.preventDefault();
  const error = $('signin-error');
  hide(error);
  const username = $('signin-username').value.trim();
  const password = $('signin-password').value;
  if (!username || !password) {
    show(error, 'Enter your username or email and your password.');
    (username ? $('signin-password') : $('signin-username')).focus();
    return;
  }
  const button = $('signin-submit');
  busy(button, 'Signing in…');
  const r = await api('POST', '/api/v1/console/session', { username, password });
  idle(button);
  if (r.status !== 200) {
    show(error, message(r, 'Sign-in failed.'));
    $('signin-password').select();
    return;
  }
  sessionStorage.setItem(CSRF_KEY, r.body.csrf_token);
  $('signin-form').reset();
  showShell(r.body.user);
  $('main').focus();
}

async function signOut() {
  const button = $('signout');
  busy(button, 'Signing out…');
  await api('DELETE', '/api/v1/console/session');
  idle(button);
  signedOut();
}

function signedOut() {
  sessionStorage.removeItem(CSRF_KEY);
  clearPasswordErrors();
  showSignIn();
}

// Start: a tab that holds a CSRF token and whose cookie still works goes
// straight to the shell; any other signs in.

async function start() {
  $('signin-form').addEventListener('submit', signIn);
  $('password-form').addEventListener('submit', changePassword);
  $('signout').addEventListener('click', signOut);
  $('sessions-refresh').addEventListener('click', loadSessions);
  window.addEventListener('hashchange', () => {
    if (!$('shell-view').hidden) route();
  });
  if (!csrf()) return showSignIn();
  const r = await api('GET', '/api/v1/auth/me');
  if (r.status === 200) return showShell(r.body);
  signedOut();
}

start();
