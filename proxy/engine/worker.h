/* proxy/engine/worker.h - one struct px_worker per thread, each with its own
 * uv_loop_t; nothing in a worker is touched by another thread except the
 * posts under post_mu, the few atomics in struct px_server and the
 * counters (read-only from outside).
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"
#include "proxy/engine/steer.h"
#include "proxy/engine/txn.h"
#include "proxy/flat/upstream.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/dnstap_part.h"
#include "proxy/ops/qlog_part.h"

struct flat_copy;
struct px_anscache;
struct px_backend;
struct px_conn;
struct px_flat;
struct px_probe_req;
struct px_gen;
struct px_qlog_file;
struct px_reload_post;
struct px_rrl;
struct px_server;
struct px_stats;
struct px_tcp_listener;
struct px_txn;
struct px_udp_listener;
struct px_udp_tx;
struct px_up;

/* UDP datagrams are at most 64 KiB; libuv's recvmmsg reads one per 64 KiB
 * chunk of the buffer we hand it, up to 20 per call (UV__MMSG_MAXWIDTH). */
#define PX_UDP_DGRAM_MAX 65536
#define PX_UDP_RX_CHUNKS 20
/* Slots of a worker's health_asked (flat/health.c), a power of two. */
#define PX_HEALTH_ASKED_SLOTS 4096
/* Room for apexd's own replies: a question, an OPT and an EDE text. */
#define PX_REPLY_MAX 1024

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

/* Posts from other threads, under mu. */
struct px_posts {
	uv_mutex_t mu;
	/* Wake-ups from other workers (coalesced chases), see flat/wait.c. */
	uint32_t *wake;
	size_t n_wake, cap_wake;
	/* Name flushes from the control socket. */
	struct px_flush_op **flush;
	size_t n_flush, cap_flush;
	/* Reloads posted by main, oldest first. */
	struct px_reload_post *reload_head, *reload_tail;
	unsigned reloads_pending; /* posted, not adopted */
	/* Client connections handed over by other workers (listen/move.c):
	 * incoming counts those promised, from the moment a worker starts
	 * a move, so that this one does not finish (closed) meanwhile. */
	struct px_conn *conn_head, *conn_tail;
	unsigned conns_incoming;
	bool closed; /* finished: takes no connection any more */
};

/* UDP datagrams queued during a loop turn (io/udptx.c). */
struct px_worker_tx {
	struct px_udp_tx *client;  /* answers to UDP clients */
	struct px_udp_tx *backend; /* queries to the backend */
	bool flushing;
};

/**
 * A worker thread: its loop and the parts the rooms own — listeners and
 * client connections (listen/), the backend's sockets (backend/), its
 * own queries (flat/), the query log's buffer (ops/), and the engine's
 * transaction slots, posts and send queues.
 */
/* Answers are written into per-worker buffers of CODEC_MAX_MSG bytes,
 * allocated once: a 64 KiB array on the C stack costs a page probe per
 * 4 KiB at every call (-fstack-clash-protection) and touches stack pages
 * the kernel may have to fault in. They form a stack because answering
 * can nest (a reply that ends a TCP query may read and answer the
 * connection's next one): each level takes the next buffer, and levels
 * past PX_OUTBUF_DEPTH get a buffer of their own, freed when put back. */
#define PX_OUTBUF_DEPTH 4
struct px_outbufs {
	uint8_t *buf[PX_OUTBUF_DEPTH]; /* CODEC_MAX_MSG each, or NULL until used */
	unsigned depth;                /* levels taken */
};

struct px_worker {
	unsigned idx;
	struct px_server *srv;
	const struct cfg *cfg;
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t wake;
	uv_timer_t deadline_timer;
	uv_check_t flush_check;     /* after poll: answers from I/O callbacks */
	uv_prepare_t flush_prepare; /* before poll: answers from timers (deadlines) */
	bool draining;
	bool closed;

	/* The generation new queries start under (one reference). */
	struct px_gen *gen;

	struct px_listeners lis;
	struct px_backend *backend; /* BIND's sockets and connections */
	struct px_own_queries own;
	struct px_qlog_worker ql;
	struct px_tap_port tap; /* dnstap */
	struct px_txn_slots slots;
	struct px_posts posts;
	struct px_worker_tx tx;

	struct px_anscache *anscache; /* [cache] answers = yes */
	struct px_rrl *rrl;           /* [limits] responses-per-second > 0, else NULL */

	uint8_t *udp_rx; /* PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX: recvmmsg of the
	                  * listeners and the backend sockets alike */
	uint8_t *ac_out; /* CODEC_MAX_MSG, an answer from the answer cache */
	struct px_outbufs outbufs;
	/* Flattening states of ended queries, for the next (flat/pool.c). */
	struct px_flat *flat_free;
	unsigned n_flat_free;
	struct px_probe_req *probe_spare; /* ended ANAME probes' states (flat/probe.c) */
	unsigned n_probe_spare;
	/* This worker's read-through copy of the target cache (flat/pool.c,
	 * flatten/copy.h), made at the first lookup; NULL without memory. */
	struct flat_copy *fcopy;
	bool fcopy_tried;
	/* [health] with nothing down: which answer shape (owner, targets,
	 * first address) last asked the checker's table, in which second
	 * (flat/health.c). */
	struct {
		uint64_t key;
		uint32_t second;
	} health_asked[PX_HEALTH_ASKED_SLOTS];

	struct px_steer_worker steer; /* engine/steer.c: its CPU, and the lead's choice */

	uint32_t rng; /* xorshift state: spreading, not secrecy (see upstream.c for that) */

	struct px_stats stats;
};

/* worker.c */
/* Has the worker drop op's name from its answer cache; from any thread.
 * Takes a reference. -ENOMEM: not posted (op->left is not its to lower). */
int px_worker_post_flush(struct px_worker *w, struct px_flush_op *op);
/* Wakes the worker to look at its posts and the steering; nothing once
 * it has finished. Any thread. */
void px_worker_nudge(struct px_worker *w);
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
/* Drops a reference to op (the last frees it); any thread. */
void px_flush_op_release(struct px_flush_op *op);

/* A buffer of CODEC_MAX_MSG bytes for an answer being written; NULL when
 * out of memory. Put it back with px_outbuf_put() once it is sent. */
uint8_t *px_outbuf_get(struct px_worker *w);
void px_outbuf_put(struct px_worker *w, uint8_t *buf);

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
