'use strict';
// Compiles the TypeScript sources into out/ (`tsc -p .`), which is what bin/advmoe.js runs in a checkout.
// npm runs this as the `prepare` script after `npm ci` / `npm install`, and bin/advmoe.js runs it on first use
// when nothing is built yet (e.g. after `npm ci --ignore-scripts`), so a fresh checkout's CLI works at once.
const { spawnSync } = require('child_process');
const path = require('path');

const ROOT = path.join(__dirname, '..');

/** Runs tsc with a progress line on stderr; returns an error message, or undefined when it compiled. */
function compile(reason) {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  } catch {
    return 'TypeScript is not installed (a devDependency): run `npm ci` in the checkout first';
  }
  process.stderr.write(`advmoe: ${reason}: compiling the engine and CLI (tsc -p .; about a minute on 2 cores)...\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [tsc, '-p', ROOT], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) return `tsc could not start: ${r.error.message}`;
  if (r.status !== 0) return `tsc failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}); its errors are above`;
  process.stderr.write(`advmoe: compiled in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return undefined;
}

module.exports = { compile };

if (require.main === module) {
  const error = compile('after install');
  if (error) {
    process.stderr.write(`advmoe: ${error}\n`);
    process.exit(1);
  }
}
