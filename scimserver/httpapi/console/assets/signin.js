// Sign-in: the token goes to the server once, in a POST body, never in a URL.
const form = document.getElementById('signin');
const input = document.getElementById('token');
const error = document.getElementById('error');

if (location.hash === '#ended') {
  document.getElementById('ended').hidden = false;
  history.replaceState(null, '', location.pathname);
}
input.focus();

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const token = input.value.trim();
  if (!token) {
    showError('Paste an admin-scope token.');
    return;
  }
  let res;
  try {
    res = await fetch('/console/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  } catch {
    showError('The server cannot be reached.');
    return;
  }
  if (res.ok) {
    input.value = '';
    // A browser keeps the Secure session cookie only over HTTPS (or on localhost).
    const check = await fetch('/console/session', { credentials: 'same-origin' }).catch(() => null);
    if (!check || !check.ok) {
      showError('Signed in, but this browser did not keep the session cookie: open the console over HTTPS.');
      return;
    }
    location.assign('/console/');
    return;
  }
  const body = await res.json().catch(() => ({}));
  showError(res.status === 401 ? 'That is not a valid admin-scope token.' : (body.detail || `Sign-in failed (${res.status}).`));
});

function showError(text) {
  error.textContent = text;
  error.hidden = false;
  input.focus();
}
