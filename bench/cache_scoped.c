/* bench/cache_scoped.c - cost of scoped (EDNS Client Subnet) target-cache
 * entries: bytes per entry, and work per lookup.
 *
 *   cache_scoped mem [TARGETS [SCOPES]]
 *       TARGETS targets (default 10 000) of SCOPES /24 scopes each
 *       (default 100) and a scope-0 entry, in a 1 GiB cache (nothing
 *       evicted): prints the bytes the cache counts and the resident set
 *       growth per scoped entry, next to a plain entry's.
 *   cache_scoped hit KIND [LOOKUPS [SCOPES]]
 *       LOOKUPS (default 1 000 000) hits of one kind on one target among
 *       10 000 others, whose directory holds SCOPES scopes of other
 *       subnets (default 8: 6 /24s, 2 /16s) besides what KIND needs:
 *         plain  flat_cache_get, unscoped key (ecs off)
 *         s24    flat_cache_get_scoped, client /24, a /24 entry covers it
 *         s16    ... a /16 entry covers it (no /24 of its own)
 *         s0     ... only the scope-0 entry covers it (fallback)
 *       Prints ns per lookup. For instructions per lookup, run it under
 *       callgrind collecting the lookup functions only, and divide the
 *       total by LOOKUPS (bench/README.md has the command).
 *
 * Built with -DAPEX_BENCH=ON (target cache_scoped, not built otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flatten/cache.h"

#define OTHERS 10000

static long rss_pages(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident;
}

/* A 20-byte wire name: \x0c + 12 digits, \x05 "bench", \0 (as cache_mem). */
static size_t make_name(uint8_t *out, unsigned long i)
{
	char label[24];
	size_t n = 0;

	snprintf(label, sizeof(label), "%012lu", i % 1000000000000UL);
	out[n++] = 12;
	memcpy(out + n, label, 12);
	n += 12;
	out[n++] = 5;
	memcpy(out + n, "bench", 5);
	n += 5;
	out[n++] = 0;
	return n;
}

static struct flat_cache_key key_of(const uint8_t *name, size_t len)
{
	struct flat_cache_key k;

	memset(&k, 0, sizeof(k));
	k.name = name;
	k.len = len;
	k.type = CODEC_TYPE_A;
	k.kind = FLAT_KEY_TARGET;
	return k;
}

/* The IPv4 client subnet a.b.c.0/source. */
static struct codec_ecs client4(uint8_t a, uint8_t b, uint8_t c, unsigned source)
{
	struct codec_ecs e;

	memset(&e, 0, sizeof(e));
	e.family = CODEC_ECS_FAMILY_IP4;
	e.source = (uint8_t)source;
	e.addr[0] = a;
	e.addr[1] = source >= 16 ? b : 0;
	e.addr[2] = source >= 24 ? c : 0;
	return e;
}

static void put_scope(struct flat_cache *c, struct flat_cache_key k, const struct codec_ecs *at,
                      unsigned prefix, const union flat_cache_value *v)
{
	flat_cache_key_scope(&k, at->family, prefix, at->addr);
	if (flat_cache_put(c, &k, v, 1000) != 0) {
		fprintf(stderr, "flat_cache_put failed\n");
		exit(1);
	}
}

static struct flat_cache *make(void)
{
	struct flat_cache_conf conf = {
	        .max_bytes = (size_t)1 << 30,
	        .serve_stale_s = 86400,
	        .failure_ttl_s = 5,
	};
	struct flat_cache *c = NULL;

	if (flat_cache_new(&c, &conf) != 0) {
		fprintf(stderr, "flat_cache_new failed\n");
		exit(1);
	}
	return c;
}

static union flat_cache_value one_addr(void)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_ADDRS;
	v.result.qtype = CODEC_TYPE_A;
	v.result.n_addrs = 1;
	v.result.addrs[0][0] = 192;
	v.result.ttl = 3600;
	return v;
}

static int bench_mem(unsigned long targets, unsigned scopes)
{
	long page = sysconf(_SC_PAGESIZE);
	struct flat_cache *c = make();
	union flat_cache_value v = one_addr();
	struct flat_cache_stats st0, st1, st2;
	uint8_t name[32];

	flat_cache_stats(c, &st0);
	long rss0 = rss_pages();
	for (unsigned long t = 0; t < targets; t++) {
		struct flat_cache_key k = key_of(name, make_name(name, t));
		if (flat_cache_put(c, &k, &v, 1000) != 0)
			return 1;
	}
	flat_cache_stats(c, &st1);
	long rss1 = rss_pages();
	for (unsigned long t = 0; t < targets; t++) {
		struct flat_cache_key k = key_of(name, make_name(name, t));
		for (unsigned i = 0; i < scopes; i++) {
			struct codec_ecs at = client4(10, (uint8_t)(i >> 8), (uint8_t)i, 24);
			put_scope(c, k, &at, 24, &v);
		}
	}
	flat_cache_stats(c, &st2);
	long rss2 = rss_pages();
	double n = (double)st2.scoped;

	printf("targets=%lu scopes_per_target=%u entries=%zu scoped=%zu evictions=%llu\n", targets,
	       scopes, st2.entries, st2.scoped, (unsigned long long)st2.evictions);
	printf("plain_counted_bytes_per_entry=%.1f plain_rss_bytes_per_entry=%.1f\n",
	       (double)(st1.entry_bytes - st0.entry_bytes) / (double)targets,
	       (double)(rss1 - rss0) * (double)page / (double)targets);
	printf("scoped_counted_bytes_per_entry=%.1f (directories included, bucket arrays not)\n",
	       (double)(st2.entry_bytes - st1.entry_bytes) / n);
	printf("scoped_counted_bytes_per_entry_all=%.1f (bucket arrays included)\n",
	       (double)(st2.bytes - st1.bytes) / n);
	printf("scoped_rss_bytes_per_entry=%.1f\n", (double)(rss2 - rss1) * (double)page / n);
	flat_cache_free(c);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_hit(const char *kind, unsigned long lookups, unsigned scopes)
{
	struct flat_cache *c = make();
	union flat_cache_value v = one_addr();
	uint8_t name[32], tname[32];
	struct codec_ecs me = client4(198, 51, 100, 24);
	int want = FLAT_CACHE_HIT;
	unsigned want_scope = 0;
	bool plain = strcmp(kind, "plain") == 0;

	for (unsigned long t = 0; t < OTHERS; t++) {
		struct flat_cache_key k = key_of(name, make_name(name, t));
		if (flat_cache_put(c, &k, &v, 1000) != 0)
			return 1;
	}
	struct flat_cache_key k = key_of(tname, make_name(tname, OTHERS + 1));
	if (flat_cache_put(c, &k, &v, 1000) != 0)
		return 1;
	/* Other subnets' scopes: other /24s, and a /16 elsewhere. */
	for (unsigned i = 0; i < scopes; i++) {
		bool wide = i % 4 == 3;
		struct codec_ecs at = wide ? client4(11, (uint8_t)i, 0, 16)
		                           : client4(10, (uint8_t)(i >> 8), (uint8_t)i, 24);
		put_scope(c, k, &at, at.source, &v);
	}
	if (strcmp(kind, "s24") == 0) {
		put_scope(c, k, &me, 24, &v);
		want_scope = 24;
	} else if (strcmp(kind, "s16") == 0) {
		put_scope(c, k, &me, 16, &v);
		want_scope = 16;
	} else if (!plain && strcmp(kind, "s0") != 0) {
		fprintf(stderr, "hit KIND: plain, s24, s16 or s0\n");
		return 2;
	}

	unsigned long bad = 0;
	uint64_t t0 = now_ns();
	for (unsigned long i = 0; i < lookups; i++) {
		struct flat_cache_key q = k;
		struct flat_cache_hit hit;
		int st = plain ? flat_cache_get(c, &q, 2000, &hit)
		               : flat_cache_get_scoped(c, &q, &me, 2000, &hit);
		if (st != want || q.ecs[1] != want_scope)
			bad++;
	}
	uint64_t t1 = now_ns();
	struct flat_cache_peek pk;
	flat_cache_peek(c, &k, 2000, &pk);
	printf("kind=%s lookups=%lu scopes_on_target=%u bad=%lu ns_per_lookup=%.1f\n", kind,
	       lookups, pk.scopes, bad, (double)(t1 - t0) / (double)lookups);
	flat_cache_free(c);
	return bad != 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "mem") == 0)
		return bench_mem(argc > 2 ? strtoul(argv[2], NULL, 10) : 10000,
		                 argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 100);
	if (argc >= 3 && strcmp(argv[1], "hit") == 0)
		return bench_hit(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 1000000,
		                 argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 8);
	fprintf(stderr, "usage: cache_scoped mem [TARGETS [SCOPES]]\n"
	                "       cache_scoped hit plain|s24|s16|s0 [LOOKUPS [SCOPES]]\n");
	return 2;
}
