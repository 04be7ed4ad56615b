// Runs a wasm32-wasip1 test binary (as built by `cargo test --target wasm32-wasip1`) under
// Node's WASI, so the pure modules' unit tests also run compiled to wasm: 32-bit usize, the
// WASI clock and random source. Cargo calls it as `runner <file.wasm> <test args...>`.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: wasi-runner.mjs <file.wasm> [args...]');
  process.exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env: { RUST_BACKTRACE: '0' },
  preopens: {},
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
let code;
try {
  code = wasi.start(instance);
} catch (error) {
  // panic = abort on wasm32-wasip1: a failing test traps. Its message was printed before.
  console.error(`wasm test binary trapped: ${error.message}`);
  code = 101;
}
process.exit(code);
