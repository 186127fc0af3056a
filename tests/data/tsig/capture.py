#!/usr/bin/python3
"""Makes the TSIG fixtures of tests/unit/test_codec_tsig.c.

Run by hand (as root or a user that may run named), from anywhere:
    /usr/bin/python3 tests/data/tsig/capture.py
It starts BIND's named in the foreground on 127.0.0.1 at a free port in
20000-29999 with one zone of 3000 A records, captures with dnspython the
signed answers to an AXFR (several messages), to an UPDATE and to three
requests BIND rejects (unknown key, wrong secret, time off), stops named
by its PID and writes the files next to this script. dnspython also
signs queries with every algorithm at a fixed time (request vectors) and
a stream with 99 unsigned messages between two signed ones.

Every .bin file is a list of messages, each with the two-octet length
prefix of DNS over TCP. The key (apexd-key, hmac-sha256) is fixed here
and copied into the unit test.
"""
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_B64 = "2mQtJY3hm1gVb8Ts6Y0fK6tMbX7lU5kG4QAIA3CXU9A="
KEY = "apexd-key."
ZONE = "example.test."
ALGS = [
    ("hmac-md5", dns.tsig.HMAC_MD5),
    ("hmac-sha1", dns.tsig.HMAC_SHA1),
    ("hmac-sha224", dns.tsig.HMAC_SHA224),
    ("hmac-sha256", dns.tsig.HMAC_SHA256),
    ("hmac-sha384", dns.tsig.HMAC_SHA384),
    ("hmac-sha512", dns.tsig.HMAC_SHA512),
]


def free_port():
    for port in range(20000 + os.getpid() % 5000, 30000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def write_frames(name, wires):
    with open(os.path.join(HERE, name), "wb") as f:
        for w in wires:
            f.write(struct.pack("!H", len(w)) + w)


def tcp_exchange(port, wire, xfr_ring=None):
    """Sends one message over TCP and reads the answers: one, or for an
    AXFR (xfr_ring given) up to the closing SOA, each checked by
    dnspython."""
    out = []
    ctx = None
    mac = dns.message.from_wire(wire, keyring=xfr_ring).mac if xfr_ring else None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        soas = 0
        while True:
            hdr = recv_all(s, 2)
            msg = recv_all(s, struct.unpack("!H", hdr)[0])
            out.append(msg)
            if not xfr_ring:
                return out
            m = dns.message.from_wire(msg, keyring=xfr_ring, request_mac=mac, xfr=True,
                                      tsig_ctx=ctx, multi=True, one_rr_per_rrset=True)
            ctx = m.tsig_ctx
            soas += sum(1 for r in m.answer if r.rdtype == dns.rdatatype.SOA)
            if soas >= 2 or m.rcode() != dns.rcode.NOERROR:
                return out


def recv_all(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    return buf


def start_named(d, port):
    with open(os.path.join(d, "zone"), "w") as f:
        f.write("$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 192.0.2.53\n")
        for i in range(3000):
            f.write("h%d A 10.%d.%d.%d\n" % (i, i >> 16, (i >> 8) & 255, i & 255))
    with open(os.path.join(d, "named.conf"), "w") as f:
        f.write(
            'key "%s" { algorithm hmac-sha256; secret "%s"; };\n' % (KEY, SECRET_B64)
            + 'options { directory "%s"; pid-file none; listen-on port %d { 127.0.0.1; };\n' % (d, port)
            + "  listen-on-v6 { none; }; recursion no; notify no; };\n"
            + "controls { };\n"
            + 'zone "%s" { type primary; file "zone"; allow-transfer { key %s; };\n' % (ZONE, KEY)
            + "  allow-update { key %s; }; };\n" % KEY
        )
    log = open(os.path.join(d, "named.log"), "w")
    p = subprocess.Popen(["/usr/sbin/named", "-g", "-n", "1", "-c", os.path.join(d, "named.conf")],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            q = dns.message.make_query(ZONE, "SOA")
            dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            return p
        except Exception:
            time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    raise RuntimeError("named did not start: see " + d + "/named.log")


def capture_bind():
    d = tempfile.mkdtemp(prefix="apex-tsig-")
    port = free_port()
    p = start_named(d, port)
    try:
        ring = dns.tsigkeyring.from_text({KEY: SECRET_B64})
        q = dns.message.make_query(ZONE, "AXFR")
        q.use_tsig(ring, KEY, algorithm=dns.tsig.HMAC_SHA256)
        req = q.to_wire()
        ans = tcp_exchange(port, req, xfr_ring=ring)
        assert len(ans) > 2, "AXFR fitted one message"
        write_frames("axfr.req.bin", [req])
        write_frames("axfr.ans.bin", ans)

        u = dns.update.Update(ZONE, keyring=ring, keyname=KEY, keyalgorithm=dns.tsig.HMAC_SHA256)
        u.present("h1", "A")
        u.delete("h1", "A")
        u.add("h1", 300, "A", "192.0.2.1")
        req = u.to_wire()
        ans = tcp_exchange(port, req)
        assert dns.message.from_wire(ans[0], keyring=ring, request_mac=u.mac).rcode() == 0
        write_frames("update.req.bin", [req])
        write_frames("update.ans.bin", ans)

        # BIND's refusals: unknown key, wrong secret, time off by 1000 s.
        other = dns.tsigkeyring.from_text({"nokey.": SECRET_B64})
        wrong = dns.tsigkeyring.from_text({KEY: base64.b64encode(b"x" * 32).decode()})
        for name, ring2, key, skew in (("badkey", other, "nokey.", 0),
                                       ("badsig", wrong, KEY, 0),
                                       ("badtime", ring, KEY, -1000)):
            q = dns.message.make_query(ZONE, "SOA")
            q.use_tsig(ring2, key, algorithm=dns.tsig.HMAC_SHA256)
            real = time.time
            time.time = lambda: real() + skew
            try:
                req = q.to_wire()
            finally:
                time.time = real
            write_frames(name + ".req.bin", [req])
            write_frames(name + ".ans.bin", tcp_exchange(port, req))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        shutil.rmtree(d)


def sign_vectors():
    """Queries signed by dnspython at a fixed time with each algorithm."""
    real = time.time
    time.time = lambda: 1700000000.0
    try:
        wires = []
        for i, (_, alg) in enumerate(ALGS):
            ring = dns.tsigkeyring.from_text({KEY: SECRET_B64})
            q = dns.message.make_query("www." + ZONE, "A", id=0x4000 + i)
            q.use_tsig(ring, KEY, algorithm=alg)
            wires.append(q.to_wire())
        # The ID through the constructor: use_tsig() copies it into the
        # TSIG's original ID, which a later u.id = ... would not change.
        u = dns.update.Update(ZONE, keyring=ring, keyname=KEY, keyalgorithm=dns.tsig.HMAC_SHA256,
                              id=0x4242)
        u.present("www", "A")
        u.delete("www", "A")
        u.add("www", 60, "A", "192.0.2.7")
        wires.append(u.to_wire())
    finally:
        time.time = real
    write_frames("sign.bin", wires)


def unsigned_stream():
    """A stream that dnspython signs: message 1, 99 unsigned, message 101,
    answering the captured AXFR request."""
    with open(os.path.join(HERE, "axfr.req.bin"), "rb") as f:
        req = f.read()[2:]
    key = dns.tsig.Key(KEY, SECRET_B64, dns.tsig.HMAC_SHA256)
    q = dns.message.from_wire(req, keyring={dns.name.from_text(KEY): key})
    now = q.tsig[0].time_signed
    real = time.time
    time.time = lambda: float(now)
    ctx = None
    wires = []
    try:
        for i in range(101):
            r = dns.renderer.Renderer(q.id, 0x8400, 65535)
            r.add_question(dns.name.from_text(ZONE), dns.rdatatype.AXFR)
            rrs = dns.rrset.from_text("h%d.%s" % (i, ZONE), 300, "IN", "A", "10.9.%d.%d" % (i >> 8, i & 255))
            r.add_rrset(dns.renderer.ANSWER, rrs)
            r.write_header()
            if i in (0, 100):
                ctx = r.add_multi_tsig(ctx, key.name, key, 300, q.id, 0, b"",
                                       q.mac if i == 0 else None, dns.tsig.HMAC_SHA256)
            else:
                ctx.update(r.get_wire())
            wires.append(r.get_wire())
    finally:
        time.time = real
    write_frames("unsigned99.ans.bin", wires)


def read_frames(name):
    with open(os.path.join(HERE, name), "rb") as f:
        b = f.read()
    out, i = [], 0
    while i < len(b):
        n = struct.unpack("!H", b[i:i + 2])[0]
        out.append(b[i + 2:i + 2 + n])
        i += 2 + n
    return out


def fuzz_seeds():
    """Seeds of tests/fuzz/fuzz_codec_tsig.c: frame 0 is now_s and the
    request MAC, then the answer's messages. The requests end with a
    hmac-sha256 TSIG without other data: time signed (6), fudge, MAC size,
    MAC (32), original ID, error, other len."""
    out = os.path.join(HERE, "..", "..", "fuzz", "corpus", "codec_tsig")
    os.makedirs(out, exist_ok=True)
    for seed, req, ans, n in (("axfr_first", "axfr", "axfr", 1), ("update", "update", "update", 1),
                              ("unsigned99", "axfr", "unsigned99", 101),
                              ("badkey", "badkey", "badkey", 1), ("badtime", "badtime", "badtime", 1)):
        q = read_frames(req + ".req.bin")[0]
        hi, lo = struct.unpack("!HI", q[-48:-42])
        head = struct.pack("!Q", hi << 32 | lo) + q[-38:-6]
        frames = [head] + read_frames(ans + ".ans.bin")[:n]
        with open(os.path.join(out, seed), "wb") as f:
            for w in frames:
                f.write(struct.pack("!H", len(w)) + w)


if __name__ == "__main__":
    capture_bind()
    sign_vectors()
    unsigned_stream()
    fuzz_seeds()
    print("fixtures written to", HERE)
