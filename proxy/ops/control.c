/* proxy/ops/control.c - the [server] control socket that apexctl talks to.
 *
 * Runs on the main thread's loop (the one that waits for signals), so a
 * reload from here and one from SIGHUP never run at the same time. One
 * request per connection (protocol in ctlreq.h); the reply is written and
 * the connection closed.
 *
 *   stats          every counter summed over the workers (statsfmt.c)
 *   reload         px_server_reload(), as SIGHUP
 *   flush [NAME]   the shared target cache at once (its shard locks), and
 *                  the workers' answer caches: all of them by bumping the
 *                  generation they check, one name by posting it to every
 *                  worker and waiting until each has dropped it
 *   explain NAME   what a query for NAME would get now, step by step
 *                  (explain.c), from the query path's own functions
 *
 * Nothing here touches a worker's state: the caches read are the shared,
 * locked ones, the zone tables are immutable after startup, and the
 * counters are read with relaxed loads.
 * Threads: main thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec/name.h"
#include "flatten/cache.h"
#include "proxy/ops/control.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/ctlreq.h"
#include "proxy/ops/explain.h"
#include "proxy/ops/log.h"
#include "proxy/ops/statsfmt.h"

/* A client has this long to send its request line. */
#define PX_CTL_REQUEST_MS 5000
/* Control connections at once; more are told to retry and closed. */
#define PX_CTL_MAX_CONNS 16
/* How often a flush NAME checks whether every worker has dropped it,
 * and how long it waits for them (a worker answers within a loop turn;
 * only one blocked by a bug would take longer). */
#define PX_CTL_FLUSH_POLL_MS 5
#define PX_CTL_FLUSH_WAIT_MS 2000
#define PX_CTL_LISTEN_BACKLOG 16
/* After the reply: how long the client may take to hang up. Unread
 * input is drained meanwhile, since closing on it would reset the
 * connection and could cost the client the reply. */
#define PX_CTL_LINGER_MS 2000

struct ctl_conn {
	uv_pipe_t h;
	uv_timer_t timer;
	struct px_ctl *ctl;
	struct ctl_conn *prev, *next;
	unsigned refs; /* open handles, explain's included */
	bool closing, replied;
	char in[PX_CTL_LINE_MAX + 2];
	size_t in_len;
	struct px_ctl_req req;
	struct px_sbuf body;
	char *wbuf;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	bool lingering; /* reply sent: reading only to see the client hang up */
	/* flush NAME */
	struct px_flush_op *flush;
	ssize_t flush_target;
	uint64_t flush_since;
	unsigned flush_posted;
	struct px_explain *ex; /* explain NAME */
};

struct px_ctl {
	struct px_server *srv;
	uv_loop_t *loop;
	uv_pipe_t listener;
	bool listening;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_conn *conns;
	unsigned n_conns;
	bool stopped;         /* px_control_stop ran: free when all is closed */
	bool listener_closed; /* its close callback ran */
	/* explain's own queries, on this loop (flat/upstream.c) */
	struct px_own_queries up;
	struct px_up_home up_home;
};

static void ctl_maybe_free(struct px_ctl *ctl)
{
	if (ctl->stopped && ctl->listener_closed && ctl->conns == NULL) {
		free(ctl->up.rx);
		free(ctl);
	}
}

/* --- connections ---------------------------------------------------- */

static void conn_unref(struct ctl_conn *c)
{
	if (--c->refs > 0)
		return;
	struct px_ctl *ctl = c->ctl;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ctl->n_conns--;
	px_flush_op_release(c->flush);
	free(c->body.p);
	free(c->wbuf);
	free(c);
	ctl_maybe_free(ctl);
}

static void handle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->h, handle_closed);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	px_explain_drop(c->ex);
	c->ex = NULL;
}

static void linger_timeout_cb(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct ctl_conn *c = req->data;

	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	/* The client saw EOF after the reply; wait for it to close. */
	c->lingering = true;
	uv_timer_start(&c->timer, linger_timeout_cb, PX_CTL_LINGER_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc_cb, conn_read_cb) < 0)
		conn_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
	struct ctl_conn *c = req->data;

	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->h, shutdown_cb) < 0)
		conn_close(c);
}

/* Sends the body, dot-stuffed, and the end line; then closes. */
static void reply(struct ctl_conn *c, bool ok, const char *errtext)
{
	struct px_sbuf out = {0};
	const char *p = c->body.p != NULL ? c->body.p : "";

	if (c->replied || c->closing)
		return;
	c->replied = true;
	uv_timer_stop(&c->timer);
	uv_read_stop((uv_stream_t *)&c->h);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		px_sbuf_put(&out, "%s%.*s\n", p[0] == '.' ? "." : "", (int)n, p);
		p += n + (nl != NULL ? 1 : 0);
	}
	if (c->body.oom) {
		ok = false;
		errtext = "out of memory while building the reply";
	}
	if (ok) {
		px_sbuf_put(&out, PX_CTL_END_OK "\n");
	} else {
		/* The error text is one line. */
		px_sbuf_put(&out, PX_CTL_END_ERROR " ");
		for (const char *e = errtext; *e; e++)
			px_sbuf_put(&out, "%c", *e == '\n' ? ' ' : *e);
		px_sbuf_put(&out, "\n");
	}
	if (out.oom || out.p == NULL) {
		free(out.p);
		conn_close(c);
		return;
	}
	c->wbuf = out.p;
	uv_buf_t buf = uv_buf_init(out.p, (unsigned)out.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->h, &buf, 1, write_cb) < 0)
		conn_close(c);
}

static void reply_error(struct ctl_conn *c, const char *text)
{
	px_log(CFG_LOG_INFO, CTL, "request failed: %s", text);
	reply(c, false, text);
}

/* --- stats, reload ---------------------------------------------------- */

static void do_stats(struct ctl_conn *c)
{
	char *text = NULL;
	ssize_t n = px_stats_render(c->ctl->srv, PX_STATS_TEXT, &text);

	if (n < 0) {
		reply_error(c, "out of memory");
		return;
	}
	px_sbuf_put(&c->body, "%s", text);
	free(text);
	reply(c, true, NULL);
}

static void do_reload(struct ctl_conn *c)
{
	char msg[1024];

	msg[0] = '\0';
	int rc = px_server_reload(c->ctl->srv, msg, sizeof(msg));
	if (rc < 0) {
		reply_error(c, msg[0] ? msg : "reload failed");
		return;
	}
	px_sbuf_put(&c->body, "%s\n", msg);
	reply(c, true, NULL);
}

/* --- flush -------------------------------------------------------------- */

static void flush_reply(struct ctl_conn *c)
{
	char name[PX_CTL_NAME_TEXT_MAX];
	unsigned left = atomic_load(&c->flush->left);
	uint64_t dropped = atomic_load(&c->flush->dropped);

	codec_name_to_text(c->req.name, c->req.name_len, name, sizeof(name));
	px_sbuf_put(&c->body, "target cache: %zd values for %s dropped\n", c->flush_target, name);
	if (c->ctl->srv->workers[0].anscache == NULL) {
		px_sbuf_put(&c->body, "answer cache: off ([cache] answers = no)\n");
	} else {
		px_sbuf_put(&c->body,
		            "answer cache: %llu answers for %s dropped by %u of %u workers\n",
		            (unsigned long long)dropped, name, c->flush_posted - left,
		            c->ctl->srv->n_workers);
	}
	px_log(CFG_LOG_INFO, CTL, "flush %s: %zd target cache values, %llu answers dropped", name,
	       c->flush_target, (unsigned long long)dropped);
	if (left > 0) {
		reply_error(c, "some workers did not confirm the flush in time");
		return;
	}
	reply(c, true, NULL);
}

static void flush_poll_cb(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;

	if (c->replied)
		return;
	if (atomic_load(&c->flush->left) == 0 ||
	    uv_now(c->ctl->loop) - c->flush_since >= PX_CTL_FLUSH_WAIT_MS) {
		uv_timer_stop(t);
		flush_reply(c);
	}
}

static void do_flush(struct ctl_conn *c)
{
	struct px_server *srv = c->ctl->srv;

	if (!c->req.has_name) {
		flat_cache_flush_all(srv->cache);
		/* Every worker's answer cache checks this generation on each
		 * lookup: older entries are misses from now on. */
		atomic_fetch_add(&srv->anscache_gen, 1);
		px_sbuf_put(&c->body, "target cache: all values dropped\n");
		px_sbuf_put(&c->body, "answer cache: %s\n",
		            srv->workers[0].anscache != NULL ? "all answers dropped"
		                                             : "off ([cache] answers = no)");
		px_log(CFG_LOG_INFO, CTL, "flush: target cache and answer caches emptied");
		reply(c, true, NULL);
		return;
	}
	c->flush_target = flat_cache_flush_name(srv->cache, c->req.name, c->req.name_len);
	c->flush = calloc(1, sizeof(*c->flush));
	if (c->flush == NULL) {
		reply_error(c, "out of memory");
		return;
	}
	atomic_init(&c->flush->refs, 1);
	memcpy(c->flush->name, c->req.name, c->req.name_len);
	c->flush->len = c->req.name_len;
	if (srv->workers[0].anscache == NULL) {
		flush_reply(c);
		return;
	}
	atomic_store(&c->flush->left, srv->n_workers);
	for (unsigned i = 0; i < srv->n_workers; i++) {
		if (px_worker_post_flush(&srv->workers[i], c->flush) == 0)
			c->flush_posted++;
		else
			atomic_fetch_sub(&c->flush->left, 1);
	}
	c->flush_since = uv_now(c->ctl->loop);
	uv_timer_start(&c->timer, flush_poll_cb, PX_CTL_FLUSH_POLL_MS, PX_CTL_FLUSH_POLL_MS);
}

/* --- explain (explain.c) ------------------------------------------------ */

static void explain_done(void *arg, bool ok, const char *err)
{
	struct ctl_conn *c = arg;

	if (ok)
		reply(c, true, NULL);
	else
		reply_error(c, err);
}

static void do_explain(struct ctl_conn *c)
{
	struct px_explain_req req = {
	        .srv = c->ctl->srv,
	        .home = &c->ctl->up_home,
	        .body = &c->body,
	        .name = c->req.name,
	        .name_len = c->req.name_len,
	        .qtype = c->req.qtype,
	        .subnet = c->req.has_subnet ? &c->req.subnet : NULL,
	        .done = explain_done,
	        .arg = c,
	};

	c->ex = px_explain_start(&req);
	/* The reply may have failed at once and closed the connection. */
	if (c->closing) {
		px_explain_drop(c->ex);
		c->ex = NULL;
	}
}

/* workers [N|auto]: pins how many workers take UDP queries and new
 * connections, or hands the choice back to the rule (engine/steer.c).
 * Worker 0 applies it when it wakes: the reply says what was asked,
 * active= what was in force when it was written. */
static void do_workers(struct ctl_conn *c)
{
	struct px_server *srv = c->ctl->srv;
	char why[96];

	if (c->req.has_workers) {
		if (c->req.workers > srv->n_workers) {
			snprintf(why, sizeof(why),
			         "%u workers asked; apexd runs %u ([server] threads)",
			         c->req.workers, srv->n_workers);
			reply_error(c, why);
			return;
		}
		atomic_store(&srv->steer_pin, c->req.workers);
		px_worker_nudge(&srv->workers[0]);
		if (c->req.workers > 0)
			px_log(CFG_LOG_INFO, CTL, "workers: pinned to %u of %u", c->req.workers,
			       srv->n_workers);
		else
			px_log(CFG_LOG_INFO, CTL, "workers: the steering rule decides");
	}
	unsigned pin = atomic_load(&srv->steer_pin);
	px_sbuf_put(&c->body, "workers=%u\nactive=%u\n", srv->n_workers, atomic_load(&srv->active));
	if (pin > 0)
		px_sbuf_put(&c->body, "steering=pinned\npinned=%u\n", pin);
	else
		px_sbuf_put(&c->body, "steering=auto\n");
	reply(c, true, NULL);
}

/* --- requests ---------------------------------------------------------- */

static void handle_request(struct ctl_conn *c, const char *line, size_t len)
{
	char err[256];

	if (px_ctl_parse(line, len, &c->req, err, sizeof(err)) < 0) {
		reply_error(c, err);
		return;
	}
	switch (c->req.cmd) {
	case PX_CTL_STATS:
		do_stats(c);
		break;
	case PX_CTL_RELOAD:
		do_reload(c);
		break;
	case PX_CTL_FLUSH:
		do_flush(c);
		break;
	case PX_CTL_EXPLAIN:
		do_explain(c);
		break;
	case PX_CTL_WORKERS:
		do_workers(c);
		break;
	}
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl_conn *c = h->data;

	(void)suggested;
	if (c->lingering) {
		/* Whatever still comes is dropped. */
		*buf = uv_buf_init(c->in, (unsigned)sizeof(c->in));
		return;
	}
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof(c->in) - 1 - c->in_len));
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn *c = s->data;

	(void)buf;
	if (c->lingering) {
		if (n < 0)
			conn_close(c);
		return;
	}
	if (n == 0 || c->replied)
		return;
	if (n < 0) {
		/* EOF before a whole line: nobody to answer. */
		uv_read_stop(s);
		if (!c->replied)
			conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	char *nl = memchr(c->in, '\n', c->in_len);
	if (nl == NULL) {
		if (c->in_len >= sizeof(c->in) - 1) {
			uv_read_stop(s);
			char why[64];
			snprintf(why, sizeof(why), "request longer than %d bytes", PX_CTL_LINE_MAX);
			reply_error(c, why);
		}
		return;
	}
	/* One request per connection: stop reading, answer, close. */
	uv_read_stop(s);
	uv_timer_stop(&c->timer);
	handle_request(c, c->in, (size_t)(nl - c->in));
}

static void request_timeout_cb(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;
	char why[64];

	snprintf(why, sizeof(why), "no request line within %d ms", PX_CTL_REQUEST_MS);
	reply_error(c, why);
}

static void accept_cb(uv_stream_t *server, int status)
{
	struct px_ctl *ctl = server->data;
	struct ctl_conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->ctl = ctl;
	uv_pipe_init(ctl->loop, &c->h, 0);
	uv_timer_init(ctl->loop, &c->timer);
	c->h.data = c;
	c->timer.data = c;
	c->refs = 2;
	c->next = ctl->conns;
	if (ctl->conns != NULL)
		ctl->conns->prev = c;
	ctl->conns = c;
	ctl->n_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
		conn_close(c);
		return;
	}
	if (ctl->n_conns > PX_CTL_MAX_CONNS) {
		reply_error(c, "too many control connections at once; try again");
		return;
	}
	uv_timer_start(&c->timer, request_timeout_cb, PX_CTL_REQUEST_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc_cb, conn_read_cb) < 0)
		conn_close(c);
}

/* --- start and stop ---------------------------------------------------- */

/* The path may hold a socket left by an apexd that died: replace it, but
 * never one that still answers (another apexd) and never a non-socket. */
static int clear_stale(const char *path)
{
	struct stat st;
	struct sockaddr_un sa;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	if (err != ECONNREFUSED)
		return -err;
	return unlink(path) == 0 ? 0 : -errno;
}

int px_control_start(struct px_server *srv, uv_loop_t *loop)
{
	const char *path = srv->cfg->server.control;
	struct px_ctl *ctl;
	int rc;

	if (path[0] == '\0')
		return 0;
	rc = clear_stale(path);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, CTL, "control socket %s: %s", path,
		       rc == -EEXIST       ? "exists and is not a socket"
		       : rc == -EADDRINUSE ? "another process (another apexd?) is listening on it"
		                           : strerror(-rc));
		return rc;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return -ENOMEM;
	ctl->srv = srv;
	ctl->loop = loop;
	ctl->up.rx = malloc(PX_UDP_DGRAM_MAX);
	if (ctl->up.rx == NULL) {
		free(ctl);
		return -ENOMEM;
	}
	ctl->up_home = (struct px_up_home){.loop = loop, .own = &ctl->up};
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	uv_pipe_init(loop, &ctl->listener, 0);
	ctl->listener.data = ctl;
	srv->ctl = ctl;
	/* 0600 from the start: the umask covers the window between bind
	 * and chmod, when the socket exists but does not listen yet. */
	mode_t old = umask(0177);
	rc = uv_pipe_bind(&ctl->listener, path);
	umask(old);
	if (rc == 0 && chmod(path, 0600) != 0)
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ctl->listener, PX_CTL_LISTEN_BACKLOG, accept_cb);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, CTL, "control socket %s: %s", path, uv_strerror(rc));
		px_control_stop(srv);
		return rc;
	}
	ctl->listening = true;
	px_log(CFG_LOG_INFO, CTL, "control socket %s", path);
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct px_ctl *ctl = h->data;

	ctl->listener_closed = true;
	ctl_maybe_free(ctl);
}

void px_control_stop(struct px_server *srv)
{
	struct px_ctl *ctl = srv->ctl;

	if (ctl == NULL)
		return;
	srv->ctl = NULL;
	/* Only a socket we created and listen on is ours to remove. */
	if (ctl->listening)
		unlink(ctl->path);
	ctl->listening = false;
	ctl->stopped = true;
	/* explain's queries end now (their runs see UV_ECANCELED). */
	px_up_cancel_home(&ctl->up_home);
	/* Each connection gets its answer (or this error) and closes; the
	 * last close, or the listener's, frees ctl. */
	for (struct ctl_conn *c = ctl->conns; c != NULL; c = c->next)
		if (!c->replied)
			reply_error(c, "apexd is shutting down");
	uv_close((uv_handle_t *)&ctl->listener, listener_closed);
}
