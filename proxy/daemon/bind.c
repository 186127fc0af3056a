/* proxy/daemon/bind.c - the listening sockets, bound on the main thread.
 *
 * Startup and reload bind the same way: every address is probed once
 * first (without SO_REUSEPORT, so an address another process holds is an
 * error, not a share), then one socket per worker and address is bound
 * with SO_REUSEPORT so the kernel spreads clients over the workers. At
 * startup every address of the file is new; on reload only those the old
 * file did not list. Nothing is half done: on any failure every socket
 * bound so far is closed again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/daemon/bind.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/io/sock.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"

/* Listener kinds in the order they are bound, compared and logged. */
static const struct {
	const char *name;
	int type;
	enum px_conn_kind kind; /* stream kinds */
	size_t off;
} lkinds[] = {
        {"udp", SOCK_DGRAM, PX_CONN_TCP, offsetof(struct cfg, listen.udp)},
        {"tcp", SOCK_STREAM, PX_CONN_TCP, offsetof(struct cfg, listen.tcp)},
        {"dot", SOCK_STREAM, PX_CONN_DOT, offsetof(struct cfg, listen.dot)},
        {"doh", SOCK_STREAM, PX_CONN_DOH, offsetof(struct cfg, listen.doh)},
};
#define N_LKINDS (sizeof(lkinds) / sizeof(lkinds[0]))

static const struct cfg_addr_list *kind_list(const struct cfg *cfg, size_t k)
{
	return (const struct cfg_addr_list *)((const char *)cfg + lkinds[k].off);
}

static bool addr_listed(const struct cfg_addr_list *l, const struct cfg_addr *a)
{
	/* The text is normalised by config/ ("[::1]:53"), so equal text is
	 * the same address and port. */
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].text, a->text) == 0)
			return true;
	return false;
}

/* Is address i of kind k in nc new, that is not in old (NULL: nothing)? */
static bool addr_new(const struct cfg *old, const struct cfg *nc, size_t k, size_t i)
{
	return old == NULL || !addr_listed(kind_list(old, k), &kind_list(nc, k)->v[i]);
}

bool px_listen_has(const struct cfg *cfg, bool udp, enum px_conn_kind kind,
                   const struct cfg_addr *a)
{
	for (size_t k = 0; k < N_LKINDS; k++)
		if ((lkinds[k].type == SOCK_DGRAM) == udp && (udp || lkinds[k].kind == kind))
			return addr_listed(kind_list(cfg, k), a);
	return false;
}

void px_reload_post_free(struct px_reload_post *p)
{
	if (p == NULL)
		return;
	for (size_t j = 0; j < p->n_udp; j++)
		px_udp_discard(p->udp[j]);
	for (size_t j = 0; j < p->n_tcp; j++)
		px_tcp_discard(p->tcp[j]);
	px_gen_unref(p->gen);
	free(p->udp);
	free(p->tcp);
	free(p);
}

void px_bind_free(struct px_reload_post **posts, unsigned n)
{
	if (posts == NULL)
		return;
	for (unsigned i = 0; i < n; i++)
		px_reload_post_free(posts[i]);
	free(posts);
}

/* Probes every new address; counts them by socket type for the arrays. */
static int probe_new(const struct cfg *old, const struct cfg *nc, size_t *n_udp, size_t *n_tcp,
                     char *err, size_t errlen)
{
	for (size_t k = 0; k < N_LKINDS; k++) {
		const struct cfg_addr_list *l = kind_list(nc, k);
		for (size_t i = 0; i < l->n; i++) {
			if (!addr_new(old, nc, k, i))
				continue;
			int rc = px_sock_probe(&l->v[i], lkinds[k].type);
			if (rc < 0) {
				snprintf(err, errlen, "cannot listen on %s %s: %s", lkinds[k].name,
				         l->v[i].text, strerror(-rc));
				return rc;
			}
			if (lkinds[k].type == SOCK_DGRAM)
				(*n_udp)++;
			else
				(*n_tcp)++;
		}
	}
	return 0;
}

/* Binds one socket for address a of kind k and appends its listener to p
 * (whose arrays have room). */
static int bind_one(struct px_reload_post *p, size_t k, const struct cfg_addr *a, char *err,
                    size_t errlen)
{
	uv_os_sock_t fd;
	int rc = px_sock_bind(a, lkinds[k].type, &fd);

	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on %s %s: %s", lkinds[k].name, a->text,
		         strerror(-rc));
		return rc;
	}
	/* Listening here, in worker order, rather than in each worker's
	 * thread: the kernel numbers a TCP group's sockets in the order they
	 * listen, and steering's program (io/steer.c) names worker 0's
	 * socket by its number, as for UDP, where binding sets the order. */
	if (lkinds[k].type == SOCK_STREAM && listen(fd, PX_TCP_BACKLOG) < 0) {
		rc = -errno;
		close(fd);
		snprintf(err, errlen, "cannot listen on %s %s: %s", lkinds[k].name, a->text,
		         strerror(-rc));
		return rc;
	}
	if (lkinds[k].type == SOCK_DGRAM) {
		struct px_udp_listener *u = calloc(1, sizeof(*u));
		if (u == NULL)
			goto oom;
		u->addr = *a;
		u->fd = fd;
		p->udp[p->n_udp++] = u;
	} else {
		struct px_tcp_listener *t = calloc(1, sizeof(*t));
		if (t == NULL)
			goto oom;
		t->addr = *a;
		t->kind = lkinds[k].kind;
		t->fd = fd;
		p->tcp[p->n_tcp++] = t;
	}
	return 0;
oom:
	close(fd);
	snprintf(err, errlen, "out of memory binding new listeners");
	return -ENOMEM;
}

/* One worker's sockets for every new address. */
static int bind_worker(struct px_reload_post **out, const struct cfg *old, const struct cfg *nc,
                       size_t n_udp, size_t n_tcp, char *err, size_t errlen)
{
	struct px_reload_post *p = *out = calloc(1, sizeof(*p));

	if (p == NULL)
		goto oom;
	p->udp = calloc(n_udp + 1, sizeof(*p->udp));
	p->tcp = calloc(n_tcp + 1, sizeof(*p->tcp));
	if (p->udp == NULL || p->tcp == NULL)
		goto oom;
	for (size_t k = 0; k < N_LKINDS; k++) {
		const struct cfg_addr_list *l = kind_list(nc, k);
		for (size_t i = 0; i < l->n; i++) {
			if (!addr_new(old, nc, k, i))
				continue;
			int rc = bind_one(p, k, &l->v[i], err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory binding new listeners");
	return -ENOMEM;
}

int px_bind(struct px_server *srv, const struct cfg *old, const struct cfg *nc,
            struct px_reload_post ***out, char *err, size_t errlen)
{
	struct px_reload_post **posts = NULL;
	size_t n_udp = 0, n_tcp = 0;
	int rc = probe_new(old, nc, &n_udp, &n_tcp, err, errlen);

	if (rc < 0)
		return rc;
	posts = calloc(srv->n_workers, sizeof(*posts));
	if (posts == NULL) {
		snprintf(err, errlen, "out of memory binding new listeners");
		return -ENOMEM;
	}
	for (unsigned wi = 0; wi < srv->n_workers; wi++) {
		rc = bind_worker(&posts[wi], old, nc, n_udp, n_tcp, err, errlen);
		if (rc < 0) {
			px_bind_free(posts, srv->n_workers);
			return rc;
		}
	}
	*out = posts;
	return 0;
}

/* Logs the addresses of kind k in a but not in b; how many. */
static unsigned log_missing(const struct cfg *a, const struct cfg *b, size_t k, const char *what)
{
	const struct cfg_addr_list *la = kind_list(a, k), *lb = kind_list(b, k);
	unsigned n = 0;

	for (size_t i = 0; i < la->n; i++)
		if (!addr_listed(lb, &la->v[i])) {
			px_log(CFG_LOG_INFO, CFG, "reload: %s %s %s", what, lkinds[k].name,
			       la->v[i].text);
			n++;
		}
	return n;
}

void px_bind_log_changes(const struct cfg *old, const struct cfg *nc, unsigned *added,
                         unsigned *removed)
{
	*added = *removed = 0;
	for (size_t k = 0; k < N_LKINDS; k++) {
		*added += log_missing(nc, old, k, "now listening on");
		*removed += log_missing(old, nc, k, "no longer listening on");
	}
}

void px_bind_describe(const struct cfg *cfg, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < N_LKINDS; k++) {
		const struct cfg_addr_list *l = kind_list(cfg, k);
		for (size_t i = 0; i < l->n && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, " %s %s", lkinds[k].name,
			                      l->v[i].text);
	}
}
