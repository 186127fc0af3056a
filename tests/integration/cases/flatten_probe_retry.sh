#!/usr/bin/env bash
# ANAME presence probes that get no verdict: a small UDP proxy between
# apexd and BIND drops, or answers SERVFAIL to, the first N queries of
# type 65401 for chosen names (or all of them). A name that may own an
# ANAME must never get BIND's empty NOERROR from apexd: a lost or failed
# probe is retried and the name flattened, and when no verdict comes in
# time the client gets SERVFAIL with an Extended DNS Error. With
# [cache] answers = yes, the NODATA BIND gives such a name must not be
# kept either, while a plain name of the zone still is.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_cdn
start_unbound

# The proxy: every query goes to BIND from a fresh socket and BIND's answer
# back to apexd, except the TYPE65401 queries its rules name:
#   NAME=drop:N       the first N are dropped (N = all: every one)
#   NAME=servfail:N   the first N are answered SERVFAIL (AA=0) at once
#   NAME=stale:N      the first N go to BIND and come back with every TTL
#                     set to 1 (the presence entry expires at once), the
#                     later ones are dropped
# Each query it receives is logged to PROXY_LOG as "NAME TYPE".
PROXY_LOG=$T_DIR/proxy.extra.log
start_probe_proxy() {
	local ready=$T_DIR/proxy.ready i
	PROXY_PORT=$(new_port)
	: >"$PROXY_LOG"
	rm -f "$ready"
	"$PY" - "$PROXY_PORT" "$NAMED_PORT" "$ready" "$PROXY_LOG" "$@" <<'PY' &
import selectors, socket, sys, time
import dns.flags, dns.message, dns.rcode, dns.rdatatype
port, backend, ready, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rules = {}
for r in sys.argv[5:]:
    name, _, what = r.partition("=")
    mode, _, n = what.partition(":")
    rules[name.lower().rstrip(".") + "."] = [mode, float("inf") if n == "all" else int(n)]
sel = selectors.DefaultSelector()
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(("127.0.0.1", port))
sel.register(front, selectors.EVENT_READ, None)
pending = {}  # upstream socket -> (peer, deadline)
open(ready, "w").close()
with open(log, "a", buffering=1) as seen:
    while True:
        for key, _ in sel.select(0.5):
            if key.data is None:
                data, peer = front.recvfrom(65535)
                try:
                    q = dns.message.from_wire(data)
                    name = q.question[0].name.to_text().lower()
                    rdtype = q.question[0].rdtype
                except Exception:
                    continue
                seen.write(f"{name} {dns.rdatatype.to_text(rdtype)}\n")
                rule = rules.get(name)
                ttl1 = False
                if rdtype == 65401 and rule is not None and rule[0] == "stale":
                    ttl1 = rule[1] > 0
                    rule[1] -= 1
                    if not ttl1:
                        continue
                elif rdtype == 65401 and rule is not None and rule[1] > 0:
                    rule[1] -= 1
                    if rule[0] == "servfail":
                        r = dns.message.make_response(q)
                        r.set_rcode(dns.rcode.SERVFAIL)
                        front.sendto(r.to_wire(), peer)
                    continue
                up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.setblocking(False)
                up.sendto(data, ("127.0.0.1", backend))
                sel.register(up, selectors.EVENT_READ, "up")
                pending[up] = (peer, time.monotonic() + 5, ttl1)
            else:
                up = key.fileobj
                try:
                    data = up.recv(65535)
                    if pending[up][2]:
                        r = dns.message.from_wire(data)
                        for rrset in r.answer + r.authority:
                            rrset.ttl = 1
                        data = r.to_wire()
                    front.sendto(data, pending[up][0])
                except OSError:
                    pass
                sel.unregister(up)
                up.close()
                del pending[up]
        now = time.monotonic()
        for up in [u for u, (_, dl, _) in pending.items() if dl < now]:
            sel.unregister(up)
            up.close()
            del pending[up]
PY
	PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		[[ -e $ready ]] && return 0
		sleep 0.1
	done
	fail "probe proxy did not start"
	finish
}
# proxy_saw NAME TYPE: queries for NAME (no trailing dot) and TYPE the
# proxy received.
proxy_saw() { grep -ciE "^${1//./\\.}\. $2\$" "$PROXY_LOG" || true; }

start_probe_proxy example.test=drop:1 a1.wild.example.test=servfail:1 \
	a2.wild.example.test=drop:all a3.wild.example.test=servfail:all \
	b1.wild.example.test=servfail:1 c1.wild.example.test=stale:1 signed.test=drop:all
BIND_PORT=$NAMED_PORT
NAMED_PORT=$PROXY_PORT
say "probe proxy on port $PROXY_PORT in front of BIND on $BIND_PORT"

start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[cache]
answers = yes
[zone example.test]
[zone signed.test]" threads=1

# The first probe datagram for the apex is lost: retried, flattened.
check "apex A: first probe lost, flattened after a retry" \
	fq example.test A --rcode NOERROR --addrs "$WWW_A" --max-ms 2000
check "the proxy saw 2 probes for the apex" test "$(proxy_saw example.test TYPE65401)" -eq 2
# A SERVFAIL to the probe is no verdict either: retried, flattened.
check "wildcard owner: probe SERVFAIL once, flattened after a retry" \
	fq a1.wild.example.test A --rcode NOERROR --addrs "$WWW_A" --max-ms 2000
# No verdict at all by the deadline: SERVFAIL with an EDE, within the
# deadline (1500 ms) and some slack; never BIND's empty NOERROR.
rc=0
out=$(fq a2.wild.example.test A --rcode SERVFAIL --ede-any --max-ms 2500) || rc=$?
say "$out"
check "every probe lost: SERVFAIL with an EDE" test "$rc" -eq 0
check "every probe lost: the probe was tried more than once" \
	test "$(proxy_saw a2.wild.example.test TYPE65401)" -ge 2
check "every probe SERVFAIL: SERVFAIL with an EDE" \
	fq a3.wild.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
check "AAAA too: never an empty NOERROR" \
	fq a2.wild.example.test AAAA --rcode SERVFAIL --ede-any --max-ms 2500
# A signed NODATA for DO=1 is relayed whatever the ANAME says: it stays.
check "signed zone, DO=1, probe lost: BIND's signed NODATA" \
	fq signed.test AAAA --do --rcode NOERROR --answers 0 --rrsig yes --max-ms 2500
check "signed zone, DO=0, probe lost: SERVFAIL with an EDE" \
	fq signed.test AAAA --rcode SERVFAIL --ede-any --max-ms 2500

# An expired presence entry stands in when the new probe gets no verdict
# (RFC 8767 for presence): flattened, marked stale (EDE 3).
check "presence verdict with TTL 1: flattened" \
	fq c1.wild.example.test A --rcode NOERROR --addrs "$WWW_A" --no-ede
sleep 2.2
check "expired presence, probe lost: flattened from the stale verdict" \
	fq c1.wild.example.test A --rcode NOERROR --addrs "$WWW_A" --ede 3 --max-ms 2500

# [cache] answers: an owner whose probe failed once is flattened on the
# next query, not answered with a NODATA the answer cache kept.
fq b1.wild.example.test A || true
check "owner whose probe failed once: flattened on the next query" \
	fq b1.wild.example.test A --rcode NOERROR --addrs "$WWW_A"
# A plain name in the configured zone keeps being cached: the third
# query for it never reaches BIND.
for i in 1 2 3; do
	check "plain name mail.example.test, round $i" \
		fq mail.example.test A --rcode NOERROR --addrs 192.0.2.25
done
check "plain name: BIND asked at most twice for 3 queries" \
	test "$(proxy_saw mail.example.test A)" -le 2

stop_flat_apexd
check "stats: answers served from the answer cache" stat_is answers_cached -ge 1
check "stats: probes retried" stat_is aname_probe_retries -ge 4
check "stats: probes that got no verdict" stat_is aname_probe_failed -ge 4
check "stats: a stale presence entry used" stat_is aname_probe_stale_used -eq 1
# aname_probes counts what went out: every probe the proxy received.
check "stats: aname_probes = probes the backend received" \
	stat_is aname_probes -eq "$(grep -c ' TYPE65401$' "$PROXY_LOG")"
finish
