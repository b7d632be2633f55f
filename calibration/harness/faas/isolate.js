// Harness isolate.js: a function's cold start in a V8 isolate inside a running Node.js process, as an
// isolate-based platform (Cloudflare Workers, Deno Deploy) starts one, for each engine available here:
//
// isolated-vm  the npm package isolated-vm (a native addon built by node-gyp at install time): a new V8
//              isolate (new ivm.Isolate, 128 MB limit), a context in it (createContextSync), the function's
//              code compiled and run in it (compileScriptSync + runSync), the first call, later calls,
//              isolate.dispose(). Node 20 runs it with --no-node-snapshot, as isolated-vm's README asks.
// vm           a vm context in this process's own isolate (vm.createContext), the code run in it by
//              new vm.Script(...).runInContext: no isolate of its own.
// worker       a worker_threads Worker (a new isolate with Node's bootstrap, on its own thread) until its
//              first message; the code sent to it and run by vm.runInThisContext; calls as message round
//              trips (each includes a postMessage both ways).
//
// The function's code: lodash (lodash.min.js, pinned in package-lock.json; about 73 KB) in a CommonJS
// wrapper, as a bundler ships it, and a handler that uses it; every sample's source ends with a unique
// comment, so V8's compilation cache never answers.
// The engines take turns, --samples times (after one unrecorded turn); without isolated-vm (it did not
// build) its rows are missing and stderr says so. Times with process.hrtime.bigint().
//
// Output: CSV on standard output, columns engine,sample,isolate_s,context_s,load_s,first_call_s,call_s,
// dispose_s,source_bytes (call_s: the median of --calls later calls; empty where an engine has no such
// stage). Bounded by --max-seconds. No network.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { Worker } = require('node:worker_threads');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '100' },
    calls: { type: 'string', default: '20' },
    engines: { type: 'string', default: 'isolated-vm,vm,worker' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
const samples = Number(values.samples);
const calls = Number(values.calls);
const deadline = process.hrtime.bigint() + BigInt(Math.round(Number(values['max-seconds']) * 1e9));
const LIBRARY = fs.readFileSync(path.join(path.dirname(require.resolve('lodash')), 'lodash.min.js'), 'utf8');
const HANDLER = `
function handler(event) {
  return JSON.stringify({ message: 'hello ' + event.name, keys: _.sortBy(_.keys(event)),
                          sum: _.sum(_.values(event.numbers)) });
}`;
const CALL = "handler({ name: 'cnsim', numbers: { a: 1, b: 2, c: 3 } })";
const EXPECTED = '{"message":"hello cnsim","keys":["name","numbers"],"sum":6}';

let ivm = null;
try {
  ivm = require('isolated-vm');
} catch (error) {
  process.stderr.write(`cnsim: isolated-vm unavailable (${error.message.split('\n')[0]}): its rows are missing\n`);
}

function now() {
  return process.hrtime.bigint();
}
function seconds(from, to) {
  return (Number(to - from) / 1e9).toFixed(9);
}
function median(list) {
  const sorted = [...list].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
}
function source(sample) {
  // the library in a CommonJS wrapper, as a bundler (esbuild, webpack) ships a function's dependencies
  return `var _ = (function () { var module = { exports: {} }, exports = module.exports;\n${LIBRARY}\n` +
    `return module.exports; })();\n${HANDLER}\n// cnsim sample ${sample} ${Math.random()}\n`;
}
function check(result) {
  if (result !== EXPECTED) throw new Error(`the handler answered ${result}`);
}
function repeat(call) {
  const times = [];
  for (let i = 0; i < calls; i += 1) {
    const t = now();
    check(call());
    times.push(Number(now() - t) / 1e9);
  }
  return median(times).toFixed(9);
}

const engines = {
  'isolated-vm': (sample) => {
    const src = source(sample);
    const t0 = now();
    const isolate = new ivm.Isolate({ memoryLimit: 128 });
    const t1 = now();
    const context = isolate.createContextSync();
    const t2 = now();
    isolate.compileScriptSync(src).runSync(context);
    const t3 = now();
    const call = isolate.compileScriptSync(CALL);
    const t4 = now();
    check(call.runSync(context));
    const t5 = now();
    const callS = repeat(() => call.runSync(context));
    const t6 = now();
    isolate.dispose();
    return [seconds(t0, t1), seconds(t1, t2), seconds(t2, t3), seconds(t4, t5), callS, seconds(t6, now()),
            src.length];
  },
  vm: (sample) => {
    const src = source(sample);
    const t1 = now();
    const context = vm.createContext({});
    const t2 = now();
    new vm.Script(src).runInContext(context);
    const t3 = now();
    const call = new vm.Script(CALL);
    const t4 = now();
    check(call.runInContext(context));
    const t5 = now();
    const callS = repeat(() => call.runInContext(context));
    return ['', seconds(t1, t2), seconds(t2, t3), seconds(t4, t5), callS, '', src.length];
  },
};

const WORKER = `
const { parentPort } = require('node:worker_threads');
const vm = require('node:vm');
parentPort.on('message', (m) => {
  if (m.load !== undefined) { vm.runInThisContext(m.load); parentPort.postMessage('loaded'); }
  else parentPort.postMessage(vm.runInThisContext(${JSON.stringify(CALL)}));
});
parentPort.postMessage('up');`;

function message(worker, payload) {
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (answer) => {
      worker.off('error', reject);
      resolve(answer);
    });
    if (payload !== undefined) worker.postMessage(payload);
  });
}

async function workerSample(sample) {
  const src = source(sample);
  const t0 = now();
  const worker = new Worker(WORKER, { eval: true });
  await message(worker);
  const t1 = now();
  await message(worker, { load: src });
  const t3 = now();
  check(await message(worker, { call: true }));
  const t5 = now();
  const times = [];
  for (let i = 0; i < calls; i += 1) {
    const t = now();
    check(await message(worker, { call: true }));
    times.push(Number(now() - t) / 1e9);
  }
  const t6 = now();
  await worker.terminate();
  return [seconds(t0, t1), '', seconds(t1, t3), seconds(t3, t5), median(times).toFixed(9), seconds(t6, now()),
          src.length];
}

async function main() {
  process.stdout.write('engine,sample,isolate_s,context_s,load_s,first_call_s,call_s,dispose_s,source_bytes\n');
  const names = values.engines.split(',').filter((name) => ivm !== null || name !== 'isolated-vm');
  for (let sample = -1; sample < samples; sample += 1) { // the engines take turns; sample -1 unrecorded
    for (const name of names) {
      if (now() > deadline) {
        process.stderr.write('cnsim: error: isolate.js exceeded --max-seconds\n');
        process.exit(3);
      }
      const row = name === 'worker' ? await workerSample(sample) : engines[name](sample);
      if (sample >= 0) process.stdout.write(`${name},${sample},${row.join(',')}\n`);
    }
  }
}

main().catch((error) => {
  process.stderr.write(`cnsim: error: ${error.stack}\n`);
  process.exit(4);
});
