#!/usr/bin/env bash
# apexd never becomes an open resolver (docs/security.md): a name outside
# the configured zones, or a backend answer without AA, never causes a
# resolver query, whatever shape the answer has (CNAME at an apex, ANAME
# records, an [alias] owner). Asserted twice for each: unbound's own query
# log (flatlib.sh) and apexd's chase_queries/chases counters. Each negative
# run has a positive twin (the zone configured, the backend answering with
# AA=1) that does reach the resolver, so the assertions can fail.
# Then the size rule: a flattened answer is never larger than the client's
# UDP size (512 without EDNS, the EDNS size up to 1232), TC=1 when it does
# not fit, and over TCP the whole answer, up to the 64-address cap.
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
check "CDN serves www.cdn.test" test -n "$WWW_A"

RESOLVER="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms"

# unbound_total: every query unbound has logged so far (any name, type).
unbound_total() {
	[[ -e $UNBOUND_LOG ]] || { echo 0; return; }
	grep -cE "info: [0-9.]+ [^ ]+ [A-Z0-9]+ IN\$" "$UNBOUND_LOG" || true
}

# ---------------------------------------------------------------------
say "run 1: other.test is served by BIND but is not a [zone] of apexd"
# other.test has an ANAME at its apex (to ot.cdn.test) and a CNAME
# cn.other.test -> ot2.cdn.test; with cname = all both would be
# flattened if other.test were configured.
start_flat_apexd "$RESOLVER
[flatten]
cname = all
[zone example.test]"
before=$(unbound_total)
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	for type in A AAAA ANY TYPE65401; do
		check "$tr: other.test $type: BIND's answer, byte for byte" \
			cmp_q "${t[@]}" --edns other.test $type --expect-rcode NOERROR
	done
	check "$tr: cn.other.test A: BIND's CNAME answer, byte for byte" \
		cmp_q "${t[@]}" --edns cn.other.test A --expect-min-answers 1
	check "$tr: cn.other.test AAAA: byte for byte" cmp_q "${t[@]}" --edns cn.other.test AAAA
	check "$tr: nothere.other.test A: NXDOMAIN, byte for byte" \
		cmp_q "${t[@]}" --edns nothere.other.test A --expect-rcode NXDOMAIN
	check "$tr: a zone BIND does not serve: REFUSED, byte for byte" \
		cmp_q "${t[@]}" --edns www.example.org A --expect-rcode REFUSED
	check "$tr: ANAME-shaped query for a foreign name: relayed" \
		cmp_q "${t[@]}" --edns www.cdn.test A --expect-rcode REFUSED
done
stop_flat_apexd
check "run 1: unbound logged no query at all ($before before)" test "$(unbound_total)" -eq "$before"
check "run 1: unbound never saw ot.cdn.test / ot2.cdn.test" \
	test "$(unbound_saw ot.cdn.test)/$(unbound_saw ot2.cdn.test)" = 0/0
check "run 1 stats: chase_queries = 0" stat_is chase_queries -eq 0
check "run 1 stats: chases = 0" stat_is chases -eq 0
check "run 1 stats: aname_probes = 0 (not even BIND is probed)" stat_is aname_probes -eq 0
check "run 1 stats: answers_relayed >= 18" stat_is answers_relayed -ge 18

say "run 1b (positive twin): other.test configured"
start_flat_apexd "$RESOLVER
[flatten]
cname = all
[zone other.test]"
before=$(unbound_total)
check "other.test A: flattened to ot.cdn.test's address" \
	fq other.test A --rcode NOERROR --flag AA --addrs 198.51.100.50 --no-cname
check "cn.other.test A: flattened to ot2.cdn.test's address" \
	fq cn.other.test A --rcode NOERROR --flag AA --addrs 198.51.100.51 --no-cname
stop_flat_apexd
check "run 1b: unbound was asked ($before before)" test "$(unbound_total)" -gt "$before"
check "run 1b: unbound saw ot.cdn.test and ot2.cdn.test" \
	bash -c "[[ $(unbound_saw ot.cdn.test) -ge 1 && $(unbound_saw ot2.cdn.test) -ge 1 ]]"
check "run 1b stats: chase_queries >= 2" stat_is chase_queries -ge 2

# ---------------------------------------------------------------------
# A backend that answers without AA (a forwarder, a recursive view, a
# stale secondary): a python fake on FAKE_PORT, for the configured zone
# fake.test, with a CNAME at the apex, an ANAME record, a CNAME below the
# apex, and an [alias] owner. MODE noaa sets AA=0 on every answer for
# fake.test names; MODE aa sets AA=1 (the positive twin). SOA answers
# (the harness's readiness query) always carry AA=1.
start_fake_backend() {
	local mode=$1 ready=$T_DIR/fake-$1.ready i
	FAKE_PORT=$(new_port)
	FAKE_LOG=$T_DIR/fake-$mode.extra.log
	: >"$FAKE_LOG"
	"$PY" - "$FAKE_PORT" "$ready" "$FAKE_LOG" "$mode" <<'PY' &
import socket, sys
import dns.flags, dns.message, dns.name, dns.rcode, dns.rdata, dns.rdataclass
import dns.rdatatype, dns.rrset
port, ready, log, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
IN, ANAME = dns.rdataclass.IN, 65401
target = dns.name.from_text("www.cdn.test.")
apex = dns.name.from_text("fake.test.")
def soa(owner):
    return dns.rrset.from_text(owner, 300, "IN", "SOA", "ns.fake.test. h.fake.test. 1 7200 3600 1209600 300")
def aname(owner):
    rs = dns.rrset.RRset(owner, IN, ANAME)
    rs.add(dns.rdata.GenericRdata(IN, ANAME, target.to_wire()), 300)
    return rs
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
open(ready, "w").close()
with open(log, "a", buffering=1) as seen:
    while True:
        data, peer = s.recvfrom(65535)
        try:
            q = dns.message.from_wire(data)
        except Exception:
            continue
        name, qt = q.question[0].name, q.question[0].rdtype
        seen.write(f"{name} {dns.rdatatype.to_text(qt)}\n")
        r = dns.message.make_response(q)
        if qt == dns.rdatatype.SOA:
            r.flags |= dns.flags.AA
            r.answer.append(soa(name))
            s.sendto(r.to_wire(), peer)
            continue
        if mode == "aa":
            r.flags |= dns.flags.AA
        lname = name.canonicalize()
        if qt == ANAME:
            if lname in (apex, dns.name.from_text("aname.fake.test.")):
                r.answer.append(aname(name))
            else:
                r.authority.append(soa(apex))
        elif lname == apex or lname == dns.name.from_text("cn.fake.test."):
            # A CNAME where BIND would never serve one: at the apex.
            r.answer.append(dns.rrset.from_text(name, 120, "IN", "CNAME", target.to_text()))
        elif lname.is_subdomain(apex):
            # aname.fake.test and alias.fake.test: NODATA, as BIND
            # answers A at an ANAME owner or at a name it has no data for.
            r.authority.append(soa(apex))
        else:
            r.set_rcode(dns.rcode.REFUSED)
            r.flags &= ~dns.flags.AA
        s.sendto(r.to_wire(), peer)
PY
	PIDS+=("$!")
	FAKE_PID=$!
	for ((i = 0; i < 50; i++)); do
		[[ -e $ready ]] && return 0
		sleep 0.1
	done
	fail "fake backend did not start"
	finish
}

FAKE_INI="$RESOLVER
[flatten]
cname = all
[zone fake.test]
[alias]
alias.fake.test = www.cdn.test"
BIND_PORT=$NAMED_PORT

say "run 2: the backend answers fake.test without AA"
start_fake_backend noaa
NAMED_PORT=$FAKE_PORT
start_flat_apexd "$FAKE_INI"
before=$(unbound_total)
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	for type in A AAAA; do
		check "$tr: CNAME at the apex, AA=0, $type: relayed, CNAME visible" \
			fq "${t[@]}" fake.test $type --rcode NOERROR --flag '!AA' --answers 1 --answer-types CNAME
		check "$tr: CNAME below the apex (cname = all), AA=0, $type: relayed" \
			fq "${t[@]}" cn.fake.test $type --rcode NOERROR --flag '!AA' --answers 1 --answer-types CNAME
		check "$tr: ANAME owner, AA=0 probe and answer, $type: relayed NODATA" \
			fq "${t[@]}" aname.fake.test $type --rcode NOERROR --flag '!AA' --answers 0
		check "$tr: [alias] owner, AA=0, $type: relayed NODATA" \
			fq "${t[@]}" alias.fake.test $type --rcode NOERROR --flag '!AA' --answers 0
	done
	check "$tr: ANAME-type query, AA=0: the record relayed, no addresses added" \
		fq "${t[@]}" aname.fake.test TYPE65401 --rcode NOERROR --flag '!AA' --answers 1 --answer-types TYPE65401
	check "$tr: ANY at the apex, AA=0: relayed" fq "${t[@]}" fake.test ANY --flag '!AA' --answer-types CNAME
done
stop_flat_apexd
check "run 2: the fake backend was asked (probes included)" bash -c "grep -q '^aname.fake.test. TYPE65401' '$FAKE_LOG'"
check "run 2: unbound logged no query at all ($before before)" test "$(unbound_total)" -eq "$before"
check "run 2 stats: chase_queries = 0" stat_is chase_queries -eq 0
check "run 2 stats: chases = 0" stat_is chases -eq 0
check "run 2 stats: answers_flattened = 0" stat_is answers_flattened -eq 0
stop_pid "$FAKE_PID"

say "run 2b (positive twin): the same backend with AA=1"
start_fake_backend aa
NAMED_PORT=$FAKE_PORT
start_flat_apexd "$FAKE_INI"
before=$(unbound_total)
check "CNAME at the apex, AA=1: flattened" fq fake.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-cname
check "ANAME owner, AA=1: flattened" fq aname.fake.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA"
check "[alias] owner, AA=1: flattened" fq alias.fake.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
stop_flat_apexd
check "run 2b: unbound was asked ($before before)" test "$(unbound_total)" -gt "$before"
check "run 2b stats: chase_queries >= 1" stat_is chase_queries -ge 1
stop_pid "$FAKE_PID"
NAMED_PORT=$BIND_PORT

# ---------------------------------------------------------------------
say "run 3: the client's UDP size, up to the 64-address cap"
start_flat_apexd "$RESOLVER
[zone example.test]"
WIDE_A=$(cdn_addrs wide.cdn.test A)
WIDE_AAAA=$(cdn_addrs wide.cdn.test AAAA)
check "the CDN serves 64 A and 64 AAAA at wide" \
	test "$(wc -w <<<"$WIDE_A")/$(wc -w <<<"$WIDE_AAAA")" = 64/64
# The first query fills the cache (over TCP: no size limit).
check "tcp, no EDNS: all 64 A" fq --tcp --no-edns wide.example.test A --flag AA --flag '!TC' --answers 64 --addrs "$WIDE_A"
check "tcp, no EDNS: all 64 AAAA" fq --tcp --no-edns wide.example.test AAAA --flag AA --flag '!TC' --answers 64 --addrs "$WIDE_AAAA"
check "udp, no EDNS, 64 A (1 KB): TC=1 within 512 bytes" \
	fq --no-edns wide.example.test A --flag TC --answers 0 --max-bytes 512
check "udp, EDNS 512, 64 A: TC=1 within 512 bytes" \
	fq --payload 512 wide.example.test A --flag TC --answers 0 --max-bytes 512
check "udp, EDNS 1232, 64 A: all of them within 1232 bytes" \
	fq --payload 1232 wide.example.test A --flag '!TC' --answers 64 --addrs "$WIDE_A" --max-bytes 1232
check "udp, EDNS 1000, 64 A (1070 bytes): TC=1 within 1000 bytes" \
	fq --payload 1000 wide.example.test A --flag TC --answers 0 --max-bytes 1000
check "udp, EDNS 1232, 64 AAAA (1.9 KB): TC=1 within 1232 bytes" \
	fq --payload 1232 wide.example.test AAAA --flag TC --answers 0 --max-bytes 1232
check "udp, EDNS 4096, 64 AAAA: still TC=1 within 1232 bytes (apexd's cap)" \
	fq --payload 4096 wide.example.test AAAA --flag TC --answers 0 --max-bytes 1232
check "udp, no EDNS, ANAME-type query with 128 addresses: within 512 bytes" \
	fq --no-edns wide.example.test TYPE65401 --rcode NOERROR --max-bytes 512
check "tcp: 70 A at the target: the first 64 only (the cap)" \
	fq --tcp over.example.test A --flag AA --flag '!TC' --answers 64
check "udp, EDNS 1232: 70 A at the target: 64, within 1232 bytes" \
	fq --payload 1232 over.example.test A --flag '!TC' --answers 64 --max-bytes 1232
stop_flat_apexd
check "run 3 stats: answers_flattened >= 10" stat_is answers_flattened -ge 10
finish
