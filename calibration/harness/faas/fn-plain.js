// A small HTTP function with no dependencies: Node's http module, a handler that reads the query
// parameter `name` and answers a small JSON object (the same work as harness/go/faasfn).
//
// It listens on an ephemeral port of 127.0.0.1, then prints
// "cnsim-ready PORT MODULES MODULE_LOAD_S" on standard output: the JavaScript files loaded from disk
// (require.cache, this one included) and the seconds spent requiring dependencies (none here, 0).
// It serves until SIGTERM or --max-seconds (default 60). Loopback only.
'use strict';

const http = require('node:http');

const server = http.createServer((req, res) => {
  const name = new URL(req.url, 'http://localhost').searchParams.get('name') || '';
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ message: `hello ${name}`, length: name.length }) + '\n');
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`cnsim-ready ${server.address().port} ${Object.keys(require.cache).length} 0\n`);
});
const maxIndex = process.argv.indexOf('--max-seconds');
setTimeout(() => process.exit(0), 1000 * Number(maxIndex > 0 ? process.argv[maxIndex + 1] : 60)).unref();
