#!/usr/bin/env bash
# bench/refresh.sh - latency across TTL expiries behind a slow CDN: the
# refresh ahead as built vs the last-10%-only rule vs no refresh at all
# (issue 15).
#
#     bench/refresh.sh                  # three variants, about 2.5 min on 2 cores
#     TTL=5 DELAY=1 DURATION=30 RATE=20 VARIANTS="built last10" bench/refresh.sh
#
# The cast, all on 127.0.0.1, free ports in 20000-29999, started here and
# stopped by PID:
#   BIND      example.test: www.example.test A (relayed by apexd as it is)
#   the CDN   tests/integration/geocdn.py for geo.test, every answer
#             DELAY seconds late, TTL seconds long (flat.geo.test: one
#             A for everyone, scope 0)
#   apexd     [resolver] = the CDN, [zone example.test], [alias]
#             flat.example.test = flat.geo.test; [flatten] deadline and
#             everything else at their defaults except min-ttl = 1s
# For each variant, a fresh apexd, one cold query for the flattened name,
# then tests/integration/trickle.py asks both names RATE times a second
# each for DURATION seconds (never waiting for an answer before the next
# query, so every query that meets an expiry shows it) and keeps every
# latency. bench/refresh.py prints p50/p90/p99/max per variant and name,
# the queries slower than half the CDN's delay, and apexd's counters
# (prefetches, cache_misses, cache_coalesced, answers_stale).
#
# The variants are builds of this checkout (tracked files as they are in
# the working tree), Release, into .run/refresh/build-<variant>/:
#   built    as it is: a refresh is due when less than [flatten] deadline
#            (at most half the TTL) or 10% of the TTL is left
#   last10   proxy/flat/gen.c passes refresh_ms = 0: the last 10% alone
#            (what apexd did before issue 15)
#   none     also FLAT_CACHE_PREFETCH_PCT 100: never refreshed ahead; an
#            entry is chased again when a query finds it expired
#
# Environment: TTL (default 5), DELAY (CDN seconds, default 1), DURATION
# (seconds per variant, default 30), RATE (queries a second per name,
# default 20), VARIANTS (default "built last10 none"), NO_BUILD=1 (reuse
# .run/refresh/build-*). Outputs stay in .run/refresh/ (gitignored):
# results.txt (the table), <variant>.json (every latency), the logs.
set -euo pipefail
BENCH_TAG=refresh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/refresh
TTL=${TTL:-5}
DELAY=${DELAY:-1}
DURATION=${DURATION:-30}
RATE=${RATE:-20}
read -ra VARIANTS <<<"${VARIANTS:-built last10 none}"
INT=$ROOT/tests/integration

for tool in named dig cmake; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run tests/bootstrap.sh"
done
"$PY" -c 'import dns.message' 2>/dev/null || die "$PY cannot import dns (python3-dnspython)"

mkdir -p "$RUN"
rm -rf "$RUN"/*.json "$RUN"/*.log "$RUN"/named "$RUN"/results.txt

# build VARIANT: the checkout's tracked files, patched for VARIANT, built
# (apexd only, Release) into RUN/build-VARIANT.
build() {
	local v=$1 src=$RUN/src-$1 b=$RUN/build-$1
	if [[ ${NO_BUILD:-0} == 1 && -x $b/proxy/apexd ]]; then
		return 0
	fi
	say "building the $v variant into ${b#"$ROOT"/}"
	rm -rf "$src"
	mkdir -p "$src"
	git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -T - -cf -) | tar -xf - -C "$src"
	case $v in
	built | last10 | none) ;;
	*) die "unknown variant $v (built last10 none)" ;;
	esac
	if [[ $v != built ]]; then
		sed -i 's|\.refresh_ms = (uint32_t)cfg->flatten\.deadline_ms,|.refresh_ms = 0,|' \
			"$src/proxy/flat/gen.c"
		grep -q '\.refresh_ms = 0,' "$src/proxy/flat/gen.c" ||
			die "proxy/flat/gen.c: no refresh_ms line to patch"
	fi
	if [[ $v == none ]]; then
		sed -i 's|^#define FLAT_CACHE_PREFETCH_PCT 90$|#define FLAT_CACHE_PREFETCH_PCT 100|' \
			"$src/flatten/cache.h"
		grep -q 'FLAT_CACHE_PREFETCH_PCT 100' "$src/flatten/cache.h" ||
			die "flatten/cache.h: no FLAT_CACHE_PREFETCH_PCT 90 to patch"
	fi
	cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=Release >"$RUN/cmake-$v.log" 2>&1 ||
		die "cmake failed: $RUN/cmake-$v.log"
	cmake --build "$b" -j2 --target apexd >>"$RUN/cmake-$v.log" 2>&1 ||
		die "build failed: $RUN/cmake-$v.log"
}
for v in "${VARIANTS[@]}"; do build "$v"; done

# BIND with example.test.
mkdir -p "$RUN/named"
cat >"$RUN/named/example.test.zone" <<'EOF'
$TTL 3600
@	IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@	IN NS ns.example.test.
ns	IN A 192.0.2.53
www	IN A 192.0.2.80
EOF
free_port
BIND_PORT=$FP
cat >"$RUN/named/named.conf" <<EOF
options {
	directory "$RUN/named";
	pid-file "named.pid";
	listen-on port $BIND_PORT { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
};
controls { };
zone "example.test" { type primary; file "example.test.zone"; };
EOF
spawn "$RUN/named.log" named -g -n 1 -c "$RUN/named/named.conf"
# wait_dns PORT NAME: until NAME A is answered NOERROR (15 s).
wait_dns() {
	local i
	for ((i = 0; i < 30; i++)); do
		dig @127.0.0.1 -p "$1" +time=1 +tries=1 "$2" A 2>/dev/null | grep -q 'status: NOERROR' && return 0
		sleep 0.5
	done
	return 1
}
wait_dns "$BIND_PORT" www.example.test || die "BIND does not answer (see $RUN/named.log)"

free_port
CDN_PORT=$FP
spawn "$RUN/geocdn.out" "$PY" "$INT/geocdn.py" --port "$CDN_PORT" --log "$RUN/geocdn.log" \
	--ttl "$TTL" --delay "$DELAY"
wait_dns "$CDN_PORT" ns.geo.test || die "geocdn.py does not answer (see $RUN/geocdn.out)"
say "BIND on $BIND_PORT, the CDN on $CDN_PORT (TTL $TTL s, $DELAY s late)"

for v in "${VARIANTS[@]}"; do
	free_port
	APORT=$FP
	cat >"$RUN/apexd-$v.ini" <<EOF
[server]
threads = 2
log-level = info
[listen]
udp = 127.0.0.1:$APORT
tcp = 127.0.0.1:$APORT
[backend]
address = 127.0.0.1:$BIND_PORT
[resolver]
addresses = 127.0.0.1:$CDN_PORT
[flatten]
min-ttl = 1s
[zone example.test]
[alias]
flat.example.test = flat.geo.test
EOF
	spawn "$RUN/apexd-$v.log" "$RUN/build-$v/proxy/apexd" -c "$RUN/apexd-$v.ini"
	APID=$LAST_PID
	wait_dns "$APORT" www.example.test || die "apexd ($v) does not answer (see $RUN/apexd-$v.log)"
	# The cold query waits for the CDN: not part of the figures.
	dig @127.0.0.1 -p "$APORT" +time=5 +tries=1 flat.example.test A >/dev/null
	say "$v: $DURATION s at $RATE queries a second per name"
	"$PY" "$INT/trickle.py" --server "127.0.0.1:$APORT" --rate "$RATE" --duration "$DURATION" \
		--timeout 5 --slow-ms "$(awk -v d="$DELAY" 'BEGIN { print d * 500 }')" \
		--json "$RUN/$v.json" \
		--spec "flat.example.test,A,203.0.113.200" \
		--spec "www.example.test,A,192.0.2.80" >&2 || say "$v: some answers were wrong or lost"
	stop_pid "$APID"
done
"$PY" "$BENCH/refresh.py" "$RUN" "$TTL" "$DELAY" "$DURATION" "$RATE" "${VARIANTS[@]}" | tee "$RUN/results.txt"
