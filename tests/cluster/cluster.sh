# shellcheck shell=bash
# A cluster of network-namespace "hosts" on this machine, for multi-node MPI runs without a
# cluster. Sourced by the tests in tests/cluster/; needs root, iproute2 (ip, tc) and, for
# packet loss, nftables (nft).
#
#   . tests/cluster/cluster.sh
#   cluster_up 4                        # hosts h0..h3 on a private /24, joined by a bridge
#   cluster_shape 1gbit 5               # every host: 1 Gbit/s out (tc tbf), 5/1000 packets lost (nft)
#   cluster_mpirun -np 4 prog args...   # one rank per host, over TCP on the test subnet
#   cluster_down                        # also run on exit (trap)
#
# Layout: every host is a namespace with `lo` and `eth0` (10.X.Y.(10+i)/24); the bridge `br0`
# lives in a namespace of its own (the "switch"), each host's eth0 being one end of a veth pair
# whose other end is a port of br0. Nothing is created in the caller's namespace: no interface,
# address, route or firewall rule outside the cluster's own namespaces. Names carry this
# shell's pid and a random tag (mlpxc-PID-TAG-h0, ...), so parallel runs never collide; a run
# killed before its cleanup leaves namespaces whose pid is dead, which the next cluster_up
# removes.
#
# mpirun runs inside h0. Open MPI starts its daemon on every other host through the launch
# agent tests/cluster/netns-agent.sh (plm_rsh_agent), which maps the host's address to its
# namespace and enters it with `ip netns exec`. The TCP transport and the daemons' out-of-band
# channel are restricted to the test subnet (btl_tcp_if_include, oob_tcp_if_include), shared
# memory is off (btl tcp,self; pml ob1), so every byte between ranks crosses the veth pairs.

CLUSTER_DIR=""
CLUSTER_PREFIX=""
CLUSTER_HOSTS=0
CLUSTER_SUBNET=""
_cluster_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Why namespaces cannot be made here (empty when they can): the tests skip with this reason.
cluster_unavailable() {
  [ "$(id -u)" = 0 ] || { echo "needs root to create network namespaces (uid $(id -u))"; return; }
  command -v ip >/dev/null || { echo "ip (iproute2) is not installed"; return; }
  command -v tc >/dev/null || { echo "tc (iproute2) is not installed"; return; }
  local probe="mlpxc-probe-$$" why=""
  if ! why=$(ip netns add "$probe" 2>&1); then
    echo "ip netns add failed: $why"
    return
  fi
  if ! why=$(ip -n "$probe" link add p0 type veth peer name p1 2>&1); then
    echo "a veth pair cannot be made: $why"
  elif ! why=$(ip -n "$probe" link add b0 type bridge 2>&1); then
    echo "a bridge cannot be made: $why"
  fi
  ip netns del "$probe" 2>/dev/null
}

# Removes namespace $1 and ends the processes still inside it (a rank or daemon of a failed
# run), which would otherwise keep its network alive after its name is gone.
_cluster_remove() {
  local pid
  for pid in $(ip netns pids "$1" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$1" 2>/dev/null
}

# Namespaces left by killed runs: mlpxc-PID-* whose PID no longer lives.
_cluster_remove_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^mlpxc-[0-9]+-'); do
    pid=${ns#mlpxc-}
    pid=${pid%%-*}
    # Alive: a process that is not a zombie (a killed run's shell, never reaped, is one). Its
    # state is the field after the ")" closing the command's name in /proc/PID/stat.
    local state=""
    [ -r "/proc/$pid/stat" ] && state=$(sed 's/.*) \([A-Za-z]\).*/\1/' "/proc/$pid/stat" 2>/dev/null)
    case $state in "" | Z) ;; *) continue ;; esac
    _cluster_remove "$ns"
  done
}

# Whether namespace $1 reaches address $2 within 10 s.
_cluster_reaches() {
  local answer
  for _ in $(seq 1 20); do
    answer=$(ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1)
    case $answer in *refused*) return 0 ;; esac
    sleep 0.5
  done
  return 1
}

# cluster_up N: N hosts (2..16). Sets CLUSTER_DIR (hostfile, address map), CLUSTER_PREFIX.
cluster_up() {
  local hosts=$1 i
  _cluster_remove_stale
  CLUSTER_HOSTS=$hosts
  CLUSTER_PREFIX="mlpxc-$$-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  # A random private /24 in 10.0.0.0/8: only ever configured inside the namespaces.
  CLUSTER_SUBNET="10.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
  CLUSTER_DIR=$(mktemp -d "/tmp/$CLUSTER_PREFIX.XXXXXX")
  trap cluster_down EXIT
  trap 'exit 130' INT TERM
  local sw="$CLUSTER_PREFIX-sw"
  ip netns add "$sw" || return 1
  ip -n "$sw" link add br0 type bridge || return 1
  ip -n "$sw" link set br0 up
  ip -n "$sw" link set lo up
  : >"$CLUSTER_DIR/hostfile"
  : >"$CLUSTER_DIR/hosts"
  for ((i = 0; i < hosts; i++)); do
    local ns="$CLUSTER_PREFIX-h$i" addr="$CLUSTER_SUBNET.$((10 + i))"
    ip netns add "$ns" || return 1
    ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$sw" link set "p$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$addr slots=1" >>"$CLUSTER_DIR/hostfile"
    echo "$addr $ns" >>"$CLUSTER_DIR/hosts"
  done
  # Every host reaches h0 (no ping here: a TCP connect to a closed port answered "refused"
  # proves the path; the bridge forwards once its ports are up).
  for ((i = 1; i < hosts; i++)); do
    _cluster_reaches "$CLUSTER_PREFIX-h$i" "$CLUSTER_SUBNET.10" ||
      { echo "cluster: h$i cannot reach h0 at $CLUSTER_SUBNET.10" >&2; return 1; }
  done
}

# cluster_shape RATE LOSS_PER_MILLE: every host's outgoing traffic limited to RATE (tc tbf,
# e.g. 1gbit; "none" for no limit) and LOSS_PER_MILLE of its outgoing packets dropped at
# random (nftables numgen in the host's output chain; 0 for none). Replaces an earlier shape.
cluster_shape() {
  local rate=$1 loss=$2 i ns
  for ((i = 0; i < CLUSTER_HOSTS; i++)); do
    ns="$CLUSTER_PREFIX-h$i"
    ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null
    if [ "$rate" != none ]; then
      # burst: at least rate / HZ (1 Gbit/s at HZ 250 is 500 KB) and a whole 64 KB TSO segment.
      ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 1mb latency 100ms ||
        return 1
    fi
    ip netns exec "$ns" nft delete table inet mlpxc 2>/dev/null
    if [ "$loss" != 0 ]; then
      command -v nft >/dev/null || { echo "cluster: nft (nftables) is not installed" >&2; return 1; }
      ip netns exec "$ns" nft -f - <<NFT || return 1
table inet mlpxc {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "eth0" numgen random mod 1000 < $loss counter drop
  }
}
NFT
    fi
  done
}

# Packets dropped so far by cluster_shape's loss rule, summed over the hosts.
cluster_dropped() {
  local i total=0 n
  for ((i = 0; i < CLUSTER_HOSTS; i++)); do
    n=$(ip netns exec "$CLUSTER_PREFIX-h$i" nft list table inet mlpxc 2>/dev/null |
      sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# cluster_mpirun MPIRUN_ARGS...: mpirun inside h0, one slot per host, over the test subnet.
cluster_mpirun() {
  local flags=(--hostfile "$CLUSTER_DIR/hostfile"
    --mca plm rsh --mca plm_rsh_agent "$_cluster_here/netns-agent.sh" --mca plm_rsh_no_tree_spawn 1
    --mca pml ob1 --mca btl "tcp,self" --mca mpi_yield_when_idle 1
    --mca btl_tcp_if_include "$CLUSTER_SUBNET.0/24" --mca oob_tcp_if_include "$CLUSTER_SUBNET.0/24")
  [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
  MLPX_CLUSTER_HOSTS="$CLUSTER_DIR/hosts" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    ip netns exec "$CLUSTER_PREFIX-h0" "${MPIEXEC:-mpirun}" "${flags[@]}" "$@"
}

# cluster_pids: every process inside this cluster's hosts.
cluster_pids() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -F "$CLUSTER_PREFIX-"); do
    ip netns pids "$ns"
  done
}

# kill_cluster_processes: ends every process inside the hosts (a job that will not end itself).
kill_cluster_processes() {
  local pid
  for pid in $(cluster_pids); do kill -9 "$pid" 2>/dev/null; done
}

# show_cluster_processes: every process in the hosts, with its state and where the kernel holds
# it, for a job that stalled.
show_cluster_processes() {
  local pid
  for pid in $(cluster_pids); do
    echo "  pid $pid: state $(sed 's/.*) \([A-Za-z]\).*/\1/' "/proc/$pid/stat" 2>/dev/null)," \
      "wchan $(cat "/proc/$pid/wchan" 2>/dev/null), $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
  done
}

# end_stalled_job OUT: a job ($job) that stalled: its output, every process in the hosts, then
# the job and whatever it left there ended.
end_stalled_job() {
  cat "$1"
  show_cluster_processes
  kill -9 "$job" 2>/dev/null
  wait "$job" 2>/dev/null
  kill_cluster_processes
}

# Removes every namespace of this cluster (its veths and bridge go with them) and its folder.
cluster_down() {
  [ -n "$CLUSTER_PREFIX" ] || return 0
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -F "$CLUSTER_PREFIX-"); do
    _cluster_remove "$ns"
  done
  [ -n "$CLUSTER_DIR" ] && rm -rf "$CLUSTER_DIR"
  CLUSTER_PREFIX=""
}
