// The chat page: login through the gateway's OAuth2 flow, conversations kept in localStorage
// (per user), streamed answers rendered as Markdown, and the gateway's errors shown plainly.
//
// Everything is same-origin: the session is the gateway's HttpOnly cookie, so every request
// goes with credentials 'same-origin' and the page never sees a token. Model output only ever
// reaches the page through markdown.js (createElement + textContent, never innerHTML).
import { parseMarkdown, plainText, renderAst } from './markdown.js';

const LOGIN_URL = '/oauth2/login?rd=/chat';
const LOGOUT_URL = '/oauth2/logout';
const USERINFO_URL = '/oauth2/userinfo';
const MODELS_URL = '/v1/models';
const CHAT_URL = '/v1/chat/completions';
const STORAGE_PREFIX = 'gw-chat:v1:';
const DEFAULT_TITLE = 'New chat';

/**
 * Incremental Server-Sent Events reader: feed it decoded text as it arrives (any split, even
 * inside a line or a CRLF), get back the `data` of each complete event.
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.data = [];
  }

  /** Adds text; returns the data strings of the events it completed. */
  push(text) {
    this.buffer += text;
    const events = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) {
        break;
      }
      // A lone CR at the very end may be the first half of a CRLF: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) {
        break;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line, events);
    }
    return events;
  }

  /** The end of the stream: a last event not followed by a blank line still counts. */
  end() {
    const events = [];
    if (this.buffer) {
      const rest = this.buffer.replace(/\r$/, '');
      this.buffer = '';
      this.line(rest, events);
    }
    if (this.data.length) {
      events.push(this.data.join('\n'));
      this.data = [];
    }
    return events;
  }

  line(line, events) {
    if (line === '') {
      if (this.data.length) {
        events.push(this.data.join('\n'));
        this.data = [];
      }
      return;
    }
    if (line.startsWith(':')) {
      return; // a comment (keep-alive)
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'data') {
      this.data.push(value);
    }
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value, now = Date.now()) {
  if (!value) {
    return null;
  }
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) {
    return Math.max(1, Number(trimmed));
  }
  const date = Date.parse(trimmed);
  if (!Number.isNaN(date)) {
    return Math.max(1, Math.ceil((date - now) / 1000));
  }
  return null;
}

/** The scope a 403 asks for: WWW-Authenticate's scope="...", else the error's details. */
export function requiredScope(wwwAuthenticate, details) {
  const fromHeader = /\bscope="([^"]*)"/i.exec(wwwAuthenticate || '');
  if (fromHeader && fromHeader[1].trim()) {
    return fromHeader[1].trim();
  }
  const fromDetails = /scopes?\s*:?\s*([^\s].*)$/i.exec(details || '');
  if (fromDetails) {
    return fromDetails[1].trim();
  }
  return details ? String(details) : '';
}

// ---------------------------------------------------------------------------------------------

if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', main);
  } else {
    main();
  }
}

function main() {
  const $ = (id) => document.getElementById(id);
  const ui = {
    loading: $('loading'),
    loginView: $('login-view'),
    loginMessage: $('login-message'),
    login: $('login'),
    app: $('app'),
    sidebar: $('sidebar'),
    scrim: $('scrim'),
    sidebarToggle: $('sidebar-toggle'),
    newConv: $('new-conv'),
    convList: $('conv-list'),
    convTitle: $('conv-title'),
    model: $('model'),
    userName: $('user-name'),
    logout: $('logout'),
    messages: $('messages'),
    notices: $('notices'),
    composer: $('composer'),
    input: $('input'),
    send: $('send'),
    clearContext: $('clear-context'),
  };

  const state = {
    user: null,
    store: { current: null, convs: [] },
    storageKey: null,
    streaming: null, // {controller, conv, item, el}
    retryUntil: 0,
    retryTimer: null,
    retryNotice: null,
    renderQueued: false,
  };

  // ---- helpers -------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function newId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  function errorOf(body) {
    const error = body && typeof body === 'object' ? body.error : null;
    if (error && typeof error === 'object') {
      return {
        message: typeof error.message === 'string' ? error.message : '',
        code: typeof error.code === 'string' ? error.code : '',
        details: typeof error.details === 'string' ? error.details : '',
      };
    }
    if (typeof error === 'string') {
      return { message: error, code: '', details: '' };
    }
    return { message: '', code: '', details: '' };
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  // ---- storage -------------------------------------------------------------------------------

  function loadStore() {
    try {
      const raw = localStorage.getItem(state.storageKey);
      const parsed = raw ? JSON.parse(raw) : null;
      if (parsed && Array.isArray(parsed.convs)) {
        parsed.convs = parsed.convs.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.items));
        return parsed;
      }
    } catch {
      // A damaged entry: start over rather than fail.
    }
    return { current: null, convs: [] };
  }

  function save() {
    try {
      localStorage.setItem(state.storageKey, JSON.stringify(state.store));
    } catch {
      notice({
        kind: 'error',
        title: 'Could not save',
        text: 'The browser refused to store the conversations (storage full?). Delete old ones to free space.',
      });
    }
  }

  function modelKey() {
    return `${STORAGE_PREFIX}model:${state.user.sub}`;
  }

  // ---- conversations -------------------------------------------------------------------------

  function currentConv() {
    return state.store.convs.find((c) => c.id === state.store.current) || null;
  }

  function createConv() {
    const conv = { id: newId(), title: DEFAULT_TITLE, renamed: false, created: Date.now(), updated: Date.now(), items: [] };
    state.store.convs.unshift(conv);
    state.store.current = conv.id;
    save();
    return conv;
  }

  function ensureConv() {
    return currentConv() || createConv();
  }

  function selectConv(id) {
    state.store.current = id;
    save();
    clearNotices();
    renderAll();
    closeSidebar();
  }

  function deleteConv(id) {
    if (state.streaming && state.streaming.conv.id === id) {
      state.streaming.controller.abort();
    }
    state.store.convs = state.store.convs.filter((c) => c.id !== id);
    if (state.store.current === id) {
      const next = sortedConvs()[0];
      state.store.current = next ? next.id : null;
    }
    if (!currentConv()) {
      createConv();
    }
    save();
    renderAll();
  }

  function renameConv(conv, title) {
    const clean = title.replace(/\s+/g, ' ').trim().slice(0, 120);
    if (clean) {
      conv.title = clean;
      conv.renamed = true;
      save();
    }
    renderAll();
  }

  function sortedConvs() {
    return [...state.store.convs].sort((a, b) => b.updated - a.updated);
  }

  /** The messages sent as context: those after the last "clear context" divider. */
  function contextMessages(conv) {
    let start = 0;
    conv.items.forEach((item, index) => {
      if (item.kind === 'divider') {
        start = index + 1;
      }
    });
    return conv.items
      .slice(start)
      .filter((item) => item.kind === 'msg' && typeof item.content === 'string' && item.content !== '')
      .map((item) => ({ role: item.role, content: item.content }));
  }

  // ---- rendering -----------------------------------------------------------------------------

  function renderAll() {
    renderConvList();
    renderMessages();
    updateControls();
  }

  function renderConvList() {
    const conv = currentConv();
    ui.convTitle.textContent = conv ? conv.title : DEFAULT_TITLE;
    document.title = `${conv ? conv.title : DEFAULT_TITLE} · AI Gateway Chat`;
    const items = sortedConvs().map((c) => {
      const li = el('li', c.id === state.store.current ? 'conv active' : 'conv');
      li.dataset.id = c.id;
      const open = el('button', 'conv-open');
      open.type = 'button';
      open.append(el('span', 'conv-name', c.title));
      open.title = c.title;
      open.addEventListener('click', () => selectConv(c.id));
      const rename = el('button', 'icon-btn conv-rename', '✎');
      rename.type = 'button';
      rename.title = 'Rename';
      rename.setAttribute('aria-label', `Rename “${c.title}”`);
      rename.addEventListener('click', () => startRename(li, c));
      const del = el('button', 'icon-btn conv-delete', '✕');
      del.type = 'button';
      del.title = 'Delete';
      del.setAttribute('aria-label', `Delete “${c.title}”`);
      let armed = null;
      del.addEventListener('click', () => {
        if (armed) {
          clearTimeout(armed);
          deleteConv(c.id);
          return;
        }
        del.classList.add('armed');
        del.textContent = 'Delete?';
        del.title = 'Click again to delete';
        armed = setTimeout(() => {
          armed = null;
          del.classList.remove('armed');
          del.textContent = '✕';
          del.title = 'Delete';
        }, 4000);
      });
      const actions = el('div', 'conv-actions');
      actions.append(rename, del);
      li.append(open, actions);
      return li;
    });
    ui.convList.replaceChildren(...items);
  }

  function startRename(li, conv) {
    const input = el('input', 'conv-rename-input');
    input.type = 'text';
    input.value = conv.title;
    input.maxLength = 120;
    input.setAttribute('aria-label', 'Conversation name');
    let done = false;
    const finish = (commit) => {
      if (done) {
        return;
      }
      done = true;
      if (commit) {
        renameConv(conv, input.value);
      } else {
        renderConvList();
      }
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  }

  function renderMessages() {
    const conv = currentConv();
    const nodes = [];
    if (!conv || conv.items.length === 0) {
      const empty = el('div', 'empty');
      empty.append(
        el('div', 'empty-logo', '◆'),
        el('h2', null, 'How can I help?'),
        el('p', null, 'Answers stream in as they are written. Enter sends, Shift+Enter adds a line.'),
      );
      nodes.push(empty);
    } else {
      for (const item of conv.items) {
        nodes.push(renderItem(item));
      }
    }
    ui.messages.replaceChildren(...nodes);
    scrollToBottom(true);
  }

  function renderItem(item) {
    if (item.kind === 'divider') {
      const divider = el('div', 'divider');
      divider.setAttribute('role', 'separator');
      divider.append(el('span', null, 'Context cleared — earlier messages are not sent'));
      return divider;
    }
    if (item.role === 'user') {
      const wrap = el('div', 'msg user');
      wrap.append(el('div', 'bubble', item.content));
      return wrap;
    }
    const wrap = el('div', 'msg assistant');
    const avatar = el('div', 'avatar', '◆');
    avatar.setAttribute('aria-hidden', 'true');
    const body = el('div', 'msg-body');
    wrap.append(avatar, body);
    if (state.streaming && state.streaming.item === item) {
      state.streaming.el = wrap;
      wrap.classList.add('streaming');
    }
    fillAssistant(wrap, item);
    return wrap;
  }

  function fillAssistant(wrap, item) {
    const body = wrap.querySelector('.msg-body');
    const parts = [];
    if (item.model) {
      parts.push(el('div', 'msg-meta', item.model));
    }
    if (item.reasoning) {
      const details = el('details', 'reasoning');
      details.append(el('summary', null, 'Reasoning'), el('div', 'reasoning-text', item.reasoning));
      parts.push(details);
    }
    const bubble = el('div', 'bubble md');
    const streaming = state.streaming && state.streaming.item === item;
    if (item.content) {
      bubble.append(renderAst(parseMarkdown(item.content), document));
    } else if (streaming) {
      const dots = el('span', 'typing');
      dots.setAttribute('aria-label', 'The model is writing');
      dots.append(el('i'), el('i'), el('i'));
      bubble.append(dots);
    } else if (!item.error) {
      bubble.append(el('em', 'muted', '(no answer)'));
    }
    if (item.content || streaming || !item.error) {
      parts.push(bubble);
    }
    if (item.stopped) {
      parts.push(el('div', 'msg-note', 'Stopped'));
    }
    if (item.error) {
      parts.push(el('div', 'msg-error', item.error));
    }
    body.replaceChildren(...parts);
  }

  // Re-renders the streaming answer at most once per frame.
  function queueStreamRender() {
    if (state.renderQueued) {
      return;
    }
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      const s = state.streaming;
      if (s && s.el && s.el.isConnected) {
        const stick = nearBottom();
        fillAssistant(s.el, s.item);
        if (stick) {
          scrollToBottom(true);
        }
      }
    });
  }

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
  }

  function scrollToBottom(force) {
    if (force || nearBottom()) {
      ui.messages.scrollTop = ui.messages.scrollHeight;
    }
  }

  function updateControls() {
    const conv = currentConv();
    const streaming = Boolean(state.streaming);
    const waiting = state.retryUntil > Date.now();
    if (streaming) {
      ui.send.textContent = 'Stop';
      ui.send.classList.add('stop');
      ui.send.disabled = false;
      ui.send.setAttribute('aria-label', 'Stop the answer');
    } else if (waiting) {
      const left = Math.ceil((state.retryUntil - Date.now()) / 1000);
      ui.send.textContent = `Wait ${left} s`;
      ui.send.classList.remove('stop');
      ui.send.disabled = true;
      ui.send.setAttribute('aria-label', `Rate limited: wait ${left} seconds`);
    } else {
      ui.send.textContent = 'Send';
      ui.send.classList.remove('stop');
      ui.send.disabled = false;
      ui.send.setAttribute('aria-label', 'Send');
    }
    const last = conv && conv.items[conv.items.length - 1];
    ui.clearContext.disabled = streaming || !last || last.kind === 'divider';
  }

  // ---- notices -------------------------------------------------------------------------------

  // Removes the notices, except a rate-limit countdown still running.
  function clearNotices() {
    for (const box of [...ui.notices.children]) {
      if (box !== state.retryNotice || state.retryUntil <= Date.now()) {
        box.remove();
      }
    }
  }

  /** Shows a message above the composer: {kind, title, text, action: {label, onClick}}. */
  function notice({ kind, title, text, action, code }) {
    const box = el('div', `notice ${kind || 'error'}`);
    box.setAttribute('role', kind === 'info' ? 'status' : 'alert');
    if (code) {
      box.dataset.code = code;
    }
    const content = el('div', 'notice-content');
    const heading = el('strong', 'notice-title', title);
    content.append(heading);
    if (text) {
      content.append(el('div', 'notice-text', text));
    }
    box.append(content);
    if (action) {
      const button = el('button', 'notice-action primary', action.label);
      button.type = 'button';
      button.addEventListener('click', action.onClick);
      box.append(button);
    }
    const close = el('button', 'icon-btn notice-close', '✕');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss');
    close.addEventListener('click', () => {
      if (box === state.retryNotice) {
        state.retryNotice = null;
      }
      box.remove();
    });
    box.append(close);
    ui.notices.append(box);
    return { box, heading };
  }

  function loginAgain() {
    window.location.assign(LOGIN_URL);
  }

  /** Turns a refused request into a notice. */
  function showHttpError(status, body, headers) {
    const error = errorOf(body);
    if (status === 401) {
      notice({
        kind: 'error',
        code: error.code || 'AUTH',
        title: 'Your session has ended',
        text: 'Log in again to continue. Your conversations are kept in this browser.',
        action: { label: 'Log in again', onClick: loginAgain },
      });
      return;
    }
    const www = headers.get('www-authenticate') || '';
    if (status === 403 && (error.code === 'AUTH_INSUFFICIENT_SCOPE' || /insufficient_scope/i.test(www))) {
      const scope = requiredScope(www, error.details);
      notice({
        kind: 'error',
        code: 'AUTH_INSUFFICIENT_SCOPE',
        title: 'Missing permission',
        text: scope
          ? `This needs the scope “${scope}”, which your account does not have. Ask an administrator to grant it.`
          : 'Your account lacks a permission this needs.',
      });
      return;
    }
    if (status === 429) {
      const seconds =
        parseRetryAfter(headers.get('retry-after')) ||
        Number((/retry in (\d+)/i.exec(error.details) || [])[1]) ||
        5;
      startRetryCountdown(seconds, error);
      return;
    }
    const message = error.message || `The gateway answered ${status}.`;
    notice({
      kind: 'error',
      code: error.code,
      title: message,
      text: [error.details, error.code ? `(${error.code}, HTTP ${status})` : `(HTTP ${status})`]
        .filter(Boolean)
        .join(' '),
    });
  }

  function startRetryCountdown(seconds, error) {
    if (state.retryTimer) {
      clearInterval(state.retryTimer);
    }
    if (state.retryNotice) {
      state.retryNotice.remove();
    }
    state.retryUntil = Date.now() + seconds * 1000;
    const { box, heading } = notice({
      kind: 'warning',
      code: 'RATE_LIMITED',
      title: `Rate limited, retry in ${seconds} s`,
      text: error.details || error.message || 'Too many requests.',
    });
    state.retryNotice = box;
    const tick = () => {
      const left = Math.ceil((state.retryUntil - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(state.retryTimer);
        state.retryTimer = null;
        state.retryUntil = 0;
        updateControls();
        box.className = 'notice info';
        heading.textContent = 'You can send again';
        setTimeout(() => box.remove(), 4000);
        return;
      }
      heading.textContent = `Rate limited, retry in ${left} s`;
      updateControls();
    };
    state.retryTimer = setInterval(tick, 250);
    updateControls();
  }

  // ---- sending -------------------------------------------------------------------------------

  async function send() {
    if (state.streaming) {
      state.streaming.controller.abort();
      return;
    }
    if (state.retryUntil > Date.now()) {
      return;
    }
    const text = ui.input.value.trim();
    if (!text) {
      ui.input.focus();
      return;
    }
    // Earlier errors are about earlier attempts.
    ui.notices.replaceChildren();

    const conv = ensureConv();
    const userItem = { kind: 'msg', role: 'user', content: text, ts: Date.now() };
    conv.items.push(userItem);
    const titleBefore = conv.title;
    conv.updated = Date.now();
    if (!conv.renamed && conv.title === DEFAULT_TITLE) {
      const firstLine = plainText(parseMarkdown(text.split('\n')[0]).children).trim() || text;
      conv.title = firstLine.length > 48 ? `${firstLine.slice(0, 47)}…` : firstLine;
    }
    const messages = contextMessages(conv);
    const model = ui.model.value;
    const assistant = { kind: 'msg', role: 'assistant', content: '', reasoning: '', model, ts: Date.now() };
    conv.items.push(assistant);
    ui.input.value = '';
    resizeInput();
    const controller = new AbortController();
    state.streaming = { controller, conv, item: assistant, el: null };
    save();
    renderAll();

    // Undoes the attempt when nothing was answered: the message goes back to the composer.
    const takeBack = () => {
      conv.items = conv.items.filter((item) => item !== userItem && item !== assistant);
      if (!conv.renamed) {
        conv.title = titleBefore;
      }
      if (!ui.input.value) {
        ui.input.value = text;
        resizeInput();
      }
    };

    const body = { messages, stream: true };
    if (model) {
      body.model = model;
    }
    let response;
    try {
      response = await fetch(CHAT_URL, {
        method: 'POST',
        credentials: 'same-origin',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream, application/json',
          'x-session-id': conv.id,
        },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (err) {
      state.streaming = null;
      takeBack();
      if (!controller.signal.aborted) {
        notice({ kind: 'error', title: 'Could not reach the gateway', text: String(err && err.message ? err.message : err) });
      }
      finishSend(conv);
      return;
    }

    if (!response.ok) {
      const errorBody = await readJson(response);
      state.streaming = null;
      takeBack();
      showHttpError(response.status, errorBody, response.headers);
      finishSend(conv);
      return;
    }

    try {
      const type = response.headers.get('content-type') || '';
      if (type.includes('text/event-stream') && response.body) {
        await readStream(response, assistant, controller);
      } else {
        // A non-streamed answer (a server that ignored stream: true).
        const json = await readJson(response);
        const error = errorOf(json);
        if (error.message) {
          failAnswer(assistant, error);
        } else {
          assistant.content = json?.choices?.[0]?.message?.content || '';
        }
      }
    } catch (err) {
      if (controller.signal.aborted) {
        assistant.stopped = true;
      } else {
        assistant.error = `The answer was cut off: ${err && err.message ? err.message : err}`;
        notice({ kind: 'error', title: 'The answer was cut off', text: 'The connection to the gateway broke while the answer streamed.' });
      }
    }
    state.streaming = null;
    finishSend(conv);
  }

  function finishSend(conv) {
    conv.updated = Date.now();
    save();
    if (conv === currentConv()) {
      renderAll();
    } else {
      renderConvList();
      updateControls();
    }
    ui.input.focus();
  }

  function failAnswer(assistant, error) {
    const text = [error.message || 'The model server reported an error', error.details].filter(Boolean).join(': ');
    assistant.error = text;
    notice({ kind: 'error', code: error.code, title: error.message || 'The answer failed', text: error.details || 'The model server reported an error while answering.' });
  }

  async function readStream(response, assistant, controller) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    let finished = false;
    const handle = (data) => {
      if (data === '[DONE]') {
        finished = true;
        return;
      }
      let chunk;
      try {
        chunk = JSON.parse(data);
      } catch {
        return; // not JSON: ignored
      }
      if (!chunk || typeof chunk !== 'object') {
        return;
      }
      if (chunk.error) {
        failAnswer(assistant, errorOf(chunk));
        finished = true;
        return;
      }
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (!delta || typeof delta !== 'object') {
        return;
      }
      if (typeof delta.content === 'string') {
        assistant.content += delta.content;
      }
      const reasoning = typeof delta.reasoning_content === 'string' ? delta.reasoning_content : delta.reasoning;
      if (typeof reasoning === 'string') {
        assistant.reasoning += reasoning;
      }
      // Other delta fields (role, tool calls, ...) are ignored.
    };
    try {
      while (!finished) {
        const { value, done } = await reader.read();
        if (done) {
          for (const data of [...parser.push(decoder.decode()), ...parser.end()]) {
            if (!finished) {
              handle(data);
            }
          }
          break;
        }
        for (const data of parser.push(decoder.decode(value, { stream: true }))) {
          if (!finished) {
            handle(data);
          }
        }
        queueStreamRender();
      }
    } finally {
      if (finished) {
        reader.cancel().catch(() => {});
      }
    }
    if (controller.signal.aborted) {
      assistant.stopped = true;
    }
  }

  // ---- composer ------------------------------------------------------------------------------

  function resizeInput() {
    const lines = ui.input.value.split('\n').length;
    ui.input.rows = Math.min(8, Math.max(1, lines));
  }

  // ---- sidebar (narrow screens) --------------------------------------------------------------

  function openSidebar() {
    ui.app.classList.add('sidebar-open');
    ui.sidebarToggle.setAttribute('aria-expanded', 'true');
  }

  function closeSidebar() {
    ui.app.classList.remove('sidebar-open');
    ui.sidebarToggle.setAttribute('aria-expanded', 'false');
  }

  // ---- models --------------------------------------------------------------------------------

  async function loadModels() {
    ui.model.replaceChildren(el('option', null, 'Loading models…'));
    ui.model.disabled = true;
    let response;
    try {
      response = await fetch(MODELS_URL, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    } catch {
      ui.model.replaceChildren(el('option', null, 'Models unavailable'));
      ui.model.value = '';
      return;
    }
    const body = await readJson(response);
    if (!response.ok) {
      const placeholder = el('option', null, 'No models');
      placeholder.value = '';
      ui.model.replaceChildren(placeholder);
      showHttpError(response.status, body, response.headers);
      return;
    }
    const ids = (Array.isArray(body?.data) ? body.data : [])
      .map((m) => (m && typeof m.id === 'string' ? m.id : null))
      .filter(Boolean);
    if (ids.length === 0) {
      const placeholder = el('option', null, 'Default model');
      placeholder.value = '';
      ui.model.replaceChildren(placeholder);
      return;
    }
    ui.model.replaceChildren(
      ...ids.map((id) => {
        const option = el('option', null, id);
        option.value = id;
        return option;
      }),
    );
    let stored = null;
    try {
      stored = localStorage.getItem(modelKey());
    } catch {
      stored = null;
    }
    ui.model.value = stored && ids.includes(stored) ? stored : ids[0];
    ui.model.disabled = false;
  }

  // ---- start ---------------------------------------------------------------------------------

  function showLogin(message) {
    show(ui.loading, false);
    show(ui.app, false);
    show(ui.loginView, true);
    if (message) {
      ui.loginMessage.textContent = message;
    }
    document.title = 'Log in · AI Gateway Chat';
    ui.login.focus();
  }

  function showApp() {
    show(ui.loading, false);
    show(ui.loginView, false);
    show(ui.app, true);
    const user = state.user;
    ui.userName.textContent = user.name || user.email || user.sub;
    const until = Number.isFinite(user.expires_at) ? new Date(user.expires_at * 1000).toLocaleTimeString() : '';
    ui.userName.title = [
      user.email,
      Array.isArray(user.scopes) ? `scopes: ${user.scopes.join(' ')}` : '',
      until ? `session until ${until}` : '',
    ]
      .filter(Boolean)
      .join('\n');
    state.storageKey = `${STORAGE_PREFIX}convs:${user.sub}`;
    state.store = loadStore();
    if (!currentConv()) {
      const recent = sortedConvs()[0];
      if (recent && recent.items.length === 0) {
        state.store.current = recent.id;
      } else {
        createConv();
      }
    }
    renderAll();
    ui.input.focus();
    loadModels();
  }

  async function start() {
    let response;
    try {
      response = await fetch(USERINFO_URL, { credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' });
    } catch {
      showLogin('The gateway cannot be reached right now. Try again in a moment.');
      return;
    }
    const body = await readJson(response);
    if (response.ok && body && typeof body.sub === 'string' && body.sub) {
      state.user = body;
      showApp();
      return;
    }
    if (response.status === 401) {
      showLogin();
      return;
    }
    const error = errorOf(body);
    showLogin(`Could not check your session: ${error.message || `HTTP ${response.status}`}.`);
  }

  ui.login.addEventListener('click', () => window.location.assign(LOGIN_URL));
  ui.logout.addEventListener('click', () => {
    if (state.streaming) {
      state.streaming.controller.abort();
    }
    window.location.assign(LOGOUT_URL);
  });
  ui.newConv.addEventListener('click', () => {
    const conv = currentConv();
    if (!conv || conv.items.length > 0) {
      createConv();
    }
    clearNotices();
    renderAll();
    closeSidebar();
    ui.input.focus();
  });
  ui.clearContext.addEventListener('click', () => {
    const conv = currentConv();
    const last = conv && conv.items[conv.items.length - 1];
    if (!conv || !last || last.kind === 'divider' || state.streaming) {
      return;
    }
    conv.items.push({ kind: 'divider', ts: Date.now() });
    conv.updated = Date.now();
    save();
    renderAll();
    ui.input.focus();
  });
  ui.model.addEventListener('change', () => {
    try {
      localStorage.setItem(modelKey(), ui.model.value);
    } catch {
      // not remembered; harmless
    }
  });
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      if (!state.streaming) {
        send();
      }
    }
  });
  ui.input.addEventListener('input', resizeInput);
  ui.sidebarToggle.addEventListener('click', () => {
    if (ui.app.classList.contains('sidebar-open')) {
      closeSidebar();
    } else {
      openSidebar();
    }
  });
  ui.scrim.addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      closeSidebar();
    }
  });
  ui.messages.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('.copy-code') : null;
    if (!button) {
      return;
    }
    const code = button.closest('.codeblock')?.querySelector('pre code');
    if (!code) {
      return;
    }
    const done = (label) => {
      button.textContent = label;
      setTimeout(() => {
        button.textContent = 'Copy';
      }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(() => done('Copied'), () => done('Copy failed'));
    } else {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done('Selected');
    }
  });
  // Another tab of the same user changed the conversations.
  window.addEventListener('storage', (event) => {
    if (state.user && event.key === state.storageKey && !state.streaming) {
      state.store = loadStore();
      if (!currentConv()) {
        createConv();
      }
      renderAll();
    }
  });

  start();
}
