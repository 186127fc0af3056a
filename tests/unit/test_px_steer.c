/* Unit tests for worker steering: the lead's decision (engine/steer.c,
 * pure) and the kernel's side (io/steer.c) on real SO_REUSEPORT sockets
 * on loopback: with one worker steered to, every datagram reaches the
 * first socket bound; spread over two, both get some; back to one, the
 * first again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/engine/steer.h"
#include "proxy/io/steer.h"
#include "tests/unit/helpers.h"

/* --- the decision ------------------------------------------------------ */

static void test_decide_one_worker(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned busy[1] = {1000};

	/* One worker in all: nothing to decide, however busy. */
	assert_int_equal(px_steer_decide(1, 1, busy, &st), 1);
}

static void test_decide_up(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned busy[4] = {PX_STEER_UP_PM - 1, 0, 0, 0};

	assert_int_equal(px_steer_decide(1, 4, busy, &st), 1);
	busy[0] = PX_STEER_UP_PM;
	assert_int_equal(px_steer_decide(1, 4, busy, &st), 2);
	/* Doubling, capped at the workers there are. */
	busy[0] = busy[1] = 900;
	assert_int_equal(px_steer_decide(2, 4, busy, &st), 4);
	busy[0] = busy[1] = busy[2] = 900;
	assert_int_equal(px_steer_decide(3, 4, busy, &st), 4);
	/* All taking queries: no more to add. */
	busy[3] = 1000;
	assert_int_equal(px_steer_decide(4, 4, busy, &st), 4);
	/* The average counts: one busy worker among idle ones is not a
	 * reason to wake more (random spreading evens them out). */
	unsigned uneven[4] = {1000, 100, 100, 100};
	assert_int_equal(px_steer_decide(4, 8, uneven, &st), 4);
}

/* Windows until a step down, with busy as it is. */
static unsigned windows_to_step_down(unsigned n, unsigned total, const unsigned *busy,
                                     struct px_steer_state *st)
{
	for (unsigned k = 1; k <= 100 * PX_STEER_DOWN_MAX; k++)
		if (px_steer_decide(n, total, busy, st) < n)
			return k;
	return 0;
}

static void test_decide_down(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	/* 375 + 375 = 750 < 1000: two workers' load fits in one (the bench's
	 * case: spread, each paid its own wake-ups). */
	unsigned busy[2] = {375, 375};

	assert_int_equal(windows_to_step_down(2, 2, busy, &st), PX_STEER_DOWN_WINDOWS);

	/* A window in between that does not fit starts the count again. */
	for (unsigned i = 1; i < PX_STEER_DOWN_WINDOWS; i++)
		assert_int_equal(px_steer_decide(2, 2, busy, &st), 2);
	unsigned full[2] = {520, 500};
	assert_int_equal(px_steer_decide(2, 2, full, &st), 2);
	assert_int_equal(px_steer_decide(2, 2, busy, &st), 2);
	assert_int_equal(st.low_windows, 1);

	/* What does not fit in fewer without overload stays. */
	struct px_steer_state st3 = {0};
	unsigned band[3] = {700, 700, 700}; /* 2 100 > 2 000 */
	for (unsigned i = 0; i < 3 * PX_STEER_DOWN_WINDOWS; i++)
		assert_int_equal(px_steer_decide(3, 4, band, &st3), 3);
	/* One leaves at a time. */
	unsigned quiet[3] = {100, 100, 100};
	assert_int_equal(windows_to_step_down(3, 4, quiet, &st3), PX_STEER_DOWN_WINDOWS);
}

static void test_decide_bounce_backoff(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned two[2] = {450, 450}; /* fits in one... */
	unsigned one[1] = {800};      /* ...but one alone is past the rule up */

	assert_int_equal(windows_to_step_down(2, 2, two, &st), PX_STEER_DOWN_WINDOWS);
	assert_int_equal(px_steer_decide(1, 2, one, &st), 2); /* bounce */
	/* Each bounce doubles the wait for the next step down. */
	assert_int_equal(windows_to_step_down(2, 2, two, &st), 2 * PX_STEER_DOWN_WINDOWS);
	assert_int_equal(px_steer_decide(1, 2, one, &st), 2);
	assert_int_equal(windows_to_step_down(2, 2, two, &st), 4 * PX_STEER_DOWN_WINDOWS);
	/* Capped. */
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(px_steer_decide(1, 2, one, &st), 2);
		assert_true(windows_to_step_down(2, 2, two, &st) <= PX_STEER_DOWN_MAX);
	}
	assert_int_equal(st.down_need, PX_STEER_DOWN_MAX);
	/* A step down that holds is forgotten: the wait is back to its
	 * start once the one worker stayed under the rule up long enough. */
	unsigned calm[1] = {300};
	for (unsigned i = 0; i <= PX_STEER_SETTLED; i++)
		assert_int_equal(px_steer_decide(1, 2, calm, &st), 1);
	assert_int_equal(px_steer_decide(1, 2, one, &st), 2); /* a new load, not a bounce */
	assert_int_equal(windows_to_step_down(2, 2, two, &st), PX_STEER_DOWN_WINDOWS);
	/* Within the minute after a step down, a step up is a bounce however
	 * late in it: a load that sits near the rule up changes it once a
	 * minute at most, not every few seconds. */
	for (unsigned i = 0; i < PX_STEER_SETTLED - 5; i++)
		assert_int_equal(px_steer_decide(1, 2, calm, &st), 1);
	assert_int_equal(px_steer_decide(1, 2, one, &st), 2);
	assert_int_equal(windows_to_step_down(2, 2, two, &st), 2 * PX_STEER_DOWN_WINDOWS);
}

static void test_decide_bad_n(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned busy[2] = {0, 0};

	/* An n out of range is brought back into it, never past total. */
	assert_int_equal(px_steer_decide(0, 2, busy, &st), 1);
	assert_true(px_steer_decide(9, 2, busy, &st) <= 2);
}

/* --- the trials -------------------------------------------------------- */

/* One window at rate per_s with n workers as busy as busy_pm each. */
static unsigned window(unsigned n, unsigned total, unsigned busy_pm, uint64_t per_s,
                       struct px_steer_state *st)
{
	unsigned busy[4] = {busy_pm, busy_pm, busy_pm, busy_pm};
	struct px_steer_rate r = {.per_s = per_s};

	return px_steer_choose(n, total, busy, &r, st);
}

/* Windows at n, busy and at rates from pat (6 of them, repeated), until
 * the number changes; 0 if it did not within limit windows. *got is the
 * new number. */
static unsigned pattern_to_change(unsigned n, unsigned total, unsigned busy_pm, const uint64_t *pat,
                                  unsigned limit, struct px_steer_state *st, unsigned *got)
{
	for (unsigned k = 1; k <= limit; k++) {
		*got = window(n, total, busy_pm, pat[(k - 1) % 6], st);
		if (*got != n)
			return k;
	}
	return 0;
}

/* The same at one rate. */
static unsigned windows_to_change(unsigned n, unsigned total, unsigned busy_pm, uint64_t per_s,
                                  unsigned limit, struct px_steer_state *st, unsigned *got)
{
	const uint64_t pat[6] = {per_s, per_s, per_s, per_s, per_s, per_s};

	return pattern_to_change(n, total, busy_pm, pat, limit, st, got);
}

/* Runs a trial from its first window: the skipped windows at pat[0],
 * then the counted ones at pat's rates; returns the number when it
 * ended. */
static unsigned run_trial_pattern(unsigned n, const uint64_t *pat, struct px_steer_state *st)
{
	for (unsigned k = 0; k < PX_STEER_SKIP + PX_STEER_TRIAL_WINDOWS; k++) {
		unsigned got = window(
		        n, 2, 900, k < PX_STEER_SKIP ? pat[0] : pat[(k - PX_STEER_SKIP) % 6], st);
		if (st->trial == 0)
			return got;
	}
	fail_msg("the trial did not end");
	return 0;
}

static unsigned run_trial(unsigned n, uint64_t per_s, struct px_steer_state *st)
{
	const uint64_t pat[6] = {per_s, per_s, per_s, per_s, per_s, per_s};

	return run_trial_pattern(n, pat, st);
}

static void test_choose_up_needs_more_answers(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;

	/* A busy worker asks for more; the trial waits for a rate measured
	 * at one worker (the skipped window and the base windows). */
	assert_int_equal(windows_to_change(1, 2, 900, 100000, 100, &st, &got),
	                 PX_STEER_SKIP + PX_STEER_BASE_WINDOWS);
	assert_int_equal(got, 2);
	assert_int_equal(st.why, PX_STEER_TRY_MORE);
	assert_int_equal(st.base, 100000);
	/* Two workers answer 1 % more, within the noise (the closed loop of
	 * the bench, where the second worker takes the load generator's CPU): back
	 * to one, and the next trial up waits PX_STEER_TRY_UP windows. */
	assert_int_equal(run_trial(2, 101000, &st), 1);
	assert_int_equal(st.why, PX_STEER_BACK);
	assert_int_equal(st.why_pm, 1010);
	assert_int_equal(st.up_wait, PX_STEER_TRY_UP);
	assert_int_equal(windows_to_change(1, 2, 900, 100000, 1000, &st, &got), PX_STEER_TRY_UP);
	/* This time they answer 10 % more (one worker could not keep up):
	 * two stay, and the wait is back at its start. */
	assert_int_equal(run_trial(2, 110000, &st), 2);
	assert_int_equal(st.why, PX_STEER_KEPT);
	assert_int_equal(st.why_pm, 1100);
	/* Down lost this one: its next trial waits twice as long. */
	assert_int_equal(st.up_wait, PX_STEER_TRY_UP);
	assert_int_equal(st.down_wait, 2 * PX_STEER_TRY_DOWN);
}

static void test_choose_up_backoff_capped(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;

	for (unsigned i = 0; i < 12; i++) {
		assert_true(windows_to_change(1, 2, 900, 50000, 2 * PX_STEER_TRY_MAX, &st, &got) >
		            0);
		assert_int_equal(run_trial(2, 50000, &st), 1);
	}
	assert_int_equal(st.up_wait, PX_STEER_TRY_MAX);
	assert_int_equal(windows_to_change(1, 2, 900, 50000, 2 * PX_STEER_TRY_MAX, &st, &got),
	                 PX_STEER_TRY_MAX);
}

static void test_choose_down_trial(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;

	/* Two workers, each busy (the load rule keeps both): a trial of one
	 * after PX_STEER_TRY_DOWN windows. */
	assert_int_equal(windows_to_change(2, 2, 700, 80000, 1000, &st, &got), PX_STEER_TRY_DOWN);
	assert_int_equal(got, 1);
	assert_int_equal(st.why, PX_STEER_TRY_FEWER);
	/* One answers 98 %: within what a trial down may lose, so one stays. */
	assert_int_equal(run_trial(1, 78400, &st), 1);
	assert_int_equal(st.why, PX_STEER_KEPT);
	/* Up lost: one worker is busy (the load rule asks for more), but
	 * the trial up waits PX_STEER_TRY_UP windows, then twice as long
	 * after each further loss. */
	assert_int_equal(st.up_wait, PX_STEER_TRY_UP);
	assert_int_equal(windows_to_change(1, 2, 900, 78400, 1000, &st, &got), PX_STEER_TRY_UP);
	assert_int_equal(st.why, PX_STEER_TRY_MORE);
	assert_int_equal(run_trial(2, 78400, &st), 1);
	assert_int_equal(windows_to_change(1, 2, 900, 78400, 1000, &st, &got), 2 * PX_STEER_TRY_UP);

	/* From two again: one worker answering 92.5 % goes back to two, and
	 * the next trial down waits twice as long. */
	struct px_steer_state s2 = {0};
	assert_int_equal(windows_to_change(2, 2, 700, 80000, 1000, &s2, &got), PX_STEER_TRY_DOWN);
	assert_int_equal(run_trial(1, 74000, &s2), 2);
	assert_int_equal(s2.why, PX_STEER_BACK);
	assert_int_equal(s2.down_wait, 2 * PX_STEER_TRY_DOWN);
	assert_int_equal(windows_to_change(2, 2, 700, 80000, 1000, &s2, &got),
	                 2 * PX_STEER_TRY_DOWN);
}

static void test_choose_down_abort(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;

	assert_int_equal(windows_to_change(2, 2, 700, 80000, 1000, &st, &got), PX_STEER_TRY_DOWN);
	/* The skipped windows, then one window under 80 % ends it at once: a
	 * trial down must not pile up what one worker cannot read. */
	for (unsigned k = 0; k < PX_STEER_SKIP; k++)
		assert_int_equal(window(1, 2, 900, 60000, &st), 1);
	assert_int_equal(window(1, 2, 900, 60000, &st), 2);
	assert_int_equal(st.why, PX_STEER_BACK);
	assert_int_equal(st.why_pm, 750);

	/* Worker 0 behind during a trial down ends it too, skipped window or
	 * not. */
	assert_int_equal(windows_to_change(2, 2, 700, 80000, 1000, &st, &got),
	                 2 * PX_STEER_TRY_DOWN);
	unsigned busy[2] = {900, 900};
	struct px_steer_rate behind = {.per_s = 80000, .behind = true};
	assert_int_equal(px_steer_choose(1, 2, busy, &behind, &st), 2);
	assert_int_equal(st.why, PX_STEER_BACK);
}

static void test_choose_behind(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned busy[4] = {100, 0, 0, 0};
	struct px_steer_rate r = {.per_s = 5000, .behind = true};

	/* Behind: more workers at once, however idle worker 0 looks and
	 * without a rate to compare with. */
	assert_int_equal(px_steer_choose(1, 4, busy, &r, &st), 2);
	assert_int_equal(st.why, PX_STEER_BEHIND);
	assert_int_equal(st.trial, 0);
	assert_int_equal(px_steer_choose(2, 4, busy, &r, &st), 4);
	/* All of them already: nothing more to give. */
	assert_int_equal(px_steer_choose(4, 4, busy, &r, &st), 4);
	assert_int_equal(st.why, PX_STEER_SAME);
}

static void test_choose_waits_for_steady_rate(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;
	uint64_t rate = 20000;

	/* A load ramping up (dnsperf starting): each window 20 % above the
	 * last. No trial while it climbs, however busy worker 0 is. */
	for (unsigned k = 0; k < 20; k++, rate = rate * 6 / 5)
		assert_int_equal(window(1, 2, 950, rate, &st), 1);
	/* Once it holds, the trial comes after the base windows. */
	assert_int_equal(windows_to_change(1, 2, 950, rate, 100, &st, &got), PX_STEER_BASE_WINDOWS);
	assert_int_equal(got, 2);
	assert_int_equal(st.base, rate);
}

static void test_choose_light_and_gaps(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned busy[2] = {200, 200};
	struct px_steer_rate r = {.per_s = 3000};
	struct px_steer_rate gap = {.gap = true};

	/* A light load steps down by the load rule, without a trial. */
	for (unsigned k = 1; k < PX_STEER_DOWN_WINDOWS; k++)
		assert_int_equal(px_steer_choose(2, 2, busy, &r, &st), 2);
	assert_int_equal(px_steer_choose(2, 2, busy, &r, &st), 1);
	assert_int_equal(st.why, PX_STEER_FITS);

	/* A gap (the window was long: queries paused) restarts the base: no
	 * trial compares a rate from before a pause. */
	struct px_steer_state s2 = {0};
	unsigned got;
	for (unsigned k = 0; k < PX_STEER_SKIP + PX_STEER_BASE_WINDOWS - 1; k++)
		assert_int_equal(window(1, 2, 900, 100000, &s2), 1);
	unsigned hot[2] = {900, 900};
	assert_int_equal(px_steer_choose(1, 2, hot, &gap, &s2), 1);
	assert_int_equal(windows_to_change(1, 2, 900, 100000, 100, &s2, &got),
	                 PX_STEER_SKIP + PX_STEER_BASE_WINDOWS);
	/* A gap in a trial ends it without a verdict: the number on trial
	 * stays, and no wait doubles. */
	assert_int_equal(px_steer_choose(2, 2, hot, &gap, &s2), 2);
	assert_int_equal(s2.trial, 0);
	assert_int_equal(s2.up_wait, 0);
	assert_int_equal(s2.down_wait, PX_STEER_TRY_DOWN);
	/* One worker in all: nothing to try. */
	struct px_steer_state s3 = {0};
	assert_int_equal(windows_to_change(1, 1, 1000, 100000, 200, &s3, &got), 0);
}

static void test_noise(void **state)
{
	(void)state;
	const uint64_t flat[6] = {100000, 100000, 100000, 100000, 100000, 100000};
	const uint64_t base[6] = {94000, 106000, 94000, 106000, 94000, 106000};
	const uint64_t wide[6] = {100000, 118000, 100000, 118000, 100000, 118000};

	/* Windows that agree: no noise, the margins alone judge. */
	assert_int_equal(px_steer_noise_pm(flat, 6, flat, 6), 0);
	/* Sample variances 43.2e6 and 97.2e6 over 6 each: the standard error
	 * of the difference is sqrt(23.4e6) = 4837, twice that 9.67 % of
	 * the base's mean. */
	assert_int_equal(px_steer_noise_pm(base, 6, wide, 6), 96);
	assert_int_equal(px_steer_noise_pm(base, 6, flat, 6), 53);
	/* Too few windows to say. */
	assert_int_equal(px_steer_noise_pm(base, 1, wide, 6), 0);
}

static void test_choose_up_beyond_noise(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;
	const uint64_t base[6] = {94000, 106000, 94000, 106000, 94000, 106000};
	const uint64_t wide[6] = {100000, 118000, 100000, 118000, 100000, 118000};
	const uint64_t more[6] = {122000, 132000, 122000, 132000, 122000, 132000};

	/* A closed loop's windows differ by 12 %: the base is steady enough
	 * for a trial (within PX_STEER_STEADY_PM). */
	assert_int_equal(pattern_to_change(1, 2, 900, base, 100, &st, &got),
	                 PX_STEER_SKIP + PX_STEER_BASE_WINDOWS);
	assert_int_equal(st.base, 100000);
	/* Two workers average 9 % more, as much as the noise makes by chance
	 * (the bench's cached UDP kept a second worker on 109.3 %, which then
	 * answered no more): back to one. The margin alone would keep it. */
	assert_true(109000 * 1000 / 100000 >= PX_STEER_KEEP_UP_PM);
	assert_int_equal(run_trial_pattern(2, wide, &st), 1);
	assert_int_equal(st.why, PX_STEER_BACK);
	assert_int_equal(st.why_pm, 1090);
	assert_int_equal(st.noise_pm, 96);
	/* 27 % more, beyond the same kind of noise: two stay. */
	assert_int_equal(pattern_to_change(1, 2, 900, base, 1000, &st, &got), PX_STEER_TRY_UP);
	assert_int_equal(run_trial_pattern(2, more, &st), 2);
	assert_int_equal(st.why, PX_STEER_KEPT);
	assert_int_equal(st.why_pm, 1270);
}

static void test_choose_up_early_end(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;
	const uint64_t base[6] = {94000, 106000, 94000, 106000, 94000, 106000};
	const uint64_t near[6] = {91000, 103000, 91000, 103000, 91000, 103000};

	/* Two workers answer 85 % from the first counted window: the trial
	 * ends after PX_STEER_TRIAL_EARLY of them, not after all. */
	assert_int_equal(windows_to_change(1, 2, 900, 100000, 100, &st, &got),
	                 PX_STEER_SKIP + PX_STEER_BASE_WINDOWS);
	for (unsigned k = 1; k < PX_STEER_SKIP + PX_STEER_TRIAL_EARLY; k++)
		assert_int_equal(window(2, 2, 900, 85000, &st), 2);
	assert_int_equal(window(2, 2, 900, 85000, &st), 1);
	assert_int_equal(st.why, PX_STEER_BACK);
	assert_int_equal(st.why_pm, 850);
	assert_int_equal(st.up_wait, PX_STEER_TRY_UP);
	/* 97 % with windows that differ by 12 %: not clear yet, so the
	 * trial runs its full length (and then goes back: no gain). */
	struct px_steer_state s2 = {0};
	assert_int_equal(pattern_to_change(1, 2, 900, base, 100, &s2, &got),
	                 PX_STEER_SKIP + PX_STEER_BASE_WINDOWS);
	for (unsigned k = 0; k < PX_STEER_SKIP + PX_STEER_TRIAL_WINDOWS - 1; k++)
		assert_int_equal(window(2, 2, 900, near[k % 6], &s2), 2);
	assert_int_equal(window(2, 2, 900, near[1], &s2), 1);
	assert_int_equal(s2.why_pm, 970);
}

static void test_choose_down_within_noise(void **state)
{
	(void)state;
	struct px_steer_state st = {0};
	unsigned got;
	const uint64_t base[6] = {94000, 106000, 94000, 106000, 94000, 106000};
	const uint64_t less[6] = {88000, 100000, 88000, 100000, 88000, 100000};
	const uint64_t much_less[6] = {82000, 94000, 82000, 94000, 82000, 94000};

	/* One worker answers 94 % of two's rate, a loss within the noise
	 * (7.5 %): one stays, it costs less per answer. Without noise 94 %
	 * goes back (under PX_STEER_KEEP_DOWN_PM, as test_choose_down_trial's
	 * 92.5 % does). */
	assert_int_equal(pattern_to_change(2, 2, 700, base, 1000, &st, &got), PX_STEER_TRY_DOWN);
	assert_int_equal(got, 1);
	assert_int_equal(run_trial_pattern(1, less, &st), 1);
	assert_int_equal(st.why, PX_STEER_KEPT);
	assert_int_equal(st.why_pm, 940);
	assert_int_equal(st.noise_pm, 75);
	/* 88 %: below the floor, whatever the noise. */
	struct px_steer_state s2 = {0};
	assert_int_equal(pattern_to_change(2, 2, 700, base, 1000, &s2, &got), PX_STEER_TRY_DOWN);
	assert_int_equal(run_trial_pattern(1, much_less, &s2), 2);
	assert_int_equal(s2.why, PX_STEER_BACK);
	assert_int_equal(s2.why_pm, 880);
}

/* --- the kernel's side ---------------------------------------------------- */

static int bound_reuseport(uint16_t port, uint16_t *got)
{
	return th_reuseport_socket(SOCK_DGRAM, port, got);
}

static unsigned drain(int fd)
{
	char buf[64];
	unsigned n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

/* Sends count datagrams from count different source ports (so the
 * kernel's own 4-tuple hash would spread them), then counts arrivals. */
static void send_from_many(uint16_t port, unsigned count, int s0, int s1, unsigned *n0,
                           unsigned *n1)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (unsigned i = 0; i < count; i++) {
		int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_true(c >= 0);
		assert_int_equal(sendto(c, "q", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
		close(c);
	}
	/* Loopback delivers within sendto; nothing to wait for. */
	*n0 = drain(s0);
	*n1 = drain(s1);
	assert_int_equal(*n0 + *n1, count);
}

static void test_kernel_steering(void **state)
{
	(void)state;
	uint16_t port, port2;
	int s0 = bound_reuseport(0, &port);
	int s1 = bound_reuseport(port, &port2);
	unsigned n0, n1;

	assert_int_equal(port, port2);
	/* Without a program the kernel's hash spreads 200 source ports. */
	send_from_many(port, 200, s0, s1, &n0, &n1);
	assert_true(n0 > 0 && n1 > 0);

	assert_int_equal(px_steer_attach(s1, 1), 0); /* any member sets the group's */
	send_from_many(port, 200, s0, s1, &n0, &n1);
	assert_int_equal(n0, 200);

	assert_int_equal(px_steer_attach(s0, 2), 0);
	send_from_many(port, 200, s0, s1, &n0, &n1);
	assert_true(n0 > 0 && n1 > 0); /* chance of failing: 2^-199 */

	/* More than the group has: the kernel falls back to its hash. */
	assert_int_equal(px_steer_attach(s0, 8), 0);
	send_from_many(port, 200, s0, s1, &n0, &n1);

	assert_int_equal(px_steer_attach(s0, 1), 0);
	send_from_many(port, 200, s0, s1, &n0, &n1);
	assert_int_equal(n0, 200);

	assert_int_equal(px_steer_attach(s0, 0), -EINVAL);
	assert_int_equal(px_steer_attach(s0, PX_STEER_MAX + 1), -EINVAL);
	close(s0);
	close(s1);
}

static void test_kernel_refuses_plain_socket(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	/* No SO_REUSEPORT, no group: an error the caller logs, not a crash. */
	assert_true(px_steer_attach(fd, 1) < 0);
	close(fd);
}

static void test_kernel_queue(void **state)
{
	(void)state;
	uint16_t port;
	int rx = bound_reuseport(0, &port);
	int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int small = 4096; /* the kernel doubles it, and has a floor */
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct px_sock_queue q;
	uint8_t msg[64] = {0};

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(px_steer_queue(rx, &q), 0);
	assert_int_equal(q.queued, 0);
	assert_int_equal(q.drops, 0);
	assert_true(q.limit >= (uint32_t)small);
	/* Nothing reads: the queue fills to its limit, then the kernel
	 * drops, and says so. */
	for (int i = 0; i < 200; i++)
		assert_int_equal(
		        sendto(tx, msg, sizeof(msg), 0, (struct sockaddr *)&to, sizeof(to)),
		        (ssize_t)sizeof(msg));
	assert_int_equal(px_steer_queue(rx, &q), 0);
	assert_true(q.queued * 2 >= q.limit);
	assert_true(q.drops > 0);
	close(tx);
	close(rx);
	/* Not a socket. */
	assert_true(px_steer_queue(-1, &q) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_decide_one_worker),
	        cmocka_unit_test(test_decide_up),
	        cmocka_unit_test(test_decide_down),
	        cmocka_unit_test(test_decide_bounce_backoff),
	        cmocka_unit_test(test_decide_bad_n),
	        cmocka_unit_test(test_choose_up_needs_more_answers),
	        cmocka_unit_test(test_choose_up_backoff_capped),
	        cmocka_unit_test(test_choose_down_trial),
	        cmocka_unit_test(test_choose_down_abort),
	        cmocka_unit_test(test_choose_behind),
	        cmocka_unit_test(test_choose_waits_for_steady_rate),
	        cmocka_unit_test(test_choose_light_and_gaps),
	        cmocka_unit_test(test_noise),
	        cmocka_unit_test(test_choose_up_beyond_noise),
	        cmocka_unit_test(test_choose_up_early_end),
	        cmocka_unit_test(test_choose_down_within_noise),
	        cmocka_unit_test(test_kernel_steering),
	        cmocka_unit_test(test_kernel_refuses_plain_socket),
	        cmocka_unit_test(test_kernel_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
