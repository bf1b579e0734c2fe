/**
 * Steps to target for a single run: where its validation curve first reaches the target loss,
 * linearly interpolated between the two evaluations around the crossing.
 */

export interface CurvePoint {
  step: number;
  val_loss: number;
}

/**
 * The first step at which the curve (sorted by step) reaches `target`; null if it never does.
 * Non-finite losses (a diverged evaluation) are skipped. When the very first evaluation is
 * already at or below the target, the crossing happened at or before it and the curve says no
 * more, so that evaluation's step is returned (an upper bound, the only honest number).
 */
export function firstCrossing(curve: readonly CurvePoint[], target: number): number | null {
  let previous: CurvePoint | null = null;
  for (const point of curve) {
    if (!Number.isFinite(point.val_loss)) continue;
    if (point.val_loss <= target) {
      if (!previous) return point.step;
      const fraction = (previous.val_loss - target) / (previous.val_loss - point.val_loss);
      return previous.step + fraction * (point.step - previous.step);
    }
    previous = point;
  }
  return null;
}
