#!/usr/bin/env bash
# bench/run.sh - apexd vs dnsdist vs BIND direct, per transport. One command:
#
#     bench/run.sh                      # about 8 minutes on a 2-core box
#     DURATION=5 TRANSPORTS="udp tcp" TARGETS="bind dnsdist apexd" bench/run.sh
#
# Installs what is missing (tests/bootstrap.sh, plus dnsdist), builds apexd
# Release into build-bench/, generates the zones and query files
# (bench/gen.py), starts BIND on a free loopback port, then one target at a
# time in front of it, and drives each transport with dnsperf (UDP, TCP,
# DoT) or h2load (DoH, GET). See bench/README.md for what the figures mean.
#
# Environment:
#   DURATION     seconds per saturation run (default 10)
#   LAT_DURATION seconds per fixed-rate latency run (default 5)
#   LAT_QPS      the fixed rate of the latency runs (default 5000)
#   TRANSPORTS   any of: udp tcp dot doh (default all four)
#   TARGETS      any of: bind dnsdist dnsdist-pc apexd apexd-ac apexd-ac-nozone
#                (default all): BIND direct; dnsdist with its packet cache
#                off, on; apexd; apexd with [cache] answers = yes; the same
#                without [zone] sections (nothing flattened)
#   EXTRAS       any of: flat threads mem (default all three): flattened
#                answers vs plain (apexd), 1 vs 2 worker threads on UDP
#                (taskset), RSS per target-cache entry (bench/cache_mem.c)
#   CLIENTS      concurrent clients / connections of the load tool (default 16)
#   OUTSTANDING  dnsperf -q, queries in flight in all (default 128);
#                h2load gets -m OUTSTANDING/CLIENTS streams per connection
#   APEXD_THREADS apexd's [server] threads in the main runs (default 2)
#   APEXD        an apexd binary to use instead of building one
#   NO_BUILD=1   do not run cmake (use build-bench/ as it is)
#
# Every process is started by this script, recorded by PID and stopped by
# PID on exit; every load run is bounded (dnsperf -l, h2load -D). Logs and
# raw outputs stay in .run/bench/ (gitignored) until the next run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
RUN=$ROOT/.run/bench
PY=/usr/bin/python3
LIB=("$PY" "$BENCH/lib.py")

DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-5}
LAT_QPS=${LAT_QPS:-5000}
TRANSPORTS=${TRANSPORTS:-udp tcp dot doh}
TARGETS=${TARGETS:-bind dnsdist dnsdist-pc apexd apexd-ac apexd-ac-nozone}
EXTRAS=${EXTRAS:-flat threads mem}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-128}
APEXD_THREADS=${APEXD_THREADS:-2}
NOISE_PCT=10

PIDS=()
USED_PORTS=()
NOTES=()

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
note() { NOTES+=("$*"); say "NOTE: $*"; }

proc_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ $state != Z && $state != X ]]
}

stop_pid() {
	local pid=$1 i
	if proc_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			proc_alive "$pid" || break
			sleep 0.1
		done
		proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	local keep=() p
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

# ---------------------------------------------------------------- install --
need_install=0
for tool in named dnsperf h2load kdig dig cmake cc taskset openssl; do
	command -v "$tool" >/dev/null 2>&1 || need_install=1
done
"$PY" -c 'import dns.message' 2>/dev/null || need_install=1
if [[ $need_install == 1 ]]; then
	say "installing missing tools: tests/bootstrap.sh"
	bash "$ROOT/tests/bootstrap.sh"
fi
if ! command -v dnsdist >/dev/null 2>&1; then
	say "installing dnsdist"
	SUDO=()
	[[ $(id -u) -eq 0 ]] || SUDO=(sudo)
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [[ ! -e $policy ]]; then
		# Do not let the package start a system dnsdist on port 53.
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
		"${SUDO[@]}" chmod 755 "$policy"
		made_policy=1
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsdist ||
		{ "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsdist; }
	[[ $made_policy == 1 ]] && "${SUDO[@]}" rm -f "$policy"
	if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
		"${SUDO[@]}" systemctl disable --now dnsdist.service >/dev/null 2>&1 || true
	fi
fi

# ------------------------------------------------------------------ build --
if [[ -z ${APEXD:-} ]]; then
	if [[ ${NO_BUILD:-0} != 1 ]]; then
		say "building apexd (Release) into build-bench/"
		cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
		cmake --build "$ROOT/build-bench" -j2 --target apexd apex_flatten apex_codec >/dev/null
	fi
	APEXD=$ROOT/build-bench/proxy/apexd
fi
[[ -x $APEXD ]] || die "no apexd binary at $APEXD"

rm -rf "$RUN"
mkdir -p "$RUN"
RESULTS=$RUN/results.txt
: >"$RESULTS"
record() { echo "$*" >>"$RESULTS"; }

# ------------------------------------------------------------ the machine --
NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
say "apexd $("$APEXD" --version 2>&1 | head -1), git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
say "$(named -v); $(dnsdist --version 2>&1 | head -1); $(dnsperf -h 2>&1 | grep -m1 Version || true); $(h2load --version)"
say "$NCPU CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# free_port: FP = a port in 20000-29999 free for UDP and TCP on 127.0.0.1,
# not handed out before in this run. (Not in $(...): it records the port.)
free_port() {
	FP=$("$PY" - "${USED_PORTS[@]}" <<'PY'
import random, socket, sys
used = set(int(x) for x in sys.argv[1:])
for _ in range(500):
    port = random.randrange(20000, 30000)
    if port in used:
        continue
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.close()
    except OSError:
        continue
    print(port)
    sys.exit(0)
sys.exit("no free port in 20000-29999")
PY
)
	USED_PORTS+=("$FP")
}

# wait_tcp PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_tcp() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_udp PORT: until h0000.bench.test A is answered over UDP (10 s).
wait_udp() {
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -n $(dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short h0000.bench.test A 2>/dev/null) ]] && return 0
		sleep 0.2
	done
	return 1
}

# ------------------------------------------------------------------- data --
say "generating zones and query files"
"$PY" "$BENCH/gen.py" "$RUN/data"
sh "$ROOT/tests/data/tls/make-certs.sh" "$RUN/tls"
CERT=$RUN/tls/fullchain.pem
KEY=$RUN/tls/server.key

# ------------------------------------------------------------------- BIND --
free_port; BIND_UDP=$FP
free_port; BIND_DOT=$FP
free_port; BIND_DOH=$FP
mkdir -p "$RUN/named"
cat >"$RUN/named/named.conf" <<EOF
options {
	directory "$RUN/named";
	pid-file "named.pid";
	lock-file "named.lock";
	session-keyfile "session.key";
	managed-keys-directory ".";
	listen-on port $BIND_UDP { 127.0.0.1; };
	listen-on port $BIND_DOT tls benchtls { 127.0.0.1; };
	listen-on port $BIND_DOH tls benchtls http benchhttp { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	minimal-responses yes;
};
tls benchtls { cert-file "$CERT"; key-file "$KEY"; };
http benchhttp { endpoints { "/dns-query"; }; };
controls { };
zone "bench.test" { type primary; file "$RUN/data/bench.test.zone"; };
zone "cdn.test" { type primary; file "$RUN/data/cdn.test.zone"; };
EOF
named -g -c "$RUN/named/named.conf" >"$RUN/named.log" 2>&1 &
BIND_PID=$!
PIDS+=("$BIND_PID")
wait_udp "$BIND_UDP" || { tail -20 "$RUN/named.log"; die "BIND does not answer on $BIND_UDP"; }
BIND_HAS_DOT=1
BIND_HAS_DOH=1
wait_tcp "$BIND_DOT" || BIND_HAS_DOT=0
wait_tcp "$BIND_DOH" || BIND_HAS_DOH=0
say "BIND pid $BIND_PID: udp/tcp $BIND_UDP, dot $BIND_DOT ($BIND_HAS_DOT), doh $BIND_DOH ($BIND_HAS_DOH)"

# ---------------------------------------------------------------- measure --
cpu_ns() { # CPU ns of every thread of PID, from schedstat's first field
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
}
busy_ns() { # busy CPU of the whole machine (user nice system irq softirq), ns
	awk -v hz="$HZ" '/^cpu / {printf "%.0f\n", ($2 + $3 + $4 + $7 + $8) * 1e9 / hz}' /proc/stat
}
steal_ns() {
	awk -v hz="$HZ" '/^cpu / {printf "%.0f\n", $9 * 1e9 / hz}' /proc/stat
}

# Current target: the process measured (PROXY_PID; BIND itself for the
# "bind" target), and its ports.
TARGET=
PROXY_PID=
declare -A PORT

# load TRANSPORT SET MODE OUT: one bounded load run against the current
# target. MODE sat (as fast as it goes, DURATION s) or lat (LAT_QPS, with
# per-query latencies, LAT_DURATION s). Sets LOAD_CPU (ns).
load() {
	local t=$1 set=$2 mode=$3 out=$4 port=${PORT[$1]} pin=()
	[[ -n ${LOAD_PIN:-} ]] && pin=(taskset -c "$LOAD_PIN")
	local dur=$DURATION
	[[ $mode == lat ]] && dur=$LAT_DURATION
	if [[ $t == doh ]]; then
		local uris=$RUN/uris-$set-$port.txt streams=$((OUTSTANDING / CLIENTS))
		((streams >= 1)) || streams=1
		{
			printf 'https://127.0.0.1:%s' "$port"
			head -1 "$RUN/data/u-$set.txt"
			tail -n +2 "$RUN/data/u-$set.txt"
		} >"$uris"
		local args=(-t 1 -c "$CLIENTS" -m "$streams" -D "$dur" -i "$uris")
		if [[ $mode == lat ]]; then
			args=(-t 1 -c "$CLIENTS" -m 1 -D "$dur" -i "$uris" --rps="$((LAT_QPS / CLIENTS))" --log-file="$out.log")
		fi
		LOAD_CPU=$("${LIB[@]}" run "$out" -- "${pin[@]}" h2load "${args[@]}") || true
	else
		local args=(-m "$t" -s 127.0.0.1 -p "$port" -d "$RUN/data/q-$set.txt" -e -t 2
			-c "$CLIENTS" -l "$dur")
		if [[ $mode == lat ]]; then
			args+=(-Q "$LAT_QPS" -q "$OUTSTANDING" -v)
		else
			args+=(-q "$OUTSTANDING")
		fi
		LOAD_CPU=$("${LIB[@]}" run "$out" -- "${pin[@]}" dnsperf "${args[@]}") || true
	fi
}

# measure KIND TRANSPORT SET [EXTRA key=value...]: a saturation run with
# CPU accounting; appends one record. Sets LAST_QPS.
measure() {
	local kind=$1 t=$2 set=$3
	shift 3
	local out=$RUN/out-$kind-$TARGET-$t-$set.txt
	local p0 b0 s0 st0 w0 p1 b1 s1 st1 w1
	p0=$(cpu_ns "$PROXY_PID") b0=$(cpu_ns "$BIND_PID") s0=$(busy_ns) st0=$(steal_ns) w0=$(date +%s%N)
	load "$t" "$set" sat "$out"
	p1=$(cpu_ns "$PROXY_PID") b1=$(cpu_ns "$BIND_PID") s1=$(busy_ns) st1=$(steal_ns) w1=$(date +%s%N)
	local parsed answered qps lost codes
	if [[ $t == doh ]]; then parsed=$("${LIB[@]}" h2load "$out"); else parsed=$("${LIB[@]}" dnsperf "$out"); fi
	read -r answered qps lost codes <<<"$parsed"
	local dp=$((p1 - p0)) db=$((b1 - b0)) wall=$((w1 - w0))
	local controlled=$((dp + LOAD_CPU))
	[[ $PROXY_PID != "$BIND_PID" ]] && controlled=$((controlled + db))
	local other=$((s1 - s0 - controlled))
	((other < 0)) && other=0
	local cpu_us bind_us other_pct steal_pct
	cpu_us=$(awk -v n="$dp" -v a="$answered" 'BEGIN {if (a > 0) printf "%.2f", n / 1000 / a; else print "n/a"}')
	bind_us=$(awk -v n="$db" -v a="$answered" 'BEGIN {if (a > 0) printf "%.2f", n / 1000 / a; else print "n/a"}')
	other_pct=$(awk -v o="$other" -v w="$wall" 'BEGIN {printf "%.1f", 100 * o / w}')
	steal_pct=$(awk -v o="$((st1 - st0))" -v w="$wall" 'BEGIN {printf "%.1f", 100 * o / w}')
	local load_pct
	load_pct=$(awk -v o="$LOAD_CPU" -v w="$wall" 'BEGIN {printf "%.0f", 100 * o / w}')
	record "kind=$kind transport=$t target=$TARGET set=$set qps=$qps answered=$answered lost=$lost" \
		"codes=$codes cpu_us=$cpu_us bind_us=$bind_us other_pct=$other_pct steal_pct=$steal_pct load_pct=$load_pct $*"
	say "$kind $TARGET $t $set: $qps qps, $answered answered, $lost lost, [$codes], proxy $cpu_us us/answer, BIND $bind_us us/answer, load tool $load_pct% of a core, other $other_pct% of a core"
	if awk -v o="$other_pct" -v l="$NOISE_PCT" 'BEGIN {exit !(o > l)}'; then
		say "WARNING: noise: other processes used $other_pct% of a core during $kind $TARGET $t (limit $NOISE_PCT%); compare ratios only, and rerun if it matters"
	fi
	if [[ $answered == 0 ]]; then
		note "$TARGET $t ($set): no answers at all; see $out"
	elif [[ $lost != 0 ]]; then
		note "$TARGET $t ($set): $lost queries lost (no answer within 2 s) of $answered answered"
	fi
	if ! [[ $codes =~ ^(NOERROR:[0-9]+|2xx:[0-9]+,4xx:0,5xx:0|-)$ ]]; then
		note "$TARGET $t ($set): response codes $codes"
	fi
	LAST_QPS=$qps
	LAST_CPU_US=$cpu_us
}

latency() {
	local t=$1
	local out=$RUN/out-lat-$TARGET-$t.txt
	load "$t" plain lat "$out"
	local r p50 p99 n
	if [[ $t == doh ]]; then r=$("${LIB[@]}" pct-h2load "$out.log"); else r=$("${LIB[@]}" pct-dnsperf "$out"); fi
	read -r p50 p99 n <<<"$r"
	record "kind=lat transport=$t target=$TARGET p50=$p50 p99=$p99 n=$n"
	say "lat $TARGET $t @$LAT_QPS qps: p50 $p50 ms, p99 $p99 ms ($n answers)"
}

# smoke TRANSPORT: one query for a plain and one for a flattened name, to
# see that the transport works at all before loading it.
smoke() {
	local t=$1 port=${PORT[$1]} opt=() a f
	case $t in
	tcp) opt=(+tcp) ;;
	dot) opt=(+tls) ;;
	doh) opt=(+https) ;;
	esac
	a=$(kdig @127.0.0.1 -p "$port" "${opt[@]}" +time=2 +retry=0 +short h0001.bench.test A 2>&1 | tr '\n' ' ')
	f=$(kdig @127.0.0.1 -p "$port" "${opt[@]}" +time=2 +retry=0 +short al0001.bench.test A 2>&1 | tr '\n' ' ')
	[[ $a == "10.1.0.1 " ]] || note "$TARGET $t: h0001.bench.test A answered '$a', expected 10.1.0.1"
	say "smoke $TARGET $t: h0001 A -> ${a:-nothing}; al0001 A -> ${f:-nothing (NODATA)}"
}

warm_up() {
	# One pass over every name, UDP, so that caches (dnsdist's packet
	# cache, apexd's presence/target/answer caches) start warm.
	local set
	for set in plain flat; do
		dnsperf -s 127.0.0.1 -p "${PORT[udp]}" -d "$RUN/data/q-$set.txt" -e -n 1 -c 4 -q 64 -t 2 \
			>"$RUN/warm-$TARGET-$set.txt" 2>&1 || true
	done
}

# ----------------------------------------------------------------- targets --
fresh_ports() { # PORT[udp,tcp,dot,doh] for a proxy: UDP and TCP share one
	PORT=()
	free_port; PORT[udp]=$FP; PORT[tcp]=$FP
	free_port; PORT[dot]=$FP
	free_port; PORT[doh]=$FP
}

start_dnsdist() { # start_dnsdist NAME CACHE(0|1)
	local name=$1 cache=$2 conf=$RUN/$1.conf
	fresh_ports
	{
		echo 'setSecurityPollSuffix("")'
		echo "newServer({address=\"127.0.0.1:$BIND_UDP\", name=\"bind\", healthCheckMode=\"up\"})"
		echo "setLocal(\"127.0.0.1:${PORT[udp]}\")"
		echo "addTLSLocal(\"127.0.0.1:${PORT[dot]}\", \"$CERT\", \"$KEY\", {provider=\"openssl\"})"
		echo "addDOHLocal(\"127.0.0.1:${PORT[doh]}\", \"$CERT\", \"$KEY\", \"/dns-query\")"
		if [[ $cache == 1 ]]; then
			echo 'pc = newPacketCache(100000, {maxTTL=86400, minTTL=0})'
			echo 'getPool(""):setCache(pc)'
		fi
	} >"$conf"
	dnsdist --check-config -C "$conf" >"$RUN/$name.check" 2>&1 || { cat "$RUN/$name.check"; die "dnsdist config rejected"; }
	dnsdist --supervised --disable-syslog -C "$conf" >"$RUN/$name.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_udp "${PORT[udp]}" && wait_tcp "${PORT[dot]}" && wait_tcp "${PORT[doh]}" ||
		{ tail -20 "$RUN/$name.log"; die "$name does not start"; }
	say "$name pid $PROXY_PID: udp/tcp ${PORT[udp]}, dot ${PORT[dot]}, doh ${PORT[doh]}"
}

# apexd_conf FILE THREADS ANSWER_CACHE(0|1) [ZONES(1|0)]: writes an
# apexd.ini on fresh ports. ZONES=0 leaves out the [zone] sections, so
# nothing is flattened (apexd-ac-nozone: the answer cache on names that
# are not in a flattened zone).
apexd_conf() {
	local file=$1 threads=$2 ac=$3 zones=${4:-1}
	fresh_ports
	cat >"$file" <<EOF
[server]
threads = $threads
log-level = info

[listen]
udp = 127.0.0.1:${PORT[udp]}
tcp = 127.0.0.1:${PORT[tcp]}
dot = 127.0.0.1:${PORT[dot]}
doh = 127.0.0.1:${PORT[doh]}
max-connections = 10000

[tls]
certificate = $CERT
private-key = $KEY

[backend]
address = 127.0.0.1:$BIND_UDP
timeout = 2s

[flatten]
cache-size = 64M
EOF
	if [[ $zones == 1 ]]; then
		printf '\n[zone bench.test]\n[zone cdn.test]\n' >>"$file"
	fi
	if [[ $ac == 1 ]]; then
		printf '\n[cache]\nanswers = yes\n' >>"$file"
	fi
}

start_apexd() { # start_apexd NAME THREADS AC [taskset CPUS]
	local name=$1 conf=$RUN/$1.ini pin=()
	[[ -n ${4:-} ]] && pin=(taskset -c "$4")
	apexd_conf "$conf" "$2" "$3" "$([[ $name == *nozone ]] && echo 0 || echo 1)"
	"${pin[@]}" "$APEXD" -c "$conf" >"$RUN/$name.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_udp "${PORT[udp]}" && wait_tcp "${PORT[dot]}" && wait_tcp "${PORT[doh]}" ||
		{ tail -20 "$RUN/$name.log"; die "$name does not start"; }
	say "$name pid $PROXY_PID (threads $2${4:+, taskset $4}): udp/tcp ${PORT[udp]}, dot ${PORT[dot]}, doh ${PORT[doh]}"
}

stop_proxy() { # stop_proxy NAME [LABEL]: sets STOP_SERVFAIL (apexd: its counter)
	local name=$1 label=${2:-$1} stats bad
	stop_pid "$PROXY_PID"
	STOP_SERVFAIL=
	if [[ $name == apexd* ]]; then
		stats=$(grep -h 'stats:' "$RUN/$name.log" | tail -1 || true)
		[[ -n $stats ]] && say "$label ${stats#*info main: }"
		STOP_SERVFAIL=$(tr ' ' '\n' <<<"$stats" | sed -n 's/^servfail_sent=//p')
		# Counters that should stay 0 in a benchmark.
		bad=$(tr ' ' '\n' <<<"$stats" | grep -E '^(servfail_sent|backend_timeouts|backend_errors|backend_unmatched|txn_full|id_busy|udp_send_errors|doh_http_errors|tcp_refused|malformed_dropped|formerr_sent|answers_flatten_failed|answers_flatten_deadline)=' | grep -v '=0$' | tr '\n' ' ' || true)
		[[ -n $bad ]] && note "$label: apexd counters $bad"
		if grep -qE ' (error|warning) |assert|Sanitizer|Abort' "$RUN/$name.log"; then
			note "$label logged: $(grep -E ' (error|warning) |assert|Sanitizer|Abort' "$RUN/$name.log" | head -3 | tr '\n' ' ')"
		fi
		[[ $label == "$name" ]] || mv "$RUN/$name.log" "$RUN/$label.log"
	fi
	return 0
}

# Every target is started first and stays up (idle) while the others are
# measured; the runs then go transport by transport, all targets one after
# the other, so that a target's figures and its baseline are minutes apart
# at most, whatever else the shared machine does meanwhile.
declare -A TPORT TPID
save_target() { # save_target NAME: remember PORT and PROXY_PID under NAME
	local t
	TPID[$1]=$PROXY_PID
	for t in udp tcp dot doh; do TPORT[$1:$t]=${PORT[$t]:-}; done
}
select_target() {
	local t
	TARGET=$1
	PROXY_PID=${TPID[$1]}
	PORT=()
	for t in udp tcp dot doh; do PORT[$t]=${TPORT[$1:$t]}; done
}

# apexd counts its SERVFAILs but h2load cannot see DNS rcodes inside HTTP
# 200 bodies, so every apexd measurement gets a fresh apexd (warmed up the
# same way) and its exit counters: the SERVFAILs of that run alone.
STARTED=()
for TARGET in $TARGETS; do
	case $TARGET in
	bind)
		PORT=([udp]=$BIND_UDP [tcp]=$BIND_UDP)
		[[ $BIND_HAS_DOT == 1 ]] && PORT[dot]=$BIND_DOT
		[[ $BIND_HAS_DOH == 1 ]] && PORT[doh]=$BIND_DOH
		PROXY_PID=$BIND_PID
		;;
	dnsdist | dnsdist-pc)
		start_dnsdist "$TARGET" "$([[ $TARGET == dnsdist-pc ]] && echo 1 || echo 0)"
		;;
	apexd) ;;
	apexd-ac | apexd-ac-nozone)
		apexd_conf "$RUN/$TARGET-check.ini" 2 1
		if ! "$APEXD" --check-config -c "$RUN/$TARGET-check.ini" >"$RUN/$TARGET-check.txt" 2>&1; then
			say "answer cache: not available in this build ($(head -1 "$RUN/$TARGET-check.txt"))"
			NOTES+=("answer cache: not available in this build")
			continue
		fi
		;;
	*) die "unknown target $TARGET (bind dnsdist dnsdist-pc apexd apexd-ac apexd-ac-nozone)" ;;
	esac
	STARTED+=("$TARGET")
	if [[ $TARGET != apexd* ]]; then
		save_target "$TARGET"
		warm_up
	fi
done

for t in $TRANSPORTS; do
	for g in "${STARTED[@]}"; do
		kinds=(sat lat)
		[[ $g == apexd && " $EXTRAS " == *" flat "* ]] && kinds+=(flat)
		for kind in "${kinds[@]}"; do
			if [[ $g == apexd* ]]; then
				TARGET=$g
				start_apexd "$g" "$APEXD_THREADS" "$([[ $g == apexd-ac* ]] && echo 1 || echo 0)"
				warm_up
			else
				select_target "$g"
			fi
			if [[ -z ${PORT[$t]:-} ]]; then
				record "kind=na transport=$t target=$TARGET"
				note "$TARGET over $t: n/a (not served)"
				break
			fi
			[[ $kind == sat ]] && smoke "$t"
			case $kind in
			sat) measure sat "$t" plain ;;
			lat) latency "$t" ;;
			flat) measure flat "$t" flat ;;
			esac
			if [[ $g == apexd* ]]; then
				stop_proxy "$g" "$g-$t-$kind"
				record "kind=servfail transport=$t target=$g run=$kind servfail=${STOP_SERVFAIL:-0}"
			fi
		done
	done
done
for g in "${STARTED[@]}"; do
	[[ $g == bind || $g == apexd* ]] && continue
	select_target "$g"
	stop_proxy "$g"
done

# ------------------------------------------------------------ 1 vs 2 threads --
if [[ " $EXTRAS " == *" threads "* && $NCPU -ge 2 ]]; then
	# apexd alone on CPU 1 with one worker, then on CPUs 0-1 with two; BIND
	# and dnsperf stay on CPU 0 in both runs. On a 2-core machine the
	# second run shares CPU 0 with them: the load generator cannot run
	# "elsewhere" here.
	taskset -a -p -c 0 "$BIND_PID" >/dev/null
	LOAD_PIN=0
	TARGET=apexd-t1
	start_apexd apexd-t1 1 0 1
	warm_up
	measure thr udp plain
	q1=$LAST_QPS c1=$LAST_CPU_US
	stop_proxy apexd-t1
	TARGET=apexd-t2
	start_apexd apexd-t2 2 0 0-1
	warm_up
	measure thr udp plain
	q2=$LAST_QPS c2=$LAST_CPU_US
	stop_proxy apexd-t2
	LOAD_PIN=
	taskset -a -p -c "0-$((NCPU - 1))" "$BIND_PID" >/dev/null
	record "kind=threads qps1=$q1 qps2=$q2 cpu1=$c1 cpu2=$c2 pinning=apexd_threads=1_on_CPU_1_vs_threads=2_on_CPUs_0-1;_dnsperf_and_BIND_on_CPU_0_(2-core_box:_not_a_separate_load_machine)"
fi

# ------------------------------------------------------------ cache memory --
if [[ " $EXTRAS " == *" mem "* ]]; then
	if [[ -f $ROOT/build-bench/flatten/libapex_flatten.a ]]; then
		cc -O2 -I"$ROOT" "$BENCH/cache_mem.c" "$ROOT/build-bench/flatten/libapex_flatten.a" \
			"$ROOT/build-bench/codec/libapex_codec.a" -lpthread -o "$RUN/cache_mem"
		"$RUN/cache_mem" 1000000 | tee "$RUN/cache_mem.txt" | sed 's/^/[cache_mem] /' >&2
		per=$(sed -n 's/^rss_bytes_per_entry=\([0-9.]*\).*/\1/p' "$RUN/cache_mem.txt")
		record "kind=mem entries=1000000 bytes_per_entry=$per"
	else
		note "cache_mem: build-bench/flatten/libapex_flatten.a missing (APEXD given?), skipped"
	fi
fi

stop_pid "$BIND_PID"

# ----------------------------------------------------------------- report --
{
	echo
	echo "## Results ($(date -u '+%Y-%m-%d %H:%M UTC'), $NCPU CPUs, git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
	echo
	echo "Command: DURATION=$DURATION LAT_DURATION=$LAT_DURATION TRANSPORTS=\"$TRANSPORTS\" TARGETS=\"$TARGETS\" EXTRAS=\"$EXTRAS\" CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING APEXD_THREADS=$APEXD_THREADS bench/run.sh"
	echo
	"${LIB[@]}" report "$RESULTS"
	if [[ ${#NOTES[@]} -gt 0 ]]; then
		echo
		echo "Notes:"
		printf '  - %s\n' "${NOTES[@]}"
	fi
	if awk '/kind=(sat|flat|thr)/ {for (i = 1; i <= NF; i++) if ($i ~ /^other_pct=/) {split($i, a, "="); if (a[2] + 0 > '"$NOISE_PCT"') f = 1}} END {exit !f}' "$RESULTS"; then
		echo
		echo "WARNING: other processes used more than $NOISE_PCT% of a core during some runs (column 'other CPU', ⚠)."
		echo "The machine is shared: trust ratios within this run, not raw numbers across runs."
	fi
} | tee "$RUN/report.md"
