#!/usr/bin/env bash
# check-deploy-guide.sh: run docs/deploy-three-sites.md on this machine and
# check what each step prints.
#
#   scripts/check-deploy-guide.sh
#   KEEP=1 scripts/check-deploy-guide.sh       # leave the nodes running
#   GRANGE_BIN=/path/to/grange PORTS="p1 … p9" scripts/check-deploy-guide.sh
#
# The guide's fenced blocks carry attributes after their language, which
# this script reads (the rendered page hides them):
#
#   toml file=PATH site=S            write the block to PATH of site S
#   ini file=…/grange.service        the unit whose ExecStart starts a node
#   sh copy=PATH from=S to=S1,S2     copy a file between sites (scp in the guide)
#   sh start=S1,S2 | stop=S          start or stop the nodes of those sites
#   sh site=S step=NAME [capture=VAR] [wait]
#                                    run the block at site S; VAR gets its
#                                    stdout; `wait` reruns it until the
#                                    step's check passes (30 s)
#
# The three sites run on 127.0.0.1 in a temporary directory: NAME.example.net:3901
# and :3904 become loopback ports, and for the block's site [::]:3901,
# [::]:3904, 127.0.0.1:3903, /etc/grange, /var/lib/grange and
# /usr/local/bin/grange become that site's ports, directories and the
# binary; `grange` runs the CLI with that site's configuration. Variables a
# block assigns carry over to the next blocks, as in one terminal.
#
# Every step runs even when one fails; the script lists the failed steps
# and exits 1. cmd/grange/deploy_guide_test.go runs it in `go test`.
set -euo pipefail

cd "$(dirname "$0")/.."
GUIDE=docs/deploy-three-sites.md
SITES=(home office vps)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/grange-guide.XXXXXX")
BASE_PORT=${BASE_PORT:-39200}
read -r -a PORTLIST <<<"${PORTS:-$(seq -s ' ' "$BASE_PORT" $((BASE_PORT + 8)))}"
if ((${#PORTLIST[@]} != 9)); then
	echo "PORTS must list 9 ports" >&2
	exit 2
fi
declare -A RPC K2V ADMIN PID
for i in 0 1 2; do
	s=${SITES[i]}
	RPC[$s]=${PORTLIST[3 * i]}
	K2V[$s]=${PORTLIST[3 * i + 1]}
	ADMIN[$s]=${PORTLIST[3 * i + 2]}
	mkdir -p "$DIR/$s/work"
done

cleanup() {
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "Nodes left running (pids ${PID[*]:-none}); their files are in $DIR."
		return
	fi
	for s in "${!PID[@]}"; do
		kill "${PID[$s]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

BIN=${GRANGE_BIN:-}
if [[ -z "$BIN" ]]; then
	BIN="$DIR/grange"
	echo "Building grange into $BIN"
	go build -o "$BIN" ./cmd/grange
fi

# subst SITE: the guide's names and ports → this machine's, on stdin.
subst() {
	local s=$1 o args=()
	args+=(-e "s#\[::\]:3901#127.0.0.1:${RPC[$s]}#g"
		-e "s#\[::\]:3904#127.0.0.1:${K2V[$s]}#g"
		-e "s#127\.0\.0\.1:3903#127.0.0.1:${ADMIN[$s]}#g"
		-e "s#/usr/local/bin/grange#$BIN#g"
		-e "s#/etc/grange#$DIR/$s/etc#g"
		-e "s#/var/lib/grange#$DIR/$s/lib#g")
	for o in "${SITES[@]}"; do
		args+=(-e "s#$o\.example\.net:3901#127.0.0.1:${RPC[$o]}#g"
			-e "s#$o\.example\.net:3904#127.0.0.1:${K2V[$o]}#g")
	done
	sed "${args[@]}"
}

# Extract the blocks with attributes, in order: $DIR/blocks/NNN and NNN.attrs.
mkdir -p "$DIR/blocks"
awk -v dir="$DIR/blocks" '
	!inb && /^```[a-z]+ .*=/ {
		inb = 1; n++; f = sprintf("%s/%03d", dir, n)
		a = $0; sub(/^```[a-z]+ /, "", a); print a > (f ".attrs"); close(f ".attrs")
		printf "" > f; next
	}
	inb && /^```$/ { inb = 0; close(f); next }
	inb { print >> f }
' "$GUIDE"

FAILED=()
SITE=home
grange() { "$BIN" -c "$DIR/$SITE/etc/grange.toml" "$@"; }

logs() {
	local s
	for s in "${SITES[@]}"; do
		[[ -f "$DIR/$s/node.log" ]] && { echo "---- log of $s ----"; tail -15 "$DIR/$s/node.log"; }
	done
}

# start_node SITE: run the unit's ExecStart for SITE; wait for its admin API.
start_node() {
	local s=$1 exec deadline=$((SECONDS + 30))
	exec=$(sed -n 's/^ExecStart=//p' "$UNIT" | subst "$s")
	[[ -n "$exec" ]] || { echo "no ExecStart in the unit" >&2; exit 1; }
	# shellcheck disable=SC2086 # the command line is split as systemd would
	$exec >>"$DIR/$s/node.log" 2>&1 &
	PID[$s]=$!
	until SITE=$s grange status >/dev/null 2>&1; do
		if ((SECONDS > deadline)) || ! kill -0 "${PID[$s]}" 2>/dev/null; then
			echo "node $s did not start" >&2
			logs >&2
			exit 1
		fi
		sleep 0.3
	done
	echo "  started $s (pid ${PID[$s]}): RPC ${RPC[$s]}, K2V ${K2V[$s]}, admin ${ADMIN[$s]}"
}

stop_node() {
	local s=$1
	kill "${PID[$s]}"
	wait "${PID[$s]}" 2>/dev/null || true
	unset "PID[$s]"
	echo "  stopped $s"
}

# The checks, one per step: check_STEP reads the block's stdout in $OUT.
OUT=
id_of() { local v=$1; printf '%s' "${!v%%@*}"; }
up_line() { grep -Eq "^$(id_of "$1" | cut -c1-16) .* $2[ ,]" "$OUT"; }
check_secret() {
	local f="$DIR/home/etc/rpc_secret"
	grep -Eqx '[0-9a-f]{64}' "$f" && [[ $(stat -c %a "$f") == 600 ]]
}
check_node_id() { grep -Eqx "[0-9a-f]{64}@127\.0\.0\.1:${RPC[$1]}" "$OUT"; }
check_id-home() { check_node_id home; }
check_id-office() { check_node_id office; }
check_id-vps() { check_node_id vps; }
check_connect() { [[ $(grep -c '^Connected to ' "$OUT") == 2 ]]; }
check_status-up() { up_line HOME_NODE up && up_line OFFICE_NODE up && up_line VPS_NODE up; }
check_assign() {
	grep -q 'NEW CLUSTER LAYOUT AFTER APPLYING THE CHANGES (version 1)' "$OUT" &&
		[[ $(grep -c ' 256 (+256) ' "$OUT") == 3 ]]
}
check_apply() { grep -q 'Layout version 1 is applied' "$OUT"; }
check_converged() { grep -q 'CURRENT CLUSTER LAYOUT (version 1)' "$OUT" && [[ $(grep -c ' 256 ' "$OUT") -ge 3 ]]; }
check_key() {
	[[ "$KEY_ID" =~ ^GK[0-9a-f]{24}$ && "$KEY_SECRET" =~ ^[0-9a-f]{64}$ ]] &&
		grep -q '^Bucket mail created' "$OUT" &&
		grep -q "Key $KEY_ID now has permissions RW- on bucket mail" "$OUT"
}
check_write() { [[ ! -s "$OUT" ]]; }
check_read() { [[ "$(<"$OUT")" == "written at home" ]]; }
check_status-down() {
	up_line HOME_NODE up && up_line OFFICE_NODE up && up_line VPS_NODE down &&
		grep -q '^Health: degraded' "$OUT"
}
check_write-degraded() { check_write; }
check_status-back() { check_status-up && grep -q '^Health: healthy' "$OUT"; }

# run_step FILE SITE STEP CAPTURE WAIT
run_step() {
	local f=$1 s=$2 step=$3 cap=$4 wait=$5
	local out="$f.out" err="$f.err" vars="$f.vars" deadline=$((SECONDS + 30)) rc
	local assigned
	assigned=$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$f" | sort -u)
	subst "$s" <"$f" >"$f.run"
	echo "[$s] $step"
	while :; do
		# Not `( … ) || rc=$?`: -e would be ignored inside the subshell.
		set +e
		(
			set -euo pipefail
			SITE=$s
			cd "$DIR/$s/work"
			# shellcheck disable=SC1090
			source "$f.run"
			for v in $assigned; do declare -p "$v" >>"$vars"; done
		) >"$out" 2>"$err"
		rc=$?
		set -e
		if ((rc == 0)); then
			# shellcheck disable=SC1090
			# declare -g: this runs in a function, where declare is local
			[[ -f "$vars" ]] && source <(sed 's/^declare /declare -g /' "$vars")
			[[ -n "$cap" ]] && printf -v "$cap" '%s' "$(<"$out")"
			OUT=$out
			if ! declare -F "check_$step" >/dev/null || "check_$step"; then
				return 0
			fi
		fi
		if [[ -z "$wait" ]] || ((SECONDS > deadline)); then
			break
		fi
		rm -f "$vars"
		sleep 0.5
	done
	FAILED+=("$step")
	{
		echo "FAIL: step $step at $s (exit status $rc)"
		echo "---- commands ----"
		cat "$f.run"
		echo "---- stdout ----"
		cat "$out"
		echo "---- stderr ----"
		cat "$err"
		logs
	} >&2
}

UNIT=
for attrs in "$DIR"/blocks/*.attrs; do
	f=${attrs%.attrs}
	declare -A A=()
	wait_flag=
	for kv in $(<"$attrs"); do
		case $kv in
		*=*) A[${kv%%=*}]=${kv#*=} ;;
		wait) wait_flag=1 ;;
		esac
	done
	if [[ -n "${A[file]:-}" && -z "${A[site]:-}" ]]; then
		UNIT=$f
	elif [[ -n "${A[file]:-}" ]]; then
		path=$(subst "${A[site]}" <<<"${A[file]}")
		mkdir -p "$(dirname "$path")"
		subst "${A[site]}" <"$f" >"$path"
		chmod 600 "$path"
		echo "[${A[site]}] wrote ${A[file]}"
	elif [[ -n "${A[copy]:-}" ]]; then
		src=$(subst "${A[from]}" <<<"${A[copy]}")
		for s in ${A[to]//,/ }; do
			dst=$(subst "$s" <<<"${A[copy]}")
			mkdir -p "$(dirname "$dst")"
			cp -p "$src" "$dst"
			echo "[$s] copied ${A[copy]} from ${A[from]}"
		done
	elif [[ -n "${A[start]:-}" ]]; then
		for s in ${A[start]//,/ }; do start_node "$s"; done
	elif [[ -n "${A[stop]:-}" ]]; then
		stop_node "${A[stop]}"
	elif [[ -n "${A[step]:-}" ]]; then
		run_step "$f" "${A[site]}" "${A[step]}" "${A[capture]:-}" "$wait_flag"
	else
		echo "unknown block attributes: $(<"$attrs")" >&2
		exit 2
	fi
	unset A
done

echo
if ((${#FAILED[@]} > 0)); then
	echo "The guide failed at: ${FAILED[*]}"
	exit 1
fi
echo "Every step of $GUIDE passed."
