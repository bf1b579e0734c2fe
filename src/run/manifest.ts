/**
 * manifest.json: what ran, where and with what, so a result can be traced to its code.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function packageVersion(): string {
  for (const candidate of [join(packageRoot, 'package.json'), join(packageRoot, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'soap-train' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate (the compiled tree sits one level deeper)
    }
  }
  return 'unknown';
}

/** The commit of the soap-train checkout, with `-dirty` when it has uncommitted changes. */
export function gitCommit(): string | null {
  try {
    const opts = { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[], encoding: 'utf8' as const };
    const head = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return null;
  }
}

export interface Manifest {
  argv: string[];
  version: string;
  git_commit: string | null;
  config_file: string;
  backend: { name: string; reason: string };
  started_at: string;
  node: string;
  host: string;
  pid: number;
}

export function buildManifest(configFile: string, backend: { name: string; reason: string }, argv = process.argv.slice(2)): Manifest {
  return {
    argv,
    version: packageVersion(),
    git_commit: gitCommit(),
    config_file: configFile,
    backend,
    started_at: new Date().toISOString(),
    node: process.version,
    host: hostname(),
    pid: process.pid,
  };
}
