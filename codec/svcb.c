/* codec/svcb.c - SVCB and HTTPS RDATA (RFC 9460). */
#include "codec/svcb.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/name.h"
#include "codec/wire.h"

/* Every SvcParam has a key and a length in front of its value. */
#define SVCB_PARAM_HDR 4

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static int bad(struct codec_svcb *out, const char *why)
{
	out->why = why;
	return -EBADMSG;
}

/* The TargetName: a name that ends inside the RDATA, with no pointer
 * (RFC 9460 2.2 forbids compression, and the RDATA is copied under
 * another owner, where a pointer would point at the wrong bytes). */
static int target_end(const uint8_t *rd, size_t len, size_t *end)
{
	size_t i = 2;

	while (i < len) {
		uint8_t c = rd[i];

		if (c == 0) {
			*end = i + 1;
			return *end - 2 <= CODEC_MAX_NAME ? 0 : -EBADMSG;
		}
		if (c > CODEC_MAX_LABEL)
			return -EBADMSG;
		i += 1u + c;
	}
	return -EBADMSG;
}

static bool alpn_ok(const uint8_t *v, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return false;
	while (i < n) {
		/* An alpn-id is 1..255 octets (RFC 7301 3.1). */
		if (v[i] == 0 || v[i] > n - i - 1)
			return false;
		i += 1u + v[i];
	}
	return true;
}

/* ECHConfigList (the ECH specification, section 4): a 2-octet length
 * that fills the value, then ECHConfigs of version (2) and length (2)
 * each; their contents are the TLS stack's business. */
static bool ech_ok(const uint8_t *v, size_t n)
{
	size_t i = 2;

	if (n < 2 + SVCB_PARAM_HDR || get16(v) != n - 2)
		return false;
	while (i < n) {
		if (n - i < 4 || get16(v + i + 2) > n - i - 4)
			return false;
		i += 4u + get16(v + i + 2);
	}
	return true;
}

/* mandatory (RFC 9460 8): a non-empty list of keys in strictly ascending
 * order, not including "mandatory"; that each is present is checked once
 * all keys are known. */
static bool mandatory_ok(const uint8_t *v, size_t n)
{
	if (n == 0 || n % 2 != 0)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		uint16_t k = get16(v + i);

		if (k == CODEC_SVCB_KEY_MANDATORY || (i > 0 && k <= get16(v + i - 2)))
			return false;
	}
	return true;
}

static const char *value_problem(uint16_t key, const uint8_t *v, size_t n)
{
	switch (key) {
	case CODEC_SVCB_KEY_MANDATORY:
		return mandatory_ok(v, n) ? NULL : "bad mandatory value";
	case CODEC_SVCB_KEY_ALPN:
		return alpn_ok(v, n) ? NULL : "bad alpn value";
	case CODEC_SVCB_KEY_NO_DEFAULT_ALPN:
		return n == 0 ? NULL : "no-default-alpn with a value";
	case CODEC_SVCB_KEY_PORT:
		return n == 2 ? NULL : "port not 2 octets";
	case CODEC_SVCB_KEY_IPV4HINT:
		return n > 0 && n % 4 == 0 ? NULL : "bad ipv4hint length";
	case CODEC_SVCB_KEY_ECH:
		return ech_ok(v, n) ? NULL : "bad ech ECHConfigList";
	case CODEC_SVCB_KEY_IPV6HINT:
		return n > 0 && n % 16 == 0 ? NULL : "bad ipv6hint length";
	case CODEC_SVCB_KEY_INVALID:
		return "reserved key 65535";
	default:
		return NULL;
	}
}

/* Is key among the SvcParams from params_off on? Keys ascend, so the
 * walk stops early. */
static bool key_present(const uint8_t *rd, size_t len, size_t params_off, uint16_t key)
{
	struct codec_svcb_param p;
	size_t pos = params_off;

	while (codec_svcb_param_next(rd, len, &pos, &p) == 1) {
		if (p.key >= key)
			return p.key == key;
	}
	return false;
}

static int check_mandatory(const uint8_t *rd, size_t len, struct codec_svcb *out,
                           const struct codec_svcb_param *m)
{
	for (size_t i = 0; i < m->len; i += 2) {
		if (!key_present(rd, len, out->params_off, get16(m->val + i)))
			return bad(out, "mandatory key missing");
	}
	return 0;
}

int codec_svcb_parse(const uint8_t *rd, size_t len, struct codec_svcb *out)
{
	struct codec_svcb_param p, mand = {0};
	size_t end, pos;
	int rc, prev = -1;

	memset(out, 0, sizeof(*out));
	if (rd == NULL || len < 3 || len > UINT16_MAX)
		return bad(out, "RDATA too short");
	out->priority = get16(rd);
	if (target_end(rd, len, &end) < 0)
		return bad(out, "bad TargetName");
	out->target_off = 2;
	out->target_len = (uint16_t)(end - 2);
	out->params_off = (uint16_t)end;
	pos = end;
	while ((rc = codec_svcb_param_next(rd, len, &pos, &p)) == 1) {
		const char *why = value_problem(p.key, p.val, p.len);

		if ((int)p.key <= prev)
			return bad(out, "SvcParamKeys not strictly ascending");
		if (why != NULL)
			return bad(out, why);
		if (p.key == CODEC_SVCB_KEY_MANDATORY)
			mand = p;
		prev = p.key;
		out->n_params++;
	}
	if (rc < 0)
		return bad(out, "SvcParam runs out of the RDATA");
	if (mand.val != NULL)
		return check_mandatory(rd, len, out, &mand);
	return 0;
}

int codec_svcb_param_next(const uint8_t *rd, size_t len, size_t *pos, struct codec_svcb_param *p)
{
	size_t i = *pos;

	if (i >= len)
		return 0;
	if (len - i < SVCB_PARAM_HDR || get16(rd + i + 2) > len - i - SVCB_PARAM_HDR)
		return -EBADMSG;
	p->key = get16(rd + i);
	p->len = get16(rd + i + 2);
	p->val = rd + i + SVCB_PARAM_HDR;
	*pos = i + SVCB_PARAM_HDR + p->len;
	return 1;
}

int codec_svcb_check_set(const uint8_t *stream, size_t len, unsigned *count, const char **why)
{
	struct codec_svcb sv;
	unsigned n = 0;
	size_t i = 0;

	if (count != NULL)
		*count = 0;
	while (i < len) {
		if (len - i < 2 || get16(stream + i) > len - i - 2) {
			if (why != NULL)
				*why = "RDATA length runs out of the RRset";
			return -EBADMSG;
		}
		size_t rdlen = get16(stream + i);

		if (codec_svcb_parse(stream + i + 2, rdlen, &sv) < 0) {
			if (why != NULL)
				*why = sv.why;
			return -EBADMSG;
		}
		i += 2 + rdlen;
		n++;
	}
	if (count != NULL)
		*count = n;
	return 0;
}

const char *codec_svcb_key_name(uint16_t key, char *buf, size_t size)
{
	static const char *const names[] = {"mandatory", "alpn", "no-default-alpn", "port",
	                                    "ipv4hint",  "ech",  "ipv6hint"};

	if (key < sizeof(names) / sizeof(names[0]))
		return names[key];
	if (size > 0)
		snprintf(buf, size, "key%u", (unsigned)key);
	return buf;
}

/* --- presentation format ------------------------------------------------ */

/* Output cursor: once a piece does not fit, nothing more is written, so
 * the text never ends in half an item. */
struct svcb_text {
	char *buf;
	size_t size;
	size_t pos;
	bool cut;
};

static void put(struct svcb_text *t, const char *s, size_t n)
{
	if (t->cut || t->size == 0 || n > t->size - 1 - t->pos) {
		t->cut = true;
		return;
	}
	memcpy(t->buf + t->pos, s, n);
	t->pos += n;
	t->buf[t->pos] = '\0';
}

static void puts_(struct svcb_text *t, const char *s)
{
	put(t, s, strlen(s));
}

/* One octet of a char-string (RFC 1035 5.1). In a value-list (alpn) a
 * ',' or '\' inside an item is escaped once more (RFC 9460 A.1), so it
 * is written "\\," or "\\\\". */
static void put_octet(struct svcb_text *t, uint8_t o, bool list)
{
	char esc[8];

	if (list && (o == ',' || o == '\\')) {
		esc[0] = '\\';
		esc[1] = '\\';
		esc[2] = o == '\\' ? '\\' : (char)o;
		esc[3] = '\\';
		put(t, esc, o == '\\' ? 4 : 3);
	} else if (o > ' ' && o < 0x7f && o != '"' && o != ';' && o != '(' && o != ')' &&
	           o != '\\') {
		esc[0] = (char)o;
		put(t, esc, 1);
	} else {
		snprintf(esc, sizeof(esc), "\\%03u", (unsigned)o);
		put(t, esc, 4);
	}
}

static void put_base64(struct svcb_text *t, const uint8_t *v, size_t n)
{
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)v[i] << 16;
		char q[4];

		if (i + 1 < n)
			w |= (uint32_t)v[i + 1] << 8;
		if (i + 2 < n)
			w |= v[i + 2];
		q[0] = b64[w >> 18 & 63];
		q[1] = b64[w >> 12 & 63];
		q[2] = i + 1 < n ? b64[w >> 6 & 63] : '=';
		q[3] = i + 2 < n ? b64[w & 63] : '=';
		put(t, q, 4);
	}
}

static void put_addrs(struct svcb_text *t, const uint8_t *v, size_t n, int af)
{
	size_t step = af == AF_INET ? 4 : 16;
	char a[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < n; i += step) {
		if (i > 0)
			put(t, ",", 1);
		if (inet_ntop(af, v + i, a, sizeof(a)) != NULL)
			puts_(t, a);
	}
}

static void put_value(struct svcb_text *t, const struct codec_svcb_param *p)
{
	char num[24], name[16];

	switch (p->key) {
	case CODEC_SVCB_KEY_MANDATORY:
		for (size_t i = 0; i < p->len; i += 2) {
			if (i > 0)
				put(t, ",", 1);
			puts_(t, codec_svcb_key_name(get16(p->val + i), name, sizeof(name)));
		}
		break;
	case CODEC_SVCB_KEY_ALPN:
		for (size_t i = 0; i < p->len; i += 1u + p->val[i]) {
			if (i > 0)
				put(t, ",", 1);
			for (size_t k = 0; k < p->val[i]; k++)
				put_octet(t, p->val[i + 1 + k], true);
		}
		break;
	case CODEC_SVCB_KEY_PORT:
		snprintf(num, sizeof(num), "%u", (unsigned)get16(p->val));
		puts_(t, num);
		break;
	case CODEC_SVCB_KEY_IPV4HINT:
		put_addrs(t, p->val, p->len, AF_INET);
		break;
	case CODEC_SVCB_KEY_ECH:
		put_base64(t, p->val, p->len);
		break;
	case CODEC_SVCB_KEY_IPV6HINT:
		put_addrs(t, p->val, p->len, AF_INET6);
		break;
	default:
		put(t, "\"", 1);
		for (size_t i = 0; i < p->len; i++)
			put_octet(t, p->val[i], false);
		put(t, "\"", 1);
		break;
	}
}

int codec_svcb_to_text(const uint8_t *rd, size_t len, char *out, size_t outlen)
{
	struct svcb_text t = {.buf = out, .size = outlen, .pos = 0, .cut = false};
	struct codec_svcb sv;
	struct codec_svcb_param p;
	char num[8], name[16], target[CODEC_MAX_NAME * 4 + 2];
	size_t pos;

	if (outlen > 0)
		out[0] = '\0';
	if (codec_svcb_parse(rd, len, &sv) < 0)
		return -EBADMSG;
	if (codec_name_to_text(rd + sv.target_off, sv.target_len, target, sizeof(target)) < 0)
		return -EBADMSG;
	snprintf(num, sizeof(num), "%u ", (unsigned)sv.priority);
	puts_(&t, num);
	puts_(&t, target);
	pos = sv.params_off;
	while (codec_svcb_param_next(rd, len, &pos, &p) == 1) {
		size_t mark = t.pos;

		put(&t, " ", 1);
		puts_(&t, codec_svcb_key_name(p.key, name, sizeof(name)));
		/* A key with an empty value is written alone (RFC 9460 2.1). */
		if (p.len > 0) {
			put(&t, "=", 1);
			put_value(&t, &p);
		}
		if (t.cut) {
			/* Whole SvcParams or none: take back the part written. */
			t.pos = mark;
			t.buf[mark] = '\0';
			break;
		}
	}
	return t.cut ? -EMSGSIZE : (int)t.pos;
}
