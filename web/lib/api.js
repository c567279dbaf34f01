// The console's one way to the server: same-origin JSON calls to the
// admin API and the caller's own account. The session is an HttpOnly
// cookie the page never sees; every change carries the session's CSRF
// token in a header. A call never throws for an HTTP status: it resolves
// to { status, body }, and a network failure is status 0.

const CSRF_KEY = 'latchkey.csrf';

/** The CSRF token of this tab's console session, kept for the tab only. */
export const session = {
  csrf: () => sessionStorage.getItem(CSRF_KEY) || '',
  set: (token) => sessionStorage.setItem(CSRF_KEY, token),
  clear: () => sessionStorage.removeItem(CSRF_KEY),
};

let signedOutHandler = () => {};
let reauthHandler = async () => false;

/** Called when the server says the session is gone (a 401 on a call
 * that needed it). */
export function onSignedOut(fn) {
  signedOutHandler = fn;
}

/** Called when the server wants the password re-entered before a
 * sensitive action; resolves to true when it was, and the call is then
 * made once more. */
export function onReauth(fn) {
  reauthHandler = fn;
}

/** Whether an answer asks for the password to be entered again. */
export function wantsReauth(r) {
  return r.status === 403 && r.body && r.body.code === 'reauth_required';
}

async function call(method, path, body, accept) {
  const headers = { Accept: accept };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = session.csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    return null;
  }
}

/** A JSON API call. Options: `quiet401` keeps a 401 from signing the page
 * out (a wrong password is a 401 too). */
export async function api(method, path, body, options = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const r = await call(method, path, body, 'application/json');
    if (!r) return { status: 0, body: { error: 'The server could not be reached.' } };
    const text = await r.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    const answer = { status: r.status, body: parsed, headers: r.headers };
    if (r.status === 401 && !options.quiet401) {
      signedOutHandler();
      return answer;
    }
    if (attempt === 0 && wantsReauth(answer) && (await reauthHandler())) continue;
    return answer;
  }
}

/** The API's own words for a refusal, or `fallback`. */
export function message(r, fallback) {
  const b = r && r.body;
  if (b && typeof b.error === 'string' && b.error) return b.error;
  if (b && typeof b.message === 'string' && b.message) return b.message;
  if (b && typeof b.detail === 'string' && b.detail) return b.detail;
  return fallback;
}

/** The field a refusal names, if it names one. */
export function fieldOf(r) {
  const b = r && r.body;
  return b && typeof b.field === 'string' ? b.field : null;
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Fetches `path` (for example a CSV export) and saves it as `filename`.
 * Resolves to { status, body } like `api` (body only on a refusal). */
export async function download(path, filename, accept = 'text/csv') {
  const r = await call('GET', path, undefined, accept);
  if (!r) return { status: 0, body: { error: 'The server could not be reached.' } };
  if (!r.ok) {
    let parsed = null;
    try {
      parsed = await r.json();
    } catch {
      parsed = null;
    }
    if (r.status === 401) signedOutHandler();
    return { status: r.status, body: parsed };
  }
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { status: r.status, body: null };
}
