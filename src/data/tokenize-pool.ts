/**
 * Tokenization across worker threads with output identical to one thread.
 *
 * Documents are grouped into batches of about `batchBytes` of text in input order; batch i goes
 * to a free worker and the results are handed back strictly in batch order, so the token stream
 * does not depend on the number of workers or their timing (each document is encoded on its
 * own, and encoding is a pure function of the text). At most `2 × workers` batches are in flight,
 * which bounds memory whatever the input size. With one worker everything runs inline.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Tokenizer } from './tokenizers/index.js';

export interface EncodeRequest {
  id: number;
  texts: string[];
}

export interface EncodeResult {
  id: number;
  /** All documents' ids, back to back. */
  ids: Uint32Array;
  /** Token count of each document. */
  lengths: number[];
}

/** Encodes a batch of documents into one flat array (the worker's job, also used inline). */
export function encodeBatch(tokenizer: Tokenizer, req: EncodeRequest): EncodeResult {
  const parts = req.texts.map((t) => tokenizer.encode(t));
  const lengths = parts.map((p) => p.length);
  const ids = new Uint32Array(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const p of parts) {
    ids.set(p, at);
    at += p.length;
  }
  return { id: req.id, ids, lengths };
}

/**
 * Worker count for `requested` (0 = auto). Auto: one thread per core, at most 8, for 32 MB or
 * more of BPE input; one thread otherwise. Measured on 2 cores (bench/data-throughput.ts): worker
 * start-up (~0.3 s each under tsx) and the main thread's own share (reading, JSON, writing) make
 * 2 workers slower than 1 on SOTU's 10.8 MB and ~10% faster on 43 MB; the byte tokenizer
 * (1 GB/s) never gains from messaging text to another thread.
 */
export function chooseWorkers(requested: number, tokenizer: string, inputBytes: number): number {
  if (requested > 0) return requested;
  return tokenizer !== 'byte' && inputBytes >= 32e6 ? Math.min(8, Math.max(1, availableParallelism())) : 1;
}

/**
 * How to start a worker: the compiled `tokenize-worker.js` beside this file, or, when running
 * from the TypeScript sources through tsx, a small bootstrap that registers tsx's loader inside
 * the worker first (Node 20 does not carry a parent's module hooks into worker threads).
 */
function workerSpec(): { script: URL | string; eval: boolean; entry: string; tsx?: string } {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return { script: new URL('./tokenize-worker.js', self), eval: false, entry: '' };
  const entry = new URL('./tokenize-worker.ts', self).href;
  const bootstrap = `const { workerData: d } = require('node:worker_threads');
import(d.tsx).then((m) => { m.register(); return import(d.entry); });`;
  return { script: bootstrap, eval: true, entry, tsx: import.meta.resolve('tsx/esm/api') };
}

export class TokenizePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: EncodeRequest[] = [];
  private readonly waiting = new Map<number, { resolve(r: EncodeResult): void; reject(e: unknown): void }>();
  private failure: unknown = null;

  private constructor(private readonly tokenizer: Tokenizer) {}

  /** Starts `workers` threads (or none for one worker) and waits until they are ready. */
  static async create(tokenizer: Tokenizer, workers: number): Promise<TokenizePool> {
    const pool = new TokenizePool(tokenizer);
    if (workers <= 1) return pool;
    const spec = workerSpec();
    await Promise.all(
      Array.from({ length: workers }, () => {
        const workerData = { tokenizer: tokenizer.name, entry: spec.entry, tsx: spec.tsx };
        const worker = new Worker(spec.script, { eval: spec.eval, workerData });
        pool.workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.once('error', reject);
          worker.once('message', () => {
            worker.off('error', reject);
            worker.on('message', (r: EncodeResult) => pool.onResult(worker, r));
            worker.on('error', (err) => pool.fail(err));
            pool.idle.push(worker);
            resolve();
          });
        });
      }),
    ).catch(async (err) => {
      await pool.close();
      throw err;
    });
    return pool;
  }

  get size(): number {
    return Math.max(1, this.workers.length);
  }

  /** Encodes a batch; inline (already resolved) with one worker. */
  encode(req: EncodeRequest): Promise<EncodeResult> {
    if (this.workers.length === 0) return Promise.resolve(encodeBatch(this.tokenizer, req));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      this.queue.push(req);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      this.idle.pop()!.postMessage(this.queue.shift()!);
    }
  }

  private onResult(worker: Worker, result: EncodeResult): void {
    this.idle.push(worker);
    const w = this.waiting.get(result.id);
    this.waiting.delete(result.id);
    w?.resolve(result);
    this.dispatch();
  }

  private fail(err: unknown): void {
    this.failure = err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
