/*
 * Type-generic kernels, included twice by lapack.c: once with REAL = double / P(x) = d##x and
 * once with REAL = float / P(x) = s##x. Pure C, no N-API: each returns NULL on success or a
 * static error message.
 */

/* Out-of-range sizes are rejected by the caller; here n ≤ MAX_ORDER, so n·n fits a size_t. */

static int P(all_finite)(const REAL *a, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (!isfinite(a[i])) return 0;
  return 1;
}

/* In-place transpose of a square n×n matrix, in TILE×TILE blocks (tile pairs are swapped). */
static void P(transpose_square)(REAL *a, size_t n) {
  for (size_t i0 = 0; i0 < n; i0 += TILE) {
    size_t i1 = i0 + TILE < n ? i0 + TILE : n;
    for (size_t j0 = i0; j0 < n; j0 += TILE) {
      size_t j1 = j0 + TILE < n ? j0 + TILE : n;
      for (size_t i = i0; i < i1; i++) {
        size_t jstart = j0 == i0 ? i + 1 : j0;
        for (size_t j = jstart; j < j1; j++) {
          REAL t = a[i * n + j];
          a[i * n + j] = a[j * n + i];
          a[j * n + i] = t;
        }
      }
    }
  }
}

static void P(reverse)(REAL *x, size_t len) {
  if (len < 2) return;
  for (size_t i = 0, j = len - 1; i < j; i++, j--) {
    REAL t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}

/*
 * Symmetric eigendecomposition with ?syevd. On entry `v` holds the row-major n×n symmetric
 * matrix (only its upper triangle is read: that is LAPACK's column-major lower triangle).
 * On return `w` holds the eigenvalues in DESCENDING order and `v`, row-major, has the unit
 * eigenvector of w[j] as its column j — the conventions of src/optim/linalg/eigh.ts.
 */
static const char *P(eigh_kernel)(REAL *v, REAL *w, int n) {
  if (n == 0) return NULL;
  size_t nn = (size_t)n * (size_t)n;
  if (!P(all_finite)(v, nn)) return "eigh: matrix has non-finite entries";
  /* Minimal (= optimal) workspace for JOBZ='V' from the ?syevd documentation. */
  int lwork = n > 1 ? 1 + 6 * n + 2 * n * n : 1;
  int liwork = n > 1 ? 3 + 5 * n : 1;
  REAL *work = malloc(sizeof(REAL) * (size_t)lwork);
  int *iwork = malloc(sizeof(int) * (size_t)liwork);
  if (!work || !iwork) {
    free(work);
    free(iwork);
    return "eigh: out of memory for the LAPACK workspace";
  }
  int info = 0;
  P(syevd_)("V", "L", &n, v, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
  free(work);
  free(iwork);
  if (info > 0) return "eigh: LAPACK ?syevd failed to converge";
  if (info < 0) return "eigh: LAPACK ?syevd rejected an argument (internal error)";
  /* Column-major V (vector j contiguous) read row-major is Vᵀ: transpose, then reverse the
   * column order (and the eigenvalues) to go from LAPACK's ascending to descending. */
  P(transpose_square)(v, (size_t)n);
  for (size_t i = 0; i < (size_t)n; i++) P(reverse)(v + i * (size_t)n, (size_t)n);
  P(reverse)(w, (size_t)n);
  return NULL;
}

/*
 * Thin Q of A = Q·R for a row-major rows×cols A (rows ≥ cols), in place in `q`.
 * A row-major rows×cols array is, to LAPACK, the column-major cols×rows matrix Aᵀ; its LQ
 * factorisation Aᵀ = L·Q₁ (?gelqf) uses exactly the Householder reflectors ?geqrf would use on
 * A (same ?larfg, so the same R-diagonal signs), and ?orglq's Q₁ (cols×rows, column-major) read
 * back row-major is Q₁ᵀ = Q. No transposes, no second buffer.
 */
static const char *P(qr_kernel)(REAL *q, int rows, int cols) {
  if (cols == 0) return NULL;
  if (!P(all_finite)(q, (size_t)rows * (size_t)cols)) return "qr: matrix has non-finite entries";
  int info = 0;
  int query = -1;
  REAL size1 = 0, size2 = 0;
  P(gelqf_)(&cols, &rows, q, &cols, NULL, &size1, &query, &info);
  if (info != 0) return "qr: LAPACK ?gelqf workspace query failed";
  P(orglq_)(&cols, &rows, &cols, q, &cols, NULL, &size2, &query, &info);
  if (info != 0) return "qr: LAPACK ?orglq workspace query failed";
  /* Workspace sizes come back as floating point; round up (float32 loses low bits). */
  double want = (double)(size1 > size2 ? size1 : size2);
  int lwork = (int)ceil(want * (1.0 + 1e-6)) + 1;
  if (lwork < cols) lwork = cols;
  REAL *tau = malloc(sizeof(REAL) * (size_t)cols);
  REAL *work = malloc(sizeof(REAL) * (size_t)lwork);
  if (!tau || !work) {
    free(tau);
    free(work);
    return "qr: out of memory for the LAPACK workspace";
  }
  P(gelqf_)(&cols, &rows, q, &cols, tau, work, &lwork, &info);
  if (info == 0) P(orglq_)(&cols, &rows, &cols, q, &cols, tau, work, &lwork, &info);
  free(tau);
  free(work);
  if (info != 0) return "qr: LAPACK ?gelqf/?orglq rejected an argument (internal error)";
  return NULL;
}

/*
 * Full orthogonal Q (rows×rows) of the Householder QR of a row-major rows×cols A (rows ≥ cols):
 * its first `cols` columns are `qr_kernel`'s thin Q (same reflectors, same signs), the others an
 * orthonormal basis of range(A)⊥. On entry buf[0 .. rows·cols) holds A packed (row stride cols);
 * buf has room for rows·rows. ?gelqf runs on the packed Aᵀ (lda = cols); its reflector rows are
 * then spread to lda = rows and ?orglq forms all `rows` rows of Q₁ from the `cols` reflectors
 * (it sets the extra rows to the identity's before applying them). Read row-major, the
 * column-major Q₁ is Q₁ᵀ = [Q_thin | Q_⊥]. Costs ≈ 2·rows·cols² + 4·rows²·cols flops, against
 * 8/3·rows³ for a square QR of the zero-padded [A | 0].
 */
static const char *P(qr_full_kernel)(REAL *buf, int rows, int cols) {
  if (rows == 0) return NULL;
  if (!P(all_finite)(buf, (size_t)rows * (size_t)cols)) return "qr: matrix has non-finite entries";
  int info = 0;
  int query = -1;
  REAL size1 = 0, size2 = 0;
  int kk = cols;
  if (cols > 0) {
    P(gelqf_)(&cols, &rows, buf, &cols, NULL, &size1, &query, &info);
    if (info != 0) return "qr: LAPACK ?gelqf workspace query failed";
  }
  P(orglq_)(&rows, &rows, &kk, buf, &rows, NULL, &size2, &query, &info);
  if (info != 0) return "qr: LAPACK ?orglq workspace query failed";
  double want = (double)(size1 > size2 ? size1 : size2);
  int lwork = (int)ceil(want * (1.0 + 1e-6)) + 1;
  if (lwork < rows) lwork = rows;
  REAL *tau = malloc(sizeof(REAL) * (size_t)(cols > 0 ? cols : 1));
  REAL *work = malloc(sizeof(REAL) * (size_t)lwork);
  if (!tau || !work) {
    free(tau);
    free(work);
    return "qr: out of memory for the LAPACK workspace";
  }
  if (cols > 0) P(gelqf_)(&cols, &rows, buf, &cols, tau, work, &lwork, &info);
  if (info == 0) {
    /* Column j of the col-major cols×rows array moves from j·cols to j·rows; rows ≥ cols, so
     * going from the last column down never overwrites one not yet moved. */
    for (size_t j = (size_t)rows; j-- > 0;) {
      memmove(buf + j * (size_t)rows, buf + j * (size_t)cols, sizeof(REAL) * (size_t)cols);
    }
    P(orglq_)(&rows, &rows, &kk, buf, &rows, tau, work, &lwork, &info);
  }
  free(tau);
  free(work);
  if (info != 0) return "qr: LAPACK ?gelqf/?orglq rejected an argument (internal error)";
  return NULL;
}

/*
 * C (m×n) = op(A)·op(B), row-major, op(X) = X or Xᵀ; A is m×k (k×m when transposed), B k×n
 * (n×k when transposed). Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so
 * ?gemm is called with the operands swapped and no data moved.
 */
static void P(gemm_kernel)(const REAL *a, const REAL *b, REAL *c, int m, int n, int k, int trans_a, int trans_b) {
  const REAL one = 1, zero = 0;
  int lda = trans_a ? m : k;
  int ldb = trans_b ? k : n;
  int ldc = n > 0 ? n : 1;
  if (lda < 1) lda = 1;
  if (ldb < 1) ldb = 1;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    memset(c, 0, sizeof(REAL) * (size_t)m * (size_t)n);
    return;
  }
  P(gemm_)(trans_b ? "T" : "N", trans_a ? "T" : "N", &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc, 1, 1);
}
