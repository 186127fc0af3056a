#!/usr/bin/env bash
# The README's first command: `sudo tests/demo/run-demo.sh`.
#
# Installs what is missing, builds apexd into build/, starts our own BIND
# (127.0.0.1:25300, zone example.test) and apexd in front of it
# (127.0.0.1:25353, UDP and TCP), waits until both answer, prints a few
# queries to try, and stays in the foreground until Ctrl-C. Then it stops
# the two processes it started, by PID, and nothing else.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
DEMO=$ROOT/tests/demo
RUN=$ROOT/.run/demo
NAMED_PORT=25300
APEX_PORT=25353
PIDS=()

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
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 0' INT TERM

port_busy() {
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
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

echo "demo: bootstrap"
bash "$ROOT/tests/bootstrap.sh"

# APEXD=/path/to/apexd uses that binary instead of building one.
if [[ -z ${APEXD:-} ]]; then
	echo "demo: building apexd in build/"
	cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$ROOT/build" --target apexd -j "$(nproc 2>/dev/null || echo 2)"
	APEXD=$ROOT/build/proxy/apexd
fi

for port in $NAMED_PORT $APEX_PORT; do
	if port_busy "$port"; then
		echo "demo: 127.0.0.1:$port is in use (another demo running?); stop that first" >&2
		exit 1
	fi
done

# Fresh state each run: the zone is copied, BIND's files stay in .run/demo.
rm -rf "$RUN"
mkdir -p "$RUN"
cp "$DEMO/example.test.zone" "$DEMO/cdn.test.zone" "$RUN/"
named-checkconf "$DEMO/named.conf"
named-checkzone example.test "$RUN/example.test.zone" >/dev/null || { named-checkzone example.test "$RUN/example.test.zone" >&2; exit 1; }
named-checkzone cdn.test "$RUN/cdn.test.zone" >/dev/null || { named-checkzone cdn.test "$RUN/cdn.test.zone" >&2; exit 1; }

echo "demo: starting named on 127.0.0.1:$NAMED_PORT (log: .run/demo/named.log)"
(cd "$RUN" && exec named -g -n 1 -c "$DEMO/named.conf") >"$RUN/named.log" 2>&1 &
PIDS+=("$!")
if ! wait_answer "$NAMED_PORT" example.test; then
	echo "demo: named did not answer; last lines of its log:" >&2
	tail -n 20 "$RUN/named.log" >&2
	exit 1
fi

echo "demo: starting apexd on 127.0.0.1:$APEX_PORT (log: .run/demo/apexd.log)"
"$APEXD" -c "$DEMO/apexd.ini" 2>"$RUN/apexd.log" &
PIDS+=("$!")
if ! wait_answer "$APEX_PORT" example.test; then
	echo "demo: apexd did not answer; last lines of its log:" >&2
	tail -n 20 "$RUN/apexd.log" >&2
	exit 1
fi

cat <<EOT

  apexd is answering on 127.0.0.1:$APEX_PORT, in front of BIND on 127.0.0.1:$NAMED_PORT.
  Try, in another terminal:

    dig @127.0.0.1 -p $APEX_PORT example.test SOA
    dig @127.0.0.1 -p $APEX_PORT www.example.test AAAA +short
    dig @127.0.0.1 -p $APEX_PORT docs.example.test A          # CNAME chain, BIND's answer relayed
    dig @127.0.0.1 -p $APEX_PORT +tcp example.test AXFR       # zone transfer through apexd
    kdig @127.0.0.1 -p $APEX_PORT +tcp nothere.example.test   # NXDOMAIN, as BIND says

  Flattening (BIND holds an ANAME at the apex, a CNAME at shop):
    dig @127.0.0.1 -p $APEX_PORT example.test A               # edge.cdn.test's addresses, no CNAME
    dig @127.0.0.1 -p $APEX_PORT shop.example.test AAAA       # CNAME chain flattened
    dig @127.0.0.1 -p $APEX_PORT promo.example.test A         # an [alias] from apexd.ini
    dig @127.0.0.1 -p $APEX_PORT example.test TYPE65401       # the ANAME, addresses in additional

  Compare with BIND directly: the same commands with -p $NAMED_PORT.
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
