// The operator console: one document, one view per path, everything read and changed through
// the admin API with the session cookie.
import { h, api, session, enc, time, announce, table, confirmDialog, ApiError } from './lib.js';

const main = document.getElementById('main');
let dispose = () => {};

// show replaces the view's content; absent parts (null) are left out.
function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

const routes = [
  [/^\/console\/$/, tenantsView],
  [/^\/console\/tenants\/([^/]+)\/tokens$/, tokensView],
  [/^\/console\/tenants\/([^/]+)\/activity$/, activityView],
  [/^\/console\/tenants\/([^/]+)\/people$/, peopleView],
  [/^\/console\/tenants\/([^/]+)\/people\/([^/]+)$/, userView],
];

async function render() {
  dispose();
  dispose = () => {};
  const path = location.pathname;
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (!m) continue;
    show(h('p', null, 'Loading…'));
    try {
      await view(...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      show(h('h1', { tabindex: '-1' }, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message));
    }
    const h1 = main.querySelector('h1');
    if (h1) {
      document.title = `${h1.textContent} · scimserver console`;
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
    return;
  }
  show(h('h1', null, 'No such page'), h('p', null, h('a', { href: '/console/' }, 'Back to the tenants')));
}

export function go(path) {
  history.pushState(null, '', path);
  render();
}

// Links inside the console change the view without reloading the page.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href^="/console/"]');
  if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', render);

document.getElementById('signout').addEventListener('click', async () => {
  try {
    await api('POST', '/console/signout');
  } finally {
    location.assign('/console/signin');
  }
});

// A message shown at the top of the next view (after a change that re-renders the page).
let flash = null;
function flashNode() {
  const f = flash;
  flash = null;
  return f ? h('p', { class: `flash ${f.kind}`, role: f.kind === 'error' ? 'alert' : 'status' }, f.text) : null;
}

function errorLine(e) {
  return h('p', { class: 'error', role: 'alert' }, e.message);
}

function field(label, input) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

// ---- Tenants ----

async function tenantsView() {
  const { tenants } = await api('GET', '/api/v1/admin/tenants');
  const rows = tenants.map((t) => h('tr', null,
    h('td', null, h('a', { href: `/console/tenants/${enc(t.id)}/tokens` }, t.id)),
    h('td', null, t.name),
    h('td', { class: 'num' }, t.users),
    h('td', { class: 'num' }, t.groups),
    h('td', null, stateBadge(t.disabled ? 'disabled' : 'enabled')),
    h('td', null, time(t.created)),
    h('td', { class: 'actions' },
      h('a', { href: `/console/tenants/${enc(t.id)}/activity` }, 'Activity'),
      h('a', { href: `/console/tenants/${enc(t.id)}/people` }, 'People'),
      h('button', { type: 'button', class: t.disabled ? 'secondary' : 'danger small', onclick: () => toggleTenant(t) },
        t.disabled ? 'Enable' : 'Disable', h('span', { class: 'visually-hidden' }, ` tenant ${t.id}`)))));

  const id = h('input', { id: 'tenant-id', name: 'id', required: true, pattern: '[a-z0-9_\\-]{1,64}', maxlength: '64',
    'aria-describedby': 'tenant-id-hint', autocomplete: 'off' });
  const name = h('input', { id: 'tenant-name', name: 'name', autocomplete: 'off' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'inline-form', 'aria-labelledby': 'create-tenant' },
    h('h2', { id: 'create-tenant' }, 'Create a tenant'),
    field('Tenant ID', id), h('p', { id: 'tenant-id-hint', class: 'hint' }, '1 to 64 of a–z, 0–9, - and _; it cannot change later.'),
    field('Name', name), err,
    h('button', { type: 'submit' }, 'Create tenant'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const t = await api('POST', '/api/v1/admin/tenants', { id: id.value.trim(), name: name.value.trim() });
      flash = { kind: 'ok', text: `Tenant ${t.id} created.` };
      announce(flash.text);
      render();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });

  show(h('h1', null, 'Tenants'), flashNode(),
    table('Tenants', ['ID', 'Name', 'Users', 'Groups', 'State', 'Created (UTC)', 'Actions'], rows, 'No tenants yet.'),
    form);
}

async function toggleTenant(t) {
  const path = `/api/v1/admin/tenants/${enc(t.id)}/${t.disabled ? 'enable' : 'disable'}`;
  if (t.disabled) {
    try {
      await api('POST', path);
      flash = { kind: 'ok', text: `Tenant ${t.id} enabled.` };
    } catch (e) {
      flash = { kind: 'error', text: e.message };
    }
    announce(flash.text);
    render();
    return;
  }
  const done = await confirmDialog({
    title: `Disable tenant ${t.id}?`,
    body: h('p', null, 'Every token of this tenant answers 401 from its next request until the tenant is enabled again. No data is changed.'),
    ok: 'Disable tenant',
    run: () => api('POST', path).then(() => true),
  });
  if (done) {
    flash = { kind: 'ok', text: `Tenant ${t.id} disabled.` };
    announce(flash.text);
    render();
  }
}

function stateBadge(state) {
  return h('span', { class: `badge ${state}` }, state);
}

// ---- A tenant's pages ----

async function tenantHeader(id, current) {
  const t = await api('GET', `/api/v1/admin/tenants/${enc(id)}`);
  const tab = (name, label) => h('a', { href: `/console/tenants/${enc(id)}/${name}`, 'aria-current': current === name ? 'page' : false }, label);
  return [
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/console/' }, 'Tenants'), ' / ', t.id),
    h('h1', null, `${t.name} `, h('span', { class: 'muted' }, `(${t.id})`), ' ', stateBadge(t.disabled ? 'disabled' : 'enabled')),
    h('nav', { class: 'tabs', 'aria-label': 'Tenant' }, tab('tokens', 'Tokens'), tab('activity', 'Activity'), tab('people', 'People')),
  ];
}

// ---- Tokens ----

const expiryChoices = [['', 'Never'], ['720h', '30 days'], ['2160h', '90 days'], ['8760h', '1 year']];

async function tokensView(tenant, created) {
  const [head, { tokens }] = await Promise.all([tenantHeader(tenant, 'tokens'), api('GET', `/api/v1/admin/tenants/${enc(tenant)}/tokens`)]);
  const rows = tokens.map((t) => h('tr', { 'data-token': t.id },
    h('td', null, t.name || h('span', { class: 'muted' }, '(no name)')),
    h('td', null, h('code', null, t.id)),
    h('td', null, t.scopes.join(', ')),
    h('td', null, time(t.created)),
    h('td', null, t.expires ? time(t.expires) : 'never'),
    h('td', null, t.lastUsed ? time(t.lastUsed) : 'not since start'),
    h('td', null, stateBadge(t.state)),
    h('td', { class: 'actions' }, t.state === 'active'
      ? h('button', { type: 'button', class: 'danger small', onclick: () => revokeToken(tenant, t) },
        'Revoke', h('span', { class: 'visually-hidden' }, ` token ${t.name || t.id}`))
      : null)));

  const name = h('input', { id: 'token-name', name: 'name', required: true, autocomplete: 'off' });
  const scopes = ['scim', 'platform', 'admin'].map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'scope', value: s, checked: s === 'scim' }), ` ${s}`));
  const expires = h('select', { id: 'token-expires', name: 'expires' }, expiryChoices.map(([v, l]) => h('option', { value: v }, l)));
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'inline-form', 'aria-labelledby': 'create-token' },
    h('h2', { id: 'create-token' }, 'Create a token'),
    field('Name', name),
    h('fieldset', null, h('legend', null, 'Scopes'), scopes),
    field('Expires', expires), err,
    h('button', { type: 'submit' }, 'Create token'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const chosen = [...form.querySelectorAll('input[name=scope]:checked')].map((c) => c.value);
    const req = { name: name.value.trim(), scopes: chosen };
    if (expires.value) req.expiresIn = expires.value;
    try {
      const t = await api('POST', `/api/v1/admin/tenants/${enc(tenant)}/tokens`, req);
      await tokensView(tenant, t);
      document.getElementById('secret').focus();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });

  show(...head, flashNode(), created ? secretPanel(created) : null,
    h('p', { class: 'hint' }, 'Last used is counted in the server’s memory since it started.'),
    table('Tokens', ['Name', 'ID', 'Scopes', 'Created (UTC)', 'Expires (UTC)', 'Last used (UTC)', 'State', 'Actions'], rows, 'This tenant has no tokens.'),
    form);
}

// secretPanel shows a new token's secret, this once.
function secretPanel(t) {
  const out = h('input', { id: 'secret', readonly: true, value: t.secret, class: 'secret', spellcheck: 'false', 'aria-describedby': 'secret-hint' });
  const copied = h('span', { class: 'ok', role: 'status' });
  const panel = h('section', { class: 'panel new-secret', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, `Token ${t.name || t.id} created`),
    h('p', { id: 'secret-hint' }, 'Copy the secret now: it is shown only this once. The server keeps only its hash.'),
    h('label', { for: 'secret' }, 'Secret'),
    h('div', { class: 'row' }, out,
      h('button', { type: 'button', onclick: async () => {
        try {
          await navigator.clipboard.writeText(out.value);
          copied.textContent = 'Copied to the clipboard.';
        } catch {
          out.select();
          copied.textContent = 'Selected: press Ctrl+C to copy.';
        }
      } }, 'Copy'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { out.value = ''; panel.remove(); } }, 'Done')),
    copied);
  return panel;
}

async function revokeToken(tenant, t) {
  const done = await confirmDialog({
    title: `Revoke token ${t.name || t.id}?`,
    body: h('p', null, 'Clients using this token get 401 from their next request. A revoked token cannot be used again.'),
    ok: 'Revoke token',
    run: () => api('DELETE', `/api/v1/admin/tenants/${enc(tenant)}/tokens/${enc(t.id)}`).then(() => true),
  });
  if (done) {
    flash = { kind: 'ok', text: `Token ${t.name || t.id} revoked.` };
    announce(flash.text);
    render();
  }
}

// ---- Activity ----

const pollEvery = 2000;
const shownRows = 200;

async function activityView(tenant) {
  const [head, { tokens }] = await Promise.all([tenantHeader(tenant, 'activity'), api('GET', `/api/v1/admin/tenants/${enc(tenant)}/tokens`)]);
  const status = h('select', { id: 'activity-status' },
    [['', 'All'], ['2xx', '2xx success'], ['4xx', '4xx client error'], ['5xx', '5xx server error']].map(([v, l]) => h('option', { value: v }, l)));
  const token = h('select', { id: 'activity-token' }, h('option', { value: '' }, 'All tokens'),
    tokens.map((t) => h('option', { value: t.id }, `${t.name || '(no name)'} · ${t.id.slice(0, 8)}`)));
  const live = h('input', { type: 'checkbox', id: 'activity-live', checked: true });
  const summary = h('p', { class: 'summary', id: 'activity-summary' });
  const body = h('tbody');
  const err = h('div');
  let entries = [];
  let last = 0;
  let timer = null;
  let stopped = false;

  const row = (e) => h('tr', { class: `s${Math.floor(e.status / 100)}xx` },
    h('td', null, time(e.time)),
    h('td', null, e.tokenName || e.tokenId.slice(0, 8)),
    h('td', null, e.method),
    h('td', null, h('code', null, e.route)),
    h('td', { class: 'num' }, h('span', { class: `status s${Math.floor(e.status / 100)}xx` }, e.status)),
    h('td', null, e.scimType || ''),
    h('td', { class: 'detail' }, e.detail || ''),
    h('td', { class: 'num' }, e.durationMs.toFixed(1)));

  async function poll(reset) {
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (token.value) q.set('token', token.value);
    if (!reset) q.set('after', String(last));
    q.set('limit', String(shownRows));
    try {
      const page = await api('GET', `/api/v1/admin/tenants/${enc(tenant)}/activity?${q}`);
      if (stopped) return;
      entries = (reset ? page.entries : page.entries.concat(entries)).slice(0, shownRows);
      last = page.last;
      if (reset || page.entries.length) body.replaceChildren(...entries.map(row));
      summary.textContent = `${entries.length} request${entries.length === 1 ? '' : 's'} shown, newest first. ` +
        `The server keeps the last ${page.capacity} SCIM requests of this tenant in memory; ${page.dropped} older ones were dropped.`;
      err.replaceChildren();
    } catch (e) {
      if (!stopped) err.replaceChildren(errorLine(e));
    }
  }
  function schedule() {
    clearTimeout(timer);
    if (!stopped && live.checked) timer = setTimeout(async () => { await poll(false); schedule(); }, pollEvery);
  }
  const refilter = async () => { await poll(true); schedule(); };
  status.addEventListener('change', refilter);
  token.addEventListener('change', refilter);
  live.addEventListener('change', schedule);
  dispose = () => { stopped = true; clearTimeout(timer); };

  show(...head,
    h('form', { class: 'filters', 'aria-label': 'Filter the activity', onsubmit: (ev) => ev.preventDefault() },
      field('Status', status), field('Token', token),
      h('label', { class: 'check' }, live, ' Live updates (every 2 s)')),
    summary, err,
    h('div', { class: 'table-wrap' }, h('table', { id: 'activity' },
      h('caption', { class: 'visually-hidden' }, 'Recent SCIM requests'),
      h('thead', null, h('tr', null, ['Time (UTC)', 'Token', 'Method', 'Route', 'Status', 'SCIM error', 'Detail', 'Duration (ms)']
        .map((t) => h('th', { scope: 'col' }, t)))),
      body)));
  await poll(true);
  schedule();
}

// ---- People ----

// The last search of each tenant, kept in this page's memory only (it holds personal data).
const lastSearch = new Map();

async function peopleView(tenant) {
  const head = await tenantHeader(tenant, 'people');
  const by = h('select', { id: 'search-by' }, [['userName', 'userName'], ['email', 'Email'], ['externalId', 'externalId']]
    .map(([v, l]) => h('option', { value: v }, l)));
  const value = h('input', { id: 'search-value', type: 'search', required: true, autocomplete: 'off', spellcheck: 'false' });
  const results = h('div', { id: 'results', 'aria-live': 'polite' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Find a person' },
    field('Search by', by), field('Value (exact, as the identity provider sent it)', value),
    h('button', { type: 'submit' }, 'Search'));

  async function search(attribute, v) {
    try {
      const { users, more } = await api('POST', `/api/v1/admin/tenants/${enc(tenant)}/users/.search`, { attribute, value: v });
      lastSearch.set(tenant, { attribute, value: v });
      const rows = users.map((u) => h('tr', null,
        h('td', null, h('a', { href: `/console/tenants/${enc(tenant)}/people/${enc(u.id)}` }, u.userName)),
        h('td', null, displayName(u)),
        h('td', null, primaryEmail(u)),
        h('td', null, u.externalId || ''),
        h('td', null, u.active === false ? 'no' : 'yes'),
        h('td', null, lifecycle(u).anonymized ? 'yes' : 'no')));
      results.replaceChildren(
        h('h2', null, `${users.length}${more ? '+' : ''} match${users.length === 1 ? '' : 'es'}`),
        table('Matching users', ['userName', 'Name', 'Email', 'externalId', 'Active', 'Anonymized'], rows, 'Nobody matches.'));
    } catch (e) {
      results.replaceChildren(errorLine(e));
    }
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    search(by.value, value.value.trim());
  });
  show(...head, h('h2', { class: 'visually-hidden' }, 'Search'), form,
    h('p', { class: 'hint' }, 'Lookups use the server’s indexes: userName and email ignore letter case, externalId does not.'),
    results);
  const prev = lastSearch.get(tenant);
  if (prev) {
    by.value = prev.attribute;
    value.value = prev.value;
    await search(prev.attribute, prev.value);
  }
}

const lifecycleURN = 'urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User';

function lifecycle(u) {
  return u[lifecycleURN] || {};
}

function displayName(u) {
  return u.displayName || (u.name && (u.name.formatted || [u.name.givenName, u.name.familyName].filter(Boolean).join(' '))) || '';
}

function primaryEmail(u) {
  const emails = u.emails || [];
  const e = emails.find((x) => x.primary) || emails[0];
  return e ? e.value : '';
}

// ---- A user ----

async function userView(tenant, id, result) {
  const [head, data] = await Promise.all([tenantHeader(tenant, 'people'),
    api('GET', `/api/v1/admin/tenants/${enc(tenant)}/users/${enc(id)}`)]);
  const u = data.user;
  const lc = lifecycle(u);
  const a = data.audit;
  head[1] = h('h1', null, u.userName, ' ', u.active === false ? stateBadge('inactive') : stateBadge('active'),
    lc.anonymized ? [' ', stateBadge('anonymized')] : null);
  head.splice(2, 0, h('p', { class: 'muted' }, `User of tenant ${tenant} · id `, h('code', null, u.id)));

  const trailRows = (events) => events.map((e) => h('tr', null,
    h('td', null, time(e.time)), h('td', null, e.operation),
    h('td', null, e.actorName || e.actorId || ''), h('td', null, (e.attributes || []).join(', ')),
    h('td', null, e.related || ''), h('td', null, e.outcome || '')));
  const trailBody = h('tbody', null, trailRows(a.trail));
  let next = data.nextCursor;
  const older = h('button', { type: 'button', class: 'secondary', hidden: !next, onclick: async () => {
    const more = await api('GET', `/api/v1/admin/tenants/${enc(tenant)}/users/${enc(id)}?cursor=${enc(next)}`);
    trailBody.append(...trailRows(more.audit.trail));
    next = more.nextCursor;
    older.hidden = !next;
  } }, 'Show older events');

  const groups = u.groups || [];
  const anonymize = h('button', { type: 'button', class: 'danger', id: 'anonymize', disabled: !!lc.anonymized,
    onclick: () => anonymizeUser(tenant, u) }, 'Anonymize…');

  show(...head,
    result ? anonymizedPanel(result) : null,
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'h-lifecycle', class: 'panel' }, h('h2', { id: 'h-lifecycle' }, 'Lifecycle'),
        dl([
          ['Active', u.active === false ? 'no' : 'yes'],
          ['Audited', lc.audited ? `yes (${(lc.auditReasons || []).join(', ')})` : 'no'],
          ['Campaigns ever assigned', lc.campaignCount ?? 0],
          ['Current campaigns', a.currentCampaigns.length ? a.currentCampaigns.join(', ') : 'none'],
          ['Interactions', a.interactions],
          ['Last interaction (UTC)', time(lc.lastInteractionAt)],
          ['Anonymized', lc.anonymized ? `yes, ${time(lc.anonymizedAt)} UTC` : 'no'],
        ])),
      h('section', { 'aria-labelledby': 'h-groups', class: 'panel' }, h('h2', { id: 'h-groups' }, `Groups (${groups.length})`),
        groups.length ? h('ul', { class: 'plain' }, groups.map((g) => h('li', null, g.display || g.value, ' ', h('code', { class: 'muted' }, g.value))))
          : h('p', { class: 'empty' }, 'Member of no group.'))),
    h('section', { 'aria-labelledby': 'h-attrs' }, h('h2', { id: 'h-attrs' }, 'SCIM attributes'),
      table('SCIM attributes', ['Attribute', 'Value'], flatten(u).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, h('code', null, k)), h('td', null, v))), 'No attributes.')),
    h('section', { 'aria-labelledby': 'h-trail' }, h('h2', { id: 'h-trail' }, 'Audit trail'),
      h('p', { class: 'hint' }, 'Newest first. The trail names the attributes that changed, never their values.'),
      a.trail.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'trail' }, h('caption', { class: 'visually-hidden' }, 'Audit trail'),
        h('thead', null, h('tr', null, ['Time (UTC)', 'Operation', 'Actor', 'Attributes', 'Related', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)))),
        trailBody)) : h('p', { class: 'empty' }, 'No events.'),
      older),
    h('section', { 'aria-labelledby': 'h-erase', class: 'panel danger-zone' }, h('h2', { id: 'h-erase' }, 'Anonymize'),
      h('p', null, lc.anonymized
        ? `This user was anonymized at ${time(lc.anonymizedAt)} UTC.`
        : 'Irreversibly replaces every piece of personal data with random characters, removes the user from every group and deactivates it. The id and the audit trail stay.'),
      anonymize));
}

function dl(pairs) {
  return h('dl', null, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// flatten lists a resource's attributes as path and value, groups and meta left out (shown
// elsewhere, or the server's own).
function flatten(u) {
  const out = [];
  const walk = (prefix, v) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(`${prefix}[${i}]`, x));
    else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => walk(prefix ? (k.startsWith('urn:') ? k : `${prefix}.${k}`) : k, x));
    else out.push([prefix, String(v)]);
  };
  for (const [k, v] of Object.entries(u)) {
    if (k === 'groups' || k === 'meta' || k === 'schemas') continue;
    walk(k, v);
  }
  return out;
}

async function anonymizeUser(tenant, u) {
  const base = `/api/v1/admin/tenants/${enc(tenant)}/users/${enc(u.id)}`;
  let e;
  try {
    e = await api('GET', `${base}/erasure`);
  } catch (err) {
    flash = { kind: 'error', text: err.message };
    render();
    return;
  }
  const confirmInput = h('input', { id: 'confirm-username', autocomplete: 'off', spellcheck: 'false' });
  const result = await confirmDialog({
    title: `Anonymize ${e.userName}?`,
    body: [
      h('p', null, 'These attributes will be replaced with random characters or removed:'),
      h('ul', { class: 'erased', id: 'erasure-list' }, e.attributes.map((x) => h('li', null, h('code', null, x)))),
      h('p', null, `The user will also leave ${e.groups} group${e.groups === 1 ? '' : 's'}, lose any password and be deactivated. This cannot be undone.`),
      h('label', { for: 'confirm-username' }, 'To confirm, type the userName ', h('code', { id: 'confirm-expected' }, e.userName)),
      confirmInput,
    ],
    ok: 'Anonymize user',
    run: () => api('POST', `${base}/anonymize`, { confirm: confirmInput.value }),
  });
  if (!result) return;
  announce('The user was anonymized.');
  await userView(tenant, u.id, result);
  document.getElementById('anonymized-title').focus();
}

// anonymizedPanel shows what an anonymization erased and the audit event it recorded.
function anonymizedPanel(r) {
  const ev = r.event || {};
  return h('section', { class: 'panel result', 'aria-labelledby': 'anonymized-title', id: 'anonymized' },
    h('h2', { id: 'anonymized-title', tabindex: '-1' }, r.changed ? 'Anonymized' : 'Already anonymized'),
    h('p', null, `Erased ${(ev.attributes || r.erasure.attributes).length} attributes; left ${r.erasure.groups} group${r.erasure.groups === 1 ? '' : 's'}.`),
    h('h3', null, 'Audit event'),
    dl([
      ['Event', `#${ev.seq}`],
      ['Time (UTC)', time(ev.time)],
      ['Operation', ev.operation],
      ['Actor', `${ev.actorName || ''} (${ev.actorId || ''})`],
      ['Attributes', (ev.attributes || []).join(', ')],
      ['Outcome', ev.outcome || ''],
      ['Data file cleared', r.scrubbed ? 'yes' : 'pending: the server clears it in the background'],
    ]));
}

// ---- Start ----

const me = await session().catch(() => null);
if (me) {
  document.getElementById('who').textContent = `Signed in as ${me.tokenName || me.tokenId} (tenant ${me.tenant})`;
  render();
}
