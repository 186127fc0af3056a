#!/usr/bin/env bash
# [server] query-log: one line per query with time, transport, client,
# name, type, rcode, how it was flattened, the chain and the latency;
# relayed, flattened (ANAME, [alias], CNAME) and apexd's own answers;
# SIGUSR1 reopens the file after logrotate moved it; reload turns the log
# off and on; dnsperf's queries are all logged, one line each.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_flat_tools
need_tls_tools
need dnsperf kdig

start_flat_backend
start_cdn
start_unbound
QLOG=$T_DIR/queries.log
CONF="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[zone example.test]
[zone apexcn.example.test]
[alias]
alias-owner.example.test = www.cdn.test"
start_flat_apexd "$CONF"
# The query log goes into [server] (write_ini's first section).
with_qlog() { sed -i "s|^\[server\]$|[server]\nquery-log = $QLOG|" "$T_DIR/apexd.ini"; }
with_qlog
check "SIGHUP turning the query log on" hup_wait
check "  the log says so" grep -q "reload: query-log (off) -> $QLOG" "$APEX_LOG"

# wait_line PATTERN [FILE]: until a line of the query log matches (3 s).
wait_line() {
	local i file=${2:-$QLOG}
	for ((i = 0; i < 30; i++)); do
		grep -qE "$1" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no line matches: $1"
	echo "---- $file ----"
	cat "$file" 2>/dev/null
	return 1
}
TS='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
CL='127\.0\.0\.1#[0-9]+'
LAT='[0-9]+\.[0-9]ms$'

fq example.test A --rcode NOERROR >/dev/null
check "UDP, ANAME at the apex: flat=aname with its chain" \
	wait_line "$TS udp $CL example\.test\. A NOERROR flat=aname chain=example\.test\.>www\.cdn\.test\. $LAT"
fq --tcp alias-owner.example.test AAAA --rcode NOERROR >/dev/null
check "TCP, [alias]: flat=alias" \
	wait_line "$TS tcp $CL alias-owner\.example\.test\. AAAA NOERROR flat=alias chain=alias-owner\.example\.test\.>www\.cdn\.test\. $LAT"
fq apexcn.example.test A --rcode NOERROR >/dev/null
check "CNAME at an apex: flat=cname" \
	wait_line "$TS udp $CL apexcn\.example\.test\. A NOERROR flat=cname chain=apexcn\.example\.test\.>www\.cdn\.test\. $LAT"
fq mail.example.test A --rcode NOERROR >/dev/null
check "relayed: flat=no chain=-" wait_line "$TS udp $CL mail\.example\.test\. A NOERROR flat=no chain=- $LAT"
fq nothere.example.test MX --rcode NXDOMAIN >/dev/null
check "NXDOMAIN relayed, type MX" wait_line "$TS udp $CL nothere\.example\.test\. MX NXDOMAIN flat=no chain=- $LAT"
fq loop.example.test A --rcode SERVFAIL >/dev/null
check "a failed chase: SERVFAIL, flat=aname,failed" \
	wait_line "$TS udp $CL loop\.example\.test\. A SERVFAIL flat=aname,failed chain=loop\.example\.test\.>loop1\.cdn\.test\."
dig @127.0.0.1 -p "$APEX_PORT" +time=2 +tries=1 +nocookie example.test TYPE65401 >/dev/null
check "unknown type names in RFC 3597 form" wait_line "$TS udp $CL example\.test\. TYPE65401 NOERROR"
kdig @127.0.0.1 -p "$APEX_PORT" +time=2 +retry=0 'sp\032ace.example.test' A >/dev/null 2>&1 || true
check "a blank inside a name is escaped: the fields stay apart" \
	wait_line "$TS udp $CL sp\\\\032ace\.example\.test\. A NXDOMAIN flat=no chain=- $LAT"
check "every line has the nine fields" bash -c \
	"! grep -vE '$TS (udp|tcp|dot|doh) $CL [^ ]+ [A-Z0-9]+ [A-Z0-9]+ flat=[a-z,]+ chain=[^ ]+ [0-9]+\.[0-9]ms\$' '$QLOG'"

# --- logrotate: move the file, SIGUSR1, new lines go to a new file --------
mv "$QLOG" "$QLOG.1"
fq www.example.test MX >/dev/null 2>&1 || true
check "before SIGUSR1 lines still go to the moved file" wait_line "www\.example\.test\. MX" "$QLOG.1"
kill -USR1 "$APEX_PID"
for _ in $(seq 30); do grep -q 'query log .* reopened' "$APEX_LOG" && break; sleep 0.1; done
check "SIGUSR1 logged" grep -q "SIGUSR1: query log $QLOG reopened" "$APEX_LOG"
sleep 0.3
fq mail.example.test AAAA >/dev/null 2>&1 || true
check "after SIGUSR1: a new file with the new line" wait_line "mail\.example\.test\. AAAA"
check "  and the moved file did not get it" bash -c "! grep -q 'mail\.example\.test\. AAAA' '$QLOG.1'"

# --- one line per query under load ------------------------------------------
printf '%s\n' "example.test A" "mail.example.test A" "nothere.example.test A" >"$T_DIR/q.txt"
: >"$QLOG"
before=$(wc -l <"$QLOG")
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$T_DIR/q.txt" -l 3 -Q 1000 -c 4 -t 2 >"$T_DIR/dnsperf.txt" 2>&1 || true
sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$T_DIR/dnsperf.txt")
lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$T_DIR/dnsperf.txt")
sleep 0.5
lines=$(($(wc -l <"$QLOG") - before))
check "dnsperf: $sent queries, $lost lost, $lines lines logged: one per query" \
	test "${sent:-0}" -gt 0 -a "$lost" = 0 -a "$lines" = "$sent"
check "  every line whole (the nine fields)" bash -c \
	"! grep -vE '$TS (udp|tcp|dot|doh) $CL [^ ]+ [A-Z0-9]+ [A-Z0-9]+ flat=[a-z,]+ chain=[^ ]+ [0-9]+\.[0-9]ms\$' '$QLOG'"

# --- off again by reload -------------------------------------------------------
sed -i '/^query-log = /d' "$T_DIR/apexd.ini"
check "SIGHUP turning the query log off" hup_wait
n=$(wc -l <"$QLOG")
fq mail.example.test TXT >/dev/null 2>&1 || true
sleep 0.5
check "off: no more lines" test "$(wc -l <"$QLOG")" = "$n"

stop_flat_apexd
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"
mv "$APEX_LOG" "$T_DIR/apexd-1.log"

# --- on from the start, over DoT and DoH ------------------------------------
# A second [server] section merges with write_ini's.
QLOG=$T_DIR/queries-tls.log
start_tls_apexd "127.0.0.1:$NAMED_PORT" "[server]
query-log = $QLOG
$CONF"
kdig @127.0.0.1 -p "$DOT_PORT" +tls +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 \
	mail.example.test A >/dev/null 2>&1 || true
check "on from startup: a DoT line" wait_line "$TS dot $CL mail\.example\.test\. A NOERROR flat=no chain=- $LAT"
ddoh --method post example.test A --rcode NOERROR >/dev/null 2>&1 || true
check "a DoH line, flattened" \
	wait_line "$TS doh $CL example\.test\. A NOERROR flat=aname chain=example\.test\.>www\.cdn\.test\. $LAT"
stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$T_DIR'/apexd*.log"
finish
