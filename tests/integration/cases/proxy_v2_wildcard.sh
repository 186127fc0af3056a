#!/usr/bin/env bash
# PROXY protocol v2 on a wildcard UDP listener (0.0.0.0): such a listener
# reads its datagrams itself to learn each one's destination
# (listen/udpwild.c), and must apply [listen] proxy-protocol-from exactly
# as a listener on one address does: the header's client is the client,
# a listed source without a header is dropped and counted, an unlisted
# source is plain DNS. Traffic goes to 127.0.0.1 only.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
# shellcheck source=../pplib.sh
source "$INT_DIR/pplib.sh"
need_real_apexd
need_pp_tools

start_named
PP_UDP_WILD=1
start_pp_apexd "127.0.0.1" threads=1
check "apexd listens on the wildcard" grep -q "^udp = 0\.0\.0\.0:$APEX_PORT" "$T_DIR/apexd.ini"
P=(--port "$APEX_PORT")

check "wildcard UDP, client in the header: answered" \
	pp2 query "${P[@]}" --client 198.51.100.7#40000 --expect NOERROR
check "  logged for the header's client" wait_line "udp 198\.51\.100\.7#40000 www\.example\.test\. A NOERROR"
check "  counted in proxy_v2_accepted" pp_stat_is proxy_v2_accepted -eq 1
check "wildcard UDP, no header from a listed source: no reply" \
	pp2 query "${P[@]}" --header none --name d1.example.test --expect timeout
check "  counted in proxy_v2_dropped" pp_stat_is proxy_v2_dropped -eq 1
check "an unlisted source is plain DNS" \
	pp2 query "${P[@]}" --source 127.0.0.254 --header none --name example.test --type SOA --expect NOERROR
pp_stop_apexd
finish
