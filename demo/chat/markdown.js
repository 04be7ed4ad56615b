// A small Markdown renderer for untrusted model output.
//
// Two halves, so the parser can be tested in Node without a DOM:
//   parseMarkdown(text) -> AST of plain objects ({type: 'root', children: [...]})
//   renderAst(ast, document) -> DocumentFragment (browser only; any object with createElement,
//                               createTextNode and createDocumentFragment will do)
//
// Security rules (the model's text is untrusted):
//   - the DOM is built with createElement/createTextNode only; model text never reaches
//     innerHTML, outerHTML, insertAdjacentHTML or document.write;
//   - raw HTML in the Markdown is not interpreted: `<script>` stays the text "<script>";
//   - a link is made only when `new URL()` parses its target as absolute http:, https: or mailto:
//     (checked when parsing and again when rendering); anything else is shown as plain text;
//   - images are never rendered (`![alt](src)` is shown as text);
//   - model text only ever lands in text nodes and in the href of a checked link: never in an
//     attribute name, a class, or a style;
//   - a code block's optional highlighter (renderAst's `highlight` option, highlight.js) gets
//     the <code> element and fills it under the same rules; if it declines or throws, the code
//     is set as plain text.
//
// Supported: ATX and setext headings, paragraphs (a single newline is a line break), fenced
// code blocks (``` or ~~~, with a language label; an unterminated fence, as while streaming,
// runs to the end), inline code, emphasis/strong/strikethrough (nested), ordered and unordered
// lists (nested), blockquotes, thematic breaks, GFM tables, links and autolinks, backslash
// escapes and a few character references.

const MAX_BLOCK_DEPTH = 16;
const MAX_INLINE_DEPTH = 24;
const MAX_LANG_LENGTH = 40;

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/** The normalized href if `raw` is an absolute http(s)/mailto URL, else null. */
export function safeUrl(raw) {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 4096) {
    return null;
  }
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

// ---------------------------------------------------------------------------------------------
// Block structure

const RE_FENCE_OPEN = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const RE_FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;
const RE_ATX = /^ {0,3}(#{1,6})(?:[ \t]+|$)(.*)$/;
const RE_HR = /^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const RE_BLOCKQUOTE = /^ {0,3}> ?/;
const RE_LIST = /^( {0,3})([-+*]|(\d{1,9})([.)]))(?:([ \t]+)(.*)|$)/;
const RE_SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const RE_TABLE_DELIM = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

function isBlank(line) {
  return /^[ \t]*$/.test(line);
}

function indentOf(line) {
  let n = 0;
  while (n < line.length && line[n] === ' ') {
    n++;
  }
  return n;
}

// Leading tabs become spaces (tab stops of 4), so indentation is counted in one unit.
function expandTabs(line) {
  if (!line.includes('\t')) {
    return line;
  }
  let out = '';
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === '\t') {
      out += ' '.repeat(4 - (out.length % 4));
    } else if (c === ' ') {
      out += ' ';
    } else {
      break;
    }
  }
  return out + line.slice(i);
}

function listMarker(line) {
  const m = RE_LIST.exec(line);
  if (!m) {
    return null;
  }
  const indent = m[1].length;
  const ordered = m[3] !== undefined;
  const markerLength = m[2].length;
  const spaces = m[5] === undefined ? 0 : m[5].replace(/\t/g, '    ').length;
  const empty = m[6] === undefined || isBlank(m[6]);
  let contentIndent;
  let rest;
  if (empty) {
    contentIndent = indent + markerLength + 1;
    rest = '';
  } else if (spaces > 4) {
    // Content indented like code: the item's content starts one space after the marker.
    contentIndent = indent + markerLength + 1;
    rest = ' '.repeat(spaces - 1) + m[6];
  } else {
    contentIndent = indent + markerLength + spaces;
    rest = m[6];
  }
  return {
    indent,
    ordered,
    start: ordered ? Number(m[3]) : null,
    // Items of one list share their bullet character, or their delimiter for ordered lists.
    kind: ordered ? m[4] : m[2],
    contentIndent,
    rest,
    empty,
  };
}

function fenceOpen(line) {
  const m = RE_FENCE_OPEN.exec(line);
  if (!m) {
    return null;
  }
  const fence = m[2];
  const info = m[3];
  if (fence[0] === '`' && info.includes('`')) {
    return null;
  }
  const lang = info.trim().split(/\s+/)[0].slice(0, MAX_LANG_LENGTH);
  return { indent: m[1].length, char: fence[0], length: fence.length, lang };
}

function isTableStart(lines, i) {
  return (
    i + 1 < lines.length &&
    lines[i].includes('|') &&
    lines[i + 1].includes('-') &&
    RE_TABLE_DELIM.test(lines[i + 1]) &&
    splitRow(lines[i]).length === splitRow(lines[i + 1]).length
  );
}

// Whether `line` starts a block that ends (interrupts) a paragraph.
function interruptsParagraph(line, depth) {
  if (RE_ATX.test(line) || RE_HR.test(line) || fenceOpen(line)) {
    return true;
  }
  if (depth < MAX_BLOCK_DEPTH && RE_BLOCKQUOTE.test(line)) {
    return true;
  }
  if (depth < MAX_BLOCK_DEPTH) {
    const marker = listMarker(line);
    if (marker && !marker.empty && (!marker.ordered || marker.start === 1)) {
      return true;
    }
  }
  return false;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) {
    s = s.slice(1);
  }
  if (s.endsWith('|') && !s.endsWith('\\|')) {
    s = s.slice(0, -1);
  }
  const cells = [];
  let cell = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && s[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (c === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += c;
    }
  }
  cells.push(cell.trim());
  return cells;
}

function parseBlocks(lines, depth) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }

    const fence = fenceOpen(line);
    if (fence) {
      const body = [];
      let closed = false;
      i++;
      while (i < lines.length) {
        const close = RE_FENCE_CLOSE.exec(lines[i]);
        if (close && close[1][0] === fence.char && close[1].length >= fence.length) {
          closed = true;
          i++;
          break;
        }
        const l = lines[i];
        const strip = Math.min(fence.indent, indentOf(l));
        body.push(l.slice(strip));
        i++;
      }
      blocks.push({ type: 'code', lang: fence.lang, text: body.join('\n'), closed });
      continue;
    }

    const atx = RE_ATX.exec(line);
    if (atx) {
      // A closing sequence of #s (preceded by a space) is not part of the heading.
      const text = atx[2].replace(/(?:^|[ \t]+)#+[ \t]*$/, '').trim();
      blocks.push({ type: 'heading', level: atx[1].length, children: parseInline(text) });
      i++;
      continue;
    }

    if (RE_HR.test(line)) {
      blocks.push({ type: 'hr' });
      i++;
      continue;
    }

    if (depth < MAX_BLOCK_DEPTH && RE_BLOCKQUOTE.test(line)) {
      const inner = [];
      while (i < lines.length) {
        const l = lines[i];
        if (RE_BLOCKQUOTE.test(l)) {
          inner.push(expandTabs(l.replace(RE_BLOCKQUOTE, '')));
        } else if (
          !isBlank(l) &&
          inner.length > 0 &&
          !isBlank(inner[inner.length - 1]) &&
          !interruptsParagraph(l, depth)
        ) {
          // Lazy continuation of a paragraph inside the quote.
          inner.push(l);
        } else {
          break;
        }
        i++;
      }
      blocks.push({ type: 'blockquote', children: parseBlocks(inner, depth + 1) });
      continue;
    }

    const marker = depth < MAX_BLOCK_DEPTH ? listMarker(line) : null;
    if (marker) {
      const list = {
        type: 'list',
        ordered: marker.ordered,
        start: marker.start,
        tight: true,
        items: [],
      };
      let current = marker;
      let sawBlankBetween = false;
      while (current) {
        const itemLines = [current.rest];
        i++;
        let next = null;
        while (i < lines.length) {
          const l = lines[i];
          if (isBlank(l)) {
            itemLines.push('');
            i++;
            continue;
          }
          if (indentOf(l) >= current.contentIndent) {
            itemLines.push(l.slice(current.contentIndent));
            i++;
            continue;
          }
          const m = RE_HR.test(l) ? null : listMarker(l);
          if (m && m.kind === current.kind && m.ordered === current.ordered) {
            next = m;
            break;
          }
          const previous = itemLines[itemLines.length - 1];
          if (!isBlank(previous) && !interruptsParagraph(l, depth) && !(m && m.indent >= 0)) {
            itemLines.push(l.trimStart());
            i++;
            continue;
          }
          break;
        }
        // Trailing blank lines belong to neither the item nor the list.
        let trailing = 0;
        while (itemLines.length > 1 && isBlank(itemLines[itemLines.length - 1])) {
          itemLines.pop();
          trailing++;
        }
        if (trailing > 0 && next) {
          sawBlankBetween = true;
        }
        if (trailing > 0 && !next) {
          // Give the blank lines back: they end the list.
          i -= trailing;
        }
        const children = parseBlocks(itemLines, depth + 1);
        if (hasInnerBlankLine(itemLines)) {
          list.tight = false;
        }
        list.items.push(children);
        current = next;
      }
      if (sawBlankBetween) {
        list.tight = false;
      }
      blocks.push(list);
      continue;
    }

    if (isTableStart(lines, i)) {
      const header = splitRow(lines[i]);
      const align = splitRow(lines[i + 1]).map((d) => {
        const left = d.startsWith(':');
        const right = d.endsWith(':');
        return left && right ? 'center' : right ? 'right' : left ? 'left' : null;
      });
      i += 2;
      const rows = [];
      while (i < lines.length && !isBlank(lines[i]) && !interruptsParagraph(lines[i], depth)) {
        const cells = splitRow(lines[i]);
        const row = [];
        for (let c = 0; c < header.length; c++) {
          row.push(parseInline(cells[c] ?? ''));
        }
        rows.push(row);
        i++;
      }
      blocks.push({
        type: 'table',
        align,
        header: header.map((h) => parseInline(h)),
        rows,
      });
      continue;
    }

    // A paragraph: up to a blank line or a block that interrupts it.
    const para = [line.trim()];
    i++;
    let setext = 0;
    while (i < lines.length) {
      const l = lines[i];
      if (isBlank(l)) {
        break;
      }
      const underline = RE_SETEXT.exec(l);
      if (underline) {
        setext = underline[1][0] === '=' ? 1 : 2;
        i++;
        break;
      }
      if (interruptsParagraph(l, depth) || isTableStart(lines, i)) {
        break;
      }
      para.push(l.trim());
      i++;
    }
    const text = para.join('\n');
    if (setext) {
      blocks.push({ type: 'heading', level: setext, children: parseInline(text) });
    } else {
      blocks.push({ type: 'paragraph', children: parseInline(text) });
    }
  }
  return blocks;
}

function hasInnerBlankLine(lines) {
  // A blank line between two top-level blocks of the item makes the list loose (approximated:
  // any blank line outside a fenced code block).
  let inFence = null;
  for (let k = 1; k < lines.length - 1; k++) {
    const l = lines[k];
    if (inFence) {
      const close = RE_FENCE_CLOSE.exec(l);
      if (close && close[1][0] === inFence.char && close[1].length >= inFence.length) {
        inFence = null;
      }
      continue;
    }
    const f = fenceOpen(l);
    if (f) {
      inFence = f;
      continue;
    }
    if (isBlank(l) && indentOf(lines[k + 1]) === 0) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Inline content

const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/;
const PUNCTUATION = /[\p{P}\p{S}]/u;
const WHITESPACE = /\s/;

const NAMED_ENTITIES = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '\u00a9',
  reg: '\u00ae',
  hellip: '\u2026',
  mdash: '\u2014',
  ndash: '\u2013',
  rarr: '\u2192',
  larr: '\u2190',
  times: '\u00d7',
};

const RE_ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));/y;
const RE_AUTOLINK = /<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*)>/y;
const RE_EMAIL_AUTOLINK = /<([a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*)>/y;
const RE_BARE_URL = /(?:https?:\/\/|www\.)[^\s<]{0,2048}/iy;

function codePoint(n) {
  if (n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) {
    return '\ufffd';
  }
  return String.fromCodePoint(n);
}

/** Parses inline Markdown into an array of inline nodes. */
export function parseInline(src) {
  const items = [];
  const brackets = [];
  // Lengths of backtick runs known to have no closing run further on.
  const noCloser = new Set();
  let text = '';
  const flush = () => {
    if (text) {
      items.push({ type: 'text', text });
      text = '';
    }
  };

  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];

    if (c === '\\') {
      const next = src[i + 1];
      if (next === '\n') {
        flush();
        items.push({ type: 'break' });
        i += 2;
        continue;
      }
      if (next !== undefined && ASCII_PUNCTUATION.test(next)) {
        text += next;
        i += 2;
        continue;
      }
      text += c;
      i++;
      continue;
    }

    if (c === '\n') {
      text = text.replace(/[ \t]+$/, '');
      flush();
      items.push({ type: 'break' });
      i++;
      while (i < n && (src[i] === ' ' || src[i] === '\t')) {
        i++;
      }
      continue;
    }

    if (c === '`') {
      let run = 1;
      while (src[i + run] === '`') {
        run++;
      }
      const end = noCloser.has(run) ? -1 : findCodeSpanEnd(src, i + run, run);
      if (end < 0) {
        noCloser.add(run);
        text += '`'.repeat(run);
        i += run;
        continue;
      }
      let code = src.slice(i + run, end).replace(/\n/g, ' ');
      if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ' && code.trim()) {
        code = code.slice(1, -1);
      }
      flush();
      items.push({ type: 'inlineCode', text: code });
      i = end + run;
      continue;
    }

    if (c === '*' || c === '_' || c === '~') {
      let run = 1;
      while (src[i + run] === c) {
        run++;
      }
      const before = i > 0 ? src[i - 1] : '\n';
      const after = i + run < n ? src[i + run] : '\n';
      const beforeSpace = WHITESPACE.test(before);
      const afterSpace = WHITESPACE.test(after);
      const beforePunct = PUNCTUATION.test(before);
      const afterPunct = PUNCTUATION.test(after);
      const leftFlanking = !afterSpace && (!afterPunct || beforeSpace || beforePunct);
      const rightFlanking = !beforeSpace && (!beforePunct || afterSpace || afterPunct);
      let canOpen;
      let canClose;
      if (c === '_') {
        canOpen = leftFlanking && (!rightFlanking || beforePunct);
        canClose = rightFlanking && (!leftFlanking || afterPunct);
      } else {
        canOpen = leftFlanking;
        canClose = rightFlanking;
      }
      if (c === '~' && run !== 2) {
        canOpen = false;
        canClose = false;
      }
      flush();
      const delim = { type: 'text', text: c.repeat(run), delim: { ch: c, n: run, canOpen, canClose } };
      items.push(delim);
      i += run;
      continue;
    }

    if (c === '!' && src[i + 1] === '[') {
      // Images are never rendered: `![` is plain text, and what follows is parsed as usual
      // (so `![alt](https://x)` shows "!" and a link to the source, never an <img>).
      text += '!';
      i++;
      continue;
    }

    if (c === '[') {
      flush();
      const item = { type: 'text', text: '[' };
      items.push(item);
      brackets.push({ index: items.length - 1, srcPos: i });
      i++;
      continue;
    }

    if (c === ']') {
      const opener = brackets.pop();
      if (!opener) {
        text += ']';
        i++;
        continue;
      }
      const dest = parseLinkDestination(src, i + 1);
      if (!dest) {
        text += ']';
        i++;
        continue;
      }
      flush();
      const at = opener.index;
      const href = safeUrl(dest.href);
      if (href) {
        const children = processEmphasis(items.splice(at + 1));
        items.pop(); // the '[' item
        items.push({ type: 'link', href, children, d: depthOf(children) + 1 });
        // Links do not contain links: earlier openers cannot make one around this (they
        // would only ever pop as literal '[', which an empty stack gives too).
        brackets.length = 0;
      } else {
        // Not a link we allow (javascript:, data:, relative, ...): the source, as plain text.
        items.splice(at);
        items.push({ type: 'text', text: src.slice(opener.srcPos, dest.end) });
      }
      i = dest.end;
      continue;
    }

    if (c === '<') {
      RE_AUTOLINK.lastIndex = i;
      let m = RE_AUTOLINK.exec(src);
      let href = m && safeUrl(m[1]);
      if (!m) {
        RE_EMAIL_AUTOLINK.lastIndex = i;
        m = RE_EMAIL_AUTOLINK.exec(src);
        href = m && safeUrl(`mailto:${m[1]}`);
      }
      if (m && href) {
        flush();
        items.push({ type: 'link', href, children: [{ type: 'text', text: m[1] }], d: 1 });
        i += m[0].length;
        continue;
      }
      text += c;
      i++;
      continue;
    }

    if ((c === 'h' || c === 'H' || c === 'w' || c === 'W') && (i === 0 || !/[\p{L}\p{N}]/u.test(src[i - 1]))) {
      RE_BARE_URL.lastIndex = i;
      const m = RE_BARE_URL.exec(src);
      if (m) {
        const raw = trimUrlEnd(m[0]);
        const href = raw.length > 4 && safeUrl(/^www\./i.test(raw) ? `http://${raw}` : raw);
        if (href && !/^www\.$/i.test(raw) && !/^https?:\/\/$/i.test(raw)) {
          flush();
          items.push({ type: 'link', href, children: [{ type: 'text', text: raw }], d: 1 });
          i += raw.length;
          continue;
        }
      }
    }

    if (c === '&') {
      RE_ENTITY.lastIndex = i;
      const m = RE_ENTITY.exec(src);
      if (m) {
        let decoded = null;
        if (m[1] !== undefined) {
          decoded = codePoint(Number(m[1]));
        } else if (m[2] !== undefined) {
          decoded = codePoint(parseInt(m[2], 16));
        } else if (Object.hasOwn(NAMED_ENTITIES, m[3])) {
          decoded = NAMED_ENTITIES[m[3]];
        }
        if (decoded !== null) {
          text += decoded;
          i += m[0].length;
          continue;
        }
      }
    }

    // Plain text: take the run up to the next character that may mean something.
    let j = i + 1;
    while (j < n && !'\\\n`*_~![]<&hHwW'.includes(src[j])) {
      j++;
    }
    text += src.slice(i, j);
    i = j;
  }
  flush();
  return finish(processEmphasis(items));
}

function findCodeSpanEnd(src, from, run) {
  let j = from;
  for (;;) {
    j = src.indexOf('`', j);
    if (j < 0) {
      return -1;
    }
    let k = 1;
    while (src[j + k] === '`') {
      k++;
    }
    if (k === run) {
      return j;
    }
    j += k;
  }
}

// `(dest "title")` right after `]`: the destination and where the link ends, or null.
function parseLinkDestination(src, pos) {
  if (src[pos] !== '(') {
    return null;
  }
  let i = pos + 1;
  while (src[i] === ' ' || src[i] === '\t' || src[i] === '\n') {
    i++;
  }
  let href = '';
  if (src[i] === '<') {
    const end = src.indexOf('>', i + 1);
    if (end < 0 || src.slice(i + 1, end).includes('\n')) {
      return null;
    }
    href = src.slice(i + 1, end);
    i = end + 1;
  } else {
    let depth = 0;
    const start = i;
    while (i < src.length) {
      const c = src[i];
      if (c === '\\' && i + 1 < src.length && ASCII_PUNCTUATION.test(src[i + 1])) {
        i += 2;
        continue;
      }
      if (c === ' ' || c === '\t' || c === '\n' || c < ' ') {
        break;
      }
      if (c === '(') {
        depth++;
        if (depth > 32) {
          return null;
        }
      } else if (c === ')') {
        if (depth === 0) {
          break;
        }
        depth--;
      }
      i++;
    }
    href = src.slice(start, i).replace(/\\([!-/:-@[-`{-~])/g, '$1');
  }
  while (src[i] === ' ' || src[i] === '\t' || src[i] === '\n') {
    i++;
  }
  const quote = src[i];
  if (quote === '"' || quote === "'" || quote === '(') {
    const close = quote === '(' ? ')' : quote;
    const end = src.indexOf(close, i + 1);
    if (end < 0) {
      return null;
    }
    i = end + 1;
    while (src[i] === ' ' || src[i] === '\t' || src[i] === '\n') {
      i++;
    }
  }
  if (src[i] !== ')') {
    return null;
  }
  return { href, end: i + 1 };
}

// GFM's autolink end rules: no trailing punctuation, no unbalanced closing parenthesis.
function trimUrlEnd(url) {
  let open = 0;
  let close = 0;
  for (const c of url) {
    if (c === '(') {
      open++;
    } else if (c === ')') {
      close++;
    }
  }
  let end = url.length;
  while (end > 0) {
    const last = url[end - 1];
    if ('?!.,:*_~\'";'.includes(last)) {
      end--;
    } else if (last === ')' && close > open) {
      close--;
      end--;
    } else {
      break;
    }
  }
  return url.slice(0, end);
}

function depthOf(nodes) {
  let d = 0;
  for (const node of nodes) {
    if (node.d > d) {
      d = node.d;
    }
  }
  return d;
}

// Matches delimiter runs into em/strong/del nodes (a simplified CommonMark "process emphasis").
function processEmphasis(items) {
  const out = [];
  const openers = []; // {node, pos} with pos the node's index in `out`
  const openerCount = { '*': 0, _: 0, '~': 0 };
  for (const item of items) {
    const delim = item.delim;
    if (!delim) {
      out.push(item);
      continue;
    }
    if (delim.canClose) {
      while (delim.n > 0 && openerCount[delim.ch] > 0) {
        let k = openers.length - 1;
        while (k >= 0 && openers[k].node.delim.ch !== delim.ch) {
          k--;
        }
        if (k < 0) {
          break;
        }
        const opener = openers[k];
        const od = opener.node.delim;
        let use;
        let type;
        if (delim.ch === '~') {
          if (od.n !== delim.n) {
            break;
          }
          use = delim.n;
          type = 'del';
        } else {
          use = od.n >= 2 && delim.n >= 2 ? 2 : 1;
          type = use === 2 ? 'strong' : 'em';
        }
        const children = out.slice(opener.pos + 1);
        const d = depthOf(children) + 1;
        if (d > MAX_INLINE_DEPTH) {
          // Too deep. Any opener at or below this one would enclose at least as much, so none
          // can match again: drop them all (keeps pathological input linear).
          for (let r = 0; r <= k; r++) {
            openerCount[openers[r].node.delim.ch]--;
          }
          openers.splice(0, k + 1);
          break;
        }
        out.length = opener.pos + 1;
        // Openers inside the new node can no longer match anything outside it.
        for (let r = openers.length - 1; r > k; r--) {
          openerCount[openers[r].node.delim.ch]--;
        }
        openers.length = k + 1;
        od.n -= use;
        opener.node.text = od.ch.repeat(od.n);
        delim.n -= use;
        item.text = delim.ch.repeat(delim.n);
        if (od.n === 0) {
          out.pop();
          openers.pop();
          openerCount[od.ch]--;
        }
        out.push({ type, children, d });
      }
    }
    if (delim.n > 0) {
      out.push(item);
      if (delim.canOpen) {
        openers.push({ node: item, pos: out.length - 1 });
        openerCount[delim.ch]++;
      }
    }
  }
  return out;
}

// Drops the parser's bookkeeping and merges adjacent text nodes.
function finish(nodes) {
  const out = [];
  for (const node of nodes) {
    let clean;
    if (node.type === 'text') {
      if (!node.text) {
        continue;
      }
      const last = out[out.length - 1];
      if (last && last.type === 'text') {
        last.text += node.text;
        continue;
      }
      clean = { type: 'text', text: node.text };
    } else if (node.type === 'link') {
      clean = { type: 'link', href: node.href, children: finish(node.children) };
    } else if (node.children) {
      clean = { type: node.type, children: finish(node.children) };
    } else {
      clean = { ...node };
    }
    out.push(clean);
  }
  return out;
}

/** Parses Markdown into a tree of plain objects: {type: 'root', children: [block, ...]}. */
export function parseMarkdown(text) {
  const source = typeof text === 'string' ? text : '';
  const lines = source.replace(/\r\n?/g, '\n').replace(/\0/g, '\ufffd').split('\n').map(expandTabs);
  return { type: 'root', children: parseBlocks(lines, 0) };
}

/** The text of an inline node list or AST node, without markup (for titles and tests). */
export function plainText(node) {
  if (Array.isArray(node)) {
    return node.map(plainText).join('');
  }
  switch (node.type) {
    case 'text':
    case 'inlineCode':
    case 'code':
      return node.text;
    case 'break':
      return '\n';
    case 'list':
      return node.items.map((item) => plainText(item)).join('\n');
    case 'table':
      return [node.header, ...node.rows].map((row) => row.map(plainText).join(' | ')).join('\n');
    case 'hr':
      return '';
    default:
      return node.children ? plainText(node.children) : '';
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering (browser)

const INLINE_TAGS = { strong: 'strong', em: 'em', del: 'del' };

function el(doc, tag, className) {
  const node = doc.createElement(tag);
  if (className) {
    node.className = className;
  }
  return node;
}

function renderInline(nodes, doc, parent) {
  for (const node of nodes) {
    switch (node.type) {
      case 'text':
        parent.appendChild(doc.createTextNode(node.text));
        break;
      case 'break':
        parent.appendChild(doc.createElement('br'));
        break;
      case 'inlineCode': {
        const code = el(doc, 'code');
        code.textContent = node.text;
        parent.appendChild(code);
        break;
      }
      case 'link': {
        const href = safeUrl(node.href);
        if (!href) {
          renderInline(node.children, doc, parent);
          break;
        }
        const a = el(doc, 'a');
        a.setAttribute('href', href);
        a.setAttribute('rel', 'noopener noreferrer');
        a.setAttribute('target', '_blank');
        renderInline(node.children, doc, a);
        parent.appendChild(a);
        break;
      }
      default: {
        const tag = INLINE_TAGS[node.type];
        if (tag) {
          const wrap = el(doc, tag);
          renderInline(node.children, doc, wrap);
          parent.appendChild(wrap);
        } else if (node.children) {
          renderInline(node.children, doc, parent);
        }
      }
    }
  }
}

function renderBlocks(blocks, doc, parent, tight, options) {
  for (const block of blocks) {
    switch (block.type) {
      case 'paragraph': {
        if (tight) {
          renderInline(block.children, doc, parent);
        } else {
          const p = el(doc, 'p');
          renderInline(block.children, doc, p);
          parent.appendChild(p);
        }
        break;
      }
      case 'heading': {
        const level = Math.min(6, Math.max(1, Number(block.level) || 1));
        const h = el(doc, `h${level}`);
        renderInline(block.children, doc, h);
        parent.appendChild(h);
        break;
      }
      case 'code': {
        const wrap = el(doc, 'div', block.closed ? 'codeblock' : 'codeblock open');
        const head = el(doc, 'div', 'codehead');
        const lang = el(doc, 'span', 'codelang');
        lang.textContent = block.lang || 'text';
        const copy = el(doc, 'button', 'copy-code');
        copy.setAttribute('type', 'button');
        copy.textContent = 'Copy';
        head.appendChild(lang);
        head.appendChild(copy);
        const pre = el(doc, 'pre');
        const code = el(doc, 'code');
        if (highlightCode(code, block, doc, options)) {
          code.className = 'hl';
        } else {
          code.textContent = block.text;
        }
        pre.appendChild(code);
        wrap.appendChild(head);
        wrap.appendChild(pre);
        parent.appendChild(wrap);
        break;
      }
      case 'list': {
        const list = el(doc, block.ordered ? 'ol' : 'ul');
        if (block.ordered && Number.isInteger(block.start) && block.start !== 1) {
          list.setAttribute('start', String(block.start));
        }
        for (const item of block.items) {
          const li = el(doc, 'li');
          renderBlocks(item, doc, li, block.tight, options);
          list.appendChild(li);
        }
        parent.appendChild(list);
        break;
      }
      case 'blockquote': {
        const quote = el(doc, 'blockquote');
        renderBlocks(block.children, doc, quote, false, options);
        parent.appendChild(quote);
        break;
      }
      case 'hr':
        parent.appendChild(el(doc, 'hr'));
        break;
      case 'table': {
        const wrap = el(doc, 'div', 'tablewrap');
        const table = el(doc, 'table');
        const thead = el(doc, 'thead');
        const headRow = el(doc, 'tr');
        block.header.forEach((cell, c) => {
          const th = el(doc, 'th', alignClass(block.align[c]));
          renderInline(cell, doc, th);
          headRow.appendChild(th);
        });
        thead.appendChild(headRow);
        table.appendChild(thead);
        const tbody = el(doc, 'tbody');
        for (const row of block.rows) {
          const tr = el(doc, 'tr');
          row.forEach((cell, c) => {
            const td = el(doc, 'td', alignClass(block.align[c]));
            renderInline(cell, doc, td);
            tr.appendChild(td);
          });
          tbody.appendChild(tr);
        }
        table.appendChild(tbody);
        wrap.appendChild(table);
        parent.appendChild(wrap);
        break;
      }
      default:
        break;
    }
  }
}

// Lets the optional highlighter fill `code`; false (and `code` emptied) when there is none, it
// declines the block, or it fails: the caller then sets the plain text.
function highlightCode(code, block, doc, options) {
  const highlight = options && typeof options.highlight === 'function' ? options.highlight : null;
  if (!highlight || !block.lang) {
    return false;
  }
  try {
    if (highlight(code, block.text, block.lang, doc) === true) {
      return true;
    }
  } catch {
    // A highlighter bug must not lose the answer: fall back to plain text.
  }
  code.textContent = '';
  return false;
}

function alignClass(align) {
  // Only these fixed class names: never text from the model.
  return align === 'left' ? 'al-left' : align === 'center' ? 'al-center' : align === 'right' ? 'al-right' : '';
}

/**
 * Builds DOM nodes for a parsed tree: a DocumentFragment of `doc`. `options.highlight`, if
 * given, is called as highlight(codeElement, text, lang, doc) for fenced code blocks with a
 * language label and returns true when it filled the element (highlight.js's highlightInto).
 */
export function renderAst(ast, doc = globalThis.document, options = {}) {
  const fragment = doc.createDocumentFragment();
  renderBlocks(ast && Array.isArray(ast.children) ? ast.children : [], doc, fragment, false, options);
  return fragment;
}

/** parseMarkdown + renderAst. */
export function renderMarkdown(text, doc = globalThis.document, options = {}) {
  return renderAst(parseMarkdown(text), doc, options);
}
