// Harness process.js: the start-up cost and idle memory of a Node.js process.
//
// start: `node -e 0` is spawned from this driver with child_process.spawnSync
// (stdio ignored) and timed with process.hrtime.bigint() from just before the
// spawn until spawnSync returns, i.e. until the child has exited and been
// reaped: fork/exec, V8 and Node bootstrap, the empty script, and exit. One
// unrecorded spawn first warms the page cache.
// rss: `node -e` with a script that waits RSS_SETTLE_MS on a timer (so
// bootstrap work that runs after the script's first tick is done) and prints
// process.memoryUsage(): the resident set of an idle process, with V8's heap
// figures beside it.
//
// Output: CSV on standard output, columns measurement,rep,start_s,rss_bytes,
// heap_used_bytes,heap_total_bytes. Bounded by --max-seconds. Standard library
// only; no network.
'use strict';

const { spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const RSS_SETTLE_MS = 100;
const RSS_SCRIPT = `setTimeout(() => { const m = process.memoryUsage(); ` +
  `process.stdout.write([m.rss, m.heapUsed, m.heapTotal].join(',')); }, ${RSS_SETTLE_MS});`;

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '30' },
    'rss-reps': { type: 'string', default: '10' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
const reps = Number(values.reps);
const rssReps = Number(values['rss-reps']);
const deadline = process.hrtime.bigint() + BigInt(Math.round(Number(values['max-seconds']) * 1e9));

function checkDeadline() {
  if (process.hrtime.bigint() > deadline) {
    process.stderr.write('cnsim: error: process.js exceeded --max-seconds\n');
    process.exit(3);
  }
}

function spawnNode(args, stdio) {
  const done = spawnSync(process.execPath, args, { stdio, encoding: 'utf8', timeout: 30000 });
  if (done.status !== 0) {
    process.stderr.write(`cnsim: error: node ${args.join(' ')} exited with ${done.status} ${done.signal || ''}\n`);
    process.exit(4);
  }
  return done;
}

const rows = ['measurement,rep,start_s,rss_bytes,heap_used_bytes,heap_total_bytes'];
spawnNode(['-e', '0'], 'ignore');
for (let rep = 0; rep < reps; rep++) {
  checkDeadline();
  const t0 = process.hrtime.bigint();
  spawnNode(['-e', '0'], 'ignore');
  const t1 = process.hrtime.bigint();
  rows.push(`start,${rep},${(Number(t1 - t0) / 1e9).toFixed(9)},,,`);
}
for (let rep = 0; rep < rssReps; rep++) {
  checkDeadline();
  const done = spawnNode(['-e', RSS_SCRIPT], ['ignore', 'pipe', 'inherit']);
  rows.push(`rss,${rep},,${done.stdout.trim()}`);
}
process.stdout.write(rows.join('\n') + '\n');
