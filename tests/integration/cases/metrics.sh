#!/usr/bin/env bash
# [listen] metrics: GET /metrics fetched with curl, checked by a strict
# Prometheus text-format parser (promcheck.py, itself shown to reject
# broken input), and counters, rcodes, chase failure reasons, latency
# histograms and the open-connection gauge asserted to move with real
# queries over UDP and TCP. Wrong paths and methods get 404 and 405.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need curl
PROMCHECK=("$PY" "$INT_DIR/promcheck.py")

# The checker first: a test that cannot fail proves nothing.
bad_inputs() {
	local f=$T_DIR/bad.txt n=0 case
	local -a cases=(
		'apexd_x_total 1\n'
		'# HELP apexd_x_total x\n# TYPE apexd_x_total counter\napexd_x_total 1'
		'# HELP apexd_x_total x\n# TYPE apexd_x_total counter\napexd_x_total -1\n'
		'# HELP apexd_x_total x\n# TYPE apexd_x_total counter\napexd_x_total{a="1} 1\n'
		'# HELP apexd_x_total x\n# TYPE apexd_x_total counter\napexd_x_total one\n'
		'# HELP apexd_x_total x\n# TYPE apexd_x_total counter\napexd_x_total 1\napexd_x_total 2\n'
		'# HELP apexd_x x\n# TYPE apexd_x counter\napexd_x 1\n'
		'# HELP apexd_g x\n# TYPE apexd_g gauge\napexd_g 1\n\n'
		'# HELP x_total x\n# TYPE x_total counter\nx_total 1\n'
		'# HELP apexd_h x\n# TYPE apexd_h histogram\napexd_h_bucket{le="1"} 2\napexd_h_bucket{le="+Inf"} 1\napexd_h_sum 1\napexd_h_count 1\n'
		'# HELP apexd_h x\n# TYPE apexd_h histogram\napexd_h_bucket{le="1"} 1\napexd_h_sum 1\napexd_h_count 1\n'
		'# HELP apexd_h x\n# TYPE apexd_h histogram\napexd_h_bucket{le="+Inf"} 2\napexd_h_sum 1\napexd_h_count 3\n'
		'# TYPE apexd_g gauge\napexd_g 1\n'
		'# HELP apexd_g x\n# TYPE apexd_g gauge\napexd_g 1\n# HELP apexd_k x\n# TYPE apexd_k gauge\napexd_k 1\napexd_g{a="b"} 1\n'
	)
	for case in "${cases[@]}"; do
		n=$((n + 1))
		printf '%b' "$case" >"$f"
		if "${PROMCHECK[@]}" check "$f" --prefix apexd_ >/dev/null; then
			echo "bad input $n accepted:"
			cat "$f"
			return 1
		fi
	done
	printf '%b' '# HELP apexd_h x\n# TYPE apexd_h histogram\napexd_h_bucket{le="1"} 1\napexd_h_bucket{le="+Inf"} 2\napexd_h_sum 1.5\napexd_h_count 2\n' >"$f"
	"${PROMCHECK[@]}" check "$f" --prefix apexd_
}
check "promcheck rejects 14 kinds of broken input and accepts a good one" bad_inputs

start_flat_backend
start_cdn
start_unbound
MPORT=$(new_port)
start_flat_apexd "[listen]
metrics = 127.0.0.1:$MPORT
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[zone example.test]"
URL=http://127.0.0.1:$MPORT/metrics

# scrape NAME: fetch /metrics into $T_DIR/NAME.txt, echo the file name
# (a name per call: $(scrape) runs in a subshell, so no counter here).
scrape() {
	curl -sf --max-time 5 "$URL" -o "$T_DIR/$1.txt" && echo "$T_DIR/$1.txt"
}
val() { "${PROMCHECK[@]}" value "$1" "$2"; }

M0=$(scrape m0) || { fail "GET /metrics failed"; finish; }
check "GET /metrics: well-formed Prometheus text, every family apexd_ with HELP and TYPE" \
	"${PROMCHECK[@]}" check "$M0" --prefix apexd_
check "content type is the text format 0.0.4" bash -c \
	"curl -s -o /dev/null -w '%{content_type}' '$URL' | grep -qx 'text/plain; version=0.0.4; charset=utf-8'"
check "HEAD /metrics: 200" bash -c "curl -s -I -o /dev/null -w '%{http_code}' '$URL' | grep -qx 200"
check "GET /other: 404" bash -c "curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:$MPORT/other' | grep -qx 404"
check "POST /metrics: 405 with Allow" bash -c \
	"curl -s -D - -o /dev/null -X POST -d x '$URL' | tr -d '\r' | grep -q '^Allow: GET, HEAD' && curl -s -o /dev/null -w '%{http_code}' -X POST -d x '$URL' | grep -qx 405"
for fam in apexd_queries_udp_total apexd_answers_by_rcode_total apexd_chase_failures_by_reason_total \
	apexd_answer_latency_seconds apexd_open_tcp apexd_backend_timeouts_total apexd_resolver_timeouts_total \
	apexd_cache_hits_total apexd_cache_misses_total apexd_answers_stale_total apexd_answers_flattened_total \
	apexd_answers_relayed_total apexd_tcp_connections_total; do
	check "family $fam has HELP and TYPE" grep -q "^# TYPE $fam " "$M0"
done

# Real queries: 5 relayed over UDP, 2 NXDOMAIN over TCP, a flattened
# apex twice (miss then hit), an in-zone CNAME loop (the chase fails).
for i in 1 2 3 4 5; do dig_at "$APEX_PORT" example.test SOA >/dev/null; done
for i in 1 2; do dig_at "$APEX_PORT" +tcp "nx$i.nothere.example.test" A >/dev/null; done
fq example.test A --addrs "$WWW_A" >/dev/null
fq example.test A --addrs "$WWW_A" >/dev/null
fq iloop.example.test A --rcode SERVFAIL >/dev/null || true
M1=$(scrape m1) || { fail "second GET /metrics failed"; finish; }
check "after queries: still well formed" "${PROMCHECK[@]}" check "$M1" --prefix apexd_

# moved NAME SERIES MIN: the series grew by at least MIN between scrapes.
moved() {
	local a b
	a=$(val "$M0" "$1") && b=$(val "$M1" "$1") || return 1
	echo "$1: $a -> $b (want +$2 at least)"
	[[ $((b - a)) -ge $2 ]]
}
check "queries_udp moved by 5+" moved apexd_queries_udp_total 5
check "queries_tcp moved by 2" moved apexd_queries_tcp_total 2
check "NXDOMAIN answers moved by 2" moved 'apexd_answers_by_rcode_total{rcode="NXDOMAIN"}' 2
check "NOERROR answers moved by 7" moved 'apexd_answers_by_rcode_total{rcode="NOERROR"}' 7
check "SERVFAIL answers moved by 1" moved 'apexd_answers_by_rcode_total{rcode="SERVFAIL"}' 1
check "answers_relayed moved" moved apexd_answers_relayed_total 5
check "answers_flattened moved by 2" moved apexd_answers_flattened_total 2
check "target cache: a miss and a hit" bash -c "$(declare -f moved val); M0='$M0' M1='$M1' PROMCHECK=($(printf '%q ' "${PROMCHECK[@]}")); moved apexd_cache_misses_total 1 && moved apexd_cache_hits_total 1"
# BIND answers the in-zone loop with SERVFAIL, so the chase's reason is
# the error RCODE.
check "chase failure by reason: rcode" moved 'apexd_chase_failures_by_reason_total{reason="rcode"}' 1
reasons_sum() {
	local total sum=0 r
	total=$(val "$M1" apexd_chase_failures_total)
	for r in timeout no_resolver bad_answer rcode loop chain_too_long invalid; do
		sum=$((sum + $(val "$M1" "apexd_chase_failures_by_reason_total{reason=\"$r\"}")))
	done
	echo "by reason $sum, total $total"
	[[ $sum -eq $total && $total -ge 1 ]]
}
check "chase failures by reason add up to the total" reasons_sum
check "UDP latency histogram count moved by 7+" \
	moved 'apexd_answer_latency_seconds_count{transport="udp"}' 7
check "TCP latency histogram count moved by 2" \
	moved 'apexd_answer_latency_seconds_count{transport="tcp"}' 2
check "UDP latency +Inf bucket equals the count" bash -c \
	"[[ \$('${PY}' '$INT_DIR/promcheck.py' value '$M1' 'apexd_answer_latency_seconds_bucket{transport=\"udp\",le=\"+Inf\"}') == \$('${PY}' '$INT_DIR/promcheck.py' value '$M1' 'apexd_answer_latency_seconds_count{transport=\"udp\"}') ]]"
check "UDP latency sum is above zero" bash -c \
	"'${PY}' '$INT_DIR/promcheck.py' value '$M1' 'apexd_answer_latency_seconds_sum{transport=\"udp\"}' | grep -qv '^0\$'"

# The open-connection gauge: up while a TCP client holds on, down after.
"$PY" - "$APEX_PORT" "$T_DIR/held" <<'PY' &
import socket, sys, time, os
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
t = time.time()
while os.path.exists(sys.argv[2]) and time.time() - t < 20:
    time.sleep(0.05)
s.close()
PY
HOLD_PID=$!
PIDS+=("$HOLD_PID")
for _ in $(seq 50); do [[ -e $T_DIR/held ]] && break; sleep 0.1; done
sleep 0.2
M2=$(scrape m2)
check "open_tcp gauge is 1 while a client holds a connection" test "$(val "$M2" apexd_open_tcp)" -eq 1
rm -f "$T_DIR/held"
wait_exit "$HOLD_PID" 5 || true
gauge_back() {
	local i m
	for i in $(seq 30); do
		m=$(scrape "g$i") && [[ $(val "$m" apexd_open_tcp) -eq 0 ]] && return 0
		sleep 0.1
	done
	return 1
}
check "open_tcp gauge back to 0 after the client hangs up" gauge_back

stop_flat_apexd
check "the metrics port is closed after exit" bash -c "! curl -s --max-time 2 '$URL' >/dev/null"
finish
