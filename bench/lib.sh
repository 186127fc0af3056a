# shellcheck shell=bash
# bench/lib.sh - the shell that bench/run.sh, bench/soak.sh and
# bench/profile.sh share: processes (start, stop by PID, stop all on exit),
# ports, the apexd build, BIND and apexd configurations. Measuring,
# arithmetic and reports are in Python beside it (lib.py and the modules
# that import it); this file only starts and stops things.
#
# Source it first thing. The caller may set before sourcing:
#   BENCH_TAG    the prefix of say's lines (default bench)
#   DIE_STATUS   die's exit status (default 1)
# It sets ROOT (the repository, also the working directory), BENCH, PY,
# and PIDS, the processes to stop on exit, and traps EXIT, INT and TERM.
# Callers set RUN (their output directory) and DATA (bench/gen.py's output)
# before start_bind; BIND_PORT, CERT and KEY before write_apexd_ini.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"
# Debian's python3-dnspython is installed for the system interpreter only.
PY=/usr/bin/python3
export BENCH_TAG=${BENCH_TAG:-bench}
PIDS=()
USED_PORTS=()

say() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	say "ERROR: $*"
	exit "${DIE_STATUS:-1}"
}

# proc_alive PID: true while PID runs. A child that has exited but not been
# reaped is a zombie and still answers kill -0, so read its state.
proc_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ $state != Z && $state != X ]]
}

# stop_pid PID [SECONDS]: TERM, KILL after SECONDS (default 10), reap, and
# forget PID. Only ever called with a PID this script started.
stop_pid() {
	local pid=$1 limit=${2:-10} i p keep=()
	if proc_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < limit * 10; i++)); do
			proc_alive "$pid" || break
			sleep 0.1
		done
		proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

cleanup() {
	local rc=$? pid
	set +e
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn LOG CMD...: start CMD in the background, stdout and stderr into
# LOG; its PID goes into LAST_PID and PIDS. (Not in $(...): the script
# itself must be the parent.)
spawn() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# free_port: FP = a port in 20000-29999 free for UDP and TCP on 127.0.0.1,
# not handed out before by this script. (Not in $(...): it records the
# port.)
free_port() {
	FP=$("$PY" "$BENCH/lib.py" free-port "${USED_PORTS[@]}")
	USED_PORTS+=("$FP")
}

# wait_udp PORT: until h0000.bench.test A is answered over UDP (10 s).
wait_udp() { "$PY" "$BENCH/lib.py" wait-udp "$1" 10; }
# wait_tcp PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_tcp() { "$PY" "$BENCH/lib.py" wait-tcp "$1" 10; }

# build_apexd CMAKE_TARGET...: unless APEXD is set, build the targets
# (Release) into build-bench/ (not with NO_BUILD=1) and set APEXD to
# build-bench/proxy/apexd. Dies when there is no apexd binary.
build_apexd() {
	if [[ -z ${APEXD:-} ]]; then
		if [[ ${NO_BUILD:-0} != 1 ]]; then
			say "building apexd (Release) into build-bench/"
			cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
			cmake --build "$ROOT/build-bench" -j2 --target "$@" >/dev/null
		fi
		APEXD=$ROOT/build-bench/proxy/apexd
	fi
	[[ -x $APEXD ]] || die "no apexd binary at $APEXD"
}

# start_bind PORT [OPTIONS [TOP]]: BIND (`named -g`) serving DATA's
# bench.test and cdn.test on 127.0.0.1:PORT (UDP and TCP), its files in
# RUN/named, its log in RUN/named.log. OPTIONS are more lines for the
# options block, TOP more top-level statements. Sets BIND_PID; dies when
# BIND does not answer.
start_bind() {
	local port=$1 options=${2:-} top=${3:-}
	mkdir -p "$RUN/named"
	cat >"$RUN/named/named.conf" <<EOF
options {
	directory "$RUN/named";
	pid-file "named.pid";
	lock-file "named.lock";
	session-keyfile "session.key";
	managed-keys-directory ".";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	minimal-responses yes;
$options
};
$top
controls { };
zone "bench.test" { type primary; file "$DATA/bench.test.zone"; };
zone "cdn.test" { type primary; file "$DATA/cdn.test.zone"; };
EOF
	spawn "$RUN/named.log" named -g -c "$RUN/named/named.conf"
	# shellcheck disable=SC2034 # for the caller
	BIND_PID=$LAST_PID
	wait_udp "$port" || {
		tail -20 "$RUN/named.log" >&2
		die "BIND does not answer on $port"
	}
}

# write_dnsdist_conf FILE PORT CACHE(0|1): dnsdist on 127.0.0.1:PORT
# (UDP and TCP) in front of BIND at BIND_PORT, as bench/run.sh starts it
# but without TLS; CACHE=1 adds its packet cache.
write_dnsdist_conf() {
	local file=$1 port=$2 cache=$3
	{
		echo 'setSecurityPollSuffix("")'
		echo "newServer({address=\"127.0.0.1:$BIND_PORT\", name=\"bind\", healthCheckMode=\"up\"})"
		echo "setLocal(\"127.0.0.1:$port\")"
		if [[ $cache == 1 ]]; then
			echo 'pc = newPacketCache(100000, {maxTTL=86400, minTTL=0})'
			echo 'getPool(""):setCache(pc)'
		fi
	} >"$file"
}

# write_apexd_ini FILE THREADS ZONES AC [LISTEN...]: an apexd.ini in front
# of BIND at BIND_PORT. LISTEN are lines of [listen] ("udp = ADDR", ...);
# a dot or doh listener brings a [tls] section with CERT and KEY. ZONES=1
# adds [zone bench.test] and [zone cdn.test] (their ANAME owners are
# flattened); AC=1 adds [cache] answers = yes.
write_apexd_ini() {
	local file=$1 threads=$2 zones=$3 ac=$4 line tls=0
	shift 4
	{
		printf '[server]\nthreads = %s\nlog-level = info\n\n[listen]\n' "$threads"
		for line in "$@"; do
			printf '%s\n' "$line"
			[[ $line == dot* || $line == doh* ]] && tls=1
		done
		if [[ $tls == 1 ]]; then
			printf '\n[tls]\ncertificate = %s\nprivate-key = %s\n' "$CERT" "$KEY"
		fi
		printf '\n[backend]\naddress = 127.0.0.1:%s\ntimeout = 2s\n' "$BIND_PORT"
		printf '\n[flatten]\ncache-size = 64M\n'
		if [[ $zones == 1 ]]; then
			printf '\n[zone bench.test]\n[zone cdn.test]\n'
		fi
		if [[ $ac == 1 ]]; then
			printf '\n[cache]\nanswers = yes\n'
		fi
	} >"$file"
}
