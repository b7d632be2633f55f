// Harness worker.js: worker_threads start-up, memory and message passing.
//
// --mode timing (one process):
// * start: new Worker() on eval'd code that posts a message at once, timed
//   with process.hrtime.bigint() from just before the constructor to the
//   'message' event on the main thread (a new isolate, Node bootstrap in it,
//   the script, the first message); each worker is terminated and awaited
//   before the next; WARMUP unrecorded starts first;
// * message: a round trip through one echo worker: postMessage of an object
//   (no ArrayBuffer: records of numbers and short strings, so structured clone
//   serialises and deserialises it), the worker replies with the number 0, the
//   time is taken when the reply arrives. Sizes (--sizes, bytes of the
//   object's JSON text) are taken in round-robin order so drift touches all
//   alike; `bytes` is the JSON length of the object actually sent.
// --mode memory (run with --expose-gc, one fresh process per repetition): RSS
// before and after starting --workers idle workers (each listens for
// messages, so it stays alive), RSS_SETTLE_MS after the last one said it is
// ready; the growth per worker.
//
// Output: CSV on standard output, columns measurement,sample,bytes,seconds,
// workers,rss_bytes_per_worker. Bounded by --max-seconds. Standard library
// only; no network.
'use strict';

const { once } = require('node:events');
const { Worker } = require('node:worker_threads');
const { parseArgs } = require('node:util');

const WARMUP = 3;
const MESSAGE_WARMUP = 5;
const RSS_SETTLE_MS = 200;
const HEADER = 'measurement,sample,bytes,seconds,workers,rss_bytes_per_worker';
const STARTER = "require('node:worker_threads').parentPort.postMessage('ready');";
const ECHO = "const { parentPort } = require('node:worker_threads');" +
  "parentPort.postMessage('ready'); parentPort.on('message', () => parentPort.postMessage(0));";
const IDLE = "const { parentPort } = require('node:worker_threads');" +
  "parentPort.on('message', () => {}); parentPort.postMessage('ready');";

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'timing' },
    starts: { type: 'string', default: '50' },
    sizes: { type: 'string', default: '1024,4096,16384,65536,262144,1048576' },
    messages: { type: 'string', default: '50' },
    workers: { type: 'string', default: '8' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
setTimeout(() => {
  process.stderr.write('cnsim: error: worker.js exceeded --max-seconds\n');
  process.exit(3);
}, Number(values['max-seconds']) * 1000).unref();

function seconds(t0, t1) {
  return (Number(t1 - t0) / 1e9).toFixed(9);
}

/** An object of records whose JSON text is about `bytes` long. */
function payload(bytes) {
  const records = [];
  let length = 2;
  for (let i = 0; length < bytes; i++) {
    const record = { id: i, name: `item-${i}`, price: i * 1.25, tags: ['a', 'b'], active: i % 2 === 0 };
    length += JSON.stringify(record).length + 1;
    records.push(record);
  }
  return { records };
}

async function timing() {
  const rows = [HEADER];
  const starts = Number(values.starts);
  for (let i = -WARMUP; i < starts; i++) {
    const t0 = process.hrtime.bigint();
    const worker = new Worker(STARTER, { eval: true });
    await once(worker, 'message');
    const t1 = process.hrtime.bigint();
    await worker.terminate();
    if (i >= 0) rows.push(`start,${i},,${seconds(t0, t1)},,`);
  }
  const echo = new Worker(ECHO, { eval: true });
  await once(echo, 'message');
  const objects = values.sizes.split(',').map((s) => payload(Number(s)));
  const lengths = objects.map((o) => Buffer.byteLength(JSON.stringify(o)));
  const messages = Number(values.messages);
  for (let i = -MESSAGE_WARMUP; i < messages; i++) {
    for (let k = 0; k < objects.length; k++) {
      const t0 = process.hrtime.bigint();
      echo.postMessage(objects[k]);
      await once(echo, 'message');
      const t1 = process.hrtime.bigint();
      if (i >= 0) rows.push(`message,${i},${lengths[k]},${seconds(t0, t1)},,`);
    }
  }
  await echo.terminate();
  process.stdout.write(rows.join('\n') + '\n');
}

async function memory() {
  if (typeof global.gc !== 'function') {
    process.stderr.write('cnsim: error: worker.js --mode memory needs node --expose-gc\n');
    process.exit(2);
  }
  const count = Number(values.workers);
  global.gc();
  const before = process.memoryUsage().rss;
  const workers = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(IDLE, { eval: true });
    await once(worker, 'message');
    workers.push(worker);
  }
  await new Promise((resolve) => setTimeout(resolve, RSS_SETTLE_MS));
  global.gc();
  const after = process.memoryUsage().rss;
  process.stdout.write(`${HEADER}\nmemory,0,,,${count},${(after - before) / count}\n`);
  await Promise.all(workers.map((w) => w.terminate()));
}

const modes = { timing, memory };
if (!(values.mode in modes)) {
  process.stderr.write(`cnsim: error: worker.js --mode ${values.mode}: expected timing or memory\n`);
  process.exit(2);
}
modes[values.mode]().catch((error) => {
  process.stderr.write(`cnsim: error: worker.js: ${error && error.stack}\n`);
  process.exit(1);
});
