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
#   TARGETS      any of: floor bind dnsdist dnsdist-pc apexd apexd-bare
#                apexd-ac apexd-ac-nozone (default all but apexd-ac-nozone):
#                the machine's UDP floor (bench/floor.c: recvmmsg, set QR,
#                sendmmsg; UDP only); BIND direct; dnsdist with its packet
#                cache off, on; apexd (zones configured: the deployed case);
#                apexd without [zone] sections (the bare relay, what dnsdist
#                does); apexd with [cache] answers = yes; the same without
#                [zone] sections (nothing flattened)
#   EXTRAS       any of: flat threads mem (unset: all three; empty: none): flattened
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
#
# bench/lib.sh (shared with soak.sh and profile.sh) starts and stops
# processes; bench/measure.py runs the loads and measures, bench/report.py
# prints the table.
set -euo pipefail
BENCH_TAG=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/bench
DATA=$RUN/data
MEASURE=("$PY" "$BENCH/measure.py")

DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-5}
LAT_QPS=${LAT_QPS:-5000}
TRANSPORTS=${TRANSPORTS:-udp tcp dot doh}
TARGETS=${TARGETS:-floor bind dnsdist dnsdist-pc apexd apexd-bare apexd-ac}
EXTRAS=${EXTRAS-flat threads mem}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-128}
APEXD_THREADS=${APEXD_THREADS:-2}
NOISE_PCT=10
# What bench/measure.py reads.
export RUN DURATION LAT_DURATION LAT_QPS CLIENTS OUTSTANDING NOISE_PCT

note() {
	echo "$*" >>"$RUN/notes.txt"
	say "NOTE: $*"
}

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
build_apexd apexd apex_flatten apex_codec

rm -rf "$RUN"
mkdir -p "$RUN"
RESULTS=$RUN/results.txt
: >"$RESULTS"
: >"$RUN/notes.txt"
record() { echo "$*" >>"$RESULTS"; }

# ------------------------------------------------------------ the machine --
NCPU=$(nproc)
say "apexd $("$APEXD" --version 2>&1 | head -1), git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
say "$(named -v); $(dnsdist --version 2>&1 | head -1); $(dnsperf -h 2>&1 | grep -m1 Version || true); $(h2load --version)"
say "$NCPU CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------- data --
say "generating zones and query files"
"$PY" "$BENCH/gen.py" "$DATA"
sh "$ROOT/tests/data/tls/make-certs.sh" "$RUN/tls"
CERT=$RUN/tls/fullchain.pem
KEY=$RUN/tls/server.key

# ------------------------------------------------------------------- BIND --
free_port; BIND_PORT=$FP
free_port; BIND_DOT=$FP
free_port; BIND_DOH=$FP
# BIND serves DoT and DoH itself: the "BIND direct" baseline.
start_bind "$BIND_PORT" "\
	listen-on port $BIND_DOT tls benchtls { 127.0.0.1; };
	listen-on port $BIND_DOH tls benchtls http benchhttp { 127.0.0.1; };" "\
tls benchtls { cert-file \"$CERT\"; key-file \"$KEY\"; };
http benchhttp { endpoints { \"/dns-query\"; }; };"
BIND_HAS_DOT=1
BIND_HAS_DOH=1
wait_tcp "$BIND_DOT" || BIND_HAS_DOT=0
wait_tcp "$BIND_DOH" || BIND_HAS_DOH=0
say "BIND pid $BIND_PID: udp/tcp $BIND_PORT, dot $BIND_DOT ($BIND_HAS_DOT), doh $BIND_DOH ($BIND_HAS_DOH)"

# ---------------------------------------------------------------- measure --
# Current target: the process measured (PROXY_PID; BIND itself for the
# "bind" target), and its ports.
TARGET=
PROXY_PID=
declare -A PORT

# measure KIND TRANSPORT SET: a saturation run of the current target with
# CPU accounting (bench/measure.py); appends one record. Sets LAST_QPS and
# LAST_CPU_US.
measure() {
	local out
	out=$("${MEASURE[@]}" sat "$1" "$2" "$3" --target "$TARGET" --port "${PORT[$2]}" \
		--proxy-pid "$PROXY_PID" --bind-pid "$BIND_PID" ${LOAD_PIN:+--pin "$LOAD_PIN"})
	read -r LAST_QPS LAST_CPU_US <<<"$out"
}

# latency TRANSPORT: the fixed-rate run, p50 and p99; appends one record.
latency() { "${MEASURE[@]}" lat "$1" --target "$TARGET" --port "${PORT[$1]}" --proxy-pid "$PROXY_PID"; }

# warm_up: one pass over every name, UDP, so that caches (dnsdist's packet
# cache, apexd's presence/target/answer caches) start warm.
warm_up() { "${MEASURE[@]}" warm --target "$TARGET" --port "${PORT[udp]}"; }

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
		echo "newServer({address=\"127.0.0.1:$BIND_PORT\", name=\"bind\", healthCheckMode=\"up\"})"
		echo "setLocal(\"127.0.0.1:${PORT[udp]}\")"
		echo "addTLSLocal(\"127.0.0.1:${PORT[dot]}\", \"$CERT\", \"$KEY\", {provider=\"openssl\"})"
		echo "addDOHLocal(\"127.0.0.1:${PORT[doh]}\", \"$CERT\", \"$KEY\", \"/dns-query\")"
		if [[ $cache == 1 ]]; then
			echo 'pc = newPacketCache(100000, {maxTTL=86400, minTTL=0})'
			echo 'getPool(""):setCache(pc)'
		fi
	} >"$conf"
	dnsdist --check-config -C "$conf" >"$RUN/$name.check" 2>&1 || { cat "$RUN/$name.check"; die "dnsdist config rejected"; }
	spawn "$RUN/$name.log" dnsdist --supervised --disable-syslog -C "$conf"
	PROXY_PID=$LAST_PID
	wait_proxy "$name"
	say "$name pid $PROXY_PID: udp/tcp ${PORT[udp]}, dot ${PORT[dot]}, doh ${PORT[doh]}"
}

wait_proxy() { # wait_proxy NAME: until every listener of the new proxy answers
	if ! { wait_udp "${PORT[udp]}" && wait_tcp "${PORT[dot]}" && wait_tcp "${PORT[doh]}"; }; then
		tail -20 "$RUN/$1.log" >&2
		die "$1 does not start"
	fi
}

# apexd_conf FILE THREADS ANSWER_CACHE(0|1) [ZONES(1|0)]: writes an
# apexd.ini on fresh ports. ZONES=0 leaves out the [zone] sections, so
# nothing is flattened (apexd-ac-nozone: the answer cache on names that
# are not in a flattened zone).
apexd_conf() {
	fresh_ports
	write_apexd_ini "$1" "$2" "${4:-1}" "$3" \
		"udp = 127.0.0.1:${PORT[udp]}" "tcp = 127.0.0.1:${PORT[tcp]}" \
		"dot = 127.0.0.1:${PORT[dot]}" "doh = 127.0.0.1:${PORT[doh]}" \
		"max-connections = 10000"
}

start_apexd() { # start_apexd NAME THREADS AC [taskset CPUS]
	local name=$1 conf=$RUN/$1.ini pin=()
	[[ -n ${4:-} ]] && pin=(taskset -c "$4")
	apexd_conf "$conf" "$2" "$3" "$([[ $name == *nozone || $name == *bare ]] && echo 0 || echo 1)"
	spawn "$RUN/$name.log" "${pin[@]}" "$APEXD" -c "$conf"
	PROXY_PID=$LAST_PID
	wait_proxy "$name"
	say "$name pid $PROXY_PID (threads $2${4:+, taskset $4}): udp/tcp ${PORT[udp]}, dot ${PORT[dot]}, doh ${PORT[doh]}"
}

# stop_proxy NAME [LABEL [TRANSPORT KIND]]: stops the current target; for
# apexd, its exit counters and log become notes (bench/measure.py), its
# log is renamed LABEL.log and, with TRANSPORT and KIND, the SERVFAILs it
# sent in that run are recorded.
stop_proxy() {
	stop_pid "$PROXY_PID"
	if [[ $1 == apexd* ]]; then
		"${MEASURE[@]}" apexd-exit "$1" "${2:-$1}" "${@:3}"
	fi
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
		PORT=([udp]=$BIND_PORT [tcp]=$BIND_PORT)
		[[ $BIND_HAS_DOT == 1 ]] && PORT[dot]=$BIND_DOT
		[[ $BIND_HAS_DOH == 1 ]] && PORT[doh]=$BIND_DOH
		PROXY_PID=$BIND_PID
		;;
	dnsdist | dnsdist-pc)
		start_dnsdist "$TARGET" "$([[ $TARGET == dnsdist-pc ]] && echo 1 || echo 0)"
		;;
	floor)
		# The machine's floor (bench/floor.c): UDP only, no BIND behind it.
		cc -O2 -Wall -o "$RUN/floor" "$BENCH/floor.c"
		PORT=()
		free_port
		PORT[udp]=$FP
		spawn "$RUN/floor.log" "$RUN/floor" "${PORT[udp]}"
		PROXY_PID=$LAST_PID
		"$PY" "$BENCH/lib.py" wait-echo "${PORT[udp]}" 10 || die "floor does not answer"
		say "floor pid $PROXY_PID: udp ${PORT[udp]}"
		;;
	apexd | apexd-bare) ;;
	apexd-ac | apexd-ac-nozone)
		apexd_conf "$RUN/$TARGET-check.ini" 2 1
		if ! "$APEXD" --check-config -c "$RUN/$TARGET-check.ini" >"$RUN/$TARGET-check.txt" 2>&1; then
			say "answer cache: not available in this build ($(head -1 "$RUN/$TARGET-check.txt"))"
			echo "answer cache: not available in this build" >>"$RUN/notes.txt"
			continue
		fi
		;;
	*) die "unknown target $TARGET (floor bind dnsdist dnsdist-pc apexd apexd-bare apexd-ac apexd-ac-nozone)" ;;
	esac
	STARTED+=("$TARGET")
	if [[ $TARGET != apexd* ]]; then
		save_target "$TARGET"
		[[ $TARGET == floor ]] || warm_up
	fi
done

for t in $TRANSPORTS; do
	for g in "${STARTED[@]}"; do
		[[ $g == floor && $t != udp ]] && continue
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
			[[ $kind == sat && $g != floor ]] && smoke "$t"
			case $kind in
			sat) measure sat "$t" plain ;;
			lat) latency "$t" ;;
			flat) measure flat "$t" flat ;;
			esac
			if [[ $g == apexd* ]]; then
				stop_proxy "$g" "$g-$t-$kind" "$t" "$kind"
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
	"$PY" "$BENCH/report.py" "$RESULTS" "$RUN/notes.txt" "$NOISE_PCT"
} | tee "$RUN/report.md"
