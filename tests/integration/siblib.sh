# shellcheck shell=bash
# Helpers for the sibling cases (cases/siblings_*.sh, issue 13): apexd
# with `siblings = update` keeps A/AAAA/HTTPS at sib.test's ANAME owners in a
# signed, dynamic BIND by RFC 2136 UPDATE. Sourced after lib.sh and
# flatlib.sh, whose harness (T_DIR, PIDS, new_port, check, run_named,
# start_unbound, start_flat_apexd, fq, ...) it uses.
#
# The cast (each our child, in PIDS, stopped by PID):
#   the primary      BIND with sib.test (zones/sib/, ANAME lines from
#                    anames.list) signed by dnssec-policy, dynamic for the
#                    TSIG key `upd` (SIB_ALLOW_UPDATE, or SIB_UPDATE_POLICY
#                    when a case sets it), transfers for that
#                    key only, NOTIFY to apexd and the secondary:
#                    NAMED_PORT / NAMED_PID, its directory SIB_DIR.
#   the secondary    BIND transferring sib.test from the primary with the
#                    key: SEC_PORT / SEC_PID.
#   the CDN          flatlib's cdn.test plus zones/sib/cdn.test.extra (the
#                    targets, TTL 10), dynamic for 127.0.0.1: CDN_PORT.
#   the resolver     flatlib's unbound (apexd's chases): UNBOUND_PORT.
#   the validator    a second unbound, validating, with sib.test's KSK as
#                    its trust anchor and a stub to apexd: VAL_PORT.
#   apexd            start_sib_apexd: [zone sib.test] siblings = update,
#                    control socket SIB_SOCK, metrics on SIB_MPORT.

SIB_ZONES=$ZONES_DIR/sib
SIB_DIR=$T_DIR/primary
SIB_KEY=$T_DIR/keys/upd.key
SIB_WRONG_KEY=$T_DIR/keys/wrong.key
SIB_TA=$T_DIR/ta
SIB_SOCK=$T_DIR/apexd.sock
SIB_MPORT=
# shellcheck disable=SC2034 # read by the cases
SIB_TTL=10
# Owners of an ANAME in sib.test (the apexd_sibling_owners gauge).
# shellcheck disable=SC2034 # read by the cases
SIB_OWNERS=$(grep -cvE '^[[:space:]]*(#|$)' "$SIB_ZONES/anames.list")
# What the primary's allow-update lets in (start_sib_primary, sib_allow_update).
SIB_ALLOW_UPDATE="key upd;"
# The primary's update-policy instead, when set (sib_update_policy):
# e.g. "grant upd zonesub A AAAA HTTPS;".
SIB_UPDATE_POLICY=
SEC_PORT=
SEC_PID=
VAL_PORT=
VAL_PID=
VAL_LOG=$T_DIR/validator.extra.log
# apexd's port, chosen by the case before start_sib_primary: the primary
# sends NOTIFY there (and to SEC_PORT when set).
SIB_APEX_PORT=
APEXCTL=

need_sib_tools() {
	need_flat_tools
	need nsupdate tsig-keygen dnssec-verify delv curl
	find_apexd
	APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
	[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
}

# sib_keys: the TSIG key apexd and BIND share, and one with the same name
# and another secret (the wrong-key case).
sib_keys() {
	mkdir -p "$T_DIR/keys"
	tsig-keygen -a hmac-sha256 upd >"$SIB_KEY" &&
		tsig-keygen -a hmac-sha256 upd >"$SIB_WRONG_KEY" &&
		! cmp -s "$SIB_KEY" "$SIB_WRONG_KEY"
}

# sib_run_named_at PORT DIR LOG CONFFN ZONE: run_named on a port fixed
# beforehand (the primary must name it in also-notify). Sets RUN_PID.
sib_run_named_at() {
	local port=$1 dir=$2 log=$3 conffn=$4 zone=$5
	"$conffn" "$dir" "$port" >"$dir/named.conf"
	named-checkconf "$dir/named.conf" || return 1
	named -g -n 1 -c "$dir/named.conf" >"$log" 2>&1 &
	RUN_PID=$!
	PIDS+=("$RUN_PID")
	wait_soa "$port" "$zone"
}

sib_cdn_conf() {
	local dir=$1 port=$2
	named_options "$dir" "$port"
	printf '\tnotify no;\n};\ncontrols { };\n'
	printf 'zone "cdn.test" { type primary; file "cdn.test.zone"; allow-update { 127.0.0.1; }; };\n'
	printf 'zone "cdn2.test" { type primary; file "cdn2.test.zone"; };\n'
}

# start_sib_cdn: flatlib's CDN, cdn.test dynamic and with the sibling
# targets (TTL 10).
start_sib_cdn() {
	local dir=$T_DIR/cdn
	mkdir -p "$dir"
	cat "$FLAT_ZONES/cdn.test.zone" "$SIB_ZONES/cdn.test.extra" >"$dir/cdn.test.zone"
	cp "$FLAT_ZONES/cdn2.test.zone" "$dir/"
	if ! run_named "$dir" "$T_DIR/cdn.extra.log" sib_cdn_conf cdn.test; then
		fail "CDN named did not start"
		finish
	fi
	# shellcheck disable=SC2153 # set by run_named (flatlib.sh)
	CDN_PORT=$RUN_PORT
	CDN_PID=$RUN_PID
	say "CDN named pid $CDN_PID on port $CDN_PORT"
}

# cdn_update LINES...: one UPDATE to the CDN's cdn.test ("update ..." lines).
cdn_update() {
	local l
	{
		echo "server 127.0.0.1 $CDN_PORT"
		echo "zone cdn.test"
		for l in "$@"; do echo "$l"; done
		echo "send"
	} | nsupdate -t 3
}

# primary_update LINES...: one UPDATE to the primary's sib.test, signed
# with the key.
primary_update() {
	local l
	{
		echo "server 127.0.0.1 $NAMED_PORT"
		echo "zone sib.test"
		for l in "$@"; do echo "$l"; done
		echo "send"
	} | nsupdate -t 3 -k "$SIB_KEY"
}

sib_primary_conf() {
	local dir=$1 port=$2 notify=""
	[[ -n $SIB_APEX_PORT ]] && notify+="127.0.0.1 port $SIB_APEX_PORT; "
	[[ -n $SEC_PORT ]] && notify+="127.0.0.1 port $SEC_PORT; "
	named_options "$dir" "$port"
	cat <<EOF
	key-directory "$dir/keys";
	notify explicit;
	also-notify { $notify};
};
controls { };
include "$SIB_KEY";
// dnssec-policy's default timings: no key state changes (CDS, rollover)
// within a test's minutes, so only UPDATEs move the serial. BIND 9.18
// signs a dynamic zone in place: no inline-signing (whose default 9.20
// turns to yes, hence spelled out).
zone "sib.test" {
	type primary;
	file "sib.test.zone";
	dnssec-policy default;
	inline-signing no;
	$(sib_update_acl)
	allow-transfer { key upd; };
};
EOF
}

# The primary's update ACL: update-policy when a case set one.
sib_update_acl() {
	if [[ -n $SIB_UPDATE_POLICY ]]; then
		echo "update-policy { $SIB_UPDATE_POLICY };"
	else
		echo "allow-update { $SIB_ALLOW_UPDATE };"
	fi
}

# sib_verified: the primary's sib.test, transferred with the key, passes
# dnssec-verify (every RRset signed, the NSEC chain complete; -z: the
# policy's one key is a CSK, there is no separate ZSK).
sib_verified() {
	dig @127.0.0.1 -p "$NAMED_PORT" +time=3 +tries=1 +noall +answer -k "$SIB_KEY" sib.test AXFR |
		awk '$4 != "TSIG"' >"$T_DIR/axfr.txt" &&
		grep -q 'IN[[:space:]]*NSEC[[:space:]]' "$T_DIR/axfr.txt" &&
		dnssec-verify -q -z -o sib.test "$T_DIR/axfr.txt" 2>&1
}

# wait_until SECONDS CMD [ARGS...]: run CMD every 0.5 s until it succeeds
# or SECONDS have passed; prints how long it took and, on failure, CMD's
# last output.
wait_until() {
	local limit=$1 t0 out rc
	shift
	t0=$(date +%s%N)
	while :; do
		rc=0
		out=$("$@" 2>&1) || rc=$?
		if [[ $rc -eq 0 ]]; then
			echo "after $((($(date +%s%N) - t0) / 1000000)) ms"
			return 0
		fi
		if (($(date +%s%N) - t0 > limit * 1000000000)); then
			printf '%s\n' "$out"
			echo "not within $limit s"
			return 1
		fi
		sleep 0.5
	done
}

# check_within SECONDS DESC CMD [ARGS...]: an assertion that CMD succeeds
# within SECONDS (wait_until); a pass says how long it took.
check_within() {
	local limit=$1 desc=$2 out rc=0
	shift 2
	out=$(wait_until "$limit" "$@" 2>&1) || rc=$?
	if [[ $rc -eq 0 ]]; then
		pass "$desc (${out##*$'\n'})"
	else
		fail "$desc (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
	return 0
}

# start_sib_primary: the signed, dynamic primary (after sib_keys); waits
# until the zone is fully signed. SIB_APEX_PORT and SEC_PORT (when set)
# get NOTIFY.
start_sib_primary() {
	mkdir -p "$SIB_DIR/keys"
	{
		cat "$SIB_ZONES/sib.test.zone"
		echo ";; ANAME records from anames.list, by docs/aname-line.sh"
		local owner ttl target
		while read -r owner ttl target; do
			[[ -z $owner || $owner == \#* ]] && continue
			sh "$ANAME_LINE" "$owner" "$ttl" "$target"
		done <"$SIB_ZONES/anames.list"
	} >"$SIB_DIR/sib.test.zone" || { fail "aname-line.sh failed for sib.test"; finish; }
	if ! run_named "$SIB_DIR" "$T_DIR/named.log" sib_primary_conf sib.test; then
		fail "primary named did not start"
		finish
	fi
	NAMED_PORT=$RUN_PORT
	NAMED_PID=$RUN_PID
	say "primary named pid $NAMED_PID on port $NAMED_PORT"
	check_within 20 "primary: sib.test signed by dnssec-policy (dnssec-verify of an AXFR)" sib_verified
}

# sib_allow_update ACL: the primary's allow-update becomes ACL; named
# rereads named.conf on SIGHUP (dynamic zones keep their journal).
sib_allow_update() {
	SIB_ALLOW_UPDATE=$1
	sib_primary_conf "$SIB_DIR" "$NAMED_PORT" >"$SIB_DIR/named.conf"
	named-checkconf "$SIB_DIR/named.conf" && kill -HUP "$NAMED_PID"
}

# sib_update_policy RULES: the primary's update-policy becomes RULES
# (SIGHUP, as sib_allow_update).
sib_update_policy() {
	SIB_UPDATE_POLICY=$1
	sib_primary_conf "$SIB_DIR" "$NAMED_PORT" >"$SIB_DIR/named.conf"
	named-checkconf "$SIB_DIR/named.conf" && kill -HUP "$NAMED_PID"
}

sib_secondary_conf() {
	local dir=$1 port=$2
	named_options "$dir" "$port"
	cat <<EOF
	notify no;
};
controls { };
include "$SIB_KEY";
zone "sib.test" {
	type secondary;
	file "sib.test.sec";
	primaries { 127.0.0.1 port $NAMED_PORT key upd; };
};
EOF
}

# start_sib_secondary: the secondary on SEC_PORT (chosen before the
# primary started, which notifies it).
start_sib_secondary() {
	local dir=$T_DIR/secondary
	mkdir -p "$dir"
	if ! sib_run_named_at "$SEC_PORT" "$dir" "$T_DIR/secondary.extra.log" sib_secondary_conf sib.test; then
		fail "secondary named did not start on port $SEC_PORT"
		finish
	fi
	SEC_PID=$RUN_PID
	say "secondary named pid $SEC_PID on port $SEC_PORT"
}

# More [resolver] lines for sib_ini (a case's own, e.g. "ecs = yes").
SIB_RESOLVER_EXTRA=

# sib_ini KEYFILE: the apexd INI text of the sibling cases.
sib_ini() {
	cat <<EOF
[server]
control = $SIB_SOCK
[listen]
metrics = 127.0.0.1:$SIB_MPORT
[backend]
update-key = $1
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
$SIB_RESOLVER_EXTRA
[flatten]
min-ttl = 5s
[zone sib.test]
siblings = update
EOF
}

# start_sib_apexd [KEYFILE]: apexd on SIB_APEX_PORT (BIND notifies it
# there), the primary as backend, siblings = update with KEYFILE
# (default: the right key).
start_sib_apexd() {
	SIB_MPORT=$(new_port)
	# shellcheck disable=SC2034 # read by start_flat_apexd (flatlib.sh)
	FLAT_APEX_PORT=$SIB_APEX_PORT
	# shellcheck disable=SC2034
	FLAT_WAIT_ZONE=sib.test
	start_flat_apexd "$(sib_ini "${1:-$SIB_KEY}")"
}

# ctl ARGS...: apexctl on the cases' control socket.
ctl() { "$APEXCTL" -s "$SIB_SOCK" "$@"; }

# metric SERIES: its value on /metrics now; fails when the scrape fails or
# the series is absent.
metric() {
	curl -sf --max-time 5 "http://127.0.0.1:$SIB_MPORT/metrics" -o "$T_DIR/metrics.txt" &&
		"$PY" "$INT_DIR/promcheck.py" value "$T_DIR/metrics.txt" "$1" 2>/dev/null
}

# metric_is SERIES OP VALUE: test(1) on the series' value (float values
# are compared as integers).
metric_is() {
	local v
	v=$(metric "$1") || v=
	v=${v%.*}
	echo "$1 = ${v:-missing} (want $2 $3)"
	[[ -n $v ]] && test "$v" "$2" "$3"
}

# soa_serial PORT: sib.test's SOA serial at PORT.
soa_serial() {
	dig @127.0.0.1 -p "$1" +time=2 +tries=1 +nocookie +short sib.test SOA | awk '{print $3}'
}

# sib_trust_anchor: sib.test's KSK (flags 257), asked of apexd, written
# for unbound (SIB_TA.unbound), delv (SIB_TA.delv) and DNSViz (SIB_TA.keys).
sib_trust_anchor() {
	dig @127.0.0.1 -p "$APEX_PORT" +time=2 +tries=1 +nocookie +dnssec +nosplit +noall +answer \
		sib.test DNSKEY | awk '$4 == "DNSKEY" && $5 == 257' >"$SIB_TA.keys"
	[[ $(grep -c . "$SIB_TA.keys") -eq 1 ]] || { cat "$SIB_TA.keys"; return 1; }
	cp "$SIB_TA.keys" "$SIB_TA.unbound"
	awk '{ printf "trust-anchors {\n\t%s static-key %s %s %s \"%s\";\n};\n", $1, $5, $6, $7, $8 }' \
		"$SIB_TA.keys" >"$SIB_TA.delv"
}

# start_validator: unbound validating sib.test from its KSK, asking apexd
# (stub). Caches at most 2 s, so a change shows at once.
start_validator() {
	local dir=$T_DIR/validator
	mkdir -p "$dir"
	for _ in 1 2 3; do
		VAL_PORT=$(new_port)
		cat >"$dir/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $VAL_PORT
	do-ip6: no
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: "$dir/unbound.pid"
	use-syslog: no
	logfile: "$VAL_LOG"
	verbosity: 1
	val-log-level: 2
	module-config: "validator iterator"
	trust-anchor-file: "$SIB_TA.unbound"
	qname-minimisation: no
	prefetch: no
	num-threads: 1
	cache-max-ttl: 2
	cache-max-negative-ttl: 2
	local-zone: "test." nodefault
remote-control:
	control-enable: no
stub-zone:
	name: "sib.test"
	stub-addr: 127.0.0.1@$APEX_PORT
EOF
		if ! unbound-checkconf "$dir/unbound.conf" >"$dir/checkconf.out" 2>&1; then
			cat "$dir/checkconf.out"
			fail "unbound-checkconf (validator)"
			finish
		fi
		unbound -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
		VAL_PID=$!
		PIDS+=("$VAL_PID")
		if wait_soa "$VAL_PORT" sib.test; then
			say "validating unbound pid $VAL_PID on port $VAL_PORT"
			return 0
		fi
		stop_pid "$VAL_PID"
		grep -qi 'address already in use' "$VAL_LOG" "$dir/unbound.out" 2>/dev/null || break
	done
	cat "$dir/unbound.out" "$VAL_LOG" >&2
	fail "validating unbound did not start"
	finish
}

# delv_at PORT ARGS...: delv against PORT with sib.test's KSK as anchor.
delv_at() {
	local port=$1
	shift
	timeout 20 delv @127.0.0.1 -p "$port" -a "$SIB_TA.delv" +root=sib.test "$@"
}

# delv_ok PORT NAME TYPE WANT: delv says "fully validated" and the answer
# holds exactly the addresses WANT ("" for a validated negative answer).
delv_ok() {
	local out got
	out=$(delv_at "$1" "$2" "$3" 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	grep -q 'fully validated' <<<"$out" || return 1
	got=$(awk -v t="$3" '!/^;/ && $4 == t { print $5 }' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')
	[[ $got == "$4" ]] || { echo "addresses '$got', want '$4'"; return 1; }
}

# sq ARGS...: sibq.py (below), a DNSSEC-aware check of one answer.
sq() { "$PY" "$T_DIR/sibq.py" "$@"; }

# sq_addrs PORT NAME TYPE [--do]: the addresses of TYPE in the answer,
# sorted, one line (flatlib's cdn_addrs format).
sq_addrs() { sq --server "127.0.0.1:$1" "${@:2}" --print-addrs; }

cat >"$T_DIR/sibq.py" <<'PY'
#!/usr/bin/python3
"""One query (RD set), then assertions; exit 0 when all hold, 1 with the
answer printed otherwise, 2 on no reply. --print-addrs prints only the
sorted addresses of the qtype (space-separated) and exits 0."""
import argparse, sys
import dns.flags, dns.message, dns.query, dns.rcode, dns.rdatatype

p = argparse.ArgumentParser()
p.add_argument("name"); p.add_argument("type")
p.add_argument("--server", required=True)
p.add_argument("--do", action="store_true")
p.add_argument("--adflag", action="store_true", help="set AD in the query (RFC 6840 5.7)")
p.add_argument("--tcp", action="store_true")
p.add_argument("--rcode")
p.add_argument("--flag", action="append", default=[])
p.add_argument("--addrs", help="exact address set of the qtype's RRs ('' for none)")
p.add_argument("--signed", action="store_true", help="the qtype's RRset has an RRSIG")
p.add_argument("--ttl", help="LO:HI bounds of the qtype's TTL")
p.add_argument("--nodata-proof", action="store_true",
               help="authority: a signed NSEC at the name without the qtype")
p.add_argument("--print-addrs", action="store_true")
a = p.parse_args()
host, _, port = a.server.rpartition(":")
qtype = dns.rdatatype.from_text(a.type)
q = dns.message.make_query(a.name, qtype, want_dnssec=a.do, use_edns=0, payload=1232)
if a.adflag:
    q.flags |= dns.flags.AD
try:
    if a.tcp:
        r = dns.query.tcp(q, host, port=int(port), timeout=3)
    else:
        r = dns.query.udp(q, host, port=int(port), timeout=3)
except Exception as e:
    print(f"no reply to {a.name} {a.type}: {e!r}")
    sys.exit(2)
mine = [rr for rr in r.answer if rr.rdtype == qtype]
addrs = sorted(rd.address for rr in mine for rd in rr if hasattr(rd, "address"))
if a.print_addrs:
    print(" ".join(addrs))
    sys.exit(0)
bad = []
if a.rcode and r.rcode() != dns.rcode.from_text(a.rcode):
    bad.append(f"rcode {dns.rcode.to_text(r.rcode())}, expected {a.rcode}")
for f in a.flag:
    neg = f.startswith("!")
    bit = dns.flags.from_text(f.lstrip("!"))
    if bool(r.flags & bit) == neg:
        bad.append(f"flag {f.lstrip('!')} {'set' if r.flags & bit else 'clear'}")
if a.addrs is not None and addrs != sorted(a.addrs.split()):
    bad.append(f"addresses {addrs}, expected {sorted(a.addrs.split())}")
if a.signed and not any(rr.rdtype == dns.rdatatype.RRSIG and rr.covers == qtype for rr in r.answer):
    bad.append(f"no RRSIG covering {a.type} in the answer")
def nsec_types(rd):
    return {w * 256 + i * 8 + j for w, bm in rd.windows
            for i, b in enumerate(bm) for j in range(8) if b & (0x80 >> j)}
if a.nodata_proof:
    nsec = [rd for rr in r.authority if rr.rdtype == dns.rdatatype.NSEC
            and rr.name == q.question[0].name for rd in rr]
    if not nsec:
        bad.append("no NSEC at the name in the authority section")
    elif any(qtype in nsec_types(rd) for rd in nsec):
        bad.append(f"the NSEC lists {a.type}")
    if not any(rr.rdtype == dns.rdatatype.RRSIG and rr.covers == dns.rdatatype.NSEC for rr in r.authority):
        bad.append("no RRSIG over the NSEC")
if a.ttl:
    lo, hi = (int(x) for x in a.ttl.split(":"))
    ttls = sorted({rr.ttl for rr in mine})
    if not ttls or not all(lo <= t <= hi for t in ttls):
        bad.append(f"TTLs {ttls}, expected within [{lo}, {hi}]")
if bad:
    print("FAIL " + "; ".join(bad))
    print("  " + r.to_text().replace("\n", "\n  "))
    sys.exit(1)
print(f"OK {a.name} {a.type}: {dns.rcode.to_text(r.rcode())} {addrs}")
PY

# dnsviz SECONDS ARGS...: /usr/bin/dnsviz, bounded, with cases/dnsviz.sh's
# work-around for Debian 12's pygraphviz 1.7 (dnsviz issue 98: grok -t
# refuses trust anchors when pygraphviz.release is missing).
sib_dnsviz() {
	local limit=$1
	shift
	timeout "$limit" "$PY" - "$(command -v dnsviz)" "$@" <<'PY'
import runpy, sys, types
try:
    from pygraphviz import release  # noqa: F401
except ImportError:
    try:
        import pygraphviz
    except ImportError:
        pygraphviz = None
    if pygraphviz is not None:
        shim = types.ModuleType("pygraphviz.release")
        shim.version = pygraphviz.__version__
        sys.modules["pygraphviz.release"] = shim
        pygraphviz.release = shim
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
}

# dnsviz_clean GROK_JSON ZONE NAMES...: DNSViz found no error and no
# warning anywhere, ZONE is SECURE, every answer RRset is SECURE, and each
# name was analysed with NOERROR. Every problem is printed.
dnsviz_clean() {
	"$PY" - "$@" <<'PY'
import json, sys
path, zone, names = sys.argv[1], sys.argv[2].rstrip(".") + ".", sys.argv[3:]
doc = json.load(open(path))
kinds = {"errors": "error", "error": "error", "warnings": "warning", "warning": "warning"}
found, answers = [], []

def walk(o, where):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in kinds and isinstance(v, list):
                for e in v:
                    desc = e.get("description", e) if isinstance(e, dict) else e
                    found.append(f"{kinds[k]}: {'/'.join(where + [k])}: {desc}")
            if k == "answer" and isinstance(v, list):
                answers.extend(("/".join(where), rr.get("status")) for rr in v)
            walk(v, where + [k])
    elif isinstance(o, list):
        for i, v in enumerate(o):
            walk(v, where + [str(i)])

walk(doc, [])
bad = list(found)
if doc.get(zone, {}).get("zone", {}).get("status") != "SECURE":
    bad.append(f"{zone} zone status {doc.get(zone, {}).get('zone', {}).get('status')}, want SECURE")
for n in names:
    n = n.rstrip(".") + "."
    if doc.get(n, {}).get("status") != "NOERROR":
        bad.append(f"{n}: status {doc.get(n, {}).get('status')}, want NOERROR")
    for t in ("A", "AAAA"):
        if f"{n}/IN/{t}" not in doc.get(n, {}).get("queries", {}):
            bad.append(f"{n} {t} not analysed")
if not answers:
    bad.append("no answer RRsets in the analysis")
bad += [f"{w}: answer status {s}, want SECURE" for w, s in answers if s != "SECURE"]
print(f"{len(found)} errors/warnings, {len(answers)} answer RRsets")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
}

# sib_dnsviz_probe TAG NAMES...: dnsviz probe of sib.test at apexd (-A,
# the EDNS checks -E, one thread: see cases/dnsviz.sh), then grok with the
# KSK; leaves T_DIR/TAG.grok.json.
sib_dnsviz_probe() {
	local tag=$1 servers="ns1.sib.test=127.0.0.1:$APEX_PORT"
	shift
	sib_dnsviz 240 probe -A -E -t 1 -x "sib.test+:$servers" -o "$T_DIR/$tag.probe.json" "$@" &&
		sib_dnsviz 120 grok -t "$SIB_TA.keys" -r "$T_DIR/$tag.probe.json" -o "$T_DIR/$tag.grok.json" &&
		[[ -s $T_DIR/$tag.grok.json ]]
}

# sib_log_count REGEX: apexd log lines matching REGEX (extended).
sib_log_count() { grep -cE "$1" "$APEX_LOG" || true; }
