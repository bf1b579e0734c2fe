/**
 * Text sources for `prepare`: which files an `--input` names, and the documents in them.
 *
 * - a `.txt` file (or any file not named `.jsonl`/`.ndjson`) is one document;
 * - a `.jsonl` / `.ndjson` file is one JSON object per line, the document in a string field
 *   (`text` by default); blank lines are skipped;
 * - a directory stands for every `.txt`, `.jsonl` and `.ndjson` file below it (other files, such
 *   as the `.json` twins in the SOTU package, are ignored);
 * - anything else is a glob; `-` is standard input (text or JSONL by `stdinFormat`).
 *
 * All files are sorted by path (code-point order) and deduplicated, so the same inputs always
 * give the same document order and therefore byte-identical shards. Standard input comes last.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { badInput } from '../errors.js';
import { compareCodePoints, globFiles, hasGlobMagic } from './glob.js';

export type SourceFormat = 'txt' | 'jsonl';

export interface SourceFile {
  /** Absolute path, or `-` for standard input. */
  path: string;
  /** As recorded in meta.json: relative to the working directory, forward slashes. */
  display: string;
  format: SourceFormat;
  /** File size in bytes (0 for stdin: unknown). */
  size: number;
}

export interface SourceRecord {
  path: string;
  bytes: number;
  sha256: string;
  documents: number;
}

export interface Document {
  text: string;
  /** Index into the resolved source list. */
  source: number;
}

const TEXT_EXTENSIONS = ['.txt', '.jsonl', '.ndjson'];

function formatOf(path: string): SourceFormat {
  return /\.(jsonl|ndjson)$/i.test(path) ? 'jsonl' : 'txt';
}

function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return (rel.startsWith('..') ? abs : rel).split(sep).join('/');
}

function listTextFiles(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listTextFiles(path, out);
    else if (TEXT_EXTENSIONS.some((ext) => entry.name.toLowerCase().endsWith(ext))) out.push(path);
  }
}

/**
 * The source files named by `inputs` (files, directories, globs, `-`), sorted and deduplicated.
 * An input that names nothing is a bad-input error naming it.
 */
export function resolveInputs(inputs: string[], stdinFormat: SourceFormat = 'txt'): SourceFile[] {
  if (inputs.length === 0) throw badInput('no input given', { field: '--input', fix: 'pass text files, directories, globs or - for stdin' });
  const files = new Set<string>();
  let stdin = false;
  for (const input of inputs) {
    if (input === '-') {
      stdin = true;
      continue;
    }
    const abs = resolve(input);
    let stat;
    try {
      stat = statSync(abs);
    } catch {
      stat = undefined;
    }
    let found: string[] = [];
    if (stat?.isDirectory()) listTextFiles(abs, found);
    else if (stat?.isFile()) found = [abs];
    else if (hasGlobMagic(input)) found = globFiles(input, process.cwd());
    if (found.length === 0) {
      const what = stat?.isDirectory() ? `directory "${input}" holds no .txt or .jsonl files` : `no files match "${input}"`;
      throw badInput(what, { field: '--input', fix: 'check the path or glob' });
    }
    for (const f of found) files.add(f);
  }
  const sorted = [...files].sort(compareCodePoints);
  const out: SourceFile[] = sorted.map((path) => ({ path, display: displayPath(path), format: formatOf(path), size: statSync(path).size }));
  if (stdin) out.push({ path: '-', display: '-', format: stdinFormat, size: 0 });
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badInput('not valid UTF-8 text', { file: where, fix: 'convert it to UTF-8 (e.g. iconv -t UTF-8)' });
  }
}

/** Parses one JSONL line and returns its text field; errors name `file:line`. */
function jsonlText(line: string, where: string, field: string): string | undefined {
  if (line.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw badInput(`invalid JSON (${(err as Error).message})`, { file: where, fix: 'each line of a .jsonl file must be one JSON object' });
  }
  const text = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[field] : undefined;
  if (typeof text !== 'string') {
    const problem = text === undefined ? 'is missing' : `is a ${Array.isArray(text) ? 'array' : typeof text}, not a string`;
    throw badInput(`field "${field}" ${problem}`, { file: where, field, fix: 'set --text-field to the field holding the document text' });
  }
  return text;
}

export interface ReadProgress {
  /** Called with the byte count of each chunk read. */
  onBytes?(bytes: number): void;
}

/**
 * Streams the documents of one source in order, then returns its record (bytes, sha256,
 * document count). Empty documents are skipped (they would add a lone end-of-text token).
 */
export async function* readSource(
  source: SourceFile,
  index: number,
  opts: { textField: string; stdin?: NodeJS.ReadableStream } & ReadProgress,
): AsyncGenerator<Document, SourceRecord> {
  const hash = createHash('sha256');
  let bytes = 0;
  let documents = 0;
  const stream = source.path === '-' ? (opts.stdin ?? process.stdin) : createReadStream(source.path, { highWaterMark: 1 << 20 });
  const chunks: Buffer[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let line = 0;
  for await (const raw of stream) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
    hash.update(chunk);
    bytes += chunk.length;
    opts.onBytes?.(chunk.length);
    if (source.format === 'txt') {
      chunks.push(chunk);
      continue;
    }
    // JSONL: cut complete lines out of the byte stream; decode each line on its own.
    let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let nl = data.indexOf(10);
    while (nl >= 0) {
      line += 1;
      const where = `${source.display}:${line}`;
      const text = jsonlText(decodeUtf8(data.subarray(0, nl), where), where, opts.textField);
      if (text) {
        documents += 1;
        yield { text, source: index };
      }
      data = data.subarray(nl + 1);
      nl = data.indexOf(10);
    }
    pending = Buffer.from(data);
  }
  if (source.format === 'txt') {
    const text = decodeUtf8(Buffer.concat(chunks), source.display);
    if (text.length > 0) {
      documents += 1;
      yield { text, source: index };
    }
  } else if (pending.length > 0) {
    line += 1;
    const where = `${source.display}:${line}`;
    const text = jsonlText(decodeUtf8(pending, where), where, opts.textField);
    if (text) {
      documents += 1;
      yield { text, source: index };
    }
  }
  return { path: source.display, bytes, sha256: hash.digest('hex'), documents };
}
