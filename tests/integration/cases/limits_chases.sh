#!/usr/bin/env bash
# The cap on chases in flight (PX_CHASE_MAX_INFLIGHT, 1024 per worker).
# 1 400 [alias] owners each point at their own target, and the only
# resolver is silent, so every chase waits for its timeout. A burst of one
# query per owner over UDP: every query is still answered by the
# [flatten] deadline (SERVFAIL + EDE: the resolver's timeout for those
# that got a chase, "too many targets" for those past the cap), apexd
# never has more than 1 024 chases out (the resolver sees at most that
# many queries), chase_refused counts the rest, plain UDP service goes on,
# and once the chases are over a refused owner is chased normally again
# (nothing was cached for it).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_flat_tools

N=1400
CAP=1024
start_flat_backend
start_blackhole
aliases=$(for ((i = 0; i < N; i++)); do echo "o$i.example.test = t$i.cdn.test"; done)
# threads = 1: the cap is per worker.
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$BLACKHOLE_PORT
timeout = 1s
[flatten]
deadline = 1500ms
failure-ttl = 0
[zone example.test]
[alias]
$aliases" threads=1

burst() {
	"$PY" - "$APEX_PORT" "$N" <<'PY'
import socket, sys, time
import dns.message, dns.rcode
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
ids = {}
t0 = time.monotonic()
for i in range(n):
    q = dns.message.make_query(f"o{i}.example.test", "A", use_edns=0)
    q.id = i
    ids[i] = None
    s.sendto(q.to_wire(), ("127.0.0.1", port))
s.settimeout(0.2)
last = 0.0
while time.monotonic() - t0 < 5 and any(v is None for v in ids.values()):
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        continue
    r = dns.message.from_wire(data)
    edes = [o for o in r.options if o.otype == 15]
    ids[r.id] = (r.rcode(), edes[0].text if edes else "")
    last = time.monotonic() - t0
answered = [v for v in ids.values() if v is not None]
servfail = [v for v in answered if v[0] == dns.rcode.SERVFAIL]
capped = [v for v in servfail if "too many" in (v[1] or "")]
print(f"answered={len(answered)} servfail={len(servfail)} capped={len(capped)} last_s={last:.2f}")
ok = len(answered) == n and len(servfail) == n and capped and last < 2.5
sys.exit(0 if ok else 1)
PY
}
check "$N distinct targets at once: all answered SERVFAIL + EDE by the deadline, some capped" burst
check "plain UDP answered right after" fq host.example.test A --rcode NOERROR --addrs 192.0.2.77
check "the silent resolver saw at most $CAP chase queries" le "$(blackhole_count)" "$CAP" queries
sleep 1.5 # the chases' timeouts run out
before=$(blackhole_count)
check "a capped owner is chased again afterwards (not cached)" \
	fq o$((N - 1)).example.test A --rcode SERVFAIL --ede 22 --ede 23 --max-ms 2500
check "that chase reached the resolver" test "$(blackhole_count)" -gt "$before"
stop_flat_apexd
# Every lookup that missed the cache either got a chase or was refused
# one (a query BIND itself dropped in the burst never gets that far).
misses_split() {
	local m c r
	m=$(stat_value cache_misses) c=$(stat_value chases) r=$(stat_value chase_refused)
	echo "cache_misses=$m chases=$c chase_refused=$r"
	[[ -n $m && $((c + r)) -eq $m ]]
}
check "stats: chase_refused > 0" stat_is chase_refused -gt 0
check "stats: chases <= $((CAP + 1))" stat_is chases -le $((CAP + 1))
check "stats: cache_misses = chases + chase_refused" misses_split
finish
