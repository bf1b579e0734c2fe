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
 * hashes as it goes. Reading is the mirror image: `openTensorFile` checks the index and the
 * file's size and, given the expected SHA-256, hashes the whole file in one streaming pass
 * through a bounded buffer (no tensor kept); then `readTensor(key)` reads one tensor's bytes
 * with a positioned read straight into a fresh typed array. A caller that turns each into a tf
 * tensor and drops it holds at most one tensor's bytes besides what tf holds, and files larger
 * than Node's 2 GiB `readFileSync` limit work. (The price: a verified load reads the file twice,
 * once to hash it and once for the tensors; the second read usually comes from the page cache.)
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { SoapTrainError, badInput } from '../errors.js';

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

/**
 * Reads up to `length` bytes at file position `position` into `into[offset…]` and returns how
 * many it read (0 at the end of the file): `fs.readSync`'s contract. Tests replace it to inject
 * I/O errors and short reads.
 */
export type FileReader = (fd: number, into: Uint8Array, offset: number, length: number, position: number) => number;

/** Tensors by key, read one at a time (a loaded checkpoint, or an opened tensor file). */
export interface TensorSource {
  /** Every tensor's dtype, shape and place, in file order: look here before reading. */
  index: TensorIndex;
  /**
   * Reads one tensor into a fresh typed array that the caller owns (nothing is cached: each call
   * reads the file again). Throws for a key not in the index, and a SoapTrainError naming the
   * file when it cannot be read or changed since it was opened.
   */
  readTensor(key: string): TensorEntry;
}

export const TENSORS_FILE = 'tensors.bin';
export const INDEX_FILE = 'index.json';
/** Every array starts at a multiple of this, so a reader may map the file and view it in place. */
export const TENSOR_ALIGN = 8;
const KEY = /^(params\/[^/]+|optim\/[^/]+\/[^/]+)$/;
const LITTLE_ENDIAN = endianness() === 'LE';
/** Reads and writes go in pieces of at most this (one `writeSync` must stay under 2 GiB). */
const CHUNK = 64 << 20;
/** The buffer of a hashing pass: all the memory verifying a file of any size takes. */
const HASH_CHUNK = 8 << 20;

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

export interface OpenOptions {
  /** The SHA-256 tensors.bin must have: checked in a streaming pass before anything is read. */
  expectSha256?: string;
  /** Replaces the low-level positioned read; tests inject I/O errors and short reads through it. */
  read?: FileReader;
}

/** The default reader: `fs.readSync` at an explicit position. */
const readAt: FileReader = (fd, into, offset, length, position) => readSync(fd, into, offset, length, position);

/**
 * Opens a folder written by `writeTensorFile` for reading tensor by tensor. Checks index.json,
 * that tensors.bin ends where the last entry ends (a truncated or padded file is refused) and,
 * with `expectSha256`, the file's hash: one pass front to back through an 8 MiB buffer, keeping
 * nothing. Errors are SoapTrainErrors naming the file: bad input (exit 2) for a malformed index,
 * a wrong size or hash; an I/O error (EIO, EACCES, …) or a read that ends early says the file is
 * unreadable, with the system's message.
 *
 * `readTensor` then opens the file for each tensor, checks it is still the file that was
 * verified (same inode, size and modification time: a checkpoint replaced or rewritten in
 * between is refused rather than read unverified), and reads that tensor's bytes only.
 */
export function openTensorFile(dir: string, opts: OpenOptions = {}): TensorSource {
  const index = readTensorIndex(dir);
  const path = join(dir, TENSORS_FILE);
  const read = opts.read ?? readAt;
  const entries = sortedByOffset(index);
  const end = entries.length ? entries[entries.length - 1][1].offset + entries[entries.length - 1][1].bytes : 0;
  const verified = withFile(path, (fd) => {
    const stat = fstatSync(fd);
    if (stat.size !== end) {
      throw badInput(`has ${stat.size} bytes, the index describes ${end} (truncated or overwritten)`, { file: path, fix: 'use an earlier checkpoint' });
    }
    if (opts.expectSha256 !== undefined) {
      const hash = createHash('sha256');
      const buf = new Uint8Array(Math.min(HASH_CHUNK, Math.max(end, 1)));
      for (let position = 0; position < end; ) {
        const piece = buf.subarray(0, Math.min(buf.byteLength, end - position));
        readInto(fd, piece, position, read, path);
        hash.update(piece);
        position += piece.byteLength;
      }
      if (hash.digest('hex') !== opts.expectSha256) {
        throw badInput('checksum mismatch (corrupted)', { file: path, fix: 'use an earlier checkpoint' });
      }
    }
    return stat;
  });
  return {
    index,
    readTensor(key: string): TensorEntry {
      if (!Object.hasOwn(index.tensors, key)) throw new Error(`${path}: no tensor ${key} in the index`);
      const e = index.tensors[key];
      return withFile(path, (fd) => {
        const now = fstatSync(fd);
        if (now.ino !== verified.ino || now.dev !== verified.dev || now.size !== verified.size || now.mtimeMs !== verified.mtimeMs) {
          throw new SoapTrainError('changed since it was opened and verified (is another process writing this run?)', {
            file: path,
            fix: 'run again: the checkpoint is verified afresh and skipped if it is no longer valid',
            exitCode: 1,
          });
        }
        // A fresh ArrayBuffer per tensor: aligned for the typed array, and owned by the caller.
        const buffer = new ArrayBuffer(e.bytes);
        const bytes = new Uint8Array(buffer);
        readInto(fd, bytes, e.offset, read, path);
        if (!LITTLE_ENDIAN) swap32(bytes);
        return { dtype: e.dtype, shape: [...e.shape], data: e.dtype === 'int32' ? new Int32Array(buffer) : new Float32Array(buffer) };
      });
    },
  };
}

/** Opens `path` read-only for `use`, always closing it; an I/O error becomes a SoapTrainError naming the file. */
function withFile<T>(path: string, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw unreadable(path, err);
  }
  try {
    return use(fd);
  } catch (err) {
    throw unreadable(path, err);
  } finally {
    closeSync(fd);
  }
}

/** A system error (it has `code` and `syscall`: EIO, EACCES, EISDIR, …), as opposed to a bug. */
export function isIoError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | null;
  return e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** I/O errors become `<file>: is unreadable: <system message>`; anything else passes through. */
function unreadable(path: string, err: unknown): unknown {
  if (!isIoError(err)) return err;
  return new SoapTrainError(`is unreadable: ${err.message}`, { file: path, fix: 'use an earlier checkpoint' });
}

function readInto(fd: number, into: Uint8Array, position: number, read: FileReader, path: string): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = read(fd, into, done, Math.min(CHUNK, into.byteLength - done), position + done);
    if (!(n > 0)) throw badInput('ended early (truncated while being read?)', { file: path, fix: 'use an earlier checkpoint' });
    done += n;
  }
}

/** SHA-256 of a file of any size, read in pieces (never the whole file in memory). */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(HASH_CHUNK);
    for (let n; (n = readSync(fd, buf, 0, buf.byteLength, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
