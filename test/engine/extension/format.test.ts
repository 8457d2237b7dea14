/** The one formatter of numbers and dates (webview/shared/format.ts) that every view and the extension use. */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dateTime, duration, epsText, exact, isShareMetric, num, pct } from '../../../webview/shared/format';

describe('format', () => {
  test('percentages have one decimal unless asked, the same for every value', () => {
    assert.equal(pct(0.265625), '26.6%');
    assert.equal(pct(0.06640625), '6.6%');
    assert.equal(pct(0.0078125), '0.8%');
    assert.equal(pct(1), '100.0%');
    assert.equal(pct(0.8515625, 2), '85.16%');
    assert.equal(pct(undefined), '–');
    assert.equal(pct(Number.NaN), '–');
  });

  test('other metrics get 4 significant digits, no trailing zeros', () => {
    assert.equal(num(0.976563), '0.9766');
    assert.equal(num(2.3604), '2.36');
    assert.equal(num(0.0001234567), '0.0001235');
    assert.equal(num(12345.6), '12346');
    assert.equal(num(0), '0');
    assert.equal(num(-1.23456), '-1.235');
    assert.equal(exact(0.8515625), '0.8515625');
  });

  test('ε: k/255 for CIFAR-like values, as typed for decimals', () => {
    assert.equal(epsText(8 / 255), '8/255');
    assert.equal(epsText(2 / 255), '2/255');
    assert.equal(epsText(0.3), '0.3');
    assert.equal(epsText(0.1), '0.1');
    assert.equal(epsText(0), '0');
  });

  test('dates: one local form, YYYY-MM-DD HH:MM, from ISO strings and epoch milliseconds alike', () => {
    const d = new Date(2026, 10, 29, 7, 5, 9);
    assert.equal(dateTime(d.toISOString()), '2026-11-29 07:05');
    assert.equal(dateTime(d.getTime()), '2026-11-29 07:05');
    assert.equal(dateTime('not a date'), '');
  });

  test('durations', () => {
    assert.equal(duration(42.4), '42s');
    assert.equal(duration(187), '3m 07s');
    assert.equal(duration(3900), '1h 05m');
    assert.equal(duration(-1), '–');
  });

  test('which metrics are shares shown as percentages', () => {
    for (const m of ['trainAcc', 'sa', 'ra', 'routerRobustness', 'expertRobustness', 'changeRate']) assert.ok(isShareMetric(m), m);
    for (const m of ['loss', 'lr', 'routerLoss', 'expertLoss', 'entropy']) assert.ok(!isShareMetric(m), m);
  });
});
