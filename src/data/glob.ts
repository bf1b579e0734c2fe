/**
 * A small, dependency-free file glob: `*` and `?` within one path segment, `**` for any number
 * of directories (including none), `[abc]` character classes. Node 20 has no `fs.glob`.
 *
 * Results are sorted by code point (never by locale), so every machine sees shards in the same
 * order. Dot files match only when the pattern segment itself starts with a dot, as in a shell.
 */
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';

/** True when the string has glob syntax; a plain path is matched literally. */
export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** A regular expression for one path segment. */
function segmentRegex(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 1);
      if (close < 0) {
        re += '\\[';
      } else {
        let body = segment.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function isDirectory(path: string, entry: Dirent): boolean {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Walks `segments` from `dir`, pushing matching files into `out`. */
function walk(dir: string, segments: string[], out: Set<string>): void {
  if (segments.length === 0) {
    if (isFile(dir)) out.add(dir);
    return;
  }
  const [head, ...rest] = segments;
  if (head === '**') {
    walk(dir, rest, out); // zero directories
    for (const entry of listDir(dir)) {
      const path = join(dir, entry.name);
      if (!entry.name.startsWith('.') && isDirectory(path, entry)) walk(path, segments, out);
    }
    return;
  }
  if (!hasGlobMagic(head)) {
    walk(join(dir, head), rest, out);
    return;
  }
  const re = segmentRegex(head);
  for (const entry of listDir(dir)) {
    if (entry.name.startsWith('.') && !head.startsWith('.')) continue;
    if (!re.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (rest.length === 0) {
      if (isFile(path)) out.add(path);
    } else if (isDirectory(path, entry)) walk(path, rest, out);
  }
}

/** Code-point order: the same on every machine and locale. */
export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Files matching `pattern`, resolved against `baseDir` when relative; absolute paths, sorted.
 * Forward slashes separate segments on every platform.
 */
export function globFiles(pattern: string, baseDir: string): string[] {
  const absolute = isAbsolute(pattern) ? pattern : resolve(baseDir, pattern);
  const normalized = absolute.split(sep).join('/');
  const parts = normalized.split('/');
  // The literal prefix is where the walk starts (`/` on POSIX, `C:` on Windows).
  let i = 0;
  while (i < parts.length - 1 && !hasGlobMagic(parts[i]) && parts[i] !== '**') i++;
  const root = parts.slice(0, i).join('/') || '/';
  const out = new Set<string>();
  walk(root, parts.slice(i).filter((p) => p !== ''), out);
  return [...out].sort(compareCodePoints);
}

/**
 * Expands each pattern against the first base directory where it matches anything (the config
 * file's directory, then the working directory, say), keeping pattern order, each pattern's
 * files sorted, duplicates dropped. Returns the patterns that matched nothing separately.
 */
export function expandGlobs(patterns: string[], baseDirs: string[]): { files: string[]; unmatched: string[] } {
  const files: string[] = [];
  const seen = new Set<string>();
  const unmatched: string[] = [];
  const bases = baseDirs.length > 0 ? baseDirs : [process.cwd()];
  for (const pattern of patterns) {
    let matched: string[] = [];
    for (const base of isAbsolute(pattern) ? [bases[0]] : bases) {
      matched = globFiles(pattern, base);
      if (matched.length > 0) break;
    }
    if (matched.length === 0) unmatched.push(pattern);
    for (const f of matched) {
      if (!seen.has(f)) {
        seen.add(f);
        files.push(f);
      }
    }
  }
  return { files, unmatched };
}
