/**
 * Table-driven over the registry (the list `soap-train optimizers` prints): every optimizer
 * trains the same tiny language model through the trainer's own step (accumulation, clipping)
 * and lowers its loss on held-out text, with a constant tensor count across refresh steps.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { modelSchema } from '../src/model/config.js';
import { initParams, lossTerms } from '../src/model/index.js';
import { createOptimizer, OPTIMIZERS, tf } from '../src/index.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { trainStep } from '../src/train/step.js';
import { shortRunOptions } from './helpers/optimizers.js';
import { sampleText } from './helpers/tiny-run.js';

const model = modelSchema.parse({ vocab_size: 256, d_model: 16, n_layers: 1, n_heads: 2, mlp_hidden: 32 });
const SEQ = 16;
const ROWS = 4;
const text = sampleText(4000);

/** Rows of SEQ+1 bytes starting at `offsets`: inputs and next-byte targets. */
function batchAt(offsets: number[]) {
  const inputs = new Int32Array(offsets.length * SEQ);
  const targets = new Int32Array(offsets.length * SEQ);
  offsets.forEach((o, r) => {
    for (let i = 0; i < SEQ; i++) {
      inputs[r * SEQ + i] = text[o + i];
      targets[r * SEQ + i] = text[o + i + 1];
    }
  });
  return { inputs, targets };
}

function heldOutLoss(params: Record<string, tf.Variable>): number {
  const b = batchAt([3001, 3203, 3407, 3611]);
  return tf.tidy(() => {
    const x = tf.tensor2d(b.inputs, [ROWS, SEQ], 'int32');
    const y = tf.tensor2d(b.targets, [ROWS, SEQ], 'int32');
    return lossTerms(params, x, y, model).ce.dataSync()[0];
  });
}

const pool = new LinalgPool();
after(() => pool.terminate());

for (const entry of OPTIMIZERS) {
  test(`${entry.name} lowers a tiny language model's held-out loss`, async () => {
    const params = initParams(model, { seed: 5, namePrefix: `lm_${entry.name}.` });
    const optimizer = createOptimizer({ type: entry.name, lr: 1e-2, ...shortRunOptions(entry) });
    const before = heldOutLoss(params);
    const counts: number[] = [];
    for (let step = 0; step < 30; step++) {
      await trainStep({
        params,
        model,
        optimizer,
        lr: 1e-2,
        gradClip: 1,
        microBatches: 2,
        microBatchSize: ROWS / 2,
        seqLen: SEQ,
        batch: (i) => batchAt([0, 1, 2, 3].slice(i * 2, i * 2 + 2).map((r) => (step * 97 + r * 701) % 2900)),
        hostWork: { pool },
      });
      counts.push(tf.memory().numTensors);
    }
    const after = heldOutLoss(params);
    assert.ok(after < before - 0.5, `${entry.name}: held-out loss ${before.toFixed(3)} → ${after.toFixed(3)}`);
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `${entry.name}: tensor counts ${counts.join(',')}`);
    optimizer.dispose();
    tf.dispose(Object.values(params));
  });
}
