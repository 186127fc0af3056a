#!/usr/bin/env bash
# Every kind of answer BIND gives over UDP reaches the client through apexd
# byte for byte, message ID included; plus dig and kdig as real clients.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_python_dns
need dig kdig
start_named
start_apexd

passthrough_corpus

# Real clients: the answer section through apexd is the one BIND gives.
same_short() {
	local a b
	a=$("$@" -p "$NAMED_PORT" 2>&1) || { echo "direct: $a"; return 1; }
	b=$("$@" -p "$APEX_PORT" 2>&1) || { echo "apexd: $b"; return 1; }
	[[ -n $a ]] || { echo "empty answer from BIND: the comparison would prove nothing"; return 1; }
	[[ $a == "$b" ]] || { printf 'direct:\n%s\napexd:\n%s\n' "$a" "$b"; return 1; }
}
for q in "www.example.test A" "example.test MX" "alias1.example.test A" \
	"_sip._udp.example.test SRV" "example.test TXT" "www.dn.example.test A"; do
	# shellcheck disable=SC2086 # split NAME TYPE on purpose
	check "dig +short $q" same_short dig @127.0.0.1 +time=2 +tries=1 +short $q
	# shellcheck disable=SC2086
	check "kdig +short $q" same_short kdig @127.0.0.1 +time=2 +retry=0 +short $q
done
check "dig +short over ::1" same_short dig @::1 +time=2 +tries=1 +short www.example.test AAAA
check "dig +dnssec +short signed" same_short dig @127.0.0.1 +time=2 +tries=1 +dnssec +short www.signed.test A
check "dig +short bigv4 (TC, retried over TCP by dig)" same_short dig @127.0.0.1 +time=2 +tries=1 +short bigv4.example.test A

# The client's ID travels unchanged to BIND, so apexd must cope with many
# clients using the same ID at once: ten sockets, one ID, ten names, sent
# together; each must get BIND's answer for its own name.
same_id_clients() {
	"$PY" - "$NAMED_PORT" "$APEX_PORT" <<'PY'
import select, socket, sys, time
import dns.message
ref, test = int(sys.argv[1]), int(sys.argv[2])
names = ["www", "mail", "ns1", "sip", "alias1", "txt", "ptr", "hinfo", "naptr", "external"]
types = ["A", "A", "AAAA", "A", "A", "TXT", "PTR", "HINFO", "NAPTR", "A"]
queries = []
for n, t in zip(names, types):
    q = dns.message.make_query(f"{n}.example.test", t)
    q.id = 0x5555
    queries.append(q.to_wire())
def ask(port, wire):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3); s.connect(("127.0.0.1", port)); s.send(wire)
    return s.recv(65535)
want = [ask(ref, w) for w in queries]
socks = []
for w in queries:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", test))
    socks.append(s)
for s, w in zip(socks, queries):
    s.send(w)
got = {}
deadline = time.monotonic() + 3
while len(got) < len(socks) and time.monotonic() < deadline:
    ready, _, _ = select.select([s for s in socks if s not in got], [], [], 0.2)
    for s in ready:
        got[s] = s.recv(65535)
wrong = [names[i] for i, s in enumerate(socks) if got.get(s) != want[i]]
if wrong:
    sys.exit(f"wrong or missing answers for: {wrong}")
print("10 clients, one ID: each got BIND's answer for its own name")
PY
}
check "10 concurrent clients with the same message ID" same_id_clients
finish
