// Harness isolate.js: V8 contexts and scripts inside one Node.js process (node:vm).
//
// --mode timing (one process, after WARMUP unrecorded calls of each kind):
// * context_create: one vm.createContext({}) per sample, each a fresh context
//   that is dropped at once (so the collector runs now and then, as it would);
// * script_run: one runInContext of a precompiled vm.Script in a context made
//   once, the script calling a function that sums the fields of a 16-field
//   object (a small handler body);
// * module_load: compiling (new vm.Script) and running a generated script of
//   about --module-kb KB in a fresh context made just before the clock starts;
//   each sample's source differs in its first line, so V8's per-isolate
//   compilation cache never answers and every sample parses the whole source.
//   The script defines FUNCTIONS functions (V8 pre-parses them lazily, as it
//   does a real module), calls a few, and builds an exports object: the
//   "module loading" stage of a cold start.
// Every sample is timed with process.hrtime.bigint() around the call.
// --mode memory (run with --expose-gc, one fresh process per repetition):
// heap (v8 used_heap_size after two full collections) and RSS before and after
// creating --contexts contexts that stay referenced; the growth per context.
//
// Output: CSV on standard output, columns measurement,sample,seconds,source_bytes,
// contexts,rss_bytes_per_context,heap_bytes_per_context. Bounded by --max-seconds.
// Standard library only; no network.
'use strict';

const vm = require('node:vm');
const v8 = require('node:v8');
const { parseArgs } = require('node:util');

const WARMUP = 20;
const FUNCTIONS = 300;
const HEADER = 'measurement,sample,seconds,source_bytes,contexts,rss_bytes_per_context,heap_bytes_per_context';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'timing' },
    samples: { type: 'string', default: '1000' },
    'module-samples': { type: 'string', default: '50' },
    'module-kb': { type: 'string', default: '100' },
    contexts: { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
const deadline = process.hrtime.bigint() + BigInt(Math.round(Number(values['max-seconds']) * 1e9));

function checkDeadline() {
  if (process.hrtime.bigint() > deadline) {
    process.stderr.write('cnsim: error: isolate.js exceeded --max-seconds\n');
    process.exit(3);
  }
}

function seconds(t0, t1) {
  return (Number(t1 - t0) / 1e9).toFixed(9);
}

/** A module-like source of about `kb` KB whose first line is unique to `tag`. */
function moduleSource(kb, tag) {
  const body = [];
  for (let i = 0; i < FUNCTIONS; i++) {
    body.push(`function handler${i}(request, options) {\n` +
      `  const fields = Object.keys(request).filter((key) => key.startsWith('f${i % 10}'));\n` +
      `  let total = ${i};\n  for (const key of fields) { total += String(request[key]).length * ${i + 1}; }\n` +
      `  if (options && options.verbose) { return { id: ${i}, total, fields, note: 'handler ${i}' }; }\n` +
      `  return total;\n}\n`);
  }
  let source = body.join('');
  const filler = '// ' + 'padding to the size of a bundled module '.repeat(2) + '\n';
  while (source.length < kb * 1024 - 200) source += filler;
  return `const moduleTag = ${JSON.stringify(tag)};\n${source}` +
    `const exported = {};\nfor (let i = 0; i < 10; i++) exported['handler' + i] = this['handler' + i];\n` +
    `exported.handler0({ f0a: 1, f0b: 'x' }, { verbose: true });\n`;
}

function timing() {
  const samples = Number(values.samples);
  const moduleSamples = Number(values['module-samples']);
  const rows = [HEADER];
  for (let i = 0; i < WARMUP; i++) vm.createContext({});
  for (let i = 0; i < samples; i++) {
    if (i % 100 === 0) checkDeadline();
    const t0 = process.hrtime.bigint();
    vm.createContext({});
    const t1 = process.hrtime.bigint();
    rows.push(`context_create,${i},${seconds(t0, t1)},,,,`);
  }
  const context = vm.createContext({});
  vm.runInContext('var request = {};' +
    'for (let i = 0; i < 16; i++) request["field" + i] = i * 3;' +
    'function handle(o) { let s = 0; for (const k in o) s += o[k]; return s; }', context);
  const script = new vm.Script('handle(request)');
  for (let i = 0; i < WARMUP; i++) script.runInContext(context);
  for (let i = 0; i < samples; i++) {
    if (i % 100 === 0) checkDeadline();
    const t0 = process.hrtime.bigint();
    script.runInContext(context);
    const t1 = process.hrtime.bigint();
    rows.push(`script_run,${i},${seconds(t0, t1)},,,,`);
  }
  const kb = Number(values['module-kb']);
  for (let i = -3; i < moduleSamples; i++) {
    checkDeadline();
    const source = moduleSource(kb, `sample ${i}`);
    const fresh = vm.createContext({});
    const t0 = process.hrtime.bigint();
    new vm.Script(source, { filename: `module${i}.js` }).runInContext(fresh);
    const t1 = process.hrtime.bigint();
    if (i >= 0) rows.push(`module_load,${i},${seconds(t0, t1)},${Buffer.byteLength(source)},,,`);
  }
  process.stdout.write(rows.join('\n') + '\n');
}

function settledMemory() {
  global.gc();
  global.gc();
  return { heap: v8.getHeapStatistics().used_heap_size, rss: process.memoryUsage().rss };
}

function memory() {
  if (typeof global.gc !== 'function') {
    process.stderr.write('cnsim: error: isolate.js --mode memory needs node --expose-gc\n');
    process.exit(2);
  }
  const count = Number(values.contexts);
  vm.createContext({});
  const before = settledMemory();
  const kept = [];
  for (let i = 0; i < count; i++) {
    if (i % 50 === 0) checkDeadline();
    kept.push(vm.createContext({}));
  }
  const after = settledMemory();
  process.stdout.write(`${HEADER}\ncontext_memory,0,,,${kept.length},${(after.rss - before.rss) / count},` +
    `${(after.heap - before.heap) / count}\n`);
}

if (values.mode === 'timing') timing();
else if (values.mode === 'memory') memory();
else {
  process.stderr.write(`cnsim: error: isolate.js --mode ${values.mode}: expected timing or memory\n`);
  process.exit(2);
}
