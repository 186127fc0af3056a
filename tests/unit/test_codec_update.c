/* tests/unit/test_codec_update.c - the UPDATE writer: messages checked
 * byte by byte, parsed back by ldns, and the order and size errors.
 */
#include <errno.h>
#include <string.h>

#include <ldns/ldns.h>

#include "codec/update.h"
#include "tests/unit/helpers.h"

static const uint8_t zone[] = "\7example\3com";
static const uint8_t owner[] = "\3www\7example\3com";
static const uint8_t a1[4] = {192, 0, 2, 1};
static const uint8_t a2[4] = {192, 0, 2, 2};

static void expect_hex(const uint8_t *got, ssize_t n, const char *hex)
{
	uint8_t want[1024];
	long wn = th_hex(hex, want, sizeof(want));

	assert_true(wn > 0);
	assert_int_equal(n, wn);
	assert_memory_equal(got, want, (size_t)wn);
}

/* The batch the sibling writer sends: prereq, delete, two adds. */
static ssize_t write_batch(uint8_t *buf, size_t cap)
{
	struct codec_upd u;

	codec_upd_begin(&u, buf, cap, 0x1234, zone, sizeof(zone));
	codec_upd_prereq_exists(&u, owner, sizeof(owner), 65305);
	codec_upd_delete_rrset(&u, owner, sizeof(owner), CODEC_TYPE_A);
	codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 300, a1, sizeof(a1));
	codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 300, a2, sizeof(a2));
	return codec_upd_end(&u);
}

static void test_upd_batch_bytes_exact(void **state)
{
	uint8_t buf[512];
	ssize_t n = write_batch(buf, sizeof(buf));

	(void)state;
	expect_hex(buf, n,
	           "1234 2800 0001 0001 0003 0000"
	           "07 6578616d706c65 03 636f6d 00 0006 0001" /* zone */
	           "03 777777 07 6578616d706c65 03 636f6d 00" /* prereq */
	           "ff19 00ff 00000000 0000"                  /*  ANY, TTL 0 */
	           "03 777777 07 6578616d706c65 03 636f6d 00" /* delete */
	           "0001 00ff 00000000 0000"                  /*  ANY */
	           "03 777777 07 6578616d706c65 03 636f6d 00" /* add */
	           "0001 0001 0000012c 0004 c0000201"         /*  IN 300 */
	           "03 777777 07 6578616d706c65 03 636f6d 00" /* add */
	           "0001 0001 0000012c 0004 c0000202");
}

/* ldns reads the message as an UPDATE with the same counts. */
static void test_upd_ldns_parses(void **state)
{
	uint8_t buf[512];
	ssize_t n = write_batch(buf, sizeof(buf));
	ldns_pkt *p = NULL;

	(void)state;
	assert_true(n > 0);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_UPDATE);
	assert_int_equal(ldns_pkt_id(p), 0x1234);
	assert_int_equal(ldns_update_zocount(p), 1);
	assert_int_equal(ldns_update_prcount(p), 1);
	assert_int_equal(ldns_update_upcount(p), 3);
	assert_int_equal(ldns_update_ad(p), 0);
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_authority(p), 2);
	assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
	assert_int_equal(ldns_rr_ttl(rr), 300);
	ldns_pkt_free(p);
}

static void test_upd_absent_and_delete_rr(void **state)
{
	uint8_t buf[512];
	struct codec_upd u;

	(void)state;
	codec_upd_begin(&u, buf, sizeof(buf), 7, zone, sizeof(zone));
	codec_upd_prereq_absent(&u, owner, sizeof(owner), CODEC_TYPE_CNAME);
	codec_upd_delete_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, a1, sizeof(a1));
	expect_hex(buf, codec_upd_end(&u),
	           "0007 2800 0001 0001 0001 0000"
	           "07 6578616d706c65 03 636f6d 00 0006 0001"
	           "03 777777 07 6578616d706c65 03 636f6d 00"
	           "0005 00fe 00000000 0000" /* NONE */
	           "03 777777 07 6578616d706c65 03 636f6d 00"
	           "0001 00fe 00000000 0004 c0000201"); /* NONE, TTL 0 */
}

/* The counts are current after each call: a prefix is a message. */
static void test_upd_counts_kept_current(void **state)
{
	uint8_t buf[512];
	struct codec_upd u;

	(void)state;
	codec_upd_begin(&u, buf, sizeof(buf), 1, zone, sizeof(zone));
	assert_int_equal(codec_upd_len(&u), 12 + sizeof(zone) + 4);
	assert_int_equal(codec_hdr_qdcount(buf), 1);
	assert_int_equal(codec_hdr_ancount(buf) + codec_hdr_nscount(buf), 0);
	codec_upd_prereq_exists(&u, owner, sizeof(owner), CODEC_TYPE_A);
	assert_int_equal(codec_hdr_ancount(buf), 1);
	codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 60, a1, 4);
	assert_int_equal(codec_hdr_nscount(buf), 1);
	assert_int_equal(codec_hdr_arcount(buf), 0);
	assert_int_equal(u.prcount, 1);
	assert_int_equal(u.upcount, 1);
	assert_int_equal(codec_upd_end(&u), (ssize_t)codec_upd_len(&u));
}

static void test_upd_prereq_after_update_einval(void **state)
{
	uint8_t buf[512];
	struct codec_upd u;

	(void)state;
	codec_upd_begin(&u, buf, sizeof(buf), 1, zone, sizeof(zone));
	codec_upd_delete_rrset(&u, owner, sizeof(owner), CODEC_TYPE_A);
	size_t good = codec_upd_len(&u);
	codec_upd_prereq_exists(&u, owner, sizeof(owner), CODEC_TYPE_A);
	assert_int_equal(codec_upd_len(&u), good);
	assert_int_equal(codec_hdr_ancount(buf), 0);
	/* Sticky: later updates are not written either. */
	codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 60, a1, 4);
	assert_int_equal(codec_upd_len(&u), good);
	assert_int_equal(codec_upd_end(&u), -EINVAL);
}

static void test_upd_bad_names_einval(void **state)
{
	uint8_t buf[512];
	struct codec_upd u;
	static const uint8_t ptr[] = {3, 'w', 'w', 'w', 0xc0, 12};
	static const uint8_t noroot[] = {3, 'w', 'w', 'w'};
	static const uint8_t trailing[] = {3, 'w', 'w', 'w', 0, 0};

	(void)state;
	codec_upd_begin(&u, buf, sizeof(buf), 1, ptr, sizeof(ptr));
	assert_int_equal(codec_upd_end(&u), -EINVAL);
	codec_upd_begin(&u, buf, sizeof(buf), 1, NULL, 0);
	assert_int_equal(codec_upd_end(&u), -EINVAL);

	const uint8_t *bad[] = {ptr, noroot, trailing};
	size_t lens[] = {sizeof(ptr), sizeof(noroot), sizeof(trailing)};
	for (size_t i = 0; i < 3; i++) {
		codec_upd_begin(&u, buf, sizeof(buf), 1, zone, sizeof(zone));
		codec_upd_add_rr(&u, bad[i], lens[i], CODEC_TYPE_A, 60, a1, 4);
		assert_int_equal(u.upcount, 0);
		assert_int_equal(codec_upd_end(&u), -EINVAL);
	}
	/* RDATA length without RDATA. */
	codec_upd_begin(&u, buf, sizeof(buf), 1, zone, sizeof(zone));
	codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 60, NULL, 4);
	assert_int_equal(codec_upd_end(&u), -EINVAL);
}

/* Every buffer size short of the whole batch: -EMSGSIZE, and what was
 * written is still a whole message. */
static void test_upd_every_short_buffer_emsgsize(void **state)
{
	uint8_t full[512], buf[512];
	ssize_t n = write_batch(full, sizeof(full));

	(void)state;
	assert_true(n > 0);
	for (size_t cap = 0; cap < (size_t)n; cap++) {
		struct codec_upd u;
		ldns_pkt *p = NULL;

		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(write_batch(buf, cap), -EMSGSIZE);
		codec_upd_begin(&u, buf, cap, 0x1234, zone, sizeof(zone));
		codec_upd_prereq_exists(&u, owner, sizeof(owner), 65305);
		codec_upd_delete_rrset(&u, owner, sizeof(owner), CODEC_TYPE_A);
		codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 300, a1, 4);
		codec_upd_add_rr(&u, owner, sizeof(owner), CODEC_TYPE_A, 300, a2, 4);
		size_t len = codec_upd_len(&u);
		assert_true(len <= cap);
		for (size_t i = len; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xee);
		if (len >= CODEC_HDR_LEN + sizeof(zone) + 4) {
			assert_int_equal(ldns_wire2pkt(&p, buf, len), LDNS_STATUS_OK);
			assert_int_equal(ldns_update_prcount(p) + ldns_update_upcount(p),
			                 u.prcount + u.upcount);
			ldns_pkt_free(p);
		}
	}
}

static void test_upd_root_zone_and_empty_sections(void **state)
{
	uint8_t buf[64];
	struct codec_upd u;
	static const uint8_t root[] = {0};

	(void)state;
	codec_upd_begin(&u, buf, sizeof(buf), 0xffff, root, 1);
	expect_hex(buf, codec_upd_end(&u), "ffff 2800 0001 0000 0000 0000 00 0006 0001");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_upd_batch_bytes_exact),
	        cmocka_unit_test(test_upd_ldns_parses),
	        cmocka_unit_test(test_upd_absent_and_delete_rr),
	        cmocka_unit_test(test_upd_counts_kept_current),
	        cmocka_unit_test(test_upd_prereq_after_update_einval),
	        cmocka_unit_test(test_upd_bad_names_einval),
	        cmocka_unit_test(test_upd_every_short_buffer_emsgsize),
	        cmocka_unit_test(test_upd_root_zone_and_empty_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
