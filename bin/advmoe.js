#!/usr/bin/env node
'use strict';
// The CLI runs from the webpack bundle when built (dist/cli.js), else from the tsc output (out/).
const path = require('path');
const fs = require('fs');
const candidates = [path.join(__dirname, '..', 'dist', 'cli.js'), path.join(__dirname, '..', 'out', 'engine', 'cli', 'main.js')];
const entry = candidates.find((f) => fs.existsSync(f));
if (!entry) {
  process.stderr.write('advmoe: not built yet; run `npm run compile` (or `npm run build`) first\n');
  process.exit(2);
}
require(entry)
  .main(process.argv.slice(2))
  .then((code) => process.exit(code), (e) => { process.stderr.write(`advmoe: ${e && e.stack || e}\n`); process.exit(1); });
