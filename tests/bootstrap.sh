#!/usr/bin/env bash
# Install what apexd needs to build and test on Debian 12, idempotently.
#
# Only packages that dpkg does not already report as installed are asked
# for, so a prepared machine costs one dpkg-query and no network. The
# bind9 package ships a service we never use (the tests and the demo run
# their own `named -g` on high loopback ports), so while apt runs a
# policy-rc.d forbids starting any service.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libuv1-dev libldns-dev libnghttp2-dev libssl-dev libinih-dev
	libcmocka-dev
	# The [listen] metrics endpoint (HTTP/1.1 server library).
	libmicrohttpd-dev
	# dnstap's Frame Streams writer; the dnstap cases read the stream
	# with fstrm_capture and decode it with dnstap-ldns.
	libfstrm-dev fstrm-bin dnstap-ldns
	bind9 bind9-utils bind9-dnsutils knot-dnsutils dnsperf curl
	python3-dnspython openssl
	# The flattening cases run unbound as the resolver apexd chases with.
	unbound
	# DoT/DoH cases: raw HTTP/2 status checks (nghttp, h2load) and the
	# TLS configuration audit.
	nghttp2-client testssl.sh
	# tests/valgrind.sh: memcheck over a full start-load-stop.
	valgrind
	# DNSViz analyses zones probed through apexd (cases/dnsviz.sh).
	dnsviz
	# The package case (cases/package_deb.sh): cpack's dependency list
	# (file), the manual pages (man-db, groff-base) and the unit
	# (systemd-analyze, from systemd; nothing is started with it).
	file man-db groff-base systemd
	# PROXY protocol v2 cases (cases/proxy_v2_*.sh): real balancers in
	# front of apexd, dnsdist for UDP and TCP, haproxy for DoT and DoH.
	dnsdist haproxy
	# cases/net_pktinfo.sh: a network namespace with addresses of its own.
	iproute2
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
	# "ii " = wanted install, currently installed; anything else needs apt.
	if [[ "$status" != ii* ]]; then
		missing+=("$pkg")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "bootstrap: all ${#PACKAGES[@]} packages present"
	exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "bootstrap: missing ${missing[*]}; run as root (no sudo here)" >&2
		exit 1
	fi
	SUDO=(sudo)
fi

echo "bootstrap: installing ${missing[*]}"

# policy-rc.d exiting 101 tells invoke-rc.d not to start services. Put one
# in place only if none exists, and remove only the one we created.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\n# apexd bootstrap: do not start services during install\nexit 101\n' |
		"${SUDO[@]}" tee "$policy" >/dev/null
	"${SUDO[@]}" chmod 755 "$policy"
	created_policy=1
fi
cleanup() {
	if [[ $created_policy -eq 1 ]]; then
		"${SUDO[@]}" rm -f "$policy"
	fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"

# On a machine with systemd the packages may still have enabled their
# units; we never rely on the system named or unbound (the tests run their
# own as children), so do not leave enabled what we just installed.
# (Nothing to do when systemd is absent.)
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	for unit in bind9:named unbound:unbound; do
		if [[ " ${missing[*]} " == *" ${unit%%:*} "* ]]; then
			"${SUDO[@]}" systemctl disable --now "${unit#*:}.service" >/dev/null 2>&1 || true
		fi
	done
fi
echo "bootstrap: done"
