/* proxy/upstream.h - apexd's own queries to BIND and to resolvers.
 *
 * Threads: the owning worker's loop only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct px_worker;

enum {
	PX_UP_WAIT = 0, /**< not the answer to this query: keep waiting */
	PX_UP_DONE = 1, /**< answer taken (or failure seen): the query is over */
};

/**
 * Called with each answer (status 0, msg/len valid for the call only),
 * or once with a negative libuv status and no message: UV_ETIMEDOUT,
 * UV_ECONNREFUSED, UV_ECONNRESET, UV_ECANCELED (worker shutting down).
 * Returns PX_UP_WAIT to ignore a mismatched answer (only meaningful with
 * status 0) or PX_UP_DONE. The callback may start new queries.
 */
typedef int px_up_cb(void *arg, int status, const uint8_t *msg, size_t len);

/**
 * Sends q[0..qlen) to server from a fresh socket (a random port for UDP),
 * and calls cb as answers arrive until it returns PX_UP_DONE or
 * timeout_ms passes. The query bytes are copied.
 * @return 0, or a negative errno; on error cb is never called.
 */
int px__up_query(struct px_worker *w, const struct sockaddr *server, const uint8_t *q, size_t qlen,
                 bool tcp, uint64_t timeout_ms, px_up_cb *cb, void *arg);

/** Ends every query of the worker, each callback seeing UV_ECANCELED. */
void px__up_cancel_all(struct px_worker *w);

/** A query ID from the kernel's CSPRNG. */
uint16_t px__up_random_id(void);
