/**
 * Reads an experiment config: YAML, `extends:` chains, `--set a.b=c` overrides, validation.
 *
 * Merge rule: objects merge key by key, everything else (scalars, lists) is replaced; a section
 * whose `type:` differs from the base's replaces it whole (a SOAP section never inherits AdamW's
 * options).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { badInput } from '../errors.js';
import { findOptimizer } from '../optim/registry.js';
import { experimentSchema, type ExperimentConfig } from './schema.js';

export type Tree = Record<string, unknown>;

export interface LoadedConfig {
  /** The validated config with every default filled in. */
  config: ExperimentConfig;
  /** Absolute path of the top config file. */
  file: string;
  /** Folders that relative data globs resolve against, in order: the config's, then the cwd. */
  baseDirs: string[];
}

export interface Override {
  /** Dotted path, e.g. `optimizer.lr`. */
  path: string[];
  value: unknown;
  /** The argument as typed, for error messages. */
  text: string;
}

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of `over` onto `base` (see the module comment for the rule). */
export function mergeTrees(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    const typeChanged = isTree(prev) && isTree(value) && 'type' in value && value.type !== prev.type;
    out[key] = isTree(prev) && isTree(value) && !typeChanged ? mergeTrees(prev, value) : value;
  }
  return out;
}

function readYamlTree(file: string, from?: string): Tree {
  if (!existsSync(file)) {
    throw badInput(`config file not found`, {
      file,
      field: from ? 'extends' : undefined,
      fix: from ? `fix the extends: path in ${from}` : 'check the --config path',
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
    throw badInput(`not valid YAML: ${msg}`, { file });
  }
  if (doc == null) doc = {};
  if (!isTree(doc)) throw badInput('a config must be a YAML mapping of sections', { file });
  return doc;
}

/** Reads `file` and everything it `extends:`, merged base-first. */
export function readConfigTree(file: string, seen: string[] = []): Tree {
  const abs = resolve(file);
  if (seen.includes(abs)) {
    throw badInput(`extends: cycle ${[...seen, abs].join(' → ')}`, { file: abs, field: 'extends' });
  }
  const tree = readYamlTree(abs, seen.at(-1));
  const { extends: parent, ...rest } = tree;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string') {
    throw badInput('extends must be a path to another config file', { file: abs, field: 'extends' });
  }
  const base = readConfigTree(resolve(dirname(abs), parent), [...seen, abs]);
  return mergeTrees(base, rest);
}

/** Parses one `--set a.b=c` argument; the value is read as a YAML scalar or flow list. */
export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  const key = eq > 0 ? text.slice(0, eq).trim() : '';
  if (!key || key.split('.').some((p) => p === '')) {
    throw badInput(`--set ${text}: expected KEY=VALUE with a dotted key, e.g. optimizer.lr=3e-3`);
  }
  let value: unknown;
  try {
    value = parseYaml(text.slice(eq + 1));
  } catch {
    throw badInput(`--set ${text}: the value is not a valid YAML scalar or list`);
  }
  return { path: key.split('.'), value, text };
}

export function applyOverrides(tree: Tree, overrides: Override[]): Tree {
  const out = structuredClone(tree);
  for (const o of overrides) {
    let node: Tree = out;
    for (const part of o.path.slice(0, -1)) {
      if (!isTree(node[part])) node[part] = {};
      node = node[part] as Tree;
    }
    node[o.path.at(-1)!] = o.value;
  }
  return out;
}

/** Turns the first zod issue into one line naming the file (or the --set), the field and what is allowed. */
export function describeIssue(issue: z.core.$ZodIssue, file: string, overrides: Override[], tree: Tree): ReturnType<typeof badInput> {
  let path = issue.path.map(String);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]];
    message = `unknown key${allowedKeysHint(path.slice(0, -1), tree)}`;
  } else if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator && path.at(-1) !== issue.discriminator) {
    path = [...path, String(issue.discriminator)];
  }
  const field = path.join('.');
  const override = overrides.find((o) => field === o.path.join('.') || field.startsWith(`${o.path.join('.')}.`));
  if (override) return badInput(`--set ${override.text}: ${field}: ${message}`);
  return badInput(message, { file, field: field || undefined });
}

function allowedKeysHint(sectionPath: string[], tree: Tree): string {
  const optimizer = isTree(tree.optimizer) ? findOptimizer(String(tree.optimizer.type)) : undefined;
  const keys = sectionPath.join('.') === 'optimizer' && optimizer ? Object.keys(optimizer.schema.shape) : shapeKeysAt(sectionPath);
  return keys.length ? ` (allowed here: ${keys.join(', ')})` : '';
}

/** Keys the schema accepts at a dotted section path, for "did you mean" style hints. */
function shapeKeysAt(sectionPath: string[]): string[] {
  if (sectionPath.length === 0) return ['extends', ...Object.keys(experimentSchema.shape)];
  if (sectionPath.length !== 1) return [];
  const section = sectionPath[0] as keyof typeof experimentSchema.shape;
  const schema = experimentSchema.shape[section] as unknown as { def?: unknown } | undefined;
  return schema ? objectKeys(schema) : [];
}

function objectKeys(schema: unknown): string[] {
  // Walks through zod wrappers (default, pipe) to the object shape; unions list nothing.
  let s = schema as { shape?: Tree; def?: { innerType?: unknown; in?: unknown } } | undefined;
  for (let i = 0; i < 5 && s && !s.shape; i++) s = (s.def?.innerType ?? s.def?.in) as typeof s;
  return s?.shape ? Object.keys(s.shape) : [];
}

/**
 * Loads, merges, overrides and validates a config. Throws a one-line `SoapTrainError` (exit 2)
 * naming the file or the --set argument and the dotted field.
 */
export function loadConfig(file: string, overrides: Override[] = []): LoadedConfig {
  const abs = resolve(file);
  const tree = applyOverrides(readConfigTree(abs), overrides);
  // YAML configs decay matrices only (nanoGPT/OLMo); createOptimizer keeps torch's "all".
  if (isTree(tree.optimizer) && tree.optimizer.decay === undefined) tree.optimizer = { ...tree.optimizer, decay: 'matrices' };
  const parsed = experimentSchema.safeParse(tree);
  if (!parsed.success) throw describeIssue(parsed.error.issues[0], abs, overrides, tree);
  return { config: parsed.data, file: abs, baseDirs: [dirname(abs), process.cwd()] };
}
