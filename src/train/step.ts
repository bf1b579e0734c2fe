/**
 * One optimizer step: forward+backward over the micro-batches with gradient accumulation,
 * global-norm clipping, a finiteness check, and the optimizer update.
 *
 * Everything allocated here is disposed before returning (the tensor count after step N equals
 * the count after step 1); the only host syncs are one read of [loss, ce, ‖g‖] per step. The
 * event loop runs between micro-batches and between parameters' updates, so a stop request is
 * seen within one micro-batch or one parameter's update (seconds at 360m width on wasm).
 */
import { tf } from '../tf.js';
import type { ModelConfig } from '../model/config.js';
import { lossTerms } from '../model/index.js';
import type { AsyncStepOptions, RuleOptimizer } from '../optim/rule-optimizer.js';

type Tensor = tf.Tensor;

export interface MicroBatch {
  /** Row-major [rows, seqLen] token ids. */
  inputs: Int32Array;
  targets: Int32Array;
}

export interface StepInputs {
  params: Record<string, tf.Variable>;
  model: ModelConfig;
  optimizer: RuleOptimizer;
  /** Where the optimizer's host linear algebra runs (the worker pool), and its progress. */
  hostWork: AsyncStepOptions;
  /** Learning rate of this step (peak × schedule factor). */
  lr: number;
  /** Clip the global gradient norm to this; 0 = no clipping. */
  gradClip: number;
  microBatches: number;
  microBatchSize: number;
  seqLen: number;
  /** Builds micro-batch `i` of this step (timed as data). */
  batch(i: number): MicroBatch;
}

export interface StepTimes {
  data_ms: number;
  fwd_bwd_ms: number;
  optim_ms: number;
  /** Eigenbasis / inverse-root refresh inside the optimizer (part of optim_ms). */
  refresh_ms: number;
}

export interface StepResult {
  /** Mean of (cross-entropy + z-loss) over the batch: what was differentiated. */
  loss: number;
  /** Mean cross-entropy over the batch (nats per token). */
  ce: number;
  /** Global L2 norm of the averaged gradient before clipping. */
  gradNorm: number;
  /** False when the loss or gradient was not finite; the update was then not applied. */
  applied: boolean;
  times: StepTimes;
}

/**
 * Runs one step and applies it unless the loss or gradient is non-finite. The optimizer's host
 * linear algebra (eigenbases, roots) runs in `s.hostWork.pool`, off this thread.
 */
export async function trainStep(s: StepInputs): Promise<StepResult> {
  const times: StepTimes = { data_ms: 0, fwd_bwd_ms: 0, optim_ms: 0, refresh_ms: 0 };
  const names = Object.keys(s.params);
  const varList = names.map((n) => s.params[n]);
  let gradSum: Record<string, Tensor> = {};
  let lossSum: Tensor = tf.scalar(0);
  let ceSum: Tensor = tf.scalar(0);

  for (let i = 0; i < s.microBatches; i++) {
    let start = performance.now();
    const mb = s.batch(i);
    times.data_ms += performance.now() - start;

    start = performance.now();
    const x = tf.tensor2d(mb.inputs, [s.microBatchSize, s.seqLen], 'int32');
    const y = tf.tensor2d(mb.targets, [s.microBatchSize, s.seqLen], 'int32');
    let ce: Tensor | null = null;
    const { value, grads: byVarName } = tf.variableGrads(() => {
      const terms = lossTerms(s.params, x, y, s.model);
      ce = tf.keep(terms.ce);
      return terms.loss;
    }, varList);
    // variableGrads keys by the tf.Variable's name, which may carry a prefix: re-key by param name.
    const grads = Object.fromEntries(names.map((n) => [n, byVarName[s.params[n].name]]));
    const next = tf.tidy(() => ({
      loss: tf.add(lossSum, value),
      ce: tf.add(ceSum, ce as unknown as Tensor),
      grads: i === 0 ? grads : Object.fromEntries(names.map((n) => [n, tf.add(gradSum[n], grads[n])])),
    }));
    tf.dispose([x, y, value, ce as unknown as Tensor, lossSum, ceSum]);
    if (i > 0) tf.dispose([...Object.values(gradSum), ...Object.values(grads)]);
    lossSum = next.loss;
    ceSum = next.ce;
    gradSum = next.grads;
    times.fwd_bwd_ms += performance.now() - start;
    if (i + 1 < s.microBatches) {
      // Let signals and timers run between micro-batches; an abort here applies nothing.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (s.hostWork.signal?.aborted) {
        tf.dispose([...Object.values(gradSum), lossSum, ceSum]);
        s.hostWork.signal.throwIfAborted();
      }
    }
  }

  let start = performance.now();
  const inv = 1 / s.microBatches;
  const { grads, stats } = tf.tidy(() => {
    const mean = Object.fromEntries(names.map((n) => [n, tf.mul(gradSum[n], inv)]));
    const sq = names.map((n) => tf.sum(tf.square(mean[n])));
    const norm = tf.sqrt(tf.addN(sq));
    return { grads: mean, stats: tf.stack([tf.mul(lossSum, inv), tf.mul(ceSum, inv), norm]) };
  });
  tf.dispose([...Object.values(gradSum), lossSum, ceSum]);
  const [loss, ce, gradNorm] = stats.dataSync();
  stats.dispose();
  times.fwd_bwd_ms += performance.now() - start;

  const applied = Number.isFinite(loss) && Number.isFinite(gradNorm);
  try {
    if (applied) {
      start = performance.now();
      // torch.nn.utils.clip_grad_norm_: scale by max_norm/(norm+1e-6) when that is below 1.
      const scale = s.gradClip > 0 ? Math.min(1, s.gradClip / (gradNorm + 1e-6)) : 1;
      const byVariable: Record<string, Tensor> = {};
      for (const n of names) byVariable[s.params[n].name] = scale < 1 ? tf.mul(grads[n], scale) : grads[n];
      s.optimizer.learningRate = s.lr;
      try {
        await s.optimizer.applyGradientsAsync(byVariable, s.hostWork);
      } finally {
        if (scale < 1) tf.dispose(Object.values(byVariable));
      }
      times.optim_ms = performance.now() - start;
      times.refresh_ms = s.optimizer.lastPhaseTimes.refresh ?? 0;
    }
  } finally {
    tf.dispose(Object.values(grads));
  }
  return { loss, ce, gradNorm, applied, times };
}
