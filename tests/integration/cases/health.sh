#!/usr/bin/env bash
# [health] checks of the addresses flattened answers carry (issue 17).
#
# A CDN zone of our own (hcdn.test, in a named of this case) gives two
# targets three loopback addresses each; the case runs its own small TCP,
# TLS and HTTP listeners on those addresses (healthsrv.py), so every
# probe apexd sends goes to a server of this case and nowhere else.
#   hc.example.test = tcp.hcdn.test  (127.0.71.1-3), [zone] check = tcp:P
#   hc.other.test   = tls.hcdn.test  (127.0.72.1-3), [zone] check = tls:P
#   hp.example.test = tcp.hcdn.test, tcp2.hcdn.test (127.0.73.1-2): a pool,
#                     failover, then union after a reload
# with interval 200ms, timeout 200ms, fall 2, rise 2. A listener stopped
# takes its address out of the answers, started again brings it back;
# every address down serves them all (fail open, logged and counted); a
# certificate for another name is down under tls:; a reload to http:
# drops the TLS checks and judges by the status (500 is down).
# Waits are polls with a bound (10 s), never timing assertions.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need openssl
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock
HSRV=("$PY" "$INT_DIR/healthsrv.py")
HLOG=$T_DIR/healthsrv.log

# ---- the CDN: hcdn.test in a named of our own --------------------------------
hcdn_conf() {
	named_options "$1" "$2"
	printf '\tnotify no;\n};\ncontrols { };\n'
	printf 'zone "hcdn.test" { type primary; file "hcdn.test.zone"; };\n'
}
mkdir -p "$T_DIR/hcdn"
cat >"$T_DIR/hcdn/hcdn.test.zone" <<'EOF'
$TTL 300
@	SOA	ns1.hcdn.test. hostmaster.hcdn.test. 1 3600 600 86400 300
@	NS	ns1
ns1	A	127.0.0.1
tcp	A	127.0.71.1
tcp	A	127.0.71.2
tcp	A	127.0.71.3
tls	A	127.0.72.1
tls	A	127.0.72.2
tls	A	127.0.72.3
tcp2	A	127.0.73.1
tcp2	A	127.0.73.2
EOF
run_named "$T_DIR/hcdn" "$T_DIR/hcdn.extra.log" hcdn_conf hcdn.test || {
	fail "hcdn named did not start"
	finish
}
HCDN_PORT=$RUN_PORT
start_flat_backend
UNBOUND_WAIT_ZONE=hcdn.test
start_unbound "" "hcdn.test=127.0.0.1@$HCDN_PORT"

# ---- certificates: a test CA, one leaf for hc.other.test, one for another name
TLSD=$T_DIR/certs
mkdir -p "$TLSD"
make_leaf() { # NAME FILE-PREFIX
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TLSD/$2.key" \
		-out "$TLSD/$2.csr" -subj "/CN=$1" 2>/dev/null &&
		printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$1" >"$TLSD/$2.ext" &&
		openssl x509 -req -in "$TLSD/$2.csr" -CA "$TLSD/ca.pem" -CAkey "$TLSD/ca.key" -CAcreateserial \
			-out "$TLSD/$2.pem" -days 2 -extfile "$TLSD/$2.ext" 2>/dev/null
}
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TLSD/ca.key" \
	-out "$TLSD/ca.pem" -days 2 -subj "/CN=apexd health test CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>"$T_DIR/openssl.out" ||
	! make_leaf hc.other.test good || ! make_leaf wrong.example.net wrong; then
	cat "$T_DIR/openssl.out"
	fail "openssl could not make the test certificates"
	finish
fi
# apexd verifies with OpenSSL's default trust store: pointed at our CA.
export SSL_CERT_FILE=$TLSD/ca.pem

# ---- listeners ---------------------------------------------------------------
P=$(new_port)
P2=$(new_port)
declare -A LPID
# listen ADDR PORT MODE [ARGS...]: starts healthsrv.py, waits until it accepts.
listen() {
	local addr=$1 port=$2 mode=$3 i
	shift 3
	"${HSRV[@]}" "$addr" "$port" "$mode" --log "$HLOG" "$@" >>"$T_DIR/healthsrv.out" 2>&1 &
	LPID[$addr:$port]=$!
	PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		grep -q "listening $addr $port" "$T_DIR/healthsrv.out" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "listener $addr:$port ($mode) did not start"
	cat "$T_DIR/healthsrv.out"
	return 1
}
unlisten() { stop_pid "${LPID[$1:$2]}"; }

for i in 1 2 3; do listen "127.0.71.$i" "$P" tcp; done
for i in 1 2; do listen "127.0.73.$i" "$P" tcp; done
listen 127.0.72.1 "$P" tls --cert "$TLSD/good.pem" --key "$TLSD/good.key"
listen 127.0.72.2 "$P" tls --cert "$TLSD/wrong.pem" --key "$TLSD/wrong.key"
listen 127.0.72.3 "$P" tls --cert "$TLSD/good.pem" --key "$TLSD/good.key"

MPORT=$(new_port)
start_flat_apexd "[server]
control = $SOCK
[listen]
metrics = 127.0.0.1:$MPORT
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
pool = failover
[health]
interval = 200ms
timeout = 200ms
fall = 2
rise = 2
[zone example.test]
check = tcp:$P
[zone other.test]
check = tls:$P
[alias]
hc.example.test = tcp.hcdn.test
hp.example.test = tcp.hcdn.test, tcp2.hcdn.test
hc.other.test = tls.hcdn.test"

metrics() { "$PY" -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://127.0.0.1:$MPORT/metrics"; }
# addrs NAME: the A records apexd answers for NAME, sorted, one line.
addrs() {
	dig @127.0.0.1 -p "$APEX_PORT" +time=2 +tries=1 +nocookie +short "$1" A | sort | tr '\n' ' ' | sed 's/ $//'
}
# answers_become NAME WANT: polls NAME's answer until it is WANT (10 s at most).
answers_become() {
	local name=$1 want=$2 got i t0=$SECONDS
	for ((i = 0; i < 100; i++)); do
		got=$(addrs "$name")
		if [[ $got == "$want" ]]; then
			echo "$name: $got after about $((SECONDS - t0)) s"
			return 0
		fi
		sleep 0.1
	done
	echo "$name: still \"$got\", want \"$want\""
	return 1
}
# log_has TEXT: apexd's log has TEXT within 10 s.
log_has() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -qF "$1" "$APEX_LOG" && return 0
		sleep 0.1
	done
	echo "not in apexd's log: $1"
	return 1
}

TCP_ALL="127.0.71.1 127.0.71.2 127.0.71.3"
check "tcp: every address served while unknown, then checked and up" \
	answers_become hc.example.test "$TCP_ALL"
check "tcp: the checker finds them up (health_checks_ok)" \
	bash -c "sleep 1; v=\$('$APEXCTL' -s '$SOCK' stats | sed -n 's/^health_checks_ok=//p'); echo ok=\$v; [[ \$v -ge 3 ]]"
check "tcp: all three still served" answers_become hc.example.test "$TCP_ALL"

unlisten 127.0.71.2 "$P"
check "tcp: a stopped listener's address leaves the answers" \
	answers_become hc.example.test "127.0.71.1 127.0.71.3"
check "tcp: the owner spelled in another case is filtered the same" \
	answers_become HC.Example.TEST "127.0.71.1 127.0.71.3"
check "tcp: logged once as down, with the reason" log_has "127.0.71.2 of hc.example.test is down (tcp:$P): connection refused"
check "explain: the address is down, and why" \
	out_has "127.0.71.2: down (connection refused" ctl explain hc.example.test A
check "explain: the others are up" out_has "127.0.71.1: up" ctl explain hc.example.test A
listen 127.0.71.2 "$P" tcp
check "tcp: started again, it comes back" answers_become hc.example.test "$TCP_ALL"
check "tcp: logged as up again" log_has "127.0.71.2 of hc.example.test is up again"

for i in 1 2 3; do unlisten "127.0.71.$i" "$P"; done
check "all down: logged, serving all (fail open)" \
	log_has "every IPv4 address of hc.example.test is down (tcp:$P): serving all (fail open)"
check "all down: every address is served" answers_become hc.example.test "$TCP_ALL"
check "all down: fail-open answers are counted" \
	bash -c "v=\$('$APEXCTL' -s '$SOCK' stats | sed -n 's/^answers_health_fail_open=//p'); echo \$v; [[ \$v -ge 1 ]]"
check "explain: says it fails open" out_has "every address is down: all are served (fail open)" \
	ctl explain hc.example.test A
for i in 1 2 3; do listen "127.0.71.$i" "$P" tcp; done
check "fail open ends when they come back" log_has "hc.example.test has IPv4 addresses up again (tcp:$P): fail open ends"

# ---- a pool under health: failover moves on when the first target is down ----------
TCP2_ALL="127.0.73.1 127.0.73.2"
check "pool, failover: the first target's addresses" answers_become hp.example.test "$TCP_ALL"
for i in 1 2 3; do unlisten "127.0.71.$i" "$P"; done
check "pool, failover: every address of the first target down -> the second target's" \
	answers_become hp.example.test "$TCP2_ALL"
unlisten 127.0.73.2 "$P"
check "pool, failover: the second target's down address left out" \
	answers_become hp.example.test "127.0.73.1"
unlisten 127.0.73.1 "$P"
check "pool, failover: everything down -> fail open with the first target's" \
	answers_become hp.example.test "$TCP_ALL"
for i in 1 2; do listen "127.0.73.$i" "$P" tcp; done
check "pool, failover: the second target back, it answers again" \
	answers_become hp.example.test "$TCP2_ALL"
for i in 1 2 3; do listen "127.0.71.$i" "$P" tcp; done
check "pool, failover: the first target back, failover returns to it" \
	answers_become hp.example.test "$TCP_ALL"

# ---- tls: ----------------------------------------------------------------------
check "tls: the address whose certificate names another host is down" \
	answers_become hc.other.test "127.0.72.1 127.0.72.3"
check "tls: the reason is the certificate" \
	out_has "127.0.72.2: down (certificate:" ctl explain hc.other.test A
check "tls: counted as cert failures" \
	bash -c "v=\$('$APEXCTL' -s '$SOCK' stats | sed -n 's/^health_checks_cert=//p'); echo \$v; [[ \$v -ge 2 ]]"
check "metrics: addresses per owner and state" \
	out_has 'apexd_health_addresses{owner="hc.other.test",family="ipv4",state="down"} 1' metrics

metrics_ok() { metrics >"$T_DIR/m.txt" && "$PY" "$INT_DIR/promcheck.py" check "$T_DIR/m.txt" --prefix apexd_; }
check "metrics: well-formed with the health families" metrics_ok
check "metrics: checks by result" grep -q 'apexd_health_checks_total{result="cert"}' "$T_DIR/m.txt"

# ---- reload to http: -------------------------------------------------------------
listen 127.0.72.1 "$P2" http
listen 127.0.72.2 "$P2" http
listen 127.0.72.3 "$P2" http --status 500
sed -i "s|^check = tls:$P\$|check = http:$P2/healthz|" "$T_DIR/apexd.ini"
kill -HUP "$APEX_PID"
check "reload applied" log_has "reload: configuration reloaded"
check "http: status 500 is down, the address the TLS check kept out is back" \
	answers_become hc.other.test "127.0.72.1 127.0.72.2"
check "http: GET PATH with Host: the owner" grep -q "127.0.72.1 http GET /healthz HTTP/1.1 Host: hc.other.test" "$HLOG"
tls_checks() { grep -c ' tls' "$HLOG" || true; }
no_more_tls() {
	local a b
	a=$(tls_checks)
	sleep 1.5
	b=$(tls_checks)
	echo "TLS connections: $a, then $b"
	[[ $a -eq $b ]]
}
check "reload: the TLS checks nobody uses any more stopped" no_more_tls
check "probes went only to the case's own addresses" \
	bash -c "! grep -vE '^127\\.0\\.7[123]\\.[123] ' '$HLOG'"

# ---- the same pool as a union ------------------------------------------------------
sed -i 's|^pool = failover$|pool = union|' "$T_DIR/apexd.ini"
kill -HUP "$APEX_PID"
reloads_are() { local i; for ((i = 0; i < 100; i++)); do [[ $(grep -c "reload: configuration reloaded" "$APEX_LOG") -ge $1 ]] && return 0; sleep 0.1; done; return 1; }
check "reload to pool = union applied" reloads_are 2
check "pool, union: every target's addresses" \
	answers_become hp.example.test "127.0.71.1 127.0.71.2 127.0.71.3 $TCP2_ALL"
unlisten 127.0.71.3 "$P"
unlisten 127.0.73.1 "$P"
check "pool, union: the down addresses of both targets left out" \
	answers_become hp.example.test "127.0.71.1 127.0.71.2 127.0.73.2"

stop_flat_apexd
check "stats: fail-open answers in the exit line" stat_is answers_health_fail_open -ge 1
check "stats: addresses filtered out of answers" stat_is health_filtered -ge 3
finish
