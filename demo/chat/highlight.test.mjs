// Unit tests of the chat page's code highlighter (highlight.js): tokens get the right classes,
// code text (model output, untrusted) only ever becomes text nodes, and hostile input stays
// linear. Run: node --test demo/chat/
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { classOf, highlightInto, languageOf, MAX_CODE_LENGTH, tokenize } from './highlight.js';
import { parseMarkdown, renderAst } from './markdown.js';

const CLASSES = new Set(['hl-keyword', 'hl-literal', 'hl-string', 'hl-comment', 'hl-number', 'hl-variable']);

/** A minimal DOM that fails the test on innerHTML & co., attributes and styles. */
class FakeNode {
  constructor(tag, text) {
    this.tagName = tag;
    this.childNodes = [];
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
    this[`attr:${name}`] = String(value);
  }
  set textContent(value) {
    this.childNodes = value === '' ? [] : [new FakeNode('#text', String(value))];
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
    return assert.fail('style must never be touched');
  }
  *all() {
    for (const c of this.childNodes) {
      yield c;
      yield* c.all();
    }
  }
}

const doc = {
  createElement: (tag) => new FakeNode(tag.toLowerCase()),
  createTextNode: (text) => new FakeNode('#text', text),
  createDocumentFragment: () => new FakeNode('#fragment'),
  write: () => assert.fail('document.write must never be used'),
};

/** [type, text] of the non-plain tokens. */
const marked = (code, lang) => tokenize(code, lang).filter((t) => t.type !== 'plain').map((t) => [t.type, t.text]);
const ofType = (code, lang, type) => tokenize(code, lang).filter((t) => t.type === type).map((t) => t.text);

/** Checks the DOM highlightInto built: spans of known classes holding one text node each. */
function checkDom(code, lang) {
  const parent = doc.createElement('code');
  assert.equal(highlightInto(parent, code, lang, doc), true);
  for (const node of parent.childNodes) {
    if (node.tagName === '#text') {
      continue;
    }
    assert.equal(node.tagName, 'span');
    assert.ok(CLASSES.has(node.className), `unexpected class ${node.className}`);
    assert.equal(node.childNodes.length, 1);
    assert.equal(node.childNodes[0].tagName, '#text');
  }
  assert.equal(parent.textContent, code, 'the code comes out unchanged');
  return parent;
}

// ---- languages and tokens --------------------------------------------------------------------

test('language labels and aliases; unknown ones are not highlighted', () => {
  assert.equal(languageOf('js'), 'js');
  assert.equal(languageOf('TypeScript'), 'js');
  assert.equal(languageOf(' tsx '), 'js');
  assert.equal(languageOf('py'), 'python');
  assert.equal(languageOf('rs'), 'rust');
  assert.equal(languageOf('golang'), 'go');
  assert.equal(languageOf('jsonc'), 'json');
  assert.equal(languageOf('sh'), 'bash');
  assert.equal(languageOf('PostgreSQL'), 'sql');
  for (const unknown of ['', 'text', 'brainfuck', 'constructor', '__proto__', 'toString', null, undefined, 42]) {
    assert.equal(languageOf(unknown), null, String(unknown));
  }
  assert.deepEqual(tokenize('const x = 1;', 'cobol'), [{ type: 'plain', text: 'const x = 1;' }]);
  assert.deepEqual(tokenize('', 'js'), []);
  const parent = doc.createElement('code');
  assert.equal(highlightInto(parent, 'const x = 1;', 'cobol', doc), false);
  assert.equal(parent.childNodes.length, 0, 'nothing added for an unknown language');
});

test('js/ts: keywords, literals, strings, template strings, comments, numbers', () => {
  const code = [
    'const answer = 6 * 7; // six times seven',
    "let s = 'it\\'s' + \"dq\" + `tpl ${x}`;",
    '/* block */ if (x === null) return 0x1F + 1.5e3 + 10n;',
    'interface Point { x: number }',
  ].join('\n');
  assert.deepEqual(ofType(code, 'ts', 'keyword'), ['const', 'let', 'if', 'return', 'interface']);
  assert.deepEqual(ofType(code, 'js', 'literal'), ['null']);
  assert.deepEqual(ofType(code, 'js', 'string'), ["'it\\'s'", '"dq"', '`tpl ${x}`']);
  assert.deepEqual(ofType(code, 'js', 'comment'), ['// six times seven', '/* block */']);
  assert.deepEqual(ofType(code, 'js', 'number'), ['6', '7', '0x1F', '1.5e3', '10n']);
  // Words that contain keywords are not keywords.
  assert.deepEqual(ofType('constant iffy returned $if _for', 'js', 'keyword'), []);
  checkDom(code, 'js');
});

test('python: keywords, True/None, prefixed and triple-quoted strings, # comments', () => {
  const code = 'def f(x=None):\n    """doc\n    string"""\n    return rb"\\x00" if x is True else f\'{x}\'  # note\n';
  assert.deepEqual(ofType(code, 'py', 'keyword'), ['def', 'return', 'if', 'is', 'else']);
  assert.deepEqual(ofType(code, 'py', 'literal'), ['None', 'True']);
  assert.deepEqual(ofType(code, 'py', 'string'), ['"""doc\n    string"""', 'rb"\\x00"', "f'{x}'"]);
  assert.deepEqual(ofType(code, 'py', 'comment'), ['# note']);
  assert.deepEqual(ofType('buf = b + 3.14j', 'python', 'number'), ['3.14j']);
  checkDom(code, 'python');
});

test('rust: keywords, raw strings, chars vs lifetimes, numbers with suffixes', () => {
  const code = 'pub fn f<\'a>(s: &\'a str) -> u32 { let c = \'x\'; let r = r#"raw "quoted""#; 42u32 } // end';
  assert.deepEqual(ofType(code, 'rust', 'keyword'), ['pub', 'fn', 'let', 'let']);
  assert.deepEqual(ofType(code, 'rust', 'string'), ["'x'", 'r#"raw "quoted""#']);
  assert.deepEqual(ofType(code, 'rust', 'number'), ['42u32']);
  assert.deepEqual(ofType(code, 'rust', 'comment'), ['// end']);
  checkDom(code, 'rs');
});

test('go: keywords, raw strings, runes, nil', () => {
  const code = 'func main() {\n\tvar s = `raw\nline`\n\tif err != nil { return }\n\tr := \'\\n\'\n}';
  assert.deepEqual(ofType(code, 'go', 'keyword'), ['func', 'var', 'if', 'return']);
  assert.deepEqual(ofType(code, 'go', 'literal'), ['nil']);
  assert.deepEqual(ofType(code, 'go', 'string'), ['`raw\nline`', "'\\n'"]);
  checkDom(code, 'go');
});

test('json: strings, numbers, literals', () => {
  const code = '{"a": [1, -2.5e3, true, null], "b\\"": "x"}';
  assert.deepEqual(marked(code, 'json'), [
    ['string', '"a"'],
    ['number', '1'],
    ['number', '-2.5e3'],
    ['literal', 'true'],
    ['literal', 'null'],
    ['string', '"b\\""'],
    ['string', '"x"'],
  ]);
  checkDom(code, 'json');
});

test('bash: keywords, variables, quotes, comments only at a word start', () => {
  const code = 'if [ -n "$HOME" ]; then echo \'a#b\' ${PATH} $1 a#b; fi # done\nls --if-exists file-2.txt 3';
  assert.deepEqual(ofType(code, 'bash', 'keyword'), ['if', 'then', 'fi']);
  assert.deepEqual(ofType(code, 'bash', 'string'), ['"$HOME"', "'a#b'"]);
  assert.deepEqual(ofType(code, 'bash', 'variable'), ['${PATH}', '$1']);
  assert.deepEqual(ofType(code, 'bash', 'comment'), ['# done']);
  assert.deepEqual(ofType(code, 'bash', 'number'), ['3']);
  checkDom(code, 'sh');
});

test('sql: keywords in any case, quoted strings, -- comments', () => {
  const code = "SELECT name, count(*) FROM users WHERE note = 'it''s' and id > 10 -- recent\nselect 1;";
  assert.deepEqual(ofType(code, 'sql', 'keyword'), ['SELECT', 'count', 'FROM', 'WHERE', 'and', 'select']);
  assert.deepEqual(ofType(code, 'sql', 'string'), ["'it''s'"]);
  assert.deepEqual(ofType(code, 'sql', 'comment'), ['-- recent']);
  assert.deepEqual(ofType(code, 'sql', 'number'), ['10', '1']);
  checkDom(code, 'sql');
});

test('unterminated strings and comments (as while streaming) still cover the text', () => {
  assert.deepEqual(marked('x = "open\ny = 1', 'js'), [['string', '"open'], ['number', '1']]);
  assert.deepEqual(marked('/* open comment\nconst', 'js'), [['comment', '/* open comment\nconst']]);
  assert.deepEqual(marked("s = '''open\nmore", 'py'), [['string', "'''open\nmore"]]);
});

// ---- safety ----------------------------------------------------------------------------------

const HOSTILE = [
  '<img src=x onerror="window.__xss=1">',
  '</code></pre><script>window.__xss=2</script>',
  '"<svg onload=alert(1)>" // <b>bold</b>',
  "'</span><span class=\"x\" style=\"x\">'",
  '&lt;script&gt; &amp; \u0000 \u2028',
];

test('XSS attempts in code stay text in every language', () => {
  for (const lang of ['js', 'python', 'rust', 'go', 'json', 'bash', 'sql']) {
    for (const payload of HOSTILE) {
      const code = `const a = ${payload}; # ${payload}\n-- ${payload}\n// ${payload}`;
      const parent = checkDom(code, lang);
      const tags = new Set([...parent.all()].map((n) => n.tagName));
      for (const tag of tags) {
        assert.ok(tag === '#text' || tag === 'span', `unexpected <${tag}>`);
      }
    }
  }
});

test('class names come only from the fixed table', () => {
  for (const type of ['plain', 'constructor', '__proto__', 'toString', 'hl-keyword', '<b>', undefined]) {
    assert.equal(classOf(type), null, String(type));
  }
  assert.equal(classOf('keyword'), 'hl-keyword');
});

test('through markdown.js: highlighted blocks, hostile labels and failing highlighters', () => {
  const md = '```js\nconst x = "<script>alert(1)</script>"; // <b>\n```\n\n```js"><script>\nconst y = 1;\n```';
  const f = renderAst(parseMarkdown(md), doc, { highlight: highlightInto });
  const codes = [...f.all()].filter((n) => n.tagName === 'code');
  assert.equal(codes.length, 2);
  assert.equal(codes[0].className, 'hl');
  const spans = [...codes[0].all()].filter((n) => n.tagName === 'span');
  assert.deepEqual(
    spans.map((s) => [s.className, s.textContent]),
    [
      ['hl-keyword', 'const'],
      ['hl-string', '"<script>alert(1)</script>"'],
      ['hl-comment', '// <b>'],
    ],
  );
  // An unknown (hostile) label: plain text, and the label appears nowhere but as text.
  assert.equal(codes[1].className, '');
  assert.deepEqual(codes[1].childNodes.map((n) => n.tagName), ['#text']);
  for (const node of f.all()) {
    assert.ok(!String(node.className).includes('script'), `class ${node.className}`);
  }
  // Without the option, or with one that throws or half-fills: plain text.
  const plainCode = (options) =>
    [...renderAst(parseMarkdown('```js\nconst z = 1;\n```'), doc, options).all()].find((n) => n.tagName === 'code');
  assert.deepEqual(plainCode(undefined).childNodes.map((n) => n.tagName), ['#text']);
  const broken = plainCode({
    highlight: (parent) => {
      parent.appendChild(doc.createElement('span'));
      throw new Error('bug');
    },
  });
  assert.deepEqual(broken.childNodes.map((n) => [n.tagName, n.textContent]), [['#text', 'const z = 1;']]);
});

test('hostile input stays linear; over-long code is left plain', () => {
  const n = 90_000;
  const inputs = [
    '"\\'.repeat(n / 2),
    '/*'.repeat(n / 2),
    "'".repeat(n),
    '"""'.repeat(n / 3),
    'r#'.repeat(n / 2),
    '1'.repeat(n) + 'a',
    '$'.repeat(n),
    '0x'.repeat(n / 2),
    'a'.repeat(n),
    '#'.repeat(n),
    ' 1'.repeat(n / 2),
  ];
  for (const lang of ['js', 'python', 'rust', 'go', 'json', 'bash', 'sql']) {
    for (const input of inputs) {
      const started = performance.now();
      const tokens = tokenize(input, lang);
      const ms = performance.now() - started;
      assert.equal(tokens.map((t) => t.text).join(''), input);
      assert.ok(ms < 1500, `${lang} took ${ms.toFixed(0)} ms on ${JSON.stringify(input.slice(0, 12))}...`);
    }
  }
  const long = 'x'.repeat(MAX_CODE_LENGTH + 1);
  assert.deepEqual(tokenize(long, 'js'), [{ type: 'plain', text: long }]);
  assert.equal(highlightInto(doc.createElement('code'), long, 'js', doc), false);
});

test('random input: tokens always add up to the code', () => {
  const alphabet = ['a', 'if', ' ', '\n', '"', "'", '`', '/', '*', '#', '-', '$', '{', '}', '\\', '1', '.', 'e', 'r', 'b', 'x', '<', '>', '&'];
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let round = 0; round < 300; round++) {
    let code = '';
    const length = rand() % 80;
    for (let k = 0; k < length; k++) {
      code += alphabet[rand() % alphabet.length];
    }
    for (const lang of ['js', 'python', 'rust', 'go', 'json', 'bash', 'sql']) {
      const tokens = tokenize(code, lang);
      assert.equal(tokens.map((t) => t.text).join(''), code, `${lang}: ${JSON.stringify(code)}`);
      assert.ok(tokens.every((t) => t.text.length > 0));
    }
  }
});

test('published for the page as globalThis.ChatHighlight', () => {
  assert.equal(typeof globalThis.ChatHighlight.highlightInto, 'function');
  assert.ok(Object.isFrozen(globalThis.ChatHighlight));
});
