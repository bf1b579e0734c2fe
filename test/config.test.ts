import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, mergeTrees, parseOverride } from '../src/config/load.js';
import { SoapTrainError } from '../src/errors.js';
import { buildSchedule } from '../src/schedule/index.js';
import { tempDirs } from './helpers/tmp.js';

const BASE = `
model: {vocab_size: 256, d_model: 32, n_layers: 2, n_heads: 2, mlp_hidden: 64}
data: {train: "train_*.bin", val: "val_*.bin"}
optimizer: {type: adamw, lr: 1.0e-3}
train: {steps: 10, batch_size: 4, seq_len: 16}
`;

const tmp = tempDirs('soap-cfg-');

function writeConfig(text: string, name = 'c.yaml'): string {
  const dir = tmp();
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): SoapTrainError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SoapTrainError, `expected SoapTrainError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an error');
}

test('a valid config gets its defaults filled in, YAML configs decay matrices only', () => {
  const { config } = loadConfig(writeConfig(BASE));
  assert.equal(config.train.grad_clip, 1.0);
  assert.equal(config.schedule.type, 'cosine');
  assert.equal(config.checkpoint.keep, 2);
  assert.equal(config.backend, 'auto');
  assert.deepEqual(config.data.train, ['train_*.bin']);
  assert.equal(config.optimizer.decay, 'matrices');
});

test('a typo in a key names the file, the dotted field and the allowed keys', () => {
  const file = writeConfig(BASE.replace('lr: 1.0e-3', 'lrr: 1.0e-3'));
  const line = errorOf(() => loadConfig(file)).oneLine();
  assert.match(line, new RegExp(`^${file}: optimizer\\.lrr: unknown key \\(allowed here: type, lr, betas`));
  assert.equal(errorOf(() => loadConfig(file)).exitCode, 2);
});

test('a wrong type and an out-of-range value name the field', () => {
  const wrongType = errorOf(() => loadConfig(writeConfig(BASE.replace('steps: 10', 'steps: ten')))).oneLine();
  assert.match(wrongType, /: train\.steps: .*expected number/);
  const negative = errorOf(() => loadConfig(writeConfig(BASE.replace('lr: 1.0e-3', 'lr: -1')))).oneLine();
  assert.match(negative, /: optimizer\.lr: /);
  const heads = errorOf(() => loadConfig(writeConfig(BASE.replace('n_heads: 2', 'n_heads: 3')))).oneLine();
  assert.match(heads, /model\.n_heads: n_heads 3 must divide d_model 32/);
  const section = errorOf(() => loadConfig(writeConfig(`${BASE}\nmodle: {}\n`))).oneLine();
  assert.match(section, /: modle: unknown key \(allowed here: extends, backend, model/);
});

test('micro_batch_size must divide batch_size', () => {
  const line = errorOf(() => loadConfig(writeConfig(BASE.replace('seq_len: 16', 'seq_len: 16, micro_batch_size: 3')))).oneLine();
  assert.match(line, /train\.micro_batch_size: micro_batch_size 3 must divide batch_size 4/);
});

test('--set overrides parse YAML scalars and lists, and are validated like the file', () => {
  const file = writeConfig(BASE);
  const { config } = loadConfig(file, [parseOverride('optimizer.lr=3e-3'), parseOverride('optimizer.betas=[0.9, 0.95]'), parseOverride('train.seed=7')]);
  assert.equal(config.optimizer.lr, 0.003);
  assert.deepEqual(config.optimizer.betas, [0.9, 0.95]);
  assert.equal(config.train.seed, 7);
  const bad = errorOf(() => loadConfig(file, [parseOverride('train.steps=abc')])).oneLine();
  assert.match(bad, /^--set train\.steps=abc: train\.steps: /);
  const unknown = errorOf(() => loadConfig(file, [parseOverride('train.stepz=3')])).oneLine();
  assert.match(unknown, /^--set train\.stepz=3: train\.stepz: unknown key/);
  assert.throws(() => parseOverride('novalue'), /expected KEY=VALUE/);
});

test('extends merges the base first; a different optimizer type replaces the section', () => {
  const base = writeConfig(BASE.replace('optimizer: {type: adamw, lr: 1.0e-3}', 'optimizer: {type: adamw, lr: 1.0e-3, eps: 1.0e-6}'));
  const childDir = join(base, '..');
  const child = join(childDir, 'child.yaml');
  writeFileSync(child, 'extends: c.yaml\ntrain: {steps: 20}\noptimizer: {lr: 2.0e-3}\n');
  const { config } = loadConfig(child);
  assert.equal(config.train.steps, 20);
  assert.equal(config.train.batch_size, 4);
  assert.equal(config.optimizer.lr, 2e-3);
  assert.equal(config.optimizer.eps, 1e-6);
  assert.deepEqual(mergeTrees({ o: { type: 'a', x: 1 } }, { o: { type: 'b', y: 2 } }), { o: { type: 'b', y: 2 } });
});

test('missing files, extends cycles and broken YAML are one-line errors', () => {
  assert.match(errorOf(() => loadConfig('/nonexistent/x.yaml')).oneLine(), /^\/nonexistent\/x\.yaml: config file not found/);
  const a = writeConfig('extends: b.yaml\n', 'a.yaml');
  writeFileSync(join(a, '..', 'b.yaml'), 'extends: a.yaml\n');
  assert.match(errorOf(() => loadConfig(a)).oneLine(), /extends: extends: cycle/);
  assert.match(errorOf(() => loadConfig(writeConfig('model: [unclosed\n'))).oneLine(), /not valid YAML/);
});

test('cosine schedule: linear warmup, cosine to the floor, then flat', () => {
  const f = buildSchedule({ type: 'cosine', warmup_steps: 10, min_lr_ratio: 0.1 }, 110);
  assert.equal(f(0), 0.1); // (0+1)/10
  assert.equal(f(9), 1);
  assert.ok(Math.abs(f(10) - 1) < 1e-12);
  // Halfway through the decay: 0.1 + 0.9·½(1 + cos(π/2)) = 0.55.
  assert.ok(Math.abs(f(60) - 0.55) < 1e-12);
  assert.ok(Math.abs(f(110) - 0.1) < 1e-12);
  assert.ok(Math.abs(f(500) - 0.1) < 1e-12);
  const c = buildSchedule({ type: 'constant', warmup_steps: 4 }, 100);
  assert.deepEqual([0, 1, 3, 4, 99].map(c), [0.25, 0.5, 1, 1, 1]);
});
