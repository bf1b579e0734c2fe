/*
 * soap-train's optional binding to the system LAPACK (OpenBLAS on Debian/Ubuntu).
 *
 * Exports (all synchronous; all matrices row-major; Float32Array → s* routines,
 * Float64Array → d* routines; every array of one call must have the same element type):
 *
 *   eigh(a, n, values, vectors)      ?syevd. a: n×n symmetric (upper triangle read).
 *                                    values (n) ← eigenvalues, DESCENDING; vectors (n×n) ←
 *                                    unit eigenvector of values[j] in column j.
 *                                    `vectors` may be `a` itself (in place, no copy).
 *   qr(a, rows, cols, q)             ?gelqf+?orglq on Aᵀ (= ?geqrf+?orgqr on A). q (rows×cols)
 *                                    ← thin orthonormal Q, LAPACK signs. `q` may be `a`.
 *   qrFull(a, rows, cols, q)         the full rows×rows orthogonal Q of the same QR: first cols
 *                                    columns as qr's, then a basis of range(A)⊥. a: rows×cols;
 *                                    q: rows×rows (must not be a).
 *   gemm(a, b, c, m, n, k, tA, tB)   ?gemm: c (m×n) ← op(a)·op(b), op = transpose when tA/tB.
 *   geluForward(x, y)                y ← gelu(x), exact (erf) GeLU; Float32Array only, same length.
 *   geluBackward(x, dy, dx)          dx ← dy·gelu'(x); Float32Array only (elementwise_kernels.h).
 *   adviseHugePages(bytes) → number  madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior of the
 *                                    memory under a Uint8Array (the wasm heap): bytes advised, 0
 *                                    where the kernel or platform has no transparent huge pages.
 *   setNumThreads(k) → boolean       openblas_set_num_threads (process-wide); false when the
 *                                    LAPACK in use is not OpenBLAS (nothing to set).
 *   getNumThreads() → number         openblas_get_num_threads, or 1 when not OpenBLAS.
 *   config: string                   openblas_get_config(), or a note that it is not OpenBLAS.
 *   abi: number                      bumped whenever this interface changes.
 *
 * Errors (bad arguments, non-finite input, no convergence) are thrown as JS Errors.
 * The module is context-aware (NAPI_MODULE_INIT) and keeps no global state, so any number of
 * worker_threads can load it and call it concurrently. OpenBLAS's thread count is a process-wide
 * setting: calls from several JS threads at once should run it single-threaded.
 *
 * Build: node scripts/build-native.mjs (cc -O3 -fno-trapping-math -shared -fPIC … -lopenblas).
 * Only the Fortran LAPACK symbols are used (LP64, gfortran hidden string lengths), so
 * libopenblas-dev alone is enough; LAPACKE is not needed.
 */
/* madvise's MADV_HUGEPAGE is a Linux extension, hidden by -std=c11 without this. */
#define _DEFAULT_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <limits.h>
#include <math.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ABI_VERSION 3
/* ?syevd's workspace 1 + 6n + 2n² must fit a 32-bit LAPACK integer. */
#define MAX_ORDER 32000
#define TILE 64

/* Fortran LAPACK, LP64; trailing size_t arguments are gfortran's hidden CHARACTER lengths. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t, size_t);
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t, size_t);
void dgelqf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void sgelqf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void dorglq_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);
void sorglq_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
             float *work, const int *lwork, int *info);

void dgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda, const double *b, const int *ldb,
            const double *beta, double *c, const int *ldc, size_t, size_t);
void sgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
            const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
            const float *beta, float *c, const int *ldc, size_t, size_t);

#ifndef SOAP_NO_OPENBLAS
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
#endif

#define REAL double
#define P(x) d##x
#include "lapack_kernels.h"
#undef REAL
#undef P

#define REAL float
#define P(x) s##x
#include "lapack_kernels.h"
#undef REAL
#undef P

#include "elementwise_kernels.h"

/* ---- N-API plumbing ---------------------------------------------------------------------- */

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      throw_pending_or(env, "lapack: N-API call failed: " #call);          \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static void throw_pending_or(napi_env env, const char *msg) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_error(env, NULL, msg);
}

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value fail_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

typedef struct {
  napi_typedarray_type type; /* napi_float32_array or napi_float64_array */
  void *data;                /* already offset by the view's byteOffset */
  size_t length;             /* elements */
} View;

/* Reads a Float32Array/Float64Array argument; returns 0 (and throws) on anything else. */
static int get_view(napi_env env, napi_value value, const char *what, View *out) {
  bool is_ta = false;
  if (napi_is_typedarray(env, value, &is_ta) != napi_ok || !is_ta) {
    char msg[160];
    snprintf(msg, sizeof msg, "lapack: %s must be a Float32Array or Float64Array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &out->type, &out->length, &out->data, &buffer, &offset) != napi_ok) {
    throw_pending_or(env, "lapack: could not read a typed array");
    return 0;
  }
  if (out->type != napi_float32_array && out->type != napi_float64_array) {
    char msg[160];
    snprintf(msg, sizeof msg, "lapack: %s must be a Float32Array or Float64Array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

/* Reads a non-negative integer argument ≤ max; returns 0 (and throws) otherwise. */
static int get_size(napi_env env, napi_value value, const char *what, double max, int *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0) || d != floor(d) || d > max) {
    char msg[160];
    snprintf(msg, sizeof msg, "lapack: %s must be an integer in [0, %.0f]", what, max);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  *out = (int)d;
  return 1;
}

static size_t elem_size(napi_typedarray_type t) { return t == napi_float64_array ? 8 : 4; }

/* Copies src → dst unless they are the same memory; partially overlapping views are refused. */
static int copy_unless_same(napi_env env, const View *src, const View *dst, size_t count) {
  if (src->data == dst->data || count == 0) return 1;
  size_t bytes = count * elem_size(src->type);
  const char *s = src->data;
  const char *d = dst->data;
  if (s < d + bytes && d < s + bytes) {
    napi_throw_error(env, NULL, "lapack: output overlaps the input without being the same array view");
    return 0;
  }
  memcpy(dst->data, src->data, bytes);
  return 1;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* eigh(a, n, values, vectors) */
static napi_value Eigh(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return fail_type(env, "lapack.eigh(a, n, values, vectors): expected 4 arguments");
  View a, w, v;
  int n;
  if (!get_view(env, argv[0], "a", &a) || !get_size(env, argv[1], "n", MAX_ORDER, &n) ||
      !get_view(env, argv[2], "values", &w) || !get_view(env, argv[3], "vectors", &v))
    return NULL;
  if (a.type != w.type || a.type != v.type)
    return fail_type(env, "lapack.eigh: a, values and vectors must all be Float32Array or all Float64Array");
  size_t nn = (size_t)n * (size_t)n;
  if (a.length != nn || v.length != nn || w.length != (size_t)n) {
    char msg[200];
    snprintf(msg, sizeof msg, "eigh: expected %zu entries in a and vectors and %d in values, got %zu, %zu, %zu",
             nn, n, a.length, v.length, w.length);
    return fail(env, msg);
  }
  /* values must not share memory with the matrices (LAPACK would overwrite one with the other). */
  {
    const char *wp = w.data, *vp = v.data, *ap = a.data;
    size_t wb = (size_t)n * elem_size(w.type), mb = nn * elem_size(v.type);
    if (n > 0 && ((wp < vp + mb && vp < wp + wb) || (wp < ap + mb && ap < wp + wb)))
      return fail(env, "lapack.eigh: values overlaps a or vectors");
  }
  if (!copy_unless_same(env, &a, &v, nn)) return NULL;
  const char *err = a.type == napi_float64_array ? deigh_kernel(v.data, w.data, n) : seigh_kernel(v.data, w.data, n);
  if (err) return fail(env, err);
  return undefined(env);
}

/* The arguments (a, rows, cols, q) of qr and qrFull: same element type, rows ≥ cols. Returns 0
 * (with an exception pending) on bad arguments. */
static int qr_args(napi_env env, napi_callback_info info, const char *name, int max, View *a, int *rows, int *cols, View *q) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_pending_or(env, "lapack: N-API call failed: napi_get_cb_info");
    return 0;
  }
  char msg[160];
  if (argc < 4) {
    snprintf(msg, sizeof msg, "lapack.%s(a, rows, cols, q): expected 4 arguments", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (!get_view(env, argv[0], "a", a) || !get_size(env, argv[1], "rows", max, rows) ||
      !get_size(env, argv[2], "cols", max, cols) || !get_view(env, argv[3], "q", q))
    return 0;
  if (a->type != q->type) {
    snprintf(msg, sizeof msg, "lapack.%s: a and q must both be Float32Array or both Float64Array", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (*rows < *cols) {
    snprintf(msg, sizeof msg, "%s: needs rows ≥ columns, got %d×%d", name, *rows, *cols);
    napi_throw_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

/* qr(a, rows, cols, q) */
static napi_value Qr(napi_env env, napi_callback_info info) {
  View a, q;
  int rows, cols;
  if (!qr_args(env, info, "qr", INT_MAX, &a, &rows, &cols, &q)) return NULL;
  size_t count = (size_t)rows * (size_t)cols;
  if (count > (size_t)INT_MAX) return fail(env, "qr: matrix too large for 32-bit LAPACK");
  if (a.length != count || q.length != count) {
    char msg[160];
    snprintf(msg, sizeof msg, "qr: expected %zu entries in a and q, got %zu and %zu", count, a.length, q.length);
    return fail(env, msg);
  }
  if (!copy_unless_same(env, &a, &q, count)) return NULL;
  const char *err = a.type == napi_float64_array ? dqr_kernel(q.data, rows, cols) : sqr_kernel(q.data, rows, cols);
  if (err) return fail(env, err);
  return undefined(env);
}

/* qrFull(a, rows, cols, q) */
static napi_value QrFull(napi_env env, napi_callback_info info) {
  View a, q;
  int rows, cols;
  if (!qr_args(env, info, "qrFull", MAX_ORDER, &a, &rows, &cols, &q)) return NULL;
  size_t count = (size_t)rows * (size_t)cols, full = (size_t)rows * (size_t)rows;
  if (a.length != count || q.length != full) {
    char msg[200];
    snprintf(msg, sizeof msg, "qrFull: expected %zu entries in a and %zu in q, got %zu and %zu", count, full, a.length, q.length);
    return fail(env, msg);
  }
  {
    const char *ap = a.data, *qp = q.data;
    size_t ab = count * elem_size(a.type), qb = full * elem_size(q.type);
    if (count > 0 && ap < qp + qb && qp < ap + ab) return fail(env, "lapack.qrFull: q overlaps a");
  }
  memcpy(q.data, a.data, count * elem_size(a.type));
  const char *err = a.type == napi_float64_array ? dqr_full_kernel(q.data, rows, cols) : sqr_full_kernel(q.data, rows, cols);
  if (err) return fail(env, err);
  return undefined(env);
}

/* gemm(a, b, c, m, n, k, transA, transB) */
static napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return fail_type(env, "lapack.gemm(a, b, c, m, n, k, transA, transB): expected 8 arguments");
  View a, b, c;
  int m, n, k;
  bool ta = false, tb = false;
  if (!get_view(env, argv[0], "a", &a) || !get_view(env, argv[1], "b", &b) || !get_view(env, argv[2], "c", &c) ||
      !get_size(env, argv[3], "m", INT_MAX, &m) || !get_size(env, argv[4], "n", INT_MAX, &n) ||
      !get_size(env, argv[5], "k", INT_MAX, &k))
    return NULL;
  CHECK(napi_get_value_bool(env, argv[6], &ta));
  CHECK(napi_get_value_bool(env, argv[7], &tb));
  if (a.type != b.type || a.type != c.type) return fail_type(env, "lapack.gemm: a, b and c must all be Float32Array or all Float64Array");
  if (a.length != (size_t)m * (size_t)k || b.length != (size_t)k * (size_t)n || c.length != (size_t)m * (size_t)n) {
    char msg[200];
    snprintf(msg, sizeof msg, "gemm: expected %zu, %zu and %zu entries in a, b and c, got %zu, %zu, %zu",
             (size_t)m * k, (size_t)k * n, (size_t)m * n, a.length, b.length, c.length);
    return fail(env, msg);
  }
  if (a.type == napi_float64_array) dgemm_kernel(a.data, b.data, c.data, m, n, k, ta, tb);
  else sgemm_kernel(a.data, b.data, c.data, m, n, k, ta, tb);
  return undefined(env);
}

/* Reads `count` Float32Array arguments of equal length; returns 0 (and throws) otherwise. */
static int get_float32_views(napi_env env, napi_value *argv, const char *const *names, int count, const char *fn, View *views) {
  for (int i = 0; i < count; i++) {
    if (!get_view(env, argv[i], names[i], &views[i])) return 0;
    if (views[i].type != napi_float32_array || views[i].length != views[0].length) {
      char msg[200];
      snprintf(msg, sizeof msg, "lapack.%s: every argument must be a Float32Array of the same length (%s)", fn, names[i]);
      napi_throw_type_error(env, NULL, msg);
      return 0;
    }
  }
  return 1;
}

/* geluForward(x, y) */
static napi_value GeluForward(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return fail_type(env, "lapack.geluForward(x, y): expected 2 arguments");
  static const char *const names[] = {"x", "y"};
  View v[2];
  if (!get_float32_views(env, argv, names, 2, "geluForward", v)) return NULL;
  soap_gelu_forward(v[0].data, v[1].data, v[0].length);
  return undefined(env);
}

/* geluBackward(x, dy, dx) */
static napi_value GeluBackward(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return fail_type(env, "lapack.geluBackward(x, dy, dx): expected 3 arguments");
  static const char *const names[] = {"x", "dy", "dx"};
  View v[3];
  if (!get_float32_views(env, argv, names, 3, "geluBackward", v)) return NULL;
  soap_gelu_backward(v[0].data, v[1].data, v[2].data, v[0].length);
  return undefined(env);
}

/*
 * adviseHugePages(bytes). Why: a training step's tensors live in the wasm heap, and the first
 * step touches each of its pages for the first time: ~116k 4 KiB page faults for the tiny model,
 * ~1 s of kernel time on this machine. With transparent huge pages in "madvise" mode (Debian's
 * default) the kernel maps 2 MiB at a time only where asked.
 */
static napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_ta = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta)
    return fail_type(env, "lapack.adviseHugePages(bytes): bytes must be a Uint8Array over the memory");
  /* A typed array, not its ArrayBuffer: napi_get_arraybuffer_info gives no pointer for a wasm
     memory's buffer here, the typed array's info does (as for every other call). */
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value buffer;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset));
  if (type != napi_uint8_array) return fail_type(env, "lapack.adviseHugePages(bytes): bytes must be a Uint8Array");
  double advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t start = ((uintptr_t)data + huge - 1) & ~(huge - 1);
  uintptr_t end = ((uintptr_t)data + length) & ~(huge - 1);
  if (data != NULL && end > start && madvise((void *)start, end - start, MADV_HUGEPAGE) == 0) advised = (double)(end - start);
#else
  (void)data;
  (void)length;
#endif
  napi_value result;
  CHECK(napi_create_double(env, advised, &result));
  return result;
}

static napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int k;
  if (argc < 1 || !get_size(env, argv[0], "threads", 1024, &k)) return NULL;
  if (k < 1) return fail(env, "lapack.setNumThreads: threads must be ≥ 1");
  napi_value result;
#ifndef SOAP_NO_OPENBLAS
  openblas_set_num_threads(k);
  CHECK(napi_get_boolean(env, true, &result));
#else
  CHECK(napi_get_boolean(env, false, &result));
#endif
  return result;
}

static napi_value GetNumThreads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifndef SOAP_NO_OPENBLAS
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &result));
#else
  CHECK(napi_create_int32(env, 1, &result));
#endif
  return result;
}

NAPI_MODULE_INIT() {
  const char *config;
#ifndef SOAP_NO_OPENBLAS
  config = openblas_get_config();
  if (!config) config = "OpenBLAS";
#else
  config = "system LAPACK/BLAS via -llapack -lblas (no OpenBLAS thread control)";
#endif
  napi_value config_str, abi;
  if (napi_create_string_utf8(env, config, NAPI_AUTO_LENGTH, &config_str) != napi_ok) return NULL;
  if (napi_create_int32(env, ABI_VERSION, &abi) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"eigh", NULL, Eigh, NULL, NULL, NULL, napi_enumerable, NULL},
      {"qr", NULL, Qr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"qrFull", NULL, QrFull, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemm", NULL, Gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"geluForward", NULL, GeluForward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"geluBackward", NULL, GeluBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adviseHugePages", NULL, AdviseHugePages, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNumThreads", NULL, SetNumThreads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getNumThreads", NULL, GetNumThreads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"config", NULL, NULL, NULL, NULL, config_str, napi_enumerable, NULL},
      {"abi", NULL, NULL, NULL, NULL, abi, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
