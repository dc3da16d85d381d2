import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { serveStatic } from './static-server.mjs';
const dir = process.argv[2]; const n = Number(process.argv[3] ?? 5);
const peaks = [];
for (let i = 0; i < n; i++) {
  const server = await serveStatic(dir);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.url);
  await page.waitForSelector('.page[data-state="ready"]', { timeout: 180_000 });
  for (let q = 0; q < 20; q++) await page.evaluate(() => window.benchEmbed('gentle hydrating night cream for dry and sensitive skin'));
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  let peak = 0;
  for (const p of processInfo.filter((p) => p.type === 'renderer')) { try { const s = await readFile(`/proc/${p.id}/status`, 'utf8'); peak = Math.max(peak, +/VmHWM:\s+(\d+)/.exec(s)[1] / 1024); } catch {} }
  peaks.push(Math.round(peak));
  await browser.close(); await server.close();
}
peaks.sort((a, b) => a - b);
console.log(dir, 'peaks', peaks.join(' '), 'median', peaks[Math.floor(n / 2)]);
