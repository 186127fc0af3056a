# shellcheck shell=bash
# Helpers for the DNS-over-TLS / DNS-over-HTTPS cases (cases/tls_*.sh).
# Sourced after lib.sh (and flatlib.sh where a case flattens); uses their
# harness (T_DIR, PIDS, new_port, check, write_ini, ...).
#
#   make_certs          a throwaway CA and a localhost leaf, made by
#                       tests/data/tls/make-certs.sh into $T_DIR/tls:
#                       TLS_CA, TLS_CERT (fullchain), TLS_KEY
#   start_tls_apexd     apexd with udp/tcp (lib.sh's INI) plus dot, doh and
#                       [tls]; DOT_PORT, DOH_PORT, DOH_URL
#   start_http_server   python's http.server on 127.0.0.1:HTTP_PORT serving
#                       $T_DIR/www (curl --doh-url fetches from it)
#   dd ...              tests/integration/dotdoh.py with the CA given
#   doh_b64 NAME TYPE   base64url (no padding) of a wire query, ID 0
# Every process is our child, recorded in PIDS, stopped by lib.sh's cleanup.

DOTDOH=("$PY" "$INT_DIR/dotdoh.py")
TLS_DIR=$T_DIR/tls
TLS_CA=$TLS_DIR/ca.pem
TLS_CERT=$TLS_DIR/fullchain.pem
TLS_KEY=$TLS_DIR/server.key
DOT_PORT=
DOH_PORT=
DOH_PATH=/dns-query
DOH_URL=
HTTP_PORT=
# TLS_MIN_VERSION: [tls] min-version for the next start_tls_apexd (empty:
# the key is left out and apexd's default, 1.2, applies).
TLS_MIN_VERSION=

need_tls_tools() {
	need openssl curl
	need_python_dns
}

make_certs() {
	[[ -s $TLS_CA ]] && return 0
	if ! sh "$APEX_SOURCE_DIR/tests/data/tls/make-certs.sh" "$TLS_DIR" >"$T_DIR/make-certs.out" 2>&1; then
		cat "$T_DIR/make-certs.out"
		fail "make-certs.sh failed"
		finish
	fi
}

# wait_tcp PORT: until 127.0.0.1:PORT accepts a TCP connection (5 s).
wait_tcp() {
	local i
	for ((i = 0; i < 50; i++)); do
		"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_tls_apexd BACKEND EXTRA_INI [write_ini overrides...]: apexd on
# APEX_PORT (udp, tcp), DOT_PORT (dot) and DOH_PORT (doh at DOH_PATH) with
# the test certificate; EXTRA_INI is appended (resolver, zones, aliases).
start_tls_apexd() {
	local backend=$1 extra=$2 ini=$T_DIR/apexd.ini
	shift 2
	find_apexd
	make_certs
	for _ in 1 2 3; do
		APEX_PORT=$(new_port)
		DOT_PORT=$(new_port)
		DOH_PORT=$(new_port)
		DOH_URL=https://127.0.0.1:$DOH_PORT$DOH_PATH
		write_ini "$ini.base" "$APEX_PORT" "$backend" "$@"
		# dot/doh belong in [listen]: insert them after its header.
		awk -v dot="$DOT_PORT" -v doh="$DOH_PORT" -v path="$DOH_PATH" '
			{ print }
			/^\[listen\]$/ {
				print "dot = 127.0.0.1:" dot
				print "doh = 127.0.0.1:" doh
				print "doh-path = " path
			}' "$ini.base" >"$ini"
		{
			printf '\n[tls]\ncertificate = %s\nprivate-key = %s\n' "$TLS_CERT" "$TLS_KEY"
			[[ -n $TLS_MIN_VERSION ]] && printf 'min-version = %s\n' "$TLS_MIN_VERSION"
			printf '\n%s\n' "$extra"
		} >>"$ini"
		"$APEXD" -c "$ini" 2>"$APEX_LOG" >&2 &
		APEX_PID=$!
		PIDS+=("$APEX_PID")
		if wait_dns "$APEX_PORT" && wait_tcp "$DOT_PORT" && wait_tcp "$DOH_PORT" &&
			proc_alive "$APEX_PID"; then
			say "apexd pid $APEX_PID: udp/tcp $APEX_PORT, dot $DOT_PORT, doh $DOH_PORT"
			return 0
		fi
		stop_pid "$APEX_PID"
		grep -qi 'address.*in use\|EADDRINUSE' "$APEX_LOG" || break
		say "a port was taken, retrying"
	done
	sed 's/^/    /' "$ini"
	fail "apexd with DoT/DoH did not start (see its log below)"
	finish
}

# dd SUBCOMMAND ARGS...: dotdoh.py with the test CA, against DOT_PORT.
dd() {
	local sub=$1
	shift
	"${DOTDOH[@]}" "$sub" --ca "$TLS_CA" --port "$DOT_PORT" "$@"
}

# ddoh ARGS...: one DoH request through curl, checked by dotdoh.py.
ddoh() { dd doh --url "$DOH_URL" "$@"; }

# doh_b64 NAME TYPE [wire options]: the ?dns= value for a query (ID 0).
doh_b64() { "${DOTDOH[@]}" wire --b64url "$@"; }

# curl_h2 ARGS...: curl over HTTP/2 with the test CA (verified), bounded.
curl_h2() { curl -sS --http2 --cacert "$TLS_CA" --max-time 10 "$@"; }

# start_http_server: a static HTTP server on 127.0.0.1:HTTP_PORT, serving
# $T_DIR/www (index.txt holds a line naming this case).
start_http_server() {
	local dir=$T_DIR/www i pid
	mkdir -p "$dir"
	echo "hello from $CASE_NAME" >"$dir/index.txt"
	for _ in 1 2 3; do
		HTTP_PORT=$(new_port)
		"$PY" -m http.server --bind 127.0.0.1 --directory "$dir" "$HTTP_PORT" \
			>"$T_DIR/http.extra.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for ((i = 0; i < 50; i++)); do
			if curl -sS --max-time 1 -o /dev/null "http://127.0.0.1:$HTTP_PORT/index.txt" 2>/dev/null; then
				say "http.server pid $pid on port $HTTP_PORT"
				return 0
			fi
			proc_alive "$pid" || break
			sleep 0.1
		done
		stop_pid "$pid"
	done
	fail "http.server did not start"
	finish
}
