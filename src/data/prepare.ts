/**
 * `prepare`: text → token shards + meta.json, streamed, deterministic.
 *
 * Every document is written as `[eot, ...encode(text)]` (the end-of-text token *before* each
 * document, as in llm.c's FineWeb shards), so the stream begins with eot and eot separates
 * every pair of documents. Training tokens fill `train_000000.bin`, `train_000001.bin`, … of
 * `shardTokens` tokens each (documents may straddle shards; the reader spans them).
 *
 * Validation holdout: the *last* whole documents (in sorted input order) whose tokens add up to at
 * least `valTokens` go to `val_000000.bin`, …. A tail buffer of about `valTokens` tokens makes
 * that possible in one streaming pass. For SOTU that is the most recent addresses: a held-out
 * "future", never seen in training.
 *
 * `meta.json` is written last and atomically: its presence marks a complete dataset. It holds no
 * timestamps, so two runs over the same inputs are byte-identical down to the last file.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from '../errors.js';
import { writeFileAtomic } from '../run/atomic.js';
import { ShardWriter, variantForVocab, type ShardVariant } from './shard-format.js';
import { readSource, resolveInputs, type SourceFormat, type SourceRecord } from './sources.js';
import { chooseWorkers, TokenizePool, type EncodeResult } from './tokenize-pool.js';
import { loadTokenizer, type Tokenizer } from './tokenizers/index.js';

export const DEFAULT_SHARD_TOKENS = 100_000_000;
export const META_FORMAT = 'soap-train.tokens/1';
/** Characters of text per tokenization batch (one message to a worker). */
const BATCH_CHARS = 1 << 20;

export interface PrepareOptions {
  /** Files, directories, globs, or `-` for standard input. */
  inputs: string[];
  /** Output directory (created). */
  outDir: string;
  /** Tokenizer name (`byte`, …). */
  tokenizer: string;
  /** Tokens per shard file (default 100M, the FineWeb shard size). */
  shardTokens?: number;
  /** Hold out the last documents holding at least this many tokens for validation (default 0). */
  valTokens?: number;
  /** The JSONL field holding the text (default `text`). */
  textField?: string;
  /** How to read `-` (default `txt`: all of stdin is one document). */
  stdinFormat?: SourceFormat;
  /** Replace an existing prepared dataset in `outDir`. */
  force?: boolean;
  /** Do nothing when `outDir/meta.json` already exists. */
  ifMissing?: boolean;
  /** Tokenizer threads; 0 (default) = auto: all cores for ≥ 4 MB of BPE input, else 1. */
  workers?: number;
  /** Characters of text per tokenization batch (default 1 Mi); tests make it small. */
  batchChars?: number;
  /** Standard input stream (tests pass their own). */
  stdin?: NodeJS.ReadableStream;
  /** Progress callback, called after each document. */
  onProgress?(p: PrepareProgress): void;
}

export interface PrepareProgress {
  bytesRead: number;
  /** Sum of the input file sizes (stdin counts 0). */
  totalBytes: number;
  tokens: number;
  documents: number;
}

export interface SplitSummary {
  tokens: number;
  documents: number;
  files: string[];
}

export interface PrepareSummary {
  outDir: string;
  /** True when `ifMissing` found a finished dataset and nothing was done. */
  skipped: boolean;
  tokenizer: string;
  vocabSize: number;
  eotToken: number;
  variant: ShardVariant;
  train: SplitSummary;
  val: SplitSummary;
  sources: SourceRecord[];
  bytes: number;
  seconds: number;
}

/** The meta.json sidecar. */
export interface DatasetMeta {
  format: typeof META_FORMAT;
  tokenizer: { name: string; vocab_size: number; eot_token: number };
  shard: { variant: ShardVariant; tokens_per_shard: number };
  eot_placement: 'before_each_document';
  val_holdout: 'last_documents';
  text_field: string;
  train: SplitSummary;
  val: SplitSummary & { requested_tokens: number };
  sources: SourceRecord[];
}

/** Writes consecutive shards `<prefix>_NNNNNN.bin` of at most `shardTokens` tokens each. */
class ShardSeries {
  readonly files: string[] = [];
  tokens = 0;
  documents = 0;
  private writer: ShardWriter | null = null;

  constructor(
    private readonly dir: string,
    private readonly prefix: string,
    private readonly variant: ShardVariant,
    private readonly shardTokens: number,
  ) {}

  append(tokens: Uint32Array): void {
    let at = 0;
    while (at < tokens.length) {
      if (!this.writer) {
        const name = `${this.prefix}_${String(this.files.length).padStart(6, '0')}.bin`;
        this.writer = new ShardWriter(join(this.dir, name), this.variant);
        this.files.push(name);
      }
      const take = Math.min(tokens.length - at, this.shardTokens - this.writer.numTokens);
      this.writer.append(tokens.subarray(at, at + take));
      at += take;
      this.tokens += take;
      if (this.writer.numTokens >= this.shardTokens) this.close();
    }
  }

  close(): void {
    this.writer?.finish();
    this.writer = null;
  }

  abort(): void {
    this.writer?.abort();
    this.writer = null;
  }
}

/** Removes the shards and meta.json of an earlier (possibly unfinished) prepare in `dir`. */
function clearOldDataset(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (/^(train|val)_\d{6}\.bin$/.test(name) || name === 'meta.json') unlinkSync(join(dir, name));
  }
}

function checkCount(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw badInput(`must be an integer ≥ ${min}, got ${value}`, { field: name });
  }
}

function summaryFromMeta(outDir: string, meta: DatasetMeta, seconds: number): PrepareSummary {
  return {
    outDir,
    skipped: true,
    tokenizer: meta.tokenizer.name,
    vocabSize: meta.tokenizer.vocab_size,
    eotToken: meta.tokenizer.eot_token,
    variant: meta.shard.variant,
    train: meta.train,
    val: { tokens: meta.val.tokens, documents: meta.val.documents, files: meta.val.files },
    sources: meta.sources,
    bytes: meta.sources.reduce((s, r) => s + r.bytes, 0),
    seconds,
  };
}

/**
 * Tokenizes the inputs into `outDir`: train/val shards and meta.json (see the file comment for
 * the layout and the holdout rule). Refuses to overwrite a finished dataset without `force`.
 */
export async function prepareDataset(opts: PrepareOptions): Promise<PrepareSummary> {
  const started = performance.now();
  const shardTokens = opts.shardTokens ?? DEFAULT_SHARD_TOKENS;
  const valTokens = opts.valTokens ?? 0;
  const textField = opts.textField ?? 'text';
  checkCount(shardTokens, '--shard-tokens', 1);
  checkCount(valTokens, '--val-tokens', 0);
  if (shardTokens > 0x7fffffff) throw badInput(`${shardTokens} does not fit the int32 shard header`, { field: '--shard-tokens', fix: 'use at most 2147483647' });

  const metaPath = join(opts.outDir, 'meta.json');
  if (existsSync(metaPath)) {
    if (opts.ifMissing) {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as DatasetMeta;
      return summaryFromMeta(opts.outDir, meta, (performance.now() - started) / 1000);
    }
    if (!opts.force) {
      throw badInput('already holds a prepared dataset', { file: metaPath, fix: 'pass --force to overwrite it or --if-missing to keep it' });
    }
  }
  const tokenizer: Tokenizer = await loadTokenizer(opts.tokenizer);
  const sources = resolveInputs(opts.inputs, opts.stdinFormat);
  const variant = variantForVocab(tokenizer.vocabSize);
  mkdirSync(opts.outDir, { recursive: true });
  // Shards left by an earlier run (finished and forced, or crashed before meta.json) would mix in.
  clearOldDataset(opts.outDir);

  const train = new ShardSeries(opts.outDir, 'train', variant, shardTokens);
  const val = new ShardSeries(opts.outDir, 'val', variant, shardTokens);
  const tail: Uint32Array[] = [];
  let tailTokens = 0;
  const progress: PrepareProgress = { bytesRead: 0, totalBytes: sources.reduce((s, f) => s + f.size, 0), tokens: 0, documents: 0 };
  const records: SourceRecord[] = [];

  /** Takes encoded documents in input order: eot first, then the tail-buffer holdout. */
  const sink = (result: EncodeResult) => {
    let at = 0;
    for (const n of result.lengths) {
      const doc = new Uint32Array(n + 1);
      doc[0] = tokenizer.eotToken;
      doc.set(result.ids.subarray(at, at + n), 1);
      at += n;
      tail.push(doc);
      tailTokens += doc.length;
      // Keep in the tail only the documents that may still be among the last valTokens tokens.
      while (tail.length > 0 && tailTokens - tail[0].length >= valTokens) {
        const out = tail.shift()!;
        tailTokens -= out.length;
        train.append(out);
        train.documents += 1;
      }
      progress.tokens += doc.length;
      progress.documents += 1;
    }
    opts.onProgress?.(progress);
  };

  const pool = await TokenizePool.create(tokenizer, chooseWorkers(opts.workers ?? 0, tokenizer.name, progress.totalBytes));
  const inFlight: Array<Promise<EncodeResult>> = [];
  let batch: string[] = [];
  let batchChars = 0;
  let batchId = 0;
  const submit = () => {
    if (batch.length === 0) return;
    const pending = pool.encode({ id: batchId++, texts: batch });
    pending.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
    inFlight.push(pending);
    batch = [];
    batchChars = 0;
  };
  const drain = async (keep: number) => {
    while (inFlight.length > keep) sink(await inFlight.shift()!);
  };
  try {
    for (let i = 0; i < sources.length; i++) {
      const docs = readSource(sources[i], i, { textField, stdin: opts.stdin, onBytes: (n) => (progress.bytesRead += n) });
      for (;;) {
        const next = await docs.next();
        if (next.done) {
          records.push(next.value);
          break;
        }
        batch.push(next.value.text);
        batchChars += next.value.text.length;
        if (batchChars >= (opts.batchChars ?? BATCH_CHARS)) {
          submit();
          await drain(2 * pool.size);
        }
      }
    }
    submit();
    await drain(0);
    if (progress.documents === 0) {
      throw badInput('the inputs hold no text', { field: '--input', fix: 'check the files (empty .txt files and blank JSONL lines are skipped)' });
    }
    if (train.tokens === 0) {
      throw badInput(`holding out ${valTokens} validation tokens leaves nothing to train on (the inputs have ${progress.tokens} tokens)`, {
        field: '--val-tokens',
        fix: `use a value well below ${progress.tokens}`,
      });
    }
    for (const doc of tail) {
      val.append(doc);
      val.documents += 1;
    }
    train.close();
    val.close();
  } catch (err) {
    train.abort();
    val.abort();
    throw err;
  } finally {
    await pool.close();
  }

  const meta: DatasetMeta = {
    format: META_FORMAT,
    tokenizer: { name: tokenizer.name, vocab_size: tokenizer.vocabSize, eot_token: tokenizer.eotToken },
    shard: { variant, tokens_per_shard: shardTokens },
    eot_placement: 'before_each_document',
    val_holdout: 'last_documents',
    text_field: textField,
    train: { tokens: train.tokens, documents: train.documents, files: train.files },
    val: { tokens: val.tokens, documents: val.documents, files: val.files, requested_tokens: valTokens },
    sources: records,
  };
  writeFileAtomic(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
  return {
    ...summaryFromMeta(opts.outDir, meta, (performance.now() - started) / 1000),
    skipped: false,
  };
}
