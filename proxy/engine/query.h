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

/* UDP: ul and peer say where the query came from, local (NULL: none)
 * the address it was sent to on a wildcard listener, which every answer
 * leaves from. TCP: conn. */
void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                     struct px_udp_listener *ul, const struct sockaddr *peer,
                     const struct px_udp_local *local, struct px_conn *conn);
