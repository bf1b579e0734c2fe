/**
 * The arithmetic and flags of `npm run bench` (no timing is asserted): percentiles against
 * numpy's values, a case's window reduced by hand, the ratios, the flag parser, the table layout.
 *
 *   node --import tsx --test test/bench-speed.test.ts
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSpeedArgs, stepsFor } from '../bench/speed/args.js';
import { SHAPES } from '../bench/speed/cases.js';
import { median, percentile, ratio, summarizeCase, type StepRecord } from '../bench/speed/stats.js';
import { formatTable } from '../bench/speed/table.js';
import { countParams, flopsPerToken, modelSchema } from '../src/model/index.js';

describe('percentile', () => {
  it('interpolates linearly between order statistics, as numpy.percentile', () => {
    // numpy.percentile([4, 1, 3, 2], [10, 50, 90]) = [1.3, 2.5, 3.7]
    const xs = [4, 1, 3, 2];
    assert.ok(Math.abs(percentile(xs, 10) - 1.3) < 1e-12);
    assert.equal(median(xs), 2.5);
    assert.ok(Math.abs(percentile(xs, 90) - 3.7) < 1e-12);
    assert.equal(percentile([7], 90), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });
});

describe('summarizeCase', () => {
  // Steps 1–6: step 1 is warm-up (slow), step 4 refreshes (refresh 300 of its optim 320); step 2
  // reports the few µs of pool bookkeeping every step has, which is not a refresh.
  const step = (n: number, total: number, optim: number, refresh: number): StepRecord => ({ step: n, total_ms: total, data_ms: 2, fwd_bwd_ms: 90, optim_ms: optim, refresh_ms: refresh });
  const steps = [step(1, 900, 50, 0), step(2, 100, 8.25, 0.25), step(3, 110, 9, 0), step(4, 420, 320, 300), step(5, 104, 10, 0), step(6, 102, 12, 0)];
  const s = summarizeCase(steps, { from: 2, to: 6 }, 2048);

  it('takes the median over the refresh-free steps and the mean over all measured steps', () => {
    assert.equal(s.measured_steps, 5);
    assert.equal(s.refresh_steps, 1);
    assert.equal(s.step_ms.median, 103); // median of 100, 102, 104, 110
    assert.equal(s.step_ms.min, 100);
    assert.equal(s.step_ms.max, 110);
    assert.equal(s.step_ms_mean, (100 + 110 + 420 + 104 + 102) / 5);
  });

  it('splits the mean step so the parts add up to it', () => {
    const { data, fwd_bwd, optim, refresh, other } = s.split_ms;
    assert.equal(data, 2);
    assert.equal(fwd_bwd, 90);
    assert.equal(optim, (8 + 9 + 20 + 10 + 12) / 5); // optim without refresh
    assert.equal(refresh, 300.25 / 5);
    assert.ok(Math.abs(data + fwd_bwd + optim + refresh + other - s.step_ms_mean) < 1e-9);
    assert.equal(s.optim_ms_mean, (8.25 + 9 + 320 + 10 + 12) / 5);
    assert.equal(s.optim_ms_median, 9.5); // median of 8, 9, 10, 12
    assert.equal(s.refresh_ms_each, 300);
  });

  it('turns step times into tokens/s, the slow step giving the low end', () => {
    assert.equal(s.tokens_per_s.median, 2048 / 0.103);
    assert.ok(s.tokens_per_s.p10 < s.tokens_per_s.median && s.tokens_per_s.median < s.tokens_per_s.p90);
    assert.equal(s.tokens_per_s_mean, 2048 / (s.step_ms_mean / 1000));
  });

  it('falls back to every step when each one refreshed, and refuses an empty window', () => {
    const all = summarizeCase([step(1, 200, 100, 90), step(2, 220, 110, 95)], { from: 1, to: 2 }, 10);
    assert.equal(all.step_ms.median, 210);
    assert.throws(() => summarizeCase(steps, { from: 7, to: 9 }, 1), /no steps/);
  });
});

describe('ratio', () => {
  it('divides, or says null when a side is missing or the divisor is not positive', () => {
    assert.equal(ratio(3, 2), 1.5);
    assert.equal(ratio(null, 2), null);
    assert.equal(ratio(1, undefined), null);
    assert.equal(ratio(1, 0), null);
  });
});

describe('flags', () => {
  it('defaults to every shape and optimizer, the peer on 1 and 2 threads, a 600 s budget', () => {
    const o = parseSpeedArgs([]);
    assert.deepEqual(o.shapes, ['tiny', 'small']);
    assert.deepEqual(o.optimizers, ['adamw', 'soap', 'shampoo', 'adafactor']);
    assert.deepEqual(o.peerThreads, [1, 2]);
    assert.equal(o.budgetS, 600);
    assert.deepEqual(stepsFor(SHAPES[0], o), { steps: 40, warmup: 10 });
  });

  it('takes --quick, --steps and --warmup per run, and rejects what it cannot use', () => {
    assert.deepEqual(stepsFor(SHAPES[0], parseSpeedArgs(['--quick'])), SHAPES[0].quick);
    assert.deepEqual(stepsFor(SHAPES[1], parseSpeedArgs(['--steps', '12', '--warmup', '2'])), { steps: 12, warmup: 2 });
    assert.deepEqual(parseSpeedArgs(['--optimizers', 'soap,adamw', '--no-peer']).optimizers, ['soap', 'adamw']);
    assert.throws(() => parseSpeedArgs(['--optimizers', 'sgd']), /expected some of/);
    assert.throws(() => parseSpeedArgs(['--steps', '0']), /integer ≥ 1/);
    assert.throws(() => parseSpeedArgs(['--steps', '5', '--warmup', '5']), /no measured step/);
    assert.throws(() => parseSpeedArgs(['--fast']), /unknown option/);
  });
});

describe('shapes', () => {
  it("give the peer the model the overrides give the trainer", () => {
    for (const shape of SHAPES) {
      const set = Object.fromEntries(shape.overrides.map((o) => o.split('=')).map(([k, v]) => [k, Number(v)]));
      const model = { d_model: 128, n_layers: 4, n_heads: 4, mlp_hidden: 512, vocab_size: 256 }; // configs/tiny.yaml
      for (const key of Object.keys(model) as Array<keyof typeof model>) model[key] = set[`model.${key}`] ?? model[key];
      assert.deepEqual(shape.model, model, shape.name);
      assert.deepEqual(shape.batch, { batch_size: set['train.batch_size'] ?? 16, seq_len: set['train.seq_len'] ?? 128 }, shape.name);
    }
  });

  it('count the small shape as 4.85M parameters and tiny as 0.82M', () => {
    const small = modelSchema.parse(SHAPES[1].model);
    // 6·(4·256² + 2·256·1024 + 2·256 + 2·64) + 256 + 2·256·256
    assert.equal(countParams(small).total, 6 * (4 * 65536 + 2 * 262144 + 512 + 128) + 256 + 131072);
    assert.equal(countParams(modelSchema.parse(SHAPES[0].model)).total, 4 * (4 * 16384 + 2 * 65536 + 256 + 64) + 128 + 65536);
    // 6·(L·(4d² + 2dm) + dV) + 12·L·T·d
    assert.equal(flopsPerToken(small, 256), 6 * (6 * (4 * 65536 + 2 * 262144) + 65536) + 12 * 6 * 256 * 256);
  });
});

describe('formatTable', () => {
  it('left-aligns the label columns and right-aligns the numbers', () => {
    const text = formatTable(['shape', 'tok/s'], [['tiny', '2,900'], ['small', '48']]);
    assert.equal(text, ['shape  tok/s', '-----  -----', 'tiny   2,900', 'small     48'].join('\n'));
    const md = formatTable(['a', 'b'], [['x', '1']], { markdown: true });
    assert.equal(md, ['| a | b |', '|:--|--:|', '| x | 1 |'].join('\n'));
  });
});
