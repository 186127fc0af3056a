#!/usr/bin/env bash
# bench/health.sh - what the [health] checker costs (issue 17).
#
#     bench/health.sh [N] [KIND] [INTERVAL] [SECONDS]
#
# N loopback addresses (default 1000: 127.77.0.1 on) with a listener on
# each (bench/health_listen.py: accept and close; with KIND=tls a TLS
# handshake with a throwaway certificate for the owners' names, signed by
# a CA SSL_CERT_FILE points the checker at), checked every INTERVAL
# (default 10s) by the checker of bench/health_cost.c for SECONDS
# (default 60) after one interval of warm-up. Prints the checker thread's
# CPU (schedstat) per check and per interval. Builds build-bench/ with
# -DAPEX_BENCH=ON. The listeners' CPU is theirs, not counted.
set -euo pipefail
BENCH_TAG=health
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/health
N=${1:-1000}
KIND=${2:-tcp}
INTERVAL=${3:-10s}
SECS=${4:-60}
rm -rf "$RUN"
mkdir -p "$RUN"
cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DAPEX_BENCH=ON >/dev/null
cmake --build "$ROOT/build-bench" -j2 --target health_cost >/dev/null
for ((i = 1; i <= N; i++)); do echo "127.77.$((i >> 8)).$((i & 255))"; done >"$RUN/addrs.txt"
free_port; HPORT=$FP
tls=()
if [[ $KIND == tls ]]; then
	# One certificate for every owner: *.bench.test, from a CA of our own.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$RUN/ca.key" \
		-out "$RUN/ca.pem" -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$RUN/leaf.key" \
		-out "$RUN/leaf.csr" -subj "/CN=*.bench.test" 2>/dev/null
	printf 'subjectAltName=DNS:*.bench.test\nextendedKeyUsage=serverAuth\n' >"$RUN/leaf.ext"
	openssl x509 -req -in "$RUN/leaf.csr" -CA "$RUN/ca.pem" -CAkey "$RUN/ca.key" -CAcreateserial \
		-out "$RUN/leaf.pem" -days 2 -extfile "$RUN/leaf.ext" 2>/dev/null
	tls=(--tls "$RUN/leaf.pem" "$RUN/leaf.key")
	export SSL_CERT_FILE=$RUN/ca.pem
fi
spawn "$RUN/listen.log" "$PY" "$BENCH/health_listen.py" "$HPORT" --file "$RUN/addrs.txt" "${tls[@]}"
for _ in $(seq 100); do grep -q listening "$RUN/listen.log" && break; sleep 0.1; done
grep -q listening "$RUN/listen.log" || die "listeners did not start: $(tail -3 "$RUN/listen.log")"
say "$N listeners on port $HPORT ($KIND); measuring for $SECS s after $INTERVAL of warm-up"
"$ROOT/build-bench/bench/health_cost" "$N" "$HPORT" "$KIND" "$INTERVAL" "$SECS" 2>"$RUN/health_cost.log" |
	tee "$RUN/result.txt"
