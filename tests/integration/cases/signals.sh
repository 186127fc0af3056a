#!/usr/bin/env bash
# SIGTERM drains: a query in flight still gets its answer and apexd exits 0
# with its stats line; SIGINT exits 0 too. Plus the command line:
# --check-config on a good and a bad file, --version.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need dig
find_apexd

# In flight over UDP and TCP: the blackhole backend holds both queries
# until apexd's 1 s timeout, and SIGTERM arrives while they wait.
start_blackhole
start_apexd "127.0.0.1:$BLACKHOLE_PORT" timeout=1s
seen=$(blackhole_count)
apex_q --edns --timeout 5 www.example.test A --expect-rcode SERVFAIL --expect-ede 22 \
	>"$T_DIR/inflight-udp.out" 2>&1 &
udp_client=$!
apex_q --tcp --edns --timeout 5 www.example.test AAAA --expect-rcode SERVFAIL --expect-ede 22 \
	>"$T_DIR/inflight-tcp.out" 2>&1 &
tcp_client=$!
# SIGTERM only once both queries have reached the backend, so they are
# truly in flight inside apexd (not still in a client or a socket buffer).
check "both queries reached the backend" blackhole_wait $((seen + 2))
t0=$(date +%s%N)
stop_apexd TERM 8
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM with queries in flight: exit 0 (took $ms ms)" test "${APEX_RC:-timeout}" = 0
check "SIGTERM: exited within 5 s" test "$ms" -le 5000
rc=0; wait "$udp_client" || rc=$?
check "in-flight UDP query answered (SERVFAIL, EDE 22)" bash -c "cat '$T_DIR/inflight-udp.out'; exit $rc"
rc=0; wait "$tcp_client" || rc=$?
check "in-flight TCP query answered (SERVFAIL, EDE 22)" bash -c "cat '$T_DIR/inflight-tcp.out'; exit $rc"
check "stats line on stderr at exit" grep -qE '(^|[^a-z])stats: .*queries_udp=[0-9]+' "$APEX_LOG"
check "stats: queries_tcp >= 1" bash -c "[[ \$(grep -o 'queries_tcp=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -ge 1 ]]"

# SIGINT, with BIND behind and a query answered first.
start_named
start_apexd
check "query before SIGINT" cmp_q www.example.test A --expect-min-answers 1
stop_apexd INT 8
check "SIGINT: exit 0 within 8 s" test "${APEX_RC:-timeout}" = 0
check "SIGINT: stats line" grep -qE '(^|[^a-z])stats: ' "$APEX_LOG"

# --check-config.
good=$T_DIR/good.ini
write_ini "$good" 25399 "127.0.0.1:25398"
check "--check-config good file: exit 0" "$APEXD" --check-config -c "$good"

bad=$T_DIR/bad.ini
write_ini "$bad" 25399 "127.0.0.1:25398"
# Line numbers matter: the bad value goes on a line we know.
sed -i 's/^timeout = 1s$/timeout = banana/' "$bad"
bad_line=$(grep -n '^timeout = banana' "$bad" | cut -d: -f1)
check_bad() {
	local file=$1 line=$2 section=$3 key=$4 out rc=0
	out=$("$APEXD" --check-config -c "$file" 2>&1) || rc=$?
	echo "exit $rc: $out"
	[[ $rc -eq 1 ]] || { echo "expected exit 1"; return 1; }
	grep -qF "$file:$line: [$section] $key:" <<<"$out" ||
		{ echo "expected '$file:$line: [$section] $key: ...'"; return 1; }
}
check "--check-config bad value: exit 1, FILE:LINE: [backend] timeout:" \
	check_bad "$bad" "$bad_line" backend timeout

unknown=$T_DIR/unknown.ini
write_ini "$unknown" 25399 "127.0.0.1:25398"
printf 'no-such-key = 1\n' >>"$unknown"
check "--check-config unknown key: exit 1, FILE:LINE: [backend] no-such-key:" \
	check_bad "$unknown" "$(wc -l <"$unknown")" backend no-such-key

check "--check-config missing file: exit 1" bash -c "'$APEXD' --check-config -c '$T_DIR/nonexistent.ini'; [[ \$? -eq 1 ]]"

version_ok() {
	local out
	out=$("$APEXD" --version 2>&1) || return 1
	echo "$out"
	grep -qE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$out"
}
check "--version: exit 0, prints a version" version_ok
finish
