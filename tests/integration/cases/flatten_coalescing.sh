#!/usr/bin/env bash
# Coalescing: 100 clients ask for one cold flattened name at the same
# moment (100 UDP sockets, sent back to back) of an apexd with two worker
# threads; every client gets the right answer, and the resolver sees
# exactly one query for that target and type. A second burst is answered
# from the target cache: still one resolver query. (The ANAME probes go to
# BIND, not to the resolver, so they do not show in unbound's log.)
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
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
min-ttl = 5s
[zone example.test]" threads=2
COLD_A=$(cdn_addrs cold.cdn.test A)
check "CDN serves cold.cdn.test" test "$COLD_A" = 198.51.100.40
check "nobody asked the resolver for cold.cdn.test yet" test "$(unbound_saw cold.cdn.test)" = 0

# burst N NAME TYPE ADDRS: N UDP queries from N sockets at once; every one
# must be answered (within 5 s) with exactly ADDRS owned by NAME, AA set.
burst() {
	"$PY" - "$APEX_PORT" "$@" <<'PY'
import select, socket, sys, time
import dns.flags, dns.message, dns.rdatatype
port, n, name, rdtype, want = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sorted(sys.argv[5].split())
socks = {}
for i in range(n):
    q = dns.message.make_query(name, rdtype, use_edns=0)
    q.id = 1000 + i
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    socks[s] = (q.id, q.to_wire())
t0 = time.monotonic()
for s, (_, wire) in socks.items():
    s.send(wire)
bad, ok = [], 0
while socks and time.monotonic() - t0 < 5.0:
    ready, _, _ = select.select(list(socks), [], [], 0.5)
    for s in ready:
        r = dns.message.from_wire(s.recv(65535))
        qid = socks.pop(s)[0]
        s.close()
        got = sorted(rd.address for rr in r.answer for rd in rr if rr.rdtype == dns.rdatatype.from_text(rdtype))
        owners = {rr.name.to_text() for rr in r.answer}
        if r.id != qid or r.rcode() != 0 or not r.flags & dns.flags.AA or got != want or owners != {name + "."}:
            bad.append(f"id {r.id}: rcode {r.rcode()} flags {dns.flags.to_text(r.flags)} answer {got} owners {owners}")
        else:
            ok += 1
print(f"{ok}/{n} right in {time.monotonic() - t0:.2f} s, {len(socks)} unanswered")
for b in bad[:10]:
    print("  wrong:", b)
sys.exit(0 if ok == n else 1)
PY
}
check "100 concurrent queries for a cold name: all right" burst 100 cold.example.test A "$COLD_A"
check "the resolver saw exactly one query for cold.cdn.test A" test "$(unbound_count cold.cdn.test A)" = 1
check "and none for another type of it" test "$(unbound_saw cold.cdn.test)" = 1
check "100 more (warm): all right" burst 100 cold.example.test A "$COLD_A"
check "still exactly one resolver query for cold.cdn.test" test "$(unbound_saw cold.cdn.test)" = 1
check "100 concurrent AAAA at the apex (cold): all right" burst 100 example.test AAAA "$WWW_AAAA"
check "the resolver saw exactly one query for www.cdn.test AAAA" test "$(unbound_count www.cdn.test AAAA)" = 1
stop_flat_apexd
check "stats: chases = 2 (one per target and type)" stat_is chases -eq 2
check "stats: chase_queries = 2" stat_is chase_queries -eq 2
check "stats: cache_misses = 2" stat_is cache_misses -eq 2
# Whether the 99 others waited on the chase (coalesced) or came after it
# (hits) depends on timing; the resolver count above is what matters. The
# accounting must add up: every lookup is a miss, a hit or a wait.
lookups=$(($(stat_value cache_misses) + $(stat_value cache_hits) + $(stat_value cache_coalesced)))
check "stats: misses + hits + coalesced = 300 lookups ($lookups)" test "$lookups" -eq 300
check "stats: answers_flattened = 300" stat_is answers_flattened -eq 300
check "stats: cache_hits >= 100 (the warm burst)" stat_is cache_hits -ge 100
say "stats: $(grep -o 'cache_[a-z]*=[0-9]*\|chase[a-z_]*=[0-9]*\|aname_probes=[0-9]*' "$APEX_LOG" | tr '\n' ' ')"
finish
