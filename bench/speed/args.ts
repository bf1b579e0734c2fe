/**
 * Command-line flags of `npm run bench` (bench/speed.ts), parsed into plain options.
 */
import { OPTIMIZER_NAMES, SHAPES } from './cases.js';

export interface SpeedOptions {
  shapes: string[];
  optimizers: string[];
  /** Override every shape's steps / warm-up (else the shape's own, or its quick ones). */
  steps: number | null;
  warmup: number | null;
  quick: boolean;
  peer: boolean;
  peerThreads: number[];
  /** Wall-clock budget in seconds: a case (ours or the peer's) is not started past it. */
  budgetS: number;
  /** Kill a single case after this many seconds. */
  caseTimeoutS: number;
  backend: 'wasm' | 'cpu' | 'tensorflow';
  out: string;
  /** Print the tables as Markdown (for bench/NOTES.md). */
  markdown: boolean;
  help: boolean;
}

export const USAGE = `npm run bench -- [options]      (node --import tsx bench/speed.ts [options])

Tokens/s, model FLOP utilisation, per-step split, optimizer cost ÷ AdamW's, time to first step
and peak RSS for each (shape, optimizer), next to the PyTorch peer on the same shapes. Prints a
table and writes bench/results/speed.json.

  --quick                 fewer steps per case and for the peer (~3 minutes here)
  --shapes a,b            shapes to run: ${SHAPES.map((s) => s.name).join(', ')} (default: all)
  --optimizers a,b        ${OPTIMIZER_NAMES.join(', ')} (default: all; keep adamw for the ratios)
  --steps N               steps per case for every shape (default: per shape, e.g. 40 for tiny)
  --warmup N              leading steps left out of the statistics (default: per shape)
  --no-peer               skip the PyTorch peer
  --peer-threads 1,2      torch thread counts to run the peer with (default 1,2)
  --budget-s S            start no case after S seconds (default 600)
  --case-timeout-s S      kill one case after S seconds (default 300)
  --backend NAME          wasm (default), cpu or tensorflow
  --out FILE              JSON output (default bench/results/speed.json)
  --markdown              print the tables as Markdown (to paste into bench/NOTES.md)`;

function list(value: string, allowed: readonly string[], flag: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((x) => !allowed.includes(x));
  if (bad.length || items.length === 0) throw new Error(`${flag}: expected some of ${allowed.join(', ')}, got '${value}'`);
  return items;
}

function positiveInt(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer ≥ ${min}, got '${value}'`);
  return n;
}

export function parseSpeedArgs(argv: readonly string[]): SpeedOptions {
  const o: SpeedOptions = {
    shapes: SHAPES.map((s) => s.name),
    optimizers: [...OPTIMIZER_NAMES],
    steps: null,
    warmup: null,
    quick: false,
    peer: true,
    peerThreads: [1, 2],
    budgetS: 600,
    caseTimeoutS: 300,
    backend: 'wasm',
    out: 'bench/results/speed.json',
    markdown: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--quick') o.quick = true;
    else if (flag === '--no-peer') o.peer = false;
    else if (flag === '--markdown') o.markdown = true;
    else if (flag === '--help' || flag === '-h') o.help = true;
    else if (flag === '--shapes') o.shapes = list(value(), SHAPES.map((s) => s.name), flag);
    else if (flag === '--optimizers') o.optimizers = list(value(), OPTIMIZER_NAMES, flag);
    else if (flag === '--steps') o.steps = positiveInt(value(), flag);
    else if (flag === '--warmup') o.warmup = positiveInt(value(), flag, 0);
    else if (flag === '--peer-threads') o.peerThreads = value().split(',').map((t) => positiveInt(t, flag));
    else if (flag === '--budget-s') o.budgetS = positiveInt(value(), flag);
    else if (flag === '--case-timeout-s') o.caseTimeoutS = positiveInt(value(), flag);
    else if (flag === '--backend') o.backend = list(value(), ['wasm', 'cpu', 'tensorflow'], flag)[0] as SpeedOptions['backend'];
    else if (flag === '--out') o.out = value();
    else throw new Error(`unknown option ${flag} (see --help)`);
  }
  if (o.steps !== null && o.warmup !== null && o.warmup >= o.steps) throw new Error(`--warmup ${o.warmup} leaves no measured step of --steps ${o.steps}`);
  return o;
}

/** Steps and warm-up of a shape under the options (the window is steps warmup+1..steps). */
export function stepsFor(shape: { steps: number; warmup: number; quick: { steps: number; warmup: number } }, o: SpeedOptions): { steps: number; warmup: number } {
  const base = o.quick ? shape.quick : shape;
  const steps = o.steps ?? base.steps;
  const warmup = Math.min(o.warmup ?? base.warmup, steps - 1);
  return { steps, warmup };
}
