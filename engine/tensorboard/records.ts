/**
 * TFRecord framing of event files: uint64 length, masked CRC-32C of the length, the bytes, masked CRC-32C
 * of the bytes (all little-endian). The CRC is @aws-crypto/crc32c's; the mask is TensorFlow's
 * (tensorflow/core/lib/hash/crc32c.h: rotate right by 15, add 0xa282ead8).
 */
import { crc32c } from '@aws-crypto/crc32c';

function masked(bytes: Uint8Array): number {
  const crc = crc32c(bytes) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

export function frameRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(masked(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(masked(data), 0);
  return Buffer.concat([head, data, tail]);
}
