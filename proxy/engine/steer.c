/* proxy/engine/steer.c - the lead worker's choice of how many workers
 * take UDP queries.
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
 * An idle apexd stays idle: windows end on UDP wake-ups only, never on a
 * timer. The kernel is told by io/steer.c; if it refuses (an old kernel,
 * a seccomp filter), the kernel's hash spreads over every worker as
 * before and that is logged once.
 */
#include <errno.h>
#include <fcntl.h>
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

void px_steer_listener(struct px_worker *w, int fd)
{
	struct px_server *srv = w->srv;
	unsigned n = atomic_load_explicit(&srv->udp_active, memory_order_relaxed);

	if (w->idx != 0 || srv->n_workers <= 1 || w->steer.off)
		return;
	int rc = px_steer_attach(fd, n);
	if (rc < 0) {
		/* Nothing attached: the kernel's hash spreads over all. */
		px_log(CFG_LOG_WARNING, UDP,
		       "UDP steering unavailable (%s): the kernel spreads queries over all %u "
		       "workers",
		       strerror(-rc), srv->n_workers);
		w->steer.off = true;
		atomic_store_explicit(&srv->udp_active, srv->n_workers, memory_order_relaxed);
		atomic_store_explicit(&w->stats.udp_workers_active, srv->n_workers,
		                      memory_order_relaxed);
	}
}

/* The lead applies n to every UDP group through its own sockets. */
static void steer_apply(struct px_worker *w, unsigned n, unsigned from, unsigned busy0)
{
	struct px_server *srv = w->srv;

	for (size_t i = 0; i < w->lis.n_udp; i++) {
		int rc = px_steer_attach(w->lis.udp[i]->fd, n);
		if (rc < 0) {
			px_log(CFG_LOG_WARNING, UDP,
			       "UDP steering on %s failed (%s): left as it was",
			       w->lis.udp[i]->addr.text, strerror(-rc));
			return;
		}
	}
	atomic_store_explicit(&srv->udp_active, n, memory_order_relaxed);
	atomic_store_explicit(&w->stats.udp_workers_active, n, memory_order_relaxed);
	PX_STAT_INC(&w->stats, udp_steer_changes);
	/* Not rate-limited: the rule's own backoff bounds the changes. */
	px_log(CFG_LOG_INFO, UDP,
	       "UDP queries now go to %u of %u workers (was %u; worker 0 wanted %u.%u %% of a "
	       "core)",
	       n, srv->n_workers, from, busy0 / 10, busy0 % 10);
}

static void steer_lead(struct px_worker *w, uint64_t now_ms)
{
	struct px_server *srv = w->srv;
	unsigned total = srv->n_workers;
	unsigned n = atomic_load_explicit(&srv->udp_active, memory_order_relaxed);
	unsigned busy[PX_STEER_MAX];

	if (w->steer.off)
		return; /* px_steer_listener said why */
	if (total > PX_STEER_MAX)
		total = PX_STEER_MAX;
	for (unsigned i = 0; i < n && i < total; i++) {
		struct px_steer_worker *s = &srv->workers[i].steer;
		uint64_t at = atomic_load_explicit(&s->busy_at_ms, memory_order_relaxed);
		busy[i] = at + PX_STEER_STALE_MS >= now_ms
		                  ? atomic_load_explicit(&s->busy_pm, memory_order_relaxed)
		                  : 0;
	}
	unsigned nn = px_steer_decide(n, total, busy, &w->steer.lead);
	if (nn != n)
		steer_apply(w, nn, n, busy[0]);
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
			steer_lead(w, now_ms);
	}
	s->t0_ns = t;
	s->cpu0_ns = cpu;
	s->next_ms = now_ms + PX_STEER_WINDOW_MS;
}
