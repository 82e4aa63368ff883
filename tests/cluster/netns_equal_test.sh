#!/usr/bin/env bash
# Data-parallel training over a real network stack: HOSTS network-namespace hosts
# (tests/cluster/cluster.sh), one rank each, talking TCP through veth pairs and a bridge. The
# ranks run tests/dist/data_parallel_test.cpp's equivalence tests, which train 210 steps as
# their rank and compare the weights and the optimizer's state with one process training
# alone (rtol 1e-5 in float32), with and without the sharded optimizer, and the communicator's
# own tests. Twice: on the bare links, then with every host's output limited to 1 Gbit/s (tc
# tbf) and 0.5% of its packets dropped (nftables); the drops are counted, so a loss rule that
# dropped nothing fails the test rather than pass it untested.
#
#   bash tests/cluster/netns_equal_test.sh HOSTS MPIEXEC MLPX_DIST_TESTS   # 2 hosts: ~5 s
#
# Exit 77 (ctest: skipped) with the reason where namespaces cannot be made (not root, no
# iproute2, a container without the capability) or nft is missing.
set -uo pipefail
HOSTS=$1
MPIEXEC=$2
DIST_TESTS=$3
# shellcheck source=tests/cluster/cluster.sh
. "$(dirname "$0")/cluster.sh"

why=$(cluster_unavailable)
[ -z "$why" ] && ! command -v nft >/dev/null && why="nft (nftables) is not installed"
if [ -n "$why" ]; then
  echo "SKIPPED: the namespace cluster cannot be made here: $why"
  exit 77
fi
if ! "$MPIEXEC" --version 2>&1 | grep -qE "OpenRTE|Open MPI"; then
  echo "SKIPPED: the namespace cluster launches with Open MPI's mpirun, found: $("$MPIEXEC" --version 2>&1 | head -1)"
  exit 77
fi
export MPIEXEC
cluster_up "$HOSTS" || { echo "FAIL: the $HOSTS-host cluster could not be made"; exit 1; }

filter='Communicator.*:*DataParallel.EqualsOneProcessWithTheSameGlobalBatch/Float32Adam*'
fails=0
# launch OUT: the tests on every host in the background ($job), output in OUT. Returns non-zero
# when no rank has started a test within 30 s (a stalled launch, not what is tested here).
launch() {
  cluster_mpirun -np "$HOSTS" "$DIST_TESTS" --gtest_filter="$filter" --gtest_color=no >"$1" 2>&1 &
  job=$!
  local start=$SECONDS
  while ! grep -q '^\[ RUN      \]' "$1" 2>/dev/null; do
    kill -0 "$job" 2>/dev/null || return 0  # ended: its status says how
    ((SECONDS - start < 30)) || return 1
    sleep 0.2
  done
}
run() {  # run CONDITION: the tests on every host; the gtest summary of each rank
  local condition=$1 out="$CLUSTER_DIR/out-$1.txt" start=$SECONDS attempt
  # A launch that stalls before any test starts is shown, ended and tried once more; it fails
  # the test only if it happens twice. A rank that hangs inside the tests is not retried.
  for attempt in 1 2; do
    launch "$out" && break
    echo "$HOSTS hosts, $condition: attempt $attempt: no rank started a test within 30 s; its output:"
    end_stalled_job "$out"
    if [ "$attempt" = 2 ]; then
      echo "FAIL: $HOSTS hosts, $condition: the launch stalled twice"
      fails=1
      return
    fi
  done
  wait "$job"
  local status=$? passed
  # Every rank ran the sharded case (a filter that matched nothing would pass 0 tests).
  passed=$(grep -c '^\[       OK \] .*EqualsOneProcessWithTheSameGlobalBatch/Float32AdamSharded' "$out")
  echo "$HOSTS hosts, $condition: status $status, $passed of $HOSTS ranks passed, $((SECONDS - start)) s"
  if [ "$status" -ne 0 ] || [ "$passed" -ne "$HOSTS" ]; then
    echo "FAIL: $HOSTS hosts, $condition:"
    cat "$out"
    fails=1
  fi
}
run bare-links
cluster_shape 1gbit 5 || { echo "FAIL: tc tbf or nft refused the shape"; exit 1; }
run 1gbit-0.5pct-loss
dropped=$(cluster_dropped)
echo "packets dropped by the loss rule: $dropped"
if [ "$dropped" -eq 0 ]; then
  echo "FAIL: the 0.5% loss rule dropped no packet"
  fails=1
fi
[ "$fails" -eq 0 ] && echo "netns_equal_test ($HOSTS hosts): PASS"
exit "$fails"
