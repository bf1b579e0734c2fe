/**
 * The shapes `npm run bench` measures and how many steps each runs. A case is one (shape,
 * optimizer): the optimizer's shipped tiny config (configs/tiny-<optimizer>.yaml, so SOAP and
 * Shampoo refresh every 10 steps) with the shape's `--set` overrides on top, on the shipped
 * byte-level data (data/sotu-byte).
 */

export interface BenchShape {
  /** Name on the command line and in the table. */
  name: string;
  /** What it is, for the notes. */
  about: string;
  /** `--set` overrides on top of configs/tiny-<optimizer>.yaml. */
  overrides: string[];
  /** Model and batch, for the PyTorch peer's flags (must equal what the overrides give). */
  model: { d_model: number; n_layers: number; n_heads: number; mlp_hidden: number; vocab_size: number };
  batch: { batch_size: number; seq_len: number };
  /** Steps run per case, and the first `warmup` of them left out of the statistics. */
  steps: number;
  warmup: number;
  /** Steps and warm-up of --quick. */
  quick: { steps: number; warmup: number };
}

/** Every case ends with evaluation and checkpoints off: the runner drives trainStep directly. */
export const SHAPES: readonly BenchShape[] = [
  {
    name: 'tiny',
    about: 'configs/tiny.yaml: d_model 128, 4 layers, 4 heads, MLP 512, vocab 256, batch 16 × 128',
    overrides: [],
    model: { d_model: 128, n_layers: 4, n_heads: 4, mlp_hidden: 512, vocab_size: 256 },
    batch: { batch_size: 16, seq_len: 128 },
    // The convention: 40 steps, statistics over steps 11–40 (3 refreshes at frequency 10).
    steps: 40,
    warmup: 10,
    quick: { steps: 15, warmup: 5 },
  },
  {
    name: 'small',
    about: 'd_model 256, 6 layers, 4 heads, MLP 1024, vocab 256, batch 8 × 256 (the issue\'s "~10M" shape: 4.85M parameters with the byte vocabulary)',
    overrides: ['model.d_model=256', 'model.n_layers=6', 'model.n_heads=4', 'model.mlp_hidden=1024', 'train.seq_len=256', 'train.batch_size=8'],
    model: { d_model: 256, n_layers: 6, n_heads: 4, mlp_hidden: 1024, vocab_size: 256 },
    batch: { batch_size: 8, seq_len: 256 },
    // ~5 s a step here: steps 3–12 are ten steps with one refresh at frequency 10, in about a
    // minute per optimizer (the first step is the slow one; the second is already steady).
    steps: 12,
    warmup: 2,
    quick: { steps: 6, warmup: 2 },
  },
];

export const OPTIMIZER_NAMES = ['adamw', 'soap', 'shampoo', 'adafactor'] as const;

/** The config file a case starts from. */
export function caseConfigFile(optimizer: string): string {
  return `configs/tiny-${optimizer}.yaml`;
}
