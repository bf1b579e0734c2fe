#!/usr/bin/env node
/**
 * Builds the optional native LAPACK binding native/build/lapack.node from native/lapack.c with
 * the system C compiler, without node-gyp (which would need to download node headers).
 *
 *     node scripts/build-native.mjs        (npm run native; part of `prepare`)
 *
 * Needs a C compiler (`cc`, or $CC), Node's headers (node_api.h) and OpenBLAS
 * (Debian/Ubuntu: apt-get install libopenblas-dev); falls back to -llapack -lblas without
 * OpenBLAS's thread control. The built module is loaded once in a child process and checked on
 * a 2×2 problem before it is kept.
 *
 * ALWAYS exits 0 and prints exactly one line: what was built, or that the native LAPACK is not
 * available and why (soap-train then uses its TypeScript linear algebra). A failed build removes
 * any earlier lapack.node so what is on disk matches what was printed.
 * SOAP_TRAIN_NATIVE=0 skips the build; CC overrides the compiler (CC=false simulates none).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(ROOT, 'native', 'lapack.c');
const OUT_DIR = join(ROOT, 'native', 'build');
const OUT = join(OUT_DIR, 'lapack.node');
const FALLBACK = 'soap-train will use its TypeScript linear algebra';

/** Link variants, best first: OpenBLAS (LAPACK included, thread control), then plain LAPACK. */
const VARIANTS = [
  { name: 'OpenBLAS', flags: ['-lopenblas'] },
  { name: 'LAPACK+BLAS (no OpenBLAS thread control)', flags: ['-DSOAP_NO_OPENBLAS', '-llapack', '-lblas'] },
];

function unavailable(why) {
  // Keep the single line single: compiler errors can be long and multi-line.
  const oneLine = why.replace(/\s+/g, ' ').trim().slice(0, 300);
  try {
    rmSync(OUT, { force: true });
  } catch {
    // nothing to remove, or not removable: the message below still stands
  }
  console.log(`native LAPACK not available (${oneLine}); ${FALLBACK}.`);
}

/** The first directory holding node_api.h: $NODE_INCLUDE_DIR, next to this node, then system paths. */
function nodeIncludeDir() {
  const candidates = [
    process.env.NODE_INCLUDE_DIR,
    resolve(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter((d) => typeof d === 'string' && d.length > 0);
  return candidates.find((d) => existsSync(join(d, 'node_api.h'))) ?? null;
}

/** The last meaningful line of a failed command's stderr (the linker's "cannot find -l…" etc.). */
function lastError(r) {
  if (r.error) return r.error.code === 'ENOENT' ? 'not found' : r.error.message;
  const lines = `${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).filter(Boolean);
  // The cause ("cannot find -lopenblas", "fatal error: node_api.h: No such file") beats the
  // linker's closing "collect2: error: ld returned 1 exit status".
  const cause = lines.find((l) => /cannot find|no such file|fatal error|undefined reference/i.test(l));
  const err = lines.filter((l) => /error/i.test(l) && !/collect2/.test(l));
  return (cause ?? err.at(-1) ?? lines.at(-1) ?? `exit status ${r.status ?? r.signal}`).slice(0, 200);
}

/** Loads the module in a fresh node and solves [[2,1],[1,2]] in both precisions. */
function smokeTest(file) {
  const code = `
    const l = require(${JSON.stringify(file)});
    for (const T of [Float64Array, Float32Array]) {
      const w = new T(2), v = new T(4);
      l.eigh(new T([2, 1, 1, 2]), 2, w, v);
      if (Math.abs(w[0] - 3) > 1e-5 || Math.abs(w[1] - 1) > 1e-5) throw new Error('wrong eigenvalues ' + w);
      const q = new T(2);
      l.qr(new T([3, 4]), 2, 1, q);
      if (Math.abs(Math.abs(q[0]) - 0.6) > 1e-5) throw new Error('wrong Q ' + q);
    }`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 ? null : lastError(r);
}

function main() {
  if (process.env.SOAP_TRAIN_NATIVE === '0') return unavailable('build skipped: SOAP_TRAIN_NATIVE=0');
  if (!existsSync(SOURCE)) return unavailable(`${SOURCE} is missing`);
  const include = nodeIncludeDir();
  if (!include) return unavailable('node_api.h not found: no Node headers next to node or in /usr/include/node (set NODE_INCLUDE_DIR)');
  // $CC may carry arguments ("ccache gcc"); split on whitespace like make does.
  const cc = (process.env.CC ?? '').trim().split(/\s+/).filter(Boolean);
  if (cc.length === 0) cc.push('cc');
  mkdirSync(OUT_DIR, { recursive: true });
  // The .node extension matters: require() would parse any other file as JavaScript.
  const tmp = join(OUT_DIR, `lapack.tmp-${process.pid}.node`);
  const failures = [];
  try {
    for (const variant of VARIANTS) {
      const args = [
        ...cc.slice(1),
        '-O3', '-fno-trapping-math', '-std=c11', '-shared', '-fPIC', '-Wall',
        `-I${include}`,
        SOURCE,
        ...variant.flags,
        '-lm',
        '-o', tmp,
      ];
      const r = spawnSync(cc[0], args, { encoding: 'utf8', timeout: 180_000 });
      if (r.error?.code === 'ENOENT') return unavailable(`no C compiler: \`${cc[0]}\` not found (install gcc or set CC)`);
      if (r.status !== 0) {
        failures.push(`${variant.name}: ${cc[0]} ${lastError(r)}`);
        continue;
      }
      const smoke = smokeTest(tmp);
      if (smoke) {
        failures.push(`${variant.name}: built but does not load: ${smoke}`);
        continue;
      }
      // Atomic replace, so a process loading lapack.node never sees a half-written file.
      renameSync(tmp, OUT);
      console.log(`native LAPACK built: ${OUT} (${variant.name}, headers ${include}).`);
      return;
    }
    const hint = failures.some((f) => /-lopenblas|-llapack|cannot find/.test(f)) ? ' — install libopenblas-dev' : '';
    unavailable(`build failed${hint}: ${failures.join('; ')}`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

try {
  main();
} catch (err) {
  unavailable(`build script error: ${err instanceof Error ? err.message : String(err)}`);
}
process.exitCode = 0;
