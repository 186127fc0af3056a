#!/usr/bin/env bash
# [limits] responses-per-second and slip against a real BIND: a burst of
# 100 UDP queries from one client gets one second's worth of answers,
# every second limited one comes back as an empty TC=1 reply, the rest
# get nothing; the counters say the same; TCP and another /24 are not
# limited; the bucket refills at the rate. Off by default: the same burst
# without [limits] is answered in full.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_python_dns
need dig named

# burst PORT N [SOURCE] [SECONDS]: N queries for www.example.test A from
# one UDP socket as fast as it can send, then replies collected for 1.5 s.
# Prints "answers=A slips=S other=O sent=N ms=T" (A: full answers, S: TC=1
# without records and with the question echoed, O: anything else, T: how
# long sending took). With SECONDS, one query every 1/RATE s instead,
# where RATE comes from the 4th argument as "paced:RATE:SECONDS".
cat >"$T_DIR/burst.py" <<'PY'
import socket, sys, time
import dns.flags, dns.message, dns.rdatatype
port, n = int(sys.argv[1]), int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
paced = sys.argv[4] if len(sys.argv) > 4 else ""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
ids = set()
t0 = time.monotonic()
gap = 0.0
if paced:
    _, rate, secs = paced.split(":")
    gap = 1.0 / float(rate)
    n = int(float(rate) * float(secs))
for i in range(n):
    q = dns.message.make_query("www.example.test", "A")
    q.id = 1000 + i
    ids.add(q.id)
    s.sendto(q.to_wire(), ("127.0.0.1", port))
    if gap:
        time.sleep(max(0.0, t0 + (i + 1) * gap - time.monotonic()))
ms = (time.monotonic() - t0) * 1000
answers = slips = other = 0
s.settimeout(0.2)
end = time.monotonic() + 1.5
while time.monotonic() < end:
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        continue
    r = dns.message.from_wire(data)
    if r.id not in ids:
        other += 1
        continue
    ids.discard(r.id)
    q_ok = len(r.question) == 1 and r.question[0].name.to_text() == "www.example.test." \
        and r.question[0].rdtype == dns.rdatatype.A
    if r.flags & dns.flags.TC and not r.answer and not r.authority and q_ok and r.rcode() == 0:
        slips += 1
    elif not r.flags & dns.flags.TC and r.answer and q_ok:
        answers += 1
    else:
        other += 1
        print("unexpected reply:", r, file=sys.stderr)
print(f"answers={answers} slips={slips} other={other} sent={n} ms={ms:.0f}")
PY
burst() { "$PY" "$T_DIR/burst.py" "$@"; }
field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

start_named

say "off by default"
start_apexd "127.0.0.1:$NAMED_PORT" threads=1
out=$(burst "$APEX_PORT" 100)
say "$out"
check "no [limits]: 100 queries, 100 answers" test "$(field answers "$out")/$(field slips "$out")" = 100/0
stop_apexd TERM 10
check "no [limits]: rrl_dropped = 0" stat_is rrl_dropped -eq 0
check "no [limits]: rrl_slipped = 0" stat_is rrl_slipped -eq 0

say "responses-per-second = 5, slip = 2"
# One worker, so one table: the client's queries all meet the same bucket.
start_flat_apexd "[limits]
responses-per-second = 5
slip = 2" threads=1
# start_flat_apexd's own readiness queries came from 127.0.0.1 too: let
# the bucket fill up again.
sleep 1.2
out=$(burst "$APEX_PORT" 100)
say "$out"
A=$(field answers "$out")
S=$(field slips "$out")
O=$(field other "$out")
MS=$(field ms "$out")
# The bucket holds 5 and refills 5 per second while the burst is sent,
# and while apexd reads it (on a loaded machine or under ASAN that can
# lag the sending by a few hundred ms: 3 more answers at most).
maxa=$((5 + (MS * 5 + 999) / 1000 + 3))
check "burst of 100: 5..$maxa full answers (sent in $MS ms)" test "$A" -ge 5 -a "$A" -le "$maxa"
check "burst of 100: every second limited query slips: (100 - $A) / 2 TC=1 replies" \
	test "$S" -eq $(((100 - A) / 2))
check "burst of 100: no other replies" test "$O" -eq 0
# While the prefix is limited, TCP gets the whole answer (not limited) ...
check "TCP during the limit: the full answer" fq --tcp www.example.test A --rcode NOERROR --flag '!TC' --min-answers 1
# ... and another /24 (127.0.1.0/24 is loopback too) has its own bucket.
check "another /24 during the limit: the full answer" \
	fq --source 127.0.1.1 www.example.test A --rcode NOERROR --flag '!TC' --min-answers 1
stop_flat_apexd
D=$((100 - A - S))
check "stats: rrl_slipped = $S (the TC=1 replies seen)" stat_is rrl_slipped -eq "$S"
check "stats: rrl_dropped = $D (100 - answers - slips)" stat_is rrl_dropped -eq "$D"

say "the bucket refills at the rate: 4 per second for 3 s all pass"
start_flat_apexd "[limits]
responses-per-second = 5
slip = 0" threads=1
sleep 1.2
out=$(burst "$APEX_PORT" 0 127.0.0.1 paced:4:3)
say "$out"
check "12 queries at 4 per second: 12 answers" test "$(field answers "$out")" = 12
out=$(burst "$APEX_PORT" 50)
say "$out"
check "then a burst of 50 with slip = 0: no TC=1 reply at all" test "$(field slips "$out")/$(field other "$out")" = 0/0
check "  and no more than one second's worth of answers" test "$(field answers "$out")" -le 7
stop_flat_apexd
check "slip = 0: rrl_slipped = 0" stat_is rrl_slipped -eq 0
check "slip = 0: rrl_dropped >= 43" stat_is rrl_dropped -ge 43
finish
