/**
 * Batches as pure functions of their coordinates: no loader state, so a resumed run (or a second
 * run with the same seed) sees exactly the same tokens at the same step.
 *
 * Training: row r of micro-batch m at step s starts at a window drawn uniformly from
 * `[0, numTokens - seqLen - 1]` by a counter-based hash of (seed, step, micro, row): sampling with
 * replacement, windows may cross shard and document boundaries (documents are separated by the
 * end-of-text token, which the model learns to condition on, as in llm.c / nanoGPT).
 *
 * Evaluation: window k = index · batchSize + row starts at ⌊frac(k · φ⁻¹) · starts⌋ (φ⁻¹ =
 * (√5 − 1)/2, a Weyl / golden-ratio sequence): the same windows at every evaluation, and the first
 * K windows spread evenly over the whole validation set for any K, so the number of eval steps
 * need not be known here.
 */
import { badInput } from '../errors.js';
import type { TokenDataset } from './dataset.js';

export interface Batch {
  /** Row-major [batchSize, seqLen] token ids. */
  inputs: Int32Array;
  /** Row-major [batchSize, seqLen]: `inputs` shifted left by one (the next token). */
  targets: Int32Array;
}

export interface TrainBatchOptions {
  seed: number;
  step: number;
  /** Micro-batch index within the step (gradient accumulation). */
  micro: number;
  batchSize: number;
  seqLen: number;
}

export interface EvalBatchOptions {
  /** Eval batch number 0, 1, 2, … */
  index: number;
  batchSize: number;
  seqLen: number;
}

/** murmur3's 32-bit finalizer: a bijection that avalanches every input bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mixes 32-bit words into one 32-bit hash (murmur3's block step on each word). */
function hashWords(words: number[], init: number): number {
  let h = init >>> 0;
  for (const w of words) {
    let k = Math.imul(w >>> 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ (words.length * 4));
}

/** Low and high 32 bits of a non-negative safe integer (seeds and steps may exceed 2³²). */
function split(n: number): [number, number] {
  return [n % 0x100000000 >>> 0, Math.floor(n / 0x100000000) >>> 0];
}

/**
 * A uniform double in [0, 1) from the counter (seed, step, micro, row): two independent 32-bit
 * hashes give 53 random bits. Pure: the same counter always gives the same number.
 */
export function counterUniform(seed: number, step: number, micro: number, row: number): number {
  const words = [...split(seed), ...split(step), micro >>> 0, row >>> 0];
  const hi = hashWords(words, 0x9e3779b9) >>> 5; // 27 bits
  const lo = hashWords(words, 0x7f4a7c15) >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992; // (hi·2²⁶ + lo) / 2⁵³
}

/** Number of valid window starts for windows of seqLen + 1 tokens; throws when there are none. */
function windowStarts(ds: TokenDataset, seqLen: number, what: string): number {
  const starts = ds.numTokens - seqLen;
  if (starts < 1) {
    const first = ds.files[0] ?? '(no files)';
    throw badInput(`${what} data holds ${ds.numTokens} tokens, fewer than seq_len + 1 = ${seqLen + 1}`, {
      file: first,
      field: 'train.seq_len',
      fix: 'lower train.seq_len or prepare more data',
    });
  }
  return starts;
}

function checkShape(batchSize: number, seqLen: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`batchSize ${batchSize} and seqLen ${seqLen} must be positive integers`);
  }
}

/** Fills a batch from window start offsets: inputs = w[0..T), targets = w[1..T]. */
function gather(ds: TokenDataset, starts: number[], seqLen: number): Batch {
  const inputs = new Int32Array(starts.length * seqLen);
  const targets = new Int32Array(starts.length * seqLen);
  starts.forEach((start, row) => {
    const w = ds.read(start, seqLen + 1);
    inputs.set(w.subarray(0, seqLen), row * seqLen);
    targets.set(w.subarray(1), row * seqLen);
  });
  return { inputs, targets };
}

/** Window starts of a training micro-batch (exported for tests and inspection). */
export function trainWindowStarts(numTokens: number, opts: TrainBatchOptions): number[] {
  const starts = numTokens - opts.seqLen;
  const out: number[] = [];
  for (let row = 0; row < opts.batchSize; row++) {
    out.push(Math.floor(counterUniform(opts.seed, opts.step, opts.micro, row) * starts));
  }
  return out;
}

/**
 * The training micro-batch for (seed, step, micro): `batchSize` windows of `seqLen + 1` tokens at
 * hash-drawn starts; `targets[b, t] = inputs[b, t + 1]` within each window.
 */
export function trainBatch(ds: TokenDataset, opts: TrainBatchOptions): Batch {
  checkShape(opts.batchSize, opts.seqLen);
  windowStarts(ds, opts.seqLen, 'training');
  return gather(ds, trainWindowStarts(ds.numTokens, opts), opts.seqLen);
}

/** Golden-ratio conjugate (√5 − 1) / 2. */
const PHI_CONJ = 0.6180339887498949;

/** Window starts of eval batch `index` (exported for tests). */
export function evalWindowStarts(numTokens: number, opts: EvalBatchOptions): number[] {
  const starts = numTokens - opts.seqLen;
  const out: number[] = [];
  for (let row = 0; row < opts.batchSize; row++) {
    const k = opts.index * opts.batchSize + row;
    const u = (k * PHI_CONJ) % 1;
    out.push(Math.min(starts - 1, Math.floor(u * starts)));
  }
  return out;
}

/**
 * Validation batch `index`: fixed windows spread over the validation set by a golden-ratio
 * sequence (the same at every evaluation), `targets` the inputs shifted by one.
 */
export function evalBatch(ds: TokenDataset, opts: EvalBatchOptions): Batch {
  checkShape(opts.batchSize, opts.seqLen);
  windowStarts(ds, opts.seqLen, 'validation');
  return gather(ds, evalWindowStarts(ds.numTokens, opts), opts.seqLen);
}
