/**
 * The TFRecord framing of TensorBoard event files: every record is
 *
 *   uint64 LE  length of the data
 *   uint32 LE  masked CRC32C of those 8 length bytes
 *   data       (one serialized `Event`)
 *   uint32 LE  masked CRC32C of the data
 *
 * The mask (TensorFlow's `crc32c::Mask`, tensorflow/core/lib/hash/crc32c.h) rotates the CRC right
 * by 15 bits and adds a constant, because a CRC of data that itself contains CRCs is weak.
 * CRC32C (Castagnoli) comes from @aws-crypto/crc32c, the AWS SDK's maintained implementation.
 */
import { crc32c } from '@aws-crypto/crc32c';

const MASK_DELTA = 0xa282ead8;

/** `((crc >>> 15) | (crc << 17)) + 0xa282ead8` modulo 2^32. */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc(crc32c(bytes));
}

/** One framed record holding `data`. */
export function encodeRecord(data: Uint8Array): Uint8Array {
  const record = Buffer.alloc(8 + 4 + data.length + 4);
  record.writeBigUInt64LE(BigInt(data.length), 0);
  record.writeUInt32LE(maskedCrc32c(record.subarray(0, 8)), 8);
  record.set(data, 12);
  record.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return record;
}
