/* Unit tests for flatten/zones: which configured zone owns a name. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/wire.h"
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

/* Appends a label of n copies of c (n <= 63) to name at *len. */
static void put_label(uint8_t *name, size_t *len, size_t n, char c)
{
	name[(*len)++] = (uint8_t)n;
	memset(name + *len, c, n);
	*len += n;
}

/* A 255-octet name: labels of 63, 63, 63 and 61 octets of c. */
static size_t long_name(uint8_t *out, char c)
{
	size_t len = 0;

	put_label(out, &len, 63, c);
	put_label(out, &len, 63, c);
	put_label(out, &len, 63, c);
	put_label(out, &len, 61, c);
	out[len++] = 0;
	return len;
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
	/* Empty, a label past the end, the root inside, over 255 octets. */
	assert_int_equal(flat_zones_find(z, (const uint8_t *)"", 0, &idx, &apex), -EINVAL);
	assert_int_equal(flat_zones_find(z, W("\5ab"), &idx, &apex), -EINVAL);
	assert_int_equal(flat_zones_find(z, W("\0\4test\0"), &idx, &apex), -EINVAL);
	uint8_t big[CODEC_MAX_NAME + 1];
	size_t blen = long_name(big, 'a');
	memmove(big + 1, big, blen);
	big[0] = 0; /* a root label in front: 256 octets in all */
	assert_int_equal(flat_zones_find(z, big, blen + 1, &idx, &apex), -EINVAL);
	assert_int_equal(flat_zones_get(z, big, blen + 1, &idx), -EINVAL);
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

static void test_zones_names_at_255_octets(void **state)
{
	(void)state;
	uint8_t apex[CODEC_MAX_NAME], q[CODEC_MAX_NAME];
	size_t alen = 0, qlen;
	struct flat_zones *z = NULL;

	/* The zone is the last two labels of a 255-octet name, uppercase. */
	put_label(apex, &alen, 63, 'X');
	put_label(apex, &alen, 61, 'X');
	apex[alen++] = 0;
	const uint8_t *names[] = {apex};
	size_t lens[] = {alen};
	assert_int_equal(flat_zones_new(&z, names, lens, 1), 0);

	qlen = long_name(q, 'x');
	assert_int_equal(qlen, CODEC_MAX_NAME);
	size_t idx = 99;
	bool is_apex = true;
	assert_int_equal(flat_zones_find(z, q, qlen, &idx, &is_apex), 0);
	assert_int_equal(idx, 0);
	assert_false(is_apex);
	/* One octet changed in the zone's part: outside. */
	q[qlen - 2] = 'y';
	assert_int_equal(flat_zones_find(z, q, qlen, &idx, &is_apex), -ENOENT);
	flat_zones_free(z);

	/* A 255-octet apex is found as itself, in any case. */
	qlen = long_name(q, 'a');
	const uint8_t *n2[] = {q};
	size_t l2[] = {qlen};
	assert_int_equal(flat_zones_new(&z, n2, l2, 1), 0);
	qlen = long_name(q, 'A');
	assert_int_equal(flat_zones_find(z, q, qlen, &idx, &is_apex), 0);
	assert_true(is_apex);
	assert_int_equal(flat_zones_get(z, q, qlen, &idx), 0);
	flat_zones_free(z);
}

static void test_zones_most_labels(void **state)
{
	(void)state;
	/* 127 one-octet labels and the root: 255 octets, the most labels a
	 * name can have; the zone is its last label. */
	uint8_t q[CODEC_MAX_NAME];
	size_t qlen = 0;
	for (int i = 0; i < 127; i++)
		put_label(q, &qlen, 1, i == 126 ? 'Z' : 'a');
	q[qlen++] = 0;
	assert_int_equal(qlen, CODEC_MAX_NAME);

	static const uint8_t root[] = "";
	static const uint8_t zz[] = "\1z";
	const uint8_t *names[] = {root, zz};
	size_t lens[] = {1, sizeof(zz)};
	struct flat_zones *z = NULL;
	assert_int_equal(flat_zones_new(&z, names, lens, 2), 0);
	size_t idx = 99;
	bool apex = true;
	assert_int_equal(flat_zones_find(z, q, qlen, &idx, &apex), 0);
	assert_int_equal(idx, 1);
	assert_false(apex);
	/* Not under z: the root zone holds it. */
	q[qlen - 2] = 'y';
	assert_int_equal(flat_zones_find(z, q, qlen, &idx, &apex), 0);
	assert_int_equal(idx, 0);
	assert_false(apex);
	flat_zones_free(z);
}

/* The answer the zones must give, found the slow way: every zone against
 * every suffix, folding case, the longest suffix that is a zone. */
static int slow_find(const uint8_t *const *zn, const size_t *zl, size_t nz, const uint8_t *name,
                     size_t len, size_t *index, bool *is_apex)
{
	for (size_t pos = 0;; pos += 1 + (size_t)name[pos]) {
		for (size_t k = 0; k < nz; k++) {
			if (zl[k] != len - pos)
				continue;
			size_t i = 0;
			while (i < zl[k] && tolower(zn[k][i]) == tolower(name[pos + i]))
				i++;
			if (i == zl[k]) {
				*index = k;
				*is_apex = pos == 0;
				return 0;
			}
		}
		if (name[pos] == 0)
			return -ENOENT;
	}
}

/* Names made of labels from a small alphabet in random case, against
 * nested zones of several lengths: the one-pass hash and the length
 * filter find exactly the zone the slow search finds. */
static void test_zones_same_as_slow_search(void **state)
{
	(void)state;
	static const char *const labels[] = {"a", "B", "cd", "Cd", "xyz", "example", "COM", "net"};
	enum { NZ = 24, NQ = 20000 };
	static uint8_t zbuf[NZ][CODEC_MAX_NAME];
	const uint8_t *zn[NZ];
	size_t zl[NZ], nz = 0;
	unsigned seed = 12345;
	struct flat_zones *z = NULL;

	while (nz < NZ) {
		size_t len = 0;
		unsigned depth = (seed = seed * 1103515245u + 12345u) >> 16 & 3;
		for (unsigned d = 0; d < depth; d++) {
			const char *l = labels[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
			zbuf[nz][len++] = (uint8_t)strlen(l);
			memcpy(zbuf[nz] + len, l, strlen(l));
			len += strlen(l);
		}
		zbuf[nz][len++] = 0;
		size_t idx;
		bool apex;
		/* Skip duplicates (in any case). */
		if (nz > 0 && slow_find(zn, zl, nz, zbuf[nz], len, &idx, &apex) == 0 && apex)
			continue;
		zn[nz] = zbuf[nz];
		zl[nz++] = len;
	}
	assert_int_equal(flat_zones_new(&z, zn, zl, NZ), 0);
	for (int n = 0; n < NQ; n++) {
		uint8_t q[CODEC_MAX_NAME];
		size_t len = 0;
		unsigned depth = (seed = seed * 1103515245u + 12345u) >> 16 & 7;
		for (unsigned d = 0; d < depth; d++) {
			const char *l = labels[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
			q[len++] = (uint8_t)strlen(l);
			for (size_t i = 0; l[i] != '\0'; i++) {
				seed = seed * 1103515245u + 12345u;
				q[len++] =
				        (uint8_t)((seed >> 20 & 1) ? toupper(l[i]) : tolower(l[i]));
			}
		}
		q[len++] = 0;
		size_t want_idx = 0, got_idx = 0;
		bool want_apex = false, got_apex = false;
		int want = slow_find(zn, zl, NZ, q, len, &want_idx, &want_apex);
		int got = flat_zones_find(z, q, len, &got_idx, &got_apex);
		assert_int_equal(got, want);
		if (want == 0) {
			assert_int_equal(got_idx, want_idx);
			assert_int_equal(got_apex, want_apex);
		}
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
	        cmocka_unit_test(test_zones_names_at_255_octets),
	        cmocka_unit_test(test_zones_most_labels),
	        cmocka_unit_test(test_zones_same_as_slow_search),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
