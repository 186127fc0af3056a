#!/usr/bin/env bash
# The README's first command: `sudo tests/demo/run-demo.sh`.
#
# Installs what is missing, builds apexd and apexctl into build/, starts
# our own BIND (127.0.0.1:25300) with the zone example.test signed by
# dnssec-policy and dynamic for a TSIG key made here, and apexd in front
# of it: UDP and TCP on 127.0.0.1:25353, DoT on 25853 and DoH on 25443
# with a throw-away self-signed certificate, the metrics endpoint on
# 25153 and the control socket. apexd keeps the apex's A/AAAA in BIND by
# UPDATE (siblings = update), so the apex validates through apexd. The
# script waits until everything answers, prints commands to try, and
# stays in the foreground until Ctrl-C. Then it stops the two processes
# it started, by PID, and nothing else.
#
# Everything the demo makes (key, certificate, trust anchor, BIND's
# signing keys and journal, logs) is in .run/demo/, emptied at each start.
set -euo pipefail

# APEXD and APEXCTL (below) are taken relative to where the demo is run.
[[ -z ${APEXD:-} ]] || APEXD=$(realpath -m -- "$APEXD")
[[ -z ${APEXCTL:-} ]] || APEXCTL=$(realpath -m -- "$APEXCTL")
cd "$(dirname "$0")/../.."
ROOT=$PWD
DEMO=$ROOT/tests/demo
RUN=$ROOT/.run/demo
# Fixed, as written in named.conf and apexd.ini.
NAMED_PORT=25300
APEX_PORT=25353
DOT_PORT=25853
DOH_PORT=25443
METRICS_PORT=25153
KEY_NAME=demo-update
PIDS=()
SOCK_DIR=

stop_all() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			# A reaped or zombie child is gone for our purpose.
			[[ $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) == Z ]] && break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ ${#PIDS[@]} -gt 0 ]]; then
		echo
		echo "demo: stopping apexd and named"
		stop_all
	fi
	# Only the directory made below for a socket path too long for .run/.
	if [[ -n $SOCK_DIR ]]; then
		rm -rf -- "$SOCK_DIR"
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 0' INT TERM

port_busy() {
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    # As apexd and named bind TCP: a connection of the last run still in
    # TIME_WAIT (after a curl of the metrics) does not make a port busy.
    if kind == socket.SOCK_STREAM:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(0)
    finally:
        s.close()
sys.exit(1)
PY
}

wait_answer() { # PORT NAME: until a NOERROR answer over UDP and TCP, 15 s
	local i
	for ((i = 0; i < 30; i++)); do
		if dig @127.0.0.1 -p "$1" +time=1 +tries=1 "$2" SOA | grep -q 'status: NOERROR' &&
			dig @127.0.0.1 -p "$1" +tcp +time=1 +tries=1 "$2" SOA | grep -q 'status: NOERROR'; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

# BIND signs the zone a moment after loading it: until the apex's A
# carries an RRSIG and the key-signing key is published, 15 s.
wait_signed() {
	local i
	for ((i = 0; i < 30; i++)); do
		if dig @127.0.0.1 -p "$NAMED_PORT" +norec +dnssec +time=1 +tries=1 example.test A |
			grep -q $'\tRRSIG\tA ' &&
			dig @127.0.0.1 -p "$NAMED_PORT" +norec +short +time=1 +tries=1 example.test DNSKEY |
			grep -q '^257 '; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

# The zone's key-signing key as a trust anchor for delv -a (named.conf
# syntax; delv takes static-key and initial-key alike).
write_anchor() {
	local ksk
	ksk=$(dig @127.0.0.1 -p "$NAMED_PORT" +norec +short example.test DNSKEY |
		awk '$1 == 257 { f = $1 " " $2 " " $3; $1 = $2 = $3 = ""; gsub(/ /, ""); print f " \"" $0 "\""; exit }')
	[[ -n $ksk ]] || return 1
	printf 'trust-anchors {\n\texample.test. static-key %s;\n};\n' "$ksk" >"$1"
}

# Sorted addresses of one type at a name, as BIND holds them.
bind_addrs() {
	dig @127.0.0.1 -p "$NAMED_PORT" +norec +short +time=1 +tries=1 "$1" "$2" | sort | tr '\n' ' '
}

# apexd writes the apex's siblings within a few seconds of starting (it
# transfers the zone, chases edge.cdn.test, sends one UPDATE): until
# BIND's apex A and AAAA are edge.cdn.test's, 20 s.
wait_siblings() {
	local i want4 want6
	want4=$(bind_addrs edge.cdn.test A)
	want6=$(bind_addrs edge.cdn.test AAAA)
	for ((i = 0; i < 40; i++)); do
		if [[ $(bind_addrs example.test A) == "$want4" && $(bind_addrs example.test AAAA) == "$want6" ]]; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

echo "demo: bootstrap"
bash "$ROOT/tests/bootstrap.sh"

# APEXD=/path/to/apexd uses that binary instead of building one, and the
# apexctl next to it (or APEXCTL=/path/to/apexctl).
if [[ -z ${APEXD:-} ]]; then
	echo "demo: building apexd and apexctl in build/"
	cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$ROOT/build" --target apexd apexctl -j "$(nproc 2>/dev/null || echo 2)"
	APEXD=$ROOT/build/proxy/apexd
fi
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
if [[ ! -x $APEXCTL ]]; then
	echo "demo: no apexctl at $APEXCTL; set APEXCTL=/path/to/apexctl" >&2
	exit 1
fi

for port in $NAMED_PORT $APEX_PORT $DOT_PORT $DOH_PORT $METRICS_PORT; do
	if port_busy "$port"; then
		echo "demo: 127.0.0.1:$port is in use (another demo running?); stop that first" >&2
		exit 1
	fi
done

# Fresh state each run: the zones are copied, BIND's files (signing keys,
# journal) stay in .run/demo.
rm -rf "$RUN"
mkdir -p "$RUN"
cp "$DEMO/example.test.zone" "$DEMO/cdn.test.zone" "$RUN/"
named-checkzone example.test "$RUN/example.test.zone" >/dev/null || { named-checkzone example.test "$RUN/example.test.zone" >&2; exit 1; }
named-checkzone cdn.test "$RUN/cdn.test.zone" >/dev/null || { named-checkzone cdn.test "$RUN/cdn.test.zone" >&2; exit 1; }

# The TSIG key BIND lets update and transfer example.test, and apexd
# signs with; BIND's own syntax, which dig -k and apexd read as well.
tsig-keygen -a hmac-sha256 "$KEY_NAME" >"$RUN/update.key"
chmod 0600 "$RUN/update.key"
# The DoT/DoH certificate: self-signed, for 127.0.0.1, a week.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
	-subj "/CN=apexd demo" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	-keyout "$RUN/tls.key" -out "$RUN/tls.crt" 2>/dev/null
chmod 0600 "$RUN/tls.key"
# named.conf includes update.key relative to the directory named runs in.
(cd "$RUN" && named-checkconf "$DEMO/named.conf")

# A unix socket path holds at most 107 bytes.
SOCK=$RUN/apexd.sock
if [[ ${#SOCK} -gt 107 ]]; then
	SOCK_DIR=$(mktemp -d /tmp/apexd-demo.XXXXXX)
	SOCK=$SOCK_DIR/apexd.sock
fi
sed -e "s|@RUN@/apexd.sock|$SOCK|" -e "s|@RUN@|$RUN|g" "$DEMO/apexd.ini" >"$RUN/apexd.ini"

if ! "$APEXD" --check-config -c "$RUN/apexd.ini" >"$RUN/check-config.txt" 2>&1; then
	echo "demo: apexd refuses the demo's configuration:" >&2
	cat "$RUN/check-config.txt" >&2
	exit 1
fi

echo "demo: starting named on 127.0.0.1:$NAMED_PORT (log: .run/demo/named.log)"
(cd "$RUN" && exec named -g -n 1 -c "$DEMO/named.conf") >"$RUN/named.log" 2>&1 &
PIDS+=("$!")
if ! wait_answer "$NAMED_PORT" example.test; then
	echo "demo: named did not answer; last lines of its log:" >&2
	tail -n 20 "$RUN/named.log" >&2
	exit 1
fi
if ! wait_signed || ! write_anchor "$RUN/example.test.anchor"; then
	echo "demo: named did not sign example.test; last lines of its log:" >&2
	tail -n 20 "$RUN/named.log" >&2
	exit 1
fi

echo "demo: starting apexd on 127.0.0.1:$APEX_PORT (log: .run/demo/apexd.log)"
"$APEXD" -c "$RUN/apexd.ini" 2>"$RUN/apexd.log" &
PIDS+=("$!")
if ! wait_answer "$APEX_PORT" example.test; then
	echo "demo: apexd did not answer; last lines of its log:" >&2
	tail -n 20 "$RUN/apexd.log" >&2
	exit 1
fi
# The metrics endpoint and the control socket come up just after the
# listeners.
for ((i = 0; i < 20; i++)); do
	[[ -S $SOCK ]] && curl -sf -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" && break
	sleep 0.25
done

SIB_NOTE=
if wait_siblings; then
	echo "demo: apexd wrote edge.cdn.test's addresses into BIND at example.test"
else
	SIB_NOTE=$'    (BIND does not hold edge.cdn.test\'s addresses at the apex yet: see explain below\n     and .run/demo/apexd.log)\n'
fi

cat <<EOT

  apexd is answering on 127.0.0.1:$APEX_PORT (UDP, TCP), :$DOT_PORT (DoT) and :$DOH_PORT (DoH),
  in front of BIND on 127.0.0.1:$NAMED_PORT. Try, in another terminal:

    dig @127.0.0.1 -p $APEX_PORT example.test SOA
    dig @127.0.0.1 -p $APEX_PORT www.example.test AAAA +short
    dig @127.0.0.1 -p $APEX_PORT docs.example.test A          # CNAME chain, BIND's answer relayed
    kdig @127.0.0.1 -p $APEX_PORT +tcp nothere.example.test   # NXDOMAIN, as BIND says
    dig @127.0.0.1 -p $APEX_PORT +tcp -k $RUN/update.key example.test AXFR
                                        # zone transfer through apexd, signed with the demo's TSIG key

  Flattening (BIND holds an ANAME at the apex, a CNAME at shop):
    dig @127.0.0.1 -p $APEX_PORT example.test A               # edge.cdn.test's addresses, no CNAME
    dig @127.0.0.1 -p $APEX_PORT shop.example.test AAAA       # CNAME chain flattened
    dig @127.0.0.1 -p $APEX_PORT promo.example.test A         # an [alias] from apexd.ini
    dig @127.0.0.1 -p $APEX_PORT example.test TYPE65401       # the ANAME, addresses in additional

  Encrypted (a throw-away self-signed certificate, so no verification):
    kdig @127.0.0.1 -p $DOT_PORT +tls example.test A           # DNS over TLS
    kdig @127.0.0.1 -p $DOH_PORT +https example.test AAAA      # DNS over HTTPS, /dns-query
    curl --doh-url https://127.0.0.1:$DOH_PORT/dns-query --doh-insecure http://metrics.example.test:$METRICS_PORT/metrics
                                        # curl resolves metrics.example.test over DoH, then fetches

  DNSSEC (BIND signs example.test; apexd keeps the apex's A/AAAA in BIND by UPDATE):
    dig @127.0.0.1 -p $NAMED_PORT +norec +dnssec example.test A   # at BIND: edge.cdn.test's addresses + RRSIG
    delv -a $RUN/example.test.anchor @127.0.0.1 -p $APEX_PORT example.test A +root=example.test
                                        # the same, validated through apexd (anchor: the zone's KSK)
$SIB_NOTE
  Inside apexd:
    $APEXCTL -s $SOCK explain example.test
    $APEXCTL -s $SOCK stats
    curl http://127.0.0.1:$METRICS_PORT/metrics        # Prometheus text

  Compare with BIND directly: the dig commands with -p $NAMED_PORT.
  Logs: .run/demo/apexd.log and .run/demo/named.log.
  Ctrl-C stops both.

EOT

# Foreground until Ctrl-C, or until one of the two dies on its own.
while true; do
	for pid in "${PIDS[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null ||
			[[ $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) == Z ]]; then
			echo "demo: process $pid exited unexpectedly; see .run/demo/*.log" >&2
			exit 1
		fi
	done
	sleep 1
done
