#!/usr/bin/env bash
# three-node-cluster.sh: start a three-node grange cluster on this machine
# and lay it out with the operator CLI only, as an operator would.
#
#   scripts/three-node-cluster.sh            # run, print the status, stop
#   KEEP=1 scripts/three-node-cluster.sh     # leave the nodes running
#   BASE_PORT=40000 scripts/three-node-cluster.sh
#
# It builds ./cmd/grange, writes three configurations under a temporary
# directory (replication_factor = 3, one shared rpc_secret, loopback ports
# BASE_PORT.. BASE_PORT+8, default 39100), starts `grange server -c FILE`
# three times, then runs:
#
#   grange node id                         on each node
#   grange node connect ID2@ADDR ID3@ADDR  on node 1
#   grange status                          until the three nodes are up
#   grange layout assign -z dcN -c 1G ID   for each node (zones dc1..dc3)
#   grange layout show
#   grange layout apply --version 1
#   grange status                          on every node, until each has
#                                          layout version 1
#
# and stops the nodes on exit (unless KEEP=1). Logs are in $DIR/nodeN.log.
# cmd/grange/cluster_process_test.go runs the same sequence in `go test`.
set -euo pipefail

cd "$(dirname "$0")/.."
BASE_PORT=${BASE_PORT:-39100}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/grange-3nodes.XXXXXX")
BIN="$DIR/grange"
PIDS=()

cleanup() {
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "Nodes left running (pids ${PIDS[*]}); their files are in $DIR."
		return
	fi
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

echo "Building grange into $BIN"
go build -o "$BIN" ./cmd/grange

SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

for i in 1 2 3; do
	rpc=$((BASE_PORT + 3 * (i - 1)))
	k2v=$((rpc + 1))
	admin=$((rpc + 2))
	mkdir -p "$DIR/node$i"
	cat >"$DIR/node$i.toml" <<EOF
metadata_dir = "$DIR/node$i/meta"
data_dir = "$DIR/node$i/data"
replication_factor = 3
rpc_secret = "$SECRET"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"

[k2v_api]
api_bind_addr = "127.0.0.1:$k2v"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "token-of-node-$i"
EOF
	chmod 600 "$DIR/node$i.toml"
	"$BIN" server -c "$DIR/node$i.toml" >"$DIR/node$i.log" 2>&1 &
	PIDS+=($!)
	echo "Started node $i (pid $!): RPC 127.0.0.1:$rpc, K2V 127.0.0.1:$k2v, admin 127.0.0.1:$admin"
done

g() { # g N ARGS...: run the CLI against node N
	local n=$1
	shift
	"$BIN" -c "$DIR/node$n.toml" "$@"
}

# retry SECONDS CMD...: rerun CMD until it succeeds
retry() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS > deadline)); then
			echo "Timed out: $*" >&2
			"$@" || true
			for i in 1 2 3; do echo "---- node $i log ----" >&2; tail -20 "$DIR/node$i.log" >&2; done
			exit 1
		fi
		sleep 0.5
	done
}

declare -a PEER ID
for i in 1 2 3; do
	retry 30 g "$i" status
	PEER[i]=$(g "$i" node id -q)
	ID[i]=${PEER[i]%%@*}
	echo "Node $i is ${PEER[i]}"
done

echo
echo "\$ grange node connect (on node 1)"
g 1 node connect "${PEER[2]}" "${PEER[3]}"

all_up() { # all_up N: node N sees the three nodes up
	local out
	out=$(g "$1" status) || return 1
	for i in 1 2 3; do
		grep -Eq "^${ID[i]:0:16} .* up " <<<"$out" || return 1
	done
}
retry 30 all_up 1

echo
for i in 1 2 3; do
	echo "\$ grange layout assign -z dc$i -c 1G ${ID[i]:0:10} (on node 1)"
	g 1 layout assign -z "dc$i" -c 1G "${ID[i]:0:10}"
done
echo
echo "\$ grange layout show (on node 1)"
g 1 layout show
echo
echo "\$ grange layout apply --version 1 (on node 1)"
g 1 layout apply --version 1

converged() { # converged N: node N has layout version 1 and sees all up
	g "$1" status | grep -q "NODES (layout version 1)" && all_up "$1"
}
for i in 1 2 3; do
	retry 30 converged "$i"
done

for i in 1 2 3; do
	echo
	echo "\$ grange status (on node $i)"
	g "$i" status
done
echo
echo "\$ grange layout history (on node 3)"
g 3 layout history
echo
echo "The three nodes agree on layout version 1."
