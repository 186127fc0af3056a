#!/usr/bin/env bash
# SIGHUP applies a changed file to a running apexd, item by item, each
# shown to take effect: a new [alias] flattens and a removed one stops, a
# new [zone] flattens, the resolvers change, the TTL bounds change, the
# log level changes both ways; [server] threads, [backend] address and
# [server] user changes are logged as needing a restart. A bad file keeps
# the running configuration and every one of its errors is logged.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_cdn
start_blackhole
start_unbound
RESOLVER="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms"

# rewrite EXTRA [write_ini overrides...]: the file apexd reads, on the
# same port, with EXTRA appended.
rewrite() {
	local extra=$1
	shift
	write_ini "$T_DIR/apexd.ini" "$APEX_PORT" "127.0.0.1:$NAMED_PORT" "$@"
	printf '\n%s\n' "$extra" >>"$T_DIR/apexd.ini"
}

start_flat_apexd "$RESOLVER
[zone example.test]"
check "before: the apex flattens (ANAME)" fq example.test A --rcode NOERROR --addrs "$WWW_A"
check "before: alias-owner is BIND's NXDOMAIN (no [alias] yet)" \
	fq alias-owner.example.test A --rcode NXDOMAIN
check "before: other.test apex is BIND's NODATA (no [zone other.test] yet)" \
	fq other.test A --rcode NOERROR --answers 0

# --- a new [alias] and a new [zone] --------------------------------------
rewrite "$RESOLVER
[zone example.test]
[zone other.test]
[alias]
alias-owner.example.test = www.cdn.test"
check "SIGHUP with a new [zone] and [alias]: reloaded" hup_wait
check "  the log says so" last_reload_ok
check "  and names them" grep -q 'reload: alias alias-owner.example.test. -> www.cdn.test. added' "$APEX_LOG"
check "new [alias] flattens after reload (A)" fq alias-owner.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
check "new [alias] flattens after reload (AAAA, TCP)" fq --tcp alias-owner.example.test AAAA --rcode NOERROR --addrs "$WWW_AAAA"
check "new [zone other.test]: its apex ANAME flattens" fq other.test A --rcode NOERROR --flag AA --addrs 198.51.100.50
check "the old zone still flattens" fq example.test A --rcode NOERROR --addrs "$WWW_A"

# --- TTL bounds ------------------------------------------------------------
rewrite "$RESOLVER
[flatten]
min-ttl = 100s
max-ttl = 200s
[zone example.test]
[zone other.test]
[alias]
alias-owner.example.test = www.cdn.test"
check "SIGHUP with min-ttl 100s: reloaded" hup_wait
check "min-ttl applies: www.cdn.test's 45 s becomes 100" fq example.test A --rcode NOERROR --addrs "$WWW_A" --ttl 100:100

# --- a removed [alias], a removed [zone] -----------------------------------
rewrite "$RESOLVER
[zone example.test]"
check "SIGHUP without the [alias] and [zone other.test]: reloaded" hup_wait
check "  the log names the removed alias" grep -q 'reload: alias alias-owner.example.test. removed' "$APEX_LOG"
check "removed [alias] stops: BIND's NXDOMAIN again" fq alias-owner.example.test A --rcode NXDOMAIN
check "removed [zone]: other.test apex relayed as BIND's NODATA" fq other.test A --rcode NOERROR --answers 0
check "min-ttl back to its default: TTL <= 45" fq example.test A --rcode NOERROR --addrs "$WWW_A" --ttl 1:45

# --- resolvers -------------------------------------------------------------
# The blackhole never answers: a target not cached yet now fails (after
# the resolver timeout) and the blackhole sees the query.
seen=$(blackhole_count)
rewrite "[resolver]
addresses = 127.0.0.1:$BLACKHOLE_PORT
timeout = 300ms
[zone example.test]"
check "SIGHUP with another resolver: reloaded" hup_wait
check "  the log shows the new resolver" grep -q "reload: resolvers now 127.0.0.1:$BLACKHOLE_PORT" "$APEX_LOG"
check "a fresh chase goes to the new resolver and fails there (SERVFAIL)" \
	fq noaaaa.example.test A --rcode SERVFAIL --ede-any
check "  the new resolver got the query" bash -c "[[ \$(grep -c . '$BLACKHOLE_LOG') -gt $seen ]]"
rewrite "$RESOLVER
[zone example.test]"
check "SIGHUP back to unbound: reloaded" hup_wait
check "a fresh chase through unbound again (big -> many.cdn.test)" \
	fq big.example.test AAAA --tcp --rcode NOERROR --min-answers 40
saw_many() { [[ $(unbound_saw many.cdn.test) -ge 1 ]]; }
check "  unbound saw it" saw_many

# --- log level -------------------------------------------------------------
rewrite "$RESOLVER
[zone example.test]" log-level=debug
check "SIGHUP with log-level debug: reloaded" hup_wait
check "  the log says info -> debug" grep -q 'reload: log-level info -> debug' "$APEX_LOG"
dbg_before=$(grep -c ' debug ' "$APEX_LOG" || true)
# A CNAME loop at the CDN: the chase fails and apexd writes SERVFAIL
# itself, both debug lines ("chase failed", "SERVFAIL to client").
check "a chase that fails (loop at the CDN): SERVFAIL" fq loop.example.test A --rcode SERVFAIL
check "debug lines appear after the reload" bash -c "[[ \$(grep -c ' debug ' '$APEX_LOG') -gt $dbg_before ]]"
rewrite "$RESOLVER
[zone example.test]" log-level=warning
check "SIGHUP with log-level warning: reloaded (the last info line)" hup_wait
n_info=$(grep -c ' info ' "$APEX_LOG" || true)
n_dbg=$(grep -c ' debug ' "$APEX_LOG" || true)
kill -HUP "$APEX_PID"
fq loop.example.test AAAA >/dev/null 2>&1 || true
sleep 1
check "log-level warning: a further reload and a failed chase write no info line" \
	bash -c "[[ \$(grep -c ' info ' '$APEX_LOG') -eq $n_info ]]"
check "  nor debug lines" bash -c "[[ \$(grep -c ' debug ' '$APEX_LOG') -eq $n_dbg ]]"
rewrite "$RESOLVER
[zone example.test]"
check "SIGHUP back to log-level info: logged again" hup_wait
check "  the log says warning -> info" grep -q 'reload: log-level warning -> info' "$APEX_LOG"

# --- keys that need a restart -------------------------------------------------
rewrite "$RESOLVER
[zone example.test]" threads=3
check "SIGHUP with threads = 3: reloaded anyway" hup_wait
check "  threads change logged as not applied" \
	grep -q 'reload: \[server\] threads changed from 2 to 3 in .*: not applied, restart apexd to apply it' "$APEX_LOG"
rewrite "$RESOLVER
[zone example.test]"
sed -i "s/^address = 127.0.0.1:$NAMED_PORT/address = 127.0.0.1:$BLACKHOLE_PORT/" "$T_DIR/apexd.ini"
check "SIGHUP with another [backend] address: reloaded anyway" hup_wait
check "  backend change logged as not applied" \
	grep -q "reload: \[backend\] address changed from 127.0.0.1:$NAMED_PORT to 127.0.0.1:$BLACKHOLE_PORT" "$APEX_LOG"
check "  and queries still go to the running backend" fq example.test SOA --rcode NOERROR
# apexd runs as root here (no user at start): a user given by a reload
# cannot be dropped to without a restart, and must say so, not be lost.
rewrite "$RESOLVER
[zone example.test]
[server]
user = nobody"
check "SIGHUP with [server] user = nobody: reloaded anyway" hup_wait
check "  user change logged as not applied" \
	grep -q 'reload: \[server\] user changed from "" to "nobody" in .*: not applied, restart apexd to apply it' "$APEX_LOG"
check "  apexd still runs as the user it started as" \
	bash -c "[[ \$(awk '/^Uid:/ {print \$2}' /proc/$APEX_PID/status) == \$(id -u) ]]"

# --- a bad file ------------------------------------------------------------------
rewrite "$RESOLVER
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test"
check "SIGHUP: alias back" hup_wait
cp "$T_DIR/apexd.ini" "$T_DIR/good.ini"
# Three errors on known lines: a bad value, an unknown key, an alias
# outside every zone.
{
	cat "$T_DIR/good.ini"
	printf '[flatten]\nmax-chain = banana\nno-such-key = 1\n[alias]\nwww.elsewhere.test = www.cdn.test\n'
} >"$T_DIR/apexd.ini"
l_chain=$(grep -n '^max-chain = banana' "$T_DIR/apexd.ini" | cut -d: -f1)
l_key=$(grep -n '^no-such-key' "$T_DIR/apexd.ini" | cut -d: -f1)
l_alias=$(grep -n '^www.elsewhere.test' "$T_DIR/apexd.ini" | cut -d: -f1)
check "SIGHUP with a bad file: apexd answers it" hup_wait
check "  the reload is refused, 3 errors" bash -c "grep -E 'reload: configuration reloaded from|reload failed:' '$APEX_LOG' | tail -n1 | grep -q 'reload failed: 3 errors'"
check "  error 1 logged: FILE:LINE [flatten] max-chain" grep -q "reload: $T_DIR/apexd.ini:$l_chain: \[flatten\] max-chain:" "$APEX_LOG"
check "  error 2 logged: FILE:LINE [flatten] no-such-key" grep -q "reload: $T_DIR/apexd.ini:$l_key: \[flatten\] no-such-key: unknown key" "$APEX_LOG"
check "  error 3 logged: FILE:LINE [alias] outside every zone" grep -q "reload: $T_DIR/apexd.ini:$l_alias: \[alias\]" "$APEX_LOG"
check "  the running configuration is kept (log)" grep -q 'the running configuration is kept' "$APEX_LOG"
check "the old config still serves: alias flattens" fq alias-owner.example.test A --rcode NOERROR --addrs "$WWW_A"
check "  and the apex" fq example.test AAAA --rcode NOERROR --addrs "$WWW_AAAA"
check "apexd still runs" proc_alive "$APEX_PID"

stop_flat_apexd
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"
finish
