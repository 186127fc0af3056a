#!/usr/bin/env bash
# [server] user: apexd started as root binds its sockets and reads its TLS
# key, then runs as the user (uid, gid and groups from /proc/PID/status)
# and still answers over UDP, TCP and DoT. A key only root can read is
# therefore read at startup, and a SIGHUP reload of it fails (and keeps the
# old certificate), as docs/security.md says. A user that does not exist
# stops startup with FILE:LINE; an unprivileged apexd runs only if it
# already is the user. The tests run as root (here and in CI).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_tls_tools
need kdig setpriv id
find_apexd

[[ $(id -u) -eq 0 ]] || skip_case "must run as root to test dropping root"
id nobody >/dev/null 2>&1 || skip_case "no user nobody"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
# The groups /proc shows: the user's, sorted, as initgroups sets them.
NOBODY_GROUPS=$(id -G nobody | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')

# proc_ids PID FIELD: the four IDs of Uid: or Gid: (real, effective,
# saved, filesystem), or the Groups: list sorted.
proc_ids() {
	local line
	line=$(grep "^$2:" "/proc/$1/status") || return 1
	line=${line#*:}
	if [[ $2 == Groups ]]; then
		tr -s ' \t' '\n' <<<"$line" | grep . | sort -n | tr '\n' ' ' | sed 's/ $//'
	else
		tr -s ' \t' ' ' <<<"$line" | sed 's/^ //; s/ $//'
	fi
}

start_named
# The key readable by root alone: nobody could not read it after the drop.
make_certs
chmod 0600 "$TLS_KEY"
chmod 0700 "$TLS_DIR"
start_tls_apexd "127.0.0.1:$NAMED_PORT" "[server]
user = nobody"

check "apexd logs the switch" grep -q "running as user nobody (uid $NOBODY_UID, gid $NOBODY_GID)" "$APEX_LOG"
check "/proc: Uid is nobody's (real, effective, saved, fs)" \
	test "$(proc_ids "$APEX_PID" Uid)" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
check "/proc: Gid is nobody's (real, effective, saved, fs)" \
	test "$(proc_ids "$APEX_PID" Gid)" = "$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID"
check "/proc: Groups are nobody's only ($NOBODY_GROUPS)" \
	test "$(proc_ids "$APEX_PID" Groups)" = "$NOBODY_GROUPS"
check "/proc: no capabilities left (CapEff, CapPrm)" bash -c \
	"grep -qE '^CapEff:[[:space:]]+0+$' /proc/$APEX_PID/status && grep -qE '^CapPrm:[[:space:]]+0+$' /proc/$APEX_PID/status"
# Every thread, not only the main one.
thread_ids() {
	local t bad=0
	for t in /proc/"$APEX_PID"/task/*; do
		grep -q "^Uid:[[:space:]]*${NOBODY_UID}[[:space:]]" "$t/status" || { echo "thread ${t##*/} not nobody"; bad=1; }
	done
	return "$bad"
}
check "/proc: every thread runs as nobody" thread_ids
check "UDP still answered after the drop" cmp_q www.example.test A --expect-min-answers 1
check "TCP still answered after the drop" cmp_q --tcp www.example.test AAAA --expect-min-answers 1
dot_ok() {
	kdig +tls-ca="$TLS_CA" +tls-hostname=localhost @127.0.0.1 -p "$DOT_PORT" \
		www.example.test A +time=3 +retry=0 | grep -q 'status: NOERROR'
}
check "DoT still answered (key read as root before the drop)" dot_ok
# SIGHUP reads the files again, now as nobody: the root-only key cannot
# be read, so the old certificate stays (docs/security.md tells operators
# to make the files readable by the user). The INI file itself must be
# readable by nobody for the reload to get as far as the key.
chmod 0755 "$T_DIR"
chmod 0644 "$T_DIR/apexd.ini"
kill -HUP "$APEX_PID"
reload_logged() {
	local i
	for ((i = 0; i < 30; i++)); do
		grep -q "private-key: .*cannot be read (Permission denied)" "$APEX_LOG" &&
			grep -q "reload failed: .*the running configuration is kept" "$APEX_LOG" && return 0
		sleep 0.1
	done
	return 1
}
check "SIGHUP as nobody: the root-only key cannot be re-read, old one kept" reload_logged
check "DoT still answered after that SIGHUP" dot_ok
stop_apexd TERM 10
check "apexd as nobody exits 0 on SIGTERM" test "${APEX_RC:-none}" = 0

# A user that does not exist: startup and --check-config fail with the line.
bad=$T_DIR/baduser.ini
write_ini "$bad" "$(new_port)" "127.0.0.1:$NAMED_PORT"
sed -i 's/^\[server\]$/[server]\nuser = no-such-user-apexd/' "$bad"
bad_line=$(grep -n '^user = no-such-user-apexd' "$bad" | cut -d: -f1)
bad_start() {
	local out rc=0
	out=$(timeout 10 "$APEXD" "$@" -c "$bad" 2>&1) || rc=$?
	echo "exit $rc: $out"
	[[ $rc -eq 1 ]] &&
		grep -qF "$bad:$bad_line: [server] user: \"no-such-user-apexd\" is not a user on this system" <<<"$out"
}
check "unknown user: startup fails with FILE:LINE: [server] user: ..." bad_start
check "unknown user: --check-config fails the same way" bad_start --check-config

# Unprivileged: fine when already the user, an error otherwise. The
# files must be readable by nobody: the case directory (0700) becomes
# 0711 so that nobody can reach pub/ inside it, without listing it.
pub=$T_DIR/pub
mkdir -p "$pub"
chmod 0711 "$T_DIR"
chmod 0755 "$pub"
as_nobody_run() {
	local user=$1 ini=$pub/$1.ini log=$pub/$1.log pid rc
	write_ini "$ini" "$(new_port)" "127.0.0.1:$NAMED_PORT"
	sed -i "s/^\[server\]\$/[server]\nuser = $user/" "$ini"
	chmod 0644 "$ini"
	setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --init-groups \
		"$APEXD" -c "$ini" 2>"$log" &
	pid=$!
	PIDS+=("$pid")
	AS_NOBODY_PID=$pid
	AS_NOBODY_LOG=$log
	AS_NOBODY_INI=$ini
}
as_nobody_run nobody
port=$(sed -n 's/^udp = 127.0.0.1:\([0-9]*\).*/\1/p' "$AS_NOBODY_INI")
check "started as nobody with user = nobody: it answers" wait_dns "$port"
check "  and says it already runs as nobody" grep -q "already running as user nobody" "$AS_NOBODY_LOG"
check "  and stays nobody" test "$(proc_ids "$AS_NOBODY_PID" Uid)" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
stop_pid "$AS_NOBODY_PID"

# In the foreground: it must refuse at once.
refused_as_nobody() {
	local ini=$pub/root.ini out rc=0 line
	write_ini "$ini" "$(new_port)" "127.0.0.1:$NAMED_PORT"
	sed -i 's/^\[server\]$/[server]\nuser = root/' "$ini"
	chmod 0644 "$ini"
	line=$(grep -n '^user = root' "$ini" | cut -d: -f1)
	out=$(timeout 10 setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --init-groups \
		"$APEXD" -c "$ini" 2>&1) || rc=$?
	echo "exit $rc: $out"
	[[ $rc -eq 1 ]] &&
		grep -qF "$ini:$line: [server] user: cannot switch to \"root\" (uid 0): apexd runs as uid $NOBODY_UID, not root" <<<"$out"
}
check "started as nobody with user = root: exit 1, FILE:LINE, why" refused_as_nobody
finish
