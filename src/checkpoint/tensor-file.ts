/**
 * The checkpoint tensor format: one data file and one JSON index, side by side in a folder.
 *
 *   tensors.bin   the arrays back to back, raw little-endian, each starting at a multiple of
 *                 8 bytes (zero padding between them); nothing else: no header, no trailer
 *   index.json    {"format": 1, "tensors": {"<key>": {"dtype": "float32" | "int32",
 *                  "shape": [d0, d1, ...], "offset": <byte offset in tensors.bin>,
 *                  "bytes": <4 × product(shape)>}}}
 *
 * Keys are `params/<dotted parameter name>` (`params/blocks.3.attn.wq`) and
 * `optim/<parameter name>/<state name>` (`optim/blocks.3.attn.wq/exp_avg`). A scalar has
 * shape `[]` and 4 bytes. Offsets grow in the order the arrays were written, so a file is read
 * front to back in one pass.
 *
 * Writing streams one array at a time (peak memory is one tensor, never the checkpoint) and
 * hashes as it goes; reading fills one typed array per tensor straight from the file and can
 * check the SHA-256 in the same pass, so a checkpoint is read once, never twice, and files
 * larger than Node's 2 GiB `readFileSync` limit work.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { badInput } from '../errors.js';

export type TensorDtype = 'float32' | 'int32';

/** One array in memory: what is written, and what is read back. */
export interface TensorEntry {
  dtype: TensorDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** One array's place in tensors.bin. */
export interface IndexEntry {
  dtype: TensorDtype;
  shape: number[];
  offset: number;
  bytes: number;
}

/** The contents of index.json. */
export interface TensorIndex {
  format: 1;
  tensors: Record<string, IndexEntry>;
}

/** A file's size and SHA-256 (lowercase hex), as meta.json records them. */
export interface FileDigest {
  bytes: number;
  sha256: string;
}

/** Writes a whole buffer to a file descriptor; tests replace it to inject ENOSPC. */
export type FileWriter = (fd: number, buf: Uint8Array) => void;

export const TENSORS_FILE = 'tensors.bin';
export const INDEX_FILE = 'index.json';
/** Every array starts at a multiple of this, so a reader may map the file and view it in place. */
export const TENSOR_ALIGN = 8;
const KEY = /^(params\/[^/]+|optim\/[^/]+\/[^/]+)$/;
const LITTLE_ENDIAN = endianness() === 'LE';
/** Reads and writes go in pieces of at most this (one `writeSync` must stay under 2 GiB). */
const CHUNK = 64 << 20;

/** Bytes of an array of this shape (both dtypes are 4 bytes an element). */
export function tensorBytes(shape: readonly number[]): number {
  return 4 * shape.reduce((a, b) => a * b, 1);
}

/** `n` rounded up to the next multiple of TENSOR_ALIGN. */
export function alignUp(n: number): number {
  return Math.ceil(n / TENSOR_ALIGN) * TENSOR_ALIGN;
}

/** The default writer: loops until every byte is out (writeSync may write less than asked). */
export function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.byteLength) done += writeSync(fd, buf, done, Math.min(CHUNK, buf.byteLength - done));
}

/** The array's bytes in little-endian order: a view on little-endian hosts, a swapped copy otherwise. */
function littleEndianBytes(data: Float32Array | Int32Array): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN ? view : swap32(Uint8Array.from(view));
}

function swap32(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < bytes.length; i += 4) {
    [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]] = [bytes[i + 3], bytes[i + 2], bytes[i + 1], bytes[i]];
  }
  return bytes;
}

/**
 * Writes `tensors.bin` and then `index.json` into `dir`, each fsynced, pulling one entry at a
 * time from `entries` (an async source lets the caller read device tensors lazily: `await
 * t.data()` per tensor). Returns the index and both files' digests; `tensors.sha256` is the
 * hash of the data file, computed while writing rather than by reading it back.
 */
export async function writeTensorFile(
  dir: string,
  entries: AsyncIterable<[string, TensorEntry]> | Iterable<[string, TensorEntry]>,
  write: FileWriter = writeAll,
): Promise<{ index: TensorIndex; tensors: FileDigest; indexFile: FileDigest }> {
  const index: TensorIndex = { format: 1, tensors: {} };
  const hash = createHash('sha256');
  const fd = openSync(join(dir, TENSORS_FILE), 'w');
  let offset = 0;
  try {
    for await (const [key, entry] of entries) {
      if (!KEY.test(key)) throw new Error(`checkpoint key '${key}' is neither params/<name> nor optim/<name>/<state>`);
      if (key in index.tensors) throw new Error(`checkpoint key '${key}' written twice`);
      if (entry.data.length !== entry.shape.reduce((a, b) => a * b, 1)) {
        throw new Error(`checkpoint tensor ${key}: ${entry.data.length} values for shape [${entry.shape.join(', ')}]`);
      }
      const pad = alignUp(offset) - offset;
      if (pad) {
        const zeros = new Uint8Array(pad);
        write(fd, zeros);
        hash.update(zeros);
        offset += pad;
      }
      const bytes = littleEndianBytes(entry.data);
      write(fd, bytes);
      hash.update(bytes);
      index.tensors[key] = { dtype: entry.dtype, shape: [...entry.shape], offset, bytes: bytes.byteLength };
      offset += bytes.byteLength;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const indexText = Buffer.from(`${JSON.stringify(index)}\n`);
  const ifd = openSync(join(dir, INDEX_FILE), 'w');
  try {
    write(ifd, indexText);
    fsyncSync(ifd);
  } finally {
    closeSync(ifd);
  }
  return {
    index,
    tensors: { bytes: offset, sha256: hash.digest('hex') },
    indexFile: { bytes: indexText.byteLength, sha256: createHash('sha256').update(indexText).digest('hex') },
  };
}

/** Parses and checks index.json: known format, dtypes, shapes, sizes, alignment, no overlaps. */
export function readTensorIndex(dir: string): TensorIndex {
  const path = join(dir, INDEX_FILE);
  let index: TensorIndex;
  try {
    index = JSON.parse(readFileSync(path, 'utf8')) as TensorIndex;
  } catch (err) {
    throw badInput(`is unreadable: ${err instanceof Error ? err.message : String(err)}`, { file: path });
  }
  if (index?.format !== 1 || typeof index.tensors !== 'object' || index.tensors === null) {
    throw badInput(`unknown tensor index format ${JSON.stringify(index?.format)}`, { file: path, fix: 'this checkpoint was written by another version of soap-train' });
  }
  let end = 0;
  for (const [key, e] of sortedByOffset(index)) {
    const shapeOk = Array.isArray(e.shape) && e.shape.every((d) => Number.isInteger(d) && d >= 0);
    const fits = shapeOk && e.bytes === tensorBytes(e.shape) && Number.isInteger(e.offset) && e.offset >= end && e.offset % TENSOR_ALIGN === 0;
    if (!KEY.test(key) || (e.dtype !== 'float32' && e.dtype !== 'int32') || !fits) {
      throw badInput(`entry ${key} is malformed (dtype ${String(e.dtype)}, shape ${JSON.stringify(e.shape)}, offset ${e.offset}, bytes ${e.bytes})`, { file: path, field: key });
    }
    end = e.offset + e.bytes;
  }
  return index;
}

function sortedByOffset(index: TensorIndex): Array<[string, IndexEntry]> {
  return Object.entries(index.tensors).sort(([, a], [, b]) => a.offset - b.offset);
}

/**
 * Reads every tensor of a folder written by `writeTensorFile`, in one pass over tensors.bin.
 * Each entry must lie inside the file and the file must end where the last entry ends (a
 * truncated or padded file is refused). With `expectSha256` the file's hash is checked in the
 * same pass and a mismatch is an error. Errors are bad input (exit 2) naming the file.
 */
export function readTensorFile(dir: string, opts: { expectSha256?: string } = {}): Map<string, TensorEntry> {
  const index = readTensorIndex(dir);
  const path = join(dir, TENSORS_FILE);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const entries = sortedByOffset(index);
    const end = entries.length ? entries[entries.length - 1][1].offset + entries[entries.length - 1][1].bytes : 0;
    if (end !== size) {
      throw badInput(`has ${size} bytes, the index describes ${end} (truncated or overwritten)`, { file: path, fix: 'use an earlier checkpoint' });
    }
    const hash = opts.expectSha256 === undefined ? null : createHash('sha256');
    const out = new Map<string, TensorEntry>();
    let position = 0;
    for (const [key, e] of entries) {
      if (e.offset > position) readInto(fd, new Uint8Array(e.offset - position), position, hash, path);
      // A fresh ArrayBuffer per tensor: aligned for the typed array, and owned by the caller.
      const buffer = new ArrayBuffer(e.bytes);
      const bytes = new Uint8Array(buffer);
      readInto(fd, bytes, e.offset, hash, path);
      if (!LITTLE_ENDIAN) swap32(bytes);
      out.set(key, { dtype: e.dtype, shape: e.shape, data: e.dtype === 'int32' ? new Int32Array(buffer) : new Float32Array(buffer) });
      position = e.offset + e.bytes;
    }
    if (hash && hash.digest('hex') !== opts.expectSha256) {
      throw badInput('checksum mismatch (corrupted)', { file: path, fix: 'use an earlier checkpoint' });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function readInto(fd: number, into: Uint8Array, position: number, hash: Hash | null, path: string): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(fd, into, done, Math.min(CHUNK, into.byteLength - done), position + done);
    if (n === 0) throw badInput('ended early (truncated while being read?)', { file: path });
    done += n;
  }
  hash?.update(into);
}

/** SHA-256 of a file of any size, read in pieces (never the whole file in memory). */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(Math.min(CHUNK, 8 << 20));
    for (let n; (n = readSync(fd, buf, 0, buf.byteLength, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
