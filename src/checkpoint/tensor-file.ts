/**
 * The checkpoint tensor format: one data file and one JSON index.
 *
 *   tensors.bin   the arrays back to back, little-endian, each starting at a multiple of 8 bytes
 *   index.json    {"format": 1, "tensors": {"<key>": {"dtype": "float32" | "int32",
 *                  "shape": [..], "offset": <byte offset in tensors.bin>, "bytes": <length>}}}
 *
 * Keys are `params/<dotted parameter name>` and `optim/<parameter name>/<state name>`. Arrays
 * are streamed to the file one at a time (peak memory is one tensor, not the checkpoint), and
 * the SHA-256 of each file is computed as it is written, for the metadata's checksums.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from '../errors.js';

export type TensorDtype = 'float32' | 'int32';

export interface TensorEntry {
  dtype: TensorDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface IndexEntry {
  dtype: TensorDtype;
  shape: number[];
  offset: number;
  bytes: number;
}

export interface TensorIndex {
  format: 1;
  tensors: Record<string, IndexEntry>;
}

export interface FileDigest {
  bytes: number;
  sha256: string;
}

export const TENSORS_FILE = 'tensors.bin';
export const INDEX_FILE = 'index.json';
const ALIGN = 8;

/**
 * Writes `tensors.bin` and `index.json` into `dir` (fsynced), pulling one entry at a time from
 * `entries` so a caller can read device tensors lazily. Returns both files' digests.
 */
export async function writeTensorFile(
  dir: string,
  entries: AsyncIterable<[string, TensorEntry]> | Iterable<[string, TensorEntry]>,
  write: (fd: number, buf: Uint8Array) => void = writeAll,
): Promise<{ index: TensorIndex; tensors: FileDigest; indexFile: FileDigest }> {
  const index: TensorIndex = { format: 1, tensors: {} };
  const hash = createHash('sha256');
  const fd = openSync(join(dir, TENSORS_FILE), 'w');
  let offset = 0;
  try {
    for await (const [key, entry] of entries) {
      const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
      if (pad) {
        const zeros = new Uint8Array(pad);
        write(fd, zeros);
        hash.update(zeros);
        offset += pad;
      }
      const bytes = new Uint8Array(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
      write(fd, bytes);
      hash.update(bytes);
      index.tensors[key] = { dtype: entry.dtype, shape: entry.shape, offset, bytes: bytes.byteLength };
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

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.byteLength) done += writeSync(fd, buf, done, buf.byteLength - done);
}

/** Reads every tensor of a checkpoint folder, checking each entry against the file's size. */
export function readTensorFile(dir: string): Map<string, TensorEntry> {
  const indexPath = join(dir, INDEX_FILE);
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as TensorIndex;
  if (index.format !== 1) throw badInput(`unknown tensor index format ${String(index.format)}`, { file: indexPath });
  const file = readFileSync(join(dir, TENSORS_FILE));
  const out = new Map<string, TensorEntry>();
  for (const [key, e] of Object.entries(index.tensors)) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (e.bytes !== 4 * count || e.offset + e.bytes > file.byteLength || e.offset % ALIGN !== 0) {
      throw badInput(`tensor ${key} does not fit the data file`, { file: join(dir, TENSORS_FILE) });
    }
    // Copy into a fresh, aligned buffer: the file buffer's offset need not be 4-aligned.
    const copy = new ArrayBuffer(e.bytes);
    new Uint8Array(copy).set(file.subarray(e.offset, e.offset + e.bytes));
    out.set(key, { dtype: e.dtype, shape: e.shape, data: e.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy) });
  }
  return out;
}
