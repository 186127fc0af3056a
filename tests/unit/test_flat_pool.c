/* Unit tests for flatten/pool: merging a pool's per-target results. */
#include <stdio.h>
#include <string.h>

#include "flatten/pool.h"
#include "tests/unit/helpers.h"

#define W(s) ((const uint8_t *)(s)), (sizeof(s))

/* An A result with n addresses 10.0.base.i (i from 1). */
static void res_a(struct flat_result *r, unsigned base, unsigned n)
{
	memset(r, 0, sizeof(*r));
	r->kind = FLAT_RES_ADDRS;
	r->qtype = 1;
	r->n_addrs = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		r->addrs[i][0] = 10;
		r->addrs[i][2] = (uint8_t)base;
		r->addrs[i][3] = (uint8_t)(i + 1);
	}
}

static void res_kind(struct flat_result *r, enum flat_result_kind kind, uint16_t qtype)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->qtype = qtype;
	if (kind == FLAT_RES_FAIL) {
		r->ede = 22;
		snprintf(r->why, sizeof(r->why), "target %u dead", qtype);
	}
}

static bool has(const struct flat_result *r, unsigned base, unsigned last)
{
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (r->addrs[i][2] == base && r->addrs[i][3] == last)
			return true;
	return false;
}

/* Health: every address of base 1 (10.0.1.x) is down. */
static bool down_base1(void *ctx, const uint8_t *addr, uint16_t qtype)
{
	unsigned *calls = ctx;
	(*calls)++;
	return qtype == 1 && addr[2] == 1;
}

static bool down_all(void *ctx, const uint8_t *addr, uint16_t qtype)
{
	(void)ctx;
	(void)addr;
	(void)qtype;
	return true;
}

static void test_pool_one_target_passes_through(void **state)
{
	(void)state;
	struct flat_result a, buf;
	struct flat_pool_in in[1] = {{&a, 300, false}};
	struct flat_pool_out out;

	res_a(&a, 1, 3);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 1, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &a); /* no copy for a pool of one */
	assert_int_equal(out.ttl, 300);
	assert_int_equal(out.used, 1);
	assert_false(out.fail_open);
}

static void test_pool_union_dedups_and_takes_min_ttl(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 300, false}, {&b, 60, false}};
	struct flat_pool_out out;

	res_a(&a, 1, 2);
	res_a(&b, 1, 3); /* 10.0.1.1 and .2 again, and .3 */
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &buf);
	assert_int_equal(r->kind, FLAT_RES_ADDRS);
	assert_int_equal(r->n_addrs, 3);
	assert_true(has(r, 1, 1) && has(r, 1, 2) && has(r, 1, 3));
	assert_int_equal(out.ttl, 60);
	assert_int_equal(out.used, 3);
}

static void test_pool_union_caps_at_64(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 30, false}, {&b, 40, false}};
	struct flat_pool_out out;

	res_a(&a, 1, 40);
	res_a(&b, 2, 40);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, NULL, NULL, &buf, &out);
	assert_int_equal(r->n_addrs, FLAT_MAX_ADDRS);
	assert_true(has(r, 1, 40)); /* the first target's all */
	assert_true(has(r, 2, 24));
	assert_false(has(r, 2, 25));
	assert_int_equal(out.ttl, 30);
}

static void test_pool_union_skips_failed_target(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 0, false}, {&b, 120, false}};
	struct flat_pool_out out;

	res_kind(&a, FLAT_RES_FAIL, 1);
	res_a(&b, 2, 2);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &b);
	assert_int_equal(out.ttl, 120);
	assert_int_equal(out.used, 2);
}

static void test_pool_all_failed_is_first_failure(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 0, false}, {&b, 0, false}};
	struct flat_pool_out out;

	res_kind(&a, FLAT_RES_FAIL, 1);
	res_kind(&b, FLAT_RES_FAIL, 1);
	b.ede = 9;
	for (int mode = 0; mode < 2; mode++) {
		const struct flat_result *r =
		        flat_pool_merge((enum flat_pool_mode)mode, in, 2, NULL, NULL, &buf, &out);
		assert_ptr_equal(r, &a);
		assert_int_equal(r->kind, FLAT_RES_FAIL);
		assert_int_equal(r->ede, 22);
		assert_int_equal(out.used, 0);
	}
}

static void test_pool_nodata_when_none_has_addresses(void **state)
{
	(void)state;
	struct flat_result a, b, c, buf;
	struct flat_pool_in in[3] = {{&a, 0, false}, {&b, 300, false}, {&c, 30, false}};
	struct flat_pool_out out;

	res_kind(&a, FLAT_RES_FAIL, 28);
	res_kind(&b, FLAT_RES_NODATA, 28);
	res_kind(&c, FLAT_RES_NXDOMAIN, 28);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 3, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &b);
	assert_int_equal(out.ttl, 30);
	assert_int_equal(out.used, 6);
}

static void test_pool_failover_first_with_addresses(void **state)
{
	(void)state;
	struct flat_result a, b, c, buf;
	struct flat_pool_in in[3] = {{&a, 10, false}, {&b, 200, false}, {&c, 20, false}};
	struct flat_pool_out out;

	res_kind(&a, FLAT_RES_NODATA, 1);
	res_a(&b, 2, 2);
	res_a(&c, 3, 2);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_FAILOVER, in, 3, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &b);
	assert_int_equal(out.ttl, 200); /* the target used, not the NODATA one */
	assert_int_equal(out.used, 2);
}

static void test_pool_health_filters_union(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 100, false}, {&b, 50, false}};
	struct flat_pool_out out;
	unsigned calls = 0;

	res_a(&a, 1, 2);
	res_a(&b, 2, 1);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, down_base1, &calls, &buf, &out);
	assert_int_equal(r->n_addrs, 1);
	assert_true(has(r, 2, 1));
	assert_int_equal(out.used, 2); /* the target with only down addresses is not used */
	assert_int_equal(out.ttl, 50);
	assert_int_equal(out.n_down, 2);
	assert_false(out.fail_open);
	assert_true(calls >= 3);
}

static void test_pool_health_failover_switches(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 100, false}, {&b, 50, false}};
	struct flat_pool_out out;
	unsigned calls = 0;

	res_a(&a, 1, 2);
	res_a(&b, 2, 2);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_FAILOVER, in, 2, down_base1, &calls, &buf, &out);
	assert_int_equal(r->n_addrs, 2);
	assert_true(has(r, 2, 1) && has(r, 2, 2));
	assert_int_equal(out.used, 2);
	assert_int_equal(out.ttl, 50);
}

static void test_pool_health_single_target_filtered(void **state)
{
	(void)state;
	struct flat_result a, buf;
	struct flat_pool_in in[1] = {{&a, 100, false}};
	struct flat_pool_out out;
	unsigned calls = 0;

	res_a(&a, 1, 2);
	a.addrs[1][2] = 2; /* 10.0.1.1 down, 10.0.2.2 up */
	for (int mode = 0; mode < 2; mode++) {
		const struct flat_result *r = flat_pool_merge((enum flat_pool_mode)mode, in, 1,
		                                              down_base1, &calls, &buf, &out);
		assert_ptr_equal(r, &buf);
		assert_int_equal(r->n_addrs, 1);
		assert_true(has(r, 2, 2));
	}
}

static void test_pool_fail_open(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 100, false}, {&b, 50, false}};
	struct flat_pool_out out;

	res_a(&a, 1, 2);
	res_a(&b, 2, 1);
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, down_all, NULL, &buf, &out);
	assert_true(out.fail_open);
	assert_int_equal(r->n_addrs, 3);
	assert_int_equal(out.ttl, 50);
	r = flat_pool_merge(FLAT_POOL_FAILOVER, in, 2, down_all, NULL, &buf, &out);
	assert_true(out.fail_open);
	assert_ptr_equal(r, &a);
	assert_int_equal(out.ttl, 100);
	assert_int_equal(out.used, 1);
}

static void test_pool_failover_prefers_fresh_to_stale(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 0, true}, {&b, 50, false}};
	struct flat_pool_out out;

	res_a(&a, 1, 2);
	res_a(&b, 2, 1);
	/* The first target failed (its stale value): failover goes on. */
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_FAILOVER, in, 2, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &b);
	assert_int_equal(out.used, 2);
	/* Union serves both, the stale one's TTL 0 the minimum. */
	r = flat_pool_merge(FLAT_POOL_UNION, in, 2, NULL, NULL, &buf, &out);
	assert_int_equal(r->n_addrs, 3);
	assert_int_equal(out.ttl, 0);
	assert_int_equal(out.used, 3);
	/* Only stale values: the first of them. */
	in[1].stale = true;
	r = flat_pool_merge(FLAT_POOL_FAILOVER, in, 2, NULL, NULL, &buf, &out);
	assert_ptr_equal(r, &a);
	/* Health leaves nothing fresh up: a stale one that is up. */
	in[0].stale = false;
	unsigned calls = 0;
	r = flat_pool_merge(FLAT_POOL_FAILOVER, in, 2, down_base1, &calls, &buf, &out);
	assert_true(has(r, 2, 1));
	assert_false(out.fail_open);
}

static void test_pool_https_first_rrset_unfiltered(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 100, false}, {&b, 50, false}};
	struct flat_pool_out out;

	res_kind(&a, FLAT_RES_NODATA, 65);
	res_kind(&b, FLAT_RES_ADDRS, 65);
	b.n_addrs = 1;
	b.rdata_len = 3;
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, down_all, NULL, &buf, &out);
	assert_ptr_equal(r, &b);
	assert_int_equal(out.ttl, 50);
	assert_false(out.fail_open);
}

static void test_pool_aaaa_dedup_16_octets(void **state)
{
	(void)state;
	struct flat_result a, b, buf;
	struct flat_pool_in in[2] = {{&a, 100, false}, {&b, 50, false}};
	struct flat_pool_out out;

	memset(&a, 0, sizeof(a));
	a.kind = FLAT_RES_ADDRS;
	a.qtype = 28;
	a.n_addrs = 1;
	a.addrs[0][15] = 1;
	b = a;
	b.n_addrs = 2;
	b.addrs[1][0] = 0x20; /* differs only in the first octet */
	b.addrs[1][15] = 1;
	const struct flat_result *r =
	        flat_pool_merge(FLAT_POOL_UNION, in, 2, NULL, NULL, &buf, &out);
	assert_int_equal(r->n_addrs, 2);
}

static void test_pool_names_blob(void **state)
{
	(void)state;
	static const uint8_t blob[] = "\1a\3net\0\1b\3com\0";
	size_t off = 0, len;
	const uint8_t *name;

	assert_int_equal(flat_pool_count(blob, sizeof(blob) - 1), 2);
	assert_true(flat_pool_next(blob, sizeof(blob) - 1, &off, &name, &len));
	assert_int_equal(len, 7);
	assert_true(flat_pool_next(blob, sizeof(blob) - 1, &off, &name, &len));
	assert_memory_equal(name, "\1b\3com\0", 7);
	assert_false(flat_pool_next(blob, sizeof(blob) - 1, &off, &name, &len));
	/* Truncated, a bad label length, empty: malformed. */
	assert_int_equal(flat_pool_count(blob, sizeof(blob) - 2), 0);
	assert_int_equal(flat_pool_count((const uint8_t *)"\100a\0", 3), 0);
	assert_int_equal(flat_pool_count(blob, 0), 0);
	/* More than FLAT_POOL_MAX names. */
	uint8_t many[4 * (FLAT_POOL_MAX + 1)];
	for (unsigned i = 0; i <= FLAT_POOL_MAX; i++)
		memcpy(many + 4 * i, "\2aa\0", 4);
	assert_int_equal(flat_pool_count(many, 4 * FLAT_POOL_MAX), FLAT_POOL_MAX);
	assert_int_equal(flat_pool_count(many, sizeof(many)), 0);
}

static void test_pool_canonical_order(void **state)
{
	(void)state;
	/* RFC 4034 6.1's example order, a few of it. */
	assert_true(flat_pool_name_cmp(W("\7example\0"), W("\1a\7example\0")) < 0);
	assert_true(flat_pool_name_cmp(W("\1a\7example\0"), W("\10yljkjljk\1a\7example\0")) < 0);
	assert_true(flat_pool_name_cmp(W("\1Z\1a\7example\0"), W("\4zABC\1a\7EXAMPLE\0")) < 0);
	assert_true(flat_pool_name_cmp(W("\4zABC\1a\7EXAMPLE\0"), W("\1z\7example\0")) < 0);
	assert_true(flat_pool_name_cmp(W("\1z\7example\0"), W("\1\001\1z\7example\0")) < 0);
	assert_true(flat_pool_name_cmp(W("\1*\1z\7example\0"), W("\1\200\1z\7example\0")) < 0);
	/* Not left to right: the rightmost label decides first. */
	assert_true(flat_pool_name_cmp(W("\1z\5cdn-a\3net\0"), W("\1a\5cdn-b\3net\0")) < 0);
	assert_int_equal(flat_pool_name_cmp(W("\1a\3NET\0"), W("\1A\3net\0")), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pool_one_target_passes_through),
	        cmocka_unit_test(test_pool_union_dedups_and_takes_min_ttl),
	        cmocka_unit_test(test_pool_union_caps_at_64),
	        cmocka_unit_test(test_pool_union_skips_failed_target),
	        cmocka_unit_test(test_pool_all_failed_is_first_failure),
	        cmocka_unit_test(test_pool_nodata_when_none_has_addresses),
	        cmocka_unit_test(test_pool_failover_first_with_addresses),
	        cmocka_unit_test(test_pool_health_filters_union),
	        cmocka_unit_test(test_pool_health_failover_switches),
	        cmocka_unit_test(test_pool_health_single_target_filtered),
	        cmocka_unit_test(test_pool_fail_open),
	        cmocka_unit_test(test_pool_failover_prefers_fresh_to_stale),
	        cmocka_unit_test(test_pool_https_first_rrset_unfiltered),
	        cmocka_unit_test(test_pool_aaaa_dedup_16_octets),
	        cmocka_unit_test(test_pool_names_blob),
	        cmocka_unit_test(test_pool_canonical_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
