/* bench/health_cost.c - what the health checker costs (issue 17).
 *
 *     health_cost N PORT KIND INTERVAL SECONDS
 *
 * Registers N loopback addresses (127.77.0.1 on, four per owner) with a
 * checker whose zone checks KIND:PORT (tcp or tls) every INTERVAL (a
 * duration as the INI writes it), the way answers do (px_health_down),
 * and keeps them in use. After one interval of warm-up it measures, over
 * SECONDS, the CPU time the checker thread spent (schedstat: ns on CPU,
 * /proc/self/task/TID) and the checks it finished, and prints both per
 * check and per interval. bench/health.sh runs it with listeners at every
 * address (bench/health_listen.py) so that each check succeeds.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/health/health.h"
#include "proxy/health/internal.h"

#define MAX_TASKS 64

static int tasks(long *out)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL && n < MAX_TASKS)
		if (e->d_name[0] != '.')
			out[n++] = atol(e->d_name);
	if (d != NULL)
		closedir(d);
	return n;
}

static unsigned long long cpu_ns(long tid)
{
	char path[64];
	unsigned long long ns = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/schedstat", tid);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

static unsigned long long checks_done(struct px_health *h)
{
	unsigned long long n = 0;

	for (int r = 0; r < PX_HR_COUNT; r++)
		n += atomic_load(&h->checks[r]);
	return n;
}

/* Asks for every address, as answers would: registers new ones, marks
 * the others used. */
static void use_all(struct px_health_ask *asks, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t a[4] = {127, 77, (uint8_t)((i + 1) >> 8), (uint8_t)(i + 1)};
		(void)px_health_down(&asks[i / 4], a, 1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: health_cost N PORT KIND INTERVAL SECONDS\n");
		return 2;
	}
	unsigned n = (unsigned)atoi(argv[1]), secs = (unsigned)atoi(argv[5]);
	char text[512];
	snprintf(text, sizeof(text),
	         "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"
	         "[zone bench.test]\n[health]\ncheck = %s:%s\ninterval = %s\n",
	         argv[3], argv[2], argv[4]);
	struct cfg *cfg = NULL;
	struct cfg_error err;
	if (cfg_load_mem("bench.ini", text, strlen(text), &cfg, &err) != 0) {
		fprintf(stderr, "%s", err.msg);
		return 1;
	}
	long before[MAX_TASKS], after[MAX_TASKS], checker = 0;
	int nb = tasks(before);
	struct px_health *h = px_health_new(cfg);
	int na = tasks(after);
	for (int i = 0; i < na && checker == 0; i++) {
		int seen = 0;
		for (int j = 0; j < nb; j++)
			seen |= after[i] == before[j];
		if (!seen)
			checker = after[i];
	}
	if (h == NULL || checker == 0) {
		fprintf(stderr, "no checker thread\n");
		return 1;
	}
	unsigned owners = (n + 3) / 4;
	struct px_health_ask *asks = calloc(owners, sizeof(*asks));
	uint8_t(*names)[32] = calloc(owners, sizeof(*names));
	for (unsigned o = 0; o < owners; o++) {
		/* "\6oNNNNN\5bench\4test" */
		int l = snprintf((char *)names[o] + 1, 8, "o%05u", o);
		names[o][0] = (uint8_t)l;
		memcpy(names[o] + 1 + l, "\5bench\4test", 12);
		asks[o] = (struct px_health_ask){.h = h,
		                                 .check = &cfg->zones[0].check,
		                                 .owner = names[o],
		                                 .owner_len = (uint8_t)(1 + l + 12)};
	}
	uint64_t interval_ms = cfg->health.interval_ms;
	/* Warm-up: every address handed over and checked at least once. */
	for (uint64_t t = 0; t < interval_ms + 1000; t += 100) {
		use_all(asks, n);
		usleep(100000);
	}
	unsigned long long c0 = checks_done(h), ns0 = cpu_ns(checker);
	for (unsigned s = 0; s < secs * 10; s++) {
		if (s % 10 == 0)
			use_all(asks, n);
		usleep(100000);
	}
	unsigned long long c1 = checks_done(h), ns1 = cpu_ns(checker);
	unsigned long long checks = c1 - c0, ns = ns1 - ns0;
	printf("addresses=%u live=%u check=%s:%s interval=%s seconds=%u\n", n,
	       atomic_load(&h->n_addrs), argv[3], argv[2], argv[4], secs);
	printf("checks=%llu ok=%llu checker_cpu_ms=%.1f us_per_check=%.1f "
	       "cpu_ms_per_interval=%.1f core_share=%.4f%%\n",
	       checks, (unsigned long long)atomic_load(&h->checks[PX_HR_OK]), ns / 1e6,
	       checks ? ns / 1e3 / checks : 0.0, ns / 1e6 / secs * (interval_ms / 1000.0),
	       ns / 1e7 / secs);
	px_health_free(h);
	cfg_free(cfg);
	free(asks);
	free(names);
	return 0;
}
