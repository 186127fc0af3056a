#!/usr/bin/env bash
# DNS over HTTPS (RFC 8484) on apexd's doh listener: HTTP/2 only, at
# doh-path. kdig +https (POST) and +https-get, dig +https, curl (bodies
# byte for byte equal to BIND's answers over TCP; Cache-Control max-age =
# the smallest answer TTL, or the SOA's for a negative answer), curl
# --doh-url resolving a name through apexd and then fetching from a
# loopback HTTP server, every error status (400, 404, 405, 413, 415) on
# one connection that survives each of them, nghttp with many streams on
# one connection, HTTP/1.1 refused at ALPN, flattened answers, a custom
# doh-path, SIGTERM with a request in flight (answered, then GOAWAY), and
# every answer's HEADERS and DATA in one TLS record (raw HTTP/2 client).
# Certificates are verified (curl --cacert, kdig +tls-ca) except by dig
# and nghttp, which do not verify.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_flat_tools
need_tls_tools
need kdig nghttp

start_flat_backend
start_cdn
start_unbound
start_http_server
make_certs

# web.example.test is in no zone file: the [alias] flattens it to
# ns.cdn.test, 127.0.0.1, where http.server listens.
FLAT_INI="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[flatten]
min-ttl = 5s
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test
web.example.test = ns.cdn.test"

# ---------------------------------------------------------------------
say "run 1: DoH at /dns-query"
start_tls_apexd "127.0.0.1:$NAMED_PORT" "$FLAT_INI"
DOH_BASE=https://127.0.0.1:$DOH_PORT
# HTTP error statuses this run provokes; doh_http_errors must match.
ERRORS=0

# Bodies equal to BIND's, Cache-Control max-age the smallest TTL.
for m in post get; do
	M=${m^^}
	check "$M: A, max-age 300" ddoh --method $m --ref "$NAMED_PORT" mail.example.test A --rcode NOERROR --min-answers 1 --max-age 300
	check "$M: CNAME 120 + A 60 (in-zone chain): max-age is the smaller, 60" \
		ddoh --method $m --ref "$NAMED_PORT" inzone.example.test A --rcode NOERROR --min-answers 2 --max-age 60
	check "$M: NXDOMAIN: max-age = SOA min(TTL, MINIMUM) = 300" \
		ddoh --method $m --ref "$NAMED_PORT" nothere.example.test A --rcode NXDOMAIN --max-age 300
	check "$M: NODATA: max-age 300 from the SOA" \
		ddoh --method $m --ref "$NAMED_PORT" mail.example.test AAAA --rcode NOERROR --max-age 300
	check "$M: NS, max-age 3600" ddoh --method $m --ref "$NAMED_PORT" example.test NS --rcode NOERROR --max-age 3600
	check "$M: signed DNSKEY with DO" ddoh --method $m --ref "$NAMED_PORT" --do signed.test DNSKEY --rcode NOERROR --min-answers 3
	check "$M: without EDNS" ddoh --method $m --ref "$NAMED_PORT" --no-edns example.test MX --rcode NOERROR --min-answers 1
	check "$M: ID 4660 relayed (not only ID 0)" ddoh --method $m --ref "$NAMED_PORT" --id 4660 example.test SOA --rcode NOERROR
	check "$M: REFUSED (zone not served), no max-age beyond 0" ddoh --method $m --ref "$NAMED_PORT" example.org A --rcode REFUSED
	# Flattened: max-age equals the flattened TTL (checked against the body).
	check "$M: flattened apex A" ddoh --method $m example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
	check "$M: flattened apex AAAA" ddoh --method $m example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA"
	check "$M: flattened [alias] web.example.test A is 127.0.0.1" ddoh --method $m web.example.test A --rcode NOERROR --addrs 127.0.0.1
	check "$M: flattened NODATA (v4-only target, AAAA): max-age from the SOA" \
		ddoh --method $m noaaaa.example.test AAAA --rcode NOERROR
	check "$M: flattened 40 AAAA (1100+ bytes)" \
		ddoh --method $m --no-edns big.example.test AAAA --rcode NOERROR --addrs "$(cdn_addrs many.cdn.test AAAA)"
	# The same as apexd's answer over plain TCP (TTLs masked).
	for q in "example.test A" "web.example.test A" "noaaaa.example.test AAAA"; do
		# shellcheck disable=SC2086
		check "$M: flattened $q = apexd's over TCP" ddoh --method $m --ref "$APEX_PORT" --mask-ttl $q --rcode NOERROR
	done
done
# Message size limits: a POST carries up to 65535 bytes (RFC 8484 6);
# a GET of a 1500-byte query is a 2 KB URI, served or refused with 414
# URI Too Long, but not taken for another path.
check "POST: 65000-byte query (EDNS padding): BIND's answer" \
	ddoh --ref "$NAMED_PORT" --pad-to 65000 mail.example.test A --rcode NOERROR --min-answers 1
check "POST: 65535-byte query (EDNS padding): BIND's answer" \
	ddoh --ref "$NAMED_PORT" --pad-to 65535 mail.example.test A --rcode NOERROR --min-answers 1
check "GET: 700-byte query (EDNS padding): BIND's answer" \
	ddoh --method get --ref "$NAMED_PORT" --pad-to 700 mail.example.test A --rcode NOERROR --min-answers 1
code=$(curl_h2 -o /dev/null -w '%{http_code}' "$DOH_URL?dns=$(doh_b64 --pad-to 1500 mail.example.test A)" || true)
check "GET: 1500-byte query (2 KB URI): 200 or 414, not 404 (got $code)" bash -c "[[ '$code' == 200 || '$code' == 414 ]]"
[[ $code == 200 ]] || ERRORS=$((ERRORS + 1))

# One flight per answer: HEADERS and DATA (END_STREAM) in one TLS record,
# for GET and for POST (whose HEADERS and DATA arrive in one read), relayed
# and flattened. Two writes would cost the client a second wake-up.
check "answers leave in one TLS record each (relayed, GET and POST)" \
	dd doh-flight --port "$DOH_PORT" mail.example.test A --rcode NOERROR --min-answers 1
check "answers leave in one TLS record each (flattened, GET and POST)" \
	dd doh-flight --port "$DOH_PORT" example.test A --rcode NOERROR --addrs "$WWW_A"

# Real clients.
same_short() {
	local a b
	a=$(dig @127.0.0.1 -p "$NAMED_PORT" +tcp +time=3 +tries=1 +short "$@" 2>&1) || { echo "direct: $a"; return 1; }
	[[ -n $a ]] || { echo "empty answer from BIND"; return 1; }
	b=$(cat)
	[[ $a == "$b" ]] || { diff <(echo "$a") <(echo "$b"); return 1; }
	echo "$b"
}
kdig_https() {
	local mode=$1 out
	shift
	out=$(kdig @127.0.0.1 -p "$DOH_PORT" "$mode" +tls-ca="$TLS_CA" +tls-hostname=localhost \
		+time=3 +retry=0 "$@" 2>&1) || { echo "$out"; return 1; }
	local want=POST
	[[ $mode == +https-get ]] && want=GET
	grep -q "HTTP session (HTTP/2-$want)-(localhost/dns-query)-(status: 200)" <<<"$out" ||
		{ echo "$out"; echo "no HTTP/2 $want status 200 line"; return 1; }
	kdig @127.0.0.1 -p "$DOH_PORT" "$mode" +tls-ca="$TLS_CA" +tls-hostname=localhost \
		+time=3 +retry=0 +short "$@" 2>&1 | same_short "$@"
}
for mode in +https +https-get; do
	check "kdig $mode: MX as BIND's" kdig_https $mode example.test MX
	check "kdig $mode: SOA as BIND's" kdig_https $mode example.test SOA
	check "kdig $mode: CNAME chain as BIND's" kdig_https $mode inzone.example.test A
done
kdig_flat() {
	local out
	out=$(kdig @127.0.0.1 -p "$DOH_PORT" "$1" +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 +short example.test A 2>&1) ||
		{ echo "$out"; return 1; }
	echo "$out"
	[[ $(sort <<<"$out" | tr '\n' ' ' | sed 's/ $//') == "$WWW_A" ]]
}
check "kdig +https: flattened apex A" kdig_flat +https
check "kdig +https-get: flattened apex A" kdig_flat +https-get
kdig_badname() {
	local out
	out=$(kdig @127.0.0.1 -p "$DOH_PORT" +https +tls-ca="$TLS_CA" +tls-hostname=not-localhost.test \
		+time=3 +retry=0 example.test SOA 2>&1) || true
	if grep -q 'status: 200' <<<"$out"; then
		echo "$out"
		return 1
	fi
	echo "refused: $(grep -i -m1 -E 'fail|error|certificate' <<<"$out")"
}
check "kdig +https with another hostname: certificate refused" kdig_badname
dig_https() {
	local mode=$1
	shift
	dig @127.0.0.1 -p "$DOH_PORT" "$mode" +time=3 +tries=1 +short "$@" 2>&1 | same_short "$@"
}
for mode in +https +https-get; do
	check "dig $mode: MX as BIND's" dig_https $mode example.test MX
	check "dig $mode: A as BIND's" dig_https $mode mail.example.test A
done
dig_server_line() {
	local out
	out=$(dig @127.0.0.1 -p "$DOH_PORT" +https +time=3 +tries=1 example.test SOA 2>&1)
	grep -E 'SERVER:|status:' <<<"$out"
	grep -q "SERVER: 127.0.0.1#$DOH_PORT(127.0.0.1) (HTTPS)" <<<"$out" && grep -q 'status: NOERROR' <<<"$out"
}
check "dig +https: answered over HTTPS" dig_server_line

# curl resolves through apexd's DoH (verified with --cacert), then fetches.
doh_url_fetch() {
	local out
	out=$(curl -sS -v --max-time 10 --doh-url "$DOH_URL" --cacert "$TLS_CA" \
		"http://web.example.test:$HTTP_PORT/index.txt" 2>"$T_DIR/doh-url.err") ||
		{ cat "$T_DIR/doh-url.err"; return 1; }
	grep -E 'DoH A:|Connected to web' "$T_DIR/doh-url.err"
	echo "$out"
	[[ $out == "hello from $CASE_NAME" ]] && grep -q 'DoH A: 127.0.0.1' "$T_DIR/doh-url.err"
}
check "curl --doh-url: web.example.test resolved by apexd, page fetched" doh_url_fetch
doh_url_unverified() {
	# The same without the CA: curl must refuse apexd's certificate, so
	# the fetch above really verified it.
	if curl -sS --max-time 10 --doh-url "$DOH_URL" "http://web.example.test:$HTTP_PORT/index.txt" 2>&1; then
		return 1
	fi
	return 0
}
check "curl --doh-url without the test CA: name not resolved" doh_url_unverified

# Every error status on one connection, then a query that still works.
"${DOTDOH[@]}" wire mail.example.test A --out "$T_DIR/q.bin"
Q64=$(doh_b64 mail.example.test A)
head -c 5 /dev/urandom >"$T_DIR/short.bin"
head -c 65536 /dev/zero >"$T_DIR/65536.bin"
head -c 65535 /dev/zero >"$T_DIR/65535.bin"
CT=(-H 'content-type: application/dns-message')
statuses() {
	local fmt='%{http_code} %{num_connects} %{http_version}\n' c
	c=(--http2 --cacert "$TLS_CA" --max-time 10 -o /dev/null -w "$fmt")
	# curl's --next resets the options, so each request repeats them.
	curl -sS -v "${c[@]}" "$DOH_URL?dns=$Q64" \
		--next "${c[@]}" "$DOH_URL?dns=!!not-base64!!" \
		--next "${c[@]}" "$DOH_URL?dns=AAAA" \
		--next "${c[@]}" "$DOH_URL" \
		--next "${c[@]}" "$DOH_URL?ct=application/dns-message" \
		--next "${c[@]}" "${CT[@]}" --data-binary "@$T_DIR/short.bin" "$DOH_URL" \
		--next "${c[@]}" "$DOH_BASE/other?dns=$Q64" \
		--next "${c[@]}" "${CT[@]}" --data-binary "@$T_DIR/q.bin" "$DOH_BASE/dns-query/x" \
		--next "${c[@]}" -X PUT "${CT[@]}" --data-binary "@$T_DIR/q.bin" "$DOH_URL" \
		--next "${c[@]}" -X DELETE "$DOH_URL?dns=$Q64" \
		--next "${c[@]}" "${CT[@]}" --data-binary "@$T_DIR/65536.bin" "$DOH_URL" \
		--next "${c[@]}" "${CT[@]}" --data-binary "@$T_DIR/65535.bin" "$DOH_URL" \
		--next "${c[@]}" -H 'content-type: text/plain' --data-binary "@$T_DIR/q.bin" "$DOH_URL" \
		--next "${c[@]}" -H 'content-type: application/json' --data-binary "@$T_DIR/q.bin" "$DOH_URL" \
		--next "${c[@]}" "${CT[@]}" --data-binary "@$T_DIR/q.bin" "$DOH_URL" \
		--next "${c[@]}" "$DOH_URL?dns=$Q64" \
		2>"$T_DIR/statuses.err" >"$T_DIR/statuses.out"
}
statuses || true
STATUS_NAMES=("GET valid" "GET undecodable base64" "GET base64 of 3 bytes (not DNS)" "GET without dns="
	"GET with another parameter only" "POST 5 random bytes" "GET another path" "POST a longer path"
	"PUT" "DELETE" "POST 65536 bytes" "POST 65535 zero bytes (not DNS)" "POST text/plain"
	"POST application/json" "POST valid after the errors" "GET valid after the errors")
STATUS_WANT=(200 400 400 400 400 400 404 404 405 405 413 400 415 415 200 200)
mapfile -t STATUS_GOT <"$T_DIR/statuses.out"
for i in "${!STATUS_WANT[@]}"; do
	got=${STATUS_GOT[$i]:-none}
	check "status on one connection: ${STATUS_NAMES[$i]} -> ${STATUS_WANT[$i]} (got ${got%% *})" \
		test "${got%% *}" = "${STATUS_WANT[$i]}"
	[[ ${STATUS_WANT[$i]} != 200 ]] && ERRORS=$((ERRORS + 1))
done
one_connection() {
	cat "$T_DIR/statuses.out"
	# num_connects: 1 for the first request, 0 for each one after it.
	[[ $(awk '$2 != 0' "$T_DIR/statuses.out" | wc -l) -eq 1 ]] &&
		[[ $(grep -c 'Re-using existing connection' "$T_DIR/statuses.err") -eq $((${#STATUS_WANT[@]} - 1)) ]] &&
		[[ $(awk '$3 != 2' "$T_DIR/statuses.out" | wc -l) -eq 0 ]]
}
check "all ${#STATUS_WANT[@]} requests over one HTTP/2 connection (it survived each error)" one_connection
check "405 carries allow: GET, POST" bash -c "[[ \$(grep -ci '^< allow: GET, POST' '$T_DIR/statuses.err') -eq 2 ]]"
check "errors carry no DNS content-type" bash -c \
	"! awk '/^< HTTP\\/2 4/{e=1} /^< HTTP\\/2 2/{e=0} e && tolower(\$0) ~ /^< content-type: application\\/dns-message/' '$T_DIR/statuses.err' | grep -q ."

# nghttp: several streams at once on one connection, and methods.
nghttp_streams() {
	local out
	out=$(timeout 15 nghttp -n -s -t 10 "$DOH_URL?dns=$Q64" "$DOH_BASE/nope?dns=$Q64" \
		"$DOH_URL?dns=@@" "$DOH_URL?dns=$(doh_b64 example.test SOA)" 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	[[ $(grep -cE '^ *[0-9]+ .* 200 +[0-9]+ /dns-query\?dns=' <<<"$out") -eq 2 ]] &&
		grep -qE ' 404 +0 /nope' <<<"$out" && grep -qE ' 400 +0 /dns-query\?dns=@@' <<<"$out"
}
check "nghttp: 4 concurrent streams on one connection: 200, 404, 400, 200" nghttp_streams
ERRORS=$((ERRORS + 2))
nghttp_many() {
	local out n
	out=$(timeout 20 nghttp -n -s -t 15 -m 50 "$DOH_URL?dns=$Q64" 2>&1) || { echo "$out" | tail -5; return 1; }
	n=$(grep -cE ' 200 +[0-9]+ /dns-query' <<<"$out")
	echo "$n of 50 streams answered 200"
	[[ $n -eq 50 ]]
}
check "nghttp -m 50: 50 concurrent GETs on one connection, all 200" nghttp_many
nghttp_method() {
	local m=$1 out
	out=$(timeout 10 nghttp -v -t 5 -H ":method: $m" "$DOH_URL?dns=$Q64" 2>&1) || true
	grep -E ':status|allow' <<<"$out"
	grep -q 'recv (stream_id=[0-9]*) :status: 405' <<<"$out" &&
		grep -q 'recv (stream_id=[0-9]*) allow: GET, POST' <<<"$out"
}
check "nghttp :method PUT: 405 with allow" nghttp_method PUT
check "nghttp :method DELETE: 405 with allow" nghttp_method DELETE
check "nghttp :method PATCH: 405 with allow" nghttp_method PATCH
ERRORS=$((ERRORS + 3))

# HTTP/1.1 only: refused at ALPN, so the handshake itself fails.
http11() {
	local rc=0
	curl -sS --http1.1 --cacert "$TLS_CA" --max-time 5 -o /dev/null -w '%{http_code}\n' \
		"$DOH_URL?dns=$Q64" >"$T_DIR/http11.out" 2>&1 || rc=$?
	cat "$T_DIR/http11.out"
	[[ $rc -ne 0 ]] && ! grep -q '^200' "$T_DIR/http11.out"
}
check "curl --http1.1: connection fails" http11
check "ALPN http/1.1 only: handshake refused" dd dot-alpn --port "$DOH_PORT" --offer http/1.1 --expect fail
check "ALPN dot on the DoH port: handshake refused" dd dot-alpn --port "$DOH_PORT" --offer dot --expect fail
check "ALPN h2,http/1.1: h2 selected" dd dot-alpn --port "$DOH_PORT" --offer h2,http/1.1 --expect h2
check "after all this, a DoH query is answered" ddoh --ref "$NAMED_PORT" example.test SOA --rcode NOERROR
check "apexd still running" proc_alive "$APEX_PID"

stop_flat_apexd
check "stats: doh_connections >= 40" stat_is doh_connections -ge 40
check "stats: queries_doh >= 100" stat_is queries_doh -ge 100
check "stats: doh_http_errors = $ERRORS (each error status counted once)" stat_is doh_http_errors -eq "$ERRORS"
check "stats: queries_dot = 0" stat_is queries_dot -eq 0
# start_tls_apexd's readiness probe is one TCP connect to the DoT port.
check "stats: dot_connections <= 1 (the readiness probe)" stat_is dot_connections -le 1
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"

# ---------------------------------------------------------------------
say "run 2: doh-path = /resolve, a silent backend, SIGTERM with a request in flight"
start_blackhole
DOH_PATH=/resolve
start_tls_apexd "127.0.0.1:$BLACKHOLE_PORT" "" timeout=1s
check "/resolve is the path now: /dns-query gets 404" bash -c \
	"[[ \$(curl -sS --http2 --cacert '$TLS_CA' --max-time 5 -o /dev/null -w '%{http_code}' 'https://127.0.0.1:$DOH_PORT/dns-query?dns=$Q64') == 404 ]]"
seen=$(blackhole_count)
timeout 15 nghttp -v -t 10 "$DOH_URL?dns=$(doh_b64 www.example.test A)" >"$T_DIR/inflight.out" 2>&1 &
client=$!
check "the DoH query reached the backend" blackhole_wait $((seen + 1))
stop_apexd TERM 8
check "SIGTERM with a DoH request in flight: exit 0" test "${APEX_RC:-timeout}" = 0
rc=0
wait "$client" || rc=$?
inflight() {
	grep -a -E ':status|GOAWAY|error_code|content-type' "$T_DIR/inflight.out"
	[[ $rc -eq 0 ]] && grep -a -q 'recv (stream_id=[0-9]*) :status: 200' "$T_DIR/inflight.out" &&
		grep -a -q 'recv (stream_id=[0-9]*) content-type: application/dns-message' "$T_DIR/inflight.out"
}
check "the request in flight is answered (200, SERVFAIL from the dead backend)" inflight
goaway() {
	# nghttp -v prints the frame, then its fields on the next line.
	grep -a -A1 'recv GOAWAY frame' "$T_DIR/inflight.out"
	grep -a -A1 'recv GOAWAY frame' "$T_DIR/inflight.out" | grep -q 'error_code=NO_ERROR'
}
check "apexd sent GOAWAY (NO_ERROR)" goaway
check "run 2 stats: queries_doh = 1" stat_is queries_doh -eq 1
finish
