#!/usr/bin/env bash
# [cache] answers = yes: repeated questions are answered from apexd's cache
# with the same bytes BIND gave (client's ID and spelling), TTLs age, a
# query with a cookie bypasses the cache, and a NOTIFY from the backend's
# address makes apexd ask BIND again.
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need nsupdate dig

start_named
APEX_PORT=$(new_port)
cat >"$T_DIR/apexd.ini" <<EOF
[server]
threads = 1
log-level = info
[listen]
udp = 127.0.0.1:$APEX_PORT
tcp = 127.0.0.1:$APEX_PORT
[backend]
address = 127.0.0.1:$NAMED_PORT
[cache]
answers = yes
size = 4M
EOF
"$APEXD" -c "$T_DIR/apexd.ini" 2>"$APEX_LOG" >&2 &
APEX_PID=$!
PIDS+=("$APEX_PID")
wait_dns "$APEX_PORT" || { fail "apexd did not start"; finish; }

# The first answer comes from BIND: its bytes. The next ones come from the
# cache: BIND's records, TTLs lowered by the seconds they spent there (a
# loaded machine may cross a second between two queries).
check "www.dyn.test A from BIND equals BIND" cmp_q www.dyn.test A
check "NXDOMAIN from BIND equals BIND" cmp_q nothere.dyn.test A
same_records() { # NAME [dig options]: records and TTLs within 5 s of BIND's
	local name=$1 a b
	shift
	a=$(dig @127.0.0.1 -p "$APEX_PORT" +nocookie +noall +answer +authority "$@" "$name" A)
	b=$(dig @127.0.0.1 -p "$NAMED_PORT" +nocookie +noall +answer +authority "$@" "$name" A)
	[[ -n $a && $(awk '{$2=""; print}' <<<"$a") == $(awk '{$2=""; print}' <<<"$b") ]] || return 1
	paste <(awk '{print $2}' <<<"$a") <(awk '{print $2}' <<<"$b") |
		awk '{ if ($1 > $2 || $1 < $2 - 5) exit 1 }'
}
for i in 1 2 3; do
	check "www.dyn.test A, round $i, BIND's records" same_records www.dyn.test
	# Keyed case-insensitively (as dnsdist's packet cache is): the same
	# records, the question spelled as asked, but not BIND's bytes, since
	# BIND writes a mixed-case query's answer owner uncompressed.
	check "mixed case, round $i, same records as BIND" test \
		"$(dig @127.0.0.1 -p "$APEX_PORT" +nocookie +short WwW.DyN.TeSt A)" = \
		"$(dig @127.0.0.1 -p "$NAMED_PORT" +nocookie +short WwW.DyN.TeSt A)"
	check "mixed case, round $i, question spelled as asked" sh -c \
		"dig @127.0.0.1 -p $APEX_PORT +nocookie WwW.DyN.TeSt A | grep -q '^;WwW.DyN.TeSt.'"
	check "NXDOMAIN, round $i, BIND's records" same_records nothere.dyn.test
	check "over TCP, round $i, BIND's records" same_records www.dyn.test +tcp
done

ttl_of() { dig @127.0.0.1 -p "$APEX_PORT" +nocookie +noall +answer "$1" A | awk '{print $2; exit}'; }
t1=$(ttl_of www.dyn.test)
sleep 2.2
t2=$(ttl_of www.dyn.test)
check "TTL ages in the cache ($t1 then $t2)" test "$t2" -le $((t1 - 2))

# Change the record in BIND behind apexd's back.
nsupdate -p "$NAMED_PORT" <<EOF >/dev/null 2>&1
server 127.0.0.1 $NAMED_PORT
zone dyn.test
update delete www.dyn.test A
update add www.dyn.test 300 A 192.0.2.31
send
EOF
direct=$(dig @127.0.0.1 -p "$NAMED_PORT" +short www.dyn.test A)
check "BIND has the new address" test "$direct" = 192.0.2.31
cached=$(dig @127.0.0.1 -p "$APEX_PORT" +short +nocookie www.dyn.test A)
check "apexd still serves the cached one" test "$cached" = 192.0.2.30
fresh=$(dig @127.0.0.1 -p "$APEX_PORT" +short +cookie www.dyn.test A)
check "a query with a cookie goes to BIND" test "$fresh" = 192.0.2.31

# A NOTIFY from the backend's address (127.0.0.1) flushes the cache.
"$PY" - "$APEX_PORT" <<'PY'
import sys, socket, dns.message, dns.opcode, dns.rdatatype
m = dns.message.make_query("dyn.test", dns.rdatatype.SOA)
m.flags = dns.flags.AA  # before the opcode: flags hold the opcode bits
m.set_opcode(dns.opcode.NOTIFY)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(m.to_wire(), ("127.0.0.1", int(sys.argv[1])))
s.recv(512)
PY
after=$(dig @127.0.0.1 -p "$APEX_PORT" +short +nocookie www.dyn.test A)
check "after the backend's NOTIFY apexd asks BIND again" test "$after" = 192.0.2.31

# A client and a server cookie, as a resolver sends once it knows BIND's
# server cookie: served from the cache, with the client's pair echoed.
# BIND changes the record again, so the old address proves the cache.
nsupdate -p "$NAMED_PORT" <<EOF >/dev/null 2>&1
server 127.0.0.1 $NAMED_PORT
zone dyn.test
update delete www.dyn.test A
update add www.dyn.test 300 A 192.0.2.32
send
EOF
pair=0102030405060708aabbccddeeff00112233445566778899
with_pair=$(dig @127.0.0.1 -p "$APEX_PORT" +cookie=$pair www.dyn.test A)
grep -E 'COOKIE|^www' <<<"$with_pair" || true
check "a cookie pair is served from the cache" \
	grep -qE '^www\.dyn\.test\..*A[[:space:]]+192\.0\.2\.31$' <<<"$with_pair"
check "with the client's pair echoed" grep -qi "COOKIE: $pair" <<<"$with_pair"

stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
cached_n=$(stat_value answers_cached)
check "answers_cached counted ($cached_n)" test "${cached_n:-0}" -ge 8
finish
