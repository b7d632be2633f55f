// Harness gc.js: V8 garbage collection pauses, traced by V8 itself.
//
// Run as `node --trace-gc-nvp --expose-gc gc.js ...`: V8 prints one
// name=value line per collection on standard output (see
// calibration/v8trace.py), so this script writes its own summary to standard
// error, where nothing else writes.
//
// Build: a live set of about --live-mib MiB (v8 used_heap_size growth) of
// small objects linked into a pointer graph (each holds two references and a
// number), so marking it costs what marking a pointer-rich heap costs; then
// two full collections (gc()) move it to the old generation, and the script
// waits IDLE_MS with nothing allocated.
// Steady: for --seconds, garbage objects of the same shape (from another
// allocation site, see makeGarbage) are allocated in
// batches paced to --alloc-mbps (MB/s, bytes estimated from heap growth per
// object); a fraction --survive of them is kept in a ring that holds
// RING_BYTES of them, so those objects outlive about one scavenge (copied
// within the young generation, some promoted), and a fraction --promote is
// kept in a ring of OLD_RING_BYTES, so they outlive several scavenges, are
// promoted and die later in the old generation, which makes mark-compacts
// happen as they do in a server. The measurement runs node with
// --max-old-space-size a little above the live set, as a container does,
// so the old generation's limit, and with it the mark-compact rate, does
// not depend on the machine's memory.
// Then the script stops allocating and waits IDLE_MS before it exits.
//
// Summary (on standard error after a line `cnsim-summary`, CSV with one row): live_bytes (used heap after the
// build's full collections), object_bytes, steady_start_ms and steady_end_ms
// on the clock of the trace's timestamps (ms since the isolate started,
// estimated as performance.now() - performance.nodeTiming.v8Start; the idle
// gaps around the steady phase are far wider than that estimate's error),
// alloc_rate_bytes_per_s achieved, steady_s. Bounded by --max-seconds.
// Standard library only; no network.
'use strict';

const v8 = require('node:v8');
const { performance } = require('node:perf_hooks');
const { parseArgs } = require('node:util');

const IDLE_MS = 200;
const RING_BYTES = 4 * 2 ** 20;
const OLD_RING_BYTES = 16 * 2 ** 20;
const BATCH = 4096;

const { values } = parseArgs({
  options: {
    'live-mib': { type: 'string', default: '64' },
    'alloc-mbps': { type: 'string', default: '100' },
    survive: { type: 'string', default: '0.05' },
    promote: { type: 'string', default: '0.25' },
    seconds: { type: 'string', default: '5' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
if (typeof global.gc !== 'function') {
  process.stderr.write('cnsim: error: gc.js needs node --expose-gc\n');
  process.exit(2);
}
const start = performance.now();
const maxMs = Number(values['max-seconds']) * 1000;
setTimeout(() => {
  process.stderr.write('cnsim: error: gc.js exceeded --max-seconds\n');
  process.exit(3);
}, maxMs).unref();

function traceClockMs() {
  return performance.now() - performance.nodeTiming.v8Start;
}

function usedHeap() {
  return v8.getHeapStatistics().used_heap_size;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function makeNode(left, right, value) {
  return { left, right, value };
}

// A separate allocation site for garbage: V8 pretenures objects from a site
// whose objects mostly survive (as the live set's do), which would put the
// garbage straight into the old generation.
function makeGarbage(left, right, value) {
  return { left, right, value };
}

/** Bytes per object of the shape makeNode builds, from the heap growth of retaining many. */
function objectBytes() {
  global.gc();
  const before = usedHeap();
  const kept = new Array(100000);
  for (let i = 0; i < kept.length; i++) kept[i] = makeNode(null, null, i);
  const bytes = (usedHeap() - before - 8 * kept.length) / kept.length;
  return Math.max(bytes, 16);
}

function buildLive(targetBytes) {
  const base = usedHeap();
  const chunks = [];
  let previous = null;
  while (usedHeap() - base < targetBytes) {
    if (performance.now() - start > maxMs) {
      process.stderr.write('cnsim: error: gc.js: building the live set exceeded --max-seconds\n');
      process.exit(3);
    }
    const chunk = new Array(65536);
    for (let i = 0; i < chunk.length; i++) {
      const right = i > 0 ? chunk[(i * 7919) % i] : null;
      previous = makeNode(previous, right, i);
      chunk[i] = previous;
    }
    chunks.push(chunk);
  }
  return chunks;
}

async function main() {
  const perObject = objectBytes();
  global.live = buildLive(Number(values['live-mib']) * 2 ** 20);
  global.gc();
  global.gc();
  const liveBytes = usedHeap();
  await sleep(IDLE_MS);

  const rate = Number(values['alloc-mbps']) * 1e6;
  const survive = Number(values.survive);
  const keepEvery = survive > 0 ? Math.max(1, Math.round(1 / survive)) : 0;
  const ring = new Array(Math.max(1, Math.round(RING_BYTES / perObject))).fill(null);
  const promote = Number(values.promote);
  const promoteEvery = promote > 0 ? Math.max(1, Math.round(1 / promote)) : 0;
  const oldRing = new Array(Math.max(1, Math.round(OLD_RING_BYTES / perObject))).fill(null);
  let slot = 0;
  let oldSlot = 0;
  let sink = null;
  const steadyMs = Number(values.seconds) * 1000;
  const steadyStartTrace = traceClockMs();
  const t0 = performance.now();
  let allocated = 0;
  let count = 0;
  while (performance.now() - t0 < steadyMs) {
    for (let i = 0; i < BATCH; i++) {
      const object = makeGarbage(sink, null, count++);
      if (keepEvery && count % keepEvery === 0) {
        ring[slot] = object;
        slot = (slot + 1) % ring.length;
      } else if (promoteEvery && count % promoteEvery === 1) {
        oldRing[oldSlot] = object;
        oldSlot = (oldSlot + 1) % oldRing.length;
      }
      if ((i & 1023) === 0) sink = object;
      else object.left = null;
    }
    allocated += BATCH * perObject;
    const ahead = allocated / rate * 1000 - (performance.now() - t0);
    if (ahead > 1) await sleep(ahead);
    else if ((count / BATCH) % 64 === 0) await sleep(0);
  }
  const elapsedMs = performance.now() - t0;
  const steadyEndTrace = traceClockMs();
  ring.fill(null);
  oldRing.fill(null);
  await sleep(IDLE_MS);
  process.stderr.write('cnsim-summary\nlive_bytes,object_bytes,steady_start_ms,steady_end_ms,alloc_rate_bytes_per_s,steady_s\n' +
    `${liveBytes},${perObject.toFixed(1)},${steadyStartTrace.toFixed(1)},${steadyEndTrace.toFixed(1)},` +
    `${(allocated / elapsedMs * 1000).toFixed(0)},${(elapsedMs / 1000).toFixed(3)}\n`);
}

main().catch((error) => {
  process.stderr.write(`cnsim: error: gc.js: ${error && error.stack}\n`);
  process.exit(1);
});
