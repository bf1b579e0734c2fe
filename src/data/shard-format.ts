/**
 * Token shard files: the llm.c / modded-nanogpt `.bin` layout, plus raw uint16 arrays.
 *
 * Layout with a header (all little-endian):
 *   int32[256] header: [0] magic, [1] version, [2] token count, [3..255] zero
 *   tokens:            count × uint16 (gpt2 variant) or count × uint32 (llama3 variant)
 *
 * | variant | magic    | version | token type |
 * |---------|----------|---------|------------|
 * | gpt2    | 20240520 | 1       | uint16     |
 * | llama3  | 20240801 | 7       | uint32     |
 * | raw     | (none)   | (none)  | uint16     |  nanoGPT `train.bin`: no header, count = size / 2
 *
 * The header names no tokenizer; `prepare` writes that into a sidecar `meta.json`.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { fsyncDir } from '../run/atomic.js';
import { basename, dirname, join } from 'node:path';
import { badInput } from '../errors.js';

export type ShardVariant = 'gpt2' | 'llama3' | 'raw';

/** True on little-endian hosts (all Node 20 targets), where typed arrays match the file layout. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Header size in bytes: 256 int32 values. */
export const HEADER_BYTES = 256 * 4;

interface VariantInfo {
  magic: number;
  version: number;
  tokenBytes: 2 | 4;
}

export const SHARD_VARIANTS: Readonly<Record<Exclude<ShardVariant, 'raw'>, VariantInfo>> = {
  gpt2: { magic: 20240520, version: 1, tokenBytes: 2 },
  llama3: { magic: 20240801, version: 7, tokenBytes: 4 },
};

export interface ShardHeader {
  file: string;
  variant: ShardVariant;
  /** Bytes before the first token: 1024, or 0 for raw files. */
  headerBytes: number;
  /** 2 (uint16) or 4 (uint32). */
  tokenBytes: 2 | 4;
  numTokens: number;
  fileBytes: number;
}

/** The largest token id a variant can store. */
export function maxTokenId(variant: ShardVariant): number {
  return variant === 'llama3' ? 0xffffffff : 0xffff;
}

/** The narrowest variant that stores ids below `vocabSize`: uint16 up to 65,536 ids, else uint32. */
export function variantForVocab(vocabSize: number): Exclude<ShardVariant, 'raw'> {
  return vocabSize <= 0x10000 ? 'gpt2' : 'llama3';
}

/**
 * Reads and validates a shard's header from an open file descriptor (see {@link readShardHeader}).
 */
export function readShardHeaderFd(fd: number, file: string, opts: { raw?: boolean } = {}): ShardHeader {
  const fileBytes = fstatSync(fd).size;
  if (opts.raw) {
    if (fileBytes % 2 !== 0) {
      throw badInput(`raw uint16 token file has an odd size (${fileBytes} bytes)`, {
        file,
        fix: 'is it really a raw uint16 array? drop data.raw for llm.c .bin shards',
      });
    }
    return { file, variant: 'raw', headerBytes: 0, tokenBytes: 2, numTokens: fileBytes / 2, fileBytes };
  }
  if (fileBytes < HEADER_BYTES) {
    throw badInput(`too short for a shard header (${fileBytes} bytes, the header alone is ${HEADER_BYTES})`, {
      file,
      fix: 'regenerate it with `soap-train prepare`, or set data.raw: true for headerless uint16 files',
    });
  }
  const head = Buffer.alloc(12);
  readSync(fd, head, 0, 12, 0);
  const magic = head.readInt32LE(0);
  const version = head.readInt32LE(4);
  const numTokens = head.readInt32LE(8);
  const entry = Object.entries(SHARD_VARIANTS).find(([, v]) => v.magic === magic);
  if (!entry) {
    throw badInput(`bad magic number ${magic} (expected 20240520 for uint16 or 20240801 for uint32 shards)`, {
      file,
      fix: 'not an llm.c token shard; set data.raw: true for headerless uint16 files',
    });
  }
  const [name, info] = entry as [Exclude<ShardVariant, 'raw'>, VariantInfo];
  if (version !== info.version) {
    throw badInput(`unknown shard version ${version} for magic ${magic} (expected ${info.version})`, {
      file,
      fix: 'regenerate the shard with `soap-train prepare`',
    });
  }
  const expected = HEADER_BYTES + numTokens * info.tokenBytes;
  if (numTokens < 0 || expected !== fileBytes) {
    throw badInput(
      `header says ${numTokens} tokens (${expected} bytes) but the file has ${fileBytes} bytes`,
      { file, fix: 'the shard is truncated or corrupt: regenerate it with `soap-train prepare`' },
    );
  }
  return { file, variant: name, headerBytes: HEADER_BYTES, tokenBytes: info.tokenBytes, numTokens, fileBytes };
}

/**
 * Reads and validates a shard header. Bad magic, unknown version, or a token count that does not
 * match the file size throw a `SoapTrainError` naming the file. With `raw`, the file is a bare
 * uint16 array and its size must be even.
 */
export function readShardHeader(path: string, opts: { raw?: boolean } = {}): ShardHeader {
  const fd = openShard(path);
  try {
    return readShardHeaderFd(fd, path, opts);
  } finally {
    closeSync(fd);
  }
}

/** Opens a shard read-only, turning "not found" / "is a directory" into a bad-input error. */
export function openShard(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(`cannot open shard (${code ?? String(err)})`, { file: path });
  }
}

/** The 1024-byte header for `numTokens` tokens of a variant. */
export function encodeHeader(variant: Exclude<ShardVariant, 'raw'>, numTokens: number): Buffer {
  if (!Number.isInteger(numTokens) || numTokens < 0 || numTokens > 0x7fffffff) {
    throw new RangeError(`shard token count ${numTokens} does not fit the int32 header`);
  }
  const info = SHARD_VARIANTS[variant];
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeInt32LE(info.magic, 0);
  head.writeInt32LE(info.version, 4);
  head.writeInt32LE(numTokens, 8);
  return head;
}

/**
 * Streams tokens into a shard: writes to `<dir>/.<name>.tmp-<pid>`, then on {@link finish}
 * writes the header (whose count is only known at the end), fsyncs, renames into place and
 * fsyncs the directory (write-file-atomic), so a reader never sees a half-written shard.
 */
export class ShardWriter {
  readonly path: string;
  readonly variant: ShardVariant;
  private readonly tmp: string;
  private fd: number;
  private count = 0;
  private readonly limit: number;
  private readonly tokenBytes: number;

  constructor(path: string, variant: ShardVariant) {
    this.path = path;
    this.variant = variant;
    this.limit = maxTokenId(variant);
    this.tokenBytes = variant === 'llama3' ? 4 : 2;
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
    this.fd = openSync(this.tmp, 'w');
    // Reserve the header; its count is filled in by finish().
    if (variant !== 'raw') writeSync(this.fd, Buffer.alloc(HEADER_BYTES));
  }

  get numTokens(): number {
    return this.count;
  }

  /** Appends tokens; ids that do not fit the variant's integer type are a RangeError (a bug). */
  append(tokens: ArrayLike<number>): void {
    const n = tokens.length;
    if (n === 0) return;
    if (!LITTLE_ENDIAN) throw new Error('token shards are little-endian; this host is big-endian');
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (!(t >= 0 && t <= this.limit && Number.isInteger(t))) {
        throw new RangeError(`token ${t} does not fit a ${this.variant} shard (max ${this.limit})`);
      }
    }
    // Typed arrays are host-endian; every platform Node 20 ships for is little-endian, which the
    // format requires. Checked once at load (LITTLE_ENDIAN) so a big-endian host fails loudly.
    const typed = this.tokenBytes === 2 ? Uint16Array.from(tokens) : Uint32Array.from(tokens);
    writeSync(this.fd, new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
    this.count += n;
  }

  /** Writes the header, fsyncs and renames the shard into place; returns its token count. */
  finish(): number {
    if (this.variant !== 'raw') writeSync(this.fd, encodeHeader(this.variant, this.count), 0, HEADER_BYTES, 0);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.path);
    fsyncDir(dirname(this.path));
    return this.count;
  }

  /** Drops the temp file (after an error). */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    try {
      unlinkSync(this.tmp);
    } catch {
      // already gone
    }
  }
}

/**
 * Writes `tokens` as one shard atomically (temp file, fsync, rename, fsync the directory).
 * `variant` defaults to `gpt2` (uint16); `raw` writes a headerless uint16 array.
 */
export function writeShard(path: string, tokens: ArrayLike<number>, opts: { variant?: ShardVariant } = {}): void {
  const writer = new ShardWriter(path, opts.variant ?? 'gpt2');
  try {
    writer.append(tokens);
    writer.finish();
  } catch (err) {
    writer.abort();
    throw err;
  }
}
