#!/usr/bin/env bash
# PROXY protocol v2 rules with headers written by hand (pp2.py), over UDP
# and TCP: from a source in proxy-protocol-from the header's client is the
# client for the query log and for rate limiting; LOCAL (and PROXY over
# UNSPEC) serves the query as the balancer's own; a missing, broken,
# partial or oversized header drops the datagram or closes the connection
# and is counted; from any other source a header is never believed (its
# bytes are read as DNS: FORMERR over UDP, a frame that never completes
# over TCP). [limits] keys on the header's client: one client limited,
# another behind the same balancer not, the balancer itself not.
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
# One worker: one rate-limit table. tcp-idle-timeout 1s: how long a
# connection that stops halfway through its header is kept.
start_pp_apexd "127.0.0.1, 127.0.1.0/24" threads=1 tcp-idle-timeout=1s
P=(--port "$APEX_PORT")

say "headers believed"
check "UDP, IPv4 client in the header: answered" \
	pp2 query "${P[@]}" --client 198.51.100.7#40000 --expect NOERROR
check "  logged for the header's client" wait_line "udp 198\.51\.100\.7#40000 www\.example\.test\. A NOERROR"
check "UDP, IPv6 client in the header" \
	pp2 query "${P[@]}" --client 2001:db8::7#5353 --name mail.example.test --expect NOERROR
check "  logged for 2001:db8::7" wait_line "udp 2001:db8::7#5353 mail\.example\.test\. A NOERROR"
check "TCP, client in the header" \
	pp2 query "${P[@]}" --tcp --client 203.0.113.9#4444 --name tcp.example.test --expect NXDOMAIN
check "  logged for 203.0.113.9" wait_line "tcp 203\.0\.113\.9#4444 tcp\.example\.test\. A NXDOMAIN"
check "TCP, the header split over three writes" \
	pp2 query "${P[@]}" --tcp --split 5 --client 203.0.113.10#4445 --name split.example.test --expect NXDOMAIN
check "  logged for 203.0.113.10" wait_line "tcp 203\.0\.113\.10#4445 split\.example\.test\. A NXDOMAIN"
check "from 127.0.1.5, inside 127.0.1.0/24" \
	pp2 query "${P[@]}" --source 127.0.1.5 --client 192.0.2.99#53 --name pfx.example.test --expect NXDOMAIN
check "  logged for 192.0.2.99" wait_line "udp 192\.0\.2\.99#53 pfx\.example\.test\. A NXDOMAIN"
check "proxy_v2_accepted = 5" pp_stat_is proxy_v2_accepted -eq 5

say "LOCAL: the balancer's own query"
check "UDP LOCAL: answered" pp2 query "${P[@]}" --header local --name local-udp.example.test --expect NXDOMAIN
check "  logged for the balancer, 127.0.0.1" wait_line "udp 127\.0\.0\.1#[0-9]+ local-udp\.example\.test\. A NXDOMAIN"
check "TCP LOCAL: answered" pp2 query "${P[@]}" --tcp --header local --name local-tcp.example.test --expect NXDOMAIN
check "  logged for 127.0.0.1" wait_line "tcp 127\.0\.0\.1#[0-9]+ local-tcp\.example\.test\. A NXDOMAIN"
check "PROXY over UNSPEC: served like LOCAL" \
	pp2 query "${P[@]}" --header unspec --name unspec.example.test --expect NXDOMAIN
check "  logged for 127.0.0.1" wait_line "udp 127\.0\.0\.1#[0-9]+ unspec\.example\.test\. A NXDOMAIN"
check "proxy_v2_local = 3" pp_stat_is proxy_v2_local -eq 3

say "a trusted source without a valid header: dropped and counted"
check "UDP, no header: no reply" pp2 query "${P[@]}" --header none --name d1.example.test --expect timeout
check "TCP, no header: closed" pp2 query "${P[@]}" --tcp --header none --name d2.example.test --expect closed
check "UDP, version 1 in the binary header: no reply" \
	pp2 query "${P[@]}" --header bad-version --name d3.example.test --expect timeout
check "TCP, version 1: closed" \
	pp2 query "${P[@]}" --tcp --header bad-version --name d4.example.test --expect closed
check "UDP, a TLV past the header's end: no reply" \
	pp2 query "${P[@]}" --header bad-tlv --name d5.example.test --expect timeout
check "TCP, a header over 1024 bytes: closed" \
	pp2 query "${P[@]}" --tcp --header too-long --name d6.example.test --expect closed
check "UDP, a header cut short: no reply" \
	pp2 query "${P[@]}" --header partial --name d7.example.test --expect timeout
check "TCP, half a header and then nothing: closed by tcp-idle-timeout" \
	pp2 query "${P[@]}" --tcp --header partial --expect closed
check "proxy_v2_dropped = 8" pp_stat_is proxy_v2_dropped -eq 8
check "none of them was logged" no_line " d[1-7]\.example\.test\."
check "the drops were logged (rate-limited warnings)" \
	grep -q 'proxy-protocol-from requires one from this source' "$APEX_LOG"
check "a connection that sends nothing is no drop" \
	"$PY" -c 'import socket,sys,time; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(0.2); s.close()' "$APEX_PORT"
sleep 0.3
check "  proxy_v2_dropped still 8" pp_stat_is proxy_v2_dropped -eq 8

say "an untrusted source: a header is never believed"
check "UDP from 127.0.0.2 with a header: the header is read as DNS (FORMERR, another ID)" \
	pp2 query "${P[@]}" --source 127.0.0.2 --client 198.51.100.66#1 --name forged.example.test --expect wrong-id
check "  the FORMERR is logged for the real peer 127.0.0.2" wait_line "udp 127\.0\.0\.2#[0-9]+ - - FORMERR"
check "TCP from 127.0.0.2 with a header: read as a DNS frame that never completes" \
	pp2 query "${P[@]}" --tcp --source 127.0.0.2 --client 198.51.100.66#1 --name forged.example.test --expect closed
check "  the forged client is nowhere in the log" no_line "198\.51\.100\.66|forged"
check "  and no header was counted" pp_stat_is proxy_v2_accepted -eq 5
check "plain DNS from 127.0.0.2 is served as always" \
	pp2 query "${P[@]}" --source 127.0.0.2 --header none --name plain.example.test --expect NXDOMAIN
check "  logged for 127.0.0.2" wait_line "udp 127\.0\.0\.2#[0-9]+ plain\.example\.test\. A NXDOMAIN"

say "[limits] responses-per-second keys on the header's client"
printf '\n[limits]\nresponses-per-second = 5\nslip = 2\n' >>"$T_DIR/apexd.ini"
check "SIGHUP adding [limits]" hup_wait
check "  applied" last_reload_ok
sleep 1.2
out=$(pp2 burst "${P[@]}" --client 198.51.100.7#40000 --count 100)
say "client 198.51.100.7: $out"
A=$(sed -n 's/.*answers=\([0-9]*\).*/\1/p' <<<"$out")
S=$(sed -n 's/.*slips=\([0-9]*\).*/\1/p' <<<"$out")
check "a burst of 100 behind 198.51.100.7: limited to a few answers ($A)" test "$A" -ge 5 -a "$A" -le 15
check "  the limited ones slip (TC=1) every second time ($S)" test "$S" -ge 40
for i in 1 2 3 4; do
	check "meanwhile 203.0.113.9 behind the same balancer: answered ($i/4)" \
		pp2 query "${P[@]}" --client 203.0.113.9#5000 --name other$i.example.test --expect NXDOMAIN
done
check "  logged for 203.0.113.9" wait_line "udp 203\.0\.113\.9#5000 other4\.example\.test\. A NXDOMAIN"
check "and the balancer's own address is not limited (LOCAL)" \
	pp2 query "${P[@]}" --header local --name lb.example.test --expect NXDOMAIN
check "rrl_slipped counts the burst's TC=1 replies" pp_stat_is rrl_slipped -eq "$S"
pp_stop_apexd
finish
