/**
 * The paper's scaling fit: L(n) = E + A·n^(−α) through (steps, final validation loss) points, by
 * least squares, and its inverse n* = (A / (L − E))^(1/α), the steps at which a run of that
 * family would reach loss L.
 *
 * The fit uses variable projection: for a fixed α the model is linear in (E, A), so the best
 * (E, A) is a tiny constrained least-squares solve, and only α is searched (a log-spaced grid,
 * then golden-section refinement between the best grid point's neighbours). That is
 * deterministic, needs no starting guess, and cannot wander off as a 3-parameter Newton
 * iteration can on 3–5 points. Constraints: A > 0 and α > 0 (loss falls with steps) and
 * E ≤ the smallest observed loss (the asymptote is below every run). With exactly 3 points the
 * fit interpolates them whenever such a curve exists.
 */

export interface PowerLawFit {
  E: number;
  A: number;
  alpha: number;
  /** Largest |observed − fitted| over the points. */
  max_abs_residual: number;
}

export interface FitPoint {
  steps: number;
  loss: number;
}

/** Search range for α: below 1e-3 the curve is flat (E and A collinear); above 8 it is a step. */
export const ALPHA_MIN = 1e-3;
const ALPHA_MAX = 8;
const GRID_POINTS = 4001;
const GOLDEN_ITERATIONS = 200;

interface Projection {
  E: number;
  A: number;
  sse: number;
}

function sse(points: readonly FitPoint[], xs: readonly number[], E: number, A: number): number {
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const r = points[i].loss - (E + A * xs[i]);
    sum += r * r;
  }
  return sum;
}

/**
 * The best (E, A) for fixed α under E ≤ minLoss, A > 0: the unconstrained solve when feasible,
 * else, when only E is out of bounds, the edge E = minLoss (the problem is convex, so its
 * constrained optimum is on that edge). null when the losses do not fall with n at this α.
 */
function project(points: readonly FitPoint[], alpha: number, minLoss: number): Projection | null {
  const m = points.length;
  const xs = points.map((p) => Math.pow(p.steps, -alpha));
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < m; i++) {
    sx += xs[i];
    sy += points[i].loss;
  }
  const mx = sx / m;
  const my = sy / m;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < m; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (points[i].loss - my);
  }
  if (!(sxx > 0)) return null;
  const A = sxy / sxx;
  const E = my - A * mx;
  // No downward trend in n at this α (the losses rise or are flat): the constrained optimum
  // would be a curve forced onto data that does not fall, so there is no fit here at all.
  if (!(A > 0)) return null;
  if (E <= minLoss) return { E, A, sse: sse(points, xs, E, A) };
  // The asymptote came out above a point (noise): the constrained optimum is on the edge
  // E = minLoss, where A ≥ 0 follows since every loss − minLoss ≥ 0.
  let num = 0;
  let den = 0;
  for (let i = 0; i < m; i++) {
    num += xs[i] * (points[i].loss - minLoss);
    den += xs[i] * xs[i];
  }
  const edgeA = num / den;
  if (!(edgeA > 0)) return null;
  return { E: minLoss, A: edgeA, sse: sse(points, xs, minLoss, edgeA) };
}

/**
 * Least-squares fit of L(n) = E + A·n^(−α). Needs 3+ points at ≥ 2 distinct step counts with
 * finite positive steps and finite losses; null when no decreasing curve fits (e.g. the loss
 * rises with steps).
 */
export function fitPowerLaw(points: readonly FitPoint[]): PowerLawFit | null {
  if (points.length < 3) return null;
  if (points.some((p) => !(p.steps > 0) || !Number.isFinite(p.steps) || !Number.isFinite(p.loss))) return null;
  const minLoss = Math.min(...points.map((p) => p.loss));
  const objective = (logAlpha: number) => project(points, Math.exp(logAlpha), minLoss)?.sse ?? Number.POSITIVE_INFINITY;

  const lo = Math.log(ALPHA_MIN);
  const hi = Math.log(ALPHA_MAX);
  const h = (hi - lo) / (GRID_POINTS - 1);
  let best = -1;
  let bestValue = Number.POSITIVE_INFINITY;
  for (let i = 0; i < GRID_POINTS; i++) {
    const value = objective(lo + i * h);
    if (value < bestValue) {
      bestValue = value;
      best = i;
    }
  }
  if (best < 0) return null;

  // Golden-section search inside the best grid cell's neighbourhood (the objective is unimodal there).
  let a = lo + Math.max(0, best - 1) * h;
  let b = lo + Math.min(GRID_POINTS - 1, best + 1) * h;
  const phi = (Math.sqrt(5) - 1) / 2;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = objective(c);
  let fd = objective(d);
  for (let it = 0; it < GOLDEN_ITERATIONS && b - a > 1e-15; it++) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = objective(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = objective(d);
    }
  }
  // Keep the grid point if refinement did not beat it (a minimum at the range's edge).
  let logAlpha = lo + best * h;
  for (const [x, fx] of [[c, fc], [d, fd]] as const) {
    if (fx < bestValue) {
      bestValue = fx;
      logAlpha = x;
    }
  }
  const alpha = Math.exp(logAlpha);
  const proj = project(points, alpha, minLoss);
  if (!proj) return null;
  const maxAbsResidual = Math.max(...points.map((p) => Math.abs(p.loss - (proj.E + proj.A * Math.pow(p.steps, -alpha)))));
  return { E: proj.E, A: proj.A, alpha, max_abs_residual: maxAbsResidual };
}

/** Steps at which the fitted curve reaches `target`: (A / (target − E))^(1/α); null when target ≤ E (never). */
export function stepsToLoss(fit: Pick<PowerLawFit, 'E' | 'A' | 'alpha'>, target: number): number | null {
  if (!(target > fit.E)) return null;
  return Math.pow(fit.A / (target - fit.E), 1 / fit.alpha);
}
