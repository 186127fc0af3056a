#!/usr/bin/env bash
# bench/siblings.sh - sibling upkeep (issue 13) with 10 000 ANAME owners:
# time to the first complete round, UPDATEs at steady state, memory per
# owner.
#
#     bench/siblings.sh                        # both modes, about 10 min on 2 cores
#     MODES=unsigned OWNERS=2000 WINDOW=90 bench/siblings.sh
#
# The cast, all on 127.0.0.1, on free ports in 20000-29999, each started
# here, recorded by PID and stopped by PID on exit:
#   the CDN       `named -g` authoritative for cdn.test: t1..tN.cdn.test,
#                 one A each, every AAAA_EVERYth also an AAAA, TTL
#                 TARGET_TTL (so the steady-state window sees refreshes)
#   unbound       the resolver apexd chases through ([resolver]), a
#                 stub-zone for cdn.test to the CDN; log-queries, so its
#                 log counts apexd's chase queries
#   the primary   `named -g` with big.test (SOA, NS, o1..oN.big.test with
#                 an ANAME each, TYPE65401 to tI.cdn.test) and empty.test,
#                 both dynamic for a tsig-keygen key (allow-update,
#                 allow-transfer), notify explicit to apexd's UDP port;
#                 in the signed mode both zones have a dnssec-policy and
#                 apexd starts once BIND has signed every name
#   apexd         [backend] update-key, [server] control, [listen] metrics,
#                 [zone big.test] siblings = update. First a baseline
#                 apexd with only [zone empty.test] siblings = update (its
#                 RSS is "before the owners are loaded"), then the one
#                 measured.
# For each mode (MODES, fresh primary, unbound and apexd each time; the
# CDN is shared) bench/siblings.py measures:
#   1. apexd start -> every owner's A (and every AAAA the CDN has) written
#      (apexd_sibling_changes_total), the UPDATEs it took, BIND's serial,
#      then one AXFR from BIND to count the siblings;
#   2. a WINDOW of stable targets: UPDATEs per minute (target 0), the SOA
#      serial before and after (target: equal), apexd's CPU (utime+stime)
#      per chase query, the chases (metrics, and unbound's log);
#   3. apexd_sibling_bytes / owners, and VmRSS after vs the baseline's,
#      per owner.
#
# Environment:
#   OWNERS         ANAME owners in big.test (default 10000)
#   TARGET_TTL     TTL of the CDN's records (default 30)
#   AAAA_EVERY     every Nth target also has an AAAA (default 4; 0: none)
#   WINDOW         steady-state seconds (default 4 x TARGET_TTL; at least
#                  3 x TARGET_TTL is enforced)
#   LIMIT          seconds allowed for the first round (default 900)
#   SIGN_LIMIT     seconds allowed for BIND's initial signing (default 900)
#   MODES          any of: signed unsigned (default both)
#   APEXD_THREADS  apexd's [server] threads (default 1: upkeep runs on the
#                  main thread; the workers only answer queries)
#   APEXD          an apexd binary to use instead of building one
#   NO_BUILD=1     do not run cmake (use build-bench/ as it is)
#   SETUP_ONLY=1   no apexd: start the CDN, unbound and the primary of
#                  each mode, check them (a target through unbound, AXFR
#                  and one UPDATE with the key by dig/nsupdate), stop
#
# Outputs stay in .run/siblings/ (gitignored) until the next run:
# results.txt (the figures), <mode>.json (everything measured), the logs
# and configurations of every process.
#
# bench/lib.sh (shared with run.sh, soak.sh and profile.sh) starts and
# stops processes; bench/siblings.py generates the zones, waits, measures
# and reports.
set -euo pipefail
BENCH_TAG=siblings
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/siblings
DATA=$RUN/data
SIB=("$PY" "$BENCH/siblings.py")

OWNERS=${OWNERS:-10000}
TARGET_TTL=${TARGET_TTL:-30}
AAAA_EVERY=${AAAA_EVERY:-4}
WINDOW=${WINDOW:-$((4 * TARGET_TTL))}
LIMIT=${LIMIT:-900}
SIGN_LIMIT=${SIGN_LIMIT:-900}
MODES=${MODES:-signed unsigned}
APEXD_THREADS=${APEXD_THREADS:-1}
((WINDOW >= 3 * TARGET_TTL)) || die "WINDOW ($WINDOW s) must be at least 3 x TARGET_TTL ($TARGET_TTL s)"
for mode in $MODES; do
	[[ $mode == signed || $mode == unsigned ]] || die "MODES: unknown mode $mode"
done

for tool in named named-checkconf tsig-keygen nsupdate unbound unbound-checkconf dig cmake; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run tests/bootstrap.sh (and apt-get install unbound)"
done
"$PY" -c 'import dns.message' 2>/dev/null || die "$PY cannot import dns (python3-dnspython)"

SETUP_ONLY=${SETUP_ONLY:-0}
APEXD_GIVEN=${APEXD:+APEXD=$APEXD }
[[ $SETUP_ONLY == 1 ]] || build_apexd apexd

rm -rf "$RUN"
mkdir -p "$RUN" "$DATA"

say "generating zones: $OWNERS ANAME owners, targets with TTL $TARGET_TTL s"
GEN=$("${SIB[@]}" gen "$DATA" --owners "$OWNERS" --ttl "$TARGET_TTL" --aaaa-every "$AAAA_EVERY")
N_AAAA=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["aaaa"])' "$GEN")
# The ANAME lines are written in Python for speed; they must be what the
# documented tool writes.
want=$(sh "$ROOT/docs/aname-line.sh" o1 3600 t1.cdn.test)
got=$(grep '^o1 ' "$DATA/big.test.zone")
[[ $want == "$got" ]] || die "ANAME line differs from docs/aname-line.sh: '$got' vs '$want'"
tsig-keygen -a hmac-sha256 bench-update >"$RUN/update.key"

# named_options DIR PORT: the options block both servers share (open).
named_options() {
	cat <<EOF
options {
	directory "$1";
	pid-file "$1/named.pid";
	lock-file "$1/named.lock";
	session-keyfile "$1/session.key";
	managed-keys-directory "$1";
	listen-on port $2 { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	minimal-responses yes;
	allow-transfer { none; };
EOF
}

# start_named NAME DIR ZONE PORT: named -g with DIR/named.conf, logging
# to RUN/NAME.log, up once ZONE SOA is answered on PORT. Sets NAMED_PID.
start_named() {
	local name=$1 dir=$2 zone=$3 port=$4
	named-checkconf -z "$dir/named.conf" >"$dir/checkconf.out" 2>&1 || {
		cat "$dir/checkconf.out" >&2
		die "$name: named-checkconf"
	}
	spawn "$RUN/$name.log" named -g -c "$dir/named.conf"
	NAMED_PID=$LAST_PID
	"${SIB[@]}" wait-soa "$port" "$zone" 30 || {
		tail -20 "$RUN/$name.log" >&2
		die "$name does not answer on $port"
	}
}

start_cdn() {
	local dir=$RUN/cdn
	mkdir -p "$dir"
	cp "$DATA/cdn.test.zone" "$dir/"
	free_port
	CDN_PORT=$FP
	{
		named_options "$dir" "$CDN_PORT"
		printf '\tnotify no;\n};\ncontrols { };\n'
		printf 'zone "cdn.test" { type primary; file "cdn.test.zone"; };\n'
	} >"$dir/named.conf"
	start_named cdn "$dir" cdn.test "$CDN_PORT"
	CDN_PID=$NAMED_PID
	say "CDN named pid $CDN_PID on port $CDN_PORT"
}

# start_unbound DIR: unbound in the foreground, stub-zone cdn.test to the
# CDN, every query it receives logged. Sets UNBOUND_PORT, UNBOUND_PID,
# UNBOUND_LOG.
start_unbound() {
	local dir=$1
	mkdir -p "$dir"
	free_port
	UNBOUND_PORT=$FP
	UNBOUND_LOG=$dir/unbound.log
	cat >"$dir/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $UNBOUND_PORT
	do-ip6: no
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: "$dir/unbound.pid"
	use-syslog: no
	logfile: "$UNBOUND_LOG"
	log-queries: yes
	verbosity: 1
	module-config: "iterator"
	qname-minimisation: no
	prefetch: no
	num-threads: 1
	# Every target stays cached for its whole TTL.
	msg-cache-size: 32m
	rrset-cache-size: 64m
	# RFC 6761 names are local zones by default; cdn.test is a stub.
	local-zone: "test." nodefault
remote-control:
	control-enable: no
stub-zone:
	name: "cdn.test"
	stub-addr: 127.0.0.1@$CDN_PORT
EOF
	unbound-checkconf "$dir/unbound.conf" >"$dir/checkconf.out" 2>&1 || {
		cat "$dir/checkconf.out" >&2
		die "unbound-checkconf"
	}
	spawn "$dir/unbound.out" unbound -d -c "$dir/unbound.conf"
	UNBOUND_PID=$LAST_PID
	"${SIB[@]}" wait-soa "$UNBOUND_PORT" cdn.test 15 || {
		cat "$dir/unbound.out" "$UNBOUND_LOG" >&2
		die "unbound does not answer on $UNBOUND_PORT"
	}
	say "unbound pid $UNBOUND_PID on port $UNBOUND_PORT"
}

# primary_conf DIR PORT SIGNED NOTIFY_PORT: the primary's named.conf.
primary_conf() {
	local dir=$1 port=$2 signed=$3 notify=$4 z policy=
	named_options "$dir" "$port"
	printf '\tnotify explicit;\n\talso-notify { 127.0.0.1 port %s; };\n' "$notify"
	printf '\tkey-directory "%s";\n};\ncontrols { };\n' "$dir"
	printf 'include "%s";\n' "$RUN/update.key"
	if [[ $signed == signed ]]; then
		# One CSK that never rolls: nothing but apexd's UPDATEs changes
		# the zone during a run. The larger signing quanta only shorten
		# BIND's initial signing (100 nodes a quantum by default, about a
		# minute for 10 000 owners here); UPDATEs are signed as they are
		# applied, whatever these say.
		printf 'dnssec-policy "bench" {\n\tkeys { csk lifetime unlimited algorithm ecdsap256sha256; };\n};\n'
		policy='dnssec-policy "bench"; sig-signing-nodes 1000; sig-signing-signatures 1000; '
	fi
	for z in big.test empty.test; do
		printf 'zone "%s" { type primary; file "%s.zone"; %sallow-update { key bench-update; }; allow-transfer { key bench-update; }; };\n' \
			"$z" "$z" "$policy"
	done
}

# apexd_ini FILE ZONE APEX_PORT METRICS_PORT: apexd keeping ZONE's
# siblings in the primary.
apexd_ini() {
	cat >"$1" <<EOF
[server]
threads = $APEXD_THREADS
log-level = info
control = ${1%.ini}.sock

[listen]
udp = 127.0.0.1:$3
tcp = 127.0.0.1:$3
metrics = 127.0.0.1:$4

[backend]
address = 127.0.0.1:$BIND_PORT
timeout = 2s
update-key = $RUN/update.key

[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT

[flatten]
cache-size = 64M

[zone $2]
siblings = update
EOF
	"$APEXD" --check-config -c "$1" >"${1%.ini}.check" 2>&1 || {
		cat "${1%.ini}.check" >&2
		die "apexd --check-config $1"
	}
}

# wait_metrics PID PORT: until apexd's metrics endpoint accepts (10 s).
wait_metrics() {
	"$PY" "$BENCH/lib.py" wait-tcp "$2" 10 && proc_alive "$1"
}

# start_primary MODE DIR: the primary named for MODE (signed: wait until
# BIND has signed both zones). Sets BIND_PORT, BIND_PID, APEX_PORT (where
# BIND sends NOTIFY) and SIGNING (seconds BIND took to sign, signed only).
start_primary() {
	local mode=$1 dir=$2
	SIGNING=
	mkdir -p "$dir/named"
	cp "$DATA/big.test.zone" "$DATA/empty.test.zone" "$dir/named/"
	free_port
	BIND_PORT=$FP
	free_port
	APEX_PORT=$FP
	primary_conf "$dir/named" "$BIND_PORT" "$mode" "$APEX_PORT" >"$dir/named/named.conf"
	start_named "$mode-primary" "$dir/named" big.test "$BIND_PORT"
	BIND_PID=$NAMED_PID
	say "$mode: primary named pid $BIND_PID on port $BIND_PORT"
	if [[ $mode == signed ]]; then
		SIGNING=$("${SIB[@]}" wait-signed "$BIND_PORT" big.test "$RUN/update.key" "$SIGN_LIMIT") ||
			die "$mode: BIND did not sign big.test within $SIGN_LIMIT s"
		"${SIB[@]}" wait-signed "$BIND_PORT" empty.test "$RUN/update.key" 60 >/dev/null ||
			die "$mode: BIND did not sign empty.test"
		say "$mode: BIND signed big.test in $SIGNING s"
	fi
}

# check_setup MODE: what SETUP_ONLY=1 checks, with the tools an operator
# would use.
check_setup() {
	local mode=$1 out n
	out=$(dig @127.0.0.1 -p "$UNBOUND_PORT" +time=2 +tries=1 +short "t$OWNERS.cdn.test" A)
	[[ -n $out ]] || die "$mode: unbound does not resolve t$OWNERS.cdn.test"
	say "$mode: t$OWNERS.cdn.test A through unbound: $out"
	out=$(dig @127.0.0.1 -p "$BIND_PORT" +time=2 +tries=1 big.test AXFR)
	[[ $out == *"Transfer failed"* ]] || die "$mode: AXFR without the key was not refused"
	out=$(dig @127.0.0.1 -p "$BIND_PORT" +time=10 +tries=1 -k "$RUN/update.key" big.test AXFR)
	n=$(awk '$4 == "TYPE65401"' <<<"$out" | wc -l)
	[[ $n == "$OWNERS" ]] || die "$mode: AXFR with the key: $n ANAME RRs, want $OWNERS"
	say "$mode: AXFR with the key: $n ANAME RRs, $(awk '$4 == "RRSIG"' <<<"$out" | wc -l) RRSIGs"
	nsupdate -k "$RUN/update.key" <<EOF || die "$mode: nsupdate with the key failed"
server 127.0.0.1 $BIND_PORT
zone big.test
prereq yxrrset o1.big.test TYPE65401
update delete o1.big.test A
update add o1.big.test 30 A 10.0.0.1
send
EOF
	out=$(dig @127.0.0.1 -p "$BIND_PORT" +time=2 +tries=1 +dnssec o1.big.test A)
	[[ $out == *"10.0.0.1"* ]] || die "$mode: the UPDATE did not land"
	say "$mode: UPDATE with the key: o1.big.test A 10.0.0.1, $(grep -c 'RRSIG' <<<"$out" || true) RRSIG"
}

# run_mode MODE: one complete measurement.
run_mode() {
	local mode=$1 dir=$RUN/$1
	start_primary "$mode" "$dir"
	local bind_pid=$BIND_PID apex_port=$APEX_PORT signing=$SIGNING
	start_unbound "$dir/unbound"
	if [[ $SETUP_ONLY == 1 ]]; then
		check_setup "$mode"
		stop_pid "$UNBOUND_PID"
		stop_pid "$bind_pid"
		return 0
	fi

	# The baseline: the same apexd with a sibling zone of no owners.
	free_port
	local b_port=$FP
	free_port
	local b_metrics=$FP
	apexd_ini "$dir/baseline.ini" empty.test "$b_port" "$b_metrics"
	spawn "$dir/baseline.log" "$APEXD" -c "$dir/baseline.ini"
	local b_pid=$LAST_PID
	wait_metrics "$b_pid" "$b_metrics" || {
		tail -20 "$dir/baseline.log" >&2
		die "$mode: baseline apexd did not start"
	}
	"${SIB[@]}" baseline --metrics "$b_metrics" --pid "$b_pid" --out "$dir/baseline.json" ||
		say "$mode: WARNING: no baseline RSS"
	stop_pid "$b_pid"

	free_port
	local m_port=$FP
	apexd_ini "$dir/apexd.ini" big.test "$apex_port" "$m_port"
	local serial0
	serial0=$(dig @127.0.0.1 -p "$BIND_PORT" +time=2 +tries=2 +short big.test SOA | awk '{print $3}')
	local t0
	t0=$(date +%s.%N)
	spawn "$dir/apexd.log" "$APEXD" -c "$dir/apexd.ini"
	local apex_pid=$LAST_PID
	wait_metrics "$apex_pid" "$m_port" || {
		tail -20 "$dir/apexd.log" >&2
		die "$mode: apexd did not start"
	}
	say "$mode: apexd pid $apex_pid ($("$APEXD" --version 2>&1 | head -1)), metrics on $m_port"
	local rc=0
	"${SIB[@]}" run --mode "$mode" --run "$RUN" --pid "$apex_pid" --bind-pid "$bind_pid" \
		--metrics "$m_port" --bind-port "$BIND_PORT" --key "$RUN/update.key" \
		--owners "$OWNERS" --aaaa "$N_AAAA" --ttl "$TARGET_TTL" --window "$WINDOW" \
		--limit "$LIMIT" --t0 "$t0" ${serial0:+--serial0 "$serial0"} \
		${signing:+--signing-s "$signing"} --baseline "$dir/baseline.json" \
		--unbound-log "$UNBOUND_LOG" --apexd-log "$dir/apexd.log" || rc=$?
	[[ $rc == 0 ]] || say "$mode: the first round did not complete (see $dir/apexd.log)"
	stop_pid "$apex_pid"
	stop_pid "$UNBOUND_PID"
	stop_pid "$bind_pid"
}

start_cdn
for mode in $MODES; do
	run_mode "$mode"
done
stop_pid "$CDN_PID"
[[ $SETUP_ONLY == 0 ]] || exit 0

# shellcheck disable=SC2086 # MODES is a list
"${SIB[@]}" report --run "$RUN" --command "${APEXD_GIVEN}OWNERS=$OWNERS TARGET_TTL=$TARGET_TTL AAAA_EVERY=$AAAA_EVERY WINDOW=$WINDOW MODES=\"$MODES\" APEXD_THREADS=$APEXD_THREADS bench/siblings.sh" $MODES
say "results in $RUN/results.txt"
