/**
 * One TensorBoard events file, `<dir>/events.out.tfevents.<unix seconds>.<host>.<pid>.<n>`, that
 * a run appends framed events to.
 *
 * Cheap and harmless by construction: records are buffered in memory (bounded) and appended in
 * one write when the buffer passes `maxPendingBytes`, when `flushEveryMs` has passed since the
 * last write, on `flush()` and on `close()`; no file descriptor is held between writes, and no
 * fsync (the events are a view of metrics.jsonl, not the record). Any I/O error reports one
 * warning and turns the writer into a no-op: TensorBoard output never stops a training run.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { encodeRecord } from './record.js';

export interface EventsFileOptions {
  /** Told once, when the writer gives up after an I/O error. */
  warn: (message: string) => void;
  /** Buffered bytes that trigger a write (default 64 KiB): the bound on the memory held. */
  maxPendingBytes?: number;
  /** A write also happens once this long has passed since the last one (default 10 s), so a live run shows up. */
  flushEveryMs?: number;
  /** Milliseconds since the epoch: names the file and times the periodic flush (tests pass their own). */
  clock?: () => number;
}

/** Files created by this process: the name's last part, so two writers never share a name. */
let filesCreated = 0;

export class EventsFileWriter {
  /** The file's path; null when it could not be created. */
  readonly path: string | null;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private lastWriteMs: number;
  private failed = false;
  private closed = false;
  private readonly maxPendingBytes: number;
  private readonly flushEveryMs: number;
  private readonly clock: () => number;

  /** Creates the file (never an existing one) holding the `first` events, written at once. */
  constructor(
    dir: string,
    first: readonly Uint8Array[],
    private readonly opts: EventsFileOptions,
  ) {
    this.maxPendingBytes = opts.maxPendingBytes ?? 64 * 1024;
    this.flushEveryMs = opts.flushEveryMs ?? 10_000;
    this.clock = opts.clock ?? Date.now;
    this.lastWriteMs = this.clock();
    this.path = this.create(dir, Buffer.concat(first.map(encodeRecord)));
  }

  /** Buffers one serialized Event; writes the buffer when it is full or old. */
  append(event: Uint8Array): void {
    if (this.failed || this.closed) return;
    const record = encodeRecord(event);
    this.pending.push(record);
    this.pendingBytes += record.length;
    if (this.pendingBytes >= this.maxPendingBytes || this.clock() - this.lastWriteMs >= this.flushEveryMs) this.flush();
  }

  /** Writes everything buffered (no fsync). */
  flush(): void {
    if (this.failed || this.pending.length === 0 || this.path === null) return;
    const bytes = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.lastWriteMs = this.clock();
    try {
      appendFileSync(this.path, bytes);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Flushes; later appends are ignored. Safe to call twice. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  /** Whether the writer is still writing (false after an I/O error). */
  get ok(): boolean {
    return !this.failed;
  }

  private create(dir: string, header: Uint8Array): string | null {
    const seconds = Math.floor(this.clock() / 1000);
    // A name taken (another process, same second and pid) is skipped: `wx` never reuses a file.
    for (let attempt = 0; attempt < 100; attempt++) {
      const path = join(dir, `events.out.tfevents.${seconds}.${hostname()}.${process.pid}.${filesCreated++}`);
      try {
        writeFileSync(path, header, { flag: 'wx' });
        return path;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        this.fail(err, path);
        return null;
      }
    }
    this.fail(new Error('no free file name after 100 tries'), dir);
    return null;
  }

  private fail(err: unknown, path = this.path): void {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.opts.warn(`TensorBoard events file ${path}: ${err instanceof Error ? err.message : String(err)}; no more TensorBoard output for this run`);
  }
}
