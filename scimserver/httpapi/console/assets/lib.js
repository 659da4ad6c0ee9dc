// Small helpers for the console: building DOM nodes (text only, never parsed HTML), calling the
// admin API with the session's CSRF token, and formatting.

// h builds an element. Attributes named on* become listeners; children are nodes or text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// ApiError is a non-2xx answer: the SCIM error body's detail and type.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `request failed (${status})`);
    this.status = status;
    this.scimType = body && body.scimType;
  }
}

let csrf = '';

// session loads who is signed in and the CSRF token; it sends the browser to the sign-in page
// when there is no session.
export async function session() {
  const s = await api('GET', '/console/session');
  csrf = s.csrf;
  return s;
}

// api calls the server; state-changing requests carry the CSRF token. A 401 means the session
// ended (signed out elsewhere, expired, its token revoked): back to the sign-in page.
export async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    location.assign('/console/signin#ended');
    throw new ApiError(401, { detail: 'the session ended' });
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// enc escapes one path segment.
export const enc = encodeURIComponent;

// time shows an instant as UTC, to the second.
export function time(v) {
  if (!v) return '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toISOString().slice(0, 19).replace('T', ' ');
}

// announce tells screen readers (and the status line) what just happened.
export function announce(text) {
  const el = document.getElementById('announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50);
}

// table builds a table with a caption, header cells and rows of cells.
export function table(caption, headers, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows)));
}

// confirmDialog asks before an irreversible or disruptive action. run is called on the
// confirm button; an error it throws is shown in the dialog, which stays open. It resolves to
// run's result, or undefined when cancelled.
export function confirmDialog({ title, body, ok, run }) {
  const dlg = document.getElementById('confirm');
  const form = document.getElementById('confirm-form');
  const err = document.getElementById('confirm-error');
  const okBtn = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-body').replaceChildren(...[body].flat());
  okBtn.textContent = ok;
  err.hidden = true;
  return new Promise((resolve) => {
    const done = (v) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dlg.removeEventListener('cancel', onCancel);
      if (dlg.open) dlg.close();
      resolve(v);
    };
    const onCancel = (ev) => { ev.preventDefault(); done(undefined); };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      okBtn.disabled = true;
      err.hidden = true;
      try {
        done(await run());
      } catch (e) {
        err.textContent = e.message;
        err.hidden = false;
      } finally {
        okBtn.disabled = false;
      }
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    const first = dlg.querySelector('#confirm-body input') || cancel;
    first.focus();
  });
}
