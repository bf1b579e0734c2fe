#!/bin/bash
# A learning-rate sweep as people write it by hand: a loop over `--set` values, one named run each.
# `--resume` starts a run that does not exist yet and continues one that was interrupted, so running
# this script again picks up where it stopped (a completed run finds nothing left to train).
#
# The same sweep with `soap-train sweep` (names, skip/resume, -j, failures isolated, sweep.md and the
# compare table at the end):
#   soap-train sweep --config configs/tiny-adamw.yaml --name lr-loop \
#     --grid optimizer.type=adamw,soap --grid optimizer.lr=1e-3,3e-3,1e-2 --seeds 2 --set train.steps=120
set -u
cd "$(dirname "$0")/.."            # the repository root: configs/ and bin/ are relative to it

failed=0
for optimizer in adamw soap; do
  for lr in 1e-3 3e-3 1e-2; do
    for seed in 0 1; do
      name="loop-${optimizer}-lr${lr}-s${seed}"
      echo "=== ${name}"
      if ! node bin/soap-train train --config "configs/tiny-${optimizer}.yaml" \
          --set "optimizer.lr=${lr}" --set "train.seed=${seed}" --set train.steps=120 \
          --name "${name}" --resume; then
        echo "run ${name} failed; going on with the others" >&2
        failed=1
      fi
    done
  done
done

# Steps to reach the longest AdamW run's final validation loss, per family of runs.
node bin/soap-train compare --baseline runs/loop-adamw-lr3e-3-s0 runs/loop-*
exit "${failed}"
