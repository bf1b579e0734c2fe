/**
 * What a run reports while it goes, for whoever watches it: the CLI draws its progress bar
 * from these, a sweep or a notebook can follow the losses. Metrics stay in metrics.jsonl and
 * events in log.jsonl either way; these are the live view.
 */
import type { RunSummary } from './run-progress.js';

export type RunEvent =
  | { type: 'start'; runDir: string; step: number; steps: number; resumed: boolean; backend: string; backendReason: string }
  | { type: 'step'; step: number; steps: number; loss: number; lr: number; gradNorm: number; tokensPerS: number; wallS: number }
  | { type: 'eval'; step: number; valLoss: number; seconds: number }
  | { type: 'checkpoint'; step: number; dir: string; bytes: number; seconds: number }
  /** The optimizer's host linear algebra of `step` (eigenbases, roots): k of n decompositions, when it takes long. */
  | { type: 'refresh'; step: number; done: number; total: number; elapsedS: number; etaS: number }
  /** Something the user should see: a skipped checkpoint, a stale lock, a non-finite step, a signal. */
  | { type: 'warning'; message: string }
  | { type: 'end'; summary: RunSummary };

export type RunEventHandler = (event: RunEvent) => void;
