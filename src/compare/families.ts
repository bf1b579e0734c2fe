/**
 * Groups runs into families: runs that would follow the same training trajectory apart from how
 * long they train, so their final losses lie on one scaling curve L(n).
 *
 * The family key is the resolved config with these removed:
 *   - train.steps (what distinguishes family members), and schedule.decay_steps when it is
 *     absent or equal to train.steps (the schedule length that follows the steps). An explicit,
 *     different decay_steps stays: it is a different schedule.
 *   - keys that cannot change the trajectory, only when things are logged, measured or saved,
 *     or when a run stops early: checkpoint.*, train.log_interval, train.eval_interval,
 *     train.max_wall_s, train.stop_grace_s, train.max_bad_steps.
 *   - the config's `backend` (often `auto`); in its place the backend the run actually ran on
 *     (summary, else manifest) is part of the key, because the family's seconds per step —
 *     half of the metric — depends on it.
 * Kept on purpose: train.eval_steps (it changes the measured validation loss) and train.seed
 * (a different seed is a different trajectory), and everything in model, data and optimizer.
 */
import { getPath, type RunRecord } from '../run/read-run.js';

const TRAJECTORY_NEUTRAL_KEYS = [
  'checkpoint',
  'train.log_interval',
  'train.eval_interval',
  'train.max_wall_s',
  'train.stop_grace_s',
  'train.max_bad_steps',
  'backend',
];

function deleteKey(obj: Record<string, unknown>, dotted: string): void {
  const parts = dotted.split('.');
  let node: unknown = obj;
  for (const part of parts.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Record<string, unknown>)[part];
  }
  if (typeof node === 'object' && node !== null) delete (node as Record<string, unknown>)[parts.at(-1)!];
}

/** JSON with object keys sorted, so key order in config.yaml does not split a family. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The backend a run ran on: summary.backend, else manifest.backend.name, else the config's. */
export function ranOnBackend(run: RunRecord): string {
  const fromSummary = run.summary?.backend;
  if (typeof fromSummary === 'string') return fromSummary;
  const fromManifest = run.manifest ? getPath(run.manifest, 'backend.name') : undefined;
  if (typeof fromManifest === 'string') return fromManifest;
  const fromConfig = getPath(run.config, 'backend');
  return typeof fromConfig === 'string' ? fromConfig : 'auto';
}

/** The family key of a run (see the module header for what is left out and why). */
export function familyKey(run: RunRecord): string {
  const config = structuredClone(run.config);
  const steps = getPath(config, 'train.steps');
  const decay = getPath(config, 'schedule.decay_steps');
  deleteKey(config, 'train.steps');
  if (decay === undefined || decay === null || decay === steps) deleteKey(config, 'schedule.decay_steps');
  for (const key of TRAJECTORY_NEUTRAL_KEYS) deleteKey(config, key);
  return canonicalJson({ config, ran_on: ranOnBackend(run) });
}

/** Runs grouped by family, families in order of their first run, runs in input order. */
export function groupFamilies(runs: readonly RunRecord[]): RunRecord[][] {
  const families = new Map<string, RunRecord[]>();
  for (const run of runs) {
    const key = familyKey(run);
    const members = families.get(key);
    if (members) members.push(run);
    else families.set(key, [run]);
  }
  return [...families.values()];
}
