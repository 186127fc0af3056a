/* proxy/backend/internal.h - what the files of backend/ share: the
 * sockets and connections (no other room looks inside them), answer
 * matching, and each transport's part of forgetting and closing. Nothing
 * outside backend/ includes it.
 *
 * Threads: the worker that owns the sockets.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "codec/wire.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/io/rbuf.h"

struct px_worker;

/** A backend UDP socket, connected to the backend address. */
struct px_bsock {
	uv_udp_t h; /**< sends, and libuv's queue when the socket is full */
	/** Reads, on a dup() of the socket: libuv's uv_udp_t read loop
	 *  calls recvmmsg until EAGAIN, one extra system call per wake-up
	 *  (under light load, one per answer); udp.c stops at a short batch. */
	uv_poll_t rpoll;
	int rfd;
	unsigned open_handles; /**< freed when both handles have closed */
	struct mmsghdr rmm[PX_UDP_RX_CHUNKS];
	struct iovec riov[PX_UDP_RX_CHUNKS];
	struct px_worker *w;
	unsigned idx;
	unsigned inflight;
	int sendfd;           /**< the handle's socket, for sendmmsg (udptx.c) */
	uint32_t slot[65536]; /**< query ID -> txn index + 1; 0 = ID free here */
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

/** A worker's side of the backend: its UDP sockets and TCP connections. */
struct px_backend {
	struct px_bsock *bsock[PX_BACKEND_MAX_SOCKS];
	unsigned n_bsock;
	struct px_bconn *bconns;
	unsigned n_bconns;
};

/* Does the answer belong to the query of t? Servers echo the question
 * verbatim at offset 12, so comparing bytes is exact and cheap; an answer
 * without a question (some error replies) is matched on the ID alone. */
static inline bool px_backend_answer_matches(const struct px_txn *t, const uint8_t *msg, size_t len)
{
	if (len < CODEC_HDR_LEN || codec_hdr_id(msg) != t->be.bid)
		return false;
	if (t->qv.qdcount == 0 || codec_hdr_qdcount(msg) == 0)
		return true;
	size_t qlen = (size_t)t->qv.qname_len + 4;
	if (len < CODEC_HDR_LEN + qlen || t->qlen < CODEC_HDR_LEN + qlen)
		return false;
	return memcmp(msg + CODEC_HDR_LEN, t->q + CODEC_HDR_LEN, qlen) == 0;
}

/* The answer carried t->bid: give it the client's ID back. The buffer is
 * one of ours (a receive block or a connection buffer). */
static inline void px_backend_restore_id(const struct px_txn *t, const uint8_t *msg)
{
	if (t->be.bid != t->qv.id)
		codec_put_u16((uint8_t *)msg, t->qv.id);
}

/* backend.c */
/* Hands a final answer on: flattening, the answer cache, the client. */
void px_backend_relay(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);

/* udp.c */
/* t no longer waits on its UDP socket. */
void px_bsock_forget(struct px_txn *t);
void px_bsock_close_all(struct px_worker *w);

/* tcp.c */
/* t no longer waits on its TCP connection, which may go idle or close. */
void px_bconn_forget(struct px_txn *t);
void px_bconn_close_all(struct px_worker *w);

/* xfr.c */
/* A message of the zone transfer t: relayed; t ends with the last. */
void px_xfr_relay(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
/* The connection of t broke. true: t was mid-transfer and is ended (its
 * client cut off); false: nothing went out yet, t may still SERVFAIL. */
bool px_xfr_broken(struct px_worker *w, struct px_txn *t);
