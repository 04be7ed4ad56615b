// A small syntax highlighter for the chat page's fenced code blocks (model output: untrusted).
//
//   tokenize(code, lang)   -> [{type, text}, ...] whose texts, joined, are exactly `code`
//   highlightInto(parent, code, lang, doc) -> true when it filled `parent` (a <code>) with
//                             text nodes and <span class="hl-..."> elements; false (and nothing
//                             added) for an unknown language or an over-long block
//
// Security rules, as in markdown.js: the DOM is built with createElement/createTextNode only
// (never innerHTML & co.), code text only ever lands in text nodes, and class names come from
// the fixed table CLASS_OF below, never from the code or the language label.
//
// Languages: js/ts, python, rust, go, json, bash, sql (and their usual aliases). Tokens:
// keyword, literal (true, null, None, ...), string, comment, number, variable (bash's $x).
// Anything else is plain text. Lexing is one left-to-right pass of sticky regexes, none of
// which can backtrack badly, so hostile input costs linear time; blocks over MAX_CODE_LENGTH
// are left plain.
//
// Loaded by the page as <script type="module" src="/chat/highlight.js"> (no inline script): it
// publishes itself as globalThis.ChatHighlight, which app.js hands to markdown.js's renderer
// when present (without it, code blocks are plain text). Node's tests import it.

export const MAX_CODE_LENGTH = 100_000;

const CLASS_OF = Object.freeze({
  keyword: 'hl-keyword',
  literal: 'hl-literal',
  string: 'hl-string',
  comment: 'hl-comment',
  number: 'hl-number',
  variable: 'hl-variable',
});

/** The class of a token type, or null for plain text (never anything outside CLASS_OF). */
export function classOf(type) {
  return Object.hasOwn(CLASS_OF, type) ? CLASS_OF[type] : null;
}

const words = (text) => new Set(text.split(/\s+/).filter(Boolean));

// ---- shared token patterns (all sticky) -------------------------------------------------------

const WHITESPACE = /\s+/y;
const LINE_COMMENT_SLASH = /\/\/[^\n]*/y;
const BLOCK_COMMENT = /\/\*[\s\S]*?(?:\*\/|$)/y;
const HASH_COMMENT = /#[^\n]*/y;
// Quoted strings with backslash escapes, ending at the quote or (unterminated) at the line's end.
const DQ_STRING = /"(?:[^"\\\n]|\\[\s\S])*"?/y;
const SQ_STRING = /'(?:[^'\\\n]|\\[\s\S])*'?/y;
// C-like numbers: hex, binary, octal, decimals with exponent; a type suffix (u32, n, f) sticks.
const C_NUMBER = /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)[a-zA-Z_\d]*/y;
const IDENT = /[A-Za-z_$][\w$]*/y;
const IDENT_NO_DOLLAR = /[A-Za-z_][\w]*/y;

/**
 * Each language: `rules`, tried in order at each position ([type, sticky regex], the first that
 * matches a non-empty text wins), then words (`ident`) classed by the keyword/literal sets.
 */
const LANGUAGES = {
  js: {
    rules: [
      ['comment', LINE_COMMENT_SLASH],
      ['comment', BLOCK_COMMENT],
      ['string', DQ_STRING],
      ['string', SQ_STRING],
      ['string', /`(?:[^`\\]|\\[\s\S])*`?/y],
      ['number', C_NUMBER],
    ],
    ident: IDENT,
    keywords: words(`
      async await break case catch class const continue debugger default delete do else export
      extends finally for from function get if import in instanceof let new of return set static
      super switch this throw try typeof var void while with yield
      abstract as asserts declare enum implements infer interface is keyof namespace private
      protected public readonly satisfies type unique`),
    literals: words('true false null undefined NaN Infinity'),
  },
  python: {
    rules: [
      ['comment', HASH_COMMENT],
      // Optional prefix (r, b, f, rb, ...), then a triple-quoted (multi-line) or a plain string.
      ['string', /[rRbBuUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?)/y],
      ['number', /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)[jJlL]?/y],
    ],
    ident: IDENT_NO_DOLLAR,
    keywords: words(`
      and as assert async await break case class continue def del elif else except finally for
      from global if import in is lambda match nonlocal not or pass raise return try while with
      yield`),
    literals: words('True False None'),
  },
  rust: {
    rules: [
      ['comment', LINE_COMMENT_SLASH],
      ['comment', BLOCK_COMMENT],
      // Raw strings r"..", r#".."#, br#".."# (the closing quote needs as many #s as the opening).
      ['string', /b?r(#*)"[\s\S]*?(?:"\1|$)/y],
      ['string', /b?"(?:[^"\\]|\\[\s\S])*"?/y],
      // A char literal ('a', '\n', '\u{1F600}'); a lifetime ('a) is left plain.
      ['string', /b?'(?:[^'\\\n]|\\(?:[nrt\\0'"]|x[\da-fA-F]{2}|u\{[\da-fA-F]{1,6}\}))'/y],
      ['number', C_NUMBER],
    ],
    ident: IDENT_NO_DOLLAR,
    keywords: words(`
      as async await break const continue crate dyn else enum extern fn for if impl in let loop
      match mod move mut pub ref return self Self static struct super trait type union unsafe use
      where while`),
    literals: words('true false None Some Ok Err'),
  },
  go: {
    rules: [
      ['comment', LINE_COMMENT_SLASH],
      ['comment', BLOCK_COMMENT],
      ['string', DQ_STRING],
      ['string', /`[^`]*`?/y],
      ['string', /'(?:[^'\\\n]|\\[^\n]{1,9}?)'/y],
      ['number', C_NUMBER],
    ],
    ident: IDENT_NO_DOLLAR,
    keywords: words(`
      break case chan const continue default defer else fallthrough for func go goto if import
      interface map package range return select struct switch type var`),
    literals: words('true false nil iota'),
  },
  json: {
    rules: [
      // Not JSON, but models write them (JSONC): shown as comments rather than as errors.
      ['comment', LINE_COMMENT_SLASH],
      ['comment', BLOCK_COMMENT],
      ['string', DQ_STRING],
      ['number', /-?(?:\d+(?:\.\d+)?)(?:[eE][+-]?\d+)?/y],
    ],
    ident: IDENT_NO_DOLLAR,
    keywords: new Set(),
    literals: words('true false null'),
  },
  bash: {
    rules: [
      // `#` starts a comment only at the start of a word (`a#b` is a word).
      ['comment', HASH_COMMENT, (code, i) => i === 0 || /[\s;&|(]/.test(code[i - 1])],
      ['string', /'[^']*'?/y],
      ['string', /"(?:[^"\\]|\\[\s\S])*"?/y],
      ['variable', /\$(?:\{[^}\n]{0,200}\}?|[A-Za-z_]\w*|[0-9@*#?$!-])/y],
      // A number is a whole word (not the 2 of `a2` or `x-2.txt`).
      ['number', /\d+(?:\.\d+)?(?![\w.-])/y, (code, i) => i === 0 || /[\s=;&|(<>[,]/.test(code[i - 1])],
    ],
    // Words include - and . (file names, options) so `--if-exists` is not the keyword `if`.
    ident: /[A-Za-z_][\w.-]*/y,
    keywords: words(`
      if then else elif fi for while until do done case esac function in select return local
      export declare readonly unset break continue exit`),
    literals: words('true false'),
  },
  sql: {
    rules: [
      ['comment', /--[^\n]*/y],
      ['comment', BLOCK_COMMENT],
      ['string', /'(?:[^']|'')*'?/y],
      ['number', /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y],
    ],
    ident: IDENT_NO_DOLLAR,
    caseInsensitive: true,
    keywords: words(`
      add all alter and any as asc begin between by case check column commit constraint create
      cross default delete desc distinct drop else end exists foreign from full group having if
      in index inner insert intersect into is join key left like limit not offset on or order
      outer primary references returning right rollback select set table then transaction
      truncate union unique update using values view when where with
      int integer bigint smallint serial text varchar char boolean date timestamp numeric real
      float double precision json jsonb uuid
      count sum avg min max coalesce`),
    literals: words('true false null'),
  },
};

const ALIASES = {
  js: 'js', javascript: 'js', jsx: 'js', mjs: 'js', cjs: 'js', node: 'js',
  ts: 'js', typescript: 'js', tsx: 'js', mts: 'js', cts: 'js',
  py: 'python', python: 'python', python3: 'python', py3: 'python',
  rs: 'rust', rust: 'rust',
  go: 'go', golang: 'go',
  json: 'json', jsonc: 'json', json5: 'json',
  bash: 'bash', sh: 'bash', shell: 'bash', zsh: 'bash', shellscript: 'bash', console: 'bash',
  sql: 'sql', postgres: 'sql', postgresql: 'sql', psql: 'sql', mysql: 'sql', sqlite: 'sql', plpgsql: 'sql',
};

/** The highlighter's name for a fence's language label ("TypeScript" -> "js"), or null. */
export function languageOf(label) {
  if (typeof label !== 'string') {
    return null;
  }
  const key = label.trim().toLowerCase();
  return Object.hasOwn(ALIASES, key) ? ALIASES[key] : null;
}

/**
 * Splits `code` into tokens [{type, text}] (type 'plain' or a key of CLASS_OF). Unknown
 * languages and over-long code give a single plain token. Joined, the texts are `code`.
 */
export function tokenize(code, lang) {
  const text = typeof code === 'string' ? code : '';
  const name = languageOf(lang);
  if (!name || text.length > MAX_CODE_LENGTH) {
    return text ? [{ type: 'plain', text }] : [];
  }
  const spec = LANGUAGES[name];
  const tokens = [];
  let plain = '';
  const push = (type, value) => {
    if (type === 'plain') {
      plain += value;
      return;
    }
    if (plain) {
      tokens.push({ type: 'plain', text: plain });
      plain = '';
    }
    tokens.push({ type, text: value });
  };
  const at = (re, i) => {
    re.lastIndex = i;
    const m = re.exec(text);
    return m && m[0].length > 0 ? m[0] : null;
  };

  let i = 0;
  const n = text.length;
  outer: while (i < n) {
    const ws = at(WHITESPACE, i);
    if (ws) {
      push('plain', ws);
      i += ws.length;
      continue;
    }
    for (const [type, re, allowed] of spec.rules) {
      if (allowed && !allowed(text, i)) {
        continue;
      }
      const m = at(re, i);
      if (m) {
        push(type, m);
        i += m.length;
        continue outer;
      }
    }
    const word = at(spec.ident, i);
    if (word) {
      const key = spec.caseInsensitive ? word.toLowerCase() : word;
      push(spec.keywords.has(key) ? 'keyword' : spec.literals.has(key) ? 'literal' : 'plain', word);
      i += word.length;
      continue;
    }
    push('plain', text[i]);
    i++;
  }
  if (plain) {
    tokens.push({ type: 'plain', text: plain });
  }
  return tokens;
}

/**
 * Fills `parent` (a <code> element) with the highlighted `code`: text nodes, and <span>s with a
 * fixed class whose only child is a text node. Returns false, adding nothing, when `lang` is not
 * a known language or the code is too long (the caller then sets the text as usual).
 */
export function highlightInto(parent, code, lang, doc = globalThis.document) {
  if (!languageOf(lang) || typeof code !== 'string' || code.length > MAX_CODE_LENGTH) {
    return false;
  }
  for (const token of tokenize(code, lang)) {
    const className = classOf(token.type);
    if (className) {
      const span = doc.createElement('span');
      span.className = className;
      span.appendChild(doc.createTextNode(token.text));
      parent.appendChild(span);
    } else {
      parent.appendChild(doc.createTextNode(token.text));
    }
  }
  return true;
}

if (typeof globalThis !== 'undefined') {
  globalThis.ChatHighlight = Object.freeze({ tokenize, highlightInto, languageOf, classOf });
}
