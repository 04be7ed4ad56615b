// Turns run.sh's result lines into one Markdown table (stdout) and a details file.
// Lines: R platform engine label input value extra | Z config bytes | D platform case answer |
// S platform engine case count.
import { readFileSync, writeFileSync } from 'node:fs';

const [file, detailsFile] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => l.split('\t'));
const INPUTS = ['prose', 'prose+match', 'digits', 'aaa', 'ab'];
// Which size build (run.sh's cdylib feature sets) goes with which engine row.
const SIZE_OF = {
  'regex (default features)': 'regex-default',
  'regex (slim)': 'regex-slim',
  'regex (lean)': 'regex-lean',
  'regex-lite': 'lite',
  'regex-automata meta::Regex, `\\b` → ASCII in the HIR': 'ra-meta',
  'regex-automata meta::Regex (no prefilter), `\\b` → ASCII in the HIR': 'ra-meta-base,ra-unicode',
  'regex-automata hybrid::regex::Regex, `\\b` → ASCII in the HIR': 'ra-hybrid',
};
// Size builds with no engine row of their own.
const SIZE_ONLY = {
  'ra-meta,ra-backtrack': 'regex-automata meta::Regex + `nfa-backtrack`',
  'ra-hybrid-base': 'regex-automata hybrid, no `unicode-case`/`unicode-perl` (Unicode `(?i)`, `\\w`, `\\s`, `\\d`, `\\b` refused)',
  'regex-slim,ra-hybrid': 'regex (slim) for search + regex-automata hybrid for the check',
};

const sizes = Object.fromEntries(lines.filter(l => l[0] === 'Z').map(l => [l[1], Number(l[2])]));
const rows = new Map(); // "engine\tlabel" -> { engine, label, cells: {input: {v8, native, extra}} }
for (const [tag, platform, engine, label, input, value, extra = ''] of lines) {
  if (tag !== 'R') continue;
  const key = `${engine}\t${label}`;
  if (!rows.has(key)) rows.set(key, { engine, label, cells: {} });
  const cell = (rows.get(key).cells[input] ??= {});
  cell[platform] = value;
  cell.extra = extra;
}

const num = v => {
  if (v === undefined) return '–';
  if (v === '-') return 'fails';
  const n = Number(v);
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
};
const both = c => (c ? (c.native !== undefined ? `${num(c.v8)} (${num(c.native)})` : num(c.v8)) : '');
const kib = b => (b / 1024).toFixed(1);
const esc = s => s.replaceAll('|', '\\|');

// Match counts must agree across engines for the same patterns and input.
const counts = {};
for (const r of rows.values())
  for (const i of INPUTS) {
    const e = r.cells[i]?.extra;
    if (/^\d+$/.test(e ?? '')) (counts[`${r.label}\t${i}`] ??= new Set()).add(e);
  }

const out = [];
out.push('| engine | patterns | prose 1 MB | prose 1 MB, match every ~1 kB | digits 100 kB | `a` 100 kB | random `a`/`b` 100 kB | compile µs | added .wasm (total) | matches |');
out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
const base = sizes.none;
const sized = new Set();
for (const r of rows.values()) {
  const check = r.engine.startsWith('hybrid::dfa');
  let size = '';
  const cfg = SIZE_OF[r.engine];
  if (cfg && sizes[cfg] !== undefined && !sized.has(cfg)) {
    size = `+${kib(sizes[cfg] - base)} KiB (${kib(sizes[cfg])})`;
    sized.add(cfg);
  }
  let matches;
  if (check) {
    matches = INPUTS.map(i => r.cells[i]?.extra ?? '').filter(Boolean)
      .map(e => (e.match(/quit ([\d.]+%)/) ? `quit ${e.match(/quit ([\d.]+%)/)[1]}` : e)).join(' / ');
  } else {
    matches = INPUTS.map(i => {
      const e = r.cells[i]?.extra ?? '';
      if (e.startsWith('error')) return e.includes('quit') ? 'quit' : 'error';
      return counts[`${r.label}\t${i}`]?.size > 1 ? `${e}≠` : e;
    }).join(' / ');
  }
  out.push(`| ${esc(r.engine)} | ${esc(r.label)} | ${INPUTS.map(i => both(r.cells[i])).join(' | ')} | ${check ? '' : both(r.cells.build_us)} | ${size} | ${esc(matches)} |`);
}
for (const [cfg, what] of Object.entries(SIZE_ONLY))
  if (sizes[cfg] !== undefined)
    out.push(`| ${esc(what)} | (size only) | | | | | | | +${kib(sizes[cfg] - base)} KiB (${kib(sizes[cfg])}) | |`);
out.push(`| no engine (baseline cdylib) | (size only) | | | | | | | ${kib(base)} KiB total | |`);
console.log(out.join('\n'));
console.log('\nMB/s in V8 (Node ' + process.version + ' WASI), native in parentheses; best of ≥3 runs. ' +
  'Check rows: ns per check in V8 (native). matches: one count per input column.');

const d = ['# Details', '', '## Anchored dead-state check (lazy DFA; MatchKind::All unless the line says otherwise)', ''];
for (const [tag, platform, what, answer] of lines)
  if (tag === 'D' && platform === 'v8') d.push(`- ${what}: ${answer}`);
d.push('', '## Pattern-language differences (match count)', '', '| engine | case | count |', '|---|---|---|');
for (const [tag, platform, engine, what, n] of lines)
  if (tag === 'S' && platform === 'v8') d.push(`| ${esc(engine)} | ${esc(what)} | ${esc(n)} |`);
d.push('', '## Check outcomes per input', '');
for (const r of rows.values())
  if (r.engine.startsWith('hybrid::dfa'))
    for (const i of INPUTS) if (r.cells[i]) d.push(`- ${r.engine}, ${r.label}, ${i}: ${r.cells[i].extra}`);
d.push('', '## Sizes (bytes)', '');
for (const [cfg, b] of Object.entries(sizes)) d.push(`- ${cfg}: ${b}`);
writeFileSync(detailsFile, d.join('\n') + '\n');
