#!/bin/sh
# aname-line.sh OWNER TTL TARGET [TYPE]
#
# Prints the zone-file line that stores an ANAME record in BIND (or any
# RFC 3597 server), for apexd to flatten:
#
#   OWNER TTL IN TYPE65401 \# LEN HEX
#
# where HEX is TARGET in uncompressed DNS wire form: for each label one
# length byte then its bytes, and a final zero byte (the root). TYPE is
# the ANAME type code, 65401 unless given (apexd's [flatten] aname-types).
#
#   $ docs/aname-line.sh @ 600 www.cdn.net
#   @ 600 IN TYPE65401 \# 13 037777770363646e036e657400
#
# POSIX sh, od and printf only. TARGET is taken as absolute (a trailing
# dot is optional); zone-file escapes (\. \DDD) are not supported.
set -eu
LC_ALL=C
export LC_ALL

usage() {
	echo "usage: $0 OWNER TTL TARGET [TYPE]" >&2
	exit 2
}
die() {
	echo "$0: $*" >&2
	exit 1
}

[ $# -eq 3 ] || [ $# -eq 4 ] || usage
owner=$1
ttl=$2
target=$3
type=${4:-65401}

case $ttl in '' | *[!0-9]*) die "TTL must be a number of seconds: $ttl" ;; esac
case $type in '' | *[!0-9]*) die "TYPE must be a decimal type code: $type" ;; esac
if [ "$type" -lt 1 ] || [ "$type" -gt 65535 ]; then
	die "TYPE out of range 1..65535: $type"
fi
case $target in *\\*) die "escapes in TARGET are not supported: $target" ;; esac
case $target in *[[:space:]]*) die "blank in TARGET: $target" ;; esac

# Strip one trailing dot; the root alone is "." (RDATA 00).
name=${target%.}
hex=
len=1
if [ -n "$name" ]; then
	case $name in .* | *..*) die "empty label in TARGET: $target" ;; esac
	rest=$name.
	while [ -n "$rest" ]; do
		label=${rest%%.*}
		rest=${rest#*.}
		n=${#label}
		[ "$n" -le 63 ] || die "label longer than 63 bytes: $label"
		hex=$hex$(printf '%02x' "$n")$(printf '%s' "$label" | od -An -v -tx1 | tr -d ' \n')
		len=$((len + n + 1))
	done
fi
hex=${hex}00
[ "$len" -le 255 ] || die "TARGET longer than 255 bytes in wire form: $target"
printf '%s %s IN TYPE%s \\# %s %s\n' "$owner" "$ttl" "$type" "$len" "$hex"
