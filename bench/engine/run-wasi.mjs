// Runs a wasm32-wasip1 command module under Node's WASI (V8, as in Envoy):
// `node run-wasi.mjs file.wasm args...`. Like /work/main/test-harness/wasi-runner.mjs.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
