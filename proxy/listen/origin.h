/* proxy/listen/origin.h - where a query came from and its answer goes: the
 * transport's part of a txn, filled by listen/ and read by the engine
 * when it replies.
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/proxyv2.h"
#include "proxy/io/pktinfo.h"

struct px_conn;
struct px_udp_listener;

struct px_txn_client {
	struct px_udp_listener *ul; /* UDP origin */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer; /* UDP origin: where the answer goes; cleared with every slot,
	           so no bigger than needed */
	/* UDP on a wildcard listener: the address the client asked, which
	 * every answer, however late, must leave from (family 0: none). */
	struct px_udp_local local;
	struct px_conn *conn; /* TCP origin; holds a reference */
	int32_t doh_stream;   /* DoH: the HTTP/2 stream to answer on */
	/* UDP: a PROXY v2 header named the client (in client), so peer is
	 * only the load balancer the answer goes back through. */
	bool proxied;
	union codec_pp2_addr client;
};

/**
 * Who asked: the client address every consumer of a query reads (rate
 * limiting, the query log, NOTIFY's origin check, and what later reports
 * or forwards a client's address). The source a PROXY v2 header named,
 * for queries that came through a load balancer in
 * [listen] proxy-protocol-from; the peer's address otherwise. Valid while
 * the txn lives; NULL if the kernel no longer knows a TCP peer
 * (listen/proxyv2.c).
 */
const struct sockaddr *px_txn_client_addr(const struct px_txn_client *cl);
