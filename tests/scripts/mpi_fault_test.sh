#!/usr/bin/env bash
# Faults and misuse of `mpirun ... mlpx train`. A rank of a 3-rank job killed with SIGKILL
# mid-run: the job must end within 60 s with a non-zero status and a message that names the
# lost rank, and the last checkpoint (written by rank 0 at the end of an epoch) must still load
# and evaluate. Two ranks started with different seeds: an error at start-up naming the rank.
# Two ranks of one machine on the same GPU: an error at start-up.
#
#   bash tests/scripts/mpi_fault_test.sh MPIEXEC MLPX     # about 5 s
set -uo pipefail
MPIEXEC=$1
MLPX=$2
T=$(mktemp -d /tmp/mpi-fault-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

cat >"$T/run.json" <<'EOF'
{"device": "cpu",
 "data": {"source": "synthetic", "synthetic": {"train_samples": 20000, "test_samples": 500,
                                                "features": 32, "classes": 4}},
 "model": {"layers": [{"units": 64, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
 "train": {"epochs": 1000, "batch_size": 32},
 "output": {"checkpoint": "model.safetensors", "log": "log.jsonl"}}
EOF
flags=()
if "$MPIEXEC" --version 2>&1 | grep -qE "OpenRTE|Open MPI|prterun"; then flags=(--allow-run-as-root --oversubscribe); fi
"$MPIEXEC" "${flags[@]}" -np 3 "$MLPX" train --quiet --config "$T/run.json" >"$T/out.txt" 2>&1 &
job=$!

# Rank 1's process: the mlpx whose environment says OMPI_COMM_WORLD_RANK=1 (or PMI_RANK=1).
victim=""
for _ in $(seq 1 300); do
  if [ -s "$T/model.safetensors" ]; then
    for pid in $(pgrep -f "$MLPX train --quiet --config $T/run.json"); do
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxE '(OMPI_COMM_WORLD_RANK|PMI_RANK)=1'; then
        victim=$pid
      fi
    done
    [ -n "$victim" ] && break
  fi
  sleep 0.1
done
if [ -z "$victim" ]; then
  echo "FAIL: no checkpoint or no rank 1 within 30 s"
  cat "$T/out.txt"
  kill -9 "$job" 2>/dev/null
  exit 1
fi
start=$(date +%s)
kill -9 "$victim"
# The job must end by itself within 60 s.
for _ in $(seq 1 600); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  echo "FAIL: the job still runs 60 s after rank 1 was killed"
  pkill -9 -f "$MLPX train --quiet --config $T/run.json"
  exit 1
fi
wait "$job"
status=$?
elapsed=$(($(date +%s) - start))
fails=0
if [ "$status" -eq 0 ]; then
  echo "FAIL: the job exited 0 after losing a rank"
  fails=1
fi
if ! grep -qiE 'rank 1\b|process rank 1|rank 1 ' "$T/out.txt"; then
  echo "FAIL: the message does not name rank 1:"
  cat "$T/out.txt"
  fails=1
fi
# The last checkpoint is whole.
if ! (cd "$T" && "$MLPX" eval --model model.safetensors --device cpu >"$T/eval.txt" 2>&1); then
  echo "FAIL: the last checkpoint does not evaluate:"
  cat "$T/eval.txt"
  fails=1
fi
echo "rank 1 killed; the job ended in ${elapsed} s with status $status; eval: $(cat "$T/eval.txt")"
echo "the launcher said: $(grep -iE 'rank 1' "$T/out.txt" | head -1)"

# Ranks started with different configs (here the seed) stop at start-up, naming the rank.
"$MPIEXEC" "${flags[@]}" -np 1 "$MLPX" train --quiet --epochs 1 --seed 1 --config "$T/run.json" : \
  -np 1 "$MLPX" train --quiet --epochs 1 --seed 2 --config "$T/run.json" >"$T/mixed.txt" 2>&1
mixed=$?
if [ "$mixed" -eq 0 ] || ! grep -q "error: rank 1 was started with another config than rank 0" "$T/mixed.txt"; then
  echo "FAIL: ranks with different seeds (status $mixed):"
  cat "$T/mixed.txt"
  fails=1
fi
echo "different seeds: status $mixed, $(grep -m1 '^error:' "$T/mixed.txt")"

# Two ranks of one machine asked for the same GPU: an error, not a deadlock. Checked where this
# mlpx has a CUDA device (a GPU, or the simulator); elsewhere the device itself is refused.
"$MPIEXEC" "${flags[@]}" -np 2 "$MLPX" train --quiet --epochs 1 --device cuda:0 \
  --config "$T/run.json" >"$T/gpu.txt" 2>&1
gpu=$?
if grep -q "expected one GPU per rank, found 2 ranks on this machine" "$T/gpu.txt"; then
  [ "$gpu" -ne 0 ] || { echo "FAIL: status 0 for two ranks on cuda:0"; fails=1; }
  echo "two ranks on cuda:0: status $gpu, $(grep -m1 '^error:' "$T/gpu.txt")"
elif grep -qE "visible CUDA device|CUDA device is visible|without the CUDA backend|built without CUDA" "$T/gpu.txt"; then
  echo "two ranks on cuda:0: not checked (no CUDA device: $(grep -m1 '^error:' "$T/gpu.txt"))"
else
  echo "FAIL: two ranks on cuda:0 (status $gpu):"
  cat "$T/gpu.txt"
  fails=1
fi
[ "$fails" -eq 0 ] && echo "mpi_fault_test: PASS"
exit "$fails"
