#!/usr/bin/env node
// Drives the chat page (demo/chat/) in Debian's headless Chromium through playwright-core (which
// never downloads a browser): logs in through the gateway's OAuth2 flow and the IdP's form,
// sends Markdown with HTML in it and checks the streamed answer is rendered as Markdown with
// the HTML shown as text and nothing executed, exercises the conversation list, attaches images
// (a 3000x2000 PNG through the file picker, downscaled and sent as a JPEG data URL; a pasted one
// to a vision model named by a mocked /v1/models), checks code highlighting, logs out, and
// (with --forbidden-user) checks the 403 "Missing permission" message.
//
//   node test-harness/browser/chat-page.mjs --base http://127.0.0.1:8080 --user alice \
//     --expect-name "Alice Chen" --screenshot target/chat-page.png [--forbidden-user bob]
//
// One line per step; exit 0 on success, 1 with the failing step (and <screenshot>-failure.png).
// The image step prints a line `chat-page: image sent: {json}` (the data URL's length, the
// JPEG's size and dimensions) for the caller to compare with what the model server received.
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
// Sent with the image: the stand-in echoes it, so the answer has a Python block to highlight
// (with HTML in a string that must stay text).
const IMAGE_MESSAGE = [
  'What is in this picture?',
  '```python',
  'def area(w, h):',
  '    label = "<img src=x onerror=window.__xss=3>"',
  '    return w * h  # pixels',
  '```',
].join('\n');
const SOURCE_IMAGE = { width: 3000, height: 2000 };

/** Width and height from a JPEG's SOF marker, or null. */
function jpegSize(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    return null;
  }
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) {
      return null;
    }
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
    }
    i += 2 + bytes.readUInt16BE(i + 2);
  }
  return null;
}

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

/** A PNG drawn by the page's canvas (gradient, shapes, text): a Buffer. */
async function drawPng(width, height) {
  const base64 = await page.evaluate(
    async ([w, h]) => {
      const canvas = new OffscreenCanvas(w, h);
      const ctx = canvas.getContext('2d');
      const gradient = ctx.createLinearGradient(0, 0, w, h);
      gradient.addColorStop(0, '#1e3a8a');
      gradient.addColorStop(1, '#f59e0b');
      ctx.fillStyle = gradient;
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = '#ffffff';
      ctx.beginPath();
      ctx.arc(w / 2, h / 2, Math.min(w, h) / 4, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = '#dc2626';
      ctx.fillRect(w / 10, h / 10, w / 5, h / 5);
      ctx.fillStyle = '#111827';
      ctx.font = `${Math.round(h / 10)}px sans-serif`;
      ctx.fillText(`${w}x${h}`, w / 10, (h * 9) / 10);
      const blob = await canvas.convertToBlob({ type: 'image/png' });
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let binary = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      }
      return btoa(binary);
    },
    [width, height],
  );
  return Buffer.from(base64, 'base64');
}

/** Chooses files through the page's "Image" button and the browser's file chooser. */
async function pickFiles(files) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.locator('#attach').click()]);
  check(chooser.isMultiple(), 'the file picker does not take several files');
  await chooser.setFiles(files);
}

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

  // ---- images and code highlighting ----------------------------------------------------------

  await step('a new chat; files that are not images, or too big, are refused with a message', async () => {
    await page.locator('#new-conv').click();
    await page.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 0);
    const maxMb = Number(await page.locator('#composer').getAttribute('data-max-image-mb'));
    check(maxMb > 0, 'no data-max-image-mb on #composer');
    await pickFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') }]);
    const refused = page.locator('#notices .notice', { hasText: 'not an image' });
    await refused.waitFor();
    await pickFiles([{ name: 'huge.png', mimeType: 'image/png', buffer: Buffer.alloc(Math.ceil((maxMb + 1) * 1024 * 1024)) }]);
    const tooBig = page.locator('#notices .notice', { hasText: 'huge.png' });
    await tooBig.waitFor();
    const texts = [await refused.innerText(), await tooBig.innerText()].map((t) => t.replace(/\s+/g, ' ').replace(/✕$/, '').trim());
    check(/refused/.test(texts[1]), `the big file's notice: ${texts[1]}`);
    check((await page.locator('#attachments .attachment').count()) === 0, 'a refused file was attached');
    return texts.map((t) => JSON.stringify(t)).join('; ');
  });

  let imageSent = null;
  await step(`attach a ${SOURCE_IMAGE.width}x${SOURCE_IMAGE.height} PNG through the file picker`, async () => {
    const png = await drawPng(SOURCE_IMAGE.width, SOURCE_IMAGE.height);
    const maxPx = Number(await page.locator('#composer').getAttribute('data-max-image-px'));
    check(maxPx > 0, 'no data-max-image-px on #composer');
    await pickFiles([{ name: 'photo.png', mimeType: 'image/png', buffer: png }]);
    const chip = page.locator('#attachments .attachment.ready');
    await chip.waitFor();
    const src = await chip.locator('img.attachment-thumb').getAttribute('src');
    check(src && src.startsWith('data:image/jpeg;base64,'), `the preview is not a JPEG data URL (${(src || '').slice(0, 40)})`);
    const info = (await chip.locator('.attachment-info').textContent()).trim();
    const expected = `${maxPx}×${Math.round((SOURCE_IMAGE.height * maxPx) / SOURCE_IMAGE.width)}`;
    check(info.startsWith(expected), `the preview says ${JSON.stringify(info)}, expected ${expected}`);
    const choice = (await page.locator('#vision-choice').textContent()).trim();
    // Removable: remove it and attach it again.
    await chip.locator('.attachment-remove').click();
    await page.locator('#attachments').waitFor({ state: 'hidden' });
    await pickFiles([{ name: 'photo.png', mimeType: 'image/png', buffer: png }]);
    await chip.waitFor();
    return `PNG of ${png.length} bytes -> preview ${JSON.stringify(info)}; removed and attached again; ${JSON.stringify(choice)}`;
  });

  await step('send the image with a fenced code block: the answer arrives', async () => {
    const before = chatRequests.length;
    await sendMessage(IMAGE_MESSAGE);
    await waitForAnswer('def area', 1);
    check((await page.locator('#attachments .attachment').count()) === 0, 'the composer still holds the image');
    const sent = chatRequests[before]?.body;
    check(sent, 'no chat request seen');
    const last = sent.messages[sent.messages.length - 1];
    check(Array.isArray(last.content), `the message was sent as ${JSON.stringify(last.content).slice(0, 80)}`);
    const [text, image] = last.content;
    check(text && text.type === 'text' && text.text === IMAGE_MESSAGE, `the text part is ${JSON.stringify(text)}`);
    check(image && image.type === 'image_url' && typeof image.image_url?.url === 'string', `the image part is ${JSON.stringify(image).slice(0, 80)}`);
    const url = image.image_url.url;
    const prefix = 'data:image/jpeg;base64,';
    check(url.startsWith(prefix), `the image is sent as ${url.slice(0, 30)}...`);
    const jpeg = Buffer.from(url.slice(prefix.length), 'base64');
    const size = jpegSize(jpeg);
    check(size, 'the data URL is not a JPEG with a SOF marker');
    const maxPx = Number(await page.locator('#composer').getAttribute('data-max-image-px'));
    check(Math.max(size.width, size.height) <= maxPx, `the JPEG is ${size.width}x${size.height}, over ${maxPx}`);
    imageSent = { data_url_chars: url.length, jpeg_bytes: jpeg.length, width: size.width, height: size.height, model: sent.model };
    console.log(`chat-page: image sent: ${JSON.stringify(imageSent)}`);
    const meta = (await answers().last().locator('.msg-meta').textContent()).trim();
    return `data URL of ${url.length} chars (JPEG ${jpeg.length} bytes, ${size.width}x${size.height}) to ${sent.model}; answer meta ${JSON.stringify(meta)}`;
  });

  await step('the image shows in the conversation; the answer\'s code is highlighted, its HTML is text', async () => {
    const img = page.locator('#messages .msg.user img.msg-image');
    check((await img.count()) === 1, `${await img.count()} image(s) in the conversation`);
    const shown = await img.evaluate((i) => ({ src: i.src.slice(0, 23), w: i.naturalWidth, h: i.naturalHeight, complete: i.complete }));
    check(shown.src === 'data:image/jpeg;base64,' && shown.w === imageSent.width, `the image shown: ${JSON.stringify(shown)}`);
    const code = answers().last().locator('.codeblock pre code');
    const loaded = await page.evaluate(async () => ({
      global: typeof window.ChatHighlight,
      status: (await fetch('/chat/highlight.js', { cache: 'no-store' })).status,
    }));
    check(
      loaded.global === 'object',
      `highlight.js did not load (GET /chat/highlight.js answers ${loaded.status}: does envoy.yaml route it?)`,
    );
    const keywords = await code.locator('span.hl-keyword').allTextContents();
    check(keywords.includes('def') && keywords.includes('return'), `keywords: ${JSON.stringify(keywords)}`);
    const strings = await code.locator('span.hl-string').allTextContents();
    check(strings.some((t) => t.includes('<img src=x onerror=window.__xss=3>')), `strings: ${JSON.stringify(strings)}`);
    const comments = await code.locator('span.hl-comment').allTextContents();
    check(comments.includes('# pixels'), `comments: ${JSON.stringify(comments)}`);
    check((await page.locator('#messages .msg.assistant img').count()) === 0, 'an <img> in an answer');
    check((await code.locator('*:not(span)').count()) === 0, 'elements other than spans in the code');
    const xss = await page.evaluate(() => typeof window.__xss);
    check(xss === 'undefined', `window.__xss is ${xss}: the HTML ran`);
    const color = await code.locator('span.hl-keyword').first().evaluate((s) => getComputedStyle(s).color);
    const plain = await code.evaluate((c) => getComputedStyle(c).color);
    check(color !== plain, 'keywords are not coloured (app.css)');
    await page.screenshot({ path: args.screenshot.replace(/(\.png)?$/i, '-image.png'), fullPage: true });
    return `image ${shown.w}x${shown.h}; keywords ${JSON.stringify(keywords)}, ${strings.length} string(s), ${comments.length} comment(s) (${color})`;
  });

  await step('no image data in localStorage; the image is back after a reload (IndexedDB)', async () => {
    const stored = await page.evaluate(() => {
      let chars = 0;
      let withImage = 0;
      for (let i = 0; i < localStorage.length; i++) {
        const value = localStorage.getItem(localStorage.key(i)) || '';
        chars += value.length;
        if (value.includes('data:image') || value.includes('base64')) {
          withImage++;
        }
      }
      return { chars, withImage };
    });
    check(stored.withImage === 0, 'image data in localStorage');
    check(stored.chars < imageSent.data_url_chars, `localStorage holds ${stored.chars} chars`);
    await page.reload();
    await page.locator('#user-name').waitFor({ state: 'visible' });
    const img = page.locator('#messages .msg.user img.msg-image');
    await img.waitFor();
    await page.waitForFunction(() => {
      const i = document.querySelector('#messages .msg.user img.msg-image');
      return i && i.src.startsWith('data:image/jpeg') && i.complete && i.naturalWidth > 0;
    });
    return `localStorage: ${stored.chars} chars in all; the image reloaded from IndexedDB`;
  });

  await step('a vision model named by /v1/models is picked for a pasted image (mocked server)', async () => {
    // The demo's stand-in serves one text model: here /v1/models and the chat are answered by the
    // test, to see which model the page picks.
    let mockedBody = null;
    await page.route(`${args.base}/v1/models`, (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ object: 'list', data: [{ id: 'qwen3:8b' }, { id: 'llava:7b' }] }) }),
    );
    await page.route(`${args.base}/v1/chat/completions`, (route) => {
      mockedBody = JSON.parse(route.request().postData() || 'null');
      const chunk = { choices: [{ index: 0, delta: { content: 'A white circle.' } }] };
      route.fulfill({ status: 200, contentType: 'text/event-stream', body: `data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n` });
    });
    try {
      await page.reload();
      await page.locator('#model:not([disabled])').waitFor();
      await page.locator('#model').selectOption('qwen3:8b');
      const labels = await page.locator('#model option').allTextContents();
      check(labels.includes('llava:7b · vision'), `the picker shows ${JSON.stringify(labels)}`);
      await page.locator('#new-conv').click();
      const png = await drawPng(600, 400);
      await page.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
        const input = document.getElementById('input');
        input.focus();
        input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
      }, png.toString('base64'));
      await page.locator('#attachments .attachment.ready').waitFor();
      const info = (await page.locator('#attachments .attachment-info').textContent()).trim();
      check(info.startsWith('600×400'), `a small image was resized: ${info}`);
      const choice = (await page.locator('#vision-choice').textContent()).trim();
      check(choice.includes('llava:7b'), `the composer says ${JSON.stringify(choice)}`);
      await sendMessage('Describe it');
      await waitForAnswer('A white circle.', 1);
      check(mockedBody && mockedBody.model === 'llava:7b', `the request went to ${mockedBody && mockedBody.model}`);
      const meta = (await answers().last().locator('.msg-meta').textContent()).trim();
      check(meta.includes('llava:7b') && meta.includes('vision model'), `the answer says ${JSON.stringify(meta)}`);
      check(
        (await page.locator('#model').inputValue()) === 'qwen3:8b',
        'the picker changed: text messages should still go to the selected model',
      );
      return `${JSON.stringify(choice)}; sent to ${mockedBody.model}; answer meta ${JSON.stringify(meta)}`;
    } finally {
      await page.unroute(`${args.base}/v1/models`);
      await page.unroute(`${args.base}/v1/chat/completions`);
    }
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
