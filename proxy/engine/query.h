/* proxy/engine/query.h - what every transport does with a client message:
 * admit (RRL), scan, shortcuts (NOTIFY, answer cache, flattening from the
 * caches), then dispatch to the backend.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/engine/txn.h"

struct px_conn;
struct px_udp_listener;
struct px_udp_local;
struct px_worker;

/* A client message: over UDP from peer (where the answer goes) on ul,
 * asked by client (the source a PROXY v2 header named, else peer itself)
 * at local (the address it was sent to on a wildcard listener, which
 * every answer leaves from; NULL: none); over TCP, DoT or DoH on conn
 * (peer, client and local NULL: the connection knows its client,
 * px_conn_client). */
void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                     struct px_udp_listener *ul, const struct sockaddr *peer,
                     const struct sockaddr *client, const struct px_udp_local *local,
                     struct px_conn *conn);
