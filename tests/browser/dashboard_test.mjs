// The dashboard in a real browser (Debian's chromium, headless) against a real
// station, broker and agents: DOM assertions after real events, without reloading.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, launch, until } from './cluster.mjs';

let cluster;
let browser;

before(async () => {
  cluster = new Cluster();
  await cluster.start();
  await cluster.startAgent('ship1');
  await cluster.startAgent('ship2');
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) cluster.close();
});

async function open(path) {
  const page = await browser.context.newPage();
  // The suite runs beside others on two cores: waits are for conditions, generously.
  page.setDefaultTimeout(60000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(cluster.http + path);
  // Marks this document: still there at the end means the page never reloaded.
  await page.evaluate(() => { window.__loadedOnce = true; });
  return { page, errors };
}

test('a node that goes offline changes its row without a reload', async () => {
  const { page, errors } = await open('/');
  await page.waitForSelector('tr[data-node="ship2"][data-status="online"]');
  assert.equal(await page.textContent('[data-count="online"] b'), '2');
  await page.waitForSelector('#live:text("live")');
  cluster.stop('ship2');
  await page.waitForSelector('tr[data-node="ship2"][data-status="offline"]', { timeout: 15000 });
  assert.equal(await page.textContent('tr[data-node="ship2"] .status'), 'offline');
  assert.equal(await page.textContent('[data-count="alarm"] b'), '1');
  assert.equal(await page.textContent('tr[data-node="ship1"] .status'), 'online');
  // A command sent meanwhile shows in its node's row.
  assert.equal(cluster.ctl(['send', 'ship1', '--', 'true']).status, 0);
  await page.waitForSelector('tr[data-node="ship1"] .last [data-state="succeeded"]');
  // Filters and search.
  await page.selectOption('#status', 'offline');
  assert.equal(await page.isHidden('tr[data-node="ship1"]'), true);
  assert.equal(await page.isVisible('tr[data-node="ship2"]'), true);
  await page.selectOption('#status', 'all');
  await page.fill('#search', 'ship1');
  assert.equal(await page.isHidden('tr[data-node="ship2"]'), true);
  assert.equal(await page.evaluate(() => window.__loadedOnce), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a command page opened mid-run shows its live state, then its output', async () => {
  const sent = cluster.ctl(['send', '--no-wait', 'ship1', '--', 'sh', '-c', 'sleep 3; echo finished-output']);
  assert.equal(sent.status, 0);
  const id = sent.out.trim().split(' ')[1];
  await until('running', async () => {
    const r = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((x) => x.json());
    return r.state === 'running';
  });
  const { page, errors } = await open(`/#/command/${id}`);
  await page.waitForSelector('#command-state [data-state="running"]');
  await page.waitForSelector('#command-state [data-state="succeeded"]', { timeout: 15000 });
  await page.waitForSelector('#stdout:text("finished-output")');
  assert.match(await page.textContent('#outcome'), /succeeded, exit 0/);
  assert.equal(await page.evaluate(() => window.__loadedOnce), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('pause and maintenance from the dashboard, and the audit shows who', async () => {
  const token = cluster.ctl(['token', 'create', '--name', 'alice']).out.trim();
  const { page, errors } = await open('/');
  await page.evaluate((t) => localStorage.setItem('steward-token', t), token);
  page.on('dialog', (d) => d.accept('drill'));
  await page.click('#pause');
  await page.waitForSelector('#dispatch.paused');
  assert.match(cluster.ctl(['nodes']).out, /dispatch PAUSED .* by alice/);
  await page.click('#resume');
  await page.waitForSelector('#dispatch', { state: 'hidden' });
  await page.goto(`${cluster.http}/#/node/ship1`);
  let off;
  try {
    await maintenanceFromTheDashboard(page);
  } finally {
    // Whatever happened above, the next tests need ship1 out of maintenance.
    off = cluster.ctl(['maintenance', 'off', 'ship1']);
  }
  assert.equal(off.status, 0);
  assert.deepEqual(errors, []);
  await page.close();
});

async function maintenanceFromTheDashboard(page) {
  await page.click('#maintenance');
  await page.waitForSelector('tr[data-node]', { state: 'detached' }).catch(() => {});
  await until('maintenance', () => /on drill/.test(cluster.ctl(['nodes']).out));
  await page.goto(`${cluster.http}/#/`);
  await page.waitForSelector('tr[data-node="ship1"][data-maintenance="1"]');
  await page.goto(`${cluster.http}/#/audit`);
  await page.waitForSelector('#actions tr');
  const actions = await page.textContent('#actions');
  assert.match(actions, /alice \(http token t[0-9a-f]+\)/);
  assert.match(actions, /maintenance on/);
  assert.match(actions, /pause/);
}

test('two dashboards see a request for approval appear, and both see it go when one approves', async () => {
  const bob = cluster.ctl(['token', 'create', '--name', 'bob']).out.trim();
  const a = await open('/');
  const b = await open('/');
  await a.page.waitForSelector('#live:text("live")');
  await b.page.waitForSelector('#live:text("live")');
  const sent = cluster.ctl(['send', '--require-approval', '--env', 'GREETING=ahoy', 'ship1', '--', 'echo', 'approved-run'],
    { USER: 'alice' });
  assert.equal(sent.status, 0, sent.err);
  const id = sent.out.trim().split(' ')[1];
  const row = `tr[data-approval="${id}"]`;
  await a.page.waitForSelector(row);
  await b.page.waitForSelector(row);
  assert.match(await b.page.textContent(row), /by alice/);
  // The approver sees the environment the command sets, not only its argv.
  assert.match(await b.page.textContent(row), /echo approved-run \[env: GREETING=ahoy\]/);
  await a.page.evaluate((t) => localStorage.setItem('steward-token', t), bob);
  await a.page.click(`${row} button.approve`);
  await a.page.waitForSelector(row, { state: 'detached' });
  await b.page.waitForSelector(row, { state: 'detached' });
  await until('approved and run', async () => {
    const r = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((x) => x.json());
    return r.state === 'succeeded';
  });
  const c = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((x) => x.json());
  assert.match(c.marks.approval.decided_by, /^bob \(http token/);
  for (const p of [a, b]) {
    assert.equal(await p.page.evaluate(() => window.__loadedOnce), true);
    assert.deepEqual(p.errors, []);
    await p.page.close();
  }
});

test('a fan-out page shows its progress and who has not answered', async () => {
  const sent = cluster.ctl(['send', '--no-wait', 'ship1,ship2', '--', 'true']);
  assert.equal(sent.status, 0);
  const id = sent.out.trim().split('\n')[0].split(' ')[1];
  const cmd = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((x) => x.json());
  const { page, errors } = await open(`/#/request/${cmd.request_id}`);
  await page.waitForSelector('#not-answered:text("ship2")');
  await page.waitForSelector('#progress-text:text("1 of 2 finished")');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a staged rollout page shows its batches and why it stopped', async () => {
  // ship1 (batch 1) fails, which reaches --abort-after 1: ship2's batch is never sent.
  const sent = cluster.ctl(['send', '--no-wait', '--batch', '1', '--abort-after', '1', 'ship1,ship2', '--', 'false']);
  assert.equal(sent.status, 0, sent.err);
  const id = sent.out.trim().split('\n')[0].split(' ')[1];
  const cmd = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((x) => x.json());
  const job = await fetch(`${cluster.http}/api/v1/jobs/${cmd.request_id}`).then((x) => x.json());
  assert.equal(job.batches.length, 2);
  const { page, errors } = await open(`/#/request/${cmd.request_id}`);
  await page.waitForSelector('#rollout-state:text("aborted")');
  await page.waitForSelector('#rollout-state:text("1 of 2 failed")');
  assert.equal(await page.locator('#batches tbody tr').count(), 2);
  assert.match(await page.locator('#batches tbody tr').nth(1).innerText(), /not yet/);
  assert.deepEqual(errors, []);
  await page.close();
  const missing = await fetch(`${cluster.http}/api/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  assert.equal(missing.status, 404);
});

test('a node page streams the agent\'s own log live, stops it, and leaving the page stops it too', async () => {
  const token = cluster.ctl(['token', 'create', '--name', 'dora']).out.trim();
  const { page, errors } = await open('/#/node/ship1');
  await page.evaluate((t) => localStorage.setItem('steward-token', t), token);
  const endedAtAgent = () => (cluster.log('ship1').match(/debug stream \S+ for dora .* ended: the operator went away/g) || []).length;
  await page.waitForSelector('#debug[data-stream="off"]');
  await page.selectOption('#debug-level', 'debug');
  await page.click('#debug-start');
  await page.waitForSelector('#debug[data-stream="on"]');
  // A command makes the agent log at debug level; its line shows up live. (The page
  // reads itself again on the command's events meanwhile: the stream goes on.)
  const sent = cluster.ctl(['send', '--no-wait', '--method', 'echo', 'ship1', '--', 'hi']);
  assert.equal(sent.status, 0, sent.err);
  const id = sent.out.trim().split(' ')[1];
  await page.waitForSelector(`#debug-lines:has-text("DEBUG command ${id} echo/")`);
  assert.equal(await page.getAttribute('#debug', 'data-stream'), 'on');
  await page.click('#debug-stop');
  await page.waitForSelector('#debug[data-stream="ended"]');
  assert.match(await page.textContent('#debug-state'), /stopped by dora \(http token/);
  await until('the agent stopped streaming', () => endedAtAgent() === 1, 20000);

  // Started again, then the operator leaves the page: the stream stops with it.
  await page.click('#debug-start');
  await page.waitForSelector('#debug[data-stream="on"]');
  await page.goto(`${cluster.http}/#/`);
  await page.waitForSelector('tr[data-node="ship1"]');
  await until('the agent stopped streaming again', () => endedAtAgent() === 2, 20000);
  // Both starts and both stops are in the audit as dora's (written behind the answers).
  await until('the audit', async () => {
    const audit = await fetch(`${cluster.http}/api/v1/audit?limit=100`).then((x) => x.json());
    const mine = (action) => audit.actions.filter((a) => a.action === action && /^dora \(http token/.test(a.operator) && a.outcome === 'ok');
    return mine('debug').length === 2 && mine('debug stop').length === 2;
  });
  assert.deepEqual(errors, []);
  await page.close();
});
