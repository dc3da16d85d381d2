import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { serveStatic } from './static-server.mjs';
const server = await serveStatic(process.argv[2] ?? 'dist');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
async function renderers() {
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  const out = [];
  for (const p of processInfo.filter((p) => p.type === 'renderer')) {
    try { const s = await readFile(`/proc/${p.id}/status`, 'utf8');
      out.push(`pid ${p.id} hwm ${(+/VmHWM:\s+(\d+)/.exec(s)[1]/1024).toFixed(0)} rss ${(+/VmRSS:\s+(\d+)/.exec(s)[1]/1024).toFixed(0)}`); } catch {}
  }
  return out.join(' | ');
}
const page = await (await browser.newContext()).newPage();
const samples = [];
let done = false;
(async () => { while (!done) { samples.push(await renderers()); await new Promise(r => setTimeout(r, 100)); } })();
await page.goto(server.url + (process.argv[3] ?? ''));
await page.waitForSelector('.page[data-state="ready"]', { timeout: 180_000 });
await page.evaluate(() => window.benchEmbed('night cream'));
done = true;
const cdp = await page.context().newCDPSession(page);
await cdp.send('Performance.enable');
const { metrics } = await cdp.send('Performance.getMetrics');
console.log(metrics.filter(m => /JSHeap|Nodes|Documents/.test(m.name)).map(m => `${m.name}=${(m.value/ (m.name.includes('Heap')?2**20:1)).toFixed(1)}`).join(' '));
const step = Math.max(1, Math.floor(samples.length / 12));
samples.filter((_, i) => i % step === 0).forEach(s => console.log(s));
console.log('final', await renderers());
await browser.close(); await server.close();
