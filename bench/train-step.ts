/**
 * Per-step time of the tiny config's full training step (forward+backward, clipping, optimizer)
 * for every registered optimizer, on wasm (and cpu with --cpu), with the optimizer's share and
 * the share spent refreshing eigenbases / inverse roots.
 *
 *   node --import tsx bench/train-step.ts [--steps 30] [--cpu] [--config configs/tiny-adamw.yaml]
 *                                         [--optimizers adamw,soap]
 * Prints a table and writes bench/results/train-step.json. Batches are synthetic (a fixed
 * token pattern): the data path is timed separately in the run directory's metrics.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../src/backend/select.js';
import { loadConfig, parseOverride } from '../src/config/load.js';
import { initParams } from '../src/model/index.js';
import { createOptimizer, OPTIMIZERS } from '../src/optim/registry.js';
import { tf } from '../src/tf.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { trainStep } from '../src/train/step.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const steps = Number(flag('--steps', '30'));
const configFile = flag('--config', 'configs/tiny-adamw.yaml');
const backends = argv.includes('--cpu') ? ['wasm', 'cpu'] : ['wasm'];
const only = flag('--optimizers', OPTIMIZERS.map((e) => e.name).join(',')).split(',');
const { config } = loadConfig(configFile, [parseOverride('data.train=x'), parseOverride('data.val=x')]);
const t = config.train;
const micro = t.micro_batch_size ?? t.batch_size;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: Array<Record<string, string | number>> = [];

const pool = new LinalgPool();
for (const backend of backends) {
  await selectBackend(backend as 'wasm' | 'cpu');
  const n = backend === 'cpu' ? Math.min(steps, 3) : steps;
  for (const entry of OPTIMIZERS.filter((e) => only.includes(e.name))) {
    const section = entry.name === config.optimizer.type ? config.optimizer : { type: entry.name, lr: config.optimizer.lr, decay: 'matrices' };
    const params = initParams(config.model, { seed: 0, namePrefix: `${backend}-${entry.name}/` });
    const optimizer = createOptimizer(section as { type: string });
    const tokens = Int32Array.from({ length: micro * t.seq_len }, (_, i) => (i * 7919 + 13) % config.model.vocab_size);
    const batch = () => ({ inputs: tokens, targets: tokens.map((x) => (x + 1) % config.model.vocab_size) });
    const total: number[] = [];
    const split = { fwd_bwd: 0, optim: 0, refresh: 0, refreshSteps: 0 };
    for (let s = 0; s <= n; s++) {
      const start = performance.now();
      const r = await trainStep({ params, model: config.model, optimizer, lr: 1e-3, gradClip: 1, microBatches: t.batch_size / micro, microBatchSize: micro, seqLen: t.seq_len, batch, hostWork: { pool } });
      if (s === 0) continue; // warm-up (and SOAP's skipped first call)
      total.push(performance.now() - start);
      split.fwd_bwd += r.times.fwd_bwd_ms;
      split.optim += r.times.optim_ms;
      split.refresh += r.times.refresh_ms;
      if (r.times.refresh_ms > 0) split.refreshSteps += 1;
    }
    const sum = total.reduce((a, b) => a + b, 0);
    const row = {
      backend,
      optimizer: entry.name,
      steps: n,
      step_ms_median: +median(total).toFixed(1),
      step_ms_mean: +(sum / n).toFixed(1),
      fwd_bwd_share: +(split.fwd_bwd / sum).toFixed(3),
      optim_share: +(split.optim / sum).toFixed(3),
      refresh_share: +(split.refresh / sum).toFixed(3),
      refresh_ms_per_refresh: split.refreshSteps ? +(split.refresh / split.refreshSteps).toFixed(1) : 0,
      tokens_per_s: Math.round((t.batch_size * t.seq_len * n) / (sum / 1000)),
    };
    rows.push(row);
    optimizer.dispose();
    tf.dispose(Object.values(params));
  }
}

console.table(rows);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'train-step.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ config: configFile, when: new Date().toISOString(), rows }, null, 2)}\n`);
console.log(`wrote ${out}`);
