#!/usr/bin/env bash
# Data-parallel steps over a network: the namespace hosts of tests/cluster/cluster.sh, one rank
# each, bare and under a 1 Gbit/s limit (tc tbf), 0.5% packet loss (nftables) and both. Per
# condition: one step's collectives timed alone (bench/allreduce_timer.cpp: the all-reduce of
# the default model's 235,146 float32 gradients, and the sharded optimizer's reduce-scatter +
# all-gather), and `mlpx train`'s step rate for the default model's shape (784-256-128-10,
# Adam, batch 1024, synthetic data; the mean samples/s of epochs 2 and 3 over the batch), one
# OpenBLAS thread per rank. Prints a Markdown table; `model` columns are docs/scaling.md's ring
# all-reduce formula at the link's rate, 2 (N-1)/N S / rate, and the step rate it implies,
# 1 / (one process's step time / N + that all-reduce). Root only; minutes.
#
#   bash bench/cluster_network.sh [BUILD_DIR] [HOSTS...]     # default: build 2 4
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
shift
HOSTS=("${@:-2}")
[ $# -eq 0 ] && HOSTS=(2 4)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/cluster.sh
. "$here/../tests/cluster/cluster.sh"
why=$(cluster_unavailable)
if [ -n "$why" ]; then
  echo "error: the namespace cluster cannot be made here: $why" >&2
  exit 1
fi
MLPX=$BUILD/mlpx
TIMER=$BUILD/bench/mlpx_allreduce_timer
WORK=$(mktemp -d /tmp/cluster-network.XXXXXX)
BATCH=1024
BYTES=$((235146 * 4))

config() {  # config SHARD: the run's config, into $WORK/run.json
  cat >"$WORK/run.json" <<JSON
{"device": "cpu", "seed": 1,
 "data": {"source": "synthetic", "synthetic": {"train_samples": 16384, "test_samples": 256,
                                                "features": 784, "classes": 10}},
 "model": {"layers": [{"units": 256, "activation": "relu"}, {"units": 128, "activation": "relu"},
                      {"units": 10, "activation": "identity"}]},
 "train": {"epochs": 3, "batch_size": $BATCH, "shard_optimizer": $1},
 "output": {"log": "log.jsonl"}}
JSON
}
steps_per_s() {  # the mean samples/s of epochs 2 and 3 of $WORK/log.jsonl, over the batch
  python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if "\"epoch\"" in l]
print("%.1f" % (sum(r["samples_per_s"] for r in rows[1:]) / len(rows[1:]) / int(sys.argv[2])))
' "$WORK/log.jsonl" "$BATCH"
}
train() {  # train SHARD [MPIRUN ARGS]: steps/s of one run (one process without arguments)
  config "$1"
  shift
  rm -f "$WORK/log.jsonl"
  if [ $# -eq 0 ]; then
    (cd "$WORK" && OPENBLAS_NUM_THREADS=1 "$MLPX" train --quiet --config run.json) >/dev/null
  else
    (cd "$WORK" && cluster_mpirun "$@" -x OPENBLAS_NUM_THREADS=1 "$MLPX" train --quiet \
      --config run.json) >/dev/null
  fi
  steps_per_s
}

one=$(train false)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "one process: $one steps/s (batch $BATCH, one OpenBLAS thread)"
echo
echo "| hosts | link | all-reduce ms | model ms | sharded RS+AG ms | steps/s | model steps/s | sharded steps/s | dropped |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for hosts in "${HOSTS[@]}"; do
  cluster_up "$hosts" || exit 1
  for condition in "bare none 0" "1gbit 1gbit 0" "0.5%-loss none 5" "1gbit+0.5%-loss 1gbit 5"; do
    read -r name rate loss <<<"$condition"
    cluster_shape "$rate" "$loss" || exit 1
    before=$(cluster_dropped)
    timed=$(cluster_mpirun -np "$hosts" "$TIMER" 235146 50)
    all_reduce=$(sed -n 's/.* all_reduce_ms \([0-9.]*\).*/\1/p' <<<"$timed")
    sharded=$(sed -n 's/.* sharded_ms \([0-9.]*\).*/\1/p' <<<"$timed")
    steps=$(train false -np "$hosts")
    steps_sharded=$(train true -np "$hosts")
    dropped=$(($(cluster_dropped) - before))
    model="-"
    model_steps="-"
    if [ "$rate" = 1gbit ]; then
      read -r model model_steps < <(python3 -c "
n, s, one = $hosts, $BYTES, $one
t = 2 * (n - 1) / n * s / 125e6
print('%.2f %.1f' % (t * 1e3, 1 / (1 / one / n + t)))")
    fi
    echo "| $hosts | $name | $all_reduce | $model | $sharded | $steps | $model_steps | $steps_sharded | $dropped |"
  done
  cluster_down
done
rm -rf "$WORK"
