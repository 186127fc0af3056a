#!/usr/bin/env bash
# The Debian package: `cpack` from the build tree that made APEXD builds
# the .deb (and its -dbgsym), `dpkg -x` installs it into a throwaway root,
# and the files are checked as an operator would meet them: the exact
# file list, owners and modes, conffiles and maintainer scripts, the
# binaries (stripped, the version the build says), the shipped example
# configuration (valid as shipped, and every commented value valid too),
# the manual pages (no groff or man warning), and the systemd unit
# (`systemd-analyze verify`, its hardening, and its exposure score from
# `systemd-analyze security --offline`).
#
# apexctl is checked when the build tree has one next to APEXD (then it
# must be in the package, with its manual page); without it the package
# must not carry either.
# Functions run through `check` look unreachable to shellcheck (SC2317);
# the `bash -c '...' _ ARGS` checks expand $1.. inside on purpose (SC2016).
# shellcheck disable=SC2317,SC2119,SC2016 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need cpack dpkg dpkg-deb groff man gzip file tsig-keygen
find_apexd

# The build tree: ctest gives APEX_BUILD_DIR; by hand, the directory two
# levels above APEXD (build/proxy/apexd) that holds CPackConfig.cmake.
BUILD_DIR=${APEX_BUILD_DIR:-$(cd "$(dirname "$APEXD")/.." && pwd)}
[[ -f $BUILD_DIR/CPackConfig.cmake ]] ||
	skip_case "no CPackConfig.cmake in $BUILD_DIR (set APEX_BUILD_DIR)"
HAVE_APEXCTL=0
[[ -x $(dirname "$APEXD")/apexctl ]] && HAVE_APEXCTL=1
VERSION=$("$APEXD" --version | awk '{print $2}')
ARCH=$(dpkg --print-architecture)
PKG=$T_DIR/pkg
ROOT=$T_DIR/root
CTRL=$T_DIR/control
say "build tree $BUILD_DIR, apexd $VERSION, apexctl built: $HAVE_APEXCTL"

# --- build and unpack ----------------------------------------------------
# -B: the package and CPack's staging go to the case directory, not into
# the build tree.
if ! (cd "$T_DIR" && timeout 240 cpack --config "$BUILD_DIR/CPackConfig.cmake" -G DEB \
	-B "$PKG" >"$T_DIR/cpack.log" 2>&1); then
	sed 's/^/    /' "$T_DIR/cpack.log"
	fail "cpack failed"
	finish
fi
pass "cpack builds the package"
DEB=$PKG/apexd_${VERSION}_$ARCH.deb
DDEB=$PKG/apexd-dbgsym_${VERSION}_$ARCH.ddeb
check "apexd_${VERSION}_$ARCH.deb exists" test -s "$DEB"
check "apexd-dbgsym_${VERSION}_$ARCH.ddeb exists" test -s "$DDEB"
[[ -s $DEB ]] || finish
mkdir -p "$ROOT" "$CTRL"
check "dpkg -x into a throwaway root" dpkg -x "$DEB" "$ROOT"
check "dpkg-deb -e (control files)" dpkg-deb -e "$DEB" "$CTRL"

# --- control -------------------------------------------------------------
field() { dpkg-deb -f "$DEB" "$1"; }
check "Package: apexd" test "$(field Package)" = apexd
check "Version: $VERSION (apexd --version)" test "$(field Version)" = "$VERSION"
check "Architecture: $ARCH" test "$(field Architecture)" = "$ARCH"
check "Maintainer and Description set" test -n "$(field Maintainer)" -a -n "$(field Description)"
depends_on() {
	local deps
	deps=$(field Depends)
	echo "Depends: $deps"
	local lib
	for lib in "$@"; do
		grep -qE "(^|, )$lib( |,|$)" <<<"$deps" || { echo "missing $lib"; return 1; }
	done
}
check "Depends (dpkg-shlibdeps) names libc6 libuv1 libssl3 libnghttp2-14 libinih1 libfstrm0" \
	depends_on libc6 libuv1 libssl3 libnghttp2-14 libinih1 libfstrm0
check "conffiles is exactly /etc/apexd/apexd.ini" \
	test "$(cat "$CTRL/conffiles" 2>/dev/null)" = /etc/apexd/apexd.ini
check "md5sums covers every file, and they match" bash -c '
	cd "$1" && want=$(find . -type f | sed "s|^\./||" | sort) &&
	got=$(awk "{print \$2}" "$2/md5sums" | sort) && [[ $want == "$got" ]] &&
	md5sum --quiet -c "$2/md5sums"' _ "$ROOT" "$CTRL"
for script in postinst prerm postrm; do
	check "$script: executable, sh -n" bash -c '[[ -x $1 ]] && sh -n "$1"' _ "$CTRL/$script"
	if command -v shellcheck >/dev/null 2>&1; then
		check "$script: shellcheck" shellcheck -s sh "$CTRL/$script"
	fi
done
# A first install enables and starts nothing (the operator moves BIND
# first): postinst may reload systemd and restart an already running
# apexd on upgrade, never enable or start it.
check "postinst neither enables nor starts apexd" \
	bash -c '! grep -v "^[[:space:]]*#" "$1" | grep -Eq "systemctl[^|;]* (enable|start)( |$)"' \
	_ "$CTRL/postinst"

# --- file list, owners, modes ---------------------------------------------
# Every entry of the data archive: "MODE OWNER PATH" (directories end in /).
dpkg-deb -c "$DEB" | awk '{print $1, $2, $6}' | sed 's| \./| /|' | sort -k3 >"$T_DIR/contents"
expected_files() {
	echo /etc/apexd/apexd.ini
	echo /usr/lib/systemd/system/apexd.service
	echo /usr/sbin/apexd
	[[ $HAVE_APEXCTL -eq 1 ]] && echo /usr/sbin/apexctl
	local d
	for d in README.md aname-line.sh architecture.md changelog.md configuration.md \
		flattening.md operations.md; do
		echo "/usr/share/doc/apexd/$d"
	done
	echo /usr/share/man/man5/apexd.ini.5.gz
	echo /usr/share/man/man8/apexd.8.gz
	[[ $HAVE_APEXCTL -eq 1 ]] && echo /usr/share/man/man8/apexctl.8.gz
	return 0
}
check "exactly the expected files" diff -u <(expected_files | sort) \
	<(awk '$1 !~ /^d/ {print $3}' "$T_DIR/contents" | sort)
check "everything is owned by root/root" \
	bash -c '! awk "\$2 != \"root/root\"" "$1" | grep .' _ "$T_DIR/contents"
check "directories are drwxr-xr-x" \
	bash -c '! awk "\$1 ~ /^d/ && \$1 != \"drwxr-xr-x\"" "$1" | grep .' _ "$T_DIR/contents"
modes_ok() {
	local bad
	bad=$(awk '$1 !~ /^d/ {
		want = ($3 ~ /^\/usr\/sbin\//) ? "-rwxr-xr-x" : "-rw-r--r--"
		if ($1 != want) print $3 ": " $1 ", want " want }' "$T_DIR/contents")
	[[ -z $bad ]] || { echo "$bad"; return 1; }
}
check "binaries 0755, every other file 0644" modes_ok
if [[ $HAVE_APEXCTL -eq 1 ]]; then
	say "apexctl built: the package must carry /usr/sbin/apexctl"
else
	say "no apexctl in the build tree: the package must not carry it"
fi
check "no apexctl in /usr/bin (it is an admin tool: /usr/sbin)" test ! -e "$ROOT/usr/bin/apexctl"

# --- binaries -------------------------------------------------------------
sbin=(apexd)
[[ $HAVE_APEXCTL -eq 1 ]] && sbin+=(apexctl)
for b in "${sbin[@]}"; do
	check "$b: stripped ELF, debug info in the -dbgsym" bash -c '
		f=$(file -b "$1") && echo "$f" && [[ $f == ELF* && $f == *", stripped"* ]]' _ "$ROOT/usr/sbin/$b"
done
check "the .ddeb holds apexd's debug info by build ID" bash -c '
	id=$(file -b "$1" | sed -n "s/.*BuildID\[sha1\]=\([0-9a-f]*\).*/\1/p") && [[ -n $id ]] &&
	dpkg-deb -c "$2" | grep -q "usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"' \
	_ "$ROOT/usr/sbin/apexd" "$DDEB"
check "packaged apexd --version: apexd $VERSION" \
	test "$("$ROOT/usr/sbin/apexd" --version)" = "apexd $VERSION"

# --- the example configuration --------------------------------------------
INI=$ROOT/etc/apexd/apexd.ini
check "the shipped apexd.ini is the example from docs/" \
	cmp "$INI" "$APEX_SOURCE_DIR/docs/apexd.ini.example"
check "apexd --check-config accepts the shipped apexd.ini" \
	"$ROOT/usr/sbin/apexd" --check-config -c "$INI"
check "the shipped apexd.ini forwards to a backend" \
	grep -Eq '^address = 127\.0\.0\.1:[0-9]+' "$INI"
# Every commented-out "key = value" is a valid value for its key too: the
# file with all of them switched on must load. Left out: what depends on
# the machine (the TLS files and the listeners that need them, the user,
# the socket and log paths under the unit's directories), and the keys
# this build may not know yet (they come from other parts of the work);
# a key of that last list the build does know is checked after all.
pending_ok() {
	local k=$1 probe=$T_DIR/probe.ini
	case $k in
	metrics) printf '[listen]\nmetrics = 127.0.0.1:9153\n' >"$probe" ;;
	responses-per-second | slip) printf '[limits]\n%s = 1\n' "$k" >"$probe" ;;
	ecs) printf '[resolver]\necs = no\n' >"$probe" ;;
	esac
	local out
	out=$("$ROOT/usr/sbin/apexd" --check-config -c "$probe" 2>&1 || true)
	[[ $out != *"not supported by this version"* ]]
}
skip_keys=(certificate private-key min-version ocsp-response dot doh user control query-log)
for k in metrics responses-per-second slip ecs; do
	pending_ok "$k" || skip_keys+=("$k")
done
say "commented keys not switched on: ${skip_keys[*]}"
uncomment_all() {
	local skip_re
	skip_re="^;($(IFS='|'; echo "${skip_keys[*]}")) ="
	# A commented section header is switched on when one of its keys is.
	awk -v skip="$skip_re" '
		function flush_section() {
			if (hdr != "") {
				if (on) sub(/^;/, "", lines[1])
				for (i = 1; i <= n; i++) print lines[i]
			}
			hdr = ""; n = 0; on = 0
		}
		/^;?\[/ { flush_section(); hdr = $0; lines[++n] = $0; next }
		{
			if ($0 !~ skip && $0 ~ /^;[a-z0-9.-]+ = /) { sub(/^;/, ""); on = 1 }
			if (hdr != "") lines[++n] = $0; else print
		}
		END { flush_section() }' "$INI"
}
# The key file the example names is the host's own, as the certificate
# is; a key of the test's stands in for it, so update-key and the
# siblings = update that needs it are switched on too.
tsig-keygen -a hmac-sha256 apexd-update >"$T_DIR/update.key"
uncomment_all | sed "s|^update-key = .*|update-key = $T_DIR/update.key|" >"$T_DIR/all-on.ini"
check "every commented value in apexd.ini is valid when switched on" \
	"$ROOT/usr/sbin/apexd" --check-config -c "$T_DIR/all-on.ini"
check "switching them on turned on more than 20 keys" test \
	"$(diff "$INI" "$T_DIR/all-on.ini" | grep -c '^>')" -gt 20

# The paths the example suggests are the ones the unit lets apexd write.
check "example: control socket in the unit's RuntimeDirectory (/run/apexd)" bash -c '
	grep -qx "RuntimeDirectory=apexd" "$2" && grep -qE "^;?control = /run/apexd/[^/ ]+$" "$1"' \
	_ "$INI" "$ROOT/usr/lib/systemd/system/apexd.service"
check "example: query log in the unit's LogsDirectory (/var/log/apexd)" bash -c '
	grep -qx "LogsDirectory=apexd" "$2" && grep -qE "^;?query-log = /var/log/apexd/[^/ ]+$" "$1"' \
	_ "$INI" "$ROOT/usr/lib/systemd/system/apexd.service"

# --- manual pages ---------------------------------------------------------
pages=(man8/apexd.8 man5/apexd.ini.5)
[[ $HAVE_APEXCTL -eq 1 ]] && pages+=(man8/apexctl.8)
man_clean() {
	local page=$1 out
	out=$(zcat "$page" | groff -man -ww -z 2>&1) || { echo "$out"; return 1; }
	[[ -z $out ]] || { echo "groff: $out"; return 1; }
	out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || { echo "$out"; return 1; }
	[[ -z $out ]] || { echo "man: $out"; return 1; }
}
for p in "${pages[@]}"; do
	f=$ROOT/usr/share/man/$p.gz
	name=$(basename "$p")
	check "$name.gz renders without warnings (groff -ww, man --warnings)" man_clean "$f"
	check "$name: .TH says apexd $VERSION" bash -c \
		'zcat "$1" | grep -E "^\.TH " | grep -qF "\"apexd $2\""' _ "$f" "$VERSION"
	check "$name: NAME section readable by apropos (lexgrog)" bash -c \
		'! command -v lexgrog >/dev/null || lexgrog "$1"' _ "$f"
	check "$name.gz is the page from docs/man/" cmp <(zcat "$f") "$APEX_SOURCE_DIR/docs/man/$name"
done
check "apexd(8) documents every command-line option apexd --help shows" bash -c '
	for o in $("$1" --help | grep -oE -- "--[a-z-]+|-[a-zA-Z]\b" | sort -u); do
		zcat "$2" | sed "s/\\\\-/-/g" | grep -qF -- "$o" || { echo "missing $o"; exit 1; }
	done' _ "$ROOT/usr/sbin/apexd" "$ROOT/usr/share/man/man8/apexd.8.gz"
# Every key of CONFIG.md's contract is in apexd.ini(5).
keys_documented() {
	local k missing=0 page
	page=$(zcat "$1" | sed 's/\\-/-/g')
	for k in threads user log-level control query-log udp tcp dot doh doh-path \
		tcp-idle-timeout max-connections metrics certificate private-key min-version \
		ocsp-response address timeout addresses ecs ecs-prefix cname aname-types max-chain \
		min-ttl max-ttl deadline serve-stale failure-ttl cache-size show-aname \
		answers size responses-per-second slip; do
		grep -qE "^\.B[IR]? \"?$k = " <<<"$page" || { echo "no entry for $k"; missing=1; }
	done
	return "$missing"
}
check "apexd.ini(5) has an entry for every key" keys_documented "$ROOT/usr/share/man/man5/apexd.ini.5.gz"

# --- documentation --------------------------------------------------------
check "the packaged aname-line.sh prints an ANAME line" test \
	"$(sh "$ROOT/usr/share/doc/apexd/aname-line.sh" @ 600 www.cdn.net.)" = \
	'@ 600 IN TYPE65401 \# 13 037777770363646e036e657400'

# --- the systemd unit -----------------------------------------------------
UNIT=$ROOT/usr/lib/systemd/system/apexd.service
check "the unit is docs/systemd/apexd.service" cmp "$UNIT" "$APEX_SOURCE_DIR/docs/systemd/apexd.service"
has_directives() {
	local d missing=0
	for d in 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
		'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' 'AmbientCapabilities=CAP_NET_BIND_SERVICE' \
		'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service' \
		'MemoryDenyWriteExecute=yes' 'RuntimeDirectory=apexd' 'LogsDirectory=apexd' \
		'DynamicUser=yes' 'PrivateDevices=yes' 'ProtectKernelTunables=yes' \
		'ExecStart=/usr/sbin/apexd -c /etc/apexd/apexd.ini' \
		'ExecStartPre=/usr/sbin/apexd --check-config -c /etc/apexd/apexd.ini' \
		'ExecReload=/bin/kill -HUP $MAINPID' 'LimitNOFILE=65536'; do
		grep -qxF "$d" "$1" || { echo "missing: $d"; missing=1; }
	done
	return "$missing"
}
check "the unit's hardening and commands" has_directives "$UNIT"
check "the unit runs the packaged binary and reads the packaged config" bash -c '
	for p in $(grep -v "^#" "$1" | grep -oE "/(usr|etc)/[^ ]+" | sort -u); do
		[[ -e $2$p ]] || { echo "$p not in the package"; exit 1; }
	done' _ "$UNIT" "$ROOT"

if command -v systemd-analyze >/dev/null 2>&1; then
	# systemd-analyze checks that ExecStart's binary exists and that the
	# Documentation= pages open with man(1): a copy of the unit points at
	# the unpacked binary, and MANPATH at the unpacked pages.
	mkdir -p "$T_DIR/unit"
	sed "s|/usr/sbin/apexd|$ROOT/usr/sbin/apexd|g" "$UNIT" >"$T_DIR/unit/apexd.service"
	if [[ $HAVE_APEXCTL -eq 0 ]]; then
		# apexctl(8) ships with apexctl; this build has neither.
		sed -i 's| man:apexctl(8)||' "$T_DIR/unit/apexd.service"
	fi
	verify_unit() {
		local out rc=0
		out=$(MANPATH=$ROOT/usr/share/man systemd-analyze verify "$T_DIR/unit/apexd.service" 2>&1) || rc=$?
		echo "$out"
		[[ $rc -eq 0 && -z $out ]]
	}
	check "systemd-analyze verify: no complaint" verify_unit
	# Debian 12's systemd (252) has --offline; an older one cannot judge
	# the unit, which is a failure, not a pass.
	if ! systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
		fail "systemd-analyze security has no --offline (systemd too old to check the unit)"
	else
		systemd-analyze security --offline=yes --man=no "$T_DIR/unit/apexd.service" \
			>"$T_DIR/security.txt" 2>&1 || true
		exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T_DIR/security.txt")
		say "systemd-analyze security --offline: exposure ${exposure:-unknown} (0 best, 10 worst)"
		# 1.4 today; the rest is what a DNS server needs (network, port 53).
		check "exposure level at most 2.0 (is ${exposure:-unknown})" \
			awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'
	fi
else
	# tests/bootstrap.sh installs systemd; without it the unit is unchecked,
	# and an unchecked unit must not pass as a checked one.
	fail "systemd-analyze missing (package systemd; tests/bootstrap.sh installs it)"
fi
finish
