import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { activationBytes, formatBytes } from '../src/train/memory-plan.js';
import { REPO, soapTrain, tinyExperiment } from './helpers/tiny-run.js';

function jsonl(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a CLI run of a few steps writes a complete run directory', () => {
  const exp = tinyExperiment();
  const r = soapTrain(['--config', exp.config, '--name', 'first', '--set', 'train.seed=2'], exp.dir);
  assert.equal(r.status, 0, r.stderr);
  const run = join(exp.dir, 'runs', 'first');
  for (const f of ['config.yaml', 'manifest.json', 'metrics.jsonl', 'eval.jsonl', 'log.jsonl', 'summary.json']) {
    assert.ok(existsSync(join(run, f)), `missing ${f}`);
  }
  const config = parseYaml(readFileSync(join(run, 'config.yaml'), 'utf8')) as { train: { seed: number; grad_clip: number } };
  assert.equal(config.train.seed, 2, 'the resolved config carries the --set override');
  assert.equal(config.train.grad_clip, 1, 'and the defaults');
  const manifest = JSON.parse(readFileSync(join(run, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(manifest.argv, ['--config', exp.config, '--name', 'first', '--set', 'train.seed=2']);
  assert.equal((manifest.backend as { name: string }).name, 'cpu');
  const rows = jsonl(join(run, 'metrics.jsonl'));
  assert.deepEqual(rows.map((row) => row.step), [2, 4, 6]);
  assert.deepEqual(rows.map((row) => row.tokens), [128, 256, 384]);
  for (const row of rows) {
    for (const key of ['loss', 'lr', 'grad_norm', 'wall_s', 'tokens_per_s']) assert.equal(typeof row[key], 'number', key);
    const time = row.time_ms as Record<string, number>;
    for (const key of ['data_ms', 'fwd_bwd_ms', 'optim_ms']) assert.equal(typeof time[key], 'number', key);
  }
  assert.ok((rows[0].loss as number) > 4.5 && (rows[0].loss as number) < 6.5, `first loss ${rows[0].loss} ≈ ln 256`);
  const evals = jsonl(join(run, 'eval.jsonl'));
  assert.deepEqual(evals.map((e) => e.step), [3, 6]);
  const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(summary.status, 'completed');
  assert.equal(summary.steps, 6);
  assert.equal(summary.final_val_loss, evals[1].val_loss);
  assert.ok(jsonl(join(run, 'log.jsonl')).some((e) => e.event === 'backend'));

  // The end-of-run checkpoint, as `inspect runs/<name>` lists it: AdamW keeps two moments per
  // parameter, so each group's state is twice its weights (wq: 16×16 floats → 2·1024 bytes).
  const inspected = soapTrain(['inspect', run, '--json'], exp.dir);
  assert.equal(inspected.status, 0, inspected.stderr);
  const [checkpoint] = JSON.parse(inspected.stdout) as Array<{ step: number; valid: boolean; optimizer_state_bytes: Record<string, number> }>;
  assert.equal(checkpoint.step, 6);
  assert.equal(checkpoint.valid, true);
  assert.equal(checkpoint.optimizer_state_bytes['blocks.*.attn.wq'], 2 * 16 * 16 * 4);
  assert.equal(checkpoint.optimizer_state_bytes.tok_emb, 2 * 256 * 16 * 4);
});

test('bad input exits 2 with one line and writes nothing', () => {
  const exp = tinyExperiment();
  const cases: Array<[string[], RegExp]> = [
    [['--config', exp.config, '--set', 'optimizer.lrr=1'], /optimizer\.lrr: unknown key/],
    [['--config', exp.config, '--set', 'train.steps=many'], /train\.steps/],
    [['--config', exp.config, '--set', 'data.train=nothere/*.bin'], /data\.train: no files match/],
    [['--config', join(exp.dir, 'missing.yaml')], /config file not found/],
    [['train'], /--config/],
    [['--config', exp.config, '--bogus'], /unknown option/],
  ];
  for (const [args, pattern] of cases) {
    const r = soapTrain(args, exp.dir);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('soap-train: error') || l.startsWith('error:')).length, 1);
  }
  assert.ok(!existsSync(join(exp.dir, 'runs')), 'no run directory was created');
});

test('an existing run directory is refused and left as it was', () => {
  const exp = tinyExperiment();
  const run = join(exp.dir, 'runs', 'taken');
  mkdirSync(run, { recursive: true });
  writeFileSync(join(run, 'metrics.jsonl'), 'precious\n');
  const r = soapTrain(['--config', exp.config, '--name', 'taken'], exp.dir);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /run directory already exists/);
  assert.deepEqual(readdirSync(run), ['metrics.jsonl']);
  assert.equal(readFileSync(join(run, 'metrics.jsonl'), 'utf8'), 'precious\n');
});

test('--help describes every subcommand', () => {
  for (const sub of [[], ['train'], ['inspect'], ['optimizers'], ['prepare']]) {
    const r = soapTrain([...sub, '--help'], process.cwd());
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: soap-train/);
  }
});

test('inspect --config adds the activations of a micro-batch and whether a step fits on each backend', () => {
  const file = join(REPO, 'configs', 'tiny-soap.yaml');
  const r = soapTrain(['inspect', '--config', file], REPO);
  assert.equal(r.status, 0, r.stderr);
  // The lines before stay as they were.
  assert.match(r.stdout, /^parameters {3}853\.4k total/m);
  assert.match(r.stdout, /^checkpoint {3}[\d.]+ MiB per step-<N>\/ folder/m);
  // N = 16·128 rows, d 128, m 512, H 4, V 256, in floats: 4 blocks of 76·N·d + 16·N·m + 5·B·H·T² + 16·N·H
  // = 19,922,944 + 16,777,216 + 5,242,880 + 131,072 = 42,074,112; head 12·N·d + 7·N·V + 4·N = 6,823,936;
  // GEMM scratch V·(d + N) + N·d = 819,200; (4·42,074,112 + 6,823,936 + 819,200)·4 bytes = 703,758,336
  const model = loadConfig(file).config.model;
  assert.equal(activationBytes(model, 16, 128), 703_758_336);
  assert.match(r.stdout, new RegExp(`^activations  ${formatBytes(703_758_336)} per micro-batch of 16 × 128 \\(forward \\+ backward, float32\\)$`, 'm'));
  assert.match(r.stdout, /^step peak {4}[\d.]+ MiB in the backward phase \(weights 3\.3 MiB, gradients 3\.3 MiB, soap state [\d.]+ MiB \+ [\d.]+ MiB update temporaries\); × 1\.25 allocator margin = [\d.]+ MiB$/m);
  assert.match(r.stdout, /^ {2}wasm {7}fits: needs [\d.]+ MiB of [\d.]+ GiB \((wasm heap, 32-bit|host RAM, below the 4 GiB wasm heap)\)$/m);
  assert.match(r.stdout, /^ {2}cpu {8}fits: needs [\d.]+ MiB of [\d.]+ GiB \(host RAM\)$/m);
  assert.match(r.stdout, /^ {2}tensorflow unknown \(GPU memory, unknown without --device-memory\)$/m);
});

test('inspect --device-memory gives the largest micro-batch that fits on that device', () => {
  const r = soapTrain(['inspect', '--config', join(REPO, 'configs', '360m-soap.yaml'), '--device-memory', '80GB', '--json'], REPO);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { memory: { device_memory_bytes: number; backends: Record<string, { fits: boolean | null; largest_micro_batch_size: number | null }> } };
  assert.equal(report.memory.device_memory_bytes, 80e9);
  // 16 × 1024 per micro-batch needs ~356 GiB of activations; 1 × 1024 (~22 GiB) is the one that fits in 80 GB
  assert.deepEqual(report.memory.backends.tensorflow, { ...report.memory.backends.tensorflow, fits: false, largest_micro_batch_size: 1 });
  assert.equal(report.memory.backends.wasm.fits, false);
  const text = soapTrain(['inspect', '--config', join(REPO, 'configs', '360m-soap.yaml'), '--device-memory', '80GB'], REPO);
  assert.match(text.stdout, /^device {7}74\.51 GiB: largest micro_batch_size that fits: 1$/m);
  assert.match(text.stdout, /^ {2}tensorflow does not fit: needs [\d.]+ GiB of 74\.51 GiB \(device memory, --device-memory\); fits with micro_batch_size ≤ 1, or with n_layers ≤ \d+$/m);

  const bad = soapTrain(['inspect', '--config', join(REPO, 'configs', '360m-soap.yaml'), '--device-memory', 'lots'], REPO);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^soap-train: error: --device-memory lots: expected a size such as 80GB/);
});
