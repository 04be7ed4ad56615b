// The chat page: login through the gateway's OAuth2 flow, conversations kept in localStorage
// (per user), streamed answers rendered as Markdown (code blocks highlighted by highlight.js
// when it loaded), images attached to messages, and the gateway's errors shown plainly.
//
// Everything is same-origin: the session is the gateway's HttpOnly cookie, so every request
// goes with credentials 'same-origin' and the page never sees a token. Model output only ever
// reaches the page through markdown.js (createElement + textContent, never innerHTML).
//
// Images (file picker, paste, drop): refused before decoding when not image/* or over the raw
// size cap, decoded by the browser, downscaled so the longest side is at most
// data-max-image-px (on #composer in index.html) and re-encoded as JPEG through a canvas, then
// sent as OpenAI content parts ({type: 'image_url', image_url: {url: 'data:image/jpeg;...'}}),
// which the gateway turns into Ollama's `images`. They are kept out of localStorage: the
// conversation keeps only {id, width, height, bytes}; the JPEGs live in IndexedDB (capped, oldest
// dropped first) with an in-memory copy for this tab. Messages with images go to a vision
// model picked from /v1/models by name.
import { parseMarkdown, plainText, renderAst } from './markdown.js';

const LOGIN_URL = '/oauth2/login?rd=/chat';
const LOGOUT_URL = '/oauth2/logout';
const USERINFO_URL = '/oauth2/userinfo';
const MODELS_URL = '/v1/models';
const CHAT_URL = '/v1/chat/completions';
const STORAGE_PREFIX = 'gw-chat:v1:';
const DEFAULT_TITLE = 'New chat';

/** Image settings when index.html says nothing (or nonsense). */
export const IMAGE_DEFAULTS = Object.freeze({ maxPx: 1024, maxMb: 20, quality: 0.85, perMessage: 8 });
/** The images of one request, as data-URL characters: below the gateway's 10 MiB body limit. */
export const MAX_CONTEXT_IMAGE_CHARS = 8 * 1024 * 1024;
/** IndexedDB keeps at most this many images / data-URL characters; the oldest go first. */
const MAX_STORED_IMAGES = 200;
const MAX_STORED_IMAGE_CHARS = 64 * 1024 * 1024;
/** Without IndexedDB, the tab keeps this many images in memory. */
const MAX_MEMORY_IMAGES = 64;
const IMAGE_DB = 'gw-chat-images';
const JPEG_DATA_URL = /^data:image\/jpeg;base64,[A-Za-z0-9+/]+={0,2}$/;
const IMAGE_ID = /^[0-9a-f]{24}$/;

/**
 * Names of models that read images (Ollama's vision models and the usual naming): llava,
 * bakllava, llama3.2-vision, qwen2.5vl, qwen3-vl, gemma3 (not its text-only 1b), minicpm-v,
 * moondream, pixtral, internvl, smolvlm, granite3.2-vision, mistral-small3.1/3.2, llama4.
 */
const VISION_PATTERNS = [
  /vision/i,
  /llava/i,
  /(?:^|[^a-z])vl(?:[^a-z]|$)/i,
  /vlm/i,
  /internvl/i,
  /gemma3(?!n)(?!:1b)/i,
  /minicpm-?v/i,
  /moondream/i,
  /pixtral/i,
  /mistral-small3\.[12]/i,
  /llama4/i,
];

/** Whether a model id looks like a vision model. */
export function isVisionModel(id) {
  return typeof id === 'string' && VISION_PATTERNS.some((re) => re.test(id));
}

/**
 * The model for a request with images: the selected one if it is a vision model, else the first
 * vision model of `ids`, else (none listed) the selected one. `vision` tells which case it is.
 */
export function pickVisionModel(ids, selected) {
  if (isVisionModel(selected)) {
    return { model: selected, vision: true };
  }
  const found = (Array.isArray(ids) ? ids : []).find(isVisionModel);
  return found ? { model: found, vision: true } : { model: selected || '', vision: false };
}

/** Image settings from an element's dataset (data-max-image-px, -mb, data-image-quality...). */
export function imageSettings(dataset = {}) {
  const num = (value, fallback, min, max) => {
    const n = Number(value);
    return value !== undefined && value !== '' && Number.isFinite(n) && n >= min && n <= max ? n : fallback;
  };
  return {
    maxPx: Math.round(num(dataset.maxImagePx, IMAGE_DEFAULTS.maxPx, 16, 8192)),
    maxBytes: Math.round(num(dataset.maxImageMb, IMAGE_DEFAULTS.maxMb, 0.01, 1024) * 1024 * 1024),
    quality: num(dataset.imageQuality, IMAGE_DEFAULTS.quality, 0.1, 1),
    perMessage: Math.round(num(dataset.maxImages, IMAGE_DEFAULTS.perMessage, 1, 32)),
  };
}

/** The size of `width` x `height` scaled down (never up) so its longest side is <= maxPx. */
export function fitWithin(width, height, maxPx) {
  const longest = Math.max(width, height);
  if (!(longest > maxPx)) {
    return { width, height, scaled: false };
  }
  const ratio = maxPx / longest;
  return {
    width: Math.max(1, Math.min(maxPx, Math.round(width * ratio))),
    height: Math.max(1, Math.min(maxPx, Math.round(height * ratio))),
    scaled: true,
  };
}

/** "1.4 MB", "312 KB", "87 B". */
export function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) {
    return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MB`;
  }
  if (bytes >= 1024) {
    return `${Math.round(bytes / 1024)} KB`;
  }
  return `${bytes} B`;
}

/** Why a file is refused before it is decoded (not an image, empty, too big), or null. */
export function checkImageFile(file, maxBytes) {
  const name = file && typeof file.name === 'string' && file.name ? `“${file.name}”` : 'The pasted file';
  if (!file || typeof file.size !== 'number') {
    return 'That is not a file.';
  }
  const type = typeof file.type === 'string' ? file.type.toLowerCase() : '';
  if (!type.startsWith('image/')) {
    return `${name} is not an image (${type || 'unknown type'}).`;
  }
  if (type === 'image/svg+xml') {
    return `${name} is an SVG drawing: attach a PNG, JPEG, WebP or GIF picture instead.`;
  }
  if (file.size === 0) {
    return `${name} is empty.`;
  }
  if (file.size > maxBytes) {
    return `${name} is ${formatBytes(file.size)}: images over ${formatBytes(maxBytes)} are refused.`;
  }
  return null;
}

/** A message's content: the text alone, or OpenAI content parts when there are images. */
export function messageContent(text, imageUrls) {
  if (!imageUrls || imageUrls.length === 0) {
    return text;
  }
  const parts = text ? [{ type: 'text', text }] : [];
  for (const url of imageUrls) {
    parts.push({ type: 'image_url', image_url: { url } });
  }
  return parts;
}

/**
 * The request's messages from conversation items, newest first within the image budget: each
 * item's images are looked up with `imageOf(id)` (async; null when gone) and older images that
 * do not fit in `budget` data-URL characters are left out (counted in `dropped`).
 */
export async function buildMessages(items, imageOf, budget = MAX_CONTEXT_IMAGE_CHARS) {
  const messages = [];
  let left = budget;
  let dropped = 0;
  let sent = 0;
  for (let k = items.length - 1; k >= 0; k--) {
    const item = items[k];
    const urls = [];
    for (const meta of item.role === 'user' && Array.isArray(item.images) ? item.images : []) {
      const url = meta && typeof meta.id === 'string' ? await imageOf(meta.id) : null;
      if (!url || url.length > left) {
        dropped++;
        continue;
      }
      left -= url.length;
      urls.push(url);
    }
    sent += urls.length;
    const text = typeof item.content === 'string' ? item.content : '';
    if (!text && urls.length === 0) {
      continue;
    }
    messages.unshift({ role: item.role, content: messageContent(text, urls) });
  }
  return { messages, images: sent, dropped };
}

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

/**
 * Where the JPEGs of sent images live: IndexedDB (`data`: id -> data URL, `meta`: id, bytes,
 * created), at most MAX_STORED_IMAGES / MAX_STORED_IMAGE_CHARS with the oldest dropped first,
 * plus an in-memory copy per tab. Without IndexedDB (private windows of some browsers, a
 * refused open) the memory copy is all there is: images then last until the tab closes.
 */
function createImageStore() {
  const memory = new Map();
  let opened = null;

  const remember = (id, url) => {
    memory.delete(id);
    memory.set(id, url);
    while (memory.size > MAX_MEMORY_IMAGES) {
      memory.delete(memory.keys().next().value);
    }
  };

  const db = () => {
    if (!opened) {
      opened = new Promise((resolve) => {
        let request;
        try {
          request = indexedDB.open(IMAGE_DB, 1);
        } catch {
          resolve(null);
          return;
        }
        request.onupgradeneeded = () => {
          const database = request.result;
          database.createObjectStore('data');
          database.createObjectStore('meta', { keyPath: 'id' }).createIndex('created', 'created');
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => resolve(null);
        request.onblocked = () => resolve(null);
      });
    }
    return opened;
  };

  const finished = (tx) =>
    new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('aborted'));
    });

  const result = (request) =>
    new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });

  // Drops the oldest images until both caps hold.
  async function prune(database) {
    const tx = database.transaction(['data', 'meta'], 'readwrite');
    const metas = await result(tx.objectStore('meta').index('created').getAll());
    let count = metas.length;
    let chars = metas.reduce((sum, m) => sum + (Number(m.bytes) || 0), 0);
    for (const m of metas) {
      if (count <= MAX_STORED_IMAGES && chars <= MAX_STORED_IMAGE_CHARS) {
        break;
      }
      tx.objectStore('data').delete(m.id);
      tx.objectStore('meta').delete(m.id);
      count--;
      chars -= Number(m.bytes) || 0;
    }
    await finished(tx);
  }

  return {
    /** The data URL if this tab has it at hand (no waiting), else null. */
    cached(id) {
      return memory.get(id) || null;
    },
    /** Keeps an image; true when IndexedDB has it (it survives a reload). */
    async put(id, url) {
      remember(id, url);
      const database = await db();
      if (!database) {
        return false;
      }
      try {
        const tx = database.transaction(['data', 'meta'], 'readwrite');
        tx.objectStore('data').put(url, id);
        tx.objectStore('meta').put({ id, bytes: url.length, created: Date.now() });
        await finished(tx);
        await prune(database);
        return true;
      } catch {
        return false;
      }
    },
    /** The data URL of an image, or null when it is not kept (any more). */
    async get(id) {
      if (memory.has(id)) {
        return memory.get(id);
      }
      const database = await db();
      if (!database) {
        return null;
      }
      try {
        const url = await result(database.transaction('data', 'readonly').objectStore('data').get(id));
        if (typeof url === 'string' && JPEG_DATA_URL.test(url)) {
          remember(id, url);
          return url;
        }
      } catch {
        // unreadable: as if gone
      }
      return null;
    },
    async remove(ids) {
      ids.forEach((id) => memory.delete(id));
      const database = ids.length ? await db() : null;
      if (!database) {
        return;
      }
      try {
        const tx = database.transaction(['data', 'meta'], 'readwrite');
        for (const id of ids) {
          tx.objectStore('data').delete(id);
          tx.objectStore('meta').delete(id);
        }
        await finished(tx);
      } catch {
        // best effort
      }
    },
  };
}

/** A File/Blob of an image -> a downscaled JPEG: {url, width, height, bytes, original: {...}}. */
async function prepareImage(file, settings) {
  if (typeof createImageBitmap !== 'function') {
    throw new Error('this browser cannot decode images here');
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error('the browser could not decode it');
  }
  try {
    const { width, height } = fitWithin(bitmap.width, bitmap.height, settings.maxPx);
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    // JPEG has no transparency: transparent pixels become white, not black.
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    const blob = await new Promise((resolve, reject) => {
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('JPEG encoding failed'))), 'image/jpeg', settings.quality);
    });
    canvas.width = 0;
    canvas.height = 0;
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error || new Error('reading the JPEG failed'));
      reader.readAsDataURL(blob);
    });
    if (typeof url !== 'string' || !JPEG_DATA_URL.test(url)) {
      throw new Error('the JPEG came out unreadable');
    }
    return {
      url,
      width,
      height,
      bytes: blob.size,
      original: { width: bitmap.width, height: bitmap.height, bytes: file.size, type: file.type },
    };
  } finally {
    bitmap.close();
  }
}

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
    attach: $('attach'),
    fileInput: $('file-input'),
    attachments: $('attachments'),
  };
  const images = createImageStore();

  const state = {
    user: null,
    store: { current: null, convs: [] },
    storageKey: null,
    streaming: null, // {controller, conv, item, el}
    retryUntil: 0,
    retryTimer: null,
    retryNotice: null,
    renderQueued: false,
    models: [], // ids from /v1/models
    pending: [], // images in the composer: {id, status: 'processing' | 'ready', name, url, ...}
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
    const gone = state.store.convs.find((c) => c.id === id);
    if (gone) {
      images.remove(imageIdsOf(gone.items));
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

  /** The items sent as context: the messages after the last "clear context" divider. */
  function contextItems(conv) {
    let start = 0;
    conv.items.forEach((item, index) => {
      if (item.kind === 'divider') {
        start = index + 1;
      }
    });
    return conv.items
      .slice(start)
      .filter(
        (item) =>
          item.kind === 'msg' &&
          typeof item.content === 'string' &&
          (item.content !== '' || imagesOf(item).length > 0),
      );
  }

  /** The image records of a message ({id, width, height, bytes}), checked. */
  function imagesOf(item) {
    return item.role === 'user' && Array.isArray(item.images)
      ? item.images.filter((m) => m && typeof m.id === 'string' && IMAGE_ID.test(m.id))
      : [];
  }

  function imageIdsOf(items) {
    return items.flatMap((item) => imagesOf(item).map((m) => m.id));
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
      const metas = imagesOf(item);
      if (metas.length === 0) {
        wrap.append(el('div', 'bubble', item.content));
        return wrap;
      }
      const bubble = el('div', 'bubble has-images');
      const gallery = el('div', 'msg-images');
      metas.forEach((meta, k) => gallery.append(messageImage(meta, k, metas.length)));
      bubble.append(gallery);
      if (item.content) {
        bubble.append(el('div', 'msg-text', item.content));
      }
      wrap.append(bubble);
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

  /** An image of a user message: from this tab's memory, else IndexedDB, else a note. */
  function messageImage(meta, index, count) {
    const size = (n) => (Number.isInteger(n) && n > 0 && n <= 16384 ? n : null);
    const width = size(meta.width);
    const height = size(meta.height);
    const label = `Image${count > 1 ? ` ${index + 1}` : ''}${width && height ? ` (${width}×${height})` : ''}`;
    const img = el('img', 'msg-image');
    img.alt = label;
    img.title = label;
    if (width && height) {
      img.width = width;
      img.height = height;
    }
    const show = (url) => {
      if (url) {
        img.src = url;
        img.classList.remove('loading');
      } else if (img.isConnected || img.parentNode) {
        const missing = el('span', 'msg-image-missing', `${label}: no longer kept in this browser`);
        img.replaceWith(missing);
      }
    };
    const cached = images.cached(meta.id);
    if (cached) {
      img.src = cached;
    } else {
      img.classList.add('loading');
      images.get(meta.id).then(show, () => show(null));
    }
    return img;
  }

  function fillAssistant(wrap, item) {
    const body = wrap.querySelector('.msg-body');
    const parts = [];
    if (item.model) {
      const meta = el('div', 'msg-meta', item.model);
      if (item.imageModel === 'picked' || item.imageModel === 'fallback') {
        const tag = el(
          'span',
          `vision-tag ${item.imageModel}`,
          item.imageModel === 'picked' ? 'vision model, picked for the images' : 'no vision model listed: the images went to this one',
        );
        meta.append(' · ', tag);
      }
      parts.push(meta);
    }
    if (item.reasoning) {
      const details = el('details', 'reasoning');
      details.append(el('summary', null, 'Reasoning'), el('div', 'reasoning-text', item.reasoning));
      parts.push(details);
    }
    const bubble = el('div', 'bubble md');
    const streaming = state.streaming && state.streaming.item === item;
    if (item.content) {
      bubble.append(renderAst(parseMarkdown(item.content), document, markdownOptions()));
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

  /** highlight.js publishes itself as globalThis.ChatHighlight; without it code stays plain. */
  function markdownOptions() {
    const highlighter = globalThis.ChatHighlight;
    return highlighter && typeof highlighter.highlightInto === 'function' ? { highlight: highlighter.highlightInto } : {};
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
    } else if (preparing()) {
      ui.send.textContent = 'Send';
      ui.send.classList.remove('stop');
      ui.send.disabled = true;
      ui.send.setAttribute('aria-label', 'Send (waiting for the images to be prepared)');
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
    if (preparing()) {
      return;
    }
    const text = ui.input.value.trim();
    const attached = state.pending.filter((p) => p.status === 'ready');
    if (!text && attached.length === 0) {
      ui.input.focus();
      return;
    }
    // Earlier errors are about earlier attempts.
    ui.notices.replaceChildren();

    const conv = ensureConv();
    const userItem = { kind: 'msg', role: 'user', content: text, ts: Date.now() };
    if (attached.length) {
      // Only sizes go to localStorage; the JPEGs go to the image store.
      userItem.images = attached.map((p) => ({ id: p.id, width: p.width, height: p.height, bytes: p.bytes }));
      for (const p of attached) {
        images.put(p.id, p.url);
      }
    }
    conv.items.push(userItem);
    const titleBefore = conv.title;
    conv.updated = Date.now();
    if (!conv.renamed && conv.title === DEFAULT_TITLE) {
      const firstLine = plainText(parseMarkdown(text.split('\n')[0]).children).trim() || text || 'Image';
      conv.title = firstLine.length > 48 ? `${firstLine.slice(0, 47)}…` : firstLine;
    }
    const items = contextItems(conv);
    const selected = ui.model.value;
    const assistant = { kind: 'msg', role: 'assistant', content: '', reasoning: '', model: selected, ts: Date.now() };
    conv.items.push(assistant);
    ui.input.value = '';
    resizeInput();
    state.pending = state.pending.filter((p) => !attached.includes(p));
    renderAttachments();
    const controller = new AbortController();
    state.streaming = { controller, conv, item: assistant, el: null };
    save();
    renderAll();

    // Undoes the attempt when nothing was answered: the message (and its images) goes back to
    // the composer.
    const takeBack = () => {
      conv.items = conv.items.filter((item) => item !== userItem && item !== assistant);
      if (!conv.renamed) {
        conv.title = titleBefore;
      }
      if (!ui.input.value) {
        ui.input.value = text;
        resizeInput();
      }
      if (attached.length) {
        images.remove(attached.map((p) => p.id));
        state.pending = [...attached, ...state.pending];
        renderAttachments();
      }
    };

    // The images of the context (this tab's memory or IndexedDB), the newest first within the
    // request budget; a vision model when any image goes.
    const built = await buildMessages(items, (id) => images.get(id));
    const { messages } = built;
    if (controller.signal.aborted) {
      state.streaming = null;
      takeBack();
      finishSend(conv);
      return;
    }
    if (built.dropped > 0) {
      notice({
        kind: 'info',
        title: `${built.dropped} earlier image${built.dropped === 1 ? ' was' : 's were'} not sent`,
        text: 'Either no longer kept in this browser, or beyond what one request may carry. Clear the context to start afresh.',
      });
    }
    const choice = built.images > 0 ? pickVisionModel(state.models, selected) : { model: selected, vision: false };
    const model = choice.model;
    assistant.model = model;
    if (built.images > 0 && model !== selected) {
      assistant.imageModel = 'picked';
    } else if (built.images > 0 && !choice.vision) {
      assistant.imageModel = 'fallback';
    }
    queueStreamRender();

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

  // ---- images in the composer ----------------------------------------------------------------

  function preparing() {
    return state.pending.some((p) => p.status === 'processing');
  }

  /** Which model the attached images go to, as the composer says it. */
  function visionChoice() {
    const selected = ui.model.value;
    const choice = pickVisionModel(state.models, selected);
    if (choice.vision && choice.model === selected) {
      return { text: `Images go to ${selected}, a vision model.`, kind: 'selected' };
    }
    if (choice.vision) {
      return { text: `Images go to ${choice.model} (vision model), not ${selected || 'the selected model'}.`, kind: 'picked' };
    }
    return {
      text: `No vision model in the list: images go to ${selected || 'the default model'}, which may not read them.`,
      kind: 'fallback',
    };
  }

  function renderAttachments() {
    const chips = state.pending.map((p) => {
      const chip = el('div', `attachment ${p.status}`);
      if (p.status === 'ready') {
        const img = el('img', 'attachment-thumb');
        img.src = p.url;
        img.alt = p.name;
        chip.append(img);
        const o = p.original;
        chip.title = `${p.name}: ${o.width}×${o.height}, ${formatBytes(o.bytes)} → JPEG ${p.width}×${p.height}, ${formatBytes(p.bytes)}`;
        chip.append(el('span', 'attachment-info', `${p.width}×${p.height} · ${formatBytes(p.bytes)}`));
      } else {
        chip.append(el('span', 'attachment-busy', 'Preparing…'));
        chip.title = p.name;
      }
      const remove = el('button', 'icon-btn attachment-remove', '✕');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove ${p.name}`);
      remove.title = 'Remove';
      remove.addEventListener('click', () => {
        state.pending = state.pending.filter((q) => q !== p);
        renderAttachments();
        updateControls();
        ui.input.focus();
      });
      chip.append(remove);
      return chip;
    });
    if (chips.length) {
      const { text, kind } = visionChoice();
      const note = el('div', `vision-choice ${kind}`, text);
      note.id = 'vision-choice';
      ui.attachments.replaceChildren(el('div', 'attachment-list'), note);
      ui.attachments.firstChild.append(...chips);
    } else {
      ui.attachments.replaceChildren();
    }
    show(ui.attachments, chips.length > 0);
  }

  /** Adds images from the picker, a paste or a drop: checked, decoded, downscaled, JPEG. */
  async function addImages(files) {
    const settings = imageSettings(ui.composer.dataset);
    for (const file of files) {
      const problem = checkImageFile(file, settings.maxBytes);
      if (problem) {
        notice({ kind: 'error', code: 'IMAGE_REFUSED', title: 'Image not attached', text: problem });
        continue;
      }
      if (state.pending.length >= settings.perMessage) {
        notice({ kind: 'error', code: 'IMAGE_REFUSED', title: 'Image not attached', text: `At most ${settings.perMessage} images per message.` });
        break;
      }
      const entry = { id: newId(), status: 'processing', name: file.name || 'Pasted image' };
      state.pending.push(entry);
      renderAttachments();
      updateControls();
      try {
        Object.assign(entry, await prepareImage(file, settings), { status: 'ready' });
      } catch (err) {
        state.pending = state.pending.filter((p) => p !== entry);
        notice({
          kind: 'error',
          code: 'IMAGE_REFUSED',
          title: 'Image not attached',
          text: `“${entry.name}” could not be read as an image: ${err && err.message ? err.message : err}.`,
        });
      }
      renderAttachments();
      updateControls();
    }
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
    state.models = ids;
    if (ids.length === 0) {
      const placeholder = el('option', null, 'Default model');
      placeholder.value = '';
      ui.model.replaceChildren(placeholder);
      return;
    }
    ui.model.replaceChildren(
      ...ids.map((id) => {
        const option = el('option', null, isVisionModel(id) ? `${id} · vision` : id);
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
    renderAttachments();
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
    renderAttachments();
  });
  ui.attach.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', () => {
    const files = [...ui.fileInput.files];
    ui.fileInput.value = '';
    addImages(files);
  });
  // Pasted images (screenshots...). Text pasted along with them still lands in the textarea.
  ui.input.addEventListener('paste', (event) => {
    const data = event.clipboardData;
    const files = data ? [...data.items].filter((i) => i.kind === 'file').map((i) => i.getAsFile()).filter(Boolean) : [];
    if (files.length === 0) {
      return;
    }
    if (![...data.types].includes('text/plain')) {
      event.preventDefault();
    }
    addImages(files);
  });
  ui.composer.addEventListener('dragover', (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes('Files')) {
      event.preventDefault();
      ui.composer.classList.add('dragging');
    }
  });
  ui.composer.addEventListener('dragleave', () => ui.composer.classList.remove('dragging'));
  ui.composer.addEventListener('drop', (event) => {
    ui.composer.classList.remove('dragging');
    if (event.dataTransfer && event.dataTransfer.files.length) {
      event.preventDefault();
      addImages([...event.dataTransfer.files]);
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
