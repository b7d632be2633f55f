// Harness httpcpu.js: the server CPU a Node.js `http` server spends per request,
// the counterpart of httplat's go.http.server_cpu_s.
//
// This driver forks itself (child_process.fork) as the server: an `http`
// server on 127.0.0.1 whose handler writes a 13-byte body. The driver is the
// client, in another process so its CPU is not counted: sequential requests
// (one at a time, no queueing) on one reused keep-alive connection
// (http.Agent keepAlive, maxSockets 1). Before and after each round of
// --requests requests it asks the server, over the fork's IPC channel, for
// process.cpuUsage() (getrusage: user and system time of the whole server
// process, its V8 collector and libuv threads included); two IPC messages per
// round are the only other work the server does. WARMUP unrecorded requests
// first: with a few hundred, the first rounds cost twice the later ones (V8
// has not yet optimised the server's hot paths).
//
// Output: CSV on standard output, columns round,requests,server_user_s,
// server_system_s,server_cpu_s. Bounded by --max-seconds. Standard library
// only; loopback only.
'use strict';

const { fork } = require('node:child_process');
const http = require('node:http');
const { once } = require('node:events');
const { parseArgs } = require('node:util');

const WARMUP = 3000;
const BODY = 'hello, cnsim\n';

if (process.argv.includes('--serve')) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
    res.end(BODY);
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (message) => {
    if (message === 'cpu') {
      process.send({ cpu: process.cpuUsage() });
    } else if (message === 'exit') {
      process.exit(0);
    }
  });
} else {
  main().catch((error) => {
    process.stderr.write(`cnsim: error: httpcpu.js: ${error.stack || error}\n`);
    process.exit(4);
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '20' },
      requests: { type: 'string', default: '500' },
      'max-seconds': { type: 'string', default: '60' },
    },
  });
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const maxSeconds = Number(values['max-seconds']);
  const child = fork(__filename, ['--serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const bound = setTimeout(() => {
    process.stderr.write('cnsim: error: httpcpu.js exceeded --max-seconds\n');
    child.kill('SIGKILL');
    process.exit(3);
  }, maxSeconds * 1000);
  const [{ port }] = await once(child, 'message');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const cpu = async () => {
    child.send('cpu');
    const [message] = await once(child, 'message');
    return message.cpu;
  };
  for (let i = 0; i < WARMUP; i++) await get();
  const rows = ['round,requests,server_user_s,server_system_s,server_cpu_s'];
  for (let round = 0; round < rounds; round++) {
    const before = await cpu();
    for (let i = 0; i < requests; i++) await get();
    const after = await cpu();
    const user = (after.user - before.user) / 1e6;
    const system = (after.system - before.system) / 1e6;
    rows.push(`${round},${requests},${user.toFixed(6)},${system.toFixed(6)},${(user + system).toFixed(6)}`);
  }
  child.send('exit');
  await once(child, 'exit');
  clearTimeout(bound);
  agent.destroy();
  process.stdout.write(rows.join('\n') + '\n');
}
