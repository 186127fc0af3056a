/* proxy/ops/explain.h - apexctl explain NAME: what a query would get now.
 *
 * Step by step, each line saying where its fact came from: the
 * configuration ([zone], [alias]), the presence and target caches
 * (read-only peeks under their locks), BIND's own answers to apexd-style
 * queries, and a live chase of the target. The decisions come from the
 * query path's own functions (proxy/flat/flat.h), not a copy of them.
 * Threads: the main thread's loop (the control socket's).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct codec_ecs;
struct px_explain;
struct px_sbuf;
struct px_server;
struct px_up_home;

/* The explanation is complete in the body (ok), or failed with err. */
typedef void px_explain_done_fn(void *arg, bool ok, const char *err);

struct px_explain_req {
	struct px_server *srv;
	const struct px_up_home *home; /* own queries on the main loop */
	struct px_sbuf *body;          /* the text goes here */
	const uint8_t *name;           /* copied */
	size_t name_len;
	uint16_t qtype; /* A, AAAA, HTTPS or SVCB (flat_qtype_flattens()) */
	/* The client subnet to explain for ([resolver] ecs); NULL: a client
	 * that sent none and whose address is not known (the ECS NONE entry
	 * with ecs on). Copied. */
	const struct codec_ecs *subnet;
	px_explain_done_fn *done;
	void *arg;
};

/* Starts an explanation; done is called once, maybe before this returns.
 * Returns the run to pass to px_explain_drop(), or NULL when out of
 * memory (done was called then). */
struct px_explain *px_explain_start(const struct px_explain_req *req);
/* The requester goes away: done is not called any more, and the run is
 * freed once its queries have ended. */
void px_explain_drop(struct px_explain *ex);
