// Unit tests of the chat page's image and model helpers (app.js): settings from index.html,
// downscaling sizes, files refused before decoding, the vision-model pick, and the messages
// sent (OpenAI content parts, newest images first within the budget). Run: node --test demo/chat/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  buildMessages,
  checkImageFile,
  fitWithin,
  formatBytes,
  IMAGE_DEFAULTS,
  imageSettings,
  isVisionModel,
  messageContent,
  pickVisionModel,
} from './app.js';

test('image settings come from index.html, with defaults for missing or bad values', () => {
  assert.deepEqual(imageSettings({}), {
    maxPx: 1024,
    maxBytes: 20 * 1024 * 1024,
    quality: 0.85,
    perMessage: 8,
  });
  assert.deepEqual(imageSettings({ maxImagePx: '512', maxImageMb: '2', imageQuality: '0.7', maxImages: '3' }), {
    maxPx: 512,
    maxBytes: 2 * 1024 * 1024,
    quality: 0.7,
    perMessage: 3,
  });
  for (const bad of ['', 'abc', '-5', '0', '99999', 'Infinity']) {
    assert.equal(imageSettings({ maxImagePx: bad }).maxPx, IMAGE_DEFAULTS.maxPx, bad);
  }
  assert.equal(imageSettings({ imageQuality: '7' }).quality, 0.85);
  // What index.html ships.
  const html = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
  const attr = (name) => (new RegExp(`${name}="([^"]*)"`).exec(html) || [])[1];
  assert.equal(attr('data-max-image-px'), '1024');
  assert.equal(attr('data-max-image-mb'), '20');
  assert.equal(attr('data-image-quality'), '0.85');
});

test('downscaling keeps the aspect ratio and never enlarges', () => {
  assert.deepEqual(fitWithin(3000, 2000, 1024), { width: 1024, height: 683, scaled: true });
  assert.deepEqual(fitWithin(2000, 3000, 1024), { width: 683, height: 1024, scaled: true });
  assert.deepEqual(fitWithin(800, 600, 1024), { width: 800, height: 600, scaled: false });
  assert.deepEqual(fitWithin(1024, 1024, 1024), { width: 1024, height: 1024, scaled: false });
  assert.deepEqual(fitWithin(100000, 10, 1024), { width: 1024, height: 1, scaled: true });
  assert.deepEqual(fitWithin(4096, 4096, 1024), { width: 1024, height: 1024, scaled: true });
});

test('files refused before decoding: not images, SVG, empty, over the cap', () => {
  const cap = 20 * 1024 * 1024;
  assert.equal(checkImageFile({ name: 'a.png', type: 'image/png', size: 1000 }, cap), null);
  assert.equal(checkImageFile({ name: 'a.jpg', type: 'IMAGE/JPEG', size: cap }, cap), null);
  assert.match(checkImageFile({ name: 'notes.txt', type: 'text/plain', size: 10 }, cap), /“notes\.txt” is not an image \(text\/plain\)/);
  assert.match(checkImageFile({ name: 'x', type: '', size: 10 }, cap), /not an image \(unknown type\)/);
  assert.match(checkImageFile({ name: 'logo.svg', type: 'image/svg+xml', size: 10 }, cap), /SVG/);
  assert.match(checkImageFile({ name: 'e.png', type: 'image/png', size: 0 }, cap), /empty/);
  assert.match(
    checkImageFile({ name: 'huge.png', type: 'image/png', size: cap + 1 }, cap),
    /“huge\.png” is 20 MB: images over 20 MB are refused/,
  );
  assert.match(checkImageFile({ type: 'image/png', size: 10 }, 5), /The pasted file is 10 B/);
  assert.match(checkImageFile(null, cap), /not a file/);
  assert.match(checkImageFile({ name: 'big.jpg', type: 'image/jpeg', size: 21.5 * 1024 * 1024 }, cap), /is 21\.5 MB: images over 20 MB/);
  assert.equal(formatBytes(1536), '2 KB');
  assert.equal(formatBytes(87), '87 B');
});

test('vision models are recognised by name', () => {
  for (const id of [
    'llava:7b',
    'bakllava',
    'llava-llama3:8b',
    'llama3.2-vision:11b',
    'qwen2.5vl:7b',
    'qwen2.5-vl-7b-instruct',
    'qwen3-vl:8b',
    'Qwen/Qwen2-VL-7B',
    'gemma3:4b',
    'gemma3:27b',
    'minicpm-v:8b',
    'moondream:latest',
    'granite3.2-vision',
    'pixtral-12b',
    'internvl2:8b',
    'smolvlm',
    'mistral-small3.1:24b',
    'llama4:scout',
  ]) {
    assert.ok(isVisionModel(id), id);
  }
  for (const id of ['qwen3:8b', 'llama3.1:8b', 'gemma3:1b', 'gemma3n:e4b', 'devlin', 'mistral:7b', 'gpt-4o', '', null]) {
    assert.ok(!isVisionModel(id), String(id));
  }
});

test('the model for images: the selected if it sees, else the first vision model, else the selected', () => {
  const ids = ['qwen3:8b', 'llava:7b', 'gemma3:4b'];
  assert.deepEqual(pickVisionModel(ids, 'qwen3:8b'), { model: 'llava:7b', vision: true });
  assert.deepEqual(pickVisionModel(ids, 'gemma3:4b'), { model: 'gemma3:4b', vision: true });
  assert.deepEqual(pickVisionModel(['qwen3:8b'], 'qwen3:8b'), { model: 'qwen3:8b', vision: false });
  assert.deepEqual(pickVisionModel([], ''), { model: '', vision: false });
  assert.deepEqual(pickVisionModel(undefined, 'qwen3:8b'), { model: 'qwen3:8b', vision: false });
});

test('content: a plain string without images, OpenAI parts with them', () => {
  assert.equal(messageContent('hi', []), 'hi');
  assert.deepEqual(messageContent('look', ['data:image/jpeg;base64,AAAA']), [
    { type: 'text', text: 'look' },
    { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } },
  ]);
  assert.deepEqual(messageContent('', ['data:image/jpeg;base64,AAAA']), [
    { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } },
  ]);
});

test('messages: images looked up, newest first within the budget, missing ones dropped', async () => {
  const url = (n, size) => `data:image/jpeg;base64,${String(n).repeat(size)}`;
  const store = { a: url(1, 400), b: url(2, 400), c: url(3, 400) };
  const items = [
    { role: 'user', content: 'first', images: [{ id: 'a' }] },
    { role: 'assistant', content: 'seen' },
    { role: 'user', content: '', images: [{ id: 'gone' }] },
    { role: 'user', content: 'second', images: [{ id: 'b' }, { id: 'c' }] },
  ];
  const lookup = async (id) => store[id] || null;

  const all = await buildMessages(items, lookup);
  assert.equal(all.images, 3);
  assert.equal(all.dropped, 1);
  assert.deepEqual(
    all.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content : m.content.map((p) => p.text || p.image_url.url.length)]),
    [
      ['user', ['first', store.a.length]],
      ['assistant', 'seen'],
      ['user', ['second', store.b.length, store.c.length]],
    ],
  );
  // Room for two images: the newest message's, in their order; the oldest is dropped.
  const tight = await buildMessages(items, lookup, store.a.length * 2 + 10);
  assert.equal(tight.images, 2);
  assert.equal(tight.dropped, 2);
  assert.equal(tight.messages[0].content, 'first');
  assert.deepEqual(tight.messages[2].content.slice(1).map((p) => p.image_url.url), [store.b, store.c]);
  // Without images, the messages are what they always were.
  const plain = await buildMessages([{ role: 'user', content: 'hi' }], lookup);
  assert.deepEqual(plain, { messages: [{ role: 'user', content: 'hi' }], images: 0, dropped: 0 });
});
