// A small HTTP function on a typical module graph: Express 4 (pinned in package-lock.json, with its
// dependencies: router, body parsers, send, qs...), the JSON body parser mounted as apps mount it, and a
// route that reads the query parameter `name` and answers a small JSON object (the same work as fn-plain.js
// and harness/go/faasfn).
//
// It listens on an ephemeral port of 127.0.0.1, then prints
// "cnsim-ready PORT MODULES MODULE_LOAD_S" on standard output: the JavaScript files loaded from disk
// (require.cache, this one included) and the seconds require('express') took (performance.now around it).
// It serves until SIGTERM or --max-seconds (default 60). Loopback only.
'use strict';

const before = performance.now();
const express = require('express');
const moduleLoadS = (performance.now() - before) / 1e3;

const app = express();
app.use(express.json());
app.get('/', (req, res) => {
  const name = String(req.query.name || '');
  res.json({ message: `hello ${name}`, length: name.length });
});
const server = app.listen(0, '127.0.0.1', () => {
  const modules = Object.keys(require.cache).length;
  process.stdout.write(`cnsim-ready ${server.address().port} ${modules} ${moduleLoadS.toFixed(9)}\n`);
});
const maxIndex = process.argv.indexOf('--max-seconds');
setTimeout(() => process.exit(0), 1000 * Number(maxIndex > 0 ? process.argv[maxIndex + 1] : 60)).unref();
