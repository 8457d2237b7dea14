/** The TensorBoard events this product writes: file version, scalars, and the HParams plugin's session info. */
import { DT_FLOAT, EventType, HParamsPluginDataType, type HParamValue } from './proto';

const DATA_CLASS_SCALAR = 1;

function encode(event: Record<string, unknown>): Uint8Array {
  return EventType.encode(EventType.fromObject(event)).finish();
}

/** The first event of every file: readers check it. */
export function fileVersionEvent(wallTime: number): Uint8Array {
  return encode({ wall_time: wallTime, file_version: 'brain.Event:2' });
}

/**
 * Scalars of one step, as the scalars plugin's summary API writes them: a 0-d float32 tensor with plugin
 * "scalars". float32 because TensorBoard's data server (the default loader) drops scalars of any other dtype.
 */
export function scalarsEvent(step: number, wallTime: number, values: ReadonlyArray<readonly [string, number]>): Uint8Array {
  return encode({
    wall_time: wallTime,
    step,
    summary: {
      value: values.map(([tag, v]) => ({
        tag,
        metadata: { plugin_data: { plugin_name: 'scalars' }, data_class: DATA_CLASS_SCALAR },
        tensor: { dtype: DT_FLOAT, tensor_shape: {}, float_val: [v] },
      })),
    },
  });
}

/** An HParams summary: plugin data in the metadata, an empty float tensor (the plugin's NULL_TENSOR). */
function hparamsEvent(tag: string, wallTime: number, data: Record<string, unknown>): Uint8Array {
  const content = HParamsPluginDataType.encode(HParamsPluginDataType.fromObject({ version: 0, ...data })).finish();
  return encode({
    wall_time: wallTime,
    step: 0,
    summary: { value: [{ tag, metadata: { plugin_data: { plugin_name: 'hparams', content } }, tensor: { dtype: DT_FLOAT, tensor_shape: { dim: [{ size: 0 }] } } }] },
  });
}

export type HParams = Record<string, number | string | boolean>;

export function hparamsStartEvent(hparams: HParams, startTime: number): Uint8Array {
  const values: Record<string, HParamValue> = {};
  for (const [k, v] of Object.entries(hparams)) values[k] = typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: v };
  return hparamsEvent('_hparams_/session_start_info', startTime, { session_start_info: { hparams: values, start_time_secs: startTime } });
}

export type SessionStatus = 'success' | 'failure' | 'running';

export function hparamsEndEvent(status: SessionStatus, endTime: number): Uint8Array {
  const code = { success: 1, failure: 2, running: 3 }[status];
  return hparamsEvent('_hparams_/session_end_info', endTime, { session_end_info: { status: code, end_time_secs: endTime } });
}
