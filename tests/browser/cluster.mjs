// A real steward cluster for the browser tests and the screenshots: nats-server on a
// port it picks, steward-station with its HTTP server on a free loopback port,
// steward-agents, and stewardctl. Binaries come from STEWARD_BUILD (default ../../build).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;
export const build = resolve(process.env.STEWARD_BUILD || join(here, '../../build'));

async function until(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
export { until };

export class Cluster {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'steward-browser-'));
    this.procs = new Map();
  }

  spawnLogged(name, argv) {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, 'w');
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
    this.procs.set(name, { p, log });
    return p;
  }

  log(name) { return readFileSync(this.procs.get(name).log, 'utf8'); }

  async start() {
    const ports = join(this.dir, 'ports');
    execFileSync('mkdir', ['-p', ports]);
    this.spawnLogged('nats', ['nats-server', '-a', '127.0.0.1', '-p', '-1', '--ports_file_dir', ports]);
    const file = await until('nats-server', () => readdirSync(ports).find((f) => f.endsWith('.ports')));
    this.url = JSON.parse(readFileSync(join(ports, file), 'utf8')).nats[0];
    await this.startStation();
  }

  async startStation() {
    this.spawnLogged('station', [join(build, 'station/steward-station'), '--nats', this.url, '--data-dir',
      join(this.dir, 'station'), '--http', '127.0.0.1:0']);
    const port = await until('the station\'s HTTP port', () => {
      const m = this.log('station').match(/metrics on http:\/\/127\.0\.0\.1:(\d+)\//);
      return m && Number(m[1]);
    });
    this.http = `http://127.0.0.1:${port}`;
    await until('the station', () => this.ctl(['nodes']).status === 0);
  }

  async startAgent(node) {
    this.spawnLogged(node, [join(build, 'agent/steward-agent'), '--node', node, '--nats', this.url, '--data-dir',
      join(this.dir, node), '--heartbeat', '1s']);
    await until(`agent ${node}`, () => this.ctl(['ping', node, '--timeout', '1s']).status === 0);
  }

  stop(name) {
    const e = this.procs.get(name);
    if (e && e.p.exitCode === null) e.p.kill('SIGTERM');
  }

  ctl(args, env) {
    try {
      const out = execFileSync(join(build, 'ctl/stewardctl'), ['--nats', this.url, ...args],
        { encoding: 'utf8', stdio: 'pipe', env: Object.assign({}, process.env, env || {}) });
      return { status: 0, out };
    } catch (e) {
      return { status: e.status, out: String(e.stdout), err: String(e.stderr) };
    }
  }

  close() {
    for (const { p } of this.procs.values()) if (p.exitCode === null) p.kill('SIGKILL');
    if (!process.env.STEWARD_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

// Debian's chromium, headless, with a profile of its own.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'steward-chromium-'));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} is missing: apt-get install chromium (scripts/test does)`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  return { context, close: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); } };
}
