/* codec/tsig.c - TSIG (RFC 8945) over OpenSSL 3's EVP_MAC "HMAC". */
#include "codec/tsig.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "codec/name.h"
#include "codec/rd.h"
#include "codec/rr.h"
#include "codec/scan.h"

/* RFC 1035 3.2.4 / RFC 8945 4.2: a TSIG RR has class ANY and TTL 0. */
#define TSIG_CLASS_ANY 255
/* Time signed (48 bits), fudge, MAC size: after the algorithm name. */
#define TSIG_FIXED_LEN 10
/* Original ID, error, other len: after the MAC. */
#define TSIG_TAIL_LEN 6
/* RFC 8945 5.3.1: a client accepts up to 99 unsigned messages in a row. */
#define TSIG_MAX_UNSIGNED 99
#define TSIG_TIME_MAX 0xffffffffffffULL

struct tsig_alg {
	const char *text;    /* as BIND's key files write it */
	const char *digest;  /* OpenSSL's digest name */
	const uint8_t *wire; /* the algorithm name on the wire (RFC 8945 6) */
	uint8_t wire_len;
	uint8_t mac_len;
};

#define ALG(t, d, w, n)                                                                            \
	{                                                                                          \
		t, d, (const uint8_t *)(w), sizeof(w), n                                           \
	}
static const struct tsig_alg algs[CODEC_TSIG_ALG_COUNT] = {
        [CODEC_TSIG_HMAC_MD5] = ALG("hmac-md5", "MD5", "\10hmac-md5\7sig-alg\3reg\3int", 16),
        [CODEC_TSIG_HMAC_SHA1] = ALG("hmac-sha1", "SHA1", "\11hmac-sha1", 20),
        [CODEC_TSIG_HMAC_SHA224] = ALG("hmac-sha224", "SHA224", "\13hmac-sha224", 28),
        [CODEC_TSIG_HMAC_SHA256] = ALG("hmac-sha256", "SHA256", "\13hmac-sha256", 32),
        [CODEC_TSIG_HMAC_SHA384] = ALG("hmac-sha384", "SHA384", "\13hmac-sha384", 48),
        [CODEC_TSIG_HMAC_SHA512] = ALG("hmac-sha512", "SHA512", "\13hmac-sha512", 64),
};
#undef ALG

static bool text_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (codec_ascii_lower((uint8_t)a[i]) != codec_ascii_lower((uint8_t)b[i]))
			return false;
	return true;
}

int codec_tsig_alg_by_name(const char *text, enum codec_tsig_alg *out)
{
	if (text == NULL)
		return -EINVAL;
	size_t n = strlen(text);

	if (n > 0 && text[n - 1] == '.')
		n--;
	for (unsigned i = 0; i < CODEC_TSIG_ALG_COUNT; i++) {
		const char *name = algs[i].text;
		size_t len = strlen(name);

		if ((n == len && text_ieq(text, name, n)) ||
		    (i == CODEC_TSIG_HMAC_MD5 && n == len + 16 && text_ieq(text, name, len) &&
		     text_ieq(text + len, ".sig-alg.reg.int", 16))) {
			*out = (enum codec_tsig_alg)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *codec_tsig_alg_text(enum codec_tsig_alg alg)
{
	return (unsigned)alg < CODEC_TSIG_ALG_COUNT ? algs[alg].text : "unknown";
}

static bool key_ok(const struct codec_tsig_key *key)
{
	return key != NULL && (unsigned)key->alg < CODEC_TSIG_ALG_COUNT &&
	       codec_name_valid(key->name, key->name_len) && key->secret_len >= 1 &&
	       key->secret_len <= CODEC_TSIG_SECRET_MAX;
}

/* (Re)starts ctx, or a new context when ctx is NULL, keyed with key. */
static EVP_MAC_CTX *mac_start(EVP_MAC_CTX *ctx, const struct codec_tsig_key *key)
{
	OSSL_PARAM params[2];

	if (ctx == NULL) {
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

		if (mac == NULL)
			return NULL;
		ctx = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac); /* the context keeps its own reference */
		if (ctx == NULL)
			return NULL;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)algs[key->alg].digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key->secret, key->secret_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool mac_put(EVP_MAC_CTX *ctx, const void *p, size_t n)
{
	return n == 0 || EVP_MAC_update(ctx, p, n) == 1;
}

static bool mac_u16(EVP_MAC_CTX *ctx, uint16_t v)
{
	uint8_t b[2];

	codec_put_u16(b, v);
	return mac_put(ctx, b, sizeof(b));
}

/* Time signed and fudge, the "timers" that are all a later message of a
 * stream covers (RFC 8945 4.3.3, 5.3.1). */
static bool mac_timers(EVP_MAC_CTX *ctx, uint64_t time_signed, uint16_t fudge)
{
	uint8_t b[8];

	codec_put_u16(b, (uint16_t)(time_signed >> 32));
	codec_put_u32(b + 2, (uint32_t)time_signed);
	codec_put_u16(b + 6, fudge);
	return mac_put(ctx, b, sizeof(b));
}

/* All TSIG variables (RFC 8945 4.3.3), names in canonical (lowercase,
 * uncompressed) form whatever the wire had. */
static bool mac_vars(EVP_MAC_CTX *ctx, const struct codec_tsig_key *key, uint64_t time_signed,
                     uint16_t fudge, uint16_t error, const uint8_t *other, uint16_t other_len)
{
	uint8_t name[CODEC_MAX_NAME];
	uint8_t b[6];

	memcpy(name, key->name, key->name_len);
	codec_name_lower(name, key->name_len);
	codec_put_u16(b, TSIG_CLASS_ANY);
	codec_put_u32(b + 2, 0);
	return mac_put(ctx, name, key->name_len) && mac_put(ctx, b, sizeof(b)) &&
	       mac_put(ctx, algs[key->alg].wire, algs[key->alg].wire_len) &&
	       mac_timers(ctx, time_signed, fudge) && mac_u16(ctx, error) &&
	       mac_u16(ctx, other_len) && mac_put(ctx, other, other_len);
}

static bool mac_final(EVP_MAC_CTX *ctx, uint8_t *out, size_t want)
{
	size_t n = 0;

	return EVP_MAC_final(ctx, out, &n, CODEC_TSIG_MAC_MAX) == 1 && n == want;
}

/* Writes the TSIG RR; the caller made sure it fits. */
static void put_rr(struct codec_wr *wr, const struct codec_tsig_key *key, uint64_t now_s,
                   uint16_t orig_id, const uint8_t *mac, size_t mac_len)
{
	const struct tsig_alg *a = &algs[key->alg];

	codec_wr_bytes(wr, key->name, key->name_len);
	codec_wr_u16(wr, CODEC_TYPE_TSIG);
	codec_wr_u16(wr, TSIG_CLASS_ANY);
	codec_wr_u32(wr, 0);
	codec_wr_u16(wr, (uint16_t)(a->wire_len + TSIG_FIXED_LEN + mac_len + TSIG_TAIL_LEN));
	codec_wr_bytes(wr, a->wire, a->wire_len);
	codec_wr_u16(wr, (uint16_t)(now_s >> 32));
	codec_wr_u32(wr, (uint32_t)now_s);
	codec_wr_u16(wr, CODEC_TSIG_FUDGE);
	codec_wr_u16(wr, (uint16_t)mac_len);
	codec_wr_bytes(wr, mac, mac_len);
	codec_wr_u16(wr, orig_id);
	codec_wr_u16(wr, 0); /* error */
	codec_wr_u16(wr, 0); /* other len */
}

ssize_t codec_tsig_sign(uint8_t *msg, size_t len, size_t cap, const struct codec_tsig_key *key,
                        uint64_t now_s, uint8_t *mac, size_t *mac_len)
{
	struct codec_view v;

	if (msg == NULL || mac == NULL || mac_len == NULL || !key_ok(key) || len > cap ||
	    now_s > TSIG_TIME_MAX)
		return -EINVAL;
	if (codec_scan(msg, len, &v) != 0 || v.has_tsig || v.arcount == UINT16_MAX)
		return -EINVAL;
	const struct tsig_alg *a = &algs[key->alg];
	size_t rr_len =
	        key->name_len + 10u + a->wire_len + TSIG_FIXED_LEN + a->mac_len + TSIG_TAIL_LEN;

	if (cap - len < rr_len || len + rr_len > CODEC_MAX_MSG)
		return -EMSGSIZE;

	EVP_MAC_CTX *ctx = mac_start(NULL, key);
	bool ok = ctx != NULL && mac_put(ctx, msg, len) &&
	          mac_vars(ctx, key, now_s, CODEC_TSIG_FUDGE, 0, NULL, 0) &&
	          mac_final(ctx, mac, a->mac_len);

	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return -ENOMEM;
	*mac_len = a->mac_len;

	struct codec_wr wr;

	codec_wr_init(&wr, msg, cap);
	wr.pos = len;
	put_rr(&wr, key, now_s, v.id, mac, a->mac_len);
	codec_put_u16(msg + 10, (uint16_t)(v.arcount + 1));
	return (ssize_t)wr.pos;
}

/* A TSIG RR as read from a message; offsets into it. */
struct tsig_rr {
	size_t rr_off; /* its owner name: where the message without it ends */
	size_t alg_off;
	uint64_t time_signed;
	uint16_t fudge;
	uint16_t mac_len;
	size_t mac_off;
	uint16_t orig_id;
	uint16_t error;
	uint16_t other_len;
	size_t other_off;
};

/* Finds the last additional RR, which codec_scan() has checked is the
 * only TSIG, and reads its RDATA. */
static int read_rr(const uint8_t *msg, size_t len, const struct codec_view *v, struct tsig_rr *t)
{
	struct codec_rr_iter it;
	struct codec_rr rr = {0};
	int r;

	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_ADDITIONAL);
	while ((r = codec_rr_next(&it, &rr)) == 1)
		continue;
	if (r < 0 || rr.type != CODEC_TYPE_TSIG || rr.rclass != TSIG_CLASS_ANY || rr.ttl != 0)
		return CODEC_TSIG_E_FORMAT;
	t->rr_off = rr.owner_off;

	size_t end = (size_t)rr.rdata_off + rr.rdlen, name_end;
	struct codec_rd rd;

	t->alg_off = rr.rdata_off;
	if (codec_name_skip(msg, end, t->alg_off, &name_end) < 0)
		return CODEC_TSIG_E_FORMAT;
	codec_rd_init(&rd, msg, end, name_end);
	uint16_t hi = codec_rd_u16(&rd);
	t->time_signed = (uint64_t)hi << 32 | codec_rd_u32(&rd);
	t->fudge = codec_rd_u16(&rd);
	t->mac_len = codec_rd_u16(&rd);
	t->mac_off = rd.pos;
	codec_rd_skip(&rd, t->mac_len);
	t->orig_id = codec_rd_u16(&rd);
	t->error = codec_rd_u16(&rd);
	t->other_len = codec_rd_u16(&rd);
	t->other_off = rd.pos;
	codec_rd_skip(&rd, t->other_len);
	if (rd.err != 0 || rd.pos != end)
		return CODEC_TSIG_E_FORMAT;
	return CODEC_TSIG_OK;
}

void codec_tsig_verify_begin(struct codec_tsig_verify *v, const struct codec_tsig_key *key,
                             const uint8_t *req_mac, size_t req_mac_len)
{
	/* No MAC context yet: v may be fresh memory, and the first window
	 * opens one. */
	memset(v, 0, sizeof(*v));
	v->key = key;
	if (req_mac == NULL)
		req_mac_len = 0;
	if (req_mac_len > CODEC_TSIG_MAC_MAX)
		req_mac_len = CODEC_TSIG_MAC_MAX;
	if (req_mac_len > 0)
		memcpy(v->prior_mac, req_mac, req_mac_len);
	v->prior_mac_len = (uint16_t)req_mac_len;
}

/* Opens a MAC window: the digest of every message up to and including
 * the next signed one starts with the prior MAC (RFC 8945 4.3.1, 5.3.1). */
static bool window_open(struct codec_tsig_verify *v)
{
	EVP_MAC_CTX *ctx = mac_start(v->mac_ctx, v->key);

	v->mac_ctx = ctx;
	return ctx != NULL && mac_u16(ctx, v->prior_mac_len) &&
	       mac_put(ctx, v->prior_mac, v->prior_mac_len);
}

static int verify_unsigned(struct codec_tsig_verify *v, const uint8_t *msg, size_t len)
{
	/* The first message must be signed, and a run of unsigned ones is
	 * bounded so that an attacker cannot append unsigned data forever. */
	if (v->messages == 0 || v->unsigned_run >= TSIG_MAX_UNSIGNED)
		return CODEC_TSIG_E_MISSING;
	if (v->unsigned_run == 0 && !window_open(v))
		return CODEC_TSIG_E_BADSIG;
	if (!mac_put(v->mac_ctx, msg, len))
		return CODEC_TSIG_E_BADSIG;
	v->unsigned_run++;
	return CODEC_TSIG_UNSIGNED;
}

/* The MAC of a signed message, into out. OpenSSL failures (memory)
 * report a bad signature: the answer is not trusted either way. */
static bool signed_mac(struct codec_tsig_verify *v, const uint8_t *msg, const struct tsig_rr *t,
                       uint8_t *out)
{
	uint8_t hdr[CODEC_HDR_LEN];
	EVP_MAC_CTX *ctx;

	/* The MAC covers the message as it was before the TSIG was added. */
	memcpy(hdr, msg, CODEC_HDR_LEN);
	codec_put_u16(hdr, t->orig_id);
	codec_put_u16(hdr + 10, (uint16_t)(codec_hdr_arcount(msg) - 1));
	if (v->unsigned_run == 0 && !window_open(v))
		return false;
	ctx = v->mac_ctx;
	if (!mac_put(ctx, hdr, sizeof(hdr)) ||
	    !mac_put(ctx, msg + CODEC_HDR_LEN, t->rr_off - CODEC_HDR_LEN))
		return false;
	if (v->messages == 0) {
		if (!mac_vars(ctx, v->key, t->time_signed, t->fudge, t->error, msg + t->other_off,
		              t->other_len))
			return false;
	} else if (!mac_timers(ctx, t->time_signed, t->fudge)) {
		return false;
	}
	return mac_final(ctx, out, algs[v->key->alg].mac_len);
}

static int verify_signed(struct codec_tsig_verify *v, const uint8_t *msg, size_t len,
                         const struct codec_view *view, uint64_t now_s, size_t *body_len)
{
	const struct codec_tsig_key *key = v->key;
	const struct tsig_alg *a = &algs[key->alg];
	struct tsig_rr t;
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	int r = read_rr(msg, len, view, &t);

	if (r != CODEC_TSIG_OK)
		return r;
	if (!codec_name_is(msg, len, t.rr_off, key->name, key->name_len) ||
	    !codec_name_is(msg, len, t.alg_off, a->wire, a->wire_len))
		return CODEC_TSIG_E_KEY;
	if (t.error != 0) {
		v->server_error = t.error;
		return CODEC_TSIG_E_SERVER;
	}
	/* Truncated MACs (RFC 8945 5.2.2.1) are not accepted: apexd's keys
	 * come from tsig-keygen, which never asks for them. */
	if (t.mac_len > a->mac_len)
		return CODEC_TSIG_E_FORMAT;
	if (t.mac_len != a->mac_len || !signed_mac(v, msg, &t, mac) ||
	    CRYPTO_memcmp(mac, msg + t.mac_off, a->mac_len) != 0)
		return CODEC_TSIG_E_BADSIG;
	/* Time after the MAC, so that a forged time cannot be told apart
	 * from a forged MAC (RFC 8945 5.2.3 checks in this order too). */
	uint64_t ts = t.time_signed;
	if ((now_s > ts ? now_s - ts : ts - now_s) > t.fudge)
		return CODEC_TSIG_E_BADTIME;
	memcpy(v->prior_mac, mac, a->mac_len);
	v->prior_mac_len = a->mac_len;
	v->unsigned_run = 0;
	*body_len = t.rr_off;
	return CODEC_TSIG_OK;
}

int codec_tsig_verify_next(struct codec_tsig_verify *v, const uint8_t *msg, size_t len,
                           uint64_t now_s, size_t *body_len)
{
	struct codec_view view;
	size_t body = len;
	int r;

	if (v->failed || v->key == NULL)
		return CODEC_TSIG_E_STATE;
	if (msg == NULL || codec_scan(msg, len, &view) != 0)
		r = CODEC_TSIG_E_FORMAT;
	else if (!key_ok(v->key))
		r = CODEC_TSIG_E_KEY;
	else if (!view.has_tsig)
		r = verify_unsigned(v, msg, len);
	else
		r = verify_signed(v, msg, len, &view, now_s, &body);
	if (r < 0) {
		v->failed = true;
		EVP_MAC_CTX_free(v->mac_ctx);
		v->mac_ctx = NULL;
		return r;
	}
	v->messages++;
	if (body_len != NULL)
		*body_len = body;
	return r;
}

bool codec_tsig_verify_end(struct codec_tsig_verify *v)
{
	bool ok = v->key != NULL && !v->failed && v->messages > 0 && v->unsigned_run == 0;

	EVP_MAC_CTX_free(v->mac_ctx);
	v->mac_ctx = NULL;
	v->key = NULL;
	return ok;
}

const char *codec_tsig_status_text(int status)
{
	switch (status) {
	case CODEC_TSIG_OK:
		return "ok";
	case CODEC_TSIG_UNSIGNED:
		return "unsigned";
	case CODEC_TSIG_E_MISSING:
		return "signature missing";
	case CODEC_TSIG_E_FORMAT:
		return "malformed TSIG";
	case CODEC_TSIG_E_KEY:
		return "unknown key";
	case CODEC_TSIG_E_BADSIG:
		return "bad signature";
	case CODEC_TSIG_E_BADTIME:
		return "time outside fudge";
	case CODEC_TSIG_E_SERVER:
		return "server reports a TSIG error";
	case CODEC_TSIG_E_STATE:
		return "verification ended";
	default:
		return "unknown status";
	}
}

const char *codec_tsig_error_name(uint16_t error)
{
	/* RFC 8945 3 and the DNS RCODE registry (RFC 6895 2.3). */
	static const char *const names[] = {
	        "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",   "REFUSED",
	        "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",  "DSOTYPENI",
	        NULL,       NULL,      NULL,       NULL,       "BADSIG",   "BADKEY",
	        "BADTIME",  "BADMODE", "BADNAME",  "BADALG",   "BADTRUNC", "BADCOOKIE",
	};

	if (error < sizeof(names) / sizeof(names[0]) && names[error] != NULL)
		return names[error];
	return "unknown";
}
