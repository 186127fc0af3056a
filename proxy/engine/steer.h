/* proxy/engine/steer.h - how many workers take UDP queries and new
 * connections.
 *
 * Worker 0 (the lead) measures, on its own wake-ups, the CPU each
 * worker used in its last window and decides: all UDP queries and new
 * connections go to worker 0 while it is lightly loaded, more workers
 * join when the active ones are busy and then answer more, and leave
 * again when the load would fit in fewer or fewer answer as many (the
 * trials below). io/steer.c tells the kernel, for UDP and TCP listeners
 * alike; open connections follow (listen/move.c).
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

/* Trials (px_steer_choose): the rule above says when another number of
 * workers might serve better, the answers say whether it did. Spreading
 * over more workers pays in answers only where one worker cannot get a
 * core to itself for long enough; where the load generator shares the
 * cores (a closed loop, as in bench/run.sh), the second worker takes CPU
 * from it and answers less: 157 000 cached qps with one worker, fewer
 * with two, on the bench VM. So every step the load rule asks for up is
 * tried, and a step down is tried from time to time while busy:
 * - the rate is queries read a second by all workers together, over
 *   every transport,
 *   averaged over PX_STEER_BASE_WINDOWS windows at the number before the
 *   trial and PX_STEER_TRIAL_WINDOWS windows at the new one, the first
 *   PX_STEER_SKIP windows after a change not counted (queues move over);
 *   no trial starts while the base windows differ by more than
 *   PX_STEER_STEADY_PM (a load still ramping up would pass any trial);
 * - more workers stay if they read at least PX_STEER_KEEP_UP_PM per mille
 *   of the rate before and the gain is beyond the noise: twice the
 *   standard error of the difference of the two means, from the spread
 *   of the windows themselves (a closed loop's windows differ by up to
 *   15 %, and 6 of them can average 9 % above 6 others by chance: the
 *   bench kept a second worker that answered no more); fewer stay if
 *   they read PX_STEER_KEEP_DOWN_PM, or at least PX_STEER_KEEP_DOWN_MIN_PM
 *   with a loss within the noise (fewer workers cost less per answer:
 *   a number the noise cannot tell apart goes to the cheaper one); a
 *   window of a trial down below PX_STEER_ABORT_PM ends it at once, and
 *   a trial up whose first PX_STEER_TRIAL_EARLY windows already answer
 *   less than the base beyond the noise ends then (the bench's trials up
 *   mostly answered 84-97 %: each costs two workers' CPU while it runs);
 * - the first trial up comes as soon as there is a rate to compare, a
 *   trial down after PX_STEER_TRY_DOWN windows at the number; after a
 *   trial, the direction that lost (up if more workers went back or
 *   fewer stayed, else down) waits PX_STEER_TRY_UP windows, or twice as
 *   long as it waited, up to PX_STEER_TRY_MAX (a minute): on a closed
 *   loop both answer within the noise, and the trials become rare; a
 *   load that falls to what fewer carry, or pauses, starts afresh;
 * - a worker 0 that falls behind (its UDP sockets hold half their
 *   receive buffer, or dropped a datagram) gets more workers at once,
 *   without a trial: an open-loop load that outgrew one worker must not
 *   wait for the next trial. */
#define PX_STEER_SKIP 2
/* A trial waits for a steady rate: the base windows' highest at most
 * this much (per mille) of their lowest. */
#define PX_STEER_STEADY_PM 1150
#define PX_STEER_BASE_WINDOWS 6
#define PX_STEER_TRIAL_WINDOWS 6
#define PX_STEER_TRIAL_EARLY 3
#define PX_STEER_KEEP_UP_PM 1050
#define PX_STEER_KEEP_DOWN_PM 950
#define PX_STEER_KEEP_DOWN_MIN_PM 900
#define PX_STEER_ABORT_PM 800
#define PX_STEER_TRY_UP 20
#define PX_STEER_TRY_DOWN 40
#define PX_STEER_TRY_MAX 1200
/* A window this many times the nominal one had a pause in the queries
 * before it: its rate says nothing of the current number. */
#define PX_STEER_GAP_WINDOWS 4

/** What the last call of px_steer_choose did, for the log. */
enum px_steer_why {
	PX_STEER_SAME,      /* nothing changed */
	PX_STEER_FITS,      /* the load fits in fewer (the load rule) */
	PX_STEER_TRY_MORE,  /* a trial of more workers begins */
	PX_STEER_TRY_FEWER, /* a trial of fewer workers begins */
	PX_STEER_KEPT,      /* a trial ended and its number stays */
	PX_STEER_BACK,      /* a trial ended and the number before it returns */
	PX_STEER_BEHIND,    /* worker 0 fell behind: more workers at once */
	PX_STEER_PINNED,    /* apexctl workers N */
};

/** The lead's memory between decisions (px_steer_decide, px_steer_choose). */
struct px_steer_state {
	unsigned low_windows; /* windows in a row the load fitted in fewer */
	unsigned down_need;   /* low windows a step down waits for; 0 = PX_STEER_DOWN_WINDOWS */
	unsigned since_down;  /* windows since the last step down; 0 = none yet */
	/* Trials */
	int trial;           /* +1 more workers on trial, -1 fewer, 0 none */
	unsigned trial_from; /* the number before the trial */
	unsigned trial_win;  /* windows into the trial */
	uint64_t trial_rates[PX_STEER_TRIAL_WINDOWS]; /* the counted windows' rates */
	uint64_t base;                                /* the rate before the trial */
	unsigned steady;                       /* windows at this number since a change or a gap */
	uint64_t rates[PX_STEER_BASE_WINDOWS]; /* the last counted windows' rates */
	unsigned up_wait, down_wait; /* steady windows before a trial (down: 0 = initial) */
	enum px_steer_why why;       /* what the last call did */
	unsigned why_pm;             /* KEPT/BACK: the trial's rate, per mille of base */
	unsigned noise_pm;           /* KEPT/BACK: the noise it was judged against, likewise */
};

/** One window's answers as the lead saw them (px_steer_choose). */
struct px_steer_rate {
	uint64_t per_s; /* queries read a second, all workers and transports */
	bool gap;       /* the window was too long to say (PX_STEER_GAP_WINDOWS) */
	bool behind;    /* worker 0's UDP sockets hold a backlog or dropped */
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
	uint64_t read0;              /* lead: all workers' UDP queries at the window's start */
	uint64_t drops0;             /* lead: its UDP sockets' drops then */
	bool off;                    /* lead: the kernel refused a program */
	bool pinned;                 /* lead: following apexctl workers N */
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

/**
 * The lead's decision each window: the load rule (px_steer_decide) says
 * when to look, a trial measured on r's rates says what stays (see the
 * trials above); st->why says what happened, for the log.
 * @return the number of workers that should take queries, 1..total.
 */
unsigned px_steer_choose(unsigned n, unsigned total, const unsigned *busy,
                         const struct px_steer_rate *r, struct px_steer_state *st);

/**
 * The noise a trial is judged against: twice the standard error of the
 * difference between the two means of rates (nb base windows, nt trial
 * windows), per mille of the base's mean; 0 with fewer than two of
 * either.
 */
unsigned px_steer_noise_pm(const uint64_t *base_rates, unsigned nb, const uint64_t *trial_rates,
                           unsigned nt);

/* The steering a listener of worker 0 starts with (the current number);
 * nothing for other workers or with one worker. */
void px_steer_listener(struct px_worker *w, int fd);

/* The lead (worker 0) follows apexctl workers N (srv->steer_pin): from
 * its wake-up, so that an idle apexd follows at once, and on every
 * window. Back to 0, the rule starts afresh from the current number. */
void px_steer_follow_pin(struct px_worker *w);

/* Closes what the windows opened; the worker's thread or after it ended. */
void px_steer_close(struct px_worker *w);

/* Ends the window when it is due: call on every wake-up for UDP
 * datagrams or a connection's bytes. */
void px_steer_window(struct px_worker *w);
