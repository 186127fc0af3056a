/* proxy/internal.h - structures shared by the files of proxy/.
 *
 * One struct px_worker per thread, each with its own uv_loop_t; nothing
 * in a worker is touched by another thread except the few atomics in
 * struct px_server and the counters (read-only from outside).
 *
 * A client query lives in a struct px_txn (fixed slots per worker, no
 * allocation for queries up to PX_TXN_INLINE bytes) from the moment it is
 * read until its answer is written. The client's message goes to the
 * backend unchanged, ID included, so the backend side is multiplexed by
 * socket: a query takes a backend UDP socket on which its ID is free, and
 * an answer is matched on socket + ID + question.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "codec/scan.h"
#include "config/config.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* UDP datagrams are at most 64 KiB; libuv's recvmmsg reads one per 64 KiB
 * chunk of the buffer we hand it, up to 20 per call (UV__MMSG_MAXWIDTH). */
#define PX_UDP_DGRAM_MAX 65536
#define PX_UDP_RX_CHUNKS 20
/* Queries up to this size are kept inside the slot; larger ones (rare:
 * UPDATE with big RRsets) are copied to the heap. 512 covers every plain
 * query with EDNS, a cookie and a TSIG. */
#define PX_TXN_INLINE 512
/* Slots per worker: bounds memory and in-flight queries per thread. */
#define PX_TXN_SLOTS 8192
/* Backend UDP sockets per worker at most. A new socket is opened only
 * when a query's ID is in flight on every open one, so this bounds how
 * many concurrent queries may share one ID. */
#define PX_BACKEND_MAX_SOCKS 64
/* Backend TCP connections per worker for truncated answers. */
#define PX_BACKEND_MAX_TCP 8
/* Pipelined queries per backend TCP connection. */
#define PX_BCONN_MAX_INFLIGHT 64
/* A client TCP frame is at most 65535 bytes plus its 2-byte prefix. */
#define PX_TCP_FRAME_MAX (2 + CODEC_MAX_MSG)
#define PX_TCP_RBUF_INITIAL 4096
/* Pipelined queries per client connection before apexd stops reading
 * from it (RFC 7766 6.2.1.1 lets a server limit this). */
#define PX_CONN_MAX_INFLIGHT 128
/* Answers written but not yet taken by the kernel, per connection. Past
 * the high mark apexd stops reading the client's queries (it is not
 * reading its answers; RFC 7766 6.2.1.1 lets a server stop) and DoH
 * leaves its frames inside nghttp2; below the low mark both resume.
 * Answers already in flight may still land on top, up to the hard cap,
 * where the client is cut off: memory per connection stays bounded
 * whatever the client does. */
#define PX_CONN_WQ_HIGH (256 * 1024)
#define PX_CONN_WQ_LOW (64 * 1024)
#define PX_CONN_WQ_HARD (4 * 1024 * 1024)
#define PX_TCP_BACKLOG 1024
/* Chases (distinct targets being resolved) per worker at once; each
 * holds a socket to a resolver. Past this the resolvers are not keeping
 * up, and a new target fails at once (stale, siblings or SERVFAIL) rather
 * than pile up descriptors and memory. */
#define PX_CHASE_MAX_INFLIGHT 1024
/* Room for apexd's own replies: a question, an OPT and an EDE text. */
#define PX_REPLY_MAX 1024
/* Datagrams queued per worker and direction before a sendmmsg (udptx.c):
 * more than one recvmmsg burst, so a burst's answers leave together. */
#define PX_UDP_TX_MAX 64
/* Bytes of queued datagrams per direction; one larger than a quarter of
 * this is sent at once instead (big answers are rare and cost the copy). */
#define PX_UDP_TX_ARENA (128 * 1024)

struct px_worker;
struct px_conn;
struct px_bconn;
struct px_bsock;
struct px_up;
struct px_anscache;
struct px_rrl;
struct px_flat;
struct px_doh;
struct tls_ctx;
struct tls_stream;
struct flat_cache;
struct flat_zones;
struct px_tcache;
struct px_qlog_file;

/* Reloads posted to a worker but not yet adopted, at most; one more
 * SIGHUP while a worker is this far behind is refused (the worker is
 * stuck, and every post holds a whole configuration). */
#define PX_RELOAD_MAX_PENDING 16

/** Per-worker use count of a generation, alone on its cache line so
 *  workers never write to a line another one writes to. */
struct px_gen_use {
	_Alignas(64) unsigned n;
};

/**
 * A configuration generation: one validated cfg and everything built
 * from it that workers read while answering. Immutable once published.
 * The main thread owns the current one (srv->gen) and posts a reference
 * to each worker on reload; a worker adopts it at a loop-turn boundary
 * (its async callback) and keeps the old one while its own queries and
 * chases still use it: each px_txn and chase records the generation it
 * started under (px_gen_hold), counted per worker without atomics in
 * use[w->idx]. A worker holds one reference for its current generation
 * and one for each older one with a non-zero use count; the last
 * reference frees it (from whichever thread drops it).
 */
struct px_gen {
	atomic_uint refs;
	uint64_t id;                     /**< 1 at startup, +1 per applied reload */
	struct cfg *cfg;                 /**< owned */
	struct px_tcache *tcache;        /**< the target cache, shared by generations */
	struct flat_cache *cache;        /**< tcache's cache */
	struct flat_zones *zones;        /**< [zone] sections, by cfg->zones index */
	struct flat_zones *alias_owners; /**< [alias] owners, by cfg->aliases index */
	struct tls_ctx *tls_dot;         /**< [tls] with ALPN "dot", NULL without DoT */
	struct tls_ctx *tls_doh;         /**< [tls] with ALPN "h2", NULL without DoH */
	struct px_gen_use *use;          /**< n_workers entries */
	unsigned n_use;
};

struct px_ctl;
struct px_metrics;

/** A flush of one name (apexctl flush NAME), posted to every worker:
 *  each drops the name from its answer cache, the control side waits
 *  until left reaches 0. Freed by the last px_flush_op_release. */
struct px_flush_op {
	atomic_uint refs; /**< workers holding it + 1 for the control side */
	atomic_uint left; /**< workers that have not dropped the name yet */
	_Atomic uint64_t dropped;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
};

/** State every worker shares; set up by main before the threads start. */
struct px_server {
	/* The current generation and, for the main thread and the control
	 * socket, its parts (workers read their own w->gen instead). All
	 * change only on the main thread, in px_server_reload(). */
	struct px_gen *gen;
	uv_mutex_t gen_mu; /* guards gen for threads other than main (metrics.c) */
	const struct cfg *cfg;
	struct flat_cache *cache;        /* targets and ANAME presence, all workers */
	struct flat_zones *zones;        /* [zone] sections, by cfg->zones index */
	struct flat_zones *alias_owners; /* [alias] owners, by cfg->aliases index */
	struct tls_ctx *tls_dot;         /* [tls] with ALPN "dot", NULL without DoT */
	struct tls_ctx *tls_doh;         /* [tls] with ALPN "h2", NULL without DoH */
	atomic_uint tcp_conns;           /**< client TCP connections, all workers */
	atomic_bool stopping;            /**< SIGTERM/SIGINT seen */
	atomic_uint anscache_gen;          /**< bumped by a backend NOTIFY: flushes answer caches */
	struct px_qlog_file *qlog;       /**< main's reference to the query log, NULL when off */
	struct px_worker *workers;
	unsigned n_workers;
	struct px_ctl *ctl;         /**< [server] control, main thread (control.c) */
	struct px_metrics *metrics; /**< [listen] metrics, its own thread (metrics.c) */
	uint64_t started_ms;        /**< uv_hrtime() / 1e6 at startup, for uptime */
};

struct px_udp_listener {
	uv_udp_t h; /* h.data == this */
	struct px_worker *w;
	struct cfg_addr addr; /* a copy: the listener may outlive its cfg */
	uv_os_sock_t fd;      /* bound by main, opened on the worker loop */
	int sendfd;           /* the handle's socket, for sendmmsg (udptx.c) */
	unsigned txns;        /* queries in flight that answer from this socket */
	bool started;         /* h is initialised (closing it frees the listener) */
	bool removed;         /* gone from the configuration: closes when txns end */
};

/* What runs over a client TCP connection. */
enum px_conn_kind {
	PX_CONN_TCP = 0, /* DNS over TCP, RFC 7766 */
	PX_CONN_DOT,     /* the same framing inside TLS, RFC 7858 */
	PX_CONN_DOH,     /* HTTP/2 inside TLS, RFC 8484 (doh.c) */
};

struct px_tcp_listener {
	uv_tcp_t h;
	struct px_worker *w;
	enum px_conn_kind kind;
	struct cfg_addr addr; /* a copy: the listener may outlive its cfg */
	uv_os_sock_t fd;
	uint64_t fd_limit; /* RLIMIT_NOFILE at start, 0 = unlimited */
	bool started;
};

/** A reload for one worker: the generation and the sockets main bound
 *  for listeners the new file adds. */
struct px_reload_post {
	struct px_gen *gen; /* a reference for the worker */
	struct px_udp_listener **udp;
	size_t n_udp;
	struct px_tcp_listener **tcp;
	size_t n_tcp;
	struct px_reload_post *next;
};

enum px_origin {
	PX_ORIGIN_UDP,
	PX_ORIGIN_TCP,
};

/** One client query in flight. */
struct px_txn {
	uint32_t idx;
	uint32_t gen;
	bool busy;
	bool qlogged;     /**< its query-log line is written */
	uint8_t flat_how; /**< enum px_flat_how, for the query log */
	/* An answer from the caches alone (flatten.c answer_direct): its
	 * target, borrowed while the answer is written, for the query log. */
	const uint8_t *direct_target;
	uint8_t direct_target_len;
	uint8_t direct_hops;
	struct px_gen *g;       /**< the generation it started under (px_gen_hold) */
	uint64_t qlog_start_ns; /**< uv_hrtime() at arrival, only with a query log */
	enum px_origin origin;
	bool via_tcp;   /**< currently waiting on a backend TCP connection */
	bool xfr;       /**< AXFR/IXFR relayed message by message */
	bool keepalive; /**< the query carries edns-tcp-keepalive (RFC 7828) */
	uint16_t bid;   /**< the ID on the wire to the backend (see backend.c) */

	/* Client side. */
	struct px_udp_listener *ul;   /* UDP origin */
	struct sockaddr_storage peer; /* UDP origin */
	struct px_conn *conn;         /* TCP origin; holds a reference */
	int32_t doh_stream;           /* DoH: the HTTP/2 stream to answer on */
	uint64_t rx_ns;               /* uv_hrtime() when the query was read, for latency */
	bool answered;                /* counted in the statistics (an XFR answers often) */

	/* The query, unchanged. */
	uint8_t *q;
	uint16_t qlen;
	struct codec_view qv;
	uint8_t qinline[PX_TXN_INLINE];

	/* Backend side. */
	struct px_bsock *bsock; /* UDP socket the query went out on, or NULL */
	struct px_bconn *bconn; /* TCP connection it waits on, or NULL */
	struct px_txn *bnext;   /* next txn waiting on the same bconn */

	/* Flattening (flatten.c); fl is allocated only when it engages. */
	bool flat_eligible; /* A/AAAA/ANY/ANAME query inside a configured zone */
	uint16_t zone_idx;
	bool is_apex;
	uint64_t start_ms;
	struct px_flat *fl;

	/* Zone transfer progress (RFC 5936: ends with the first SOA repeated). */
	uint32_t xfr_msgs;
	uint32_t xfr_soa_serial;
	bool xfr_soa_seen;

	/* Deadline list (ascending deadlines: append at the tail). */
	uint64_t deadline_ms;
	struct px_txn *prev, *next;
	struct px_txn *free_next;
};

/** A backend UDP socket, connected to the backend address. */
struct px_bsock {
	uv_udp_t h;
	struct px_worker *w;
	unsigned idx;
	unsigned inflight;
	int sendfd;           /**< the handle's socket, for sendmmsg (udptx.c) */
	uint32_t slot[65536]; /**< query ID -> txn index + 1; 0 = ID free here */
};

/** Growable receive buffer for a framed TCP stream. */
struct px_rbuf {
	uint8_t *buf;
	size_t cap, start, end;
};

/** A backend TCP connection: used when the backend truncates, and for XFR. */
struct px_bconn {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_timer_t idle;
	struct px_worker *w;
	bool connected, closing, exclusive;
	unsigned handles_open;
	unsigned inflight;
	struct px_txn *waiting; /* singly linked through txn->bnext */
	struct px_rbuf in;
	struct px_bconn *next;
};

/** A client TCP connection. */
struct px_conn {
	uv_tcp_t h;
	uv_timer_t idle;
	struct px_worker *w;
	unsigned refs; /* 1 while handles are open + 1 per txn + 1 per pending write */
	unsigned handles_open;
	unsigned inflight;
	bool closing;
	bool eof; /* client half-closed: answer what is in flight, then close */
	bool reading;
	bool backlogged;             /* answers unread past PX_CONN_WQ_HIGH: not reading */
	struct px_rbuf in;           /* TCP: frames; TLS: ciphertext, fed at once */
	struct px_conn *prev, *next; /* worker's list, for shutdown */

	enum px_conn_kind kind;
	bool gauged;            /* counted in the worker's open_* gauge */
	struct tls_stream *tls; /* DoT, DoH */
	struct px_rbuf plain;   /* DoT: decrypted frames waiting to be peeled */
	struct px_doh *doh;     /* DoH: the HTTP/2 session (doh.c) */
	int32_t cur_stream;     /* DoH: the stream px_conn_send() answers */

	/* Answers wait here until the worker's check phase writes them all
	 * at once: one TLS record and one system call for a burst. */
	struct px_rbuf out; /* TCP: frames; DoT: plaintext frames */
	bool flush_queued;  /* on the worker's flush list (holds a ref) */
	struct px_conn *flush_next;

	/* The client's address for the query log, asked once. */
	bool peer_known;
	struct sockaddr_storage peer;
};

/* How an answer came to be, for the query log's flat= field. */
enum px_flat_how {
	PX_FLAT_NO = 0, /* BIND's answer relayed, or apexd's own error */
	PX_FLAT_CNAME,  /* a CNAME chain chased and flattened */
	PX_FLAT_ANAME,  /* an ANAME record's target chased */
	PX_FLAT_ALIAS,  /* an [alias] entry's target chased */
	PX_FLAT_LOCAL,  /* BIND's own in-zone chain rewritten */
	PX_FLAT_HOW_MASK = 0x0f,
	PX_FLAT_STALE = 0x10,   /* flag: a stale value served (EDE 3) */
	PX_FLAT_SIBLING = 0x20, /* flag: chase failed, BIND's sibling addresses relayed */
	PX_FLAT_FAILED = 0x40,  /* flag: chase failed, SERVFAIL */
};

/** A datagram waiting for the worker's next sendmmsg. */
struct px_udp_tx_ent {
	int fd;
	void *owner; /* struct px_udp_listener (client queue) or px_bsock */
	uint32_t off, len;
	uint16_t id;    /* backend: the ID on the wire, to find the txn on failure */
	socklen_t alen; /* 0: connected socket */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/** Datagrams of one direction queued during a loop turn (udptx.c). */
struct px_udp_tx {
	unsigned n;
	size_t used;
	struct px_udp_tx_ent ent[PX_UDP_TX_MAX];
	struct mmsghdr mm[PX_UDP_TX_MAX];
	struct iovec iov[PX_UDP_TX_MAX];
	uint8_t arena[PX_UDP_TX_ARENA];
};

struct px_worker {
	unsigned idx;
	struct px_server *srv;
	const struct cfg *cfg;
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t wake;
	uv_timer_t deadline_timer;
	bool draining;
	bool closed;

	/* Listeners, allocated one by one: a reload adds and removes them. */
	struct px_udp_listener **udp;
	size_t n_udp, cap_udp;
	struct px_tcp_listener **tcp;
	size_t n_tcp, cap_tcp;

	/* The generation new queries start under (one reference), and
	 * reloads posted by main under post_mu, oldest first. */
	struct px_gen *gen;
	struct px_reload_post *reload_head, *reload_tail;
	unsigned reloads_pending; /* posted, not adopted; under post_mu */

	/* Query log: on while qlog is set; lines wait in qlog_buf until the
	 * end of the loop turn. qlog_next (NULL: off) is posted by main
	 * under post_mu, with a reference, and adopted in the async callback. */
	bool qlog_on;
	struct px_qlog_file *qlog;
	struct px_qlog_file *qlog_next;
	bool qlog_posted;
	char *qlog_buf;
	size_t qlog_len;
	uint64_t qlog_sec; /* the second qlog_stamp holds */
	char qlog_stamp[24];

	/* Backend. */
	struct px_bsock *bsock[PX_BACKEND_MAX_SOCKS];
	unsigned n_bsock;
	struct px_bconn *bconns;
	unsigned n_bconns;

	/* Transactions. */
	struct px_txn *txns;
	struct px_txn *txn_free;
	struct px_txn *dl_head, *dl_tail;
	unsigned inflight;

	struct px_conn *conns;
	struct px_conn *flush_head; /* connections with answers to write */
	uv_check_t flush_check;     /* after poll: answers from I/O callbacks */
	uv_prepare_t flush_prepare; /* before poll: answers from timers (deadlines) */
	struct px_anscache *anscache;   /* [cache] answers = yes */
	struct px_rrl *rrl;         /* [limits] responses-per-second > 0, else NULL */
	struct px_up *ups;          /* apexd's own queries in flight (upstream.c) */
	unsigned n_ups;             /* how many: at most PX_UP_MAX_INFLIGHT */
	unsigned n_chases;          /* chases in flight, at most PX_CHASE_MAX_INFLIGHT */

	uint8_t *udp_rx;              /* PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX: recvmmsg of the
	                               * listeners and the backend sockets alike */
	uint8_t *up_rx;               /* PX_UDP_DGRAM_MAX, answers to apexd's own queries */
	uint8_t *ac_out;              /* CODEC_MAX_MSG, an answer from the answer cache */
	struct px_udp_tx *tx_client;  /* answers to UDP clients (udptx.c) */
	struct px_udp_tx *tx_backend; /* queries to the backend over UDP */
	bool tx_flushing;

	/* Wake-ups from other workers (coalesced chases), see flatten.c. */
	uv_mutex_t post_mu;
	uint32_t *post;
	size_t n_post, cap_post;
	/* Name flushes from the control socket, under post_mu too. */
	struct px_flush_op **flush_posts;
	size_t n_flush, cap_flush;

	uint32_t rng; /* xorshift state: spreading, not secrecy (see upstream.c for that) */

	struct px_stats stats;
};

/* worker.c */
/* Has the worker drop op's name from its answer cache; from any thread.
 * Takes a reference. -ENOMEM: not posted (op->left is not its to lower). */
int px_worker_post_flush(struct px_worker *w, struct px_flush_op *op);
int px_worker_init(struct px_worker *w, struct px_server *srv, unsigned idx);
/* Hands the worker a reload (main thread); the worker adopts it in its
 * async callback. Takes ownership of p. */
void px_worker_post_reload(struct px_worker *w, struct px_reload_post *p);
/* Appends a listener bound by main (before the worker starts, or from
 * the worker itself on reload). -ENOMEM leaves l with the caller. */
int px_worker_add_udp(struct px_worker *w, struct px_udp_listener *l);
int px_worker_add_tcp(struct px_worker *w, struct px_tcp_listener *l);
void px_worker_deinit(struct px_worker *w);
int px_worker_start(struct px_worker *w);
void px_worker_maybe_finish(struct px_worker *w);

/* txn.c */
struct px_txn *px_txn_new(struct px_worker *w);
void px_txn_free(struct px_worker *w, struct px_txn *t);
void px_txn_arm(struct px_worker *w, struct px_txn *t, uint64_t timeout_ms);
void px_txn_disarm(struct px_worker *w, struct px_txn *t);
int px_txn_set_query(struct px_txn *t, const uint8_t *q, size_t len, const struct codec_view *v);
void px_deadline_cb(uv_timer_t *h);

/* query.c: what every transport does with a client message. */
void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                      struct px_udp_listener *ul, const struct sockaddr *peer,
                      struct px_conn *conn);
/* The transport a query came in on, for the statistics. */
static inline enum px_transport px_transport_of(enum px_origin origin, const struct px_conn *conn)
{
	if (origin == PX_ORIGIN_UDP || conn == NULL)
		return PX_TR_UDP;
	return conn->kind == PX_CONN_DOT   ? PX_TR_DOT
	       : conn->kind == PX_CONN_DOH ? PX_TR_DOH
	                                   : PX_TR_TCP;
}
/* Sends an answer (relayed or built) to the client of t. */
void px_txn_reply(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
/* Ends t with SERVFAIL + EDE and frees it. */
void px_txn_fail(struct px_worker *w, struct px_txn *t, uint16_t ede, const char *why);
/* Ends t (answer already sent) and frees it. */
void px_txn_done(struct px_worker *w, struct px_txn *t);

/* reload.c: generations and reload (main thread unless said otherwise). */
/* Is a listener of this kind at address a in cfg (any thread)? */
bool px_listen_has(const struct cfg *cfg, bool udp, enum px_conn_kind kind,
                    const struct cfg_addr *a);
/* Builds the first generation from cfg (owned by it from then on). */
int px_gen_first(struct px_server *srv, struct cfg *cfg);
void px_gen_ref(struct px_gen *g);
/* Any thread; the last reference frees the generation. NULL is fine. */
void px_gen_unref(struct px_gen *g);
/* Worker thread: g (w->gen, or one a query of w already holds), counted
 * as used by a query or chase of w until px_gen_release. */
struct px_gen *px_gen_hold(struct px_worker *w, struct px_gen *g);
void px_gen_release(struct px_worker *w, struct px_gen *g);
/* Worker thread: makes g (a reference for w) the worker's current one. */
void px_gen_adopt(struct px_worker *w, struct px_gen *g);
/**
 * Re-reads the configuration file and applies it: zones, aliases,
 * resolvers, flattening and cache settings, TTL bounds, log level,
 * certificates, the query log, listeners added or removed. Queries in
 * flight finish under the configuration they started with. A file that
 * does not load or validate, a [tls] that does not load or an address
 * that cannot be bound keeps the running configuration and logs every
 * error. [server] threads and [backend] address are not applied (a
 * restart is needed): each such change is logged.
 * Main thread only (SIGHUP, the control socket).
 * @return 0 or -1; msg gets one line saying what happened (NUL-terminated).
 */
int px_server_reload(struct px_server *srv, char *msg, size_t msglen);

/* flatten.c */
/* Builds g's zones, aliases and target cache from g->cfg; the cache of
 * prev (may be NULL) is shared when its settings did not change. */
int px_flat_gen_init(struct px_server *srv, struct px_gen *g, const struct px_gen *prev);
void px_flat_gen_deinit(struct px_gen *g);
/* Drops from g's cache what names below removed zones and aliases owned. */
void px_flat_gen_flush_removed(struct px_gen *g, const struct cfg *old);
/* After the txn is set up: decides eligibility, may start ANAME probes.
 * True when the caches answered t and ended it (do not touch t then);
 * false when it goes to the backend. */
bool px_flat_query(struct px_worker *w, struct px_txn *t);
/* BIND's answer for an eligible txn: true when flattening took the txn
 * over (it will answer), false to relay the answer as usual. */
bool px_flat_answer(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
/* Is flattening answering this txn (BIND has answered; a probe, a chase
 * or an SOA lookup is under way)? */
bool px_flat_active(const struct px_txn *t);
/* The txn's deadline passed while flattening: answer with the fallback. */
void px_flat_deadline(struct px_worker *w, struct px_txn *t);
/* The query log's chain= field for t: "OWNER>TARGET", "+N" when N more
 * CNAMEs were followed past TARGET, or "-". */
void px_flat_chain_text(const struct px_txn *t, char *out, size_t size);
/* Frees the txn's flattening state (from px_txn_free). */
void px_flat_free(struct px_txn *t);
/* Runs wake-ups posted to this worker (from its async handle). */
void px_flat_run_posts(struct px_worker *w);
/* A NOTIFY from the backend: acknowledge it and flush the zone. True
 * when handled; false when the NOTIFY is not the backend's. */
bool px_flat_notify(struct px_worker *w, const uint8_t *msg, size_t len,
                     const struct codec_view *v, const struct sockaddr *peer, enum px_origin origin,
                     struct px_udp_listener *ul, struct px_conn *conn);

/* control.c: the [server] control socket, on the main thread's loop. */
int px_control_start(struct px_server *srv, uv_loop_t *loop);
/* Stops accepting, ends the connections, removes the socket file. */
void px_control_stop(struct px_server *srv);
void px_flush_op_release(struct px_flush_op *op);
/* Reloads what can be reloaded (today: TLS material); main.c. msg gets
 * what happened, for the log and apexctl. Main thread only.
 * @return 0, or -1 when the reload failed and the old state is kept. */
int px_server_reload(struct px_server *srv, char *msg, size_t msglen);

/* A growable text buffer (statsfmt.c): p is NUL-terminated once non-NULL;
 * oom is sticky and the caller checks it once at the end. */
struct px_sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
__attribute__((format(printf, 2, 3))) void px_sbuf_put(struct px_sbuf *b, const char *fmt, ...);

/* statsfmt.c: every statistic, summed over the workers, as text. */
enum px_stats_format {
	PX_STATS_TEXT = 0,   /* "name=value" lines (as the exit stats: line), apexctl */
	PX_STATS_PROMETHEUS, /* Prometheus text format 0.0.4 */
};
/* Renders into a malloc'd string (*out, NUL-terminated); any thread.
 * @return its length, or -ENOMEM. */
ssize_t px_stats_render(struct px_server *srv, enum px_stats_format fmt, char **out);

/* metrics.c: [listen] metrics, served by libmicrohttpd's own thread. */
int px_metrics_start(struct px_server *srv);
void px_metrics_stop(struct px_server *srv);

/* udp.c */
int px_udp_start(struct px_udp_listener *l, struct px_worker *w);
/* Stops reading a listener removed by a reload; it closes (and is freed)
 * once its queries are answered. */
void px_udp_remove(struct px_udp_listener *l);
/* A query that answered from l ended. */
void px_udp_release(struct px_udp_listener *l);
/* Frees a listener that never started (its fd too). */
void px_udp_discard(struct px_udp_listener *l);
/* Closes a removed listener once nothing needs it any more. */
void px_udp_maybe_close(struct px_udp_listener *l);

/* udptx.c */
/* Queues an answer to a UDP client for the worker's next sendmmsg; a
 * failure is counted (udp_send_errors), never reported back. */
void px_udp_send(struct px_udp_listener *l, const struct sockaddr *peer, const uint8_t *msg,
                  size_t len);
/* Queues a query (its wire ID is id) to the backend on s. A send that
 * fails at the flush fails the txn waiting on s + id. Returns 0 or a
 * libuv error for a send made at once (a message too big to queue). */
int px_udp_tx_backend(struct px_bsock *s, uint16_t id, const uint8_t *msg, size_t len);
/* Sends everything queued: from the worker's check and prepare phases. */
void px_udp_tx_flush(struct px_worker *w);
bool px_udp_tx_pending(const struct px_worker *w);
/* Sends l's queued answers at once and drops them from the queue: l is
 * about to close (a listener removed by a reload). */
void px_udp_tx_forget_listener(struct px_udp_listener *l);

/* tcp.c */
/* Hands libuv the free tail of in, compacting and growing it to hold one
 * whole frame; buf->len == 0 when out of memory. */
void px_rbuf_alloc(struct px_rbuf *in, uv_buf_t *buf);
int px_tcp_start(struct px_tcp_listener *l, struct px_worker *w);
/* Closes and frees a listener (removed by a reload, or at shutdown). */
void px_tcp_remove(struct px_tcp_listener *l);
void px_tcp_discard(struct px_tcp_listener *l);
void px_conn_send(struct px_conn *c, const uint8_t *msg, size_t len);
void px_conn_query_done(struct px_conn *c);
void px_conn_unref(struct px_conn *c);
void px_conn_close(struct px_conn *c);
/* Has the client left PX_CONN_WQ_HIGH bytes of answers unread? */
bool px_conn_backlogged(const struct px_conn *c);
/* Writes out the answers queued on connections (the check handle). */
void px_worker_flush(struct px_worker *w);
/* Has the connection's output written at the end of this loop turn. */
void px_conn_queue_flush(struct px_conn *c);
/* The client's address, into ss; NULL if unknown. */
const struct sockaddr *px_conn_peer(struct px_conn *c, struct sockaddr_storage *ss);

/* doh.c: the HTTP/2 session of a DoH connection, over its TLS stream. */
int px_doh_start(struct px_conn *c);
/* Decrypted bytes from the client. */
void px_doh_recv(struct px_conn *c, const uint8_t *p, size_t n);
/* The DNS answer for a stream; a stream already reset is dropped. */
void px_doh_reply(struct px_conn *c, int32_t stream, const uint8_t *msg, size_t len);
/* Shutdown: GOAWAY, then close when the streams in flight are answered. */
void px_doh_goaway(struct px_conn *c);
/* Writes what nghttp2 has to send now. */
void px_doh_flush(struct px_conn *c);
void px_doh_free(struct px_conn *c);

/* backend.c */
int px_backend_send(struct px_worker *w, struct px_txn *t);
int px_backend_send_tcp(struct px_worker *w, struct px_txn *t);
void px_backend_forget(struct px_worker *w, struct px_txn *t);
void px_backend_close(struct px_worker *w);

/* sock.c: sockets bound by main with SO_REUSEPORT, one per worker. */
int px_sock_bind(const struct cfg_addr *a, int type, uv_os_sock_t *out);
/* Binds and closes a socket without SO_REUSEPORT: fails with -EADDRINUSE
 * when anyone, another apexd included, already holds the address, which
 * SO_REUSEPORT alone would silently share. */
int px_sock_probe(const struct cfg_addr *a, int type);

/* priv.c: becomes [server] user (root only; a no-op when unset or when
 * already that user). 0, or a negative errno after logging why. */
int px_priv_drop(const struct cfg *cfg);
/* priv.c: raises the soft open-files limit to the hard one, and warns
 * when that is below what the configuration may need. */
void px_fd_limit(const struct cfg *cfg);

/* Is the address the backend's (any port)? flatten.c */
bool px_from_backend(const struct px_worker *w, const struct sockaddr *peer);

/* Keeps BIND's answer to t in the answer cache when both are kept. */
void px_anscache_offer(struct px_worker *w, const struct px_txn *t, const uint8_t *msg, size_t len);

/* A cheap per-worker pseudo-random number (xorshift32). */
static inline uint16_t px_rand16(struct px_worker *w)
{
	uint32_t x = w->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	w->rng = x;
	return (uint16_t)(x >> 8);
}

/* Millisecond clock of the worker's loop. */
static inline uint64_t px_now(struct px_worker *w)
{
	return uv_now(&w->loop);
}

/* Internal consistency check: logs and carries on in release builds,
 * aborts in debug builds (knot-resolver's kr_fails_assert). */
bool px_assert_log(const char *what, const char *file, int line);
#ifdef NDEBUG
#define px_fails_assert(cond) (!(cond) ? px_assert_log(#cond, __FILE__, __LINE__) : false)
#else
#include <assert.h>
#define px_fails_assert(cond) (assert(cond), false)
#endif
