#!/usr/bin/env node
// Drives the chat page (demo/chat/) in Debian's headless Chromium through playwright-core (which
// never downloads a browser): logs in through the gateway's OAuth2 flow and the IdP's form,
// sends Markdown with HTML in it and checks the streamed answer is rendered as Markdown with
// the HTML shown as text and nothing executed, exercises the conversation list, logs out, and
// (with --forbidden-user) checks the 403 "Missing permission" message.
//
//   node test-harness/browser/chat-page.mjs --base http://127.0.0.1:8080 --user alice \
//     --expect-name "Alice Chen" --screenshot target/chat-page.png [--forbidden-user bob]
//
// One line per step; exit 0 on success, 1 with the failing step (and <screenshot>-failure.png).
// The whole run is bounded by 90 s.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TOTAL_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 20_000;
const CHROMIUM = '/usr/bin/chromium';
// No internet here: without these Chromium keeps dialing out (and retrying closed connections).
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

const MESSAGE = [
  'Hello **bold** `code` <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>',
  '```js',
  'const answer = 6 * 7; // <b>not bold</b>',
  '```',
].join('\n');
const RENAMED = 'Renamed by the browser test';

function usage(message) {
  if (message) {
    console.error(`chat-page: ${message}`);
  }
  console.error(
    'usage: node test-harness/browser/chat-page.mjs --base URL --user LOGIN --expect-name NAME ' +
      '--screenshot FILE.png [--forbidden-user LOGIN]',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--(base|user|expect-name|screenshot|forbidden-user)(?:=(.*))?$/.exec(arg);
    if (!m) {
      usage(`unknown argument ${JSON.stringify(arg)}`);
    }
    const value = m[2] !== undefined ? m[2] : argv[++i];
    if (value === undefined || value === '') {
      usage(`--${m[1]} needs a value`);
    }
    args[m[1]] = value;
  }
  for (const required of ['base', 'user', 'expect-name', 'screenshot']) {
    if (!args[required]) {
      usage(`--${required} is required`);
    }
  }
  args.base = args.base.replace(/\/+$/, '');
  try {
    new URL(args.base);
  } catch {
    usage(`--base ${JSON.stringify(args.base)} is not a URL`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const failureShot = args.screenshot.replace(/(\.png)?$/i, '-failure.png');
const forbiddenShot = args.screenshot.replace(/(\.png)?$/i, '-forbidden.png');

let context = null;
let page = null;
let userDataDir = null;
let stepName = 'start';
let stepNumber = 0;
let finished = false;
const pageProblems = [];

function cleanupProfile() {
  if (userDataDir) {
    try {
      rmSync(userDataDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
    userDataDir = null;
  }
}

async function fail(message) {
  if (finished) {
    return;
  }
  finished = true;
  console.log(`chat-page: FAIL at step ${stepNumber} "${stepName}": ${message}`);
  if (page) {
    try {
      console.log(`chat-page: the page was at ${page.url()}`);
      mkdirSync(path.dirname(path.resolve(failureShot)), { recursive: true });
      await withTimeout(page.screenshot({ path: failureShot, fullPage: true }), 5000, 'failure screenshot');
      console.log(`chat-page: failure screenshot: ${failureShot}`);
    } catch (err) {
      console.log(`chat-page: no failure screenshot (${err.message})`);
    }
  }
  if (pageProblems.length) {
    console.log(`chat-page: page errors: ${pageProblems.join(' | ')}`);
  }
  try {
    await withTimeout(context?.close(), 5000, 'closing the browser');
  } catch {
    // exiting anyway
  }
  cleanupProfile();
  process.exit(1);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function step(name, fn) {
  stepNumber++;
  stepName = name;
  const detail = await withTimeout(Promise.resolve().then(fn), STEP_TIMEOUT_MS, `step "${name}"`);
  if (pageProblems.length) {
    throw new Error(`the page reported errors: ${pageProblems.join(' | ')}`);
  }
  console.log(`chat-page: ok ${String(stepNumber).padStart(2)} ${name}${detail ? `: ${detail}` : ''} (${elapsed()})`);
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

const onChatPage = () => {
  const url = new URL(page.url());
  return `${url.origin}${url.pathname}` === `${args.base}/chat`;
};

/** From the chat page's login button through the IdP's pages back to /chat, logged in. */
async function logIn(login) {
  await page.locator('#login').click();
  const deadline = Date.now() + 15_000;
  let submitted = false;
  while (Date.now() < deadline) {
    if (onChatPage()) {
      if (await page.locator('#user-name').isVisible().catch(() => false)) {
        const name = (await page.locator('#user-name').textContent()).trim();
        if (name) {
          return { name, viaForm: submitted };
        }
      }
    } else {
      const stray = await strayGatewayPage();
      check(!stray, `login failed: ${stray}`);
      const loginField = page.locator('input[name="login"]');
      if (await loginField.isVisible().catch(() => false)) {
        const error = page.locator('#error');
        if (await error.count()) {
          throw new Error(`the IdP refused the login of ${JSON.stringify(login)}: ${await error.first().textContent()}`);
        }
        check(!submitted, `the IdP asked for the login of ${JSON.stringify(login)} again`);
        await loginField.fill(login);
        await page.locator('input[name="password"]').fill('any password works');
        submitted = true;
        await Promise.all([
          page.waitForNavigation({ timeout: 10_000 }).catch(() => {}),
          page.locator('form button[type="submit"], form input[type="submit"]').first().click(),
        ]);
        continue;
      }
      // A consent page (a form with a single Continue button).
      const consent = page.locator('form button[type="submit"]', { hasText: /continue|allow|authorize|yes/i });
      if (await consent.isVisible().catch(() => false)) {
        await Promise.all([page.waitForNavigation({ timeout: 10_000 }).catch(() => {}), consent.first().click()]);
        continue;
      }
    }
    await page.waitForTimeout(150);
  }
  throw new Error(`not back on ${args.base}/chat logged in after the IdP (at ${page.url()})`);
}

/** From the logout button (through the IdP's end-session pages, if any) back to the logged-out page. */
async function logOut() {
  await page.locator('#logout').click();
  const deadline = Date.now() + 15_000;
  let confirmed = false;
  while (Date.now() < deadline) {
    if (onChatPage() && (await page.locator('#login').isVisible().catch(() => false))) {
      return confirmed ? 'confirmed at the IdP, back on the logged-out page' : 'back on the logged-out page';
    }
    if (!onChatPage()) {
      const stray = await strayGatewayPage();
      check(!stray, `logout failed: ${stray}`);
      // The IdP's "Do you want to sign out?" form (carries logout=yes).
      const confirm = page.locator('form:has(input[name="logout"]) button[type="submit"], form:has(input[name="logout"]) input[type="submit"]');
      if (!confirmed && (await confirm.first().isVisible().catch(() => false))) {
        confirmed = true;
        await Promise.all([page.waitForNavigation({ timeout: 10_000 }).catch(() => {}), confirm.first().click()]);
        continue;
      }
      // An IdP that ends on its own "signed out" page instead of redirecting back.
      const text = await page.locator('body').textContent().catch(() => '');
      if (/sign[- ]?out success|signed out|logged out/i.test(text || '')) {
        await page.goto(`${args.base}/chat`);
        continue;
      }
    }
    await page.waitForTimeout(150);
  }
  throw new Error(`no logged-out chat page after logout (at ${page.url()})`);
}

async function sendMessage(text) {
  const input = page.locator('#input');
  await input.fill(text);
  await input.press('Enter');
}

const answers = () => page.locator('#messages .msg.assistant');

/** Waits until the last answer is complete and contains `expected`, or an error notice shows. */
async function waitForAnswer(expected, count) {
  await page.waitForFunction(
    ([text, n]) => {
      if (document.querySelector('#notices .notice.error, #notices .notice.warning')) {
        return true;
      }
      const all = document.querySelectorAll('#messages .msg.assistant');
      const last = all[all.length - 1];
      return all.length === n && !last.classList.contains('streaming') && last.textContent.includes(text);
    },
    [expected, count],
    { timeout: 15_000 },
  );
  const problems = await page.locator('#notices .notice.error, #notices .notice.warning').count();
  check(problems === 0, `the page shows an error instead of the answer: ${await noticeText()}`);
}

/** The text of a gateway page we should not be on (a JSON error from the login callback...). */
async function strayGatewayPage() {
  const url = new URL(page.url());
  if (url.origin !== new URL(args.base).origin || url.pathname === '/chat') {
    return null;
  }
  const text = ((await page.locator('body').textContent().catch(() => '')) || '').trim();
  return text.startsWith('{') ? `${url.pathname} answered ${text.slice(0, 300)}` : null;
}

async function main() {
  userDataDir = mkdtempSync(path.join(tmpdir(), 'chat-page-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 860 },
    timeout: 30_000,
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  // CSP violations and script errors on our own pages fail the run.
  page.on('console', (msg) => {
    const text = msg.text();
    if (msg.type() === 'error' && /content security policy|refused to (execute|load|apply|connect)/i.test(text)) {
      if (page.url().startsWith(args.base)) {
        pageProblems.push(`CSP: ${text}`);
      }
    }
  });
  page.on('pageerror', (err) => {
    if (page.url().startsWith(args.base)) {
      pageProblems.push(`script error: ${err.message}`);
    }
  });
  // The request bodies the page sends to the chat API, to check what context it sends.
  const chatRequests = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url() === `${args.base}/v1/chat/completions`) {
      try {
        chatRequests.push({ body: JSON.parse(request.postData() || 'null'), origin: request.headers().origin });
      } catch {
        chatRequests.push({ body: null });
      }
    }
  });

  await step('open /chat logged out', async () => {
    const response = await page.goto(`${args.base}/chat`);
    check(response && response.status() === 200, `GET /chat answered ${response && response.status()}`);
    const csp = response.headers()['content-security-policy'] || '';
    await page.locator('#login').waitFor({ state: 'visible' });
    check(!(await page.locator('#app').isVisible()), 'the chat is shown without a session');
    return csp.includes("script-src 'self'") ? 'login button shown, CSP header present' : 'login button shown (no CSP header!)';
  });

  await step(`log in as ${args.user} through the IdP`, async () => {
    const { name, viaForm } = await logIn(args.user);
    check(viaForm, 'the IdP did not show its login form');
    return `back on /chat as "${name}"`;
  });

  await step('the user name is shown', async () => {
    const name = (await page.locator('#user-name').textContent()).trim();
    check(name === args['expect-name'], `shows ${JSON.stringify(name)}, expected ${JSON.stringify(args['expect-name'])}`);
    return name;
  });

  await step('the model picker is filled from /v1/models', async () => {
    await page.locator('#model:not([disabled])').waitFor({ timeout: 10_000 }).catch(() => {});
    const options = await page.locator('#model option').evaluateAll((os) => os.map((o) => o.value));
    const models = options.filter(Boolean);
    check(models.length > 0, `no model in the picker (notices: ${await noticeText()})`);
    return models.join(', ');
  });

  await step('send Markdown with HTML in it and watch the answer stream', async () => {
    // Counts the distinct renderings of the answer while it streams.
    await page.evaluate(() => {
      window.__renders = new Set();
      const messages = document.getElementById('messages');
      new MutationObserver(() => {
        const bubbles = messages.querySelectorAll('.msg.assistant .bubble');
        const last = bubbles[bubbles.length - 1];
        if (last) {
          window.__renders.add(last.textContent.length);
        }
      }).observe(messages, { childList: true, subtree: true, characterData: true });
    });
    await sendMessage(MESSAGE);
    await waitForAnswer('You said', 1);
    const renders = await page.evaluate(() => window.__renders.size);
    return `answer complete after ${renders} partial rendering(s)`;
  });

  await step('the answer is rendered Markdown, its HTML is text, nothing ran', async () => {
    const answer = answers().last();
    const strong = await answer.locator('strong').allTextContents();
    check(strong.includes('bold'), `no <strong>bold</strong> in the answer (strong: ${JSON.stringify(strong)})`);
    const inlineCode = await answer.locator(':not(pre) > code').allTextContents();
    check(inlineCode.includes('code'), `no <code>code</code> in the answer (code: ${JSON.stringify(inlineCode)})`);
    const block = await answer.locator('.codeblock pre code').allTextContents();
    check(block.some((t) => t.includes('const answer = 6 * 7;') && t.includes('<b>not bold</b>')), `no fenced code block (${JSON.stringify(block)})`);
    const lang = await answer.locator('.codeblock .codelang').allTextContents();
    check(lang.includes('js'), `the code block has no "js" label (${JSON.stringify(lang)})`);
    for (const tag of ['img', 'script', 'b', 'iframe']) {
      const n = await page.locator(`#messages ${tag}`).count();
      check(n === 0, `${n} <${tag}> element(s) in the conversation`);
    }
    const xss = await page.evaluate(() => typeof window.__xss);
    check(xss === 'undefined', `window.__xss is ${xss}: the HTML ran`);
    const text = await answer.locator('.bubble').innerText();
    check(text.includes('<img src=x onerror="window.__xss=1">'), 'the literal "<img ..." text is not shown');
    check(text.includes('<script>window.__xss=2</script>'), 'the literal "<script>" text is not shown');
    check(await answer.getByText('<img src=x', { exact: false }).first().isVisible(), '"<img" is not visible');
    return '<strong>, <code>, code block with label; no img/script; <img shown as text';
  });

  await step('screenshot', async () => {
    mkdirSync(path.dirname(path.resolve(args.screenshot)), { recursive: true });
    await page.screenshot({ path: args.screenshot, fullPage: true });
    return args.screenshot;
  });

  await step('clear context: divider shown, the next request sends no earlier message', async () => {
    await page.locator('#clear-context').click();
    await page.locator('#messages .divider').waitFor();
    const before = chatRequests.length;
    await sendMessage('After the divider');
    await waitForAnswer('After the divider', 2);
    const sent = chatRequests[before]?.body;
    check(sent, 'no chat request seen');
    check(sent.stream === true, 'the request did not ask for a stream');
    check(
      Array.isArray(sent.messages) && sent.messages.length === 1 && sent.messages[0].content === 'After the divider',
      `the request sent ${JSON.stringify(sent.messages)}`,
    );
    check(chatRequests[0].body.messages.length === 1, 'the first request sent more than one message');
    return `sent ${sent.messages.length} message (model ${sent.model})`;
  });

  await step('rename the conversation', async () => {
    await page.locator('.conv.active .conv-rename').click();
    const field = page.locator('.conv-rename-input');
    await field.fill(RENAMED);
    await field.press('Enter');
    await page.locator('.conv.active .conv-name', { hasText: RENAMED }).waitFor();
    const title = (await page.locator('#conv-title').textContent()).trim();
    check(title === RENAMED, `the header shows ${JSON.stringify(title)}`);
    return RENAMED;
  });

  await step('create a second conversation', async () => {
    await page.locator('#new-conv').click();
    await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv').length === 2);
    const names = await page.locator('#conv-list .conv-name').allTextContents();
    check(names.includes(RENAMED), `the list is ${JSON.stringify(names)}`);
    check((await page.locator('.conv.active .conv-name').textContent()) !== RENAMED, 'the new conversation is not the current one');
    check((await answers().count()) === 0, 'the new conversation is not empty');
    return `list: ${names.map((n) => JSON.stringify(n)).join(', ')}`;
  });

  await step('the conversations survive a reload', async () => {
    await page.reload();
    await page.locator('#user-name').waitFor({ state: 'visible' });
    await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv').length === 2);
    await page.locator('#conv-list .conv-open', { hasText: RENAMED }).click();
    await answers().first().waitFor();
    check((await answers().count()) === 2, 'the renamed conversation lost its answers');
    check((await page.locator('#messages .divider').count()) === 1, 'the divider is gone');
    return 'both conversations and the answers are back';
  });

  await step('delete a conversation', async () => {
    const other = page.locator('#conv-list .conv', { hasNotText: RENAMED });
    await other.hover();
    await other.locator('.conv-delete').click(); // arms
    await other.locator('.conv-delete').click(); // confirms
    await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv').length === 1);
    const names = await page.locator('#conv-list .conv-name').allTextContents();
    check(names.length === 1 && names[0] === RENAMED, `the list is ${JSON.stringify(names)}`);
    return `left: ${JSON.stringify(names[0])}`;
  });

  await step('log out', async () => {
    const how = await logOut();
    check(!(await page.locator('#app').isVisible()), 'the chat is still shown after logout');
    const info = await page.evaluate(async () => (await fetch('/oauth2/userinfo', { credentials: 'same-origin' })).status);
    check(info === 401, `/oauth2/userinfo answers ${info} after logout`);
    return `${how}; userinfo 401`;
  });

  if (args['forbidden-user']) {
    const login = args['forbidden-user'];
    await step(`log in as ${login} (no chat:write)`, async () => {
      const { name, viaForm } = await logIn(login);
      check(viaForm, `the IdP did not ask who logs in (still signed in as ${JSON.stringify(name)}?)`);
      check(name !== args['expect-name'], `logged in as ${JSON.stringify(name)} again, not as ${login}`);
      return `as "${name}"`;
    });

    await step('sending shows "Missing permission" naming chat:write', async () => {
      const before = await answers().count();
      await sendMessage('May I chat?');
      const notice = page.locator('#notices .notice', { hasText: 'Missing permission' });
      await notice.waitFor({ timeout: 10_000 });
      const text = await notice.innerText();
      check(text.includes('chat:write'), `the notice does not name chat:write: ${JSON.stringify(text)}`);
      check((await answers().count()) === before, 'an answer appeared for a refused request');
      const kept = await page.locator('#input').inputValue();
      check(kept === 'May I chat?', 'the refused message was not put back in the composer');
      await page.screenshot({ path: forbiddenShot, fullPage: true });
      return `${JSON.stringify(text.replace(/\s+/g, ' ').replace(/✕$/, '').trim())} (${forbiddenShot})`;
    });

    await step(`log out ${login}`, async () => logOut());
  }

  finished = true;
  await context.close();
  cleanupProfile();
  console.log(`chat-page: all ${stepNumber} steps passed in ${elapsed()}`);
}

async function noticeText() {
  const texts = await page.locator('#notices .notice').allInnerTexts().catch(() => []);
  return texts.length ? texts.map((t) => t.replace(/\s+/g, ' ')).join(' | ') : '(none)';
}

const overall = setTimeout(() => {
  fail(`the run took longer than ${TOTAL_TIMEOUT_MS / 1000} s`);
}, TOTAL_TIMEOUT_MS);

main()
  .then(() => {
    clearTimeout(overall);
    process.exit(0);
  })
  .catch(async (err) => {
    clearTimeout(overall);
    await fail(err && err.message ? err.message.split('\n')[0] : String(err));
  });
