/**
 * Run names from overrides: readable (`lr3e-3_f0.5_s1`), stable (the same overrides always give the
 * same name, so a rerun finds its runs again) and unique within a sweep. A name is the run's
 * folder, so it uses only the characters run names allow (letters, digits, . _ - @ + = ,).
 *
 * Each grid axis contributes "last key segment + value" (`optimizer.lr=0.003` → `lr3e-3`); a `type`
 * key contributes its value alone (`optimizer.type=soap` → `soap`), a whole section what tells it
 * apart from the axis' other values (its type, else the differing settings); axes
 * whose last segments clash use the whole dotted key. Fractions add `f<fraction>`, seeds `s<seed>`.
 * Should two runs still end up with one name (values that only differ in characters a folder name
 * cannot hold), each gets `@` and a short hash of its overrides.
 */
import { createHash } from 'node:crypto';

/** Characters a run name may not contain (chooseRunDir's rule); replaced by `-`. */
const UNSAFE = /[^A-Za-z0-9._=+,@-]/g;
/** Longer names are cut and hashed: folder names have limits and nobody reads 200 characters. */
const MAX_NAME = 120;

/** Shortest faithful text of a number: 0.003 → 3e-3, 0.5 → 0.5, 1e-4 → 1e-4, 240 → 240. */
export function formatNumber(n: number): string {
  const plain = String(n);
  if (Number.isInteger(n) || !Number.isFinite(n)) return plain;
  const exp = n.toExponential().replace('e+', 'e');
  return exp.length < plain.length ? exp : plain;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as it appears in a name (before the unsafe characters are replaced). */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') return formatNumber(value);
  if (Array.isArray(value)) return value.map(formatValue).join(',');
  if (isPlainObject(value)) {
    return Object.entries(value)
      .map(([k, v]) => (k === 'type' ? formatValue(v) : `${k}${formatValue(v)}`))
      .join(',');
  }
  return String(value);
}

/** The label of each grid key: its last segment, or the whole key where last segments clash. */
export function axisLabels(keys: readonly string[]): Map<string, string> {
  const last = (key: string) => key.split('.').at(-1)!;
  const labels = new Map<string, string>();
  for (const key of keys) labels.set(key, keys.filter((k) => last(k) === last(key)).length > 1 ? key : last(key));
  return labels;
}

/** One axis' part of a name: `lr3e-3`, `beta2=0.99`, `decay=all`, `soap`. */
export function namePart(key: string, label: string, value: unknown): string {
  const shown = formatValue(value);
  if (key.split('.').at(-1) === 'type' || isPlainObject(value)) return shown;
  // `=` keeps label and value apart where gluing them would misread (beta2 + 0.99, decay + all).
  const glue = /\d$/.test(label) || !/^[\d.+-]/.test(shown) ? '=' : '';
  return `${label}${glue}${shown}`;
}

/**
 * The name parts of all values of one axis. Whole sections (`optimizer: [{type: adamw, …},
 * {type: soap, …}]`) show only what tells them apart: their `type` when every value has its own,
 * else the type and the settings whose values differ between them.
 */
export function axisParts(key: string, label: string, values: readonly unknown[]): string[] {
  if (values.length === 0 || !values.every(isPlainObject)) return values.map((v) => namePart(key, label, v));
  const sections = values as Record<string, unknown>[];
  const types = sections.map((v) => v.type);
  if (types.every((t) => t !== undefined) && new Set(types.map((t) => JSON.stringify(t))).size === types.length) return types.map(formatValue);
  const keys = [...new Set(sections.flatMap(Object.keys))];
  const varying = keys.filter((k) => k !== 'type' && new Set(sections.map((v) => JSON.stringify(v[k]))).size > 1);
  return sections.map((v) => {
    const shown = Object.fromEntries([...('type' in v ? [['type', v.type]] : []), ...varying.filter((k) => k in v).map((k) => [k, v[k]])]);
    return formatValue(shown);
  });
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 6);
}

/** Joins the parts into a folder-safe name (`base` when a run has no overrides). */
export function joinName(parts: readonly string[], overrides: readonly string[]): string {
  const name = parts.length === 0 ? 'base' : parts.join('_').replace(UNSAFE, '-');
  return name.length > MAX_NAME ? `${name.slice(0, MAX_NAME - 7)}@${shortHash(overrides.join('\n'))}` : name;
}

/**
 * Makes names unique: every run whose name is shared gets `@<hash of its overrides>`. The hash
 * depends only on the run's own overrides, so names stay stable when other runs are added.
 */
export function uniqueNames(runs: readonly { name: string; overrides: readonly string[] }[]): string[] {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.name, (count.get(r.name) ?? 0) + 1);
  const names = runs.map((r) => ((count.get(r.name) ?? 0) > 1 ? `${r.name}@${shortHash(r.overrides.join('\n'))}` : r.name));
  if (new Set(names).size !== names.length) {
    // Only runs with identical overrides can collide here, and the spec rejects repeated values.
    throw new Error(`sweep: run names collide after hashing: ${names.join(', ')}`);
  }
  return names;
}
