// valserver.js: the Node.js HTTP server of the validation experiments
// (calibration/validation), the counterpart of the Go valserver: one process,
// the `http` module, and per request to /work a fixed CPU burn and a fixed
// allocation, beside a live heap of a given size.
//
// CPU burn: a loop of integer arithmetic whose iteration count is calibrated at
// start-up, after the JIT has compiled it, against process.cpuUsage() (user +
// system CPU of the process, taken on the idle process so that it is the loop's
// own), median of several trials; then checked on a further batch of loops.
// It is not a wall-clock spin.
//
// Allocation: --alloc bytes per request as arrays of about --alloc-chunk bytes
// (V8 heap objects, 8-byte elements), allocated evenly between slices of the
// burn and reachable until the response is written; garbage afterwards.
// Live heap: --live-heap-mib MiB of small objects linked by references.
//
// GC statistics (GET /stats): a JSON object with the GC count and total pause
// (s) from a PerformanceObserver on 'gc' entries, in all and by kind (minor,
// major, incremental, weakcb), process.cpuUsage() (s), v8.getHeapStatistics()'s
// used and total heap (bytes) and "wall_s", seconds since the process started.
// Two snapshots give the GC's share over the window between them.
//
// Standard output: one JSON line when ready ({"addr": ...}) and one when it
// stops. It stops on SIGTERM/SIGINT or after --max-seconds. Keep-alive
// connections are never timed out by the server (keepAliveTimeout 0), like Go's
// net/http server. Node standard library only.
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');
const { PerformanceObserver, constants: perfConstants, performance } = require('node:perf_hooks');
const v8 = require('node:v8');

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'cpu-ms': { type: 'string', default: '1' },
    alloc: { type: 'string', default: '65536' },
    'alloc-chunk': { type: 'string', default: '1024' },
    'live-heap-mib': { type: 'string', default: '16' },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const cpuSeconds = Number(args['cpu-ms']) / 1000;
const allocBytes = Number(args.alloc);
const chunkBytes = Number(args['alloc-chunk']);
const liveHeapBytes = Number(args['live-heap-mib']) * 2 ** 20;
if (!(cpuSeconds > 0) || !(allocBytes >= 0) || !(chunkBytes >= 64) || !(liveHeapBytes >= 0)) {
  process.stderr.write('cnsim: error --cpu-ms must be > 0, --alloc >= 0, --alloc-chunk >= 64, --live-heap-mib >= 0\n');
  process.exit(2);
}

let burnSink = 0;
function burn(n) {
  let x = n | 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
  }
  burnSink ^= x;
}

function cpuNow() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function calibrate(trials) {
  const n = 5_000_000;
  for (let i = 0; i < 5; i++) burn(n); // let the JIT compile the loop
  const rates = [];
  for (let t = 0; t < trials; t++) {
    const before = cpuNow();
    burn(n);
    rates.push(n / (cpuNow() - before));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(trials / 2)];
}

function buildHeap(bytes) {
  const count = Math.floor(bytes / 64);
  const nodes = new Array(count);
  for (let i = 0; i < count; i++) {
    nodes[i] = { left: i > 0 ? nodes[i - 1] : null, right: i > 0 ? nodes[(i * 7919) % i] : null, a: i, b: 0 };
  }
  return nodes;
}

const live = buildHeap(liveHeapBytes);
const rate = calibrate(9);
const iterations = Math.round(rate * cpuSeconds);
const checkReps = 50;
const checkStart = cpuNow();
for (let i = 0; i < checkReps; i++) burn(iterations);
const checkedCpu = (cpuNow() - checkStart) / checkReps;

const chunks = Math.floor(allocBytes / chunkBytes);
const elements = Math.max(1, Math.floor(chunkBytes / 8) - 2); // header of a JS array and its backing store
const slices = Math.max(chunks, 1);
const perSlice = Math.floor(iterations / slices);
let served = 0;

const GC_KINDS = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
const gc = { count: 0, pause_s: 0, by_kind: {} };
for (const kind of Object.values(GC_KINDS)) gc.by_kind[kind] = { count: 0, pause_s: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = GC_KINDS[entry.detail ? entry.detail.kind : entry.kind] || 'other';
    if (!gc.by_kind[kind]) gc.by_kind[kind] = { count: 0, pause_s: 0 };
    gc.count++;
    gc.pause_s += entry.duration / 1000;
    gc.by_kind[kind].count++;
    gc.by_kind[kind].pause_s += entry.duration / 1000;
  }
}).observe({ entryTypes: ['gc'] });

function gcStats() {
  const cpu = process.cpuUsage();
  const heap = v8.getHeapStatistics();
  return {
    wall_s: performance.now() / 1000, gc_count: gc.count, gc_pause_s: gc.pause_s, gc_by_kind: gc.by_kind,
    cpu_user_s: cpu.user / 1e6, cpu_system_s: cpu.system / 1e6,
    used_heap_bytes: heap.used_heap_size, total_heap_bytes: heap.total_heap_size,
  };
}

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    const body = JSON.stringify(gcStats()) + '\n';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  let head = null;
  for (let i = 0; i < slices; i++) {
    if (i < chunks) {
      const data = new Array(elements).fill(i);
      head = { next: head, data };
    }
    burn(perSlice);
  }
  burn(iterations - perSlice * slices);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 3 });
  res.end('ok\n');
  if (head !== null) burnSink ^= head.data.length; // reachable until the response is written
  served++;
});
server.keepAliveTimeout = 0;

let stopped = false;
function stop(reason) {
  if (stopped) return;
  stopped = true;
  const mem = process.memoryUsage();
  process.stdout.write(JSON.stringify({ requests: served, reason, heap_used_bytes: mem.heapUsed, live_nodes: live.length }) + '\n');
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
setTimeout(() => stop('max-seconds'), Number(args['max-seconds']) * 1000).unref();

server.listen(Number(args.port), args.host, () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({
    addr: `${address.address}:${address.port}`, node_version: process.version, cpu_s: cpuSeconds,
    alloc_bytes: allocBytes, alloc_chunk_bytes: chunkBytes, live_heap_bytes: liveHeapBytes,
    burn_iterations: iterations, burn_iterations_per_cpu_s: rate, burn_checked_cpu_s: checkedCpu,
  }) + '\n');
});
