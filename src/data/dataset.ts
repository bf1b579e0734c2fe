/**
 * A token dataset over one or more shard files, read on demand.
 *
 * The shards are laid end to end as one token stream of `numTokens` tokens; `read(offset, n)`
 * returns any window of it, and a window may span shard boundaries (prepare cuts shards at a
 * fixed token count, in the middle of documents, so the stream across shards is the corpus in
 * order, as in llm.c). Tokens are read with `fs.readSync` on file descriptors kept open, through a
 * small LRU cache of fixed-size blocks, so memory stays bounded whatever the dataset size.
 *
 * Token ids are checked against `vocabSize` as blocks are loaded: an id ≥ vocab size names the
 * file, the token offset in it, the id and the vocab size.
 */
import { closeSync, readSync } from 'node:fs';
import { relative } from 'node:path';
import { badInput } from '../errors.js';
import { expandGlobs } from './glob.js';
import { openShard, readShardHeaderFd, type ShardHeader } from './shard-format.js';

/** Tokens per cache block: 64Ki tokens is 128 KiB (uint16) to 256 KiB (uint32) per read. */
export const BLOCK_TOKENS = 1 << 16;
/** Windows up to this many tokens outside the cache are read directly, uncached. */
export const DIRECT_MAX = 4096;
/** Cached blocks: 64 blocks of 64Ki tokens, at most 16 MiB as Int32Array. */
export const CACHE_BLOCKS = 64;

export interface OpenDatasetOptions {
  /** Relative globs are resolved against these directories, the first with a match wins. */
  baseDirs: string[];
  /** When given, every token id must be below it. */
  vocabSize?: number;
  /** Headerless uint16 arrays (nanoGPT `train.bin`). */
  raw?: boolean;
  /** The config field the patterns came from, for error messages (default `data`). */
  field?: string;
  /** The config file the patterns came from, for error messages. */
  configFile?: string;
}

export interface TokenDataset {
  /** Total tokens over all shards. */
  readonly numTokens: number;
  /** Absolute shard paths in stream order. */
  readonly files: readonly string[];
  /** Per-shard headers, in the order of `files`. */
  readonly shards: readonly ShardHeader[];
  /**
   * Tokens `[globalOffset, globalOffset + length)` of the concatenated stream, crossing shard
   * boundaries where needed. A fresh array the caller owns.
   */
  read(globalOffset: number, length: number): Int32Array;
  /** Closes the file descriptors; later reads throw. */
  close(): void;
}

interface OpenShard {
  header: ShardHeader;
  fd: number;
  /** Global offset of the shard's first token. */
  start: number;
}

/**
 * Opens the shards matching `patterns` (sorted, deterministic), validating every header now, so a
 * bad shard fails before training starts. No matching file is a bad-input error telling the user
 * to run `soap-train prepare` or fix the glob.
 */
export function openTokenDataset(patterns: string[], opts: OpenDatasetOptions): TokenDataset {
  const field = opts.field ?? 'data';
  if (patterns.length === 0) {
    throw badInput('no shard pattern given', { file: opts.configFile, field, fix: 'set it to a glob such as data/sotu-byte/train_*.bin' });
  }
  const { files, unmatched } = expandGlobs(patterns, opts.baseDirs);
  if (unmatched.length > 0) {
    const shown = unmatched.map((p) => `"${p}"`).join(', ');
    throw badInput(`no files match ${shown}`, {
      file: opts.configFile,
      field,
      fix: 'run `soap-train prepare --input <text> --out data/<name>/` or fix the glob',
    });
  }
  const shards: OpenShard[] = [];
  let start = 0;
  try {
    for (const file of files) {
      const fd = openShard(file);
      let header: ShardHeader;
      try {
        header = readShardHeaderFd(fd, file, { raw: opts.raw });
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      shards.push({ header, fd, start });
      start += header.numTokens;
    }
  } catch (err) {
    for (const s of shards) closeSync(s.fd);
    throw err;
  }
  return new ShardedDataset(shards, start, opts.vocabSize);
}

class ShardedDataset implements TokenDataset {
  readonly numTokens: number;
  readonly files: readonly string[];
  readonly shards: readonly ShardHeader[];
  private readonly open: OpenShard[];
  private readonly vocabSize?: number;
  /** LRU: Map iteration order is insertion order; a hit is re-inserted at the end. */
  private readonly cache = new Map<string, Int32Array>();
  private closed = false;

  constructor(open: OpenShard[], numTokens: number, vocabSize?: number) {
    this.open = open;
    this.numTokens = numTokens;
    this.files = open.map((s) => s.header.file);
    this.shards = open.map((s) => s.header);
    this.vocabSize = vocabSize;
  }

  read(globalOffset: number, length: number): Int32Array {
    if (this.closed) throw new Error('TokenDataset.read after close()');
    if (!Number.isInteger(globalOffset) || !Number.isInteger(length) || globalOffset < 0 || length < 0 || globalOffset + length > this.numTokens) {
      throw new RangeError(`window [${globalOffset}, ${globalOffset + length}) is outside the dataset's ${this.numTokens} tokens`);
    }
    const out = new Int32Array(length);
    let filled = 0;
    let shardIndex = this.findShard(globalOffset);
    while (filled < length) {
      const shard = this.open[shardIndex];
      let local = globalOffset + filled - shard.start;
      const end = Math.min(shard.header.numTokens, local + (length - filled));
      // A short window whose block is not cached (random training windows): read just those
      // tokens rather than a whole block that will likely be evicted before it is used again.
      if (end - local <= DIRECT_MAX && !this.cache.has(`${shardIndex}:${Math.floor(local / BLOCK_TOKENS)}`)) {
        out.set(this.readRange(shardIndex, local, end - local), filled);
        filled += end - local;
        local = end;
      }
      while (local < end) {
        const blockIndex = Math.floor(local / BLOCK_TOKENS);
        const block = this.block(shardIndex, blockIndex);
        const from = local - blockIndex * BLOCK_TOKENS;
        const take = Math.min(block.length - from, end - local);
        out.set(block.subarray(from, from + take), filled);
        filled += take;
        local += take;
      }
      shardIndex += 1;
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.open) closeSync(s.fd);
    this.cache.clear();
  }

  /** Binary search for the shard holding a global offset (empty shards are skipped). */
  private findShard(offset: number): number {
    let lo = 0;
    let hi = this.open.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.open[mid].start <= offset) lo = mid;
      else hi = mid - 1;
    }
    while (lo < this.open.length - 1 && this.open[lo].header.numTokens === 0) lo++;
    return lo;
  }

  private block(shardIndex: number, blockIndex: number): Int32Array {
    const key = `${shardIndex}:${blockIndex}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const block = this.loadBlock(shardIndex, blockIndex);
    this.cache.set(key, block);
    if (this.cache.size > CACHE_BLOCKS) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    return block;
  }

  private loadBlock(shardIndex: number, blockIndex: number): Int32Array {
    const first = blockIndex * BLOCK_TOKENS;
    return this.readRange(shardIndex, first, Math.min(BLOCK_TOKENS, this.open[shardIndex].header.numTokens - first));
  }

  /** Tokens [first, first + count) of one shard, read with pread and checked against the vocab. */
  private readRange(shardIndex: number, first: number, count: number): Int32Array {
    const { header, fd } = this.open[shardIndex];
    // Read straight into a typed array (host order = little-endian on every Node 20 platform).
    const typed = header.tokenBytes === 2 ? new Uint16Array(count) : new Uint32Array(count);
    const buf = new Uint8Array(typed.buffer);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, header.headerBytes + first * header.tokenBytes + got);
      if (n === 0) throw badInput(`file ended early while reading token ${first + got / header.tokenBytes}`, { file: header.file, fix: 'the shard changed since it was opened: regenerate it' });
      got += n;
    }
    const out = new Int32Array(count);
    // Ids past int32 cannot be real vocabulary entries either: report them before they wrap.
    const limit = Math.min(this.vocabSize ?? 0x80000000, 0x80000000);
    for (let i = 0; i < count; i++) {
      const v = typed[i];
      if (v >= limit) this.badToken(header, first + i, v);
      out[i] = v;
    }
    return out;
  }

  private badToken(header: ShardHeader, offset: number, id: number): never {
    throw badInput(`token ${offset} is id ${id}, not below the vocab size ${this.vocabSize ?? 2 ** 31}`, {
      file: relativeOrAbsolute(header.file),
      fix: 'set model.vocab_size to the tokenizer\'s vocab size (see the shards\' meta.json)',
    });
  }
}

/** A path relative to the working directory when it is inside it: shorter error lines. */
export function relativeOrAbsolute(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}
