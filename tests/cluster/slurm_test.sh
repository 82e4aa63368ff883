#!/usr/bin/env bash
# SLURM, the launcher clusters use, on two network-namespace hosts (tests/cluster/cluster.sh):
# munged (in a folder of the test's own), slurmctld on h0, one slurmd per host (`slurmd -N
# nodeI`, entered into the host's network namespace with nsenter so that it keeps the
# machine's /sys/fs/cgroup, which `ip netns exec` would hide). A minimal slurm.conf:
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, state, spool and logs in the test's
# folder. Then:
#   1. `srun -N2 -n2 --mpi=pmix mlpx train` uninterrupted: the reference checkpoint;
#   2. the same as a 2-node `sbatch --requeue` job with `--resume auto`, preempted after its
#      first epoch with `scontrol requeue` (SLURM sends SIGTERM, mlpx writes the position's
#      checkpoint and exits 143, the job goes back to the queue and runs again): it must
#      finish with a checkpoint byte for byte the reference's;
#   3. an srun step whose rank 1 is frozen with SIGSTOP: the collective watchdog
#      (dist.timeout_s 2) names rank 1 and the step ends.
# srun --mpi=pmix starts the ranks: Debian's Open MPI 4.1 is built with PMIx (ext3x) and
# Debian's slurm-wlm has mpi_pmix_v4; no mpirun, no ssh.
#
#   bash tests/cluster/slurm_test.sh MLPX     # ~40 s
#
# Exit 77 (ctest: skipped) with the reason where namespaces or SLURM are not available. Every
# daemon and namespace goes at exit, on success or failure.
set -uo pipefail
MLPX=$(readlink -f "$1")
# shellcheck source=tests/cluster/cluster.sh
. "$(dirname "$0")/cluster.sh"

skip() {
  echo "SKIPPED: $*"
  exit 77
}
why=$(cluster_unavailable)
[ -z "$why" ] || skip "the namespace cluster cannot be made here: $why"
for tool in slurmctld slurmd sbatch srun scontrol sinfo munged nsenter; do
  command -v "$tool" >/dev/null ||
    skip "$tool is not installed (Debian: apt-get install slurm-wlm munge; make deps)"
done

cluster_up 2 || { echo "FAIL: the 2-host cluster could not be made"; exit 1; }
T=$CLUSTER_DIR
MUNGE_PID=""
slurm_down() {
  # The SLURM daemons live in the hosts' namespaces (cluster_down ends them); munged does not.
  [ -n "$MUNGE_PID" ] && kill "$MUNGE_PID" 2>/dev/null
  cluster_down
}
trap slurm_down EXIT
fail() {
  echo "FAIL: $*"
  for log in "$T"/*.log "$T"/job/slurm-*.out; do
    [ -f "$log" ] && { echo "== $log"; tail -15 "$log"; }
  done
  exit 1
}
# in_host I COMMAND...: COMMAND in host hI's network namespace, in this mount namespace.
in_host() {
  local host=$1
  shift
  nsenter --net="/run/netns/$CLUSTER_PREFIX-h$host" "$@"
}

mkdir -p "$T/munge" "$T/state" "$T/spool/node0" "$T/spool/node1" "$T/tmp/node0" "$T/tmp/node1" "$T/job"
chmod 711 "$T/munge"
head -c 1024 /dev/urandom >"$T/munge/munge.key"
chmod 400 "$T/munge/munge.key"
munged --force --socket="$T/munge/socket" --key-file="$T/munge/munge.key" \
  --log-file="$T/munge/munged.log" --pid-file="$T/munge/munged.pid" \
  --seed-file="$T/munge/munged.seed" || fail "munged did not start: $(tail -3 "$T/munge/munged.log")"
MUNGE_PID=$(cat "$T/munge/munged.pid")

cat >"$T/slurm.conf" <<CONF
ClusterName=mlpx-test
SlurmctldHost=$(hostname -s)($CLUSTER_SUBNET.10)
AuthType=auth/munge
AuthInfo=socket=$T/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
TmpFS=$T/tmp/%n
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.%n.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/linear
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
NodeName=node0 NodeAddr=$CLUSTER_SUBNET.10 CPUs=1 RealMemory=1000 State=UNKNOWN
NodeName=node1 NodeAddr=$CLUSTER_SUBNET.11 CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=node0,node1 Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"
srun --mpi=list 2>&1 | grep -q pmix || skip "srun has no PMIx plugin: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
# SLURM that cannot run on this machine (its daemons stop at start-up) is a skip whose reason
# holds the daemons' own errors; what the job does once SLURM runs is tested.
slurm_errors() { grep -h "error" "$T"/slurm*.log 2>/dev/null | tail -4 | tr '\n' ' '; }
in_host 0 slurmctld -c || skip "slurmctld did not start: $(slurm_errors)"
in_host 0 slurmd -N node0 || skip "slurmd -N node0 did not start: $(slurm_errors)"
in_host 1 slurmd -N node1 || skip "slurmd -N node1 did not start: $(slurm_errors)"
for _ in $(seq 1 100); do
  [ "$(in_host 0 sinfo -h -o '%T' 2>/dev/null | sort -u)" = idle ] && break
  sleep 0.2
done
[ "$(in_host 0 sinfo -h -o '%T' | sort -u)" = idle ] ||
  skip "the SLURM nodes are not idle ($(in_host 0 sinfo -h -o '%N %T %E' 2>&1 | tr '\n' ' ')): $(slurm_errors)"

cd "$T/job" || exit 1
cat >run.json <<'JSON'
{"device": "cpu", "seed": 3,
 "data": {"source": "synthetic", "synthetic": {"train_samples": 4000, "test_samples": 200,
                                               "features": 16, "classes": 4}},
 "model": {"layers": [{"units": 32, "activation": "relu", "dropout": 0.1},
                      {"units": 4, "activation": "identity"}]},
 "optimizer": {"type": "adam", "lr": 0.003},
 "train": {"epochs": 6, "batch_size": 16},
 "output": {"checkpoint": "model.safetensors", "log": "log.jsonl"},
 "dist": {"timeout_s": 60}}
JSON
# Two ranks on two cores besides the daemons: they yield the core while they wait.
export OMPI_MCA_mpi_yield_when_idle=1

start=$SECONDS
in_host 0 srun -N2 -n2 --mpi=pmix "$MLPX" train --config run.json --quiet >reference.txt 2>&1 ||
  { cat reference.txt; fail "the uninterrupted srun run failed"; }
echo "uninterrupted: srun -N2 -n2 --mpi=pmix mlpx train, $((SECONDS - start)) s"
mv model.safetensors reference.safetensors
rm -f log.jsonl

cat >job.sh <<SCRIPT
#!/bin/bash
#SBATCH --nodes=2 --ntasks-per-node=1 --requeue --open-mode=append
#SBATCH --output=$T/job/slurm-%j.out
echo "job \$SLURM_JOB_ID, restart \${SLURM_RESTART_COUNT:-0}, nodes \$SLURM_JOB_NODELIST"
srun --mpi=pmix "$MLPX" train --config "$T/job/run.json" --resume auto --quiet
SCRIPT
job=$(in_host 0 sbatch --parsable job.sh) || fail "sbatch refused the job"
start=$SECONDS
for _ in $(seq 1 900); do
  [ -s model.safetensors ] && break
  sleep 0.1
done
[ -s model.safetensors ] || fail "job $job wrote no checkpoint within 90 s"
in_host 0 scontrol requeue "$job" || fail "scontrol requeue $job refused"
echo "job $job requeued $((SECONDS - start)) s after it was submitted"
# SLURM makes a requeued job eligible 120 s after its requeue (its BeginTime); the test, as an
# impatient administrator may, moves that to now once the first run has ended.
state=""
released=no
for _ in $(seq 1 600); do
  state=$(in_host 0 scontrol show job "$job" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) break ;; esac
  if [ "$state" = PENDING ] && [ "$released" = no ]; then
    echo "job $job pending again after $((SECONDS - start)) s: $(in_host 0 scontrol show job "$job" | grep -oE 'Reason=[^ ]*|EligibleTime=[^ ]*' | tr '\n' ' ')"
    in_host 0 scontrol update JobId="$job" StartTime=now || fail "scontrol update StartTime=now refused"
    released=yes
  fi
  sleep 0.2
done
restarts=$(in_host 0 scontrol show job "$job" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
echo "job $job: $state after $((SECONDS - start)) s, restarts $restarts"
[ "$state" = COMPLETED ] || fail "job $job ended $state"
[ "${restarts:-0}" -ge 1 ] || fail "job $job was not requeued (Restarts=$restarts)"
out=$(cat slurm-"$job".out)
echo "$out" | grep -E "stopped|resum|job $job" | head -5
echo "$out" | grep -q "restart 1" || fail "the job did not run a second time"
cmp -s model.safetensors reference.safetensors ||
  fail "the requeued job's checkpoint differs from the uninterrupted run's"
echo "the requeued job's checkpoint is byte for byte the uninterrupted run's"

# The collective watchdog under srun: rank 1 frozen with SIGSTOP after the first epoch; rank 0's
# watchdog (dist.timeout_s 2) names it and aborts, and SLURM cancels the step.
sed -i 's/"timeout_s": 60/"timeout_s": 2/; s/"epochs": 6/"epochs": 100000/' run.json
rm -f model.safetensors
in_host 0 srun -N2 -n2 --mpi=pmix "$MLPX" train --config run.json --quiet >frozen.txt 2>&1 &
step=$!
for _ in $(seq 1 900); do
  [ -s model.safetensors ] && break
  sleep 0.1
done
victim=""
for pid in $(ip netns pids "$CLUSTER_PREFIX-h1"); do
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mlpx ] &&
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'SLURM_PROCID=1'; then
    victim=$pid
  fi
done
[ -n "$victim" ] || { kill "$step"; fail "no checkpoint or no rank 1 of the srun step within 90 s"; }
kill -STOP "$victim"
start=$SECONDS
while kill -0 "$step" 2>/dev/null && ((SECONDS - start <= 32)); do sleep 0.2; done
kill -0 "$step" 2>/dev/null && { kill "$step"; fail "the srun step still runs 32 s after SIGSTOP"; }
wait "$step"
status=$?
echo "rank 1 frozen: srun ended $((SECONDS - start)) s later, status $status"
grep -m1 "did not complete within" frozen.txt
[ "$status" -ne 0 ] || fail "srun exited 0 with a frozen rank"
grep -q "did not complete within dist.timeout_s = 2 s: rank 1 did not arrive" frozen.txt ||
  { cat frozen.txt; fail "no watchdog message naming rank 1"; }
echo "slurm_test: PASS"
