#!/usr/bin/env bash
# Open MPI's launch agent for the namespace cluster of tests/cluster/cluster.sh (plm_rsh_agent):
# called as `netns-agent.sh HOST COMMAND...` where ssh would be, it runs COMMAND (one shell
# command line, as ssh's remote side would) inside the namespace of HOST, an address of the
# cluster's hostfile, looked up in $MLPX_CLUSTER_HOSTS ("ADDRESS NAMESPACE" lines).
set -u
host=$1
shift
ns=$(awk -v h="$host" '$1 == h {print $2}' "${MLPX_CLUSTER_HOSTS:?not set: run through cluster_mpirun}")
if [ -z "$ns" ]; then
  echo "netns-agent: expected a host of $MLPX_CLUSTER_HOSTS, found $host" >&2
  exit 1
fi
exec ip netns exec "$ns" /bin/sh -c "$*"
