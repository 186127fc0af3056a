/* proxy/listen/udpwild.h - how a UDP listener reads and holds answers
 * (first written for wildcard addresses, 0.0.0.0 and [::]): what udp.c
 * hands to udpwild.c; nothing outside listen/ includes it.
 *
 * Threads: the worker that owns the listener.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct px_udp_listener;
struct px_udp_local;

/* Answers that found the socket buffer full, per listener; past this
 * they are lost and counted, as the kernel itself would drop them. */
#define PX_UDPW_HELD_MAX 4096

/* Watches l's socket (l->w set) and reads its queries, with their
 * destinations when l->pktinfo. 0 or a libuv error. */
int px_udpw_start(struct px_udp_listener *l);
/* Sends an answer that the worker's queue did not take, at once, or
 * holds it until the socket drains. */
void px_udpw_send(struct px_udp_listener *l, const struct sockaddr *peer,
                  const struct px_udp_local *src, const uint8_t *msg, size_t len);
/* Holds an answer the kernel refused for a full buffer; -ENOBUFS past
 * PX_UDPW_HELD_MAX, -ENOMEM. */
int px_udpw_hold(struct px_udp_listener *l, const struct sockaddr *peer,
                 const struct px_udp_local *src, const uint8_t *msg, size_t len);
/* Watches for what l still needs: queries while reading, the socket
 * draining while answers are held. */
void px_udpw_watch(struct px_udp_listener *l);
/* Frees what px_udpw_start and the held answers took (the listener is
 * closed, or never started). */
void px_udpw_free(struct px_udp_listener *l);
