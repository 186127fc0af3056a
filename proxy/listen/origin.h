/* proxy/listen/origin.h - where a query came from and its answer goes: the
 * transport's part of a txn, filled by listen/ and read by the engine
 * when it replies.
 */
#pragma once
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/io/pktinfo.h"

struct px_conn;
struct px_udp_listener;

struct px_txn_client {
	struct px_udp_listener *ul; /* UDP origin */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer; /* UDP origin; cleared with every slot, so no bigger than needed */
	/* UDP on a wildcard listener: the address the client asked, which
	 * every answer, however late, must leave from (family 0: none). */
	struct px_udp_local local;
	struct px_conn *conn; /* TCP origin; holds a reference */
	int32_t doh_stream;   /* DoH: the HTTP/2 stream to answer on */
};
