#!/usr/bin/env node
// A browser app on another origin calling the gateway with a bearer token, in Debian's
// headless Chromium (playwright-core, never a downloaded browser). For each page URL (each a
// different origin), opens it and, from that page, POSTs `count` chat requests to the gateway
// with `fetch` (an Authorization header makes the browser send a preflight first). Prints one
// JSON line: per page, per call, the status the page could read (or the fetch error CORS
// caused), the `Retry-After` and `X-RateLimit-Remaining` the page could read, and the body.
//
//   node test-harness/browser/cors.mjs --gateway http://127.0.0.1:PORT --token T --count 2 \
//     --page http://127.0.0.1:A/app.html --page http://127.0.0.1:B/app.html
//
// Exit 0 with the JSON line; 1 on a browser failure. Bounded by 60 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const args = { page: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const name = argv[i].replace(/^--/, '');
  if (name === 'page') {
    args.page.push(argv[i + 1]);
  } else {
    args[name] = argv[i + 1];
  }
}
if (!args.gateway || !args.token || args.page.length === 0) {
  console.error('usage: cors.mjs --gateway URL --token T [--count N] --page URL [--page URL]');
  process.exit(2);
}
const count = Number(args.count || 1);

const timer = setTimeout(() => {
  console.error('cors: timed out');
  process.exit(1);
}, 60_000);

const userDataDir = mkdtempSync(path.join(tmpdir(), 'cors-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
  const results = [];
  for (const url of args.page) {
    const page = await context.newPage();
    await page.goto(url, { timeout: 20_000 });
    const calls = await page.evaluate(
      async ({ gateway, token, count }) => {
        const out = [];
        for (let i = 0; i < count; i++) {
          try {
            const response = await fetch(`${gateway}/v1/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'qwen3:32b', messages: [{ role: 'user', content: 'hi' }] }),
            });
            out.push({
              status: response.status,
              retryAfter: response.headers.get('retry-after'),
              remaining: response.headers.get('x-ratelimit-remaining'),
              body: await response.text(),
            });
          } catch (error) {
            out.push({ error: String(error) });
          }
        }
        return out;
      },
      { gateway: args.gateway, token: args.token, count },
    );
    results.push({ page: url, origin: new URL(url).origin, calls });
    await page.close();
  }
  console.log(JSON.stringify(results));
  await context.close();
  clearTimeout(timer);
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
} catch (error) {
  console.error(`cors: ${error.stack || error}`);
  try {
    await context?.close();
  } catch {
    // exiting anyway
  }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}
