/**
 * Builds a throwaway experiment for CLI tests: byte-level shards written byte by byte (the
 * llm.c header: magic 20240520, version 1, token count, then uint16 tokens) and a config that
 * trains a very small model for a few steps.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDirs } from './tmp.js';

/** Experiments live in temp folders removed when the importing test file is done. */
const runDirs = tempDirs('soap-run-');

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(REPO, 'bin', 'soap-train');

/** Writes an llm.c-format shard of the given tokens. */
export function writeTestShard(file: string, tokens: ArrayLike<number>): void {
  const buf = Buffer.alloc(256 * 4 + tokens.length * 2);
  buf.writeInt32LE(20240520, 0);
  buf.writeInt32LE(1, 4);
  buf.writeInt32LE(tokens.length, 8);
  for (let i = 0; i < tokens.length; i++) buf.writeUInt16LE(tokens[i], 1024 + 2 * i);
  writeFileSync(file, buf);
}

/** Deterministic English-like bytes: a repeated pangram with a counter, so the model can learn. */
export function sampleText(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const words = 'the quick brown fox jumps over the lazy dog while a soap bubble floats by. '.split('');
  for (let i = 0; i < bytes; i++) out[i] = words[i % words.length].charCodeAt(0);
  return out;
}

export interface TinyExperiment {
  dir: string;
  config: string;
}

export function tinyExperiment(extraYaml = '', optimizer = 'optimizer: {type: adamw, lr: 1.0e-2}'): TinyExperiment {
  const dir = runDirs();
  mkdirSync(join(dir, 'data'));
  writeTestShard(join(dir, 'data', 'train_000000.bin'), sampleText(20000));
  writeTestShard(join(dir, 'data', 'val_000000.bin'), sampleText(4000));
  const config = join(dir, 'tiny.yaml');
  writeFileSync(
    config,
    `backend: cpu
model: {vocab_size: 256, d_model: 16, n_layers: 1, n_heads: 2, mlp_hidden: 32}
data: {train: data/train_*.bin, val: data/val_*.bin}
${optimizer}
schedule: {type: constant}
train: {steps: 6, batch_size: 4, micro_batch_size: 2, seq_len: 16, eval_interval: 3, eval_steps: 2, log_interval: 2, seed: 1}
${extraYaml}`,
  );
  return { dir, config };
}

/** Runs the CLI synchronously in `cwd`. */
export function soapTrain(args: string[], cwd: string, timeout = 120_000, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout, env: { ...process.env, FORCE_COLOR: '0', ...env } });
}
