#!/usr/bin/env bash
# bench/pair.sh - two proxies side by side at the same moment: the CPU per
# answer of each under the same offered rate, and their ratio.
#
#     bench/pair.sh [ROUNDS [SECONDS]]              # apexd vs dnsdist, 5 rounds of 5 s
#     A=apexd-ac B=dnsdist-pc bench/pair.sh         # the two caches
#     A=apexd-flat B=apexd bench/pair.sh            # flattened vs relayed answers
#     A=apexd-ac B=apexd PROTO=dot QPS=20000 bench/pair.sh
#
# Targets (A and B): apexd (zones configured, the deployed case; plain
# names, relayed), apexd-flat (the same apexd config, asked the flattened
# names: answered from apexd's caches), apexd-ac ([cache] answers = yes),
# apexd-1 (threads = 1), apexd-ac-1 (both), dnsdist, dnsdist-pc (its packet cache). Each
# target is a process of its own in front of the same BIND.
#
# Why: the CPU an answer costs on this VM is mostly sleeping and waking
# (a context switch and the wake-up of the peer cost tens of µs; a system
# call about 1 µs), and how much that costs changes from minute to minute
# with what else the machine does: the same apexd measured 40.8 to 53.8
# µs per answer, and dnsdist 39.8 to 59.5, in six runs alternated within
# three minutes (`QPS=5000 bench/profile.sh plain cpu 5` and
# `PROXY=dnsdist`). Runs one after the other compare minutes, not
# programs. Here each target gets its own dnsperf at QPS (default 5 000;
# 0 = as fast as each answers) at the same time for SECONDS, ROUNDS times;
# each round gives the ratio of the two CPU figures measured over the same
# interval, and the median of the rounds is the figure. At QPS=0 the two
# share the machine, so the figure compares their cost per answer under
# contention, not their solo throughput. At a fixed rate the rounds also
# give each target's p50 and p99 latency (dnsperf -v), measured in the
# same minutes: the median of the rounds and the ratio A/B.
#
# PROTO=udp|tcp|dot (dnsperf -m). THREADS for apexd (default 2, as
# bench/run.sh). Every process is started here and stopped by PID; every
# load run is bounded (dnsperf -l).
set -euo pipefail
BENCH_TAG=pair
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/pair
DATA=${DATA:-$ROOT/.run/bench/data}
ROUNDS=${1:-5}
DUR=${2:-5}
QPS=${QPS:-5000}
PROTO=${PROTO:-udp}
THREADS=${THREADS:-2}
A=${A:-apexd}
B=${B:-dnsdist}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}

[[ -f $DATA/q-plain.txt && -f $DATA/q-flat.txt ]] || die "no query files in $DATA: run bench/run.sh once"
[[ -x $APEXD ]] || die "no $APEXD: run bench/run.sh once, or set APEXD"
case $PROTO in udp | tcp | dot) ;; *) die "PROTO: udp, tcp or dot" ;; esac
rm -rf "$RUN"
mkdir -p "$RUN"
sh "$ROOT/tests/data/tls/make-certs.sh" "$RUN/tls" >/dev/null
CERT=$RUN/tls/fullchain.pem
KEY=$RUN/tls/server.key

free_port; BIND_PORT=$FP
start_bind "$BIND_PORT"

# start_target NAME: the process behind NAME on fresh ports; sets T to
# "NAME:PORT:PID:SET" for pair.py (PORT: the one PROTO uses).
start_target() {
	local name=$1 port dport threads=$THREADS ac=0 set=plain
	free_port; port=$FP
	free_port; dport=$FP
	case $name in
	dnsdist | dnsdist-pc)
		command -v dnsdist >/dev/null || die "no dnsdist: run bench/run.sh once (it installs it)"
		write_dnsdist_conf "$RUN/$name.conf" "$port" "$([[ $name == dnsdist-pc ]] && echo 1 || echo 0)"
		echo "addTLSLocal(\"127.0.0.1:$dport\", \"$CERT\", \"$KEY\", {provider=\"openssl\"})" >>"$RUN/$name.conf"
		spawn "$RUN/$name.log" dnsdist --supervised --disable-syslog -C "$RUN/$name.conf"
		;;
	apexd | apexd-flat | apexd-ac | apexd-1 | apexd-ac-1)
		[[ $name == apexd-ac || $name == apexd-ac-1 ]] && ac=1
		[[ $name == apexd-1 || $name == apexd-ac-1 ]] && threads=1
		[[ $name == apexd-flat ]] && set=flat
		write_apexd_ini "$RUN/$name.ini" "$threads" 1 "$ac" "udp = 127.0.0.1:$port" \
			"tcp = 127.0.0.1:$port" "dot = 127.0.0.1:$dport"
		spawn "$RUN/$name.log" "$APEXD" -c "$RUN/$name.ini"
		;;
	*) die "unknown target $name (apexd apexd-flat apexd-ac apexd-1 apexd-ac-1 dnsdist dnsdist-pc)" ;;
	esac
	if ! { wait_udp "$port" && wait_tcp "$dport"; }; then
		tail "$RUN/$name.log" >&2
		die "$name does not answer"
	fi
	[[ $PROTO == dot ]] && port=$dport
	T="$name:$port:$LAST_PID:$set"
}
[[ $A != "$B" ]] || die "A and B are the same target"
start_target "$A"
TA=$T
start_target "$B"
TB=$T

"$PY" "$BENCH/pair.py" "$RUN" --data "$DATA" --proto "$PROTO" --qps "$QPS" \
	--seconds "$DUR" --rounds "$ROUNDS" --a "$TA" --b "$TB" --note "threads=$THREADS"
