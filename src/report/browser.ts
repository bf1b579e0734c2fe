/**
 * report.html in a headless Chromium: the page's DOM after its scripts ran (to check that every
 * chart drew), its console errors, and a screenshot (`report --screenshot`, the README picture).
 * Chromium is optional: callers get null from findChromium and decide what that means.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];
const MAC_APPS = ['/Applications/Chromium.app/Contents/MacOS/Chromium', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $CHROMIUM if set, else the first Chromium or Chrome on PATH (or in /Applications). */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CHROMIUM) return executable(env.CHROMIUM) ? env.CHROMIUM : null;
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of CANDIDATES) if (executable(join(dir, name))) return join(dir, name);
  }
  return MAC_APPS.find(executable) ?? null;
}

export interface HeadlessRun {
  /** stdout: the serialised DOM for --dump-dom. */
  stdout: string;
  stderr: string;
  /** Every console message and uncaught exception the page produced, from Chromium's log. */
  consoleMessages: string[];
  status: number | null;
}

export interface HeadlessOptions {
  width?: number;
  height?: number;
  /** Virtual time the page gets before the dump or screenshot (scripts, not wall clock). */
  budgetMs?: number;
  timeoutMs?: number;
  /** URL fragment without '#', e.g. report.html's `hide=run-a&log=1`. */
  fragment?: string;
}

const pageUrl = (htmlFile: string, opts: HeadlessOptions): string => `${pathToFileURL(resolve(htmlFile)).href}${opts.fragment ? `#${opts.fragment}` : ''}`;

/**
 * The page's console lines in Chromium's log (--enable-logging=stderr):
 * `[pid:tid:date/time:INFO:CONSOLE:12] "message", source: file:///… (12)`. Chromium logs every
 * console level, and uncaught exceptions ("Uncaught TypeError: …"), as INFO, so the level cannot
 * be told apart here: a page that should be silent is checked for no console lines at all.
 */
export function consoleLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /:CONSOLE[(:]\d*\)?\]/.test(line));
}

function runHeadless(chromium: string, args: readonly string[], opts: HeadlessOptions): HeadlessRun {
  // A throwaway profile: a user's running browser (or a parallel test) holds the default one.
  const profile = mkdtempSync(join(tmpdir(), 'soap-train-chromium-'));
  try {
    const result = spawnSync(
      chromium,
      [
        '--headless',
        // The sandbox needs user namespaces that containers and CI runners often lack; the page
        // is our own local file.
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--mute-audio',
        `--user-data-dir=${profile}`,
        '--enable-logging=stderr',
        '--v=0',
        `--window-size=${opts.width ?? 1400},${opts.height ?? 2400}`,
        `--virtual-time-budget=${opts.budgetMs ?? 5000}`,
        ...args,
      ],
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    if (result.error) throw result.error;
    return { stdout: result.stdout, stderr: result.stderr, consoleMessages: consoleLines(result.stderr), status: result.status };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The page's DOM after its scripts ran. */
export function dumpDom(chromium: string, htmlFile: string, opts: HeadlessOptions = {}): HeadlessRun {
  return runHeadless(chromium, ['--dump-dom', pageUrl(htmlFile, opts)], opts);
}

/** A PNG of the page's first `height` pixels at `width`. */
export function screenshot(chromium: string, htmlFile: string, pngFile: string, opts: HeadlessOptions = {}): HeadlessRun {
  return runHeadless(chromium, [`--screenshot=${resolve(pngFile)}`, pageUrl(htmlFile, opts)], opts);
}
