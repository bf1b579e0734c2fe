/**
 * What `report RUN…` reads: each argument is a run directory, or a folder of run directories
 * (a family, such as a sweep's output), which stands for all the runs directly inside it.
 * Runs get display names that are unique, since charts tell runs apart by name.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { badInput } from '../errors.js';
import { runPaths } from '../run/run-dir.js';

const isDir = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();
const isRunDir = (path: string): boolean => existsSync(runPaths(path).config);

/**
 * Absolute run directories, in argument order, a family's runs sorted by name, each once. An
 * argument that is neither a run nor holds runs is passed through, so the run reader names the
 * problem (no such directory, no config.yaml).
 */
export function expandRunDirs(args: readonly string[]): string[] {
  if (args.length === 0) throw badInput('no run directories given', { fix: 'soap-train report RUN_DIR… (a run directory, or a folder of runs)' });
  const dirs: string[] = [];
  for (const arg of args) {
    const abs = resolve(arg);
    if (isDir(abs) && !isRunDir(abs)) {
      const children = readdirSync(abs)
        .sort()
        .map((name) => join(abs, name))
        .filter((child) => isDir(child) && isRunDir(child));
      if (children.length > 0) {
        dirs.push(...children);
        continue;
      }
    }
    dirs.push(abs);
  }
  return [...new Set(dirs)];
}

/**
 * The basename of each directory, lengthened with parent folders (`a/seed-1`, `b/seed-1`) where
 * two runs would otherwise share a name.
 */
export function runLabels(dirs: readonly string[]): string[] {
  const labelOf = (dir: string, depth: number): string => {
    const parts = resolve(dir).split(sep).filter(Boolean);
    return parts.slice(Math.max(0, parts.length - depth)).join('/');
  };
  const depths = dirs.map(() => 1);
  // Lengthen only the clashing names, one folder at a time, until no two agree (or paths run out).
  for (let round = 0; round < 64; round++) {
    const labels = dirs.map((d, i) => labelOf(d, depths[i]));
    const clashing = labels.map((l, i) => labels.indexOf(l) !== i || labels.lastIndexOf(l) !== i);
    if (!clashing.some(Boolean)) return labels;
    clashing.forEach((c, i) => {
      if (c) depths[i]++;
    });
  }
  return dirs.map((d) => resolve(d));
}
