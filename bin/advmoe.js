#!/usr/bin/env node
'use strict';
// The CLI runs from the webpack bundle (dist/cli.js) or from the tsc output (out/); in a checkout that has
// both, the newer one wins, so `npm run compile` after an edit is never shadowed by an older bundle.
const path = require('path');
const fs = require('fs');
const builds = () =>
  [path.join(__dirname, '..', 'dist', 'cli.js'), path.join(__dirname, '..', 'out', 'engine', 'cli', 'main.js')]
    .filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
let candidates = builds();
if (!candidates.length) {
  // `npm ci` compiles (the `prepare` script); this covers a checkout where that did not run (--ignore-scripts).
  const error = require('../scripts/compile.js').compile('first run, nothing built yet');
  candidates = builds();
  if (error || !candidates.length) {
    process.stderr.write(`advmoe: not built: ${error || 'tsc wrote no out/engine/cli/main.js'}; run \`npm run compile\` (or \`npm run build\`)\n`);
    process.exit(2);
  }
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
