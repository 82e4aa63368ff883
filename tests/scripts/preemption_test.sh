#!/usr/bin/env bash
# `mlpx train --resume auto` preempted by real signals (SIGTERM, SIGUSR1, SIGTERM), each at a
# random moment, and requeued with the same command each time: every stop exits 128 + the
# signal's number with one line naming where it stopped, and the finished run's checkpoint is
# byte for byte the uninterrupted run's (weights, Adam's state, counters, metadata), its metrics
# log the same but for the timings. With MPIEXEC given, the same again as 2 ranks under it, the
# signals sent to one rank only: the ranks still stop at one step and the result is unchanged.
#
#   bash tests/scripts/preemption_test.sh MLPX [MPIEXEC]     # a few seconds
set -uo pipefail
MLPX=$1
MPIEXEC=${2:-}
T=$(mktemp -d /tmp/preemption-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$T" || exit 1

# 18000 training rows in batches of 8: 2250 steps an epoch; dropout and Adam. $1: the epochs.
write_config() {
  cat >run.json <<JSON
{"device": "cpu", "seed": 7,
 "data": {"source": "synthetic", "synthetic": {"train_samples": 20000, "test_samples": 500,
                                               "features": 16, "classes": 4}},
 "model": {"layers": [{"units": 32, "activation": "relu", "dropout": 0.1},
                      {"units": 4, "activation": "identity"}]},
 "optimizer": {"type": "adam", "lr": 0.003},
 "train": {"epochs": $1, "batch_size": 8},
 "output": {"checkpoint": "model.safetensors", "log": "log.jsonl"}}
JSON
}
without_timing() { sed -E 's/"(elapsed_s|samples_per_s)":[^,}]*,?//g' "$1"; }

# $1: the launcher prefix ("" or "MPIEXEC -np 2 ..."); $2: a name for messages.
preempt_and_compare() {
  local launch=$1 what=$2
  rm -f model.safetensors log.jsonl
  $launch "$MLPX" train --config run.json --quiet || fail "$what: the uninterrupted run failed"
  mv model.safetensors reference.safetensors
  mv log.jsonl reference.jsonl

  local stops=0 signal status lines before
  for signal in TERM USR1 TERM; do
    before=$(cat log.jsonl 2>/dev/null | wc -l)
    # exec: $! is the launcher or mlpx itself, not a subshell.
    (exec $launch "$MLPX" train --config run.json --resume auto >out.txt 2>err.txt) &
    local job=$!
    # Once this run has logged an epoch it is training, with many epochs to go: the signal
    # then lands at a random step (0-0.1 s later).
    for _ in $(seq 1 3000); do
      lines=$(cat log.jsonl 2>/dev/null | wc -l)
      [ "$lines" -gt "$before" ] && break
      kill -0 $job 2>/dev/null || break
      sleep 0.01
    done
    sleep "$(printf '0.%03d' $((RANDOM % 100)))"
    if [ -n "$launch" ]; then
      # One rank alone gets the signal (the other must follow it at the same step).
      local rank
      rank=$(pgrep -P "$job" -f "$MLPX" | head -1)
      [ -n "$rank" ] || rank=$(pgrep -f "$MLPX train --config run.json --resume auto" | tail -1)
      kill -s $signal "$rank"
    else
      kill -s $signal $job
    fi
    wait $job
    status=$?
    local number
    number=$(kill -l $signal)
    [ $status -eq $((128 + number)) ] ||
      fail "$what: SIGTERM/SIGUSR1 should exit $((128 + number)), got $status: $(cat err.txt)"
    grep -q "^stopped by SIG$signal after step [0-9]* (epoch [0-9]*, .*): saved .*model.safetensors; continue with --resume auto$" err.txt ||
      fail "$what: expected the one stop line, got: $(cat err.txt)"
    echo "$what: $(cat err.txt)"
    if [ $stops -eq 0 ]; then
      grep -q "^--resume auto: no checkpoint at .*model.safetensors yet: starting fresh$" out.txt ||
        fail "$what: the first run should say it starts fresh: $(head -3 out.txt)"
    else
      grep -q "^resuming .*model.safetensors " out.txt ||
        fail "$what: a requeued run should say what it resumes: $(head -12 out.txt)"
    fi
    stops=$((stops + 1))
  done
  $launch "$MLPX" train --config run.json --resume auto --quiet ||
    fail "$what: the last resumed run failed"
  cmp -s model.safetensors reference.safetensors ||
    fail "$what: the preempted and resumed run's checkpoint differs from the uninterrupted run's"
  [ "$(without_timing log.jsonl)" = "$(without_timing reference.jsonl)" ] ||
    fail "$what: the metrics logs differ: $(diff <(without_timing log.jsonl) <(without_timing reference.jsonl) | head -5)"
  echo "$what: $stops stops, resumed each time: checkpoint and log equal to the uninterrupted run's"
}

write_config 60
preempt_and_compare "" "one process"
if [ -n "$MPIEXEC" ]; then
  flags=""
  "$MPIEXEC" --version 2>&1 | grep -qE "Open MPI|OpenRTE" && flags="--allow-run-as-root --oversubscribe"
  write_config 40  # as many steps left after a stop as the one-process case, at 2 ranks
  preempt_and_compare "$MPIEXEC -np 2 $flags" "2 ranks"
fi
echo "PASS"
