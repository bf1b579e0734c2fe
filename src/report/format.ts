/**
 * How the report's tables write numbers, and HTML escaping for everything that comes from a run
 * (names, config values) before it goes into report.html.
 */
import type { RunStatus } from '../run/read-run.js';

export const DASH = '–';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** 24576 → 24.6k, 1.2e9 → 1.20B: token counts as people say them. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** 12.3 s, 4 min 05 s, 2 h 03 min. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export const formatLoss = (v: number | null): string => (v === null ? DASH : v.toFixed(4));
export const formatPercent = (v: number | null): string => (v === null ? DASH : `${(100 * v).toFixed(1)}%`);
export const formatRate = (v: number | null): string => (v === null ? DASH : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3));
export const formatMs = (v: number | null): string => (v === null ? DASH : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));

const STATUS_TEXT: Record<RunStatus, string> = {
  completed: 'completed',
  interrupted: 'interrupted',
  time_limit: 'time limit (resumable)',
  failed: 'failed',
  in_progress: 'in progress',
};
export const formatStatus = (s: RunStatus): string => STATUS_TEXT[s];

/** A config value in a diff: scalars as written in YAML, arrays and objects as JSON, absent as a dash. */
export function formatConfigValue(v: unknown): string {
  if (v === undefined) return DASH;
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
