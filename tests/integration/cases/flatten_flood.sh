#!/usr/bin/env bash
# A random-subdomain flood does not turn the target cache over (issue 12,
# item 3). apexd runs with the smallest cache-size (1M); dnsperf sends
# unique names in example.test for 5 s, half of them NXDOMAIN
# (fNNN.example.test), half NODATA under a wildcard TXT
# (fNNN.flood.example.test), so every one is probed for an ANAME. Meanwhile
# a watcher asks the apex (ANAME to www.cdn.test, chased before the flood)
# and, from the second second on, a cold owner under the wildcard ANAME
# (cold.wild.example.test, same target) every 0.4 s: seldom enough that
# the flood passes the whole LRU between two of them (a target that is
# live but not hot). Neither
# may ever get an empty NOERROR or a wrong answer, and unbound (log-queries)
# must see www.cdn.test A exactly once: the target was never evicted and
# re-chased; nor v4only.cdn.test A, the target of noaaaa.example.test,
# asked before and after the flood only. Then apexctl explain shows what the presence cache keeps: an
# "absent" entry for a NODATA name, nothing for an NXDOMAIN name (BIND's
# negative answer is per name and BIND's to cache).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need dnsperf
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock

start_flat_backend
start_cdn
start_unbound
start_flat_apexd "[server]
control = $SOCK
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
cache-size = 1M
min-ttl = 5s
[zone example.test]"

check "CDN serves www.cdn.test" test -n "$WWW_A"
check "apex A flattened before the flood" fq example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
check "the resolver saw www.cdn.test A once" test "$(unbound_count www.cdn.test A)" = 1
# A live target nobody asks for during the flood: its owner's presence
# entry and its addresses must still be there afterwards.
V4_A=$(cdn_addrs v4only.cdn.test A)
check "noaaaa A flattened before the flood" fq noaaaa.example.test A --rcode NOERROR --addrs "$V4_A"
check "the resolver saw v4only.cdn.test A once" test "$(unbound_count v4only.cdn.test A)" = 1

# 150 000 unique names: more than dnsperf sends in 5 s here, so none
# repeats; alternating NXDOMAIN and NODATA.
queries=$T_DIR/flood.txt
"$PY" - "$queries" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(150000):
        zone = "example.test" if i % 2 == 0 else "flood.example.test"
        f.write(f"f{i:07d}.{zone} A\n")
PY
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$queries" -l 5 -Q 30000 -c 8 -t 2 \
	>"$T_DIR/dnsperf.txt" 2>&1 &
perf_pid=$!
PIDS+=("$perf_pid")

# watch PORT SECONDS WANT: the apex and the cold owner, one query each
# every 0.4 s, until SECONDS passed; prints one summary line per name and
# fails on any answer that is not NOERROR with exactly WANT, or when more
# than a tenth of the queries went unanswered (2 s each).
watch() {
	"$PY" - "$@" <<'PY'
import socket, sys, time
import dns.message, dns.rdatatype
port, secs, want = int(sys.argv[1]), float(sys.argv[2]), sorted(sys.argv[3].split())
names = ["example.test", "cold.wild.example.test"]
seen = {n: {"ok": 0, "empty NOERROR": 0, "wrong": 0, "timeout": 0} for n in names}
bad = []
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.settimeout(2.0)
t0 = time.monotonic()
while time.monotonic() - t0 < secs:
    for name in names:
        if name != names[0] and time.monotonic() - t0 < 1.0:
            continue  # cold until the flood is well under way
        q = dns.message.make_query(name, "A", use_edns=0)
        s.send(q.to_wire())
        try:
            while True:
                r = dns.message.from_wire(s.recv(65535))
                if r.id == q.id:
                    break
        except socket.timeout:
            seen[name]["timeout"] += 1
            continue
        got = sorted(rd.address for rr in r.answer for rd in rr if rr.rdtype == dns.rdatatype.A)
        if r.rcode() == 0 and got == want:
            seen[name]["ok"] += 1
            continue
        kind = "empty NOERROR" if r.rcode() == 0 and not got else "wrong"
        seen[name][kind] += 1
        bad.append(f"{time.monotonic() - t0:.2f} s {name}: rcode {r.rcode()} answer {got}")
    time.sleep(0.4)
fail = bool(bad)
for n in names:
    c = seen[n]
    total = sum(c.values())
    print(f"{n}: {total} queries: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    fail |= total == 0 or c["timeout"] * 10 > total
for b in bad[:10]:
    print("  ", b)
sys.exit(1 if fail else 0)
PY
}
watch_rc=0
watch "$APEX_PORT" 6 "$WWW_A" >"$T_DIR/watch.txt" 2>&1 || watch_rc=$?
while read -r line; do say "watch: $line"; done <"$T_DIR/watch.txt"
check "during the flood: apex and cold wildcard owner always flattened" test "$watch_rc" = 0
wait "$perf_pid" 2>/dev/null || true

field() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$T_DIR/dnsperf.txt"; }
say "flood: $(field 'Queries sent') unique names sent, $(field 'Queries completed') answered," \
	"$(field 'Queries per second') per second"
say "flood rcodes: $(grep -o 'Response codes:.*' "$T_DIR/dnsperf.txt")"
check "dnsperf sent a flood (over 10 000 names)" test "$(field 'Queries sent')" -gt 10000
check "the flood's answers include NXDOMAIN and NOERROR" \
	grep -qE 'NOERROR [1-9].*NXDOMAIN [1-9]|NXDOMAIN [1-9].*NOERROR [1-9]' "$T_DIR/dnsperf.txt"
# Before any explain: explain runs a live chase, which unbound logs.
check "apex A flattened after the flood" fq example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
check "noaaaa A flattened after the flood" fq noaaaa.example.test A --rcode NOERROR --addrs "$V4_A"
say "resolver queries for www.cdn.test A: $(unbound_count www.cdn.test A)," \
	"for v4only.cdn.test A: $(unbound_count v4only.cdn.test A)"
check "the resolver saw www.cdn.test A still once: no re-chase" \
	test "$(unbound_count www.cdn.test A)" = 1
check "the resolver saw v4only.cdn.test A still once: no re-chase" \
	test "$(unbound_count v4only.cdn.test A)" = 1
say "apexctl stats: $(ctl stats | grep -E '^(cache_|aname_probes|chases=)' | tr '\n' ' ')"
check "explain after the flood: noaaaa's ANAME still in the presence cache" \
	out_has "present, target v4only.cdn.test., " ctl explain noaaaa.example.test
check "explain after the flood: v4only.cdn.test A still cached" \
	out_has "target cache, v4only.cdn.test. A: addresses, fresh" ctl explain noaaaa.example.test

# What the presence cache keeps for the flood's two kinds of names.
check "a NODATA name: flattening does not apply, BIND's answer" \
	fq x1.flood.example.test A --rcode NOERROR --flag AA --answers 0 --soa example.test
check "explain: the NODATA name's absent ANAME is cached" \
	out_has "absent, " ctl explain x1.flood.example.test
check "an NXDOMAIN name: BIND's NXDOMAIN" fq x1.example.test A --rcode NXDOMAIN
check "explain: nothing cached for the NXDOMAIN name" \
	out_has "not cached: the next query probes the backend [presence cache]" \
	ctl explain x1.example.test
stop_flat_apexd
check "stats: two chases in all (www.cdn.test A, v4only.cdn.test A)" stat_is chases -eq 2
finish
