#!/usr/bin/env bash
# OCSP stapling on the DoT port: a "good" response from [tls] ocsp-response
# is stapled to handshakes that ask for it; a revoked or foreign response
# stops startup with the reason; SIGHUP picks up a refreshed file, and a
# broken one keeps the old staple.
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need openssl kdig

CERTS=$T_DIR/certs
mkdir -p "$CERTS"
sh "$APEX_SOURCE_DIR/tests/data/tls/make-certs.sh" "$CERTS" >/dev/null 2>&1 ||
	{ fail "make-certs.sh failed"; finish; }

# make_ocsp STATUS OUT: an OCSP response for the server certificate signed
# by the test CA itself, as `openssl ocsp` run as a responder writes it.
make_ocsp() {
	local status=$1 out=$2 serial end subj idx=$T_DIR/index.$1
	serial=$(openssl x509 -in "$CERTS/server.pem" -noout -serial | cut -d= -f2)
	end=$(date -u -d '+30 days' +%y%m%d%H%M%SZ)
	subj=$(openssl x509 -in "$CERTS/server.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
	if [[ $status == good ]]; then
		printf 'V\t%s\t\t%s\tunknown\t%s\n' "$end" "$serial" "$subj" >"$idx"
	else
		printf 'R\t%s\t%s\t%s\tunknown\t%s\n' "$end" "$(date -u +%y%m%d%H%M%SZ)" "$serial" \
			"$subj" >"$idx"
	fi
	openssl ocsp -issuer "$CERTS/ca.pem" -cert "$CERTS/server.pem" -reqout "$T_DIR/req.der" \
		-no_nonce >/dev/null 2>&1 &&
		openssl ocsp -index "$idx" -rsigner "$CERTS/ca.pem" -rkey "$CERTS/ca.key" \
			-CA "$CERTS/ca.pem" -reqin "$T_DIR/req.der" -respout "$out" -ndays 1 \
			>/dev/null 2>&1
}
make_ocsp good "$T_DIR/good.der" || { fail "openssl ocsp could not make a response"; finish; }
make_ocsp revoked "$T_DIR/revoked.der" || { fail "openssl ocsp (revoked) failed"; finish; }
cp "$T_DIR/good.der" "$T_DIR/ocsp.der"

start_named
DOT_PORT=$(new_port)
UDP_PORT=$(new_port)
write_cfg() {
	cat >"$T_DIR/tls.ini" <<EOF
[server]
threads = 1
log-level = info
[listen]
udp = 127.0.0.1:$UDP_PORT
tcp = 127.0.0.1:$UDP_PORT
dot = 127.0.0.1:$DOT_PORT
[tls]
certificate = $CERTS/fullchain.pem
private-key = $CERTS/server.key
ocsp-response = $1
[backend]
address = 127.0.0.1:$NAMED_PORT
EOF
}

# A revoked certificate's response must not be stapled: startup fails.
write_cfg "$T_DIR/revoked.der"
rc=0
timeout 10 "$APEXD" -c "$T_DIR/tls.ini" >"$T_DIR/revoked.log" 2>&1 || rc=$?
check "apexd refuses to start with a revoked OCSP response" test "$rc" -eq 1
check "  and says why" grep -q "OCSP response .*revoked" "$T_DIR/revoked.log"

# A response about another certificate: the CA's own.
openssl ocsp -issuer "$CERTS/ca.pem" -cert "$CERTS/ca.pem" -reqout "$T_DIR/req2.der" \
	-no_nonce >/dev/null 2>&1
printf 'V\t%s\t\t%s\tunknown\t/CN=x\n' "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" \
	"$(openssl x509 -in "$CERTS/ca.pem" -noout -serial | cut -d= -f2)" >"$T_DIR/index.ca"
openssl ocsp -index "$T_DIR/index.ca" -rsigner "$CERTS/ca.pem" -rkey "$CERTS/ca.key" \
	-CA "$CERTS/ca.pem" -reqin "$T_DIR/req2.der" -respout "$T_DIR/foreign.der" -ndays 1 \
	>/dev/null 2>&1
write_cfg "$T_DIR/foreign.der"
rc=0
timeout 10 "$APEXD" -c "$T_DIR/tls.ini" >"$T_DIR/foreign.log" 2>&1 || rc=$?
check "apexd refuses an OCSP response about another certificate" test "$rc" -eq 1
check "  and says why" grep -q "not about this certificate" "$T_DIR/foreign.log"

write_cfg "$T_DIR/ocsp.der"
"$APEXD" -c "$T_DIR/tls.ini" 2>"$APEX_LOG" >&2 &
APEX_PID=$!
PIDS+=("$APEX_PID")
wait_dns "$UDP_PORT" || { fail "apexd did not start"; finish; }

status_of() {
	timeout 10 openssl s_client -connect "127.0.0.1:$DOT_PORT" -status -CAfile "$CERTS/ca.pem" \
		-verify_return_error -alpn dot </dev/null 2>/dev/null
}
out=$(status_of)
check "the staple says successful" grep -q "OCSP Response Status: successful" <<<"$out"
check "  and the certificate is good" grep -q "Cert Status: good" <<<"$out"
check "  and the chain verifies" grep -q "Verify return code: 0 (ok)" <<<"$out"
check "DoT still answers with stapling on" \
	sh -c "kdig +tls-ca=$CERTS/ca.pem +tls-hostname=localhost @127.0.0.1 -p $DOT_PORT \
		example.test SOA +time=3 +retry=0 | grep -q 'status: NOERROR'"

# A broken file at SIGHUP keeps the old staple.
echo broken >"$T_DIR/ocsp.der"
kill -HUP "$APEX_PID"
sleep 0.5
check "a broken OCSP file at SIGHUP is reported" grep -q "keeping the current certificate" "$APEX_LOG"
check "  and the old staple is still served" \
	sh -c "timeout 10 openssl s_client -connect 127.0.0.1:$DOT_PORT -status \
		-CAfile $CERTS/ca.pem -alpn dot </dev/null 2>/dev/null | grep -q 'Cert Status: good'"

# A refreshed file at SIGHUP is picked up (a new response: another producedAt).
sleep 1
make_ocsp good "$T_DIR/ocsp.der"
before=$(grep -c "reloaded" "$APEX_LOG" || true)
kill -HUP "$APEX_PID"
sleep 0.5
after=$(grep -c "reloaded" "$APEX_LOG" || true)
check "a good OCSP file at SIGHUP is reloaded" test "$after" -gt "$before"
check "  and served" sh -c "timeout 10 openssl s_client -connect 127.0.0.1:$DOT_PORT -status \
	-CAfile $CERTS/ca.pem -alpn dot </dev/null 2>/dev/null | grep -q 'Cert Status: good'"

stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
finish
