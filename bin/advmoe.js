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
require(candidates[0])
  .main(process.argv.slice(2))
  .then((code) => process.exit(code), (e) => { process.stderr.write(`advmoe: ${(e && e.stack) || e}\n`); process.exit(1); });
