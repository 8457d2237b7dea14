/**
 * Parsing run-folder files at the boundary, once, with Ajv: validation against the schemas of runFolder.ts and
 * their defaults filled in. For Node (engine, extension host) only: Ajv compiles schemas to code, which the
 * webviews' CSP forbids. Errors name the field and say what it must be (the schemas' `must`).
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { isObj, quote } from './guards';
import { METRICS_RECORD_SCHEMA, RUN_STATE_SCHEMA, type MetricsRecord, type RunState } from './runFolder';

let ajv: Ajv | undefined;
const compiled = new Map<object, ValidateFunction>();

function validatorOf(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    if (!ajv) {
      ajv = new Ajv({ allErrors: false, useDefaults: true, strictNumbers: true, allowUnionTypes: true });
      ajv.addKeyword({ keyword: 'must', schemaType: 'string' });
    }
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

export type Parsed<T> = { value: T } | { problem: string };

/** Validates `x` against `schema`, filling its defaults into `x`; the first problem, naming its field. */
function parseWith<T>(schema: { must?: string; properties: Record<string, { must?: string }> }, x: unknown): Parsed<T> {
  const validate = validatorOf(schema);
  if (validate(x)) return { value: x as T };
  const e = validate.errors![0];
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    return { problem: `${missing} must be ${schema.properties[missing]?.must ?? 'present'} (it is missing)` };
  }
  const field = e.instancePath.split('/').filter(Boolean)[0];
  if (field === undefined) return { problem: `is not ${schema.must ?? 'valid'}` };
  return { problem: `${field} must be ${schema.properties[field]?.must ?? e.message}` };
}

/**
 * A parsed `state.json` of the run in folder `runId`, with `warnings` and `headline` filled when absent; or the
 * first problem, naming the field. The id must be the folder's name (the folder is the run id).
 */
export function parseRunState(x: unknown, runId: string): Parsed<RunState> {
  if (isObj(x) && x.id !== runId) return { problem: `id is ${quote(x.id, 60)}, not the folder's name "${runId}"` };
  return parseWith<RunState>(RUN_STATE_SCHEMA as never, x);
}

/** One parsed `metrics.jsonl` record, or its problem. */
export function parseMetricsRecord(x: unknown): Parsed<MetricsRecord> {
  return parseWith<MetricsRecord>(METRICS_RECORD_SCHEMA as never, x);
}
