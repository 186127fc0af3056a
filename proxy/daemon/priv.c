/* proxy/daemon/priv.c - dropping root once the sockets are bound.
 *
 * apexd starts as root to bind port 53 (and 853, 443) and to read the TLS
 * key, then becomes [server] user for the rest of its life, as BIND's -u
 * and unbound's username do. Called by main after every listening socket
 * is bound and every TLS context is loaded, and before the worker threads
 * start, so no thread ever runs with root's credentials on the query
 * path. Everything opened later (backend and resolver sockets, the
 * certificate files a SIGHUP re-reads) is opened as that user.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "proxy/daemon/priv.h"
#include "proxy/backend/backend.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/log.h"

/* Descriptors apexd itself needs beside the per-worker and per-connection
 * ones: stdio, the signal pipe, libuv's internals, files a reload reads. */
#define PX_FD_SPARE 64

/* getpwnam_r's room for the entry's strings (glibc suggests far less for
 * ordinary accounts; a huge NIS entry gets ERANGE and a clear error). */
#define PX_PW_BUF 16384

/* After the switch every one of real, effective and saved IDs must be
 * the user's, and becoming root again must fail: a process that could
 * still setuid(0) has dropped nothing. */
static int verify_dropped(const struct cfg *cfg, uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid ||
	    eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		px_log(CFG_LOG_ERROR, MAIN,
		       "%s:%u: [server] user: after switching to \"%s\" the process runs as "
		       "uid %u/%u/%u gid %u/%u/%u, not %u/%u",
		       cfg->path, cfg->server.user_line, cfg->server.user, (unsigned)ru,
		       (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg,
		       (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		px_log(CFG_LOG_ERROR, MAIN,
		       "%s:%u: [server] user: switched to \"%s\" but could become root again; "
		       "refusing to run",
		       cfg->path, cfg->server.user_line, cfg->server.user);
		return -EPERM;
	}
	if (gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
		px_log(CFG_LOG_ERROR, MAIN,
		       "%s:%u: [server] user: switched to \"%s\" but could regain group 0; "
		       "refusing to run",
		       cfg->path, cfg->server.user_line, cfg->server.user);
		return -EPERM;
	}
	return 0;
}

void px_fd_limit(const struct cfg *cfg)
{
	struct rlimit rl;
	size_t listeners =
	        cfg->listen.udp.n + cfg->listen.tcp.n + cfg->listen.dot.n + cfg->listen.doh.n;
	/* Every client connection, and per worker its listening sockets,
	 * backend sockets and apexd's own queries in flight. */
	unsigned long long need = (unsigned long long)cfg->listen.max_connections +
	                          (unsigned long long)cfg->server.threads *
	                                  (listeners + PX_BACKEND_MAX_SOCKS + PX_BACKEND_MAX_TCP +
	                                   PX_UP_MAX_INFLIGHT + 2) +
	                          PX_FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	/* The soft limit is often 1024 for a service while the hard one is
	 * far higher; any process may raise its own soft limit that far. */
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			px_log(CFG_LOG_DEBUG, MAIN, "open files limit raised from %llu to %llu",
			       (unsigned long long)old, (unsigned long long)rl.rlim_cur);
		else
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		px_log(CFG_LOG_WARNING, MAIN,
		       "open files limit %llu is below the %llu apexd may need (max-connections "
		       "%u, %u workers with up to %u queries of their own each): raise it "
		       "(systemd LimitNOFILE=, ulimit -n) or lower max-connections",
		       (unsigned long long)rl.rlim_cur, need, cfg->listen.max_connections,
		       cfg->server.threads, PX_UP_MAX_INFLIGHT);
}

int px_priv_drop(const struct cfg *cfg)
{
	const char *name = cfg->server.user;
	char buf[PX_PW_BUF];
	struct passwd pw, *res = NULL;

	if (name[0] == '\0')
		return 0;
	/* The configuration checked the name when it was loaded; look again,
	 * since an account can vanish between --check-config and start. */
	int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || res == NULL) {
		px_log(CFG_LOG_ERROR, MAIN,
		       "%s:%u: [server] user: \"%s\" %s; allowed: the name of an existing user",
		       cfg->path, cfg->server.user_line, name,
		       rc != 0 ? strerror(rc) : "is not a user on this system");
		return rc != 0 ? -rc : -ENOENT;
	}
	uid_t uid = pw.pw_uid;
	gid_t gid = pw.pw_gid;

	if (geteuid() != 0) {
		/* Started unprivileged (a service manager's User=, a test):
		 * fine if that is already the user, an error otherwise, since
		 * the operator asked for an identity apexd cannot take. */
		if (getuid() == uid && geteuid() == uid) {
			px_log(CFG_LOG_INFO, MAIN, "already running as user %s (uid %u), not root",
			       name, (unsigned)uid);
			return 0;
		}
		px_log(CFG_LOG_ERROR, MAIN,
		       "%s:%u: [server] user: cannot switch to \"%s\" (uid %u): apexd runs as "
		       "uid %u, not root; allowed: start apexd as root, or as user %s",
		       cfg->path, cfg->server.user_line, name, (unsigned)uid, (unsigned)geteuid(),
		       name);
		return -EPERM;
	}
	/* Groups first: once the uid is not 0 they cannot be changed. The
	 * user's supplementary groups come along (initgroups), so a key made
	 * readable through a group such as Debian's ssl-cert stays readable
	 * for a SIGHUP reload. */
	if (initgroups(name, gid) != 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s:%u: [server] user: initgroups(%s, %u): %s",
		       cfg->path, cfg->server.user_line, name, (unsigned)gid, strerror(errno));
		return -errno;
	}
	if (setresgid(gid, gid, gid) != 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s:%u: [server] user: setresgid(%u): %s", cfg->path,
		       cfg->server.user_line, (unsigned)gid, strerror(errno));
		return -errno;
	}
	if (setresuid(uid, uid, uid) != 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s:%u: [server] user: setresuid(%u): %s", cfg->path,
		       cfg->server.user_line, (unsigned)uid, strerror(errno));
		return -errno;
	}
	rc = verify_dropped(cfg, uid, gid);
	if (rc < 0)
		return rc;
	px_log(CFG_LOG_INFO, MAIN, "running as user %s (uid %u, gid %u)", name, (unsigned)uid,
	       (unsigned)gid);
	return 0;
}
