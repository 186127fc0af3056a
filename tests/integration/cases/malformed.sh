#!/usr/bin/env bash
# Malformed client messages: FORMERR (same ID) when the header is readable
# and QR=0, silence otherwise; both counted in the stats line at exit; and
# apexd keeps serving afterwards.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need dig
start_named
start_apexd

# A well-formed query for www.example.test A, ID 0x1234, for reference:
# header (12) + question. Malformed variants are built from it by hand.
HDR_Q1="1234 0100 0001 0000 0000 0000"        # ID, RD, QDCOUNT=1
QNAME="03777777 076578616d706c65 0474657374 00" # www.example.test.
QTAIL="0001 0001"                              # A, IN

# Dropped: header unreadable, or QR=1.
SHORT5="1234010000"                                            # 5 bytes
RESPONSE="1234 8180 0001 0000 0000 0000 $QNAME $QTAIL"         # QR=1
# FORMERR: header readable, QR=0, the rest broken. (Used through ${!kind}.)
# shellcheck disable=SC2034
NOQUESTION="$HDR_Q1"                                           # QDCOUNT=1, no data
# shellcheck disable=SC2034
LONGLABEL="$HDR_Q1 40 $(printf '61%.0s' {1..64}) 00 $QTAIL"    # 64-byte label
# shellcheck disable=SC2034
FWDPTR="$HDR_Q1 c012 $QTAIL 03777777 00"                       # QNAME points forward to offset 18
# shellcheck disable=SC2034
TRAILING="$HDR_Q1 $QNAME $QTAIL deadbeef"                      # 4 bytes after the question

dropped_udp=0 formerr_udp=0 dropped_tcp=0 formerr_tcp=0
for transport in udp tcp; do
	t=()
	[[ $transport == tcp ]] && t=(--tcp)
	check "$transport: 5-byte message dropped" apex_q "${t[@]}" --timeout 1.5 --hex "$SHORT5" --expect-no-reply
	check "$transport: QR=1 message dropped" apex_q "${t[@]}" --timeout 1.5 --hex "$RESPONSE" --expect-no-reply
	for kind in NOQUESTION LONGLABEL FWDPTR TRAILING; do
		check "$transport: $kind gets FORMERR with the same ID" \
			apex_q "${t[@]}" --hex "${!kind}" --expect-rcode FORMERR --expect-flag QR
	done
	# Empty: a 0-byte datagram (libuv reports it as nread 0 with an
	# address), a 0-length frame over TCP.
	check "$transport: empty message dropped" apex_q "${t[@]}" --timeout 1.5 --hex "" --expect-no-reply
	check "$transport: 11-byte message (header cut short) dropped" \
		apex_q "${t[@]}" --timeout 1.5 --hex "1234 0100 0001 0000 0000 00" --expect-no-reply
	if [[ $transport == udp ]]; then
		dropped_udp=4 formerr_udp=4
	else
		dropped_tcp=4 formerr_tcp=4
	fi
done

# Still serving, over both transports, after all that.
check "udp: normal query afterwards" cmp_q www.example.test A --expect-min-answers 1
check "tcp: normal query afterwards" cmp_q --tcp www.example.test A --expect-min-answers 1
check "apexd still running" proc_alive "$APEX_PID"

stop_apexd TERM 10
check "exit 0 on SIGTERM" test "${APEX_RC:-none}" = 0
want_dropped=$((dropped_udp + dropped_tcp))
want_formerr=$((formerr_udp + formerr_tcp))
stats_is() {
	local got
	got=$(stat_value "$1")
	[[ $got == "$2" ]] || { echo "stats: $1=${got:-<missing>}, expected $2"; grep 'stats:' "$APEX_LOG"; return 1; }
}
check "stats: malformed_dropped=$want_dropped" stats_is malformed_dropped "$want_dropped"
check "stats: formerr_sent=$want_formerr" stats_is formerr_sent "$want_formerr"
finish
