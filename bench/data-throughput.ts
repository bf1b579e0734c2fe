/**
 * Data-layer throughput on the SOTU corpus (10.8 MB of English, 233 documents):
 *   - the tokenizer alone, in-process (encode every document, no I/O), cold and warm;
 *   - `prepare` end to end (read, tokenize, write shards) per tokenizer, with 1 and 2 worker
 *     threads, in a fresh process, on SOTU and on SOTU ×4 (43 MB JSONL): MB/s and tokens/s;
 *   - shard reads: sequential 64Ki-token windows over the byte-level train shard, and random
 *     training micro-batches (8 × 256) from the sampler.
 *
 *   node --import tsx bench/data-throughput.ts [--quick]
 * Prints a table and writes bench/results/data.json. --quick skips the 2-worker runs and the 43 MB input.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTokenDataset } from '../src/data/dataset.js';
import type { PrepareSummary } from '../src/data/prepare.js';
import { trainBatch } from '../src/data/sampler.js';
import { loadTokenizer } from '../src/data/tokenizers/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOTU = join(ROOT, 'node_modules', '@stdlib', 'datasets-sotu', 'data');
const quick = process.argv.includes('--quick');

interface Row {
  what: string;
  tokenizer?: string;
  workers?: number;
  seconds: number;
  mb_per_s?: number;
  tokens_per_s: number;
  tokens: number;
}

const rows: Row[] = [];
const texts = readdirSync(SOTU)
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => readFileSync(join(SOTU, f), 'utf8'));
const textMB = texts.reduce((s, t) => s + Buffer.byteLength(t), 0) / 1e6;

// 1. The tokenizer alone: the first pass (cold: gpt-tokenizer memoizes merges, which speeds up
// repeated words as a long run goes on) and the best later pass (warm).
for (const name of ['byte', 'gpt2', 'cl100k']) {
  const tok = await loadTokenizer(name);
  const passes: number[] = [];
  let tokens = 0;
  for (let pass = 0; pass < (quick ? 1 : 3); pass++) {
    const t0 = performance.now();
    tokens = 0;
    for (const t of texts) tokens += tok.encode(t).length;
    passes.push((performance.now() - t0) / 1000);
  }
  const cold = passes[0];
  rows.push({ what: 'encode in-process, cold', tokenizer: name, workers: 1, seconds: cold, mb_per_s: textMB / cold, tokens_per_s: tokens / cold, tokens });
  if (passes.length > 1) {
    const warm = Math.min(...passes.slice(1));
    rows.push({ what: 'encode in-process, warm', tokenizer: name, workers: 1, seconds: warm, mb_per_s: textMB / warm, tokens_per_s: tokens / warm, tokens });
  }
}

// 2. prepare end to end through the CLI in a fresh process (cold tokenizer caches, worker start-up
// included, as a user sees it), on SOTU and on SOTU ×4 as one JSONL file (43 MB).
const scratch = mkdtempSync(join(tmpdir(), 'soap-bench-data-'));
const big = join(scratch, 'sotu4.jsonl');
writeFileSync(big, [0, 1, 2, 3].flatMap((rep) => texts.map((t) => JSON.stringify({ text: `${t} [${rep}]` }))).join('\n'));
const byteOut = join(scratch, 'byte-sotu-w1');
const corpora: Array<[string, string]> = [['sotu', SOTU], ['sotu×4', big]];
for (const name of ['byte', 'gpt2']) {
  for (const [label, input] of corpora) {
    if (quick && label !== 'sotu') continue;
    for (const workers of quick ? [1] : [1, 2]) {
      const outDir = join(scratch, `${name}-${label === 'sotu' ? 'sotu' : 'big'}-w${workers}`);
      const args = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'prepare.ts'), '--input', input, '--out', outDir, '--tokenizer', name, '--val-tokens', '100000', '--workers', String(workers), '--json', '--no-progress'];
      const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`prepare failed: ${r.stderr}`);
      const s = JSON.parse(r.stdout) as PrepareSummary;
      const tokens = s.train.tokens + s.val.tokens;
      rows.push({ what: `prepare ${label} (fresh process)`, tokenizer: name, workers, seconds: s.seconds, mb_per_s: s.bytes / 1e6 / s.seconds, tokens_per_s: tokens / s.seconds, tokens });
    }
  }
}

// 3. Shard reads over the byte-level train shard (10.2M tokens, 20 MB of uint16).
{
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [byteOut], vocabSize: 256 });
  const window = 1 << 16;
  const t0 = performance.now();
  let tokens = 0;
  for (let at = 0; at + window <= ds.numTokens; at += window) tokens += ds.read(at, window).length;
  const seq = (performance.now() - t0) / 1000;
  rows.push({ what: 'read sequential 64Ki windows', seconds: seq, mb_per_s: (tokens * 2) / 1e6 / seq, tokens_per_s: tokens / seq, tokens });

  const batches = quick ? 500 : 2000;
  const t1 = performance.now();
  for (let step = 0; step < batches; step++) trainBatch(ds, { seed: 1, step, micro: 0, batchSize: 8, seqLen: 256 });
  const rnd = (performance.now() - t1) / 1000;
  const n = batches * 8 * 257;
  rows.push({ what: 'trainBatch 8×256 (random windows)', seconds: rnd, tokens_per_s: n / rnd, tokens: n });
  ds.close();
}
rmSync(scratch, { recursive: true, force: true });

const fmt = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
console.log(`SOTU: ${texts.length} documents, ${textMB.toFixed(2)} MB; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`);
console.log('what                               tokenizer  workers   seconds    MB/s      Mtok/s');
for (const r of rows) {
  console.log(
    `${r.what.padEnd(35)}${(r.tokenizer ?? '-').padEnd(11)}${String(r.workers ?? '-').padEnd(8)}${fmt(r.seconds, 3).padStart(8)}${fmt(r.mb_per_s).padStart(9)}${fmt(r.tokens_per_s / 1e6, 2).padStart(11)}`,
  );
}
const out = join(ROOT, 'bench', 'results', 'data.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cores: availableParallelism(), cpu: cpus()[0]?.model, corpus: { documents: texts.length, mb: textMB }, quick, rows }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
