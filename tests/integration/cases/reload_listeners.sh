#!/usr/bin/env bash
# SIGHUP adds and removes listeners: a new UDP/TCP address answers after
# the reload, a new DoT listener (with [tls] added by the same reload)
# serves the certificate, a renewed certificate is served after the next
# SIGHUP, a removed address stops answering while the
# others go on, and a UDP query in flight on a removed address still gets
# its answer from that address. An address that cannot be bound keeps the
# running configuration.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
need_real_apexd
need_python_dns
need_tls_tools
need dig kdig

start_named
start_apexd
P1=$APEX_PORT
P2=$(new_port)
DOT=$(new_port)
make_certs

# listen UDP TCP [DOT]: rewrite the file with these [listen] lists.
listen() {
	write_ini "$T_DIR/apexd.ini" "$P1" "127.0.0.1:$NAMED_PORT"
	sed -i -e "s/^udp = .*/udp = $1/" -e "s/^tcp = .*/tcp = $2/" "$T_DIR/apexd.ini"
	if [[ -n ${3:-} ]]; then
		sed -i "s/^\[listen\]$/[listen]\ndot = $3/" "$T_DIR/apexd.ini"
		printf '\n[tls]\ncertificate = %s\nprivate-key = %s\n' "$TLS_CERT" "$TLS_KEY" >>"$T_DIR/apexd.ini"
	fi
}
answers() { # PORT [+tcp]
	local out
	out=$(dig @127.0.0.1 -p "$1" +time=2 +tries=1 +nocookie ${2:+"$2"} www.example.test A 2>&1)
	echo "$out"
	grep -q 'status: NOERROR' <<<"$out"
}
silent() { # PORT [+tcp]: no answer at all
	! answers "$@"
}
dot_answers() { # PORT
	local out
	out=$(kdig @127.0.0.1 -p "$1" +tls +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 www.example.test A 2>&1)
	echo "$out"
	grep -q 'status: NOERROR' <<<"$out"
}

check "before: port 1 answers (UDP)" answers "$P1"
check "before: port 2 is silent" silent "$P2"

listen "127.0.0.1:$P1, 127.0.0.1:$P2" "127.0.0.1:$P1, 127.0.0.1:$P2" "127.0.0.1:$DOT"
check "SIGHUP adding udp/tcp on port 2 and DoT (with [tls])" hup_wait
check "  reloaded" last_reload_ok
check "  the log names the new listeners" grep -q "reload: now listening on dot 127.0.0.1:$DOT" "$APEX_LOG"
check "new UDP listener answers" answers "$P2"
check "new TCP listener answers" answers "$P2" +tcp
check "new DoT listener answers, certificate verified" dot_answers "$DOT"
check "port 1 still answers (UDP)" answers "$P1"
check "port 1 still answers (TCP)" answers "$P1" +tcp

# A renewed certificate (same paths, new files) is served after SIGHUP.
served_serial() {
	timeout 5 openssl s_client -connect "127.0.0.1:$DOT" -alpn dot </dev/null 2>/dev/null |
		openssl x509 -noout -serial
}
old_serial=$(served_serial)
sh "$APEX_SOURCE_DIR/tests/data/tls/make-certs.sh" "$T_DIR/tls2" >/dev/null 2>&1
cp "$T_DIR/tls2/fullchain.pem" "$TLS_CERT"
cp "$T_DIR/tls2/server.key" "$TLS_KEY"
TLS_CA=$T_DIR/tls2/ca.pem
new_serial=$(openssl x509 -in "$T_DIR/tls2/server.pem" -noout -serial)
check "SIGHUP after the certificate files were replaced" hup_wait
renewed() {
	local now
	now=$(served_serial)
	echo "before: $old_serial, file: $new_serial, served: $now"
	[[ -n $old_serial && $now == "$new_serial" && $now != "$old_serial" ]]
}
check "the new certificate is served" renewed
check "  and verifies with its CA" dot_answers "$DOT"

# Every worker has a socket of its own on the new address: a burst from
# many source ports (spread by the kernel over the workers) all answered.
burst() {
	local i ok=0
	for ((i = 0; i < 20; i++)); do
		dig @127.0.0.1 -p "$P2" +time=2 +tries=1 +nocookie "q$i.example.test" A 2>&1 |
			grep -q 'status: NXDOMAIN' && ok=$((ok + 1))
	done
	echo "$ok of 20 answered"
	[[ $ok -eq 20 ]]
}
check "20 queries from 20 source ports on the new address: all answered" burst

listen "127.0.0.1:$P2" "127.0.0.1:$P2"
check "SIGHUP removing port 1 and DoT" hup_wait
check "  the log says so" grep -q "reload: no longer listening on udp 127.0.0.1:$P1" "$APEX_LOG"
check "removed UDP listener is silent" silent "$P1"
check "removed TCP listener refuses" silent "$P1" +tcp
dot_closed() { ! dot_answers "$DOT"; }
check "removed DoT listener is closed" dot_closed
check "port 2 answers (UDP)" answers "$P2"
check "port 2 answers (TCP)" answers "$P2" +tcp

# An address someone else holds: the reload fails as a whole.
hold=$(new_port)
"$PY" -c 'import socket,sys,time
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
time.sleep(30)' "$hold" &
holder=$!
PIDS+=("$holder")
sleep 0.3
listen "127.0.0.1:$P2, 127.0.0.1:$hold" "127.0.0.1:$P2, 127.0.0.1:$P1"
check "SIGHUP with an address in use" hup_wait
check "  refused, naming it" grep -q "reload failed: cannot listen on udp 127.0.0.1:$hold: Address already in use; keeping the current certificate and the running configuration" "$APEX_LOG"
check "  port 1 TCP (in the same file) was not started" silent "$P1" +tcp
check "  port 2 still answers" answers "$P2"
stop_pid "$holder"
stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
mv "$APEX_LOG" "$T_DIR/apexd-1.log"

# --- a UDP query in flight on a removed address -------------------------
# The blackhole backend holds the query until apexd's timeout (2 s); the
# reload that removes the address comes meanwhile. The SERVFAIL must
# still come back, from the address the client asked.
start_blackhole
start_apexd "127.0.0.1:$BLACKHOLE_PORT" timeout=2s
P1=$APEX_PORT
P3=$(new_port)
seen=$(blackhole_count)
apex_q --edns --timeout 6 www.example.test A --expect-rcode SERVFAIL --expect-ede 22 \
	>"$T_DIR/inflight.out" 2>&1 &
client=$!
check "the query reached the backend" blackhole_wait $((seen + 1))
write_ini "$T_DIR/apexd.ini" "$P1" "127.0.0.1:$BLACKHOLE_PORT" timeout=2s
sed -i -e "s/^udp = .*/udp = 127.0.0.1:$P3/" -e "s/^tcp = .*/tcp = 127.0.0.1:$P3/" "$T_DIR/apexd.ini"
check "SIGHUP moving UDP/TCP to another port while the query waits" hup_wait
check "  reloaded" last_reload_ok
rc=0
wait "$client" || rc=$?
check "the in-flight query got its SERVFAIL (EDE 22) from the removed address" \
	bash -c "cat '$T_DIR/inflight.out'; exit $rc"
check "then the removed address is silent" silent "$P1"
stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$T_DIR'/*.log"
finish
