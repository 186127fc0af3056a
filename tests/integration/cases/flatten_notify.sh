#!/usr/bin/env bash
# NOTIFY flushes: BIND (also-notify to apexd, notify explicit) tells apexd
# that example.test changed; apexd acknowledges, flushes the zone's cached
# targets and ANAME presence, and the next answer has the new target's
# addresses although the old ones had 300 s to live. A NOTIFY from any
# other address (127.0.0.2) is BIND's business: forwarded, not taken.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

FLAT_APEX_PORT=$(new_port)
FLAT_NOTIFY_PORT=$FLAT_APEX_PORT
start_flat_backend
start_cdn
start_unbound
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[zone example.test]"
OLD_A=$(cdn_addrs old.cdn.test A)
OLD_AAAA=$(cdn_addrs old.cdn.test AAAA)
NEW_A=$(cdn_addrs new.cdn.test A)
NEW_AAAA=$(cdn_addrs new.cdn.test AAAA)
check "old and new targets differ at the CDN" test "$OLD_A" != "$NEW_A"

# notifies: NOTIFY lines apexd logged so far (it logs each one it takes).
notifies() { grep -c 'NOTIFY for .* from the backend' "$APEX_LOG" || true; }
# (BIND's NOTIFY at load went to a port nobody listened on yet, and BIND
# gives up on a refused one: apexd never logs it. The counts below are
# taken right before and after each step.)

for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: moving A: the old target's addresses, TTL up to 300" \
		fq "${t[@]}" moving.example.test A --flag AA --addrs "$OLD_A" --ttl 200:300
	check "$tr: moving AAAA: the old target's" fq "${t[@]}" moving.example.test AAAA --flag AA --addrs "$OLD_AAAA"
done

# A NOTIFY from 127.0.0.2 (all of 127/8 is local on Linux): not the
# backend's address, so apexd forwards it and relays BIND's answer; it
# neither flushes nor logs it. The same bytes sent to BIND directly from
# 127.0.0.2 get the same answer.
stranger_notify() {
	"$PY" - "$APEX_PORT" "$NAMED_PORT" <<'PY'
import socket, sys
import dns.message, dns.opcode, dns.flags
apex, named = int(sys.argv[1]), int(sys.argv[2])
q = dns.message.make_query("example.test", "SOA")
q.set_opcode(dns.opcode.NOTIFY)
q.flags = dns.flags.AA
q.id = 4242
wire = q.to_wire()
def ask(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.settimeout(3)
    s.sendto(wire, ("127.0.0.1", port))
    return s.recvfrom(65535)[0]
a, b = ask(apex), ask(named)
print("through apexd:", dns.message.from_wire(a).to_text().replace("\n", " | "))
print("BIND direct:  ", dns.message.from_wire(b).to_text().replace("\n", " | "))
sys.exit(0 if a == b else 1)
PY
}
if "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.2", 0))' 2>/dev/null; then
	n0=$(notifies)
	check "NOTIFY from 127.0.0.2: BIND's answer, byte for byte" stranger_notify
	check "NOTIFY from 127.0.0.2: not taken by apexd (no flush logged)" test "$(notifies)" = "$n0"
	check "NOTIFY from 127.0.0.2: cached answer still the old one" fq moving.example.test A --addrs "$OLD_A"
else
	say "cannot bind 127.0.0.2: NOTIFY-from-a-stranger checks left out"
fi

# The edit: moving's ANAME now points at new.cdn.test, serial bumped,
# BIND reloads on SIGHUP and sends NOTIFY to apexd.
zone=$T_DIR/named/example.test.zone
n0=$(notifies)
sleep 1 # a new mtime for BIND to notice
old_line=$(sh "$ANAME_LINE" moving 600 old.cdn.test.)
new_line=$(sh "$ANAME_LINE" moving 600 new.cdn.test.)
check "the zone holds the generated ANAME line" grep -qxF "$old_line" "$zone"
grep -vxF "$old_line" "$zone" | sed 's/2024060101 ; serial/2024060102 ; serial/' >"$zone.new"
echo "$new_line" >>"$zone.new"
mv "$zone.new" "$zone"
backend_reload
wait_notify() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(notifies) -gt $n0 ]] && return 0
		sleep 0.1
	done
	echo "no NOTIFY logged by apexd within 10 s (before: $n0, now: $(notifies))"
	return 1
}
check "BIND's NOTIFY reached apexd and was taken" wait_notify
check "BIND serves the new ANAME" bash -c \
	"dig @127.0.0.1 -p $NAMED_PORT +time=3 +tries=1 +short moving.example.test TYPE65401 | grep -qi '${new_line##* }'"
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: after NOTIFY: the new target's addresses at once" \
		fq "${t[@]}" moving.example.test A --flag AA --addrs "$NEW_A"
	check "$tr: after NOTIFY: new AAAA" fq "${t[@]}" moving.example.test AAAA --flag AA --addrs "$NEW_AAAA"
done
check "the apex is still flattened" fq example.test A --flag AA --addrs "$WWW_A"
# A NOTIFY from the backend's address (127.0.0.1, any port) for the zone:
# acknowledged by apexd itself, NOERROR with AA, and flushed.
n0=$(notifies)
check "NOTIFY from the backend's address: NOERROR, AA, QR" \
	apex_q --opcode 4 --flags AA example.test SOA --expect-rcode NOERROR --expect-flag AA --expect-flag QR
check "NOTIFY from the backend's address: taken (flush logged)" test "$(notifies)" -gt "$n0"
# NOTIFY for a zone apexd does not flatten, even from the backend's
# address: BIND's answer.
n0=$(notifies)
check "NOTIFY for other.test (not configured): BIND's answer" \
	cmp_q --opcode 4 --flags AA other.test SOA --expect-flag QR
check "NOTIFY for other.test: not taken" test "$(notifies)" = "$n0"
stop_flat_apexd
check "stats: notify_flushes >= 2 (BIND's and ours)" stat_is notify_flushes -ge 2
finish
