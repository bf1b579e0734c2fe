/**
 * The results of `npm run bench` as JSON-ready records, the ratios between them (÷ AdamW,
 * ÷ the PyTorch peer, ÷ the measured GEMM rate), and the two printed tables.
 */
import type { CaseOutput } from './run-case.js';
import type { PeakRates } from './gemm.js';
import type { PeerResult } from './peer.js';
import { ratio, type CaseSummary } from './stats.js';
import { formatTable, num, withSpread } from './table.js';

export interface CaseResult {
  optimizer: string;
  /** null when the case ran; else why it has no numbers (failed, skipped for the budget). */
  missing: string | null;
  wall_s: number;
  summary: CaseSummary | null;
  /** The child's own report (steps included) when it ran. */
  run: CaseOutput | null;
  derived: CaseDerived | null;
}

export interface CaseDerived {
  /** Model FLOPs/s (flopsPerToken × tokens/s at the median step), in GFLOP/s. */
  model_gflops: number;
  /** model_gflops ÷ the backend's peak GEMM rate (median step, and mean step with refreshes). */
  mfu: number | null;
  mfu_mean: number | null;
  /** model_gflops ÷ OpenBLAS sgemm's peak on 2 threads: the fraction of this machine's BLAS ceiling. */
  of_blas_2t: number | null;
  /** Mean optimizer time per step (refreshes amortised) ÷ AdamW's; median (no refresh) ÷ AdamW's. */
  optim_vs_adamw: number | null;
  optim_median_vs_adamw: number | null;
  /** Mean step ÷ AdamW's mean step; median step ÷ AdamW's median step. */
  step_mean_vs_adamw: number | null;
  step_median_vs_adamw: number | null;
  /** Our tokens/s (median step) ÷ the peer's, by the peer's thread count. */
  vs_torch: Record<string, number | null>;
}

export interface PeerRow {
  result: PeerResult;
  model_gflops: number | null;
  /** ÷ OpenBLAS sgemm's peak at the peer's thread count (torch's CPU matmuls are that sgemm). */
  mfu: number | null;
}

export interface ShapeResult {
  name: string;
  about: string;
  params: number;
  flops_per_token: number;
  tokens_per_step: number;
  steps: number;
  warmup: number;
  cases: CaseResult[];
  peer: PeerRow[];
  /** Why the peer has no rows, when it has none. */
  peer_missing: string | null;
}

/** The OpenBLAS peak at a thread count (1, else 2), when the binding is built. */
function blasPeak(peaks: PeakRates, threads: number): number | null {
  return threads <= 1 ? peaks.openblas1 : peaks.openblas2;
}

/** Fills each case's `derived` from its summary, AdamW's, the peer's and the peak GEMM rates. */
export function derive(shape: ShapeResult, peaks: PeakRates): void {
  const adamw = shape.cases.find((c) => c.optimizer === 'adamw')?.summary ?? null;
  for (const p of shape.peer) {
    if (!p.result.ok) continue;
    p.model_gflops = (shape.flops_per_token * p.result.out.tokens_per_s) / 1e9;
    p.mfu = ratio(p.model_gflops, blasPeak(peaks, p.result.threads));
  }
  for (const c of shape.cases) {
    const s = c.summary;
    if (!s) continue;
    const gflops = (shape.flops_per_token * s.tokens_per_s.median) / 1e9;
    const vsTorch: Record<string, number | null> = {};
    for (const p of shape.peer) vsTorch[`${p.result.threads}t`] = p.result.ok ? ratio(s.tokens_per_s.median, p.result.out.tokens_per_s) : null;
    c.derived = {
      model_gflops: gflops,
      mfu: ratio(gflops, peaks.backend),
      mfu_mean: ratio((shape.flops_per_token * s.tokens_per_s_mean) / 1e9, peaks.backend),
      of_blas_2t: ratio(gflops, peaks.openblas2),
      optim_vs_adamw: ratio(s.optim_ms_mean, adamw?.optim_ms_mean),
      optim_median_vs_adamw: ratio(s.optim_ms_median, adamw?.optim_ms_median),
      step_mean_vs_adamw: ratio(s.step_ms_mean, adamw?.step_ms_mean),
      step_median_vs_adamw: ratio(s.step_ms.median, adamw?.step_ms.median),
      vs_torch: vsTorch,
    };
  }
}

const pct = (x: number | null | undefined) => (x == null ? '–' : `${(100 * x).toFixed(1)}%`);
const times = (x: number | null | undefined) => (x == null ? '–' : `${x.toFixed(2)}×`);

/** Throughput table: one row per case and per peer run. */
export function throughputTable(shapes: ShapeResult[], peerThreads: number[], markdown = false): string {
  const headers = ['shape', 'optimizer', 'tok/s median (p10–p90)', 'tok/s mean', 'MFU', ...peerThreads.map((t) => `÷torch ${t}t`), '1st step s', 'to 1st step s', 'peak RSS MiB'];
  const rows: string[][] = [];
  for (const sh of shapes) {
    for (const c of sh.cases) {
      const s = c.summary;
      const d = c.derived;
      if (!s || !c.run) {
        rows.push([sh.name, c.optimizer, `(${c.missing})`, ...headers.slice(3).map(() => '')]);
        continue;
      }
      rows.push([
        sh.name,
        c.optimizer,
        withSpread(s.tokens_per_s.median, s.tokens_per_s.p10, s.tokens_per_s.p90),
        num(s.tokens_per_s_mean),
        pct(d?.mfu),
        ...peerThreads.map((t) => times(d?.vs_torch[`${t}t`])),
        num(c.run.first_step_ms / 1000, 2),
        num(c.run.time_to_first_step_ms / 1000, 2),
        num(c.run.peak_rss_mib),
      ]);
    }
    for (const p of sh.peer) {
      const r = p.result;
      if (!r.ok) {
        rows.push([sh.name, `torch ${r.threads}t`, `(${r.why})`, ...headers.slice(3).map(() => '')]);
        continue;
      }
      const tps = (ms: number) => (sh.tokens_per_step * 1000) / ms;
      rows.push([
        sh.name,
        `torch adamw ${r.threads}t`,
        withSpread(r.out.tokens_per_s, tps(r.out.step_ms_p90), tps(r.out.step_ms_p10)),
        '',
        pct(p.mfu),
        ...peerThreads.map(() => ''),
        num(r.out.first_step_ms / 1000, 2),
        '',
        num(r.out.peak_rss_mib),
      ]);
    }
    if (sh.peer.length === 0 && sh.peer_missing) rows.push([sh.name, 'torch', `(${sh.peer_missing})`, ...headers.slice(3).map(() => '')]);
  }
  return formatTable(headers, rows, { leftColumns: 2, markdown });
}

/** Step split table: where a step's time goes, and each optimizer's cost ÷ AdamW's. */
export function splitTable(shapes: ShapeResult[], markdown = false): string {
  const headers = ['shape', 'optimizer', 'step ms median (p10–p90)', 'step ms mean', 'data', 'fwd+bwd', 'optim', 'refresh (n × ms)', 'other', 'optim÷AdamW', 'step÷AdamW'];
  const rows: string[][] = [];
  for (const sh of shapes) {
    for (const c of sh.cases) {
      const s = c.summary;
      if (!s) continue;
      rows.push([
        sh.name,
        c.optimizer,
        withSpread(s.step_ms.median, s.step_ms.p10, s.step_ms.p90),
        num(s.step_ms_mean),
        num(s.split_ms.data, 1),
        num(s.split_ms.fwd_bwd),
        num(s.split_ms.optim, 1),
        s.refresh_steps ? `${num(s.split_ms.refresh)} (${s.refresh_steps} × ${num(s.refresh_ms_each)})` : '0',
        num(s.split_ms.other, 1),
        times(c.derived?.optim_vs_adamw),
        times(c.derived?.step_mean_vs_adamw),
      ]);
    }
  }
  return formatTable(headers, rows, { leftColumns: 2, markdown });
}
