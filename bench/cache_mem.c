/* bench/cache_mem.c - RSS cost of one target-cache entry.
 *
 * Creates a flat_cache (flatten/cache.h) bounded at 1 GiB, so nothing is
 * evicted, inserts N target entries (default 1 000 000): 20-byte names in
 * wire form (NNNNNNNNNNNN.bench: see make_name), qtype A,
 * one address each, and prints how much the resident set grew per entry
 * (/proc/self/statm, before the cache is created and after the last put),
 * next to what the cache itself counts (flat_cache_stats bytes).
 *
 * Built by bench/run.sh against the Release libraries:
 *   cc -O2 -I. bench/cache_mem.c build-bench/flatten/libapex_flatten.a \
 *      build-bench/codec/libapex_codec.a -lpthread
 * Usage: cache_mem [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flatten/cache.h"

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

/* A 20-byte wire name: \x0c + 12 digits, \x05 "bench", \0 = 1+12+1+5+1. */
static size_t make_name(uint8_t *out, unsigned long i)
{
	char label[24];
	snprintf(label, sizeof(label), "%012lu", i % 1000000000000UL);
	size_t n = 0;
	out[n++] = 12;
	memcpy(out + n, label, 12);
	n += 12;
	out[n++] = 5;
	memcpy(out + n, "bench", 5);
	n += 5;
	out[n++] = 0;
	return n;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000UL;
	long page = sysconf(_SC_PAGESIZE);
	long before = rss_pages();

	struct flat_cache_conf conf = {
	        .max_bytes = (size_t)1 << 30,
	        .serve_stale_s = 86400,
	        .failure_ttl_s = 5,
	};
	struct flat_cache *c = NULL;
	int rc = flat_cache_new(&c, &conf);
	if (rc != 0) {
		fprintf(stderr, "flat_cache_new: %d\n", rc);
		return 1;
	}
	long after_new = rss_pages();

	static union flat_cache_value v; /* ~1 KiB: keep it off the stack */
	v.result.kind = FLAT_RES_ADDRS;
	v.result.qtype = CODEC_TYPE_A;
	v.result.n_addrs = 1;
	v.result.ttl = 3600;

	uint8_t name[32];
	unsigned long failed = 0;
	for (unsigned long i = 0; i < n; i++) {
		struct flat_cache_key k;
		memset(&k, 0, sizeof(k));
		k.len = make_name(name, i);
		k.name = name;
		k.type = CODEC_TYPE_A;
		k.kind = FLAT_KEY_TARGET;
		v.result.addrs[0][0] = 10;
		v.result.addrs[0][1] = (uint8_t)(i >> 16);
		v.result.addrs[0][2] = (uint8_t)(i >> 8);
		v.result.addrs[0][3] = (uint8_t)i;
		if (flat_cache_put(c, &k, &v, 1000) != 0)
			failed++;
	}
	long after = rss_pages();

	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	printf("entries_put=%lu failed=%lu entries=%zu evictions=%llu\n", n, failed, st.entries,
	       (unsigned long long)st.evictions);
	printf("rss_before_kib=%ld rss_after_new_kib=%ld rss_after_kib=%ld\n", before * page / 1024,
	       after_new * page / 1024, after * page / 1024);
	printf("rss_bytes_per_entry=%.1f (from before flat_cache_new)\n",
	       (double)(after - before) * (double)page / (double)n);
	printf("rss_bytes_per_entry_excl_tables=%.1f (from after flat_cache_new)\n",
	       (double)(after - after_new) * (double)page / (double)n);
	printf("cache_counted_bytes_per_entry=%.1f (flat_cache_stats bytes / entries)\n",
	       st.entries ? (double)st.bytes / (double)st.entries : 0.0);
	flat_cache_free(c);
	return failed ? 1 : 0;
}
