// Harness alloc.js: the CPU V8's mutator spends allocating short-lived objects,
// by object size, apart from the collector's pauses.
//
// Run as `node --expose-gc alloc.js --sizes 64,1024,...`. For each size S
// (bytes) it allocates objects of exactly the shape the validation server
// (valserver.js) allocates for `--alloc-chunk S`: `new Array(E).fill(i)` with
// E = max(1, floor(S / 8) - 2) elements (a JS array and its backing store of
// 8-byte elements) and a link object `{ next, data }` chaining the chunks of
// one "request" of REQUEST_BYTES (valserver's default --alloc); a ring of the
// last RING requests' heads stays reachable, so the JIT cannot drop the
// allocations and a few requests' objects are live at each scavenge, as in a
// server. Nothing else is allocated in the timed loop.
//
// Per size: one unrecorded warm-up round (a quarter of a round's bytes: the
// JIT compiles the loop), then --reps rounds of --bytes bytes (S x objects),
// each timed with process.cpuUsage() (user + system CPU of the process, every
// thread), the main thread's CPU from /proc/thread-self/schedstat (its first
// field: ns on a CPU; Linux) and performance.now(). The collector's share is
// taken from PerformanceObserver 'gc' entries (Node records one per
// collection, from V8's GC prologue to epilogue callbacks on the main thread:
// the pause, incremental-marking steps included), summed over the entries that
// started inside the round. Mutator CPU = the main thread's CPU - the GC pause
// time (when schedstat is unreadable: process CPU - GC pause time, column
// cpu_source says which); process CPU beyond the main thread's is the GC's
// helper threads and Node's own (column cpu_s).
//
// Also per size, once: heap bytes per object (v8 used_heap_size growth over
// retaining HEAP_SAMPLE_BYTES of them after gc(), the holder array's slots
// subtracted), and per round V8's new space capacity (getHeapSpaceStatistics)
// and the scavenges and other collections seen, so that bytes per scavenge
// can be set against the semi-space.
//
// Output: CSV on standard output, one row per size and round. Bounded by
// --max-seconds (exit 3). Standard library only; no network.
'use strict';

const fs = require('node:fs');
const v8 = require('node:v8');
const { PerformanceObserver, constants: perfConstants, performance } = require('node:perf_hooks');
const { parseArgs } = require('node:util');

const REQUEST_BYTES = 65536;
const RING = 16;
const HEAP_SAMPLE_BYTES = 8 * 2 ** 20;

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '64,256,1024,4096,16384,65536' },
    bytes: { type: 'string', default: '268435456' },
    reps: { type: 'string', default: '3' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const roundBytes = Number(values.bytes);
const reps = Number(values.reps);
if (!sizes.every((s) => Number.isInteger(s) && s >= 8) || !(roundBytes > 0) || !(Number.isInteger(reps) && reps >= 1)) {
  process.stderr.write('cnsim: error: alloc.js: --sizes must be integers >= 8, --bytes > 0, --reps >= 1\n');
  process.exit(2);
}
if (typeof global.gc !== 'function') {
  process.stderr.write('cnsim: error: alloc.js needs node --expose-gc\n');
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write('cnsim: error: alloc.js exceeded --max-seconds\n');
  process.exit(3);
}, Number(values['max-seconds']) * 1000).unref();

const gcEntries = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = entry.detail ? entry.detail.kind : entry.kind;
    gcEntries.push({ start: entry.startTime, duration: entry.duration, minor: kind === perfConstants.NODE_PERFORMANCE_GC_MINOR });
  }
}).observe({ entryTypes: ['gc'] });

function threadCpuS() {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return NaN;
  }
}

function processCpuS() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function newSpaceBytes() {
  const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return space ? space.space_size : NaN;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function elementsOf(size) {
  return Math.max(1, Math.floor(size / 8) - 2); // as valserver.js: a JS array's header and its store's
}

let sink = 0;
/** Allocate `count` chunks of `elements` elements, as valserver.js does, `perRequest` to a request. */
function allocate(count, elements, perRequest, ring) {
  let head = null;
  let inRequest = 0;
  let slot = 0;
  for (let i = 0; i < count; i++) {
    const data = new Array(elements).fill(i);
    head = { next: head, data };
    if (++inRequest === perRequest) {
      ring[slot] = head;
      slot = (slot + 1) % ring.length;
      head = null;
      inRequest = 0;
    }
  }
  if (head !== null) sink ^= head.data.length;
}

/** Heap bytes per object (array, its store and the link), from the growth of the used heap retaining many. */
function heapBytesPerObject(elements, size) {
  const n = Math.max(16, Math.min(20000, Math.floor(HEAP_SAMPLE_BYTES / size)));
  const kept = new Array(n).fill(null);
  global.gc();
  const before = v8.getHeapStatistics().used_heap_size;
  let head = null;
  for (let i = 0; i < n; i++) {
    head = { next: null, data: new Array(elements).fill(i) };
    kept[i] = head;
  }
  const bytes = (v8.getHeapStatistics().used_heap_size - before) / n;
  sink ^= kept.length;
  return bytes;
}

async function main() {
  const rows = ['size_bytes,elements,rep,objects,bytes,heap_bytes_per_object,cpu_s,thread_cpu_s,gc_count,' +
    'scavenges,gc_pause_s,mutator_cpu_s,mutator_cpu_per_object_s,cpu_source,wall_s,new_space_bytes'];
  for (const size of sizes) {
    const elements = elementsOf(size);
    const objects = Math.max(1, Math.round(roundBytes / size));
    const perRequest = Math.max(1, Math.floor(REQUEST_BYTES / size));
    const ring = new Array(RING).fill(null);
    allocate(Math.max(1, Math.round(objects / 4)), elements, perRequest, ring); // warm-up, unrecorded
    const heapBytes = heapBytesPerObject(elements, size);
    for (let rep = 0; rep < reps; rep++) {
      ring.fill(null);
      global.gc();
      await sleep(20); // deliver the gc() entries before the round starts
      const t0 = performance.now();
      const thread0 = threadCpuS();
      const cpu0 = processCpuS();
      allocate(objects, elements, perRequest, ring);
      const cpu = processCpuS() - cpu0;
      const thread = threadCpuS() - thread0;
      const t1 = performance.now();
      const newSpace = newSpaceBytes();
      await sleep(20); // the round's gc entries are delivered on a later turn of the loop
      const inRound = gcEntries.filter((e) => e.start >= t0 && e.start <= t1);
      gcEntries.length = 0;
      const pause = inRound.reduce((sum, e) => sum + e.duration, 0) / 1000;
      const scavenges = inRound.filter((e) => e.minor).length;
      const source = Number.isFinite(thread) ? 'thread' : 'process';
      const mutator = (source === 'thread' ? thread : cpu) - pause;
      rows.push([size, elements, rep, objects, objects * size, heapBytes.toFixed(1), cpu.toFixed(6),
        Number.isFinite(thread) ? thread.toFixed(9) : '', inRound.length, scavenges, pause.toFixed(9),
        mutator.toFixed(9), (mutator / objects).toExponential(6), source, ((t1 - t0) / 1000).toFixed(6),
        newSpace].join(','));
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
}

main().catch((error) => {
  process.stderr.write(`cnsim: error: alloc.js: ${error && error.stack}\n`);
  process.exit(1);
});
