// End-to-end test of the operator console in a real browser: Debian's chromium driven by
// playwright-core, against a scimserver built from this tree and started on a temporary data
// file. CONSOLE_SCREENSHOTS=docs writes the screenshots to docs/console/ (the committed ones);
// otherwise they go to the temporary directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'scimserver-console-'));
const shots = process.env.CONSOLE_SCREENSHOTS === 'docs' ? join(repo, 'docs', 'console') : join(tmp, 'screenshots');
const bin = join(tmp, 'scimserver');
const data = join(tmp, 'data.db');

let server;
let serverExit;
let log = '';
let base;
let adminSecret;
let browser;
let context;
let page;
const urls = []; // every URL the browser requested
const cspViolations = [];
const pageErrors = [];

function cli(...args) {
  return execFileSync(bin, [...args, '--data', data], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

before(async () => {
  execFileSync('go', ['build', '-o', bin, './cmd/scimserver'], { cwd: repo, stdio: 'inherit' });
  // An operator's admin token, made the way the README says: on the stopped server's data file.
  cli('tenant', 'create', 'ops', '--name', 'Operations');
  adminSecret = cli('token', 'create', '--tenant', 'ops', '--name', 'operator', '--scope', 'admin');
  assert.match(adminSecret, /^scim_/);

  const env = { ...process.env };
  delete env.SCIMSERVER_TOKEN;
  delete env.SCIMSERVER_PLATFORM_TOKEN;
  server = spawn(bin, ['--addr', '127.0.0.1:0', '--data', data], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  serverExit = new Promise((res) => server.on('exit', res));
  base = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the server did not start:\n${log}`)), 30000);
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/"addr":"(127\.0\.0\.1:\d+)"[^\n]*"message":"listening"/);
      if (m) {
        clearTimeout(timer);
        res(`http://${m[1]}`);
      }
    });
  });

  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('request', (r) => urls.push(r.url()));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await serverExit;
  }
  rmSync(tmp, { recursive: true, force: true });
});

// shot takes a screenshot of the page, after checking what a keyboard or screen-reader user
// needs of it: every control has a label or a name, every table header cell a scope, one h1.
async function shot(name) {
  const problems = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el.type === 'hidden' || el.closest('dialog:not([open])')) continue;
      if (el.labels.length === 0 && !el.getAttribute('aria-label')) out.push(`unlabelled ${el.outerHTML}`);
    }
    for (const b of document.querySelectorAll('button, a')) {
      if (!b.closest('dialog:not([open])') && !b.textContent.trim() && !b.getAttribute('aria-label')) out.push(`nameless ${b.outerHTML}`);
    }
    for (const th of document.querySelectorAll('th')) if (!th.getAttribute('scope')) out.push(`th without scope: ${th.textContent}`);
    if (document.querySelectorAll('h1').length !== 1) out.push(`${document.querySelectorAll('h1').length} h1 elements`);
    return out;
  });
  assert.deepEqual(problems, [], `accessibility of ${name}`);
  await page.screenshot({ path: join(shots, `${name}.png`) });
}

// scim sends a SCIM request with a bearer token, as an identity provider would.
async function scim(token, method, path, body) {
  const res = await fetch(`${base}/scim/v2${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// admin calls the admin API with the operator's bearer token (to check what the console did).
async function admin(method, path, body) {
  const res = await fetch(`${base}/api/v1/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminSecret}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

const rows = (sel) => page.locator(`${sel} tbody tr`);

test('the operator console, end to end', async (t) => {
  let okta; // the SCIM token created in the console
  let userId;
  let sessionCookie;

  await t.test('pages need a session; a wrong token is refused; an admin token signs in', async () => {
    const res = await page.goto(`${base}/console/tenants/default/tokens`);
    assert.equal(new URL(page.url()).pathname, '/console/signin');
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    await shot('signin');
    await page.fill('#token', 'scim_not-a-real-token-0123456789abcdefghijklmnop');
    await page.click('button[type=submit]');
    await page.locator('#error').filter({ hasText: 'not a valid admin-scope token' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/signin');

    // By keyboard alone: the field has the focus, Enter submits.
    await page.fill('#token', '');
    await page.keyboard.type(adminSecret);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/console/`);
    await page.locator('h1', { hasText: 'Tenants' }).waitFor();
    await page.locator('#who', { hasText: 'operator (tenant ops)' }).waitFor();
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    sessionCookie = cookies[0];
    assert.equal(sessionCookie.name, '__Host-scimserver-console');
    assert.ok(sessionCookie.httpOnly && sessionCookie.secure && sessionCookie.sameSite === 'Strict', JSON.stringify(sessionCookie));
    const hours = (sessionCookie.expires * 1000 - Date.now()) / 3600e3;
    assert.ok(hours > 7.9 && hours <= 8, `the cookie expires in ${hours} h`);
    assert.ok(!sessionCookie.value.includes(adminSecret.slice(5, 20)));
  });

  await t.test('creates a tenant', async () => {
    await page.fill('#tenant-id', 'acme');
    await page.fill('#tenant-name', 'Acme Corp');
    await page.click('button:has-text("Create tenant")');
    await page.locator('.flash', { hasText: 'Tenant acme created.' }).waitFor();
    const row = rows('main').filter({ has: page.locator('td:first-child', { hasText: /^acme$/ }) });
    assert.match(await row.innerText(), /Acme Corp\s+0\s+0\s+enabled/);
    await shot('tenants');
  });

  await t.test('creates a token: the secret is shown once, with a copy button', async () => {
    await page.click('a:has-text("acme")');
    await page.waitForURL(`${base}/console/tenants/acme/tokens`);
    await page.locator('p.empty', { hasText: 'no tokens' }).waitFor();
    await page.fill('#token-name', 'okta');
    await page.selectOption('#token-expires', '2160h');
    await page.click('button:has-text("Create token")');
    const secret = page.locator('#secret');
    await secret.waitFor();
    okta = await secret.inputValue();
    assert.match(okta, /^scim_[A-Za-z0-9_-]{43}$/);
    await page.click('button:has-text("Copy")');
    await page.locator('.new-secret', { hasText: 'Copied to the clipboard.' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), okta);
    const row = rows('main').filter({ hasText: 'okta' });
    assert.match(await row.innerText(), /okta.*scim.*never|okta[\s\S]*scim[\s\S]*not since start[\s\S]*active/);
    await page.click('button:has-text("Done")');
    await page.locator('#secret').waitFor({ state: 'detached' });
    // Shown once: a reload of the page has no secret.
    await page.reload();
    await rows('main').first().waitFor();
    assert.ok(!(await page.content()).includes(okta));
    await shot('tokens');
  });

  await t.test('shows SCIM requests in the activity view, live, with their status', async () => {
    await page.click('nav.tabs a:has-text("Activity")');
    await page.waitForURL(`${base}/console/tenants/acme/activity`);
    await page.locator('#activity-summary', { hasText: '0 requests shown' }).waitFor();

    const created = await scim(okta, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      userName: 'bjensen@example.com', externalId: 'okta-00u1', name: { givenName: 'Barbara', familyName: 'Jensen' },
      emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }],
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Research', employeeNumber: '701984' },
    });
    assert.equal(created.status, 201);
    userId = created.body.id;
    assert.equal((await scim(okta, 'POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Engineering', members: [{ value: userId }] })).status, 201);
    assert.equal((await scim(okta, 'GET', `/Users?filter=${encodeURIComponent('userName eq "bjensen@example.com"')}`)).status, 200);
    assert.equal((await scim(okta, 'POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'BJENSEN@example.com' })).status, 409);
    assert.equal((await scim(okta, 'PATCH', `/Users/${userId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'nosuchattribute', value: 'x' }] })).status, 400);

    // Live: the rows arrive without a reload.
    await page.locator('#activity-summary', { hasText: '5 requests shown' }).waitFor();
    const text = await rows('#activity').allInnerTexts();
    assert.match(text[0], /okta\s+PATCH\s+\/scim\/v2\/Users\/\{id\}\s+400\s+invalidPath/);
    assert.match(text[1], /okta\s+POST\s+\/scim\/v2\/Users\s+409\s+uniqueness/);
    assert.match(text[2], /GET\s+\/scim\/v2\/Users\s+200/);
    assert.match(text[3], /POST\s+\/scim\/v2\/Groups\s+201/);
    assert.match(text[4], /POST\s+\/scim\/v2\/Users\s+201/);
    const table = await page.locator('#activity').innerText();
    assert.ok(!table.includes(userId) && !/bjensen/i.test(table), 'the activity holds no ids or personal values');
    await shot('activity');

    await page.selectOption('#activity-status', '4xx');
    await page.locator('#activity-summary', { hasText: '2 requests shown' }).waitFor();
    for (const r of await rows('#activity').allInnerTexts()) assert.match(r, /\t4\d\d\t/);
    await page.selectOption('#activity-status', '2xx');
    await page.locator('#activity-summary', { hasText: '3 requests shown' }).waitFor();
    assert.equal((await scim(okta, 'GET', `/Users/${userId}`)).status, 200);
    await page.locator('#activity-summary', { hasText: '4 requests shown' }).waitFor();
    assert.match((await rows('#activity').allInnerTexts())[0], /GET\s+\/scim\/v2\/Users\/\{id\}\s+200/);
    await page.selectOption('#activity-status', '');
    const tokens = (await admin('GET', '/tenants/acme/tokens')).body.tokens;
    await page.selectOption('#activity-token', tokens[0].id);
    await page.locator('#activity-summary', { hasText: '6 requests shown' }).waitFor();
  });

  await t.test('finds a person through the indexed lookups and shows the user page', async () => {
    // The platform reports a login: the user becomes audited.
    const platform = (await admin('POST', '/tenants/acme/tokens', { name: 'platform', scopes: ['platform'] })).body.secret;
    const login = await fetch(`${base}/api/v1/users/${userId}/interactions`, {
      method: 'POST', headers: { Authorization: `Bearer ${platform}`, 'Content-Type': 'application/json' }, body: '{"type":"login"}',
    });
    assert.equal(login.status, 204);

    await page.click('nav.tabs a:has-text("People")');
    await page.waitForURL(`${base}/console/tenants/acme/people`);
    await page.selectOption('#search-by', 'externalId');
    await page.fill('#search-value', 'OKTA-00U1'); // externalId is case-exact
    await page.click('button:has-text("Search")');
    await page.locator('#results', { hasText: 'Nobody matches.' }).waitFor();
    await page.selectOption('#search-by', 'email');
    await page.fill('#search-value', 'BJensen@Example.com'); // emails fold case
    await page.click('button:has-text("Search")');
    await page.locator('#results h2', { hasText: '1 match' }).waitFor();
    assert.match(await rows('#results').first().innerText(), /bjensen@example\.com\s+Barbara Jensen\s+bjensen@example\.com\s+okta-00u1\s+yes\s+no/);
    // The search value travels in the body, not the URL.
    assert.ok(!urls.some((u) => /bjensen/i.test(u)));
    await shot('people');

    await page.click('#results a:has-text("bjensen@example.com")');
    await page.waitForURL(`${base}/console/tenants/acme/people/${userId}`);
    await page.locator('h1', { hasText: 'bjensen@example.com' }).waitFor();
    const main = await page.locator('main').innerText();
    assert.match(main, /Audited\s+yes \(interacted\)/);
    assert.match(main, /Interactions\s+1/);
    assert.match(main, /Groups \(1\)\s+Engineering/);
    assert.match(main, /name\.givenName\s+Barbara/);
    assert.match(main, /urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User\.department\s+Research/);
    const trail = await rows('#trail').allInnerTexts();
    assert.match(trail[0], /interaction\s+platform\s+login/);
    assert.ok(trail.some((r) => /create\s+okta/.test(r)));
    await shot('user');
  });

  await t.test('anonymizes only after the userName is typed', async () => {
    await page.click('#anonymize');
    const dialog = page.locator('dialog#confirm');
    await dialog.waitFor();
    const listed = await page.locator('#erasure-list li').allInnerTexts();
    for (const a of ['emails', 'externalId', 'name', 'userName', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber']) {
      assert.ok(listed.includes(a), `${a} is not in ${listed}`);
    }
    assert.ok(!listed.some((a) => a.endsWith('department')), 'a department is not personal data: it is kept');
    assert.match(await dialog.innerText(), /leave 1 group/);
    await page.fill('#confirm-username', 'bjensen');
    await shot('anonymize');
    await page.click('#confirm-ok');
    await page.locator('#confirm-error', { hasText: "must be the user's userName" }).waitFor();
    assert.ok(await dialog.isVisible());
    assert.equal((await admin('GET', `/tenants/acme/users/${userId}`)).body.user.userName, 'bjensen@example.com');

    await page.fill('#confirm-username', await page.locator('#confirm-expected').innerText());
    await page.click('#confirm-ok');
    await page.locator('#anonymized-title', { hasText: 'Anonymized' }).waitFor();
    assert.ok(!(await dialog.isVisible()));
    const result = await page.locator('#anonymized').innerText();
    assert.match(result, /Operation\s+anonymize/);
    assert.match(result, /Actor\s+operator/);
    assert.match(result, /Attributes\s+.*emails.*userName/);
    assert.match(result, /Data file cleared\s+(yes|pending)/);
    assert.match(await page.locator('main').innerText(), /Groups \(0\)/);
    assert.ok(await page.locator('#anonymize').isDisabled());
    await shot('anonymized');

    const after = (await admin('GET', `/tenants/acme/users/${userId}`)).body;
    assert.match(after.user.userName, /^anonymized-/);
    assert.equal(after.user.active, false);
    // Newest first: the anonymization by the operator, then (once done) the server's scrub of
    // the data file's free pages.
    const ops = after.audit.trail.map((e) => e.operation);
    const at = ops.indexOf('anonymize');
    assert.ok(at === 0 || (at === 1 && ops[0] === 'scrub'), `trail ${ops}`);
    assert.equal(after.audit.trail[at].actorName, 'operator');
  });

  await t.test('revokes a token after confirmation', async () => {
    await page.click('nav.tabs a:has-text("Tokens")');
    const row = rows('main').filter({ hasText: 'okta' });
    await row.waitFor();
    assert.doesNotMatch(await row.innerText(), /not since start/, 'last use is recorded');
    await row.locator('button:has-text("Revoke")').click();
    await page.locator('dialog#confirm', { hasText: 'Revoke token okta?' }).waitFor();
    await page.keyboard.press('Escape'); // the keyboard cancels, too
    await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
    assert.match(await row.innerText(), /active/);
    assert.equal((await scim(okta, 'GET', '/Users')).status, 200);

    await row.locator('button:has-text("Revoke")').click();
    await page.click('#confirm-ok');
    await page.locator('.flash', { hasText: 'Token okta revoked.' }).waitFor();
    assert.match(await rows('main').filter({ hasText: 'okta' }).innerText(), /revoked/);
    assert.equal((await scim(okta, 'GET', '/Users')).status, 401);
  });

  await t.test('disables and enables a tenant', async () => {
    await page.click('nav.crumbs a:has-text("Tenants")');
    const row = rows('main').filter({ has: page.locator('td:first-child', { hasText: /^acme$/ }) });
    await row.locator('button:has-text("Disable")').click();
    await page.click('#confirm-ok');
    await page.locator('.flash', { hasText: 'Tenant acme disabled.' }).waitFor();
    assert.match(await row.innerText(), /disabled/);
    await row.locator('button:has-text("Enable")').click();
    await page.locator('.flash', { hasText: 'Tenant acme enabled.' }).waitFor();
    assert.match(await row.innerText(), /enabled/);
  });

  await t.test('signs out; the old session cookie no longer works', async () => {
    await page.click('#signout');
    await page.waitForURL(`${base}/console/signin`);
    assert.equal((await context.cookies()).length, 0);
    await page.goto(`${base}/console/`);
    assert.equal(new URL(page.url()).pathname, '/console/signin');
    const replay = await fetch(`${base}/api/v1/admin/tenants`, { headers: { Cookie: `${sessionCookie.name}=${sessionCookie.value}` } });
    assert.equal(replay.status, 401);
  });

  await t.test('no secret in any URL or log line; no CSP violation or script error', async () => {
    for (const secret of [adminSecret, okta, sessionCookie.value]) {
      assert.ok(!urls.some((u) => u.includes(secret)), 'a secret is in a URL');
      assert.ok(!log.includes(secret), 'a secret is in the log');
    }
    assert.ok(!/bjensen/i.test(log), 'a personal value is in the log');
    assert.ok(urls.length > 20);
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });
});
