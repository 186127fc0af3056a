/* proxy/backend/leg.h - a txn's backend leg: which socket or connection
 * its query went out on. backend/ alone writes it; the structs it points
 * at stay inside backend/.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct px_bconn;
struct px_bsock;
struct px_txn;

struct px_txn_backend {
	struct px_bsock *bsock; /* UDP socket the query went out on, or NULL */
	struct px_bconn *bconn; /* TCP connection it waits on, or NULL */
	struct px_txn *bnext;   /* next txn waiting on the same bconn */
	bool via_tcp;           /* currently waiting on a backend TCP connection */
	uint16_t bid;           /* the ID on the wire to the backend (backend/udp.c) */
	/* Zone transfer progress (RFC 5936: ends with the first SOA repeated). */
	uint32_t xfr_msgs;
	uint32_t xfr_soa_serial;
	bool xfr_soa_seen;
};
