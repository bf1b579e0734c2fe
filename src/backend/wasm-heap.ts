/**
 * Grows the wasm backend's heap to a step's planned size in one go, before the first step.
 *
 * Why: tfjs-backend-wasm starts with a 16 MiB heap and emscripten grows it by ~20% at a time as
 * tensors are allocated, so the first training step of even the tiny model grows it ~23 times
 * (16 → 715 MiB). Each grow replaces the heap's ArrayBuffer, and V8 answers the growing
 * external memory with garbage collections: 54 of them (0.2–0.3 s) inside the first step,
 * none in later steps (tiny model, measured 2026-12-02). One malloc of the planned size, freed
 * at once, leaves the heap that large and the block free for the allocator: the step then
 * allocates without growing.
 *
 * The reservation costs no resident memory: the grown pages are mapped but untouched (the heap
 * is not shrinkable either way, so a step would have grown it to about this size anyway). It
 * changes nothing a step computes.
 *
 * With the native binding, the reserved heap is also advised to use transparent huge pages:
 * the first step touches every page of it for the first time, 116k page faults of 4 KiB for
 * the tiny model (~1 s of kernel time here), against a few hundred of 2 MiB.
 */
import { tf } from '../tf.js';
import { loadNativeLapack } from '../optim/linalg/native.js';

/** The Emscripten module exports used here (public in Emscripten, private to the backend). */
interface WasmHeapModule {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  HEAPU8: Uint8Array;
}

/**
 * The largest size asked for: emscripten's heap maximum in tfjs-backend-wasm 4.22 is 4294901760
 * bytes (65535 pages); a request at the limit only fails (malloc returns 0), but `_malloc` takes
 * a 32-bit size, so nothing from 2³² up may reach it.
 */
const LARGEST_RESERVATION = 4294901760 - 64 * 2 ** 20;

export interface HeapReservation {
  /** Heap size before and after, in bytes. */
  before: number;
  after: number;
  /** Bytes of the heap advised to use transparent huge pages (0: none; see below). */
  hugePages: number;
}

/**
 * Grows the wasm heap to at least `bytes` (capped below the 4 GiB limit) with one allocation
 * that is freed at once. Does nothing when wasm is not the active backend, when the heap is
 * already that large, or when the allocation fails (the step then grows the heap as before).
 * @returns the heap sizes, or null when nothing was tried.
 */
export function reserveWasmHeap(bytes: number): HeapReservation | null {
  if (tf.getBackend() !== 'wasm') return null;
  // The backend keeps its Emscripten module in `wasm` (the same private field wasm-kernels.ts uses).
  const module = (tf.backend() as unknown as { wasm?: Partial<WasmHeapModule> }).wasm;
  if (!module?._malloc || !module._free || !module.HEAPU8) return null;
  const before = module.HEAPU8.length;
  const want = Math.min(Math.ceil(bytes), LARGEST_RESERVATION);
  if (!(want > before)) return null;
  // Asking for the whole size (not the difference) is simplest: the free block it leaves may
  // include what was free at the top already, and the heap ends at least `want` bytes long.
  const pointer = module._malloc(want);
  if (pointer !== 0) module._free(pointer);
  const hugePages = loadNativeLapack()?.adviseHugePages(module.HEAPU8) ?? 0;
  return { before, after: module.HEAPU8.length, hugePages };
}
