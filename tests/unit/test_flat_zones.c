/* Unit tests for flatten/zones: which configured zone owns a name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "flatten/zones.h"
#include "tests/unit/helpers.h"

#define W(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static struct flat_zones *make(void)
{
	static const uint8_t a[] = "\7example\3com"; /* + root from the literal's NUL */
	static const uint8_t b[] = "\3sub\7example\3com";
	static const uint8_t c[] = "\4TEST";
	const uint8_t *names[] = {a, b, c};
	size_t lens[] = {sizeof(a), sizeof(b), sizeof(c)};
	struct flat_zones *z = NULL;

	assert_int_equal(flat_zones_new(&z, names, lens, 3), 0);
	return z;
}

static void test_zones_apex_found_as_apex(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx = 99;
	bool apex = false;

	assert_int_equal(flat_zones_find(z, W("\7example\3com\0"), &idx, &apex), 0);
	assert_int_equal(idx, 0);
	assert_true(apex);
	flat_zones_free(z);
}

static void test_zones_get_exact_only(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx = 99;

	assert_int_equal(flat_zones_get(z, W("\3SUB\7Example\3com\0"), &idx), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(flat_zones_get(z, W("\3www\7example\3com\0"), &idx), -ENOENT);
	assert_int_equal(flat_zones_get(z, W("\3com\0"), &idx), -ENOENT);
	assert_int_equal(flat_zones_get(z, W("\77x\0"), &idx), -EINVAL);
	flat_zones_free(z);
}

static void test_zones_mixed_case_name_found(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx = 99;
	bool apex = true;

	assert_int_equal(flat_zones_find(z, W("\3WwW\7ExAmPlE\3cOm\0"), &idx, &apex), 0);
	assert_int_equal(idx, 0);
	assert_false(apex);
	assert_int_equal(flat_zones_find(z, W("\4test\0"), &idx, &apex), 0);
	assert_int_equal(idx, 2);
	assert_true(apex);
	flat_zones_free(z);
}

static void test_zones_deepest_zone_wins(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx = 99;
	bool apex = true;

	assert_int_equal(flat_zones_find(z, W("\1a\3sub\7example\3com\0"), &idx, &apex), 0);
	assert_int_equal(idx, 1);
	assert_false(apex);
	assert_int_equal(flat_zones_find(z, W("\3sub\7example\3com\0"), &idx, &apex), 0);
	assert_int_equal(idx, 1);
	assert_true(apex);
	flat_zones_free(z);
}

static void test_zones_foreign_name_not_found(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx;
	bool apex;

	assert_int_equal(flat_zones_find(z, W("\7example\3net\0"), &idx, &apex), -ENOENT);
	assert_int_equal(flat_zones_find(z, W("\3com\0"), &idx, &apex), -ENOENT);
	assert_int_equal(flat_zones_find(z, W("\0"), &idx, &apex), -ENOENT);
	/* A label that only ends like a zone is not inside it. */
	assert_int_equal(flat_zones_find(z, W("\12notexample\3com\0"), &idx, &apex), -ENOENT);
	flat_zones_free(z);
}

static void test_zones_malformed_rejected(void **state)
{
	(void)state;
	struct flat_zones *z = make();
	size_t idx;
	bool apex;

	assert_int_equal(flat_zones_find(z, W("\7exam"), &idx, &apex), -EINVAL);
	assert_int_equal(flat_zones_find(z, W("\3com\0\0"), &idx, &apex), -EINVAL);
	assert_int_equal(flat_zones_find(z, W("\100aaaa\0"), &idx, &apex), -EINVAL);
	flat_zones_free(z);

	static const uint8_t d[] = "\3dup";
	static const uint8_t e[] = "\3DUP";
	const uint8_t *names[] = {d, e};
	size_t lens[] = {sizeof(d), sizeof(e)};
	assert_int_equal(flat_zones_new(&z, names, lens, 2), -EEXIST);
}

static void test_zones_many_zones_all_found(void **state)
{
	(void)state;
	enum { N = 300 };
	static uint8_t bufs[N][16];
	const uint8_t *names[N];
	size_t lens[N];
	struct flat_zones *z = NULL;

	for (int i = 0; i < N; i++) {
		int n = snprintf((char *)bufs[i] + 1, sizeof(bufs[i]) - 2, "z%d", i);
		bufs[i][0] = (uint8_t)n;
		bufs[i][n + 1] = 0;
		names[i] = bufs[i];
		lens[i] = (size_t)n + 2;
	}
	assert_int_equal(flat_zones_new(&z, names, lens, N), 0);
	for (int i = 0; i < N; i++) {
		size_t idx;
		bool apex;
		assert_int_equal(flat_zones_find(z, names[i], lens[i], &idx, &apex), 0);
		assert_int_equal(idx, (size_t)i);
	}
	flat_zones_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_zones_apex_found_as_apex),
	        cmocka_unit_test(test_zones_get_exact_only),
	        cmocka_unit_test(test_zones_mixed_case_name_found),
	        cmocka_unit_test(test_zones_deepest_zone_wins),
	        cmocka_unit_test(test_zones_foreign_name_not_found),
	        cmocka_unit_test(test_zones_malformed_rejected),
	        cmocka_unit_test(test_zones_many_zones_all_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
