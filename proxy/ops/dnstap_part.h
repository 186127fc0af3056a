/* proxy/ops/dnstap_part.h - dnstap's part of a thread that sends messages:
 * its way into the writer, embedded in struct px_worker.
 */
#pragma once
#include <stdbool.h>

struct fstrm_iothr_queue;
struct px_dnstap;
struct px_stats;

/* On while sink is set. sink and q change only on the owning thread
 * (px_dnstap_adopt); next (NULL: off) is posted by main under the
 * worker's post lock, with a reference. */
struct px_tap_port {
	bool on; /* the one test the query path makes when dnstap is off */
	struct px_dnstap *sink;
	struct fstrm_iothr_queue *q; /* this thread's own input queue of sink */
	unsigned idx;                /* which one: the worker's index */
	struct px_stats *stats;      /* dnstap_sent, dnstap_dropped */
	struct px_dnstap *next;
	bool posted;
};
