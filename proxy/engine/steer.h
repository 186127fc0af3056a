/* proxy/engine/steer.h - how many workers take UDP queries.
 *
 * Worker 0 (the lead) measures, on its own wake-ups, the CPU each
 * worker used in its last window and decides: all UDP queries go to
 * worker 0 while it is lightly loaded, more workers join when the active
 * ones are busy, and leave again when the load would fit in fewer.
 * io/steer.c tells the kernel. Only UDP: a TCP connection stays on the
 * worker that accepted it, so the kernel's hash keeps spreading those.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct px_worker;

/* A window: how often a worker measures its CPU, and the lead decides. */
#define PX_STEER_WINDOW_MS 50
/* More workers join when the active ones used this much of a core on
 * average (per mille). One leaves when what all of them used would fit
 * in one fewer without overloading any (the sum below n - 1 cores), for
 * PX_STEER_DOWN_WINDOWS windows in a row. "Used" is CPU time plus time
 * spent runnable waiting for a CPU (engine/steer.c). Why so eager: spreading makes
 * every answer dearer (more wake-ups), so the sum over n workers
 * overstates what n - 1 would need: on the bench VM two workers used
 * 75 % of a core between them for a load one worker carried at 32 %.
 * If the step down was too far, the rule up takes it back, and a step up
 * within PX_STEER_SETTLED windows (a minute) of a step down doubles the
 * windows the next step down waits, up to PX_STEER_DOWN_MAX (a minute):
 * a load that sits near the rule up makes a change a minute at most. A
 * step down that holds for PX_STEER_SETTLED windows forgets the bounces. */
#define PX_STEER_UP_PM 750
#define PX_STEER_DOWN_WINDOWS 10
#define PX_STEER_DOWN_MAX 1200
#define PX_STEER_SETTLED 1200
/* A worker's figure older than this counts as idle: it had no UDP
 * wake-up to measure in (no query reached it). */
#define PX_STEER_STALE_MS 1000

/** The lead's memory between decisions (px_steer_decide). */
struct px_steer_state {
	unsigned low_windows; /* windows in a row the load fitted in fewer */
	unsigned down_need;   /* low windows a step down waits for; 0 = PX_STEER_DOWN_WINDOWS */
	unsigned since_down;  /* windows since the last step down; 0 = none yet */
};

/** One worker's part: its window (owner thread only) and its last
 *  figure (read by the lead). */
struct px_steer_worker {
	uint64_t t0_ns;   /* the window's start, uv_hrtime(); 0 = none yet */
	uint64_t cpu0_ns; /* the CPU time the thread wanted until then */
	int statfd;       /* its /proc/thread-self/schedstat, -1 = none */
	bool stat_tried;
	uint64_t next_ms;            /* loop clock: when the window ends */
	struct px_steer_state lead;  /* worker 0 only */
	bool off;                    /* lead: the kernel refused a program */
	atomic_uint busy_pm;         /* last window's CPU, per mille of a core */
	_Atomic uint64_t busy_at_ms; /* loop clock when busy_pm was measured */
};

/**
 * The decision, pure: n workers take queries out of total, busy[i] is
 * worker i's CPU (per mille; 0 when stale) for i < n, one call per
 * window. st carries what the rule remembers (zeroed at the start).
 * @return the number of workers that should take queries, 1..total.
 */
unsigned px_steer_decide(unsigned n, unsigned total, const unsigned *busy,
                         struct px_steer_state *st);

/* The steering a listener of worker 0 starts with (the current number);
 * nothing for other workers or with one worker. */
void px_steer_listener(struct px_worker *w, int fd);

/* Closes what the windows opened; the worker's thread or after it ended. */
void px_steer_close(struct px_worker *w);

/* Ends the window when it is due: call on every UDP wake-up. */
void px_steer_window(struct px_worker *w);
