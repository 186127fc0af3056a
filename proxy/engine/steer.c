/* proxy/engine/steer.c - the lead worker's choice of how many workers
 * take UDP queries and new connections.
 *
 * Why: with SO_REUSEPORT's hash every worker gets a share of a light
 * load, and each wakes for a few datagrams; on a small machine the
 * wake-ups, not the answers, set the CPU an answer costs (bench/README.md,
 * issue 16: a cached answer 3.0 µs with one worker, 6.5 µs with two, and
 * one worker answered more). So queries go to as few workers as carry the
 * load with room to spare. What is measured is the thread's own CPU time
 * (one clock_gettime per window, 50 ms), not the wall time between
 * wake-ups, which on a shared machine counts the time others ran.
 *
 * An idle apexd stays idle: windows end on wake-ups for queries only (UDP
 * reads, connection reads), never on a timer. The kernel is told by
 * io/steer.c; if it refuses (an old kernel, a seccomp filter), the
 * kernel's hash spreads over every worker as before and that is logged
 * once.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/daemon/server.h"
#include "proxy/engine/steer.h"
#include "proxy/engine/worker.h"
#include "proxy/io/steer.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

unsigned px_steer_decide(unsigned n, unsigned total, const unsigned *busy,
                         struct px_steer_state *st)
{
	uint64_t sum = 0;

	if (total <= 1)
		return 1;
	if (n < 1 || n > total)
		n = n < 1 ? 1 : total;
	if (st->down_need == 0)
		st->down_need = PX_STEER_DOWN_WINDOWS;
	if (st->since_down > 0 && ++st->since_down > PX_STEER_SETTLED) {
		st->since_down = 0; /* the last step down held */
		st->down_need = PX_STEER_DOWN_WINDOWS;
	}
	for (unsigned i = 0; i < n; i++)
		sum += busy[i];
	if (n < total && sum >= (uint64_t)PX_STEER_UP_PM * n) {
		if (st->since_down > 0) {
			/* Back up right after a step down: wait longer next time. */
			st->down_need = st->down_need * 2 < PX_STEER_DOWN_MAX ? st->down_need * 2
			                                                      : PX_STEER_DOWN_MAX;
		}
		st->since_down = 0;
		st->low_windows = 0;
		/* Doubling, not one more: a load that outgrows one worker
		 * has usually not stopped growing. */
		return 2 * n < total ? 2 * n : total;
	}
	if (n > 1 && sum < 1000u * (uint64_t)(n - 1)) {
		if (++st->low_windows >= st->down_need) {
			st->low_windows = 0;
			st->since_down = 1;
			return n - 1;
		}
		return n;
	}
	st->low_windows = 0;
	return n;
}

/* A direction that lost waits longer for its next trial: start, or
 * twice what it waited, up to PX_STEER_TRY_MAX. */
static void wait_more(unsigned *wait, unsigned start)
{
	*wait = *wait < start ? start : *wait * 2 < PX_STEER_TRY_MAX ? *wait * 2 : PX_STEER_TRY_MAX;
}

/* A new regime (the load fell to what fewer carry, or paused): what
 * the trials learnt is about another load. */
static void waits_reset(struct px_steer_state *st)
{
	st->up_wait = 0;
	st->down_wait = PX_STEER_TRY_DOWN;
}

/* The sum of k windows' rates: the base's, a trial's. */
static uint64_t rates_sum(const uint64_t *rates, unsigned k)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < k; i++)
		sum += rates[i];
	return sum;
}

static unsigned trial_start(struct px_steer_state *st, int dir, unsigned from, unsigned to)
{
	st->base = rates_sum(st->rates, PX_STEER_BASE_WINDOWS) / PX_STEER_BASE_WINDOWS;
	st->trial = dir;
	st->trial_from = from;
	st->trial_win = 0;
	st->steady = 0;
	st->why = dir > 0 ? PX_STEER_TRY_MORE : PX_STEER_TRY_FEWER;
	return to;
}

/* Ends the trial: n stays if kept, else the number before it returns.
 * Either way one direction lost, and its next trial waits longer: a
 * closed loop answers within a few per cent either way, and trials
 * that took turns winning on noise would change the number every
 * second. */
static unsigned trial_end(struct px_steer_state *st, unsigned n, bool kept, unsigned pm,
                          unsigned noise)
{
	bool up_lost = (st->trial > 0) != kept;

	if (up_lost)
		wait_more(&st->up_wait, PX_STEER_TRY_UP);
	else
		wait_more(&st->down_wait, PX_STEER_TRY_DOWN);
	st->why = kept ? PX_STEER_KEPT : PX_STEER_BACK;
	st->why_pm = pm;
	st->noise_pm = noise;
	st->trial = 0;
	st->steady = 0;
	return kept ? n : st->trial_from;
}

/* The sample variance of k rates around their mean. */
static double rates_var(const uint64_t *rates, unsigned k, double mean)
{
	double sum = 0;

	for (unsigned i = 0; i < k; i++)
		sum += ((double)rates[i] - mean) * ((double)rates[i] - mean);
	return k > 1 ? sum / (k - 1) : 0;
}

/* Twice the standard error of the difference between the trial's mean
 * rate and the base's, per mille of the base: a difference smaller
 * than this is what two sets of windows at the same number would show
 * about one time in twenty. */
unsigned px_steer_noise_pm(const uint64_t *base_rates, unsigned nb, const uint64_t *trial_rates,
                           unsigned nt)
{
	if (nb < 2 || nt < 2)
		return 0;
	double mb = (double)rates_sum(base_rates, nb) / nb;
	double mt = (double)rates_sum(trial_rates, nt) / nt;
	if (mb < 1)
		return 0;
	double se = sqrt(rates_var(base_rates, nb, mb) / nb + rates_var(trial_rates, nt, mt) / nt);
	double pm = 2 * se * 1000 / mb;
	return pm > 100000 ? 100000 : (unsigned)pm;
}

/* Kept: more workers must answer more by a margin and beyond the
 * noise; fewer stay unless they answer clearly less (the noise cannot
 * tell, and fewer cost less per answer), down to a floor. */
static bool trial_kept(int dir, unsigned pm, unsigned noise)
{
	if (dir > 0)
		return pm >= PX_STEER_KEEP_UP_PM && pm >= 1000 + noise;
	return pm >= PX_STEER_KEEP_DOWN_PM ||
	       (pm >= PX_STEER_KEEP_DOWN_MIN_PM && pm + noise > 1000);
}

static unsigned trial_window(unsigned n, const struct px_steer_rate *r, struct px_steer_state *st)
{
	if (r->gap) {
		/* The load paused: the trial says nothing, and the number on
		 * trial stays until the load rule sees the next one. */
		st->trial = 0;
		st->steady = 0;
		waits_reset(st);
		return n;
	}
	if (st->trial < 0 && r->behind)
		return trial_end(st, n, false, 0, 0);
	if (++st->trial_win <= PX_STEER_SKIP)
		return n;
	uint64_t base = st->base > 0 ? st->base : 1;
	unsigned k = st->trial_win - PX_STEER_SKIP;
	st->trial_rates[k - 1] = r->per_s;
	if (st->trial < 0 && r->per_s * 1000 < base * PX_STEER_ABORT_PM)
		return trial_end(st, n, false, (unsigned)(r->per_s * 1000 / base), 0);
	if (k < PX_STEER_TRIAL_EARLY)
		return n;
	uint64_t pm = rates_sum(st->trial_rates, k) / k * 1000 / base;
	unsigned p = pm > 100000 ? 100000 : (unsigned)pm;
	unsigned noise = px_steer_noise_pm(st->rates, PX_STEER_BASE_WINDOWS, st->trial_rates, k);
	if (k < PX_STEER_TRIAL_WINDOWS) {
		/* More workers already answering less, beyond the noise:
		 * the rest of the trial would only cost more. */
		if (st->trial > 0 && p + noise < 1000)
			return trial_end(st, n, false, p, noise);
		return n;
	}
	return trial_end(st, n, trial_kept(st->trial, p, noise), p, noise);
}

/* The base windows agree within PX_STEER_STEADY_PM: a rate still
 * climbing (a load starting: the bench's dnsperf, a resolver's caches
 * expiring together) would make anything tried after it look better. */
static bool rate_steady(const struct px_steer_state *st)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (unsigned i = 0; i < PX_STEER_BASE_WINDOWS; i++) {
		lo = st->rates[i] < lo ? st->rates[i] : lo;
		hi = st->rates[i] > hi ? st->rates[i] : hi;
	}
	return hi * 1000 <= lo * PX_STEER_STEADY_PM;
}

unsigned px_steer_choose(unsigned n, unsigned total, const unsigned *busy,
                         const struct px_steer_rate *r, struct px_steer_state *st)
{
	st->why = PX_STEER_SAME;
	if (total <= 1)
		return 1;
	if (n < 1 || n > total)
		n = n < 1 ? 1 : total;
	if (st->down_wait == 0)
		st->down_wait = PX_STEER_TRY_DOWN;
	if (st->trial != 0)
		return trial_window(n, r, st);
	if (r->gap) {
		st->steady = 0;
		waits_reset(st);
	} else if (++st->steady > PX_STEER_SKIP) {
		st->rates[(st->steady - PX_STEER_SKIP - 1) % PX_STEER_BASE_WINDOWS] = r->per_s;
	}
	if (r->behind && n < total) {
		/* What brought it here, a trial down or a grown load, is
		 * not to be tried again soon. */
		wait_more(&st->down_wait, PX_STEER_TRY_DOWN);
		st->steady = 0;
		st->why = PX_STEER_BEHIND;
		return 2 * n < total ? 2 * n : total;
	}
	unsigned want = px_steer_decide(n, total, busy, st);
	bool based = st->steady >= PX_STEER_SKIP + PX_STEER_BASE_WINDOWS && rate_steady(st);
	if (want < n) {
		st->steady = 0;
		waits_reset(st);
		st->why = PX_STEER_FITS;
		return want;
	}
	if (want > n)
		return based && st->steady >= st->up_wait ? trial_start(st, +1, n, want) : n;
	if (n > 1 && based && st->steady >= st->down_wait)
		return trial_start(st, -1, n, n - 1);
	return n;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What the thread wanted of a CPU so far: the time it ran plus the time
 * it was runnable but waited for one (run_delay, from the thread's own
 * /proc/thread-self/schedstat, opened once from the thread: it works
 * after the privilege drop). A worker that falls behind because others
 * hold the cores uses little CPU but waits a lot; counting only its CPU
 * would keep it alone exactly when a second thread would get the load a
 * bigger share of a busy machine (the soak's six dnsperf and BIND on two
 * cores: 63 000 qps with one worker against 78 000 with two). Without
 * the file, the CPU time alone. */
static uint64_t thread_want_ns(struct px_steer_worker *s)
{
	char buf[96];

	if (!s->stat_tried) {
		s->stat_tried = true;
		s->statfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	}
	if (s->statfd >= 0) {
		ssize_t n = pread(s->statfd, buf, sizeof(buf) - 1, 0);
		unsigned long long run, wait;
		if (n > 0) {
			buf[n] = '\0';
			if (sscanf(buf, "%llu %llu", &run, &wait) == 2)
				return run + wait;
		}
	}
	return thread_cpu_ns();
}

void px_steer_close(struct px_worker *w)
{
	if (w->steer.stat_tried && w->steer.statfd >= 0)
		close(w->steer.statfd);
	w->steer.stat_tried = false;
}

/* What the listeners read and the gauge shows, together. */
static void steer_set_active(struct px_worker *w, unsigned n)
{
	atomic_store_explicit(&w->srv->active, n, memory_order_relaxed);
	atomic_store_explicit(&w->stats.udp_workers_active, n, memory_order_relaxed);
}

void px_steer_listener(struct px_worker *w, int fd)
{
	struct px_server *srv = w->srv;
	unsigned n = atomic_load_explicit(&srv->active, memory_order_relaxed);

	if (w->idx != 0 || srv->n_workers <= 1 || w->steer.off)
		return;
	int rc = px_steer_attach(fd, n);
	if (rc < 0) {
		/* Nothing attached: the kernel's hash spreads over all. */
		px_log(CFG_LOG_WARNING, UDP,
		       "steering unavailable (%s): the kernel spreads queries and connections "
		       "over all %u workers",
		       strerror(-rc), srv->n_workers);
		w->steer.off = true;
		steer_set_active(w, srv->n_workers);
	}
}

static const char *why_text(const struct px_steer_state *st, char *buf, size_t len)
{
	switch (st->why) {
	case PX_STEER_FITS:
		return "the load fits in fewer";
	case PX_STEER_TRY_MORE:
		return "a trial: do more answer more?";
	case PX_STEER_TRY_FEWER:
		return "a trial: do fewer answer as many?";
	case PX_STEER_KEPT:
	case PX_STEER_BACK: {
		int n = snprintf(buf, len, "the trial answered %u.%u %% of the rate before it",
		                 st->why_pm / 10, st->why_pm % 10);
		if (st->noise_pm != 0 && n > 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, ", noise +-%u.%u %%", st->noise_pm / 10,
			         st->noise_pm % 10);
		return buf;
	}
	case PX_STEER_BEHIND:
		return "worker 0 fell behind";
	case PX_STEER_PINNED:
		return "pinned by apexctl workers";
	default:
		return "";
	}
}

/* The lead applies n to every UDP and TCP group through its own
 * sockets, and wakes every worker to move connections (listen/move.c). */
static void steer_apply(struct px_worker *w, unsigned n, unsigned from, unsigned busy0)
{
	struct px_server *srv = w->srv;
	char buf[80];

	for (size_t i = 0; i < w->lis.n_udp; i++) {
		int rc = px_steer_attach(w->lis.udp[i]->fd, n);
		if (rc < 0) {
			px_log(CFG_LOG_WARNING, UDP,
			       "UDP steering on %s failed (%s): left as it was",
			       w->lis.udp[i]->addr.text, strerror(-rc));
			return;
		}
	}
	for (size_t i = 0; i < w->lis.n_tcp; i++) {
		uv_os_fd_t fd;
		int rc = uv_fileno((uv_handle_t *)&w->lis.tcp[i]->h, &fd);
		if (rc == 0)
			rc = px_steer_attach(fd, n);
		/* Not fatal: a connection accepted by a worker that is
		 * left moves on at once (px_conn_move_new). */
		if (rc < 0)
			px_log(CFG_LOG_WARNING, TCP, "steering on %s failed (%s): left as it was",
			       w->lis.tcp[i]->addr.text, strerror(-rc));
	}
	steer_set_active(w, n);
	PX_STAT_INC(&w->stats, udp_steer_changes);
	/* Not rate-limited: the rule's own backoff bounds the changes. */
	px_log(CFG_LOG_INFO, UDP,
	       "queries now go to %u of %u workers (was %u; worker 0 wanted %u.%u %% of a "
	       "core; %s)",
	       n, srv->n_workers, from, busy0 / 10, busy0 % 10,
	       why_text(&w->steer.lead, buf, sizeof(buf)));
	for (unsigned i = 0; i < srv->n_workers; i++)
		px_worker_nudge(&srv->workers[i]);
}

/* Worker 0 is behind when one of its UDP sockets holds half of what it
 * may queue, or the kernel dropped a datagram for one since the last
 * window (SO_MEMINFO: one getsockopt per listener and window). */
static bool lead_behind(struct px_worker *w)
{
	uint64_t drops = 0;
	bool full = false;

	for (size_t i = 0; i < w->lis.n_udp; i++) {
		struct px_sock_queue q;
		if (px_steer_queue(w->lis.udp[i]->fd, &q) != 0)
			continue;
		drops += q.drops;
		if ((uint64_t)q.queued * 2 >= q.limit)
			full = true;
	}
	bool dropped = drops > w->steer.drops0;
	w->steer.drops0 = drops;
	return full || dropped;
}

static void steer_lead(struct px_worker *w, uint64_t now_ms, uint64_t window_ns)
{
	struct px_server *srv = w->srv;
	struct px_steer_state *st = &w->steer.lead;
	unsigned total = srv->n_workers;
	unsigned n = atomic_load_explicit(&srv->active, memory_order_relaxed);
	unsigned busy[PX_STEER_MAX];
	uint64_t read = 0;
	char buf[80];

	if (w->steer.off)
		return; /* px_steer_listener said why */
	px_steer_follow_pin(w);
	if (w->steer.pinned)
		return;
	if (total > PX_STEER_MAX)
		total = PX_STEER_MAX;
	for (unsigned i = 0; i < total; i++) {
		struct px_worker *o = &srv->workers[i];
		read += atomic_load_explicit(&o->stats.queries_udp, memory_order_relaxed) +
		        atomic_load_explicit(&o->stats.queries_tcp, memory_order_relaxed) +
		        atomic_load_explicit(&o->stats.queries_dot, memory_order_relaxed) +
		        atomic_load_explicit(&o->stats.queries_doh, memory_order_relaxed);
		if (i >= n)
			continue;
		uint64_t at = atomic_load_explicit(&o->steer.busy_at_ms, memory_order_relaxed);
		busy[i] = at + PX_STEER_STALE_MS >= now_ms
		                  ? atomic_load_explicit(&o->steer.busy_pm, memory_order_relaxed)
		                  : 0;
	}
	struct px_steer_rate r = {
	        .gap = w->steer.read0 == 0 ||
	               window_ns > (uint64_t)PX_STEER_GAP_WINDOWS * PX_STEER_WINDOW_MS * 1000000u,
	        .behind = lead_behind(w),
	};
	if (!r.gap && read >= w->steer.read0)
		r.per_s = (read - w->steer.read0) * 1000000000u / window_ns;
	w->steer.read0 = read;
	unsigned nn = px_steer_choose(n, total, busy, &r, st);
	if (st->why == PX_STEER_TRY_MORE || st->why == PX_STEER_TRY_FEWER)
		PX_STAT_INC(&w->stats, udp_steer_trials);
	if (nn != n)
		steer_apply(w, nn, n, busy[0]);
	else if (st->why == PX_STEER_KEPT)
		px_log(CFG_LOG_INFO, UDP, "queries stay with %u of %u workers: %s", n, total,
		       why_text(st, buf, sizeof(buf)));
}

void px_steer_follow_pin(struct px_worker *w)
{
	struct px_server *srv = w->srv;
	unsigned pin = atomic_load_explicit(&srv->steer_pin, memory_order_relaxed);
	unsigned n = atomic_load_explicit(&srv->active, memory_order_relaxed);

	if (w->idx != 0 || srv->n_workers <= 1 || w->steer.off)
		return;
	if (pin == 0) {
		if (w->steer.pinned) {
			w->steer.pinned = false;
			memset(&w->steer.lead, 0, sizeof(w->steer.lead));
			w->steer.read0 = 0;
			px_log(CFG_LOG_INFO, UDP,
			       "queries: the steering rule decides again, from %u of %u workers", n,
			       srv->n_workers);
		}
		return;
	}
	w->steer.pinned = true;
	if (pin > srv->n_workers)
		pin = srv->n_workers;
	if (pin != n) {
		w->steer.lead.why = PX_STEER_PINNED;
		steer_apply(w, pin, n,
		            atomic_load_explicit(&w->steer.busy_pm, memory_order_relaxed));
	}
}

void px_steer_window(struct px_worker *w)
{
	struct px_steer_worker *s = &w->steer;
	uint64_t now_ms = px_now(w);

	if (w->srv->n_workers <= 1 || now_ms < s->next_ms)
		return;
	uint64_t t = uv_hrtime();
	uint64_t cpu = thread_want_ns(s);
	if (s->t0_ns != 0 && t > s->t0_ns) {
		uint64_t pm = (cpu - s->cpu0_ns) * 1000 / (t - s->t0_ns);
		atomic_store_explicit(&s->busy_pm, pm > 1000 ? 1000 : (unsigned)pm,
		                      memory_order_relaxed);
		atomic_store_explicit(&s->busy_at_ms, now_ms, memory_order_relaxed);
		if (w->idx == 0)
			steer_lead(w, now_ms, t - s->t0_ns);
	}
	s->t0_ns = t;
	s->cpu0_ns = cpu;
	s->next_ms = now_ms + PX_STEER_WINDOW_MS;
}
