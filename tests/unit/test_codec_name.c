/* tests/unit/test_codec_name.c - wire names: skip, unpack, equal across
 * compression, is (against a standalone name), lowercase, presentation
 * format.
 */
#include <errno.h>
#include <string.h>

#include "codec/name.h"
#include "codec/wire.h"
#include "tests/unit/helpers.h"

/* Header, then at 12 "example.com.", at 25 "WWW" + pointer to 12, at 31 a
 * pointer to 25, at 33 "mail.EXAMPLE.COM." uncompressed, at 51 "a" +
 * pointer to 31 (two hops). */
static const char *const names_hex = "0000 0000 0000 0000 0000 0000"
                                     "076578616d706c6503636f6d00"           /* 12 */
                                     "03575757c00c"                         /* 25 */
                                     "c019"                                 /* 31 */
                                     "046d61696c074558414d504c4503434f4d00" /* 33 */
                                     "0161c01f";                            /* 51 */

static size_t load(uint8_t *m, size_t cap)
{
	long n = th_hex(names_hex, m, cap);

	assert_int_equal(n, 55);
	return (size_t)n;
}

static void test_name_skip_plain_reports_length_and_end(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	size_t end = 0;

	assert_int_equal(codec_name_skip(m, n, 12, &end), 13);
	assert_int_equal(end, 25);
	assert_int_equal(codec_name_skip(m, n, 33, &end), 18);
	assert_int_equal(end, 51);
}

static void test_name_skip_compressed_ends_after_first_pointer(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	size_t end = 0;

	assert_int_equal(codec_name_skip(m, n, 25, &end), 17);
	assert_int_equal(end, 31);
	assert_int_equal(codec_name_skip(m, n, 31, &end), 17);
	assert_int_equal(end, 33);
	assert_int_equal(codec_name_skip(m, n, 51, &end), 19);
	assert_int_equal(end, 55);
	/* end may be NULL. */
	assert_int_equal(codec_name_skip(m, n, 51, NULL), 19);
}

static void test_name_unpack_compressed_preserves_case(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	uint8_t out[CODEC_MAX_NAME];
	uint8_t want[32];
	long wn = th_hex("0161 03575757 076578616d706c65 03636f6d 00", want, sizeof(want));

	assert_int_equal(codec_name_unpack(m, n, 51, out), wn);
	assert_memory_equal(out, want, (size_t)wn);
}

static void test_name_unpack_root_gives_one_octet(void **state)
{
	(void)state;
	uint8_t m[16] = {0};
	uint8_t out[CODEC_MAX_NAME];

	assert_int_equal(codec_name_unpack(m, 13, 12, out), 1);
	assert_int_equal(out[0], 0);
}

static void test_name_equal_across_compression_true(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	uint8_t other[64];
	long on = th_hex("0000 0000 0000 0000 0000 0000 03777777 076578616d706c65 03636f6d 00",
	                 other, sizeof(other));

	/* "WWW" + pointer vs pointer to it vs a plain lowercase copy. */
	assert_int_equal(codec_name_equal(m, n, 25, m, n, 31), 1);
	assert_int_equal(codec_name_equal(m, n, 25, other, (size_t)on, 12), 1);
	assert_int_equal(codec_name_equal(other, (size_t)on, 12, m, n, 31), 1);
}

static void test_name_equal_case_insensitive_true(void **state)
{
	(void)state;
	uint8_t a[64], b[64];
	long an = th_hex("0000 0000 0000 0000 0000 0000 046d61696c 076578616d706c65 03636f6d 00", a,
	                 sizeof(a));
	long bn = th_hex("0000 0000 0000 0000 0000 0000 044d61496c 074578416d506c45 0363 4f6d 00",
	                 b, sizeof(b));

	assert_int_equal(codec_name_equal(a, (size_t)an, 12, b, (size_t)bn, 12), 1);
}

static void test_name_equal_different_names_false(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	uint8_t c[64];
	/* Same octets, different label split: "ab.c." vs "a.bc." */
	long cn = th_hex("0000 0000 0000 0000 0000 0000 02616201 6300 0161 02626300", c, sizeof(c));

	assert_int_equal(codec_name_equal(m, n, 12, m, n, 25), 0);
	assert_int_equal(codec_name_equal(m, n, 25, m, n, 51), 0);
	assert_int_equal(codec_name_equal(c, (size_t)cn, 12, c, (size_t)cn, 18), 0);
	/* Non-ASCII octets are not folded: 0xc4 vs 0xe4. */
	uint8_t d[32];
	long dn = th_hex("0000 0000 0000 0000 0000 0000 01c400 01e400", d, sizeof(d));

	assert_int_equal(codec_name_equal(d, (size_t)dn, 12, d, (size_t)dn, 15), 0);
}

static void test_name_equal_malformed_ebadmsg(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	uint8_t bad[32];
	long bn = th_hex("0000 0000 0000 0000 0000 0000 c00c", bad, sizeof(bad));

	assert_int_equal(codec_name_equal(m, n, 12, bad, (size_t)bn, 12), -EBADMSG);
	assert_int_equal(codec_name_equal(bad, (size_t)bn, 12, m, n, 12), -EBADMSG);
}

static void test_name_is_compressed_owner_matches_any_case(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	static const uint8_t www[] = "\3www\7example\3com";
	static const uint8_t mail[] = "\4MAIL\7example\3com";

	/* Two hops of compression, "WWW" in the message, lowercase given. */
	assert_true(codec_name_is(m, n, 31, www, sizeof(www)));
	assert_true(codec_name_is(m, n, 25, www, sizeof(www)));
	assert_true(codec_name_is(m, n, 33, mail, sizeof(mail)));
}

static void test_name_is_other_name_or_malformed_false(void **state)
{
	(void)state;
	uint8_t m[128];
	size_t n = load(m, sizeof(m));
	static const uint8_t www[] = "\3www\7example\3com";
	uint8_t bad[32];
	long bn = th_hex("0000 0000 0000 0000 0000 0000 c00c", bad, sizeof(bad));

	assert_false(codec_name_is(m, n, 12, www, sizeof(www)));
	assert_false(codec_name_is(m, n, 51, www, sizeof(www)));
	/* A prefix of the name is another name. */
	assert_false(codec_name_is(m, n, 25, www, sizeof(www) - 1));
	assert_false(codec_name_is(bad, (size_t)bn, 12, www, sizeof(www)));
}

struct bad_name {
	const char *what;
	const char *hex;
	size_t off;
};

static const struct bad_name bad_names[] = {
        {"offset past the end", "0000 0000 0000 0000 0000 0000", 12},
        {"no root", "0000 0000 0000 0000 0000 0000 0161", 12},
        {"label past end", "0000 0000 0000 0000 0000 0000 0561 62", 12},
        {"self pointer", "0000 0000 0000 0000 0000 0000 c00c", 12},
        {"forward pointer", "0000 0000 0000 0000 0000 0000 c00e 00", 12},
        {"pointer into header", "0000 0000 0000 0000 0000 0000 c000", 12},
        {"pointer to offset 11", "0000 0000 0000 0000 0000 0000 c00b", 12},
        {"loop a<->b", "0000 0000 0000 0000 0000 0000 0161 c010 0162 c00c", 16},
        {"pointer within own name", "0000 0000 0000 0000 0000 0000 0161 0162 c00e", 12},
        {"half pointer", "0000 0000 0000 0000 0000 0000 00 c0", 13},
        {"type 01", "0000 0000 0000 0000 0000 0000 4100", 12},
        {"type 10", "0000 0000 0000 0000 0000 0000 8100", 12},
};

static void test_name_skip_malformed_table_rejected(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		uint8_t m[64];
		uint8_t out[CODEC_MAX_NAME];
		long n = th_hex(bad_names[i].hex, m, sizeof(m));
		size_t end;

		if (n < 0)
			fail_msg("case '%s': bad hex", bad_names[i].what);
		if (codec_name_skip(m, (size_t)n, bad_names[i].off, &end) != -EBADMSG)
			fail_msg("case '%s': skip accepted", bad_names[i].what);
		if (codec_name_unpack(m, (size_t)n, bad_names[i].off, out) != -EBADMSG)
			fail_msg("case '%s': unpack accepted", bad_names[i].what);
	}
}

static void test_name_skip_pointer_below_run_start_accepted(void **state)
{
	(void)state;
	uint8_t m[64];
	/* 12: "b." ; 15: "a" + pointer to 12 -> "a.b." */
	long n = th_hex("0000 0000 0000 0000 0000 0000 016200 0161c00c", m, sizeof(m));
	size_t end;

	assert_int_equal(codec_name_skip(m, (size_t)n, 15, &end), 5);
	assert_int_equal(end, 19);
}

static void test_name_lower_ascii_only(void **state)
{
	(void)state;
	uint8_t name[] = {3, 'W', 'w', 'W', 4, 'E', 0xc4, 'Z', '@', 0};
	const uint8_t want[] = {3, 'w', 'w', 'w', 4, 'e', 0xc4, 'z', '@', 0};

	codec_name_lower(name, sizeof(name));
	assert_memory_equal(name, want, sizeof(want));
}

static void test_name_to_text_plain_and_root(void **state)
{
	(void)state;
	char out[64];
	const uint8_t www[] = "\x03www\x07"
	                      "Example\x03"
	                      "com";
	const uint8_t root[] = {0};

	assert_int_equal(codec_name_to_text(www, sizeof(www), out, sizeof(out)), 16);
	assert_string_equal(out, "www.Example.com.");
	assert_int_equal(codec_name_to_text(root, 1, out, sizeof(out)), 1);
	assert_string_equal(out, ".");
}

static void test_name_to_text_escapes_special_octets(void **state)
{
	(void)state;
	char out[64];
	const uint8_t name[] = {5, 'a', '.', 'b', '\\', ' ', 3, 0x00, 0x7f, 0xff, 0};

	assert_int_equal(codec_name_to_text(name, sizeof(name), out, sizeof(out)), 24);
	assert_string_equal(out, "a\\.b\\\\\\032.\\000\\127\\255.");
}

static void test_name_to_text_short_buffer_emsgsize_and_cut(void **state)
{
	(void)state;
	char out[8];
	const uint8_t www[] = "\x03www\x07"
	                      "example\x03"
	                      "com";

	memset(out, 'x', sizeof(out));
	assert_int_equal(codec_name_to_text(www, sizeof(www), out, sizeof(out)), -EMSGSIZE);
	assert_string_equal(out, "www.exa");
	/* Exactly enough room for the text and its NUL. */
	char exact[17];

	assert_int_equal(codec_name_to_text(www, sizeof(www), exact, sizeof(exact)), 16);
	assert_string_equal(exact, "www.example.com.");
	assert_int_equal(codec_name_to_text(www, sizeof(www), exact, 16), -EMSGSIZE);
	assert_string_equal(exact, "www.example.com");
	/* outlen 0 writes nothing. */
	assert_int_equal(codec_name_to_text(www, sizeof(www), out, 0), -EMSGSIZE);
	/* An escape is never cut in half. */
	const uint8_t esc[] = {2, 'a', 0x01, 0};
	char four[4];

	assert_int_equal(codec_name_to_text(esc, sizeof(esc), four, sizeof(four)), -EMSGSIZE);
	assert_string_equal(four, "a");
}

static void test_name_to_text_malformed_ebadmsg(void **state)
{
	(void)state;
	char out[64];
	const uint8_t no_root[] = {1, 'a'};
	const uint8_t ptr[] = {1, 'a', 0xc0, 0x0c};
	const uint8_t cut[] = {5, 'a', 0};

	assert_int_equal(codec_name_to_text(no_root, sizeof(no_root), out, sizeof(out)), -EBADMSG);
	assert_int_equal(codec_name_to_text(ptr, sizeof(ptr), out, sizeof(out)), -EBADMSG);
	assert_int_equal(codec_name_to_text(cut, sizeof(cut), out, sizeof(out)), -EBADMSG);
	assert_int_equal(codec_name_to_text(cut, 0, out, sizeof(out)), -EBADMSG);
}

/* Eight octets at a time fold exactly as one at a time: every octet
 * value at every place of the word, with neighbours that could carry. */
static void test_ascii_lower8_matches_octet_fold(void **state)
{
	(void)state;
	static const uint8_t around[] = {0x00, 0x40, 0x41, 0x5a, 0x5b,
	                                 0x7f, 0x80, 0xc1, 0xda, 0xff};

	/* The table too. */
	for (unsigned v = 0; v < 256; v++)
		assert_int_equal(codec_ascii_lower_tab[v], codec_ascii_lower((uint8_t)v));

	for (unsigned pos = 0; pos < 8; pos++)
		for (unsigned v = 0; v < 256; v++)
			for (size_t a = 0; a < sizeof(around); a++) {
				uint8_t in[8], want[8], got[8];
				uint64_t x;

				memset(in, around[a], sizeof(in));
				in[pos] = (uint8_t)v;
				for (unsigned i = 0; i < 8; i++)
					want[i] = codec_ascii_lower(in[i]);
				memcpy(&x, in, 8);
				x = codec_ascii_lower8(x);
				memcpy(got, &x, 8);
				assert_memory_equal(got, want, 8);
			}
}

/* codec_name_lower_hash: out is the lowercase name, the hash the same for
 * every spelling, of every length, and it depends on every octet. */
static void test_name_lower_hash(void **state)
{
	(void)state;
	uint8_t name[CODEC_MAX_NAME], upper[CODEC_MAX_NAME], out[CODEC_MAX_NAME + 8];

	for (size_t len = 1; len <= CODEC_MAX_NAME; len++) {
		for (size_t i = 0; i < len; i++)
			name[i] = (uint8_t)('a' + (i * 5 + len) % 26);
		memcpy(upper, name, len);
		for (size_t i = 0; i < len; i += 3)
			upper[i] = (uint8_t)(upper[i] - 'a' + 'A');
		memset(out, 0xee, sizeof(out));
		uint64_t h = codec_name_lower_hash(upper, len, out, 42);
		assert_memory_equal(out, name, len);
		assert_int_equal(out[len], 0xee); /* nothing written past the name */
		assert_true(codec_name_lower_hash(name, len, out, 42) == h);
		assert_true(codec_name_lower_hash(name, len, out, 43) != h);
		for (size_t i = 0; i < len; i++) {
			uint8_t keep = name[i];
			name[i] = '0';
			assert_true(codec_name_lower_hash(name, len, out, 42) != h);
			name[i] = keep;
		}
		if (len > 1)
			assert_true(codec_name_lower_hash(name, len - 1, out, 42) != h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ascii_lower8_matches_octet_fold),
	        cmocka_unit_test(test_name_lower_hash),
	        cmocka_unit_test(test_name_skip_plain_reports_length_and_end),
	        cmocka_unit_test(test_name_skip_compressed_ends_after_first_pointer),
	        cmocka_unit_test(test_name_unpack_compressed_preserves_case),
	        cmocka_unit_test(test_name_unpack_root_gives_one_octet),
	        cmocka_unit_test(test_name_equal_across_compression_true),
	        cmocka_unit_test(test_name_equal_case_insensitive_true),
	        cmocka_unit_test(test_name_equal_different_names_false),
	        cmocka_unit_test(test_name_equal_malformed_ebadmsg),
	        cmocka_unit_test(test_name_is_compressed_owner_matches_any_case),
	        cmocka_unit_test(test_name_is_other_name_or_malformed_false),
	        cmocka_unit_test(test_name_skip_malformed_table_rejected),
	        cmocka_unit_test(test_name_skip_pointer_below_run_start_accepted),
	        cmocka_unit_test(test_name_lower_ascii_only),
	        cmocka_unit_test(test_name_to_text_plain_and_root),
	        cmocka_unit_test(test_name_to_text_escapes_special_octets),
	        cmocka_unit_test(test_name_to_text_short_buffer_emsgsize_and_cut),
	        cmocka_unit_test(test_name_to_text_malformed_ebadmsg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
