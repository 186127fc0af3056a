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
 *   explain NAME   what a query for NAME would get now, step by step: the
 *                  configuration ([zone], [alias]), the presence cache and
 *                  the target cache (read-only peeks under their locks),
 *                  and BIND's own answers to apexd-style queries sent from
 *                  here; each line says where its fact came from
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

#include "codec/build.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "flatten/cache.h"
#include "flatten/chase.h"
#include "flatten/policy.h"
#include "flatten/zones.h"
#include "proxy/ops/control.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/ctlreq.h"
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
/* Room for BIND's answer to one explain query (sent with EDNS 1232). */
#define PX_CTL_ANSWER_MAX 4096
#define PX_CTL_LISTEN_BACKLOG 16
/* After the reply: how long the client may take to hang up. Unread
 * input is drained meanwhile, since closing on it would reset the
 * connection and could cost the client the reply. */
#define PX_CTL_LINGER_MS 2000

struct ctl_conn;

/* One query of explain: to the backend, or one step of the live chase. */
struct ex_query {
	struct ctl_conn *c;
	struct ex_query *chain; /* chase steps, freed with the connection */
	uv_udp_t h;
	uv_timer_t timer;
	bool started, done;
	bool chase; /* answers go to the live chase, which matches them itself */
	uint16_t id;
	uint16_t qtype;
	int status; /* 0: answer in resp; else a negative errno */
	uint8_t q[FLAT_CHASE_OUT_MAX];
	size_t qlen;
	uint8_t resp[PX_CTL_ANSWER_MAX];
	size_t rlen;
};

struct explain {
	unsigned n_q, pending;
	/* q[0]: NAME with the asked type; q[1..]: NAME with each ANAME type. */
	struct ex_query q[1 + CFG_MAX_ANAME_TYPES];
	/* The live chase of the target, after the decision (see chase_*). */
	struct flat_chase fc;
	struct ex_query *steps; /* every step's query, newest first */
	unsigned n_steps;
	bool chasing;
};

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
	/* explain */
	struct explain *ex;
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
};

static void ctl_maybe_free(struct px_ctl *ctl)
{
	if (ctl->stopped && ctl->listener_closed && ctl->conns == NULL)
		free(ctl);
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
	if (c->ex != NULL)
		for (struct ex_query *q = c->ex->steps, *next; q != NULL; q = next) {
			next = q->chain;
			free(q);
		}
	free(c->ex);
	free(c);
	ctl_maybe_free(ctl);
}

static void handle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void ex_query_close(struct ex_query *q);

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->h, handle_closed);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (c->ex != NULL) {
		for (unsigned i = 0; i < c->ex->n_q; i++)
			ex_query_close(&c->ex->q[i]);
		for (struct ex_query *q = c->ex->steps; q != NULL; q = q->chain)
			ex_query_close(q);
	}
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

/* --- explain ------------------------------------------------------------ */

static void explain_finish(struct ctl_conn *c);
static void chase_step_done(struct ex_query *q, const uint8_t *resp, size_t len);

static void ex_closed(uv_handle_t *h)
{
	struct ex_query *q = h->data;
	conn_unref(q->c);
}

static void ex_query_close(struct ex_query *q)
{
	if (!q->started)
		return;
	q->started = false;
	uv_close((uv_handle_t *)&q->h, ex_closed);
	uv_close((uv_handle_t *)&q->timer, ex_closed);
}

static void ex_query_done(struct ex_query *q, int status)
{
	struct ctl_conn *c = q->c;

	if (q->done)
		return;
	q->done = true;
	q->status = status;
	uv_udp_recv_stop(&q->h);
	uv_timer_stop(&q->timer);
	if (q->chase) {
		chase_step_done(q, status == 0 ? q->resp : NULL, status == 0 ? q->rlen : 0);
		return;
	}
	if (--c->ex->pending == 0 && !c->closing && !c->replied)
		explain_finish(c);
}

static void ex_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ex_query *q = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)q->resp, sizeof(q->resp));
}

/* The answer to our query: same ID, QR, and our question echoed. */
static bool ex_matches(const struct ex_query *q, const uint8_t *msg, size_t len)
{
	size_t qend = q->qlen - 11; /* the question ends where our OPT begins */

	if (len < qend || codec_hdr_id(msg) != q->id || !codec_hdr_qr(msg) ||
	    codec_hdr_qdcount(msg) != 1)
		return false;
	for (size_t i = CODEC_HDR_LEN; i < qend; i++)
		if (codec_ascii_lower(msg[i]) != codec_ascii_lower(q->q[i]))
			return false;
	return true;
}

static void ex_recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                       unsigned flags)
{
	struct ex_query *q = h->data;

	(void)buf;
	(void)from;
	if (n < 0) {
		ex_query_done(q, (int)n);
		return;
	}
	if (n == 0 || (flags & UV_UDP_PARTIAL))
		return;
	if (q->chase) {
		/* The chase checks ID and question itself; WAIT: not ours. */
		if (!q->done && !q->c->replied &&
		    flat_chase_input(&q->c->ex->fc, q->resp, (size_t)n) != FLAT_STEP_WAIT) {
			q->done = true;
			uv_udp_recv_stop(&q->h);
			uv_timer_stop(&q->timer);
			chase_step_done(q, NULL, 0);
		}
		return;
	}
	if (!ex_matches(q, q->resp, (size_t)n))
		return;
	q->rlen = (size_t)n;
	ex_query_done(q, 0);
}

static void ex_timeout_cb(uv_timer_t *t)
{
	ex_query_done(t->data, -ETIMEDOUT);
}

/* Sends q->q[0..qlen) to server from a fresh socket and waits up to
 * timeout_ms for the answer (ex_recv_cb, ex_timeout_cb). */
static int ex_query_send(struct ctl_conn *c, struct ex_query *q, const struct sockaddr *server,
                         uint64_t timeout_ms)
{
	int rc;

	q->c = c;
	rc = uv_udp_init(c->ctl->loop, &q->h);
	if (rc < 0)
		return rc;
	q->h.data = q;
	uv_timer_init(c->ctl->loop, &q->timer);
	q->timer.data = q;
	q->started = true;
	c->refs += 2;
	rc = uv_udp_connect(&q->h, server);
	if (rc == 0) {
		uv_buf_t b = uv_buf_init((char *)q->q, (unsigned)q->qlen);
		rc = uv_udp_try_send(&q->h, &b, 1, NULL);
		if (rc >= 0)
			rc = 0;
	}
	if (rc == 0)
		rc = uv_udp_recv_start(&q->h, ex_alloc_cb, ex_recv_cb);
	if (rc < 0)
		return rc;
	uv_timer_start(&q->timer, ex_timeout_cb, timeout_ms, 0);
	return 0;
}

static int ex_query_start(struct ctl_conn *c, struct ex_query *q, const uint8_t *name, size_t len,
                          uint16_t qtype)
{
	const struct cfg *cfg = c->ctl->srv->cfg;

	q->qtype = qtype;
	q->id = px_up_random_id();
	q->qlen = codec_build_query(q->q, q->id, false, name, len, qtype);
	int rc = ex_query_send(c, q, (const struct sockaddr *)&cfg->backend.address.sa,
	                       cfg->backend.timeout_ms);
	if (rc == 0)
		c->ex->pending++;
	return rc;
}

static void put_addr(struct px_sbuf *b, uint16_t qtype, const uint8_t *a);

/* --- explain: the live chase ------------------------------------------- */

/* The target cache says what the next query gets; the live chase shows
 * the chain as the resolvers (or BIND) give it now, hop by hop with each
 * TTL, which the cache does not keep. It is the workers' own step
 * machine, driven from here, bounded by [flatten] deadline. */

static void chase_report(struct ctl_conn *c, const char *cut)
{
	const struct cfg *cfg = c->ctl->srv->cfg;
	struct px_sbuf *b = &c->body;
	struct flat_chase *fc = &c->ex->fc;
	char name[PX_CTL_NAME_TEXT_MAX], next[PX_CTL_NAME_TEXT_MAX], server[80];
	const char *tname = c->req.qtype == CODEC_TYPE_A ? "A" : "AAAA";

	px_sbuf_put(b,
	            "live chase now (%u quer%s; resolvers may answer from their own "
	            "caches):\n",
	            c->ex->n_steps, c->ex->n_steps == 1 ? "y" : "ies");
	for (unsigned i = 0; i < fc->n_hop; i++) {
		const struct flat_chase_hop *h = &fc->hop[i];
		codec_name_to_text(h->name, h->len, name, sizeof(name));
		if (h->server == FLAT_SERVER_BACKEND)
			snprintf(server, sizeof(server), "backend %s", cfg->backend.address.text);
		else if (h->resolver < cfg->resolver.addresses.n)
			snprintf(server, sizeof(server), "resolver %s",
			         cfg->resolver.addresses.v[h->resolver].text);
		else
			snprintf(server, sizeof(server), "no server");
		if (i + 1 < fc->n_hop) {
			codec_name_to_text(fc->hop[i + 1].name, fc->hop[i + 1].len, next,
			                   sizeof(next));
			px_sbuf_put(b, "  chase hop %u: %s CNAME %s, TTL %u [%s]\n", i + 1, name,
			            next, h->ttl, server);
		} else if (h->ttl == UINT32_MAX) {
			px_sbuf_put(b, "  chase hop %u: %s %s, no answer [%s]\n", i + 1, name,
			            tname, server);
		} else {
			px_sbuf_put(b, "  chase hop %u: %s %s, TTL %u [%s]\n", i + 1, name, tname,
			            h->ttl, server);
		}
	}
	if (cut != NULL) {
		px_sbuf_put(b, "  incomplete: %s\n", cut);
		return;
	}
	const struct flat_result *r = &fc->result;
	switch (r->kind) {
	case FLAT_RES_ADDRS:
		px_sbuf_put(b,
		            "  result: %u %s address%s, TTL %u (min over the chain):", r->n_addrs,
		            tname, r->n_addrs == 1 ? "" : "es", r->ttl);
		for (unsigned i = 0; i < r->n_addrs; i++) {
			px_sbuf_put(b, " ");
			put_addr(b, c->req.qtype, r->addrs[i]);
		}
		px_sbuf_put(b, "\n");
		break;
	case FLAT_RES_NODATA:
	case FLAT_RES_NXDOMAIN:
		px_sbuf_put(b, "  result: %s, negative TTL %u\n",
		            r->kind == FLAT_RES_NODATA ? "no records of the type" : "NXDOMAIN",
		            r->ttl);
		break;
	default:
		px_sbuf_put(b, "  result: failed (%s): EDE %u \"%s\"\n",
		            flat_chase_fail_name(fc->fail), r->ede, r->why);
		break;
	}
}

static void chase_end(struct ctl_conn *c, const char *cut)
{
	c->ex->chasing = false;
	uv_timer_stop(&c->timer);
	chase_report(c, cut);
	reply(c, true, NULL);
}

/* Sends the chase's current query; ends the chase when it cannot. */
static void chase_send(struct ctl_conn *c)
{
	const struct cfg *cfg = c->ctl->srv->cfg;
	struct flat_chase *fc = &c->ex->fc;

	for (;;) {
		if (fc->tcp) {
			/* The workers would ask again over TCP; explain stops. */
			chase_end(c, "an answer was truncated; apexd retries it over TCP, explain "
			             "does not");
			return;
		}
		struct ex_query *q = calloc(1, sizeof(*q));
		if (q == NULL) {
			chase_end(c, "out of memory");
			return;
		}
		q->chain = c->ex->steps;
		c->ex->steps = q;
		c->ex->n_steps++;
		q->chase = true;
		flat_chase_set_id(fc, px_up_random_id());
		memcpy(q->q, fc->out, fc->out_len);
		q->qlen = fc->out_len;
		const struct sockaddr *server;
		uint64_t timeout;
		if (fc->server == FLAT_SERVER_BACKEND) {
			server = (const struct sockaddr *)&cfg->backend.address.sa;
			timeout = cfg->backend.timeout_ms;
		} else {
			server = (const struct sockaddr *)&cfg->resolver.addresses.v[fc->resolver]
			                 .sa;
			timeout = cfg->resolver.timeout_ms;
		}
		if (ex_query_send(c, q, server, timeout) == 0)
			return;
		/* Could not send: as a timeout of that server, as the workers do. */
		q->done = true;
		if (flat_chase_input(fc, NULL, 0) != FLAT_STEP_SEND) {
			chase_end(c, NULL);
			return;
		}
	}
}

static void chase_step_done(struct ex_query *q, const uint8_t *resp, size_t len)
{
	struct ctl_conn *c = q->c;

	if (c->replied || c->closing || !c->ex->chasing)
		return;
	/* resp NULL with status 0: the answer was already fed (recv). */
	if (resp != NULL || q->status != 0) {
		if (flat_chase_input(&c->ex->fc, resp, len) == FLAT_STEP_WAIT)
			return; /* cannot happen for a timeout; kept for safety */
	}
	if (c->ex->fc.done)
		chase_end(c, NULL);
	else
		chase_send(c);
}

static void chase_deadline_cb(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;
	char why[96];

	if (c->replied || !c->ex->chasing)
		return;
	snprintf(why, sizeof(why), "took longer than [flatten] deadline %llu ms",
	         (unsigned long long)c->ctl->srv->cfg->flatten.deadline_ms);
	chase_end(c, why);
}

/* Starts the live chase of target; the reply goes out when it ends. */
static void chase_begin(struct ctl_conn *c, const uint8_t *target, size_t len)
{
	const struct cfg *cfg = c->ctl->srv->cfg;
	struct flat_chase_cfg cc = {
	        .max_chain = cfg->flatten.max_chain,
	        .n_resolvers = (unsigned)cfg->resolver.addresses.n,
	        .own = c->ctl->srv->zones,
	};

	c->ex->chasing = true;
	flat_chase_init(&c->ex->fc, &cc);
	uv_timer_start(&c->timer, chase_deadline_cb, cfg->flatten.deadline_ms, 0);
	if (flat_chase_begin(&c->ex->fc, target, len, c->req.qtype, UINT32_MAX, 0) ==
	    FLAT_STEP_SEND)
		chase_send(c);
	else
		chase_end(c, NULL);
}

static void do_explain(struct ctl_conn *c)
{
	struct px_server *srv = c->ctl->srv;
	const struct cfg *cfg = srv->cfg;
	size_t idx;
	bool apex;
	char name[PX_CTL_NAME_TEXT_MAX];

	codec_name_to_text(c->req.name, c->req.name_len, name, sizeof(name));
	if (srv->zones == NULL ||
	    flat_zones_find(srv->zones, c->req.name, c->req.name_len, &idx, &apex) != 0) {
		px_sbuf_put(&c->body, "%s is in no [zone] of %s [config]\n", name, cfg->path);
		px_sbuf_put(&c->body, "answer: BIND's answer, relayed unchanged\n");
		reply(c, true, NULL);
		return;
	}
	c->ex = calloc(1, sizeof(*c->ex));
	if (c->ex == NULL) {
		reply_error(c, "out of memory");
		return;
	}
	/* Everything else needs BIND's answers: ask them all at once. */
	c->ex->n_q = 1 + cfg->flatten.n_aname_types;
	int rc = ex_query_start(c, &c->ex->q[0], c->req.name, c->req.name_len, c->req.qtype);
	for (unsigned i = 0; rc == 0 && i < cfg->flatten.n_aname_types; i++)
		rc = ex_query_start(c, &c->ex->q[1 + i], c->req.name, c->req.name_len,
		                    cfg->flatten.aname_types[i]);
	if (rc < 0) {
		char why[160];
		snprintf(why, sizeof(why), "cannot query the backend %s: %s",
		         cfg->backend.address.text, uv_strerror(rc));
		for (unsigned i = 0; i < c->ex->n_q; i++)
			if (!c->ex->q[i].done && c->ex->q[i].started) {
				c->ex->q[i].done = true;
				uv_udp_recv_stop(&c->ex->q[i].h);
				uv_timer_stop(&c->ex->q[i].timer);
			}
		c->ex->pending = 0;
		reply_error(c, why);
	}
}

static const char *cname_mode_text(enum cfg_cname_mode m)
{
	return m == CFG_CNAME_ALL ? "all" : m == CFG_CNAME_NONE ? "none" : "apex";
}

static const char *rcode_text(unsigned rc)
{
	static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
	                                    "NXDOMAIN", "NOTIMP",  "REFUSED"};
	return rc < sizeof(names) / sizeof(names[0]) ? names[rc] : "an error RCODE";
}

static void put_addr(struct px_sbuf *b, uint16_t qtype, const uint8_t *a)
{
	char text[INET6_ADDRSTRLEN];

	if (qtype == CODEC_TYPE_A)
		uv_inet_ntop(AF_INET, a, text, sizeof(text));
	else
		uv_inet_ntop(AF_INET6, a, text, sizeof(text));
	px_sbuf_put(b, "%s", text);
}

/* BIND's answer section, one RR a line (names, types, TTLs; the RDATA of
 * the types flattening cares about). */
static void put_backend_answer(struct px_sbuf *b, const uint8_t *msg, size_t len,
                               const struct codec_view *v)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	uint8_t owner[CODEC_MAX_NAME], target[CODEC_MAX_NAME];
	char otext[PX_CTL_NAME_TEXT_MAX], ttext[PX_CTL_NAME_TEXT_MAX];

	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		int ol = codec_name_unpack(msg, len, rr.owner_off, owner);
		if (ol < 0)
			break;
		codec_name_to_text(owner, (size_t)ol, otext, sizeof(otext));
		px_sbuf_put(b, "  %s %u ", otext, rr.ttl);
		if (rr.type == CODEC_TYPE_CNAME) {
			int tl = codec_name_unpack(msg, len, rr.rdata_off, target);
			if (tl > 0)
				codec_name_to_text(target, (size_t)tl, ttext, sizeof(ttext));
			px_sbuf_put(b, "CNAME %s\n", tl > 0 ? ttext : "(unreadable)");
		} else if ((rr.type == CODEC_TYPE_A && rr.rdlen == 4) ||
		           (rr.type == CODEC_TYPE_AAAA && rr.rdlen == 16)) {
			px_sbuf_put(b, "%s ", rr.type == CODEC_TYPE_A ? "A" : "AAAA");
			put_addr(b, rr.type, msg + rr.rdata_off);
			px_sbuf_put(b, "\n");
		} else {
			px_sbuf_put(b, "TYPE%u (%u bytes of RDATA)\n", rr.type, rr.rdlen);
		}
	}
}

static uint32_t clamp_ttl(const struct cfg *cfg, uint32_t ttl)
{
	if (ttl < cfg->flatten.min_ttl_s)
		return (uint32_t)cfg->flatten.min_ttl_s;
	if (ttl > cfg->flatten.max_ttl_s)
		return (uint32_t)cfg->flatten.max_ttl_s;
	return ttl;
}

static void put_addrs_answer(struct px_sbuf *b, const char *owner, uint16_t qtype,
                             const struct flat_result *r, uint32_t ttl)
{
	for (unsigned i = 0; i < r->n_addrs; i++) {
		px_sbuf_put(b, "  %s %u IN %s ", owner, ttl, qtype == CODEC_TYPE_A ? "A" : "AAAA");
		put_addr(b, qtype, r->addrs[i]);
		px_sbuf_put(b, "\n");
	}
}

/* The answer when the result r (fresh or stale) is used. */
static void put_result_answer(struct px_sbuf *b, const struct cfg *cfg, const char *owner,
                              uint16_t qtype, const struct flat_result *r, uint32_t ttl,
                              const char *how)
{
	uint32_t final = clamp_ttl(cfg, ttl);

	if (r->kind == FLAT_RES_ADDRS) {
		px_sbuf_put(b,
		            "answer: NOERROR, %u %s address%s, TTL %u (%s; clamped to min-ttl "
		            "%llu .. max-ttl %llu)\n",
		            r->n_addrs, qtype == CODEC_TYPE_A ? "A" : "AAAA",
		            r->n_addrs == 1 ? "" : "es", final, how,
		            (unsigned long long)cfg->flatten.min_ttl_s,
		            (unsigned long long)cfg->flatten.max_ttl_s);
		put_addrs_answer(b, owner, qtype, r, final);
	} else {
		px_sbuf_put(b,
		            "answer: NOERROR, no %s records (the target %s), with the zone's SOA "
		            "for the negative TTL\n",
		            qtype == CODEC_TYPE_A ? "A" : "AAAA",
		            r->kind == FLAT_RES_NXDOMAIN ? "does not exist" : "has none");
	}
}

static void explain_finish(struct ctl_conn *c)
{
	struct px_server *srv = c->ctl->srv;
	const struct cfg *cfg = srv->cfg;
	struct px_sbuf *b = &c->body;
	struct explain *ex = c->ex;
	struct ex_query *main_q = &ex->q[0];
	const char *tname = c->req.qtype == CODEC_TYPE_A ? "A" : "AAAA";
	char name[PX_CTL_NAME_TEXT_MAX], text[PX_CTL_NAME_TEXT_MAX];
	uint64_t now_ms = uv_hrtime() / 1000000;
	size_t zidx, aidx;
	bool apex, alias_apex;

	codec_name_to_text(c->req.name, c->req.name_len, name, sizeof(name));
	/* The configuration is read again here, not kept from the request:
	 * it is the one the next query meets. */
	if (srv->zones == NULL ||
	    flat_zones_find(srv->zones, c->req.name, c->req.name_len, &zidx, &apex) != 0) {
		px_sbuf_put(b, "%s is in no [zone] of %s any more [config]\n", name, cfg->path);
		px_sbuf_put(b, "answer: BIND's answer, relayed unchanged\n");
		reply(c, true, NULL);
		return;
	}
	const struct cfg_zone *z = &cfg->zones[zidx];
	px_sbuf_put(b, "explain %s %s\n", name, tname);
	px_sbuf_put(b, "zone: %s, %s, cname = %s [config %s:%u]\n", z->name.text,
	            apex ? "the name is its apex" : "the name is below its apex",
	            cname_mode_text(z->cname), cfg->path, z->line);

	/* Where the target comes from: [alias], else an ANAME. */
	bool have_target = false, target_is_alias = false;
	uint8_t target[CODEC_MAX_NAME];
	size_t target_len = 0;
	uint32_t aname_ttl = UINT32_MAX;
	uint16_t aname_type = 0;

	if (srv->alias_owners != NULL &&
	    flat_zones_find(srv->alias_owners, c->req.name, c->req.name_len, &aidx, &alias_apex) ==
	            0 &&
	    alias_apex) {
		const struct cfg_alias *al = &cfg->aliases[aidx];
		have_target = target_is_alias = true;
		memcpy(target, al->target.wire, al->target.wire_len);
		target_len = al->target.wire_len;
		px_sbuf_put(b, "source: [alias] %s = %s [config %s:%u]\n", al->owner.text,
		            al->target.text, cfg->path, al->line);
	}
	if (target_is_alias)
		px_sbuf_put(b, "ANAME: not looked up, the [alias] entry decides [config]\n");
	/* The ANAME types asked when the request came (ex->q[1..]). */
	for (unsigned i = 0; !target_is_alias && i + 1 < ex->n_q; i++) {
		struct ex_query *q = &ex->q[1 + i];
		uint16_t type = q->qtype;
		struct flat_cache_key key;
		struct flat_cache_peek pk;
		struct codec_view v;
		struct flat_aname an;

		memset(&key, 0, sizeof(key));
		key.name = c->req.name;
		key.len = c->req.name_len;
		key.type = type;
		key.kind = FLAT_KEY_PRESENCE;
		px_sbuf_put(b, "ANAME (TYPE%u) in the presence cache: ", type);
		if (flat_cache_peek(srv->cache, &key, now_ms, &pk) == 0 && pk.has_good &&
		    pk.fresh) {
			const struct flat_presence *p = &pk.value.presence;
			if (p->present) {
				codec_name_to_text(p->target, p->target_len, text, sizeof(text));
				px_sbuf_put(b, "present, target %s, %u s left [presence cache]\n",
				            text, pk.ttl_left);
				if (!have_target) {
					have_target = true;
					memcpy(target, p->target, p->target_len);
					target_len = p->target_len;
					aname_ttl = pk.ttl_left;
					aname_type = type;
				}
			} else {
				px_sbuf_put(b, "absent, %u s left [presence cache]\n", pk.ttl_left);
			}
		} else {
			px_sbuf_put(b, "not cached: the next query probes the backend "
			               "[presence cache]\n");
		}
		px_sbuf_put(b, "ANAME (TYPE%u) at the backend now: ", type);
		if (q->status != 0) {
			px_sbuf_put(b, "no answer (%s) [backend %s]\n", strerror(-q->status),
			            cfg->backend.address.text);
			continue;
		}
		an.state = FLAT_ANAME_UNKNOWN;
		if (codec_scan(q->resp, q->rlen, &v) == 0)
			flat_aname_parse(q->resp, q->rlen, &v, c->req.name, c->req.name_len, type,
			                 &an);
		switch (an.state) {
		case FLAT_ANAME_PRESENT:
			codec_name_to_text(an.target, an.target_len, text, sizeof(text));
			px_sbuf_put(b, "%s %u IN TYPE%u %s [backend %s]\n", name, an.ttl, type,
			            text, cfg->backend.address.text);
			if (!have_target) {
				/* Not cached: the next query's probe finds this one. */
				have_target = true;
				memcpy(target, an.target, an.target_len);
				target_len = an.target_len;
				aname_ttl = an.ttl;
				aname_type = type;
			}
			break;
		case FLAT_ANAME_ABSENT:
			px_sbuf_put(b, "none (negative TTL %u) [backend %s]\n", an.ttl,
			            cfg->backend.address.text);
			break;
		case FLAT_ANAME_INVALID:
			px_sbuf_put(b,
			            "present but unusable: RDATA must be exactly one name; "
			            "ignored [backend %s]\n",
			            cfg->backend.address.text);
			break;
		default:
			px_sbuf_put(b, "no verdict (%s, or not authoritative) [backend %s]\n",
			            rcode_text(v.rcode), cfg->backend.address.text);
			break;
		}
	}

	/* BIND's answer to the question itself, and the policy's decision. */
	struct codec_view qv, rv;
	if (main_q->status != 0) {
		px_sbuf_put(b, "backend: no answer to %s %s (%s) [backend %s]\n", name, tname,
		            strerror(-main_q->status), cfg->backend.address.text);
		px_sbuf_put(b, "answer: SERVFAIL with EDE 22 (backend did not answer) unless it "
		               "answers the client's query\n");
		reply(c, true, NULL);
		return;
	}
	if (codec_scan(main_q->q, main_q->qlen, &qv) < 0 ||
	    codec_scan(main_q->resp, main_q->rlen, &rv) < 0) {
		px_sbuf_put(b, "backend: unreadable answer to %s %s [backend %s]\n", name, tname,
		            cfg->backend.address.text);
		reply(c, true, NULL);
		return;
	}
	px_sbuf_put(b, "backend answer to %s %s: %s, %u answer RR%s%s [backend %s]\n", name, tname,
	            rcode_text(rv.rcode), rv.ancount, rv.ancount == 1 ? "" : "s",
	            (rv.flags & CODEC_FLAG_TC) ? ", truncated" : "", cfg->backend.address.text);
	put_backend_answer(b, main_q->resp, main_q->rlen, &rv);

	struct flat_policy_in in;
	struct flat_policy_out po;
	memset(&in, 0, sizeof(in));
	memset(&po, 0, sizeof(po));
	in.query = main_q->q;
	in.qlen = main_q->qlen;
	in.qv = &qv;
	in.resp = main_q->resp;
	in.rlen = main_q->rlen;
	in.rv = &rv;
	in.mode = z->cname == CFG_CNAME_ALL    ? FLAT_CNAME_ALL
	          : z->cname == CFG_CNAME_NONE ? FLAT_CNAME_NONE
	                                       : FLAT_CNAME_APEX;
	in.is_apex = apex;
	if (have_target) {
		in.target = target;
		in.target_len = target_len;
		in.target_is_alias = target_is_alias;
	}
	flat_policy_inspect(&in, &po);
	if (po.action == FLAT_POLICY_RELAY) {
		px_sbuf_put(b,
		            "decision: relay, nothing to flatten (no ANAME, no [alias], and no "
		            "CNAME that cname = %s flattens here)\n",
		            cname_mode_text(z->cname));
		px_sbuf_put(b, "answer: BIND's answer above, unchanged\n");
		reply(c, true, NULL);
		return;
	}
	if (po.action == FLAT_POLICY_LOCAL) {
		px_sbuf_put(b,
		            "decision: flatten from BIND's own answer (the chain ends in the "
		            "zone), %u CNAME%s\n",
		            po.hops, po.hops == 1 ? "" : "s");
		if (po.local.kind == FLAT_RES_ADDRS)
			put_result_answer(b, cfg, name, c->req.qtype, &po.local, po.local.ttl,
			                  "min over the chain");
		else
			px_sbuf_put(b, "answer: NXDOMAIN at the end of the chain, answered with "
			               "the zone's SOA\n");
		reply(c, true, NULL);
		return;
	}

	/* CHASE: hop by hop, then the target cache. */
	codec_name_to_text(po.target, po.target_len, text, sizeof(text));
	const char *source = target_is_alias ? "[alias]" : have_target ? "ANAME" : "CNAME policy";
	px_sbuf_put(b, "decision: chase %s (source: %s)\n", text, source);
	unsigned hop = 1;
	uint32_t chain_ttl = po.chain_ttl;
	if (have_target && !target_is_alias) {
		px_sbuf_put(b, "hop %u: %s TYPE%u -> target, TTL %u\n", hop++, name, aname_type,
		            aname_ttl);
		if (aname_ttl < chain_ttl)
			chain_ttl = aname_ttl;
	} else if (target_is_alias) {
		px_sbuf_put(b, "hop %u: %s [alias] -> target, no TTL of its own\n", hop++, name);
	}
	if (po.hops > 0)
		px_sbuf_put(b, "hop %u: %u CNAME%s BIND followed (listed above), min TTL %u\n",
		            hop++, po.hops, po.hops == 1 ? "" : "s", po.chain_ttl);
	if (po.hops > cfg->flatten.max_chain) {
		px_sbuf_put(b,
		            "answer: the chain in the zone is longer than max-chain %u or loops: "
		            "%s\n",
		            cfg->flatten.max_chain,
		            po.siblings ? "BIND's sibling addresses (relayed)" : "SERVFAIL");
		reply(c, true, NULL);
		return;
	}

	struct flat_cache_key key;
	struct flat_cache_peek pk;
	memset(&key, 0, sizeof(key));
	key.name = po.target;
	key.len = po.target_len;
	key.type = c->req.qtype;
	key.kind = FLAT_KEY_TARGET;
	flat_cache_peek(srv->cache, &key, now_ms, &pk);
	const struct flat_result *r = &pk.value.result;
	px_sbuf_put(b, "target cache, %s %s: ", text, tname);
	if (!pk.found || (!pk.has_good && !pk.failing)) {
		px_sbuf_put(b, "nothing cached%s [target cache]\n",
		            pk.claimed ? ", a chase is in flight" : "");
	} else {
		if (pk.has_good) {
			const char *kind = r->kind == FLAT_RES_ADDRS      ? "addresses"
			                   : r->kind == FLAT_RES_NXDOMAIN ? "NXDOMAIN"
			                                                  : "NODATA";
			if (pk.fresh)
				px_sbuf_put(b, "%s, fresh, stored with TTL %u, %u s left", kind,
				            pk.ttl_s, pk.ttl_left);
			else if (pk.stale_ok)
				px_sbuf_put(b,
				            "%s, stale (TTL %u expired), may be served stale %u s "
				            "more",
				            kind, pk.ttl_s, pk.stale_left);
			else
				px_sbuf_put(b, "%s, expired past serve-stale", kind);
			px_sbuf_put(b, ", the resolver's chain had %u CNAME%s", r->hops,
			            r->hops == 1 ? "" : "s");
		}
		if (pk.failing)
			px_sbuf_put(b, "%slast chase failed (EDE %u, \"%s\"), remembered %u s more",
			            pk.has_good ? "; " : "", pk.fail_ede, pk.fail_why,
			            pk.fail_left);
		if (pk.claimed)
			px_sbuf_put(b, "; a chase is in flight (%u queries waiting, %llu ms)",
			            pk.waiters, (unsigned long long)pk.claim_age_ms);
		px_sbuf_put(b, " [target cache]\n");
		if (pk.has_good && r->kind == FLAT_RES_ADDRS)
			for (unsigned i = 0; i < r->n_addrs; i++) {
				px_sbuf_put(b, "  %s ", tname);
				put_addr(b, c->req.qtype, r->addrs[i]);
				px_sbuf_put(b, "\n");
			}
	}

	switch (pk.status) {
	case FLAT_CACHE_HIT: {
		uint32_t ttl = pk.ttl_left < chain_ttl ? pk.ttl_left : chain_ttl;
		put_result_answer(b, cfg, name, c->req.qtype, r, ttl,
		                  "min of the target's TTL left and the chain");
		if (r->kind == FLAT_RES_ADDRS)
			px_sbuf_put(
			        b,
			        "path: while the %s and this target entry are fresh, a query "
			        "without DO, TSIG or client subnet is answered from the "
			        "caches alone, without asking BIND (answers_flattened_direct)\n",
			        target_is_alias ? "[alias] entry" : "ANAME presence entry");
		break;
	}
	case FLAT_CACHE_FAIL:
		if (pk.stale_ok) {
			px_sbuf_put(b, "answer: stale, with EDE 3 (Stale Answer):\n");
			put_result_answer(b, cfg, name, c->req.qtype, r, 0, "stale");
		} else if (po.siblings) {
			px_sbuf_put(b,
			            "answer: BIND's sibling %s records (relayed, the chase "
			            "failed)\n",
			            tname);
		} else {
			px_sbuf_put(b, "answer: SERVFAIL with EDE %u \"%s\"\n", pk.fail_ede,
			            pk.fail_why);
		}
		break;
	case FLAT_CACHE_STALE:
		px_sbuf_put(b,
		            "answer: the next query chases %s again (within deadline %llu ms); "
		            "if that fails, the stale addresses with EDE 3\n",
		            text, (unsigned long long)cfg->flatten.deadline_ms);
		break;
	default:
		px_sbuf_put(b,
		            "answer: the next query chases %s (within deadline %llu ms); on "
		            "failure %s\n",
		            text, (unsigned long long)cfg->flatten.deadline_ms,
		            po.siblings ? "BIND's sibling addresses" : "SERVFAIL with an EDE");
		break;
	}
	chase_begin(c, po.target, po.target_len);
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
	/* Each connection gets its answer (or this error) and closes; the
	 * last close, or the listener's, frees ctl. */
	for (struct ctl_conn *c = ctl->conns; c != NULL; c = c->next)
		if (!c->replied)
			reply_error(c, "apexd is shutting down");
	uv_close((uv_handle_t *)&ctl->listener, listener_closed);
}
