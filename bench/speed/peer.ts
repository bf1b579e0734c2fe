/**
 * The PyTorch peer of `npm run bench`: bench/peers/torch_gpt.py (the same decoder, AdamW, random
 * tokens) on the same shapes, run by Debian's /usr/bin/python3 with torch's threads pinned to 1
 * and to 2 (OpenMP threads that sleep rather than spin while waiting, see runPeer). When torch
 * is missing and this process is root with apt-get, the two Debian packages it needs are
 * installed first; otherwise every peer result carries the reason it is empty.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { BenchShape } from './cases.js';

const PYTHON = '/usr/bin/python3';
const PEER = 'bench/peers/torch_gpt.py';
/** Debian's PyTorch and the pthread OpenBLAS its matmuls are fast with. */
const PACKAGES = ['python3-torch', 'libopenblas0-pthread'];

export type TorchSetup = { ok: true; torch: string; installed_s: number | null } | { ok: false; why: string };

/** What torch_gpt.py prints (one JSON line). */
export interface PeerOutput {
  tokens_per_s: number;
  step_ms_median: number;
  step_ms_p10: number;
  step_ms_p90: number;
  step_ms_min: number;
  step_ms_max: number;
  first_step_ms: number;
  peak_rss_mib: number;
  params: number;
  threads: number;
  torch: string;
  final_loss: number;
}

export type PeerResult =
  | { ok: true; threads: number; omp_wait_policy: string; out: PeerOutput; wall_s: number }
  | { ok: false; threads: number; why: string };

function torchVersion(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function lastLine(text: string | null | undefined): string {
  return `${text ?? ''}`.trim().split('\n').pop() ?? '';
}

/** torch importable by /usr/bin/python3, installing the Debian packages when allowed. */
export function ensureTorch(log: (line: string) => void): TorchSetup {
  if (!existsSync(PYTHON)) return { ok: false, why: `${PYTHON} not found (the peer needs Debian's python3 and python3-torch)` };
  const have = torchVersion();
  if (have) return { ok: true, torch: have, installed_s: null };
  if (process.getuid?.() !== 0) return { ok: false, why: `python3-torch is not installed and this is not root: apt-get install ${PACKAGES.join(' ')}` };
  if (spawnSync('apt-get', ['--version']).status !== 0) return { ok: false, why: 'python3-torch is not installed and apt-get is not available' };
  log(`installing ${PACKAGES.join(' ')} with apt-get for the PyTorch peer (once)…`);
  const started = performance.now();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES], { env, encoding: 'utf8' });
  let r = install();
  if (r.status !== 0) {
    // Usually stale package lists (a fresh container): refresh them once and retry.
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8' });
    r = install();
  }
  const installedS = (performance.now() - started) / 1000;
  const after = torchVersion();
  if (!after) return { ok: false, why: `apt-get install ${PACKAGES.join(' ')} failed: ${lastLine(r.stderr) || `exit ${r.status}`}` };
  return { ok: true, torch: after, installed_s: installedS };
}

/**
 * The peer on one shape with torch's (and OpenBLAS's/OpenMP's) threads set to `threads`.
 *
 * OMP_WAIT_POLICY defaults to PASSIVE here (an explicit setting in the environment wins): with
 * libgomp's default, a thread that reaches a barrier spins, and when another process holds the
 * other core the spinning thread burns the time its partner needs. On this 2-core machine with
 * other work running, torch on 2 threads ran tiny at 1,400–2,200 tokens/s with the default (660
 * with ACTIVE) and 10,000 with PASSIVE, back to back (1 thread: 7,000–10,500). On an idle
 * machine the policy should matter little (not measured: this machine was never idle).
 */
export function runPeer(shape: BenchShape, threads: number, steps: number, warmup: number, timeoutS: number): PeerResult {
  const t = String(threads);
  const waitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
  const env = { ...process.env, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t, OMP_WAIT_POLICY: waitPolicy };
  const { model, batch } = shape;
  const args = [
    PEER,
    ...['--d-model', model.d_model, '--n-layers', model.n_layers, '--n-heads', model.n_heads, '--mlp', model.mlp_hidden, '--vocab', model.vocab_size],
    ...['--seq-len', batch.seq_len, '--batch', batch.batch_size, '--steps', steps, '--warmup', warmup, '--threads', threads],
  ].map(String);
  const started = performance.now();
  const r = spawnSync(PYTHON, args, { env, encoding: 'utf8', timeout: timeoutS * 1000 });
  const wallS = (performance.now() - started) / 1000;
  if (r.error) return { ok: false, threads, why: `${PEER}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, threads, why: `${PEER} exited ${r.status ?? r.signal}: ${lastLine(r.stderr)}` };
  try {
    return { ok: true, threads, omp_wait_policy: waitPolicy, out: JSON.parse(lastLine(r.stdout)) as PeerOutput, wall_s: wallS };
  } catch {
    return { ok: false, threads, why: `${PEER} printed no JSON line: ${lastLine(r.stdout) || lastLine(r.stderr)}` };
  }
}
