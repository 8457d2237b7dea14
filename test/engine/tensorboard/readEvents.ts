/** Reads event files back in TypeScript for tests: checks the record framing's CRCs and decodes each event. */
import { crc32c } from '@aws-crypto/crc32c';
import { EventType, HParamsPluginDataType } from '../../../engine/tensorboard/proto';

const mask = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

export interface DecodedEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  scalars: Array<[string, number]>;
  hparams?: Record<string, unknown>;
}

export function readEventFile(buf: Buffer): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    if (buf.readUInt32LE(at + 8) !== mask(crc32c(buf.subarray(at, at + 8)) >>> 0)) throw new Error(`length CRC wrong at ${at}`);
    const data = buf.subarray(at + 12, at + 12 + len);
    if (buf.readUInt32LE(at + 12 + len) !== mask(crc32c(data) >>> 0)) throw new Error(`data CRC wrong at ${at}`);
    at += 16 + len;
    const e = EventType.toObject(EventType.decode(data), { longs: Number, defaults: true, bytes: Array }) as Record<string, any>;
    const ev: DecodedEvent = { wall_time: e.wall_time, step: e.step, scalars: [] };
    if (e.file_version) ev.file_version = e.file_version;
    for (const v of e.summary?.value ?? []) {
      if (v.metadata?.plugin_data?.plugin_name === 'scalars') ev.scalars.push([v.tag, v.tensor.float_val[0]]);
      if (v.metadata?.plugin_data?.plugin_name === 'hparams') {
        ev.hparams = HParamsPluginDataType.toObject(HParamsPluginDataType.decode(Uint8Array.from(v.metadata.plugin_data.content)), { defaults: false }) as Record<string, unknown>;
      }
    }
    out.push(ev);
  }
  return out;
}
