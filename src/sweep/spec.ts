/**
 * What a sweep asks for, before it is expanded into runs: the base config, the grid axes, the
 * number of seeds and the step fractions. It comes from the command line (`--grid`, `--seeds`,
 * `--fractions`) and/or from a sweep file:
 *
 *   base: ../configs/tiny-adamw.yaml   # the base config, relative to this file
 *   sweep:
 *     name: tiny-lr                    # optional: runs/<name>/ (default: file stem + time)
 *     set:                             # optional: overrides every run gets (not in the run names)
 *       train.eval_interval: 40
 *     grid:                            # key: list of values (each value as `--set key=value` takes it)
 *       optimizer.lr: [1.0e-3, 3.0e-3]
 *       optimizer.betas: [[0.9, 0.95], [0.95, 0.95]]
 *     seeds: 2                         # optional: train.seed = 0..seeds-1
 *     fractions: [0.5, 1]              # optional: train.steps = round(fraction × base steps)
 *     baseline: lr3e-3_s0              # optional: the run the compare table measures against
 *
 * Values are parsed the way `--set` parses them (YAML scalars and flow collections), so a grid
 * value means exactly what the same `--set` would.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { parseOverride } from '../config/load.js';
import { badInput } from '../errors.js';

/** One value of an axis: the parsed value and its text after `key=` in a `--set`. */
export interface GridValue {
  value: unknown;
  text: string;
}

export interface GridAxis {
  /** Dotted config key, e.g. `optimizer.lr`. */
  key: string;
  values: GridValue[];
}

export interface SweepSpec {
  /** Absolute path of the base config. */
  base: string;
  grid: GridAxis[];
  /** `key=value` overrides every run gets (not part of the names), e.g. `train.steps=120`. */
  set?: string[];
  /** train.seed = 0..seeds-1 when set. */
  seeds?: number;
  /** train.steps = round(fraction × the base config's steps) per fraction when set. */
  fractions?: number[];
  name?: string;
  baseline?: string;
  /** The sweep file the spec came from, when there was one (for the default sweep name). */
  file?: string;
}

/** Splits `a,[b,c],'d,e'` at the commas that are not inside brackets, braces or quotes. */
export function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '[' || c === '{') {
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
    } else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

/** Two values are the same run setting when their parsed values are equal (1e-3 and 0.001 are). */
function rejectRepeats(axis: GridAxis, where: string): GridAxis {
  const seen = new Map<string, string>();
  for (const v of axis.values) {
    const key = JSON.stringify(v.value);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw badInput(`${where}: ${axis.key} lists the same value twice (${earlier} and ${v.text})`, { fix: 'list each value once' });
    }
    seen.set(key, v.text);
  }
  return axis;
}

/** `--grid optimizer.lr=1e-3,3e-3` → one axis; each value is parsed like `--set optimizer.lr=1e-3`. */
export function parseGridArg(arg: string): GridAxis {
  const eq = arg.indexOf('=');
  const key = eq > 0 ? arg.slice(0, eq).trim() : '';
  const pieces = eq > 0 ? splitTopLevel(arg.slice(eq + 1)) : [];
  if (!key || pieces.some((p) => p === '')) {
    throw badInput(`--grid ${arg}: expected KEY=V1,V2,… with a dotted key, e.g. optimizer.lr=1e-3,3e-3`);
  }
  const values = pieces.map((text) => ({ value: parseOverride(`${key}=${text}`).value, text }));
  return rejectRepeats({ key, values }, `--grid ${arg}`);
}

/** The `--set` text of a value read from a YAML file (flow style, quoted where YAML needs it). */
export function valueText(value: unknown): string {
  return toYaml(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

/** `--seeds N`: a positive integer. */
export function parseSeeds(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw badInput(`--seeds ${text}: expected a positive whole number of seeds`);
  return n;
}

/** `--fractions 0.5,0.75,1`: positive numbers, each once. */
export function parseFractions(text: string): number[] {
  const fractions = text.split(',').map((t) => Number(t.trim()));
  if (text.trim() === '' || fractions.some((f) => !Number.isFinite(f) || f <= 0)) {
    throw badInput(`--fractions ${text}: expected positive numbers separated by commas, e.g. 0.5,0.75,1`);
  }
  if (new Set(fractions).size !== fractions.length) throw badInput(`--fractions ${text}: a fraction is listed twice`);
  return fractions;
}

const sweepFileSchema = z
  .object({
    base: z.string().min(1).describe('the base config, relative to the sweep file'),
    sweep: z
      .object({
        name: z.string().min(1).optional(),
        set: z.record(z.string().min(1), z.unknown()).optional(),
        grid: z.record(z.string().min(1), z.unknown()).default({}),
        seeds: z.number().int().positive().optional(),
        fractions: z.array(z.number().positive()).min(1).optional(),
        baseline: z.string().min(1).optional(),
      })
      .strict()
      .default({ grid: {} }),
  })
  .strict();

/** Whether a YAML file is a sweep file (has a top-level `sweep:`) rather than a plain config. */
export function isSweepFile(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'sweep' in doc;
  } catch {
    return false; // not YAML at all: loadConfig reports it with the file name
  }
}

/** Reads a sweep file (format in the module comment); `base` resolves against the file's folder. */
export function readSweepFile(file: string): SweepSpec {
  const abs = resolve(file);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(abs, 'utf8'));
  } catch (err) {
    throw badInput(`not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file: abs });
  }
  const parsed = sweepFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = [...issue.path.map(String), ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]] : [])].join('.');
    const message = issue.code === 'unrecognized_keys' ? 'unknown key (allowed: base, sweep: {name, set, grid, seeds, fractions, baseline})' : issue.message;
    throw badInput(message, { file: abs, field: field || undefined });
  }
  const { base, sweep } = parsed.data;
  const fractions = sweep.fractions;
  if (fractions && new Set(fractions).size !== fractions.length) throw badInput('a fraction is listed twice', { file: abs, field: 'sweep.fractions' });
  const grid = Object.entries(sweep.grid).map(([key, listed]) => {
    if (key.split('.').some((p) => p === '')) throw badInput('a grid key is a dotted config key, e.g. optimizer.lr', { file: abs, field: `sweep.grid.${key}` });
    // A list is the axis' values; a single value is an axis of one (a list value is written [[a, b]]).
    const values = (Array.isArray(listed) ? listed : [listed]).map((value) => ({ value, text: valueText(value) }));
    if (values.length === 0) throw badInput('an axis needs at least one value', { file: abs, field: `sweep.grid.${key}` });
    return rejectRepeats({ key, values }, `${abs}: sweep.grid`);
  });
  const set = Object.entries(sweep.set ?? {}).map(([key, value]) => {
    if (key.split('.').some((p) => p === '')) throw badInput('a set key is a dotted config key, e.g. train.steps', { file: abs, field: `sweep.set.${key}` });
    return `${key}=${valueText(value)}`;
  });
  return { base: resolve(dirname(abs), base), set, grid, seeds: sweep.seeds, fractions, name: sweep.name, baseline: sweep.baseline, file: abs };
}

/** The dotted key of a `key=value` override text. */
const keyOf = (text: string) => text.slice(0, text.indexOf('='));

/**
 * The file's spec with the command line's on top: a `--grid` axis replaces the file's axis of the
 * same key (and adds one otherwise), a `--set` the file's set of the same key; `--seeds`,
 * `--fractions`, `--name`, `--baseline` replace.
 */
export function withCommandLine(
  spec: SweepSpec,
  cli: { grid: GridAxis[]; set?: string[]; seeds?: number; fractions?: number[]; name?: string; baseline?: string },
): SweepSpec {
  const cliSet = (cli.set ?? []).map((text) => `${parseOverride(text).path.join('.')}=${text.slice(text.indexOf('=') + 1)}`);
  const set = [...(spec.set ?? []).filter((t) => !cliSet.some((c) => keyOf(c) === keyOf(t))), ...cliSet];
  const keys = cli.grid.map((a) => a.key);
  const repeated = keys.find((k, i) => keys.indexOf(k) !== i);
  if (repeated) throw badInput(`--grid ${repeated} is given twice`, { fix: 'list all its values in one --grid KEY=V1,V2' });
  const grid = spec.grid.map((axis) => cli.grid.find((a) => a.key === axis.key) ?? axis);
  for (const axis of cli.grid) if (!spec.grid.some((a) => a.key === axis.key)) grid.push(axis);
  return {
    ...spec,
    grid,
    set,
    seeds: cli.seeds ?? spec.seeds,
    fractions: cli.fractions ?? spec.fractions,
    name: cli.name ?? spec.name,
    baseline: cli.baseline ?? spec.baseline,
  };
}
