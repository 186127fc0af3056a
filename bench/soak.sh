#!/usr/bin/env bash
# bench/soak.sh - a bounded soak of apexd: no query lost, memory flat.
#
#     bench/soak.sh                     # about 75 s: 5 s saturation + 60 s soak
#     SOAK_SECONDS=600 bench/soak.sh   # the 10-minute soak (issue 16)
#
# Starts BIND (the bench zones of bench/gen.py: 3 000 hosts, 400 ANAME
# owners whose targets live in cdn.test, also served by this BIND) and
# apexd in front of it with [zone bench.test] and [zone cdn.test], so the
# ANAME owners are flattened (chased at BIND, then answered from the
# target cache), like bench/run.sh does. Then:
#   1. a warm-up pass over every query name;
#   2. a short saturation run (dnsperf as fast as it goes, SAT_SECONDS);
#   3. the soak: LOAD_PCT % of that rate for SOAK_SECONDS, while apexd's
#      VmRSS is sampled every second from the soak's start; RSS "start" is
#      the sample 10 s in (the working set at this load), "end" the last.
# The load is a mix, from six dnsperf instances side by side (dnsperf's -D
# and -E apply to all queries of one instance), each with its share of the
# rate (bench/soak.py STREAMS): 45 % plain and flattened names (3 : 1),
# 10 % random subdomains (4 000 distinct NXDOMAIN names under bench.test),
# 15 % the plain/flattened mix with DO=1, and 3 x 10 % half plain, half
# flattened with an EDNS Client Subnet option (192.0.2.0/24,
# 203.0.113.0/24, 2001:db8:1::/56). apexd runs with [resolver] ecs = yes
# (the resolver is this BIND), so flattened answers to ECS clients take
# the scoped-cache path and echo the option; the ANAME targets live in
# cdn.test, one of apexd's own zones, so they are chased at BIND without a
# subnet (docs/configuration.md, [resolver] ecs) and cached at scope /0.
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
#
# bench/lib.sh (shared with run.sh and profile.sh) starts and stops the
# processes; bench/soak.py drives dnsperf, samples RSS and judges.
set -euo pipefail
BENCH_TAG=soak
DIE_STATUS=2 # 1 is a FAIL verdict
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/soak
DATA=$RUN/data

SOAK_SECONDS=${SOAK_SECONDS:-60}
SAT_SECONDS=${SAT_SECONDS:-5}
LOAD_PCT=${LOAD_PCT:-80}
RSS_TOLERANCE_PCT=${RSS_TOLERANCE_PCT:-5}
CLIENTS=${CLIENTS:-16}
APEXD_THREADS=${APEXD_THREADS:-2}

for tool in named dnsperf dig cmake; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run tests/bootstrap.sh"
done
"$PY" -c 'import dns.message' 2>/dev/null || die "$PY cannot import dns (python3-dnspython)"

build_apexd apexd

rm -rf "$RUN"
mkdir -p "$RUN"

say "generating zones and query files (bench/gen.py)"
"$PY" "$BENCH/gen.py" "$DATA" >/dev/null

free_port; BIND_PORT=$FP
# A soak at 80 % of saturation still has bursts; with the default buffer
# (about 200 KiB) BIND's socket overflows in them and the losses say
# nothing about apexd (bench/soak.py reports the drops per socket). The
# kernel caps this at net.core.rmem_max.
start_bind "$BIND_PORT" "	udp-receive-buffer 4194304;"

free_port; APEX_PORT=$FP
write_apexd_ini "$RUN/apexd.ini" "$APEXD_THREADS" 1 0 \
	"udp = 127.0.0.1:$APEX_PORT" "tcp = 127.0.0.1:$APEX_PORT"
printf '\n[resolver]\naddresses = 127.0.0.1:%s\necs = yes\n' "$BIND_PORT" >>"$RUN/apexd.ini"
spawn "$RUN/apexd.log" "$APEXD" -c "$RUN/apexd.ini"
APEX_PID=$LAST_PID
wait_udp "$APEX_PORT" || { tail -20 "$RUN/apexd.log" >&2; die "apexd does not answer"; }
say "BIND pid $BIND_PID port $BIND_PORT; apexd pid $APEX_PID port $APEX_PORT ($("$APEXD" --version 2>&1 | head -1))"

"$PY" "$BENCH/soak.py" run "$RUN" --port "$APEX_PORT" --bind-port "$BIND_PORT" --pid "$APEX_PID" \
	--clients "$CLIENTS" --sat-seconds "$SAT_SECONDS" --soak-seconds "$SOAK_SECONDS" \
	--load-pct "$LOAD_PCT"
# apexd logs its counters as it exits.
stop_pid "$APEX_PID"
"$PY" "$BENCH/soak.py" report "$RUN" --log "$RUN/apexd.log" --threads "$APEXD_THREADS" \
	--tolerance "$RSS_TOLERANCE_PCT"
