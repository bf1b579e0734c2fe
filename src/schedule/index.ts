/**
 * Learning-rate schedules as pure functions of the step, so a resumed run needs no scheduler
 * state: the factor multiplies the optimizer's peak `lr`.
 *
 * cosine:   f(s) = (s+1)/warmup                               for s < warmup
 *           f(s) = r + (1−r)·½(1 + cos(π·min(1, (s−warmup)/(D−warmup))))   after,  r = min_lr_ratio,
 *           D = decay_steps (default: train.steps)
 * constant: f(s) = (s+1)/warmup for s < warmup, then 1.
 * `s` counts from 0, so the first step already trains (as in nanoGPT).
 */
import type { ScheduleConfig } from '../config/schema.js';

export type Schedule = (step: number) => number;

export function buildSchedule(config: ScheduleConfig, totalSteps: number): Schedule {
  const warmup = config.warmup_steps;
  const warm = (step: number) => (step + 1) / warmup;
  if (config.type === 'constant') {
    return (step) => (step < warmup ? warm(step) : 1);
  }
  const decaySteps = config.decay_steps ?? totalSteps;
  const floor = config.min_lr_ratio;
  return (step) => {
    if (step < warmup) return warm(step);
    const span = Math.max(1, decaySteps - warmup);
    const progress = Math.min(1, (step - warmup) / span);
    return floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
