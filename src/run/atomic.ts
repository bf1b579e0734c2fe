/**
 * Crash-safe writes, after npm write-file-atomic and levanter's checkpoint commit.
 *
 * A file: write a temp file in the same folder, fsync it, rename it over the target, fsync the
 * folder. A reader sees the old file or the new one, never a torn one, and after the parent's
 * fsync the new name survives a power cut.
 *
 * A folder: fill a temp folder, fsync every file in it and the folder itself, rename it to its
 * final name, fsync the parent. The final name appears only with all its contents durable.
 *
 * The temp lives in the target's own folder because rename(2) is atomic only within one file
 * system.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Codes with which some platforms (Windows, some network file systems) refuse to fsync a folder. */
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'EACCES', 'EBADF']);

/**
 * fsync a directory so a create, rename or delete inside it survives a power cut. Where the
 * platform cannot fsync a directory it is a no-op: there the rename is as durable as it gets.
 */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeSync(fd);
  }
}

/** fsync one file's data and metadata. */
export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A name no other writer (process, or call in this process) picks at the same time. */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data` atomically: temp file in the same folder, write, fsync, rename,
 * fsync the folder. On any failure (ENOSPC included) the temp file is removed, the old file is
 * untouched and the error is rethrown.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

/** fsync every file under `dir` (recursively), then every folder bottom-up, `dir` last. */
function fsyncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(path);
    else if (entry.isFile()) fsyncFile(path);
  }
  fsyncDir(dir);
}

/**
 * Publishes a finished temp folder under its final name: fsync its files and itself, rename
 * `tmpDir` → `finalDir`, fsync the parent. Both must be in the same folder (same file system).
 * `finalDir` must not exist: rename(2) would refuse a non-empty one anyway, and silently
 * replacing an empty one could hide a bug; the caller decides what to do with an old folder.
 */
export function commitDirAtomic(tmpDir: string, finalDir: string): void {
  if (dirname(tmpDir) !== dirname(finalDir)) {
    throw new Error(`commitDirAtomic: ${tmpDir} and ${finalDir} must share a parent folder`);
  }
  fsyncTree(tmpDir);
  // renameSync would silently replace an empty finalDir; a hard error is the safer contract.
  if (existsSync(finalDir)) {
    throw Object.assign(new Error(`commitDirAtomic: ${finalDir} already exists`), { code: 'EEXIST' });
  }
  renameSync(tmpDir, finalDir);
  fsyncDir(dirname(finalDir));
}
