/* tests/unit/test_codec_text.c - codec_rcode_name(): the one table of RCODE
 * mnemonics that the query log, the statistics, explain and the chase's
 * failure texts print. */
#include <stddef.h>

#include "codec/text.h"
#include "tests/unit/helpers.h"

static void test_rcode_name_known_codes(void **state)
{
	(void)state;
	assert_string_equal(codec_rcode_name(0), "NOERROR");
	assert_string_equal(codec_rcode_name(2), "SERVFAIL");
	assert_string_equal(codec_rcode_name(3), "NXDOMAIN");
	assert_string_equal(codec_rcode_name(5), "REFUSED");
	assert_string_equal(codec_rcode_name(10), "NOTZONE");
	assert_string_equal(codec_rcode_name(11), "DSOTYPENI");
	assert_string_equal(codec_rcode_name(16), "BADVERS");
}

static void test_rcode_name_unassigned_null(void **state)
{
	(void)state;
	assert_null(codec_rcode_name(12));
	assert_null(codec_rcode_name(15));
	assert_null(codec_rcode_name(17));
	assert_null(codec_rcode_name(4095));
}

static void test_rcode_text_unassigned_numbered(void **state)
{
	(void)state;
	char buf[16];

	assert_string_equal(codec_rcode_text(3, buf, sizeof(buf)), "NXDOMAIN");
	assert_string_equal(codec_rcode_text(17, buf, sizeof(buf)), "RCODE17");
	assert_ptr_equal(codec_rcode_text(17, buf, sizeof(buf)), buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rcode_name_known_codes),
	        cmocka_unit_test(test_rcode_name_unassigned_null),
	        cmocka_unit_test(test_rcode_text_unassigned_numbered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
