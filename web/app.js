// The console's entry module. It talks to the server only through the
// JSON API (fetch, same origin) and writes text with textContent, never
// innerHTML, so nothing the API returns can become markup.

const status = document.getElementById('status');
if (status) {
  status.textContent = 'The console is being built; sign-in is not available yet.';
}
