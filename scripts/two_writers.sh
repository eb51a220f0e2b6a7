#!/usr/bin/env bash
# Issue 19's two-writer repro, RUNS times (default 20): a long sBNN batch and
# an sRRR batch on one copy of the demo session, the second started 0.3 s
# after the first. Prints how many runs lost a result (0 expected) and checks
# that the session's comments survive.
#   scripts/two_writers.sh [RUNS]
# BIN: the binary (default target/debug/patchbench); EPOCHS: the sBNN's
# pretrain,frozen,unfrozen,pruned epochs (default the issue's 300,300,300,400;
# fewer still overlap the sRRR batch when the machine is fast).
set -euo pipefail
runs=${1:-20}
bin=${BIN:-target/debug/patchbench}
IFS=, read -r pretrain frozen unfrozen pruned <<< "${EPOCHS:-300,300,300,400}"
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lost=0
comments_lost=0
overlapped=0
for i in $(seq "$runs"); do
  session="$work/tw.ron"
  sed -e "s#\.\./data/demo#$root/data/demo#g" \
      -e "s/pretrain_epochs: 10,/pretrain_epochs: $pretrain,/" \
      -e "s/  frozen_epochs: 10,/  frozen_epochs: $frozen,/" \
      -e "s/unfrozen_epochs: 10,/unfrozen_epochs: $unfrozen,/" \
      -e "s/pruned_epochs: 20,/pruned_epochs: $pruned,/" \
      sessions/demo.ron > "$session"
  "$bin" --batch "$session" --only sbnn > "$work/first.log" 2>&1 &
  first=$!
  sleep 0.3
  "$bin" --batch "$session" --only srrr_rank2 > "$work/second.log" 2>&1
  if kill -0 "$first" 2>/dev/null; then overlapped=$((overlapped + 1)); fi
  wait "$first"
  results=$(grep -c 'result: (' "$session" || true)
  if [ "$results" != 2 ]; then
    lost=$((lost + 2 - results))
    echo "run $i: $results of 2 results kept"
  fi
  if [ "$(grep -c '^ *//' "$session")" != "$(grep -c '^ *//' sessions/demo.ron)" ]; then
    comments_lost=$((comments_lost + 1))
  fi
done
echo "$runs runs ($overlapped with sbnn still running when srrr_rank2 saved): $lost results lost, $comments_lost sessions lost comments"
[ "$lost" = 0 ] && [ "$comments_lost" = 0 ]
