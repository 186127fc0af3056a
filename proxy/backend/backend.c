/* proxy/backend/backend.c - the client side towards the authoritative backend.
 *
 * UDP: a few sockets per worker, each connect()ed to the backend so the
 * kernel drops datagrams from anyone else. The client's query goes out
 * unchanged, its ID included (a TSIG-signed query must still verify at
 * BIND, and compliance testers flag renumbering proxies), on the first
 * socket where that ID is free; a socket is opened only when the ID is
 * busy on every open one. An answer is matched on socket + ID + the
 * question's bytes, then relayed to the client as BIND wrote it.
 *
 * Only when the client's ID is busy on every open socket and the query
 * is not TSIG-signed (nothing then depends on the ID: RFC 8484 asks DoH
 * clients to send ID 0 on every query) does it travel under another,
 * free ID; the answer gets the client's ID back before anything else
 * sees it.
 *
 * TCP: used when BIND truncates an answer for a TCP client (the client's
 * buffer size travels with its query, so BIND decides), and for zone
 * transfers. Connections are pooled per worker and pipelined; a transfer
 * gets a connection of its own, closed when the transfer ends.
 *
 * udp.c holds the UDP sockets, tcp.c the TCP pool, xfr.c the transfer
 * relay; this file what they have in common.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/backend/backend.h"
#include "proxy/backend/internal.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/engine/anscache.h"
#include "proxy/flat/flat.h"
#include "proxy/ops/stats.h"

void px_backend_relay(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	if (t->flat.eligible && px_flat_answer(w, t, msg, len))
		return;
	if (w->anscache != NULL)
		px_anscache_offer(w, t, msg, len);
	PX_STAT_INC(&w->stats, answers_relayed);
	px_txn_reply(w, t, msg, len);
	px_txn_done(w, t);
}

void px_backend_forget(struct px_worker *w, struct px_txn *t)
{
	(void)w;
	if (t->be.bsock != NULL)
		px_bsock_forget(t);
	if (t->be.bconn != NULL)
		px_bconn_forget(t);
}

int px_backend_init(struct px_worker *w)
{
	w->backend = calloc(1, sizeof(*w->backend));
	return w->backend != NULL ? 0 : -ENOMEM;
}

void px_backend_free(struct px_worker *w)
{
	free(w->backend);
	w->backend = NULL;
}

void px_backend_close(struct px_worker *w)
{
	px_bsock_close_all(w);
	px_bconn_close_all(w);
}

bool px_from_backend(const struct px_worker *w, const struct sockaddr *peer)
{
	const struct sockaddr_storage *be = &w->cfg->backend.address.sa;

	if (peer == NULL || peer->sa_family != be->ss_family)
		return false;
	if (peer->sa_family == AF_INET)
		return ((const struct sockaddr_in *)peer)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)be)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)peer)->sin6_addr,
	              &((const struct sockaddr_in6 *)be)->sin6_addr, sizeof(struct in6_addr)) == 0;
}
