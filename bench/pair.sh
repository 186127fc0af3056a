#!/usr/bin/env bash
# bench/pair.sh - apexd and dnsdist side by side at the same moment, at a
# fixed light rate: the CPU per answer of each, and their ratio.
#
#     bench/pair.sh [ROUNDS [SECONDS]]          # default 5 rounds of 5 s
#     AC=1 bench/pair.sh                        # apexd's answer cache vs dnsdist's packet cache
#     QPS=5000 SET=flat PROTO=tcp bench/pair.sh
#
# Why: at a light rate the CPU an answer costs is mostly sleeping and
# waking (on this VM a context switch and a wake-up of the peer cost tens
# of µs), and how much that costs changes from minute to minute with
# what else the machine does: the same apexd measured 40.8 to 53.8 µs per
# answer, and dnsdist 39.8 to 59.5, in six runs alternated within three
# minutes (`QPS=5000 bench/profile.sh plain cpu 5` and `PROXY=dnsdist`).
# Runs one after the other compare minutes, not programs. Here both
# proxies sit in front of the same BIND, each driven by its own dnsperf at
# QPS (default 5 000) at the same time, for SECONDS, ROUNDS times; each
# round gives a ratio of the two CPU per answer measured over the same
# interval, and the median of the rounds is the figure.
#
# apexd runs with THREADS workers (default 2, as bench/run.sh), dnsdist
# as bench/run.sh starts it (one UDP listener thread), with its packet
# cache when AC=1. PROTO=tcp drives both over TCP. Every process is
# started here and stopped by PID; every load run is bounded (dnsperf -l).
set -euo pipefail
BENCH_TAG=pair
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/pair
DATA=${DATA:-$ROOT/.run/bench/data}
ROUNDS=${1:-5}
DUR=${2:-5}
QPS=${QPS:-5000}
SET=${SET:-plain}
PROTO=${PROTO:-udp}
THREADS=${THREADS:-2}
AC=${AC:-0}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}

[[ -f $DATA/q-$SET.txt ]] || die "no $DATA/q-$SET.txt: run bench/run.sh once"
[[ -x $APEXD ]] || die "no $APEXD: run bench/run.sh once, or set APEXD"
command -v dnsdist >/dev/null || die "no dnsdist: run bench/run.sh once (it installs it)"
rm -rf "$RUN"
mkdir -p "$RUN"

free_port; BIND_PORT=$FP
start_bind "$BIND_PORT"

free_port; APORT=$FP
write_apexd_ini "$RUN/apexd.ini" "$THREADS" 1 "$AC" "udp = 127.0.0.1:$APORT" "tcp = 127.0.0.1:$APORT"
spawn "$RUN/apexd.log" "$APEXD" -c "$RUN/apexd.ini"
APID=$LAST_PID
wait_udp "$APORT" || { tail "$RUN/apexd.log" >&2; die "apexd does not answer"; }

free_port; DPORT=$FP
write_dnsdist_conf "$RUN/dnsdist.conf" "$DPORT" "$AC"
spawn "$RUN/dnsdist.log" dnsdist --supervised --disable-syslog -C "$RUN/dnsdist.conf"
DPID=$LAST_PID
wait_udp "$DPORT" || { tail "$RUN/dnsdist.log" >&2; die "dnsdist does not answer"; }

"$PY" "$BENCH/pair.py" "$RUN" --data "$DATA" --set "$SET" --proto "$PROTO" --qps "$QPS" \
	--seconds "$DUR" --rounds "$ROUNDS" --a "apexd:$APORT:$APID" --b "dnsdist:$DPORT:$DPID" \
	--note "threads=$THREADS ac=$AC"
