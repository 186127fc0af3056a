/* tests/unit/test_codec_tsig.c - TSIG signing against dnspython's bytes
 * and verification of answers BIND 9.18 signed (a five-message AXFR, an
 * UPDATE answer, its BADKEY/BADSIG/BADTIME refusals) and of a stream
 * dnspython signed with 99 unsigned messages inside. The fixtures and
 * how they were made: tests/data/tsig/capture.py.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/tsig.h"
#include "tests/unit/helpers.h"

/* tests/data/tsig/capture.py's SECRET_B64. */
static const uint8_t secret[32] = {
        0xda, 0x64, 0x2d, 0x25, 0x8d, 0xe1, 0x9b, 0x58, 0x15, 0x6f, 0xc4,
        0xec, 0xe9, 0x8d, 0x1f, 0x2b, 0xab, 0x4c, 0x6d, 0x7e, 0xe5, 0x53,
        0x99, 0x06, 0xe1, 0x00, 0x08, 0x03, 0x70, 0x97, 0x53, 0xd0,
};

#define MAX_FRAMES 128

/* A fixture file: messages with TCP's two-octet length prefix. */
struct frames {
	uint8_t *data;
	size_t n;
	uint8_t *msg[MAX_FRAMES];
	size_t len[MAX_FRAMES];
};

static void load(struct frames *f, const char *name)
{
	const char *dir = getenv("APEX_TEST_DATA");
	char path[PATH_MAX];
	FILE *fp;
	long size;

	snprintf(path, sizeof(path), "%s/tsig/%s", dir != NULL ? dir : "tests/data", name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size > 0);
	rewind(fp);
	f->data = malloc((size_t)size);
	assert_non_null(f->data);
	assert_int_equal(fread(f->data, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	f->n = 0;
	for (size_t pos = 0; pos < (size_t)size;) {
		assert_true(pos + 2 <= (size_t)size && f->n < MAX_FRAMES);
		size_t len = codec_get_u16(f->data + pos);
		assert_true(pos + 2 + len <= (size_t)size);
		f->msg[f->n] = f->data + pos + 2;
		f->len[f->n++] = len;
		pos += 2 + len;
	}
}

static void unload(struct frames *f)
{
	free(f->data);
}

static void make_key(struct codec_tsig_key *k, const char *name_wire, enum codec_tsig_alg alg)
{
	memset(k, 0, sizeof(*k));
	k->name_len = (uint8_t)(strlen(name_wire) + 1);
	memcpy(k->name, name_wire, k->name_len);
	k->alg = alg;
	memcpy(k->secret, secret, sizeof(secret));
	k->secret_len = sizeof(secret);
}

static void apexd_key(struct codec_tsig_key *k)
{
	make_key(k, "\11apexd-key", CODEC_TSIG_HMAC_SHA256);
}

/* Where the TSIG RR of a signed message starts, and its fields. */
struct tsig_at {
	size_t off;
	uint64_t time;
	const uint8_t *mac;
	uint16_t mac_len;
};

static void find_tsig(const uint8_t *m, size_t len, struct tsig_at *t)
{
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	size_t end;

	assert_int_equal(codec_scan(m, len, &v), 0);
	assert_true(v.has_tsig);
	codec_rr_iter_init(&it, m, len, &v, CODEC_SEC_ADDITIONAL);
	while (codec_rr_next(&it, &rr) == 1)
		continue;
	assert_int_equal(rr.type, CODEC_TYPE_TSIG);
	t->off = rr.owner_off;
	assert_true(codec_name_skip(m, len, rr.rdata_off, &end) > 0);
	t->time = (uint64_t)codec_get_u16(m + end) << 32 | codec_get_u32(m + end + 2);
	t->mac_len = codec_get_u16(m + end + 8);
	t->mac = m + end + 10;
}

/* The message as it was before its TSIG was added. */
static size_t strip_tsig(uint8_t *out, const uint8_t *m, size_t len)
{
	struct tsig_at t;

	find_tsig(m, len, &t);
	memcpy(out, m, t.off);
	codec_put_u16(out + 10, (uint16_t)(codec_hdr_arcount(m) - 1));
	return t.off;
}

/* Re-signs a dnspython-signed request at its own time; the bytes must be
 * dnspython's. Returns the MAC through mac/mac_len. */
static void resign(const uint8_t *req, size_t len, const struct codec_tsig_key *k, uint8_t *mac,
                   size_t *mac_len, bool fold);

static void resign_equal(const uint8_t *req, size_t len, const struct codec_tsig_key *k,
                         uint8_t *mac, size_t *mac_len)
{
	resign(req, len, k, mac, mac_len, false);
}

static void resign(const uint8_t *req, size_t len, const struct codec_tsig_key *k, uint8_t *mac,
                   size_t *mac_len, bool fold)
{
	uint8_t buf[1024];
	struct tsig_at t;
	size_t body = strip_tsig(buf, req, len);

	find_tsig(req, len, &t);
	assert_int_equal(codec_tsig_sign(buf, body, sizeof(buf), k, t.time, mac, mac_len),
	                 (ssize_t)len);
	assert_int_equal(*mac_len, t.mac_len);
	assert_memory_equal(mac, t.mac, t.mac_len);
	if (fold) {
		for (size_t i = 0; i < len; i++)
			assert_int_equal(codec_ascii_lower(buf[i]), codec_ascii_lower(req[i]));
	} else {
		assert_memory_equal(buf, req, len);
	}
}

static void test_tsig_alg_names(void **state)
{
	enum codec_tsig_alg a;
	static const struct {
		const char *text;
		enum codec_tsig_alg alg;
	} ok[] = {
	        {"hmac-md5", CODEC_TSIG_HMAC_MD5},
	        {"HMAC-MD5.SIG-ALG.REG.INT", CODEC_TSIG_HMAC_MD5},
	        {"hmac-md5.sig-alg.reg.int.", CODEC_TSIG_HMAC_MD5},
	        {"hmac-sha1", CODEC_TSIG_HMAC_SHA1},
	        {"hmac-sha224.", CODEC_TSIG_HMAC_SHA224},
	        {"Hmac-Sha256", CODEC_TSIG_HMAC_SHA256},
	        {"hmac-sha384", CODEC_TSIG_HMAC_SHA384},
	        {"hmac-sha512.", CODEC_TSIG_HMAC_SHA512},
	};
	static const char *const bad[] = {"",           ".",
	                                  "hmac-sha",   "hmac-sha256..",
	                                  "sha256",     "hmac-md5.x",
	                                  "gss-tsig",   "hmac-sha256-128",
	                                  "hmac-sha1 ", "hmac-md5.sig-alg.reg.in"};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(codec_tsig_alg_by_name(ok[i].text, &a), 0);
		assert_int_equal(a, ok[i].alg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(codec_tsig_alg_by_name(bad[i], &a), -EINVAL);
	for (int i = 0; i < CODEC_TSIG_ALG_COUNT; i++) {
		assert_int_equal(codec_tsig_alg_by_name(codec_tsig_alg_text(i), &a), 0);
		assert_int_equal(a, i);
	}
	assert_string_equal(codec_tsig_alg_text(CODEC_TSIG_HMAC_SHA256), "hmac-sha256");
}

/* (a) Every algorithm: codec_tsig_sign() writes dnspython's bytes. */
static void test_tsig_sign_matches_dnspython(void **state)
{
	struct frames f;
	struct codec_tsig_key k;
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	size_t mac_len;

	(void)state;
	load(&f, "sign.bin");
	assert_int_equal(f.n, CODEC_TSIG_ALG_COUNT + 1);
	/* dnspython writes "HMAC-MD5.SIG-ALG.REG.INT." in capitals, apexd the
	 * lowercase BIND writes; the MAC covers the canonical form either way. */
	for (int i = 0; i < CODEC_TSIG_ALG_COUNT; i++) {
		make_key(&k, "\11apexd-key", i);
		resign(f.msg[i], f.len[i], &k, mac, &mac_len, i == CODEC_TSIG_HMAC_MD5);
	}
	/* The UPDATE, hmac-sha256. */
	apexd_key(&k);
	resign_equal(f.msg[CODEC_TSIG_ALG_COUNT], f.len[CODEC_TSIG_ALG_COUNT], &k, mac, &mac_len);
	unload(&f);
}

/* An uppercase key name signs as its canonical form; the owner keeps
 * the case given. */
static void test_tsig_sign_key_name_canonical(void **state)
{
	struct frames f;
	struct codec_tsig_key k;
	uint8_t buf[1024], mac[CODEC_TSIG_MAC_MAX];
	size_t body, mac_len;
	struct tsig_at t;

	(void)state;
	load(&f, "sign.bin");
	make_key(&k, "\11APEXD-key", CODEC_TSIG_HMAC_SHA256);
	body = strip_tsig(buf, f.msg[3], f.len[3]);
	find_tsig(f.msg[3], f.len[3], &t);
	assert_int_equal(codec_tsig_sign(buf, body, sizeof(buf), &k, t.time, mac, &mac_len),
	                 (ssize_t)f.len[3]);
	assert_memory_equal(mac, t.mac, 32);
	assert_memory_equal(buf + body, "\11APEXD-key", 10);
	unload(&f);
}

/* (b) BIND's five-message AXFR: each message signed and good. */
static void test_tsig_verify_bind_axfr(void **state)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	size_t mac_len, body;
	struct tsig_at t;

	(void)state;
	load(&req, "axfr.req.bin");
	load(&ans, "axfr.ans.bin");
	apexd_key(&k);
	resign_equal(req.msg[0], req.len[0], &k, mac, &mac_len);
	find_tsig(req.msg[0], req.len[0], &t);
	assert_true(ans.n >= 3);
	codec_tsig_verify_begin(&v, &k, mac, mac_len);
	for (size_t i = 0; i < ans.n; i++) {
		struct tsig_at a;

		find_tsig(ans.msg[i], ans.len[i], &a);
		assert_int_equal(codec_tsig_verify_next(&v, ans.msg[i], ans.len[i], t.time, &body),
		                 CODEC_TSIG_OK);
		assert_int_equal(body, a.off);
	}
	assert_int_equal(v.messages, ans.n);
	assert_true(codec_tsig_verify_end(&v));
	/* After the end: no more messages. */
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[0], ans.len[0], t.time, &body),
	                 CODEC_TSIG_E_STATE);
	assert_false(codec_tsig_verify_end(&v));
	unload(&req);
	unload(&ans);
}

static void test_tsig_verify_bind_update(void **state)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	size_t mac_len, body = 0;
	struct tsig_at t;

	(void)state;
	load(&req, "update.req.bin");
	load(&ans, "update.ans.bin");
	apexd_key(&k);
	resign_equal(req.msg[0], req.len[0], &k, mac, &mac_len);
	find_tsig(req.msg[0], req.len[0], &t);
	assert_int_equal(codec_hdr_opcode(ans.msg[0]), CODEC_OPCODE_UPDATE);
	codec_tsig_verify_begin(&v, &k, mac, mac_len);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[0], ans.len[0], t.time, &body),
	                 CODEC_TSIG_OK);
	assert_true(body > CODEC_HDR_LEN && body < ans.len[0]);
	assert_true(codec_tsig_verify_end(&v));
	/* Begun again, with another request's MAC: the answer is not its. */
	mac[0] ^= 1;
	codec_tsig_verify_begin(&v, &k, mac, mac_len);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[0], ans.len[0], t.time, &body),
	                 CODEC_TSIG_E_BADSIG);
	assert_false(codec_tsig_verify_end(&v));
	unload(&req);
	unload(&ans);
}

/* Verifies the first message of a fixture's answer with key. */
static int verify_first(const char *name, const struct codec_tsig_key *k,
                        struct codec_tsig_verify *v, int64_t skew)
{
	char path[64];
	struct frames req, ans;
	struct tsig_at t;
	int r;

	snprintf(path, sizeof(path), "%s.req.bin", name);
	load(&req, path);
	snprintf(path, sizeof(path), "%s.ans.bin", name);
	load(&ans, path);
	find_tsig(req.msg[0], req.len[0], &t);
	codec_tsig_verify_begin(v, k, t.mac, t.mac_len);
	r = codec_tsig_verify_next(v, ans.msg[0], ans.len[0], (uint64_t)((int64_t)t.time + skew),
	                           NULL);
	unload(&req);
	unload(&ans);
	return r;
}

static void test_tsig_wrong_secret_badsig(void **state)
{
	struct codec_tsig_key k;
	struct codec_tsig_verify v;

	(void)state;
	apexd_key(&k);
	k.secret[5] ^= 0x20;
	assert_int_equal(verify_first("axfr", &k, &v, 0), CODEC_TSIG_E_BADSIG);
	assert_false(codec_tsig_verify_end(&v));
	k.secret_len = 31;
	assert_int_equal(verify_first("update", &k, &v, 0), CODEC_TSIG_E_BADSIG);
	codec_tsig_verify_end(&v);
}

static void test_tsig_wrong_key_name_or_alg(void **state)
{
	struct codec_tsig_key k;
	struct codec_tsig_verify v;

	(void)state;
	make_key(&k, "\11apexd-kez", CODEC_TSIG_HMAC_SHA256);
	assert_int_equal(verify_first("axfr", &k, &v, 0), CODEC_TSIG_E_KEY);
	codec_tsig_verify_end(&v);
	make_key(&k, "\11apexd-key", CODEC_TSIG_HMAC_SHA512);
	assert_int_equal(verify_first("axfr", &k, &v, 0), CODEC_TSIG_E_KEY);
	codec_tsig_verify_end(&v);
	/* Names compare case-insensitively. */
	make_key(&k, "\11ApexD-KEY", CODEC_TSIG_HMAC_SHA256);
	assert_int_equal(verify_first("axfr", &k, &v, 0), CODEC_TSIG_OK);
	codec_tsig_verify_end(&v);
}

/* BIND's refusals: NOTAUTH with the TSIG error, the MAC empty (BADKEY,
 * BADSIG) or signed with server time in other data (BADTIME). */
static void test_tsig_server_errors(void **state)
{
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	struct frames f;

	(void)state;
	load(&f, "badkey.ans.bin");
	assert_int_equal(codec_hdr_rcode(f.msg[0]), 9);
	unload(&f);
	make_key(&k, "\5nokey", CODEC_TSIG_HMAC_SHA256);
	assert_int_equal(verify_first("badkey", &k, &v, 0), CODEC_TSIG_E_SERVER);
	assert_int_equal(v.server_error, 17);
	assert_string_equal(codec_tsig_error_name(v.server_error), "BADKEY");
	assert_false(codec_tsig_verify_end(&v));
	/* Not the key apexd asked with: another key's answer. */
	apexd_key(&k);
	assert_int_equal(verify_first("badkey", &k, &v, 0), CODEC_TSIG_E_KEY);
	codec_tsig_verify_end(&v);
	assert_int_equal(verify_first("badsig", &k, &v, 0), CODEC_TSIG_E_SERVER);
	assert_int_equal(v.server_error, 16);
	codec_tsig_verify_end(&v);
	assert_int_equal(verify_first("badtime", &k, &v, 0), CODEC_TSIG_E_SERVER);
	assert_int_equal(v.server_error, 18);
	assert_string_equal(codec_tsig_error_name(18), "BADTIME");
	codec_tsig_verify_end(&v);
}

/* now - time signed within the fudge (300 s) and outside it; the request
 * and BIND's answer were signed within a second of each other. */
static void test_tsig_time_window(void **state)
{
	struct codec_tsig_key k;
	struct codec_tsig_verify v;

	(void)state;
	apexd_key(&k);
	assert_int_equal(verify_first("update", &k, &v, 299), CODEC_TSIG_OK);
	codec_tsig_verify_end(&v);
	assert_int_equal(verify_first("update", &k, &v, -299), CODEC_TSIG_OK);
	codec_tsig_verify_end(&v);
	assert_int_equal(verify_first("update", &k, &v, 302), CODEC_TSIG_E_BADTIME);
	assert_false(codec_tsig_verify_end(&v));
	assert_int_equal(verify_first("update", &k, &v, -302), CODEC_TSIG_E_BADTIME);
	codec_tsig_verify_end(&v);
	assert_int_equal(verify_first("update", &k, &v, 100000), CODEC_TSIG_E_BADTIME);
	codec_tsig_verify_end(&v);
	/* MAC before time: a wrong key past the fudge is a bad signature. */
	k.secret[0] ^= 1;
	assert_int_equal(verify_first("update", &k, &v, 100000), CODEC_TSIG_E_BADSIG);
	codec_tsig_verify_end(&v);
}

/* Runs the AXFR with message i changed by fn; returns the status at i. */
static int axfr_with(size_t i, size_t (*fn)(uint8_t *m, size_t len), size_t *ok_before)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	struct tsig_at t;
	static uint8_t buf[CODEC_MAX_MSG + 64];
	int r = CODEC_TSIG_OK;

	load(&req, "axfr.req.bin");
	load(&ans, "axfr.ans.bin");
	apexd_key(&k);
	find_tsig(req.msg[0], req.len[0], &t);
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	*ok_before = 0;
	for (size_t j = 0; j <= i && j < ans.n; j++) {
		size_t len = ans.len[j];

		memcpy(buf, ans.msg[j], len);
		if (j == i)
			len = fn(buf, len);
		r = codec_tsig_verify_next(&v, buf, len, t.time, NULL);
		if (j < i && r == CODEC_TSIG_OK)
			(*ok_before)++;
	}
	codec_tsig_verify_end(&v);
	unload(&req);
	unload(&ans);
	return r;
}

static size_t flip_rdata_byte(uint8_t *m, size_t len)
{
	struct tsig_at t;

	find_tsig(m, len, &t);
	m[t.off - 1] ^= 0x01; /* the last RR's RDATA: an A or the closing SOA */
	return len;
}

static size_t flip_time(uint8_t *m, size_t len)
{
	struct tsig_at t;

	find_tsig(m, len, &t);
	m[t.mac - m - 5] ^= 0x01; /* low octet of time signed */
	return len;
}

static size_t flip_mac(uint8_t *m, size_t len)
{
	struct tsig_at t;

	find_tsig(m, len, &t);
	m[t.mac + 31 - m] ^= 0x80;
	return len;
}

static size_t drop_tsig(uint8_t *m, size_t len)
{
	uint8_t tmp[CODEC_MAX_MSG];
	size_t n = strip_tsig(tmp, m, len);

	memcpy(m, tmp, n);
	return n;
}

static void test_tsig_tampered(void **state)
{
	size_t before;

	(void)state;
	assert_int_equal(axfr_with(2, flip_rdata_byte, &before), CODEC_TSIG_E_BADSIG);
	assert_int_equal(before, 2);
	assert_int_equal(axfr_with(0, flip_rdata_byte, &before), CODEC_TSIG_E_BADSIG);
	assert_int_equal(axfr_with(0, flip_time, &before), CODEC_TSIG_E_BADSIG);
	assert_int_equal(axfr_with(3, flip_time, &before), CODEC_TSIG_E_BADSIG);
	assert_int_equal(axfr_with(1, flip_mac, &before), CODEC_TSIG_E_BADSIG);
	/* The first message unsigned: missing. */
	assert_int_equal(axfr_with(0, drop_tsig, &before), CODEC_TSIG_E_MISSING);
	/* A later one unsigned is allowed... */
	assert_int_equal(axfr_with(1, drop_tsig, &before), CODEC_TSIG_UNSIGNED);
}

/* ...but BIND signed the next one over the prior MAC alone, so an
 * unsigned message the server did not send unsigned breaks the chain. */
static void test_tsig_stripped_middle_breaks_chain(void **state)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	struct tsig_at t;
	static uint8_t buf[CODEC_MAX_MSG];
	size_t n;

	(void)state;
	load(&req, "axfr.req.bin");
	load(&ans, "axfr.ans.bin");
	apexd_key(&k);
	find_tsig(req.msg[0], req.len[0], &t);
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[0], ans.len[0], t.time, NULL),
	                 CODEC_TSIG_OK);
	n = strip_tsig(buf, ans.msg[1], ans.len[1]);
	assert_int_equal(codec_tsig_verify_next(&v, buf, n, t.time, NULL), CODEC_TSIG_UNSIGNED);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[2], ans.len[2], t.time, NULL),
	                 CODEC_TSIG_E_BADSIG);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[3], ans.len[3], t.time, NULL),
	                 CODEC_TSIG_E_STATE);
	assert_false(codec_tsig_verify_end(&v));
	unload(&req);
	unload(&ans);
}

/* dnspython's stream: signed, 99 unsigned, signed. */
static void test_tsig_99_unsigned_between(void **state)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	struct tsig_at t;
	size_t body;

	(void)state;
	load(&req, "axfr.req.bin");
	load(&ans, "unsigned99.ans.bin");
	assert_int_equal(ans.n, 101);
	apexd_key(&k);
	find_tsig(req.msg[0], req.len[0], &t);
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	for (size_t i = 0; i < ans.n; i++) {
		int want = i == 0 || i == 100 ? CODEC_TSIG_OK : CODEC_TSIG_UNSIGNED;

		assert_int_equal(codec_tsig_verify_next(&v, ans.msg[i], ans.len[i], t.time, &body),
		                 want);
		if (want == CODEC_TSIG_UNSIGNED)
			assert_int_equal(body, ans.len[i]);
		else
			assert_true(body < ans.len[i]);
	}
	assert_true(codec_tsig_verify_end(&v));

	/* Cut after 50: the tail is unsigned, the stream not trusted. */
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	for (size_t i = 0; i < 50; i++)
		assert_true(codec_tsig_verify_next(&v, ans.msg[i], ans.len[i], t.time, NULL) >= 0);
	assert_false(codec_tsig_verify_end(&v));

	/* One unsigned message dropped: the last MAC fails. */
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	for (size_t i = 0; i < ans.n; i++) {
		if (i == 40)
			continue;
		int r = codec_tsig_verify_next(&v, ans.msg[i], ans.len[i], t.time, NULL);
		assert_int_equal(r, i == 100 ? CODEC_TSIG_E_BADSIG
		                    : i == 0 ? CODEC_TSIG_OK
		                             : CODEC_TSIG_UNSIGNED);
	}
	assert_false(codec_tsig_verify_end(&v));

	/* 100 unsigned in a row: the 100th is refused. */
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[0], ans.len[0], t.time, NULL),
	                 CODEC_TSIG_OK);
	for (size_t i = 1; i <= 99; i++)
		assert_int_equal(codec_tsig_verify_next(&v, ans.msg[1], ans.len[1], t.time, NULL),
		                 CODEC_TSIG_UNSIGNED);
	assert_int_equal(codec_tsig_verify_next(&v, ans.msg[1], ans.len[1], t.time, NULL),
	                 CODEC_TSIG_E_MISSING);
	assert_false(codec_tsig_verify_end(&v));
	unload(&req);
	unload(&ans);
}

/* Rewrites the update answer's TSIG; returns the new length. */
typedef size_t edit_fn(uint8_t *m, size_t len, const struct tsig_at *t);

static int update_edited(edit_fn *fn)
{
	struct frames req, ans;
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	struct tsig_at t, a;
	uint8_t buf[512];
	size_t len;
	int r;

	load(&req, "update.req.bin");
	load(&ans, "update.ans.bin");
	apexd_key(&k);
	find_tsig(req.msg[0], req.len[0], &t);
	memcpy(buf, ans.msg[0], ans.len[0]);
	find_tsig(buf, ans.len[0], &a);
	len = fn(buf, ans.len[0], &a);
	codec_tsig_verify_begin(&v, &k, t.mac, t.mac_len);
	r = codec_tsig_verify_next(&v, buf, len, t.time, NULL);
	assert_false(codec_tsig_verify_end(&v) && r != CODEC_TSIG_OK);
	unload(&req);
	unload(&ans);
	return r;
}

/* The RDLENGTH field of the TSIG RR: owner "apexd-key." (11), type,
 * class, TTL. */
static size_t rdlen_off(const struct tsig_at *a)
{
	return a->off + 11 + 8;
}

static size_t cut_last_octet(uint8_t *m, size_t len, const struct tsig_at *a)
{
	(void)a;
	(void)m;
	return len - 1;
}

static size_t short_rdata(uint8_t *m, size_t len, const struct tsig_at *a)
{
	size_t o = rdlen_off(a);

	codec_put_u16(m + o, (uint16_t)(codec_get_u16(m + o) - 1));
	return len - 1;
}

static size_t long_mac(uint8_t *m, size_t len, const struct tsig_at *a)
{
	codec_put_u16(m + (a->mac - m) - 2, 200);
	return len;
}

static size_t mac_size_33(uint8_t *m, size_t len, const struct tsig_at *a)
{
	/* One more MAC octet, and the RDATA one longer to hold it. */
	size_t o = rdlen_off(a);
	size_t mac_off = (size_t)(a->mac - m);

	memmove(m + mac_off + 33, m + mac_off + 32, len - mac_off - 32);
	m[mac_off + 32] = 0;
	codec_put_u16(m + mac_off - 2, 33);
	codec_put_u16(m + o, (uint16_t)(codec_get_u16(m + o) + 1));
	return len + 1;
}

static size_t mac_size_31(uint8_t *m, size_t len, const struct tsig_at *a)
{
	size_t o = rdlen_off(a);
	size_t mac_off = (size_t)(a->mac - m);

	memmove(m + mac_off + 31, m + mac_off + 32, len - mac_off - 32);
	codec_put_u16(m + mac_off - 2, 31);
	codec_put_u16(m + o, (uint16_t)(codec_get_u16(m + o) - 1));
	return len - 1;
}

static size_t class_in(uint8_t *m, size_t len, const struct tsig_at *a)
{
	codec_put_u16(m + rdlen_off(a) - 6, CODEC_CLASS_IN);
	return len;
}

static size_t ttl_one(uint8_t *m, size_t len, const struct tsig_at *a)
{
	m[rdlen_off(a) - 1] = 1;
	return len;
}

/* An A record after the TSIG: it is no longer the last RR. */
static size_t rr_after(uint8_t *m, size_t len, const struct tsig_at *a)
{
	static const uint8_t rr[] = {0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};

	(void)a;
	memcpy(m + len, rr, sizeof(rr));
	codec_put_u16(m + 10, (uint16_t)(codec_hdr_arcount(m) + 1));
	return len + sizeof(rr);
}

static size_t unchanged(uint8_t *m, size_t len, const struct tsig_at *a)
{
	(void)m;
	(void)a;
	return len;
}

static void test_tsig_malformed(void **state)
{
	(void)state;
	assert_int_equal(update_edited(unchanged), CODEC_TSIG_OK);
	assert_int_equal(update_edited(cut_last_octet), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(short_rdata), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(long_mac), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(mac_size_33), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(mac_size_31), CODEC_TSIG_E_BADSIG);
	assert_int_equal(update_edited(class_in), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(ttl_one), CODEC_TSIG_E_FORMAT);
	assert_int_equal(update_edited(rr_after), CODEC_TSIG_E_FORMAT);
}

static void test_tsig_verify_end_cases(void **state)
{
	struct codec_tsig_key k;
	struct codec_tsig_verify v;
	uint8_t junk[5] = {0};

	(void)state;
	apexd_key(&k);
	/* Nothing verified. */
	codec_tsig_verify_begin(&v, &k, NULL, 0);
	assert_false(codec_tsig_verify_end(&v));
	/* Not even a header. */
	codec_tsig_verify_begin(&v, &k, NULL, 0);
	assert_int_equal(codec_tsig_verify_next(&v, junk, sizeof(junk), 0, NULL),
	                 CODEC_TSIG_E_FORMAT);
	assert_int_equal(codec_tsig_verify_next(&v, junk, sizeof(junk), 0, NULL),
	                 CODEC_TSIG_E_STATE);
	assert_false(codec_tsig_verify_end(&v));
	/* Good. */
	assert_int_equal(verify_first("update", &k, &v, 0), CODEC_TSIG_OK);
	assert_true(codec_tsig_verify_end(&v));
}

static void test_tsig_sign_errors(void **state)
{
	struct frames f;
	struct codec_tsig_key k;
	uint8_t buf[1024], copy[1024], mac[CODEC_TSIG_MAC_MAX];
	size_t body, mac_len;

	(void)state;
	load(&f, "sign.bin");
	apexd_key(&k);
	body = strip_tsig(buf, f.msg[3], f.len[3]);
	memcpy(copy, buf, body);
	/* One octet short: nothing written. */
	memset(buf + body, 0xee, sizeof(buf) - body);
	assert_int_equal(codec_tsig_sign(buf, body, f.len[3] - 1, &k, 1, mac, &mac_len), -EMSGSIZE);
	assert_memory_equal(buf, copy, body);
	assert_int_equal(buf[body], 0xee);
	/* Exactly the room CODEC_TSIG_RR_MAX promises is enough. */
	assert_true(f.len[3] - body <= CODEC_TSIG_RR_MAX);
	assert_int_equal(codec_tsig_sign(buf, body, body + CODEC_TSIG_RR_MAX, &k, 1, mac, &mac_len),
	                 (ssize_t)f.len[3]);
	/* Already signed. */
	assert_int_equal(codec_tsig_sign(buf, f.len[3], sizeof(buf), &k, 1, mac, &mac_len),
	                 -EINVAL);
	/* Malformed message. */
	memcpy(buf, copy, body);
	assert_int_equal(codec_tsig_sign(buf, body - 1, sizeof(buf), &k, 1, mac, &mac_len),
	                 -EINVAL);
	assert_int_equal(codec_tsig_sign(buf, 5, sizeof(buf), &k, 1, mac, &mac_len), -EINVAL);
	/* Bad keys. */
	k.secret_len = 0;
	assert_int_equal(codec_tsig_sign(buf, body, sizeof(buf), &k, 1, mac, &mac_len), -EINVAL);
	apexd_key(&k);
	k.alg = CODEC_TSIG_ALG_COUNT;
	assert_int_equal(codec_tsig_sign(buf, body, sizeof(buf), &k, 1, mac, &mac_len), -EINVAL);
	apexd_key(&k);
	k.name_len = 3;
	assert_int_equal(codec_tsig_sign(buf, body, sizeof(buf), &k, 1, mac, &mac_len), -EINVAL);
	unload(&f);
}

static void test_tsig_texts(void **state)
{
	(void)state;
	assert_string_equal(codec_tsig_status_text(CODEC_TSIG_E_BADSIG), "bad signature");
	for (int s = CODEC_TSIG_E_STATE; s <= CODEC_TSIG_UNSIGNED; s++)
		assert_string_not_equal(codec_tsig_status_text(s), "unknown status");
	assert_string_equal(codec_tsig_status_text(42), "unknown status");
	assert_string_equal(codec_tsig_error_name(16), "BADSIG");
	assert_string_equal(codec_tsig_error_name(22), "BADTRUNC");
	assert_string_equal(codec_tsig_error_name(9), "NOTAUTH");
	assert_string_equal(codec_tsig_error_name(12), "unknown");
	assert_string_equal(codec_tsig_error_name(999), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tsig_alg_names),
	        cmocka_unit_test(test_tsig_sign_matches_dnspython),
	        cmocka_unit_test(test_tsig_sign_key_name_canonical),
	        cmocka_unit_test(test_tsig_verify_bind_axfr),
	        cmocka_unit_test(test_tsig_verify_bind_update),
	        cmocka_unit_test(test_tsig_wrong_secret_badsig),
	        cmocka_unit_test(test_tsig_wrong_key_name_or_alg),
	        cmocka_unit_test(test_tsig_server_errors),
	        cmocka_unit_test(test_tsig_time_window),
	        cmocka_unit_test(test_tsig_tampered),
	        cmocka_unit_test(test_tsig_stripped_middle_breaks_chain),
	        cmocka_unit_test(test_tsig_99_unsigned_between),
	        cmocka_unit_test(test_tsig_malformed),
	        cmocka_unit_test(test_tsig_verify_end_cases),
	        cmocka_unit_test(test_tsig_sign_errors),
	        cmocka_unit_test(test_tsig_texts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
