#!/usr/bin/env node
'use strict';
// `npm run test:unit:native`: the unit suite on the native `tensorflow` backend (README, Backends). Where the
// native backend is not set up it prints one "skipped" line and succeeds, except under CI (CI=true), where the
// set-up is part of the run (`npm test` calls `npm run setup:native` first) and a missing backend is a failure.
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL || '2' };
// The installer's own smoke test: tfjs-node loads and agrees with wasm on a conv2d and its gradients.
const check = spawnSync(process.execPath, [path.join(root, 'bin', 'advmoe.js'), 'backend', 'check', 'tensorflow', '--json'], { cwd: root, env, encoding: 'utf8' });
const line = (check.stdout || '').split('\n').reverse().find((l) => l.startsWith('{"event":"result"'));
const report = line ? JSON.parse(line) : { ok: false, reason: `the check failed to run: ${(check.stderr || '').trim().split('\n').pop() || `exit ${check.status}`}` };
if (!report.ok) {
  const why = /is not installed/.test(report.reason || '')
    ? 'native backend not installed (run npm run setup:native)'
    : `native backend does not work: ${report.reason} (run npm run setup:native -- --force)`;
  if (process.env.CI) {
    console.error(`test:unit:native: ${why}; under CI the native backend must be set up`);
    process.exit(1);
  }
  console.log(`test:unit:native skipped: ${why}`);
  process.exit(0);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', path.join('out', 'test', 'engine') + path.sep], {
  cwd: root,
  env: { ...env, ADVMOE_TEST_BACKEND: 'tensorflow' },
  stdio: 'inherit',
});
process.exit(r.status === null ? 1 : r.status);
