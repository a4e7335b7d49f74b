// Screenshots of the dashboard for people (scripts/screenshots): a small live fleet,
// each page at a laptop's and a phone's size, written to the directory given (default
// ./screenshots).
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cluster, launch, until } from './cluster.mjs';

const out = resolve(process.argv[2] || 'screenshots');
mkdirSync(out, { recursive: true });
const cluster = new Cluster();
let browser;
try {
  await cluster.start();
  for (const n of ['ship1', 'ship2', 'ship3', 'radar-a']) await cluster.startAgent(n);
  cluster.ctl(['send', 'ship1,ship2,ship3', '--', 'uname', '-a']);
  cluster.ctl(['send', 'ship2', '--', 'sh', '-c', 'echo disk almost full >&2; exit 3']);
  cluster.ctl(['maintenance', 'on', 'radar-a', '--reason', 'antenna swap']);
  cluster.stop('ship3');
  cluster.stop('radar-a');
  await until('offline', async () => {
    const f = await fetch(`${cluster.http}/api/v1/fleet`).then((r) => r.json());
    return f.counts.offline === 2;
  });
  const fan = cluster.ctl(['send', '--no-wait', 'ship1,ship3', '--', 'df', '-h', '/']);
  const id = fan.out.trim().split('\n')[0].split(' ')[1];
  const cmd = await fetch(`${cluster.http}/api/v1/commands/${id}`).then((r) => r.json());
  cluster.ctl(['pause', '--reason', 'change freeze until 18:00']);
  browser = await launch();
  const pages = { fleet: '/#/', node: '/#/node/ship2', command: `/#/command/${id}`,
    request: `/#/request/${cmd.request_id}`, audit: '/#/audit' };
  for (const [size, viewport] of Object.entries({ laptop: { width: 1366, height: 768 }, phone: { width: 390, height: 844 } })) {
    const page = await browser.context.newPage({ viewport });
    await page.setViewportSize(viewport);
    for (const [name, path] of Object.entries(pages)) {
      await page.goto(cluster.http + path);
      await page.waitForSelector('main h1, main .counts');
      await page.waitForTimeout(300);
      const file = join(out, `${name}-${size}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(file);
    }
    await page.close();
  }
} finally {
  if (browser) await browser.close();
  cluster.close();
}
