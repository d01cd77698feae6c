// Playwright reference peer for scripts/bench-flows.py: the sandbox flow of ../flow.json as a team
// would hand-write it (fill, click, auto-waiting locators), driven over CDP by playwright-core with
// Debian's Chromium (no browser download).
//
// Protocol (one command per stdin line, one answer per stdout line):
//   warm             -> "ok MS"   one flow in a page reused across flows
//   isolated         -> "ok MS"   new browser context + page, flow, context closed (all timed)
//   batch C N        -> "ok MS"   N isolated flows, C at a time; MS = wall time of the batch
//   pid              -> "ok PID"  the process whose descendants are this tool's browsers
// Errors answer "err MESSAGE" and the tool stays up.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const flow = JSON.parse(readFileSync(new URL('../flow.json', import.meta.url)));
const base = process.argv[2];
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const sel = flow.selectors;
// Playwright adds its own headless and sandbox switches.
const args = flow.chromium_flags.filter(f => !f.startsWith('--headless') && f !== '--no-sandbox'
  && !f.startsWith('--window-size'));

const browser = await chromium.launch({ executablePath, headless: true, args, chromiumSandbox: false });
const contextOptions = { viewport: { width: 1280, height: 900 } };

async function runFlow(page) {
  await page.goto(base + flow.entry_path);
  const reject = page.locator(sel.cookie_reject);
  if (await reject.isVisible()) await reject.click();
  await page.fill(sel.email, flow.username);
  await page.fill(sel.password, flow.password);
  await page.click(sel.login_submit);
  await page.fill(sel.code, flow.code);
  await page.click(sel.code_submit);
  await page.locator(sel.store).first().waitFor();
  const stores = await page.$$eval(sel.store, els => els.map(e => e.dataset.branchId));
  if (stores.join() !== flow.stores.join()) throw new Error(`stores ${stores}`);
}

async function isolated() {
  const context = await browser.newContext(contextOptions);
  try {
    await runFlow(await context.newPage());
  } finally {
    await context.close();
  }
}

let warmPage = null;
async function warm() {
  if (!warmPage) warmPage = await (await browser.newContext(contextOptions)).newPage();
  await runFlow(warmPage);
}

async function batch(concurrency, total) {
  let next = 0;
  const lane = async () => { while (next < total) { next += 1; await isolated(); } };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

async function timed(work) {
  const started = performance.now();
  await work();
  return (performance.now() - started).toFixed(1);
}

const commands = createInterface({ input: process.stdin });
for await (const line of commands) {
  const [command, ...rest] = line.trim().split(/\s+/);
  try {
    if (command === 'warm') console.log(`ok ${await timed(warm)}`);
    else if (command === 'isolated') console.log(`ok ${await timed(isolated)}`);
    else if (command === 'batch') console.log(`ok ${await timed(() => batch(+rest[0], +rest[1]))}`);
    else if (command === 'pid') console.log(`ok ${process.pid}`);
    else if (command === 'quit') break;
    else console.log(`err unknown command ${command}`);
  } catch (error) {
    console.log(`err ${String(error.message || error).split('\n')[0]}`);
  }
}
await browser.close();
