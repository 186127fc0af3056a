/* proxy/ops/dnstap.c - dnstap: sinks, the workers' ports, the messages.
 *
 * libfstrm does the Frame Streams framing, the handshake with a
 * bidirectional collector (READY/ACCEPT/START, content type
 * protobuf:dnstap.Dnstap), the writer thread and its per-worker queues.
 * The transport under it is ours (an fstrm_rdwr) rather than libfstrm's
 * unix and file writers, for three reasons: its socket gets send and
 * receive timeouts (a collector that stops reading would otherwise block
 * the writer thread, and apexd's shutdown with it, forever); it tells the
 * workers whether the destination is open, so that what an absent
 * collector would miss is dropped at once and counted instead of being
 * encoded, queued and thrown away unseen by the writer thread; and it
 * logs when the collector comes and goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fstrm.h>

#include "proxy/ops/dnstap.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/dnstap_part.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

#define DNSTAP_CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* iovecs handed to one sendmsg/writev by the transport below. */
#define IO_IOV_MAX 64
/* Longest wait for sinks being stopped off the main thread, at exit:
 * each stops within a socket timeout or two (STOP, then FINISH). */
#define RETIRE_WAIT_MS (3 * PX_DNSTAP_IO_TIMEOUT_MS)

struct px_dnstap {
	atomic_uint refs;
	atomic_bool up; /* the writer has the destination open */
	struct fstrm_iothr *iothr;
	char dest[4200];
	char identity[256]; /* the host name */
	size_t identity_len;
	char version[64];
	size_t version_len;
};

/* The transport under the Frame Streams writer; writer thread only. */
struct tap_io {
	struct px_dnstap *d;
	bool is_unix;
	bool opened_once; /* file: truncated at the first open, appended to after */
	bool complained;  /* "cannot reach" logged since the last success */
	int fd;
	struct sockaddr_un sun;
	char path[4096];
};

static atomic_uint retiring;

/* --- the transport (writer thread) --------------------------------- */

static void io_shut(struct tap_io *io)
{
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

static int io_connect(struct tap_io *io)
{
	struct timeval tv = {PX_DNSTAP_IO_TIMEOUT_MS / 1000, PX_DNSTAP_IO_TIMEOUT_MS % 1000 * 1000};

	if (!io->is_unix) {
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY;
		io->fd = open(io->path, flags | (io->opened_once ? O_APPEND : O_TRUNC), 0640);
		return io->fd < 0 ? -errno : 0;
	}
	io->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (io->fd < 0)
		return -errno;
	/* connect() to a unix socket whose backlog is full waits for the
	 * send timeout too. */
	if (setsockopt(io->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(io->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(io->fd, (const struct sockaddr *)&io->sun, sizeof(io->sun)) < 0) {
		int err = -errno;
		io_shut(io);
		return err;
	}
	return 0;
}

static fstrm_res io_open(void *obj)
{
	struct tap_io *io = obj;

	/* A collector that refused the content type leaves the last
	 * connection open under libfstrm's feet. */
	io_shut(io);
	int rc = io_connect(io);
	if (rc < 0) {
		if (!io->complained)
			px_log(CFG_LOG_WARNING, MAIN,
			       "dnstap: cannot reach %s: %s; messages are dropped (and counted) "
			       "until it can be, tried again every %u s",
			       io->d->dest, strerror(-rc), PX_DNSTAP_REOPEN_S);
		io->complained = true;
		return fstrm_res_failure;
	}
	io->complained = false;
	io->opened_once = true;
	atomic_store_explicit(&io->d->up, true, memory_order_relaxed);
	px_log(CFG_LOG_INFO, MAIN, "dnstap: writing to %s", io->d->dest);
	return fstrm_res_success;
}

static fstrm_res io_close(void *obj)
{
	struct tap_io *io = obj;

	io_shut(io);
	if (atomic_exchange_explicit(&io->d->up, false, memory_order_relaxed))
		px_log(CFG_LOG_INFO, MAIN, "dnstap: %s closed", io->d->dest);
	return fstrm_res_success;
}

static fstrm_res io_read(void *obj, void *buf, size_t n)
{
	struct tap_io *io = obj;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(io->fd, (uint8_t *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fstrm_res_failure;
		got += (size_t)r;
	}
	return fstrm_res_success;
}

/* One sendmsg/writev of what is left from iov[i] + off; bytes written or -1. */
static ssize_t io_write_some(struct tap_io *io, const struct iovec *iov, int iovcnt, int i,
                             size_t off)
{
	struct iovec v[IO_IOV_MAX];
	int n = 0;

	for (int j = i; j < iovcnt && n < IO_IOV_MAX; j++, n++)
		v[n] = iov[j];
	v[0].iov_base = (uint8_t *)v[0].iov_base + off;
	v[0].iov_len -= off;
	if (!io->is_unix)
		return writev(io->fd, v, n);
	struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)n};
	return sendmsg(io->fd, &mh, MSG_NOSIGNAL);
}

static fstrm_res io_write(void *obj, const struct iovec *iov, int iovcnt)
{
	struct tap_io *io = obj;
	int i = 0;
	size_t off = 0;

	while (i < iovcnt) {
		ssize_t w = io_write_some(io, iov, iovcnt, i, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			px_log(CFG_LOG_WARNING, MAIN, "dnstap: %s: write failed: %s", io->d->dest,
			       errno == EAGAIN ? "the collector took nothing for 5 s"
			                       : strerror(errno));
			return fstrm_res_failure;
		}
		size_t left = (size_t)w;
		while (i < iovcnt && left >= iov[i].iov_len - off) {
			left -= iov[i].iov_len - off;
			off = 0;
			i++;
		}
		off += left;
	}
	return fstrm_res_success;
}

static fstrm_res io_destroy(void *obj)
{
	struct tap_io *io = obj;

	io_shut(io);
	free(io);
	return fstrm_res_success;
}

/* --- sinks (main thread) -------------------------------------------- */

static struct fstrm_writer *writer_new(struct px_dnstap *d, const char *dest)
{
	struct tap_io *io = calloc(1, sizeof(*io));
	struct fstrm_writer_options *wopt = fstrm_writer_options_init();
	struct fstrm_writer *wr = NULL;

	if (io == NULL || wopt == NULL)
		goto out;
	io->d = d;
	io->fd = -1;
	io->is_unix = strncmp(dest, "unix:", 5) == 0;
	snprintf(io->path, sizeof(io->path), "%s", dest + 5);
	io->sun.sun_family = AF_UNIX;
	/* config/ held a socket path to 107 bytes. */
	size_t plen = strnlen(io->path, sizeof(io->sun.sun_path) - 1);
	memcpy(io->sun.sun_path, io->path, plen);
	struct fstrm_rdwr *rdwr = fstrm_rdwr_init(io);
	fstrm_rdwr_set_destroy(rdwr, io_destroy);
	fstrm_rdwr_set_open(rdwr, io_open);
	fstrm_rdwr_set_close(rdwr, io_close);
	fstrm_rdwr_set_write(rdwr, io_write);
	/* A socket talks back (the handshake); a file does not. */
	if (io->is_unix)
		fstrm_rdwr_set_read(rdwr, io_read);
	io = NULL; /* the rdwr's now */
	fstrm_writer_options_add_content_type(wopt, DNSTAP_CONTENT_TYPE,
	                                      strlen(DNSTAP_CONTENT_TYPE));
	wr = fstrm_writer_init(wopt, &rdwr);
	if (wr == NULL)
		fstrm_rdwr_destroy(&rdwr);
out:
	free(io);
	fstrm_writer_options_destroy(&wopt);
	return wr;
}

static struct fstrm_iothr *iothr_new(struct fstrm_writer **wr, unsigned n_queues)
{
	struct fstrm_iothr_options *o = fstrm_iothr_options_init();
	struct fstrm_iothr *t = NULL;

	if (o == NULL)
		return NULL;
	if (fstrm_iothr_options_set_num_input_queues(o, n_queues) == fstrm_res_success &&
	    fstrm_iothr_options_set_input_queue_size(o, PX_DNSTAP_QUEUE) == fstrm_res_success &&
	    fstrm_iothr_options_set_queue_model(o, FSTRM_IOTHR_QUEUE_MODEL_SPSC) ==
	            fstrm_res_success &&
	    fstrm_iothr_options_set_reopen_interval(o, PX_DNSTAP_REOPEN_S) == fstrm_res_success)
		t = fstrm_iothr_init(o, wr);
	fstrm_iothr_options_destroy(&o);
	return t;
}

int px_dnstap_open(const char *dest, unsigned n_queues, struct px_dnstap **out, char *err,
                   size_t errlen)
{
	struct px_dnstap *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&d->refs, 1);
	atomic_init(&d->up, false);
	snprintf(d->dest, sizeof(d->dest), "%s", dest);
	if (gethostname(d->identity, sizeof(d->identity) - 1) < 0)
		d->identity[0] = '\0';
	d->identity_len = strlen(d->identity);
	d->version_len = (size_t)snprintf(d->version, sizeof(d->version), "apexd %s", APEX_VERSION);
	struct fstrm_writer *wr = writer_new(d, dest);
	if (wr != NULL)
		d->iothr = iothr_new(&wr, n_queues);
	if (d->iothr == NULL) {
		fstrm_writer_destroy(&wr);
		free(d);
		snprintf(err, errlen, "[server] dnstap %.300s: cannot start its writer thread",
		         dest);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static void sink_stop(struct px_dnstap *d)
{
	/* Writes what is queued, then STOP (and waits for FINISH). */
	fstrm_iothr_destroy(&d->iothr);
	free(d);
}

static void *retire_main(void *arg)
{
	sink_stop(arg);
	atomic_fetch_sub(&retiring, 1);
	return NULL;
}

void px_dnstap_unref(struct px_dnstap *d)
{
	pthread_attr_t attr;
	pthread_t th;

	if (d == NULL || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Stopping waits for the collector: never on a worker's loop, nor
	 * on main's while it serves the control socket. */
	atomic_fetch_add(&retiring, 1);
	bool started = pthread_attr_init(&attr) == 0;
	if (started) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&th, &attr, retire_main, d) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started)
		retire_main(d);
}

void px_dnstap_wait_retired(void)
{
	for (unsigned ms = 0; atomic_load(&retiring) > 0 && ms < RETIRE_WAIT_MS; ms += 10) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

void px_dnstap_post(struct px_server *srv, struct px_dnstap *d)
{
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_worker *w = &srv->workers[i];
		if (d != NULL)
			atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
		uv_mutex_lock(&w->posts.mu);
		struct px_dnstap *stale = w->tap.next;
		w->tap.next = d;
		w->tap.posted = true;
		uv_mutex_unlock(&w->posts.mu);
		/* A sink posted before and not taken yet is superseded. */
		px_dnstap_unref(stale);
		uv_async_send(&w->wake);
	}
}

/* --- the worker's port ------------------------------------------------ */

void px_dnstap_adopt(struct px_worker *w)
{
	struct px_tap_port *p = &w->tap;

	uv_mutex_lock(&w->posts.mu);
	bool posted = p->posted;
	struct px_dnstap *d = p->next;
	p->next = NULL;
	p->posted = false;
	uv_mutex_unlock(&w->posts.mu);
	if (!posted)
		return;
	px_dnstap_unref(p->sink);
	p->sink = d;
	p->idx = w->idx;
	p->stats = &w->stats;
	p->q = d != NULL ? fstrm_iothr_get_input_queue_idx(d->iothr, w->idx) : NULL;
	if (d != NULL && p->q == NULL) {
		px_log(CFG_LOG_ERROR, MAIN, "worker %u: no dnstap queue: dnstap off", w->idx);
		px_dnstap_unref(d);
		p->sink = NULL;
	}
	p->on = p->sink != NULL;
}

void px_dnstap_worker_deinit(struct px_worker *w)
{
	px_dnstap_unref(w->tap.sink);
	px_dnstap_unref(w->tap.next);
	w->tap.sink = w->tap.next = NULL;
	w->tap.on = false;
}

/* --- messages (the port's thread) ------------------------------------ */

static void count(struct px_tap_port *p, bool sent, unsigned n)
{
	if (p->stats == NULL)
		return;
	if (sent)
		PX_STAT_ADD(p->stats, dnstap_sent, n);
	else
		PX_STAT_ADD(p->stats, dnstap_dropped, n);
}

static void submit(struct px_tap_port *p, const struct px_tap_msg *m)
{
	struct px_dnstap *d = p->sink;
	size_t max = px_tap_encode_max(m, d->identity_len, d->version_len);
	uint8_t *buf = malloc(max);
	size_t n = 0;

	if (buf != NULL)
		n = px_tap_encode(buf, max, d->identity, d->identity_len, d->version,
		                  d->version_len, m);
	/* The writer thread frees what it took, written or not. */
	if (n == 0 || fstrm_iothr_submit(d->iothr, p->q, buf, n, fstrm_free_wrapper, NULL) !=
	                      fstrm_res_success) {
		free(buf);
		count(p, false, 1);
		return;
	}
	count(p, true, 1);
}

static bool sink_up(struct px_tap_port *p)
{
	return atomic_load_explicit(&p->sink->up, memory_order_relaxed);
}

void px_dnstap_now(struct px_tap_time *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	t->sec = (uint64_t)ts.tv_sec;
	t->nsec = (uint32_t)ts.tv_nsec;
}

/* Now, and when the query that arrived at rx_ns (uv_hrtime(), 0: not
 * known, taken as now) did on the same clock. */
static void answer_times(uint64_t rx_ns, struct px_tap_time *q, struct px_tap_time *r)
{
	px_dnstap_now(r);
	*q = *r;
	if (rx_ns == 0)
		return;
	uint64_t now = uv_hrtime(), ago = now > rx_ns ? now - rx_ns : 0;
	uint64_t at = r->sec * 1000000000ull + r->nsec - ago;
	q->sec = at / 1000000000ull;
	q->nsec = (uint32_t)(at % 1000000000ull);
}

static enum px_tap_proto proto_of(enum px_origin origin, const struct px_conn *c)
{
	if (origin == PX_ORIGIN_UDP || c == NULL)
		return PX_TAP_UDP;
	return c->kind == PX_CONN_DOT   ? PX_TAP_DOT
	       : c->kind == PX_CONN_DOH ? PX_TAP_DOH
	                                : PX_TAP_TCP;
}

/* The client of a TCP connection: the PROXY v2 header's source when it
 * had one, else the peer (listen/conn.c asks once and keeps it). */
static const struct sockaddr *conn_client(struct px_conn *c)
{
	return c == NULL ? NULL : px_conn_client(c);
}

static bool unspecified(const struct sockaddr *sa)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return sa->sa_family == AF_INET6 &&
	       memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &any6, sizeof(any6)) == 0;
}

/* A wildcard listener's end: the address the client asked (written to
 * buf) with the listener's port; NULL when it is not known. */
static const struct sockaddr *asked(const struct px_udp_listener *ul, const struct px_udp_local *lo,
                                    struct sockaddr_storage *buf)
{
	const struct sockaddr *sa = (const struct sockaddr *)&ul->addr.sa;

	memset(buf, 0, sizeof(*buf));
	if (lo == NULL || lo->family != sa->sa_family)
		return NULL;
	if (lo->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)buf;
		in->sin_family = AF_INET;
		in->sin_port = ((const struct sockaddr_in *)sa)->sin_port;
		in->sin_addr = lo->addr.v4;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)buf;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		in6->sin6_addr = lo->addr.v6;
	}
	return (const struct sockaddr *)buf;
}

/* apexd's end: the listener's address for UDP (for a wildcard listener
 * the address the client asked, lo), the connection's for TCP, asked
 * once and kept. */
static const struct sockaddr *server_end(struct px_udp_listener *ul, const struct px_udp_local *lo,
                                         struct px_conn *c, struct sockaddr_storage *buf)
{
	if (c == NULL) {
		if (ul == NULL)
			return NULL;
		if (unspecified((const struct sockaddr *)&ul->addr.sa))
			return asked(ul, lo, buf);
		return (const struct sockaddr *)&ul->addr.sa;
	}
	if (!c->local_known) {
		int len = sizeof(c->local);
		if (uv_tcp_getsockname(&c->h, (struct sockaddr *)&c->local, &len) < 0)
			return NULL;
		c->local_known = true;
	}
	return (const struct sockaddr *)&c->local;
}

static void auth_pair(struct px_tap_port *p, enum px_tap_proto proto, const struct sockaddr *client,
                      const struct sockaddr *server, const uint8_t *q, size_t qlen,
                      const uint8_t *ans, size_t len, uint64_t rx_ns, bool first)
{
	struct px_tap_time rt;
	struct px_tap_msg m = {.proto = proto, .query_sa = client, .response_sa = server};

	if (!sink_up(p)) {
		count(p, false, first ? 2 : 1);
		return;
	}
	answer_times(rx_ns, &m.query_time, &rt);
	if (first) {
		m.type = PX_TAP_AUTH_QUERY;
		m.query = q;
		m.query_len = qlen;
		submit(p, &m);
	}
	m.type = PX_TAP_AUTH_RESPONSE;
	m.query = NULL;
	m.response_time = rt;
	m.response = ans;
	m.response_len = len;
	submit(p, &m);
}

/* Who asked t: read from the txn's client part (listen/origin.h) and
 * nothing else, so that whatever names the client there (a PROXY v2
 * header) names it here too. */
static const struct sockaddr *txn_client(struct px_txn *t)
{
	return px_txn_client_addr(&t->cl);
}

void px_dnstap_txn(struct px_worker *w, struct px_txn *t, const uint8_t *ans, size_t len,
                   bool first)
{
	bool udp = t->origin == PX_ORIGIN_UDP;
	struct px_conn *c = udp ? NULL : t->cl.conn;
	struct sockaddr_storage buf;

	auth_pair(&w->tap, proto_of(t->origin, c), txn_client(t),
	          server_end(udp ? t->cl.ul : NULL, &t->cl.local, c, &buf), t->q, t->qlen, ans, len,
	          t->rx_ns, first);
}

void px_dnstap_direct(struct px_worker *w, enum px_origin origin, struct px_udp_listener *ul,
                      const struct px_udp_local *local, const struct sockaddr *peer,
                      struct px_conn *conn, const uint8_t *q, size_t qlen, const uint8_t *ans,
                      size_t len, uint64_t rx_ns)
{
	bool udp = origin == PX_ORIGIN_UDP;
	struct sockaddr_storage buf;

	auth_pair(&w->tap, proto_of(origin, conn), udp ? peer : conn_client(conn),
	          server_end(udp ? ul : NULL, local, udp ? NULL : conn, &buf), q, qlen, ans, len,
	          rx_ns, true);
}

void px_dnstap_forward(struct px_tap_port *p, bool tcp, const struct sockaddr *local,
                       const struct sockaddr *server, const struct px_tap_time *sent,
                       const uint8_t *q, size_t qlen, const uint8_t *resp, size_t rlen)
{
	struct px_tap_msg m = {
	        .proto = tcp ? PX_TAP_TCP : PX_TAP_UDP,
	        .query_sa = local,
	        .response_sa = server,
	        .query_time = *sent,
	};

	if (!p->on)
		return;
	if (!sink_up(p)) {
		count(p, false, 1);
		return;
	}
	if (resp == NULL) {
		m.type = PX_TAP_FORWARDER_QUERY;
		m.query = q;
		m.query_len = qlen;
	} else {
		m.type = PX_TAP_FORWARDER_RESPONSE;
		px_dnstap_now(&m.response_time);
		m.response = resp;
		m.response_len = rlen;
	}
	submit(p, &m);
}
