#!/usr/bin/env bash
# DNS cookies (RFC 7873) through a real resolver: BIND 9.18 as a
# forwarding resolver in front of apexd. Once it has learned BIND's server
# cookie from a relayed answer, it expects a cookie in every answer from
# that address, and without one it logs "missing expected cookie" and asks
# again over TCP. Flattened answers echo the client's cookie pair, so the
# resolver gets every flattened name over UDP in one round trip: apexd
# sees no TCP query at all and the resolver logs no missing cookie.
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
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test"

# The resolver: BIND, recursion on, example.test forwarded to apexd.
RES_DIR=$T_DIR/resolver
mkdir -p "$RES_DIR"
resolver_conf() {
	local dir=$1 port=$2
	cat <<CONF
options {
	directory "$dir";
	pid-file "$dir/named.pid";
	lock-file "$dir/named.lock";
	session-keyfile "$dir/session.key";
	managed-keys-directory "$dir";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	dnssec-validation no;
	allow-query { any; };
	allow-recursion { any; };
};
controls { };
zone "example.test" { type forward; forward only; forwarders { 127.0.0.1 port $APEX_PORT; }; };
CONF
}
RES_LOG=$T_DIR/resolver.extra.log
# -d 3: the resolver's "missing expected cookie" line is a debug message.
RES_PORT=
for _ in 1 2 3; do
	RES_PORT=$(new_port)
	resolver_conf "$RES_DIR" "$RES_PORT" >"$RES_DIR/named.conf"
	named -g -d 3 -n 1 -c "$RES_DIR/named.conf" >"$RES_LOG" 2>&1 &
	RES_PID=$!
	PIDS+=("$RES_PID")
	wait_soa "$RES_PORT" example.test && break
	stop_pid "$RES_PID"
	RES_PORT=
done
check "the forwarding resolver runs" test -n "$RES_PORT"

rq() { dig @127.0.0.1 -p "$RES_PORT" +time=3 +tries=1 +short "$@"; }
# A relayed answer first: the resolver learns BIND's server cookie.
check "relayed name through the resolver" test "$(rq mail.example.test A)" = 192.0.2.25
want_www=$(tr ' ' '\n' <<<"$WWW_A" | sort | tr '\n' ' ')
flat_via_resolver() {
	local got
	got=$(rq "$1" A | sort | tr '\n' ' ')
	echo "$1: $got (want $want_www)"
	[[ $got == "$want_www" ]]
}
check "apex ANAME flattened through the resolver" flat_via_resolver example.test
check "[alias] owner flattened through the resolver" flat_via_resolver alias-owner.example.test
check "wildcard ANAME flattened through the resolver" flat_via_resolver a.wild.example.test
check "the resolver never missed its cookie" bash -c "! grep -q 'missing expected cookie' '$RES_LOG'"

stop_flat_apexd
check "three answers were flattened" stat_is answers_flattened -ge 3
check "no query came back over TCP" stat_is queries_tcp -eq 0
finish
