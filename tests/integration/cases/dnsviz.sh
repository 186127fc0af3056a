#!/usr/bin/env bash
# DNSViz through apexd: BIND serves an unsigned zone (plain.test) and a
# DNSSEC-signed one (signed.test), apexd sits in front with [zone]
# sections for both (cname = all, an ANAME in each, a real resolver), so
# every query goes through the flattening logic. `dnsviz probe` in
# authoritative mode asks apexd's address and port for the names apexd
# does not flatten, `dnsviz grok` (with signed.test's KSK as the trust
# anchor) analyses the answers, and no error may appear anywhere in its
# JSON. The signed zone must come out SECURE.
#
# Two controls, probed and analysed the same way, must give errors, so a
# DNSViz that finds nothing, or a parser that looks in the wrong place,
# fails the case instead of passing it: expired.test, the same zone signed
# with signatures that ran out in 2020 (DNSViz lists that under "errors"),
# and dark.test, whose apex is an ANAME to a target that cannot be
# resolved, without sibling addresses, so apexd answers A and AAAA there
# with SERVFAIL (listed under "error").
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need dnsviz

DV_ZONE=$ZONES_DIR/dnsviz/dnsviz.zone
DV_DIR=$T_DIR/dv
ZONES=(plain.test signed.test expired.test dark.test)

# dv_zone ZONE: the zone file for ZONE in DV_DIR, ANAME line appended.
# dark.test: no A or AAAA at the apex, where an ANAME points at
# www.slow.test, whose only server never answers.
dv_zone() {
	local z=$1
	{
		if [[ $z == dark.test ]]; then
			grep -Ev '^@[[:space:]].*IN[[:space:]]+(A|AAAA)[[:space:]]' "$DV_ZONE"
		else
			cat "$DV_ZONE"
		fi
		echo ";; ANAME records, by docs/aname-line.sh"
		sh "$ANAME_LINE" cdn 600 www.cdn.test.
		if [[ $z == dark.test ]]; then
			sh "$ANAME_LINE" @ 600 www.slow.test.
		fi
	} >"$DV_DIR/$z.zone"
}

# dv_sign ZONE [dnssec-signzone options]: a KSK and a ZSK for ZONE in
# DV_DIR, then ZONE.zone signed into ZONE.zone.signed.
dv_sign() {
	local z=$1 out
	shift
	if ! out=$(
		cd "$DV_DIR" &&
			dnssec-keygen -q -K "$DV_DIR" -a ECDSAP256SHA256 -f KSK "$z" &&
			dnssec-keygen -q -K "$DV_DIR" -a ECDSAP256SHA256 "$z" &&
			dnssec-signzone -q -S -K "$DV_DIR" -o "$z" "$@" \
				-f "$z.zone.signed" "$z.zone" 2>&1
	); then
		echo "$out"
		return 1
	fi
}

dv_conf() {
	local dir=$1 port=$2
	named_options "$dir" "$port"
	printf '\tnotify no;\n};\ncontrols { };\n'
	printf 'zone "plain.test" { type primary; file "plain.test.zone"; };\n'
	printf 'zone "signed.test" { type primary; file "signed.test.zone.signed"; };\n'
	printf 'zone "expired.test" { type primary; file "expired.test.zone.signed"; };\n'
	printf 'zone "dark.test" { type primary; file "dark.test.zone"; };\n'
}

mkdir -p "$DV_DIR"
for z in "${ZONES[@]}"; do
	dv_zone "$z" || { fail "zone file for $z"; finish; }
done
check "sign signed.test" dv_sign signed.test
# Valid for January 2020 only: every RRSIG has expired (-P: no check
# of the result, which would rightly refuse it).
check "sign expired.test (signatures expired in 2020)" \
	dv_sign expired.test -P -s 20200101000000 -e 20200201000000
if ! run_named "$DV_DIR" "$T_DIR/named.log" dv_conf plain.test; then
	fail "backend named did not start"
	finish
fi
NAMED_PORT=$RUN_PORT
NAMED_PID=$RUN_PID
say "backend named pid $NAMED_PID on port $NAMED_PORT"
start_cdn
# slow.test: a zone whose only server is a blackhole (dark.test's target).
start_blackhole
start_unbound "" "slow.test=127.0.0.1@$BLACKHOLE_PORT"
FLAT_WAIT_ZONE=plain.test
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[zone plain.test]
cname = all
[zone signed.test]
cname = all
[zone expired.test]
cname = all
[zone dark.test]"

# The flattening logic is live for these zones: the ANAME and the CNAME
# come back as the CDN's addresses (the signed zone too, without DO).
for z in plain.test signed.test; do
	check "$z: ANAME at cdn is flattened" \
		fq "cdn.$z" A --flag AA --addrs "$WWW_A" --no-cname
	check "$z: CNAME at cn is flattened (cname = all)" \
		fq "cn.$z" AAAA --flag AA --addrs "$WWW_AAAA" --no-cname
done

# ta.keys: the KSKs of signed.test and expired.test, the trust anchors
# grok validates from (neither zone has a parent to hold a DS).
grep -h -v '^;' "$DV_DIR"/Ksigned.test.+*.key "$DV_DIR"/Kexpired.test.+*.key |
	grep -E '[[:space:]]DNSKEY[[:space:]]+257[[:space:]]' >"$DV_DIR/ta.keys"
check "two trust anchors (KSKs)" test "$(grep -c DNSKEY "$DV_DIR/ta.keys")" -eq 2

# The servers DNSViz is told are authoritative: apexd, on its port, over
# IPv4 and (when the host has it) IPv6. "ZONE+" keeps DNSViz from asking
# the (unreachable) parents and root for the delegation.
servers="ns1.ZONE=127.0.0.1:$APEX_PORT"
if [[ $HAVE_V6 -eq 1 ]]; then
	servers+=",ns1.ZONE=[::1]:$APEX_PORT"
fi

# dnsviz SECONDS ARGS...: the dnsviz command, bounded in time, run so that `grok -t` works with
# Debian 12's pygraphviz 1.7. dnsviz 0.9.4 checks pygraphviz's version
# in the module pygraphviz.release, which pygraphviz 1.7 no longer has
# (github.com/dnsviz/dnsviz issue 98), and then refuses trust anchors
# with "pygraphviz is required, but not installed". Where that module is
# missing, one holding pygraphviz.__version__ is put in its place before
# the real /usr/bin/dnsviz runs; a dnsviz without the bug is run as is.
DNSVIZ_BIN=$(command -v dnsviz)
dnsviz() {
	local limit=$1
	shift
	timeout "$limit" "$PY" - "$DNSVIZ_BIN" "$@" <<'PY'
import runpy, sys, types
try:
    from pygraphviz import release  # noqa: F401
except ImportError:
    try:
        import pygraphviz
    except ImportError:
        pygraphviz = None  # dnsviz says so itself
    if pygraphviz is not None:
        shim = types.ModuleType("pygraphviz.release")
        shim.version = pygraphviz.__version__
        sys.modules["pygraphviz.release"] = shim
        pygraphviz.release = shim
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
}

# dv_run TAG ZONE NAMES...: probe NAMES at apexd for ZONE, then grok
# (with the trust anchors for the signed zones only: dnsviz 0.9.4's grok
# fails with a KeyError when given them for an unsigned zone). Leaves
# $DV_DIR/TAG.probe.json and TAG.grok.json.
dv_run() {
	local tag=$1 zone=$2 ta=()
	shift 2
	case $zone in signed.test | expired.test) ta=(-t "$DV_DIR/ta.keys") ;; esac
	# -E adds DNSViz's EDNS compatibility queries (unknown version, flag
	# and option, small buffer), which apexd must relay like BIND answers.
	# -t 1: with several threads, dnsviz 0.9.4 may analyse the zone as the
	# parent of www.ZONE while its own analysis is still waiting for a
	# slow answer, and then keeps only the parent's SOA and DNSKEY
	# queries: a zone's answers would silently go unchecked.
	dnsviz 240 probe -A -E -t 1 -x "$zone+:${servers//ZONE/$zone}" \
		-o "$DV_DIR/$tag.probe.json" "$@" || return 1
	dnsviz 120 grok "${ta[@]}" -r "$DV_DIR/$tag.probe.json" \
		-o "$DV_DIR/$tag.grok.json" || return 1
	[[ -s $DV_DIR/$tag.grok.json ]]
}

# dv_verdict GROK_JSON MODE ZONE NAMES...: every "errors" and "warnings"
# list anywhere in DNSViz's JSON is printed (warnings do not fail).
#   clean   ZONE and every name are in the analysis with status NOERROR,
#           with their A and AAAA queries (and, for ZONE, SOA, MX, DNSKEY
#           and a made-up name for NXDOMAIN), and there is no error;
#   secure  clean, and ZONE's status and that of every RRset in an
#           answer is SECURE (validated from the trust anchor);
#   broken:CODE  at least one error, and one of them has code CODE.
dv_verdict() {
	"$PY" - "$@" <<'PY'
import json, sys
path, mode, names = sys.argv[1], sys.argv[2], sys.argv[3:]
doc = json.load(open(path))
found = {"errors": [], "warnings": []}
# DNSViz 0.9.4 writes problems of an RRset, a proof or a zone as
# "errors"/"warnings", and those of a query's responses (a bad RCODE, no
# answer) as "error"/"warning".
kinds = {"errors": "errors", "error": "errors", "warnings": "warnings", "warning": "warnings"}
answer_status = []

def walk(o, where):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in kinds and isinstance(v, list):
                for e in v:
                    found[kinds[k]].append((where + [k], e))
            if k == "answer" and isinstance(v, list):
                for rr in v:
                    answer_status.append(("/".join(where), rr.get("status")))
            walk(v, where + [k])
    elif isinstance(o, list):
        for i, v in enumerate(o):
            walk(v, where + [str(i)])

walk(doc, [])
for kind in ("errors", "warnings"):
    for where, e in found[kind]:
        desc = e.get("description", e) if isinstance(e, dict) else e
        print(f"{kind[:-1]}: {'/'.join(where)}: {desc}")
bad = []
zone = names[0].rstrip(".") + "."
if mode.startswith("broken:"):
    want = mode.split(":", 1)[1]
    codes = {e.get("code") for _, e in found["errors"] if isinstance(e, dict)}
    if want not in codes:
        bad.append(f"no {want} error (codes: {sorted(c for c in codes if c)})")
else:
    for n in names:
        name = n.rstrip(".") + "."
        if name not in doc:
            bad.append(f"{name} missing from the analysis")
            continue
        if doc[name].get("status") != "NOERROR":
            bad.append(f"{name} status {doc[name].get('status')}")
        queries = doc[name].get("queries", {})
        want = ["A", "AAAA"] + (["SOA", "MX", "DNSKEY"] if name == zone else [])
        for t in want:
            if f"{name}/IN/{t}" not in queries:
                bad.append(f"{name} {t} was not probed or not analysed")
        if name == zone and not any(q.endswith("/IN/A") and q != f"{name}/IN/A"
                                    and q.endswith(f".{name}/IN/A") for q in queries):
            bad.append(f"no NXDOMAIN probe under {name}")
    if found["errors"]:
        bad.append(f"{len(found['errors'])} error(s)")
    if mode == "secure":
        st = doc.get(zone, {}).get("zone", {}).get("status")
        if st != "SECURE":
            bad.append(f"{zone} zone status {st}, want SECURE")
        if not answer_status:
            bad.append("no answer RRsets in the analysis")
        for where, st in answer_status:
            if st != "SECURE":
                bad.append(f"{where}: answer status {st}, want SECURE")
print(f"{len(found['errors'])} errors, {len(found['warnings'])} warnings, "
      f"{len(answer_status)} answer RRsets")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
}

probe_and_judge() {
	local tag=$1 mode=$2 zone=$3
	shift 3
	dv_run "$tag" "$zone" "$zone" "$@" || return 1
	dv_verdict "$DV_DIR/$tag.grok.json" "$mode" "$zone" "$@"
}

check "dnsviz: plain.test through apexd, no errors" \
	probe_and_judge plain clean plain.test www.plain.test mail.plain.test
check "dnsviz: signed.test through apexd, no errors, SECURE" \
	probe_and_judge signed secure signed.test www.signed.test mail.signed.test
check "dnsviz control: expired.test's old signatures are errors" \
	probe_and_judge expired broken:EXPIRATION_IN_PAST expired.test www.expired.test
check "dnsviz control: dark.test's SERVFAIL at the apex is an error" \
	probe_and_judge dark broken:INVALID_RCODE dark.test www.dark.test

# DNSViz's queries were answered by apexd, not by chance elsewhere: they
# are in apexd's counters (the three probes send about 100 queries; 60 is
# a floor well above the flattening checks), and apexd exits cleanly.
stop_flat_apexd
check "apexd relayed the probes" stat_is answers_relayed -ge 60
check "apexd flattened the checks above" stat_is answers_flattened -ge 4
finish
