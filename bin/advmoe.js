#!/usr/bin/env node
'use strict';
// The CLI runs from the webpack bundle (dist/cli.js) or from the tsc output (out/); in a checkout that has
// both, the newer one wins, so `npm run compile` after an edit is never shadowed by an older bundle.
const path = require('path');
const fs = require('fs');
const candidates = [path.join(__dirname, '..', 'dist', 'cli.js'), path.join(__dirname, '..', 'out', 'engine', 'cli', 'main.js')]
  .filter((f) => fs.existsSync(f))
  .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
if (!candidates.length) {
  process.stderr.write('advmoe: not built yet; run `npm run compile` (or `npm run build`) first\n');
  process.exit(2);
}

// Exit only after stdout and stderr are flushed: writes to a pipe are asynchronous, and process.exit right away
// cut piped `--json` output short while the exit code said success. A write callback runs once everything queued
// before it is written; the explicit exit then ends what the engine may leave running (wasm worker threads).
function finish(code) {
  process.exitCode = code;
  let pending = 2;
  const done = () => { if (--pending === 0) process.exit(code); };
  process.stdout.write('', done);
  process.stderr.write('', done);
}
require(candidates[0])
  .main(process.argv.slice(2))
  .then(finish, (e) => { process.stderr.write(`advmoe: ${(e && e.stack) || e}\n`); finish(1); });
