#!/usr/bin/env bash
# bench/soak.sh - a bounded soak of apexd: no query lost, memory flat.
#
#     bench/soak.sh                     # about 75 s: 5 s saturation + 60 s soak
#     SOAK_SECONDS=300 bench/soak.sh
#
# Starts BIND (the bench zones of bench/gen.py: 3 000 hosts, 400 ANAME
# owners whose targets live in cdn.test, also served by this BIND) and
# apexd in front of it with [zone bench.test] and [zone cdn.test], so the
# ANAME owners are flattened (chased at BIND, then answered from the
# target cache), like bench/run.sh does. Then:
#   1. a warm-up pass over every query name;
#   2. a short saturation run (dnsperf as fast as it goes, SAT_SECONDS);
#   3. the soak: dnsperf at LOAD_PCT % of that rate (-Q) for SOAK_SECONDS,
#      over a mix of plain and flattened names (3 plain : 1 flattened),
#      while apexd's VmRSS is sampled every second.
# It prints the lost queries, the response codes, RSS at the start of the
# soak, at its end and the maximum, and a verdict: PASS when no query was
# lost, no SERVFAIL was seen, apexd is still running, and RSS at the end
# is within RSS_TOLERANCE_PCT % of the start. Exit status 0 on PASS.
#
# Environment:
#   SOAK_SECONDS       length of the soak (default 60)
#   SAT_SECONDS        length of the saturation run (default 5)
#   LOAD_PCT           soak rate as a percentage of saturation (default 80)
#   RSS_TOLERANCE_PCT  allowed RSS growth over the soak (default 5)
#   CLIENTS            dnsperf -c (default 16)
#   APEXD_THREADS      apexd's [server] threads (default 2)
#   APEXD              an apexd binary to use instead of building one
#   NO_BUILD=1         do not run cmake (use build-bench/ as it is)
#
# Everything runs on loopback, on free ports in 20000-29999; every
# process is started here, recorded by PID and stopped by PID on exit.
# Outputs stay in .run/soak/ (gitignored) until the next run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
RUN=$ROOT/.run/soak
PY=/usr/bin/python3

SOAK_SECONDS=${SOAK_SECONDS:-60}
SAT_SECONDS=${SAT_SECONDS:-5}
LOAD_PCT=${LOAD_PCT:-80}
RSS_TOLERANCE_PCT=${RSS_TOLERANCE_PCT:-5}
CLIENTS=${CLIENTS:-16}
APEXD_THREADS=${APEXD_THREADS:-2}

PIDS=()
say() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }

proc_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ $state != Z && $state != X ]]
}
stop_pid() {
	local pid=$1 i
	proc_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		proc_alive "$pid" || break
		sleep 0.1
	done
	proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
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

for tool in named dnsperf dig cmake; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run tests/bootstrap.sh"
done
"$PY" -c 'import dns.message' 2>/dev/null || die "$PY cannot import dns (python3-dnspython)"

if [[ -z ${APEXD:-} ]]; then
	if [[ ${NO_BUILD:-0} != 1 ]]; then
		say "building apexd (Release) into build-bench/"
		cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
		cmake --build "$ROOT/build-bench" -j2 --target apexd >/dev/null
	fi
	APEXD=$ROOT/build-bench/proxy/apexd
fi
[[ -x $APEXD ]] || die "no apexd binary at $APEXD"

rm -rf "$RUN"
mkdir -p "$RUN"

USED_PORTS=()
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
wait_udp() {
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -n $(dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short h0000.bench.test A 2>/dev/null) ]] && return 0
		sleep 0.2
	done
	return 1
}
# udp_drops: datagrams the kernel dropped (receive buffer full) at BIND's
# socket, at apexd's listener and at apexd's other sockets (the backend
# side), from /proc/net/udp's per-socket drop counters. Says where a lost
# query was lost when one is.
udp_drops() {
	"$PY" - "$BIND_PORT" "$APEX_PORT" "$APEX_PID" <<'PY'
import os, sys
bind_port, apex_port, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
bind = listen = backend = 0
with open("/proc/net/udp") as f:
    next(f)
    for line in f:
        x = line.split()
        port = int(x[1].split(":")[1], 16)
        drops = int(x[12])
        if port == bind_port:
            bind += drops
        elif port == apex_port and x[9] in inodes:
            listen += drops
        elif x[9] in inodes:
            backend += drops
print(f"BIND {bind}, apexd listeners {listen}, apexd backend side {backend}")
PY
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
field() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2"; }

say "generating zones and query files (bench/gen.py)"
"$PY" "$BENCH/gen.py" "$RUN/data" >/dev/null
# 3 plain : 1 flattened, interleaved so every second of the soak has both.
"$PY" - "$RUN/data/q-plain.txt" "$RUN/data/q-flat.txt" >"$RUN/q-mixed.txt" <<'PY'
import sys
plain = open(sys.argv[1]).read().split("\n")
flat = open(sys.argv[2]).read().split("\n")
plain = [l for l in plain if l.strip()]
flat = [l for l in flat if l.strip()]
fi = 0
for i, line in enumerate(plain):
    print(line)
    if i % 3 == 2:
        print(flat[fi % len(flat)])
        fi += 1
PY

free_port; BIND_PORT=$FP
mkdir -p "$RUN/named"
cat >"$RUN/named/named.conf" <<EOF
options {
	directory "$RUN/named";
	pid-file "named.pid";
	lock-file "named.lock";
	session-keyfile "session.key";
	managed-keys-directory ".";
	listen-on port $BIND_PORT { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	minimal-responses yes;
	// A soak at 80 % of saturation still has bursts; with the default
	// buffer (about 200 KiB) BIND's socket overflows in them and the
	// losses say nothing about apexd (see udp_drops). The kernel caps
	// this at net.core.rmem_max.
	udp-receive-buffer 4194304;
};
controls { };
zone "bench.test" { type primary; file "$RUN/data/bench.test.zone"; };
zone "cdn.test" { type primary; file "$RUN/data/cdn.test.zone"; };
EOF
named -g -c "$RUN/named/named.conf" >"$RUN/named.log" 2>&1 &
BIND_PID=$!
PIDS+=("$BIND_PID")
wait_udp "$BIND_PORT" || { tail -20 "$RUN/named.log"; die "BIND does not answer"; }

free_port; APEX_PORT=$FP
cat >"$RUN/apexd.ini" <<EOF
[server]
threads = $APEXD_THREADS
log-level = info

[listen]
udp = 127.0.0.1:$APEX_PORT
tcp = 127.0.0.1:$APEX_PORT

[backend]
address = 127.0.0.1:$BIND_PORT
timeout = 2s

[flatten]
cache-size = 64M

[zone bench.test]
[zone cdn.test]
EOF
"$APEXD" -c "$RUN/apexd.ini" >"$RUN/apexd.log" 2>&1 &
APEX_PID=$!
PIDS+=("$APEX_PID")
wait_udp "$APEX_PORT" || { tail -20 "$RUN/apexd.log"; die "apexd does not answer"; }
say "BIND pid $BIND_PID port $BIND_PORT; apexd pid $APEX_PID port $APEX_PORT ($("$APEXD" --version 2>&1 | head -1))"

PERF=(dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$RUN/q-mixed.txt" -e -t 2 -c "$CLIENTS")

say "warm-up: every name once"
"${PERF[@]}" -n 1 -q 64 >"$RUN/warmup.txt" 2>&1 || true

say "saturation: ${SAT_SECONDS} s"
"${PERF[@]}" -l "$SAT_SECONDS" -q 128 >"$RUN/saturation.txt" 2>&1 || true
SAT_QPS=$(field 'Queries per second' "$RUN/saturation.txt")
[[ -n $SAT_QPS ]] || { cat "$RUN/saturation.txt"; die "no saturation figure"; }
RATE=$(awk -v q="$SAT_QPS" -v p="$LOAD_PCT" 'BEGIN { printf "%d", q * p / 100 }')
say "saturation ${SAT_QPS%.*} qps; soaking at $RATE qps (${LOAD_PCT} %) for ${SOAK_SECONDS} s"

RSS_LOG=$RUN/rss.txt
: >"$RSS_LOG"
"${PERF[@]}" -l "$SOAK_SECONDS" -Q "$RATE" -q 512 >"$RUN/soak.txt" 2>&1 &
PERF_PID=$!
PIDS+=("$PERF_PID")
t=0
while proc_alive "$PERF_PID"; do
	proc_alive "$APEX_PID" || break
	echo "$t $(rss_kb "$APEX_PID")" >>"$RSS_LOG"
	sleep 1
	t=$((t + 1))
done
wait "$PERF_PID" 2>/dev/null || true

ALIVE=yes
proc_alive "$APEX_PID" || ALIVE=no
DROPS=$(udp_drops)
SENT=$(field 'Queries sent' "$RUN/soak.txt")
COMPLETED=$(field 'Queries completed' "$RUN/soak.txt")
LOST=$(field 'Queries lost' "$RUN/soak.txt")
QPS=$(field 'Queries per second' "$RUN/soak.txt")
CODES=$(sed -n 's/^ *Response codes: *//p' "$RUN/soak.txt")
# RSS: the first sample is taken as the soak starts (after the warm-up and
# the saturation run, which already grew every buffer to its working size).
read -r RSS_START RSS_END RSS_MAX RSS_MIN < <(awk 'NR == 1 { s = $2; mn = $2 } { e = $2; if ($2 > mx) mx = $2; if ($2 < mn) mn = $2 } END { print s, e, mx, mn }' "$RSS_LOG")
GROWTH=$(awk -v a="$RSS_START" -v b="$RSS_END" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')

stop_pid "$APEX_PID"
STATS=$(grep -h 'stats:' "$RUN/apexd.log" | tail -1 | sed 's/.*stats: //')
stat() { tr ' ' '\n' <<<"$STATS" | sed -n "s/^$1=//p"; }

verdict=PASS
reasons=()
[[ $ALIVE == yes ]] || { verdict=FAIL; reasons+=("apexd died"); }
[[ ${LOST:-x} == 0 ]] || { verdict=FAIL; reasons+=("${LOST:-?} queries lost"); }
[[ ${SENT:-0} -gt 0 && ${COMPLETED:-0} == "${SENT:-x}" ]] || { verdict=FAIL; reasons+=("completed $COMPLETED of $SENT"); }
[[ $CODES != *SERVFAIL* ]] || { verdict=FAIL; reasons+=("SERVFAIL answers"); }
awk -v g="$GROWTH" -v t="$RSS_TOLERANCE_PCT" 'BEGIN { exit !(g <= t) }' ||
	{ verdict=FAIL; reasons+=("RSS grew $GROWTH % (> $RSS_TOLERANCE_PCT %)"); }

{
	echo "soak: ${SOAK_SECONDS} s at $RATE qps (${LOAD_PCT} % of ${SAT_QPS%.*} qps saturation), mixed plain + flattened names, apexd threads $APEXD_THREADS"
	echo "  queries: sent $SENT, completed $COMPLETED, lost $LOST; achieved ${QPS%.*} qps"
	echo "  response codes: $CODES"
	echo "  UDP receive-buffer drops: $DROPS"
	echo "  apexd: answers_relayed=$(stat answers_relayed) answers_flattened=$(stat answers_flattened) servfail_sent=$(stat servfail_sent) cache_hits=$(stat cache_hits) chases=$(stat chases)"
	echo "  VmRSS (KiB): start $RSS_START, end $RSS_END, max $RSS_MAX, min $RSS_MIN; growth ${GROWTH} % (limit ${RSS_TOLERANCE_PCT} %)"
	echo "  samples: $(wc -l <"$RSS_LOG") in $RSS_LOG"
	if [[ $verdict == PASS ]]; then
		echo "verdict: PASS"
	else
		echo "verdict: FAIL ($(IFS=';'; echo "${reasons[*]}"))"
	fi
} | tee "$RUN/report.txt"
[[ $verdict == PASS ]]
