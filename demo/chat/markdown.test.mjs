// Unit tests of the chat page's Markdown renderer (model output is untrusted) and of its SSE
// reader. Run: node --test demo/chat/
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseMarkdown, parseInline, plainText, renderAst, safeUrl } from './markdown.js';
import { SseParser } from './app.js';

// ---- helpers ---------------------------------------------------------------------------------

const blocks = (md) => parseMarkdown(md).children;

/** Every node of the tree (blocks, list items' blocks, inline nodes). */
function* walk(node) {
  if (Array.isArray(node)) {
    for (const n of node) {
      yield* walk(n);
    }
    return;
  }
  yield node;
  for (const key of ['children', 'header']) {
    if (Array.isArray(node[key])) {
      yield* walk(node[key]);
    }
  }
  if (Array.isArray(node.items)) {
    for (const item of node.items) {
      yield* walk(item);
    }
  }
  if (Array.isArray(node.rows)) {
    for (const row of node.rows) {
      yield* walk(row);
    }
  }
}

const nodesOf = (md, type) => [...walk(parseMarkdown(md))].filter((n) => n.type === type);

/**
 * A minimal DOM for renderAst: records elements and attributes, and fails the test if anything
 * touches innerHTML/outerHTML/insertAdjacentHTML or sets a style.
 */
class FakeNode {
  constructor(tag, text) {
    this.tagName = tag;
    this.childNodes = [];
    this.attributes = {};
    this._text = text ?? '';
    this.className = '';
  }
  appendChild(child) {
    if (child.tagName === '#fragment') {
      this.childNodes.push(...child.childNodes);
    } else {
      this.childNodes.push(child);
    }
    return child;
  }
  setAttribute(name, value) {
    assert.match(name, /^(href|rel|target|type|start)$/, `unexpected attribute ${name}`);
    this.attributes[name] = String(value);
  }
  set textContent(value) {
    this.childNodes = [new FakeNode('#text', String(value))];
  }
  get textContent() {
    return this.tagName === '#text' ? this._text : this.childNodes.map((c) => c.textContent).join('');
  }
  set innerHTML(_) {
    assert.fail('innerHTML must never be used');
  }
  set outerHTML(_) {
    assert.fail('outerHTML must never be used');
  }
  insertAdjacentHTML() {
    assert.fail('insertAdjacentHTML must never be used');
  }
  get style() {
    assert.fail('style must never be touched');
  }
  *all() {
    for (const c of this.childNodes) {
      yield c;
      yield* c.all();
    }
  }
}

const fakeDocument = {
  createElement: (tag) => new FakeNode(tag.toLowerCase()),
  createTextNode: (text) => new FakeNode('#text', text),
  createDocumentFragment: () => new FakeNode('#fragment'),
  write: () => assert.fail('document.write must never be used'),
};

const render = (md) => renderAst(parseMarkdown(md), fakeDocument);
const elements = (fragment, tag) => [...fragment.all()].filter((n) => n.tagName === tag);

// ---- blocks ----------------------------------------------------------------------------------

test('headings: ATX levels 1-6, closing hashes, setext', () => {
  const b = blocks('# One\n## Two ##\n###### Six\n####### seven\n\nTitle\n=====\n\nSub\n---');
  assert.deepEqual(
    b.map((x) => [x.type, x.level, x.children && plainText(x.children)]),
    [
      ['heading', 1, 'One'],
      ['heading', 2, 'Two'],
      ['heading', 6, 'Six'],
      ['paragraph', undefined, '####### seven'],
      ['heading', 1, 'Title'],
      ['heading', 2, 'Sub'],
    ],
  );
  assert.equal(blocks('#hashtag')[0].type, 'paragraph');
});

test('paragraphs and line breaks', () => {
  const b = blocks('first line\nsecond line\n\nnext paragraph');
  assert.equal(b.length, 2);
  assert.deepEqual(b[0].children, [
    { type: 'text', text: 'first line' },
    { type: 'break' },
    { type: 'text', text: 'second line' },
  ]);
  const f = render('a\nb');
  assert.equal(elements(f, 'p').length, 1);
  assert.equal(elements(f, 'br').length, 1);
});

test('fenced code block with a language label', () => {
  const [code] = blocks('```python\ndef f(x):\n    return x * 2\n```\nafter');
  assert.deepEqual(code, {
    type: 'code',
    lang: 'python',
    text: 'def f(x):\n    return x * 2',
    closed: true,
  });
  const f = render('~~~\n<b>not bold</b>\n~~~');
  const [pre] = elements(f, 'pre');
  assert.equal(pre.textContent, '<b>not bold</b>');
  assert.equal(elements(f, 'b').length, 0);
  assert.equal(elements(f, 'span')[0].textContent, 'text');
  // Markdown inside a fence is literal.
  assert.equal(nodesOf('```\n**x** [a](https://a.example)\n```', 'strong').length, 0);
  assert.equal(nodesOf('```\n**x** [a](https://a.example)\n```', 'link').length, 0);
});

test('an unterminated fence (a streaming answer) runs to the end and renders', () => {
  const partials = ['Here:\n``', 'Here:\n```', 'Here:\n```j', 'Here:\n```js\nconst a = 1;', 'Here:\n```js\nconst a = 1;\n``'];
  for (const md of partials) {
    const f = render(md); // never throws
    assert.ok(f.textContent.startsWith('Here:'), md);
  }
  const b = blocks('Here:\n```js\nconst a = 1;\nconst b = "**no**";');
  assert.equal(b[0].type, 'paragraph');
  assert.deepEqual(b[1], {
    type: 'code',
    lang: 'js',
    text: 'const a = 1;\nconst b = "**no**";',
    closed: false,
  });
  // While the closing fence is still arriving, the code block stays open (no flicker into text).
  assert.equal(blocks('```\nx\n``')[0].text, 'x\n``');
  assert.equal(blocks('```\nx\n```')[0].closed, true);
  // An empty fence.
  assert.deepEqual(blocks('```'), [{ type: 'code', lang: '', text: '', closed: false }]);
});

test('unordered, ordered and nested lists', () => {
  const [ul, ol] = blocks('- one\n- two **b**\n  - nested\n    1. deep\n\n3. three\n4. four');
  assert.equal(ul.type, 'list');
  assert.equal(ul.ordered, false);
  assert.equal(ul.items.length, 2);
  assert.equal(plainText(ul.items[0]), 'one');
  const nested = ul.items[1][1];
  assert.equal(nested.type, 'list');
  assert.equal(plainText(nested.items[0][0]), 'nested');
  assert.equal(nested.items[0][1].ordered, true);
  assert.equal(ol.type, 'list');
  assert.equal(ol.ordered, true);
  assert.equal(ol.start, 3);
  assert.equal(ol.items.length, 2);

  const f = render('* a\n* b\n\n1) x\n2) y');
  assert.equal(elements(f, 'ul').length, 1);
  assert.equal(elements(f, 'ol').length, 1);
  assert.equal(elements(f, 'li').length, 4);
  // Tight lists put no <p> in their items.
  assert.equal(elements(f, 'p').length, 0);
  const [olEl] = elements(render('5. five\n6. six'), 'ol');
  assert.equal(olEl.attributes.start, '5');
  // A list item's continuation line and a code block inside an item.
  const [item] = blocks('- first\n  continued\n\n  ```sh\n  ls\n  ```').map((l) => l.items[0]);
  assert.equal(item[1].type, 'code');
  assert.equal(item[1].text, 'ls');
  // "2024. was..." in a paragraph does not start a list; "* * *" is a rule, not a list.
  assert.equal(blocks('In\n2024. was a year').length, 1);
  assert.equal(blocks('* * *')[0].type, 'hr');
});

test('blockquotes, rules and tables', () => {
  const [quote, hr] = blocks('> quoted **text**\n> > nested\n\n---');
  assert.equal(quote.type, 'blockquote');
  assert.equal(quote.children[0].type, 'paragraph');
  assert.equal(quote.children[1].type, 'blockquote');
  assert.equal(hr.type, 'hr');
  const [table] = blocks('| a | b |\n|:--|--:|\n| 1 | `x|` |\n| 2 |');
  assert.equal(table.type, 'table');
  assert.deepEqual(table.align, ['left', 'right']);
  assert.equal(table.rows.length, 2);
  assert.equal(table.rows[1].length, 2);
  const f = render('| a | b |\n|---|:-:|\n| 1 | 2 |');
  assert.equal(elements(f, 'th').length, 2);
  assert.equal(elements(f, 'td')[1].className, 'al-center');
});

// ---- inline ----------------------------------------------------------------------------------

test('emphasis: em, strong, strikethrough, nested, intraword underscores', () => {
  assert.deepEqual(parseInline('*a* _b_ **c** __d__ ~~e~~'), [
    { type: 'em', children: [{ type: 'text', text: 'a' }] },
    { type: 'text', text: ' ' },
    { type: 'em', children: [{ type: 'text', text: 'b' }] },
    { type: 'text', text: ' ' },
    { type: 'strong', children: [{ type: 'text', text: 'c' }] },
    { type: 'text', text: ' ' },
    { type: 'strong', children: [{ type: 'text', text: 'd' }] },
    { type: 'text', text: ' ' },
    { type: 'del', children: [{ type: 'text', text: 'e' }] },
  ]);
  // Nested both ways, and *** as strong+em.
  assert.deepEqual(parseInline('**bold *it* bold**'), [
    {
      type: 'strong',
      children: [
        { type: 'text', text: 'bold ' },
        { type: 'em', children: [{ type: 'text', text: 'it' }] },
        { type: 'text', text: ' bold' },
      ],
    },
  ]);
  assert.deepEqual(parseInline('*it **bold** it*')[0].children[1].type, 'strong');
  const triple = parseInline('***both***');
  assert.equal(triple.length, 1);
  assert.ok(['em', 'strong'].includes(triple[0].type));
  assert.ok(['em', 'strong'].includes(triple[0].children[0].type));
  assert.notEqual(triple[0].type, triple[0].children[0].type);
  // Literal when not flanking or unmatched; snake_case stays as is; single tildes are text.
  assert.deepEqual(parseInline('a * b * c'), [{ type: 'text', text: 'a * b * c' }]);
  assert.deepEqual(parseInline('snake_case_name'), [{ type: 'text', text: 'snake_case_name' }]);
  assert.deepEqual(parseInline('**unclosed'), [{ type: 'text', text: '**unclosed' }]);
  assert.deepEqual(parseInline('~5 to ~10 min'), [{ type: 'text', text: '~5 to ~10 min' }]);
  assert.deepEqual(parseInline('\\*not em\\*'), [{ type: 'text', text: '*not em*' }]);
  const f = render('Hello **bold** and *it*');
  assert.equal(elements(f, 'strong')[0].textContent, 'bold');
  assert.equal(elements(f, 'em')[0].textContent, 'it');
});

test('inline code keeps its content literal, including * and _', () => {
  assert.deepEqual(parseInline('use `a*b*c` and `__init__`'), [
    { type: 'text', text: 'use ' },
    { type: 'inlineCode', text: 'a*b*c' },
    { type: 'text', text: ' and ' },
    { type: 'inlineCode', text: '__init__' },
  ]);
  assert.deepEqual(parseInline('*`x*`*'), [{ type: 'em', children: [{ type: 'inlineCode', text: 'x*' }] }]);
  assert.deepEqual(parseInline('`` a ` b ``'), [{ type: 'inlineCode', text: 'a ` b' }]);
  assert.deepEqual(parseInline('`<script>`'), [{ type: 'inlineCode', text: '<script>' }]);
  // An unmatched backtick is literal.
  assert.deepEqual(parseInline('it`s'), [{ type: 'text', text: 'it`s' }]);
  const f = render('`code`');
  assert.equal(elements(f, 'code')[0].textContent, 'code');
});

test('links: http, https and mailto only, with rel and target', () => {
  const [link] = nodesOf('see [the docs](https://example.com/a?b=1 "title")', 'link');
  assert.deepEqual(link, {
    type: 'link',
    href: 'https://example.com/a?b=1',
    children: [{ type: 'text', text: 'the docs' }],
  });
  assert.equal(nodesOf('<https://example.com>', 'link')[0].href, 'https://example.com/');
  assert.equal(nodesOf('<me@example.com>', 'link')[0].href, 'mailto:me@example.com');
  assert.equal(nodesOf('[mail](mailto:a@b.example)', 'link')[0].href, 'mailto:a@b.example');
  const bare = nodesOf('Visit https://example.com/x_(y). Or www.example.org!', 'link');
  assert.deepEqual(bare.map((l) => l.href), ['https://example.com/x_(y)', 'http://www.example.org/']);

  const f = render('[x](http://example.com/)');
  const [a] = elements(f, 'a');
  assert.deepEqual(a.attributes, {
    href: 'http://example.com/',
    rel: 'noopener noreferrer',
    target: '_blank',
  });
});

test('javascript:, data:, vbscript: and relative links become plain text', () => {
  const evil = [
    '[click](javascript:alert(1))',
    '[click](JaVaScRiPt:alert(1))',
    '[click](java\tscript:alert(1))',
    '[click](  javascript:alert(1)  )',
    '[click](<javascript:alert(1)>)',
    '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
    '[click](vbscript:msgbox(1))',
    '[click](file:///etc/passwd)',
    '[click](/relative/path)',
    '[click](//evil.example/x)',
    '<javascript:alert(1)>',
    '<data:text/html,<script>alert(1)</script>>',
  ];
  for (const md of evil) {
    assert.equal(nodesOf(md, 'link').length, 0, md);
    const f = render(md);
    assert.equal(elements(f, 'a').length, 0, md);
    assert.ok(f.textContent.includes('click') || f.textContent.includes(':'), md);
  }
  assert.equal(render('[click](javascript:alert(1))').textContent, '[click](javascript:alert(1))');
  // The renderer checks again, even for a tree that did not come from the parser.
  const forged = { type: 'root', children: [{ type: 'paragraph', children: [{ type: 'link', href: 'javascript:alert(1)', children: [{ type: 'text', text: 'x' }] }] }] };
  const f = renderAst(forged, fakeDocument);
  assert.equal(elements(f, 'a').length, 0);
  assert.equal(f.textContent, 'x');
  assert.equal(safeUrl('javascript:alert(1)'), null);
  assert.equal(safeUrl(' https://ok.example'), 'https://ok.example/');
  assert.equal(safeUrl('data:,x'), null);
});

test('raw HTML is text: <script>, <img onerror>, entities', () => {
  const md = 'Hi <script>window.__xss=2</script> <img src=x onerror="window.__xss=1"> <b>b</b>\n\n<div>\n<iframe src="https://evil.example"></iframe>\n</div>';
  const f = render(md);
  const tags = new Set([...f.all()].map((n) => n.tagName));
  for (const tag of ['script', 'img', 'b', 'div', 'iframe']) {
    assert.ok(!tags.has(tag), tag);
  }
  assert.ok(f.textContent.includes('<script>window.__xss=2</script>'));
  assert.ok(f.textContent.includes('<img src=x onerror="window.__xss=1">'));
  // Markdown images are never images.
  const img = render('![alt](https://example.com/a.png)');
  assert.ok(![...img.all()].some((n) => n.tagName === 'img'));
  assert.ok(img.textContent.startsWith('!'));
  // Character references decode to text (still text).
  assert.equal(render('&lt;script&gt; &amp; &#65; &#x42; &bogus;').textContent, '<script> & A B &bogus;');
});

test('empty and odd input', () => {
  assert.deepEqual(parseMarkdown(''), { type: 'root', children: [] });
  assert.deepEqual(parseMarkdown('   \n\n\t\n'), { type: 'root', children: [] });
  assert.deepEqual(parseMarkdown(undefined), { type: 'root', children: [] });
  assert.equal(render('').childNodes.length, 0);
  for (const md of ['[', ']', '[a](', '[a](b', '`', '***', '- ', '>', '#', '|', '| a |\n|', '\r\n', '\0', '\\']) {
    render(md); // never throws
  }
  assert.equal(blocks('a\r\nb')[0].children.length, 3);
});

test('deep nesting is bounded', () => {
  render('>'.repeat(5000) + ' deep');
  render(`${'- '.repeat(2000)}deep`);
  render(`${'**a '.repeat(5000)}${' b**'.repeat(5000)}`);
  render(`${'['.repeat(5000)}x${'](https://a.example)'.repeat(5000)}`);
});

test('very long input: 100 KB in under 200 ms', () => {
  const sample = [
    '## Section *title*',
    'Some **bold** text with `code`, a [link](https://example.com/path) and _emphasis_.',
    '- item one',
    '- item two with ~~strike~~',
    '```js',
    'const x = a * b * c; // *not emphasis*',
    '```',
    '> quoted <b>html</b> & more',
    '',
  ].join('\n');
  const doc = sample.repeat(Math.ceil(100_000 / sample.length)).slice(0, 100_000);
  parseMarkdown(doc.slice(0, 1000)); // warm up
  let t = performance.now();
  const ast = parseMarkdown(doc);
  let elapsed = performance.now() - t;
  assert.ok(ast.children.length > 100);
  assert.ok(elapsed < 200, `structured 100 KB took ${elapsed.toFixed(1)} ms`);

  // Pathological inline input: many unmatched delimiters, backticks and brackets.
  const nasty = '*_`[ '.repeat(20_000).slice(0, 100_000);
  t = performance.now();
  parseMarkdown(nasty);
  elapsed = performance.now() - t;
  assert.ok(elapsed < 200, `pathological 100 KB took ${elapsed.toFixed(1)} ms`);

  const oneLine = 'word '.repeat(20_000);
  t = performance.now();
  parseMarkdown(oneLine);
  elapsed = performance.now() - t;
  assert.ok(elapsed < 200, `one 100 KB line took ${elapsed.toFixed(1)} ms`);
});

// ---- SSE reader (app.js) ---------------------------------------------------------------------

test('SSE events split across reads, CRLF, comments, [DONE]', () => {
  const stream =
    ': keep-alive\n\ndata: {"choices":[{"delta":{"content":"Hel"}}]}\n\n' +
    'data: {"choices":[{"delta":{"content":"lo ✓"}}]}\r\n\r\n' +
    'event: message\ndata: {"choices":[{"delta":{"reasoning":"hm"}}]}\n\n' +
    'data: [DONE]\n\n';
  const bytes = new TextEncoder().encode(stream);
  for (const size of [1, 2, 3, 7, bytes.length]) {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const events = [];
    for (let k = 0; k < bytes.length; k += size) {
      events.push(...parser.push(decoder.decode(bytes.subarray(k, k + size), { stream: true })));
    }
    events.push(...parser.push(decoder.decode()), ...parser.end());
    assert.deepEqual(events, [
      '{"choices":[{"delta":{"content":"Hel"}}]}',
      '{"choices":[{"delta":{"content":"lo ✓"}}]}',
      '{"choices":[{"delta":{"reasoning":"hm"}}]}',
      '[DONE]',
    ], `chunk size ${size}`);
  }
  // Multi-line data and a last event without its blank line.
  const p = new SseParser();
  assert.deepEqual(p.push('data: a\ndata: b\n\ndata: c'), ['a\nb']);
  assert.deepEqual(p.end(), ['c']);
});
