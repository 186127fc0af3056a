#!/usr/bin/env bash
# apexd forwards each client query to the backend UNCHANGED: same bytes,
# same message ID, whatever the flags, opcode or EDNS options, from UDP and
# from TCP clients alike (TCP client queries go to the backend over UDP).
# The backend here is a recorder that logs every datagram and never
# answers; each query sent must appear in its log byte for byte.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need dig
start_blackhole
start_apexd "127.0.0.1:$BLACKHOLE_PORT" timeout=1s

SENDPY=$T_DIR/send.py
cat >"$SENDPY" <<'PY'
"""Send a corpus of queries to apexd over UDP or TCP, print their hex."""
import os, socket, struct, sys
import dns.edns, dns.flags, dns.message, dns.name, dns.opcode, dns.update

transport, port, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def q(name, rdtype="A", **kw):
    return dns.message.make_query(name, rdtype, **kw)

msgs = []
msgs.append(q("www.example.test"))
msgs.append(q("wWw.ExAmPlE.tEsT", "AAAA"))                       # 0x20 case kept
m = q("www.example.test", flags=0); msgs.append(m)                # RD clear
m = q("www.example.test", want_dnssec=True, payload=4096,
      options=[dns.edns.GenericOption(10, os.urandom(8)),         # cookie
               dns.edns.GenericOption(8, bytes.fromhex("00011800c00002")),  # ECS
               dns.edns.GenericOption(65001, b"\xab\xcd")]); msgs.append(m)
m = q("signed.test", "DNSKEY", want_dnssec=True); m.flags |= dns.flags.CD | dns.flags.AD
msgs.append(m)
m = q("example.test", "SOA"); m.set_opcode(dns.opcode.NOTIFY); m.flags = dns.flags.AA
msgs.append(m)
m = dns.update.UpdateMessage("dyn.test"); m.present(dns.name.from_text("www.dyn.test"))
msgs.append(m)
m = dns.message.Message(); m.use_edns(0, options=[dns.edns.GenericOption(10, os.urandom(8))])
msgs.append(m)                                                     # QDCOUNT=0 + cookie
m = q("example.test", "TYPE65401", use_edns=0, payload=512); msgs.append(m)

wires = []
for i, m in enumerate(msgs):
    m.id = base + i
    wires.append(bytearray(m.to_wire()))
# Header bits dnspython has no name for: Z (0x0040) and opcode 15.
z = bytearray(wires[0]); struct.pack_into("!H", z, 0, base + len(wires)); z[3] |= 0x40
wires.append(z)
op = bytearray(wires[0]); struct.pack_into("!H", op, 0, base + len(wires)); op[2] = (op[2] & 0x87) | (15 << 3)
wires.append(op)

socks = []
for w in wires:
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        s.send(w)
    else:
        s = socket.create_connection(("127.0.0.1", port), 3)
        s.sendall(struct.pack("!H", len(w)) + w)
    socks.append(s)
for w in wires:
    print(bytes(w).hex())
# Keep the sockets open a moment so apexd does not see the clients go.
import time; time.sleep(0.5)
PY

# forwarded_exactly TRANSPORT BASE_ID: send the corpus, then every query
# must be in the recorder's log, byte for byte.
forwarded_exactly() {
	local sent before n line missing=0
	before=$(blackhole_count)
	sent=$("$PY" "$SENDPY" "$1" "$APEX_PORT" "$2") || { echo "$sent"; return 1; }
	n=$(grep -c . <<<"$sent")
	blackhole_wait $((before + n)) || echo "only $(($(blackhole_count) - before)) of $n reached the backend"
	while read -r line; do
		if ! grep -qx "$line" "$BLACKHOLE_LOG"; then
			echo "not forwarded unchanged: $line"
			echo "  backend saw instead (same ID): $(grep "^${line:0:4}" "$BLACKHOLE_LOG" || echo nothing)"
			missing=$((missing + 1))
		fi
	done <<<"$sent"
	echo "$((n - missing)) of $n queries reached the backend byte for byte"
	[[ $missing -eq 0 ]]
}
check "UDP client queries reach the backend unchanged" forwarded_exactly udp 16384
check "TCP client queries reach the backend unchanged (over UDP)" forwarded_exactly tcp 32768
check "apexd alive" proc_alive "$APEX_PID"
finish
