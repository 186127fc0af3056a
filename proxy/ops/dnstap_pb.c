/* proxy/ops/dnstap_pb.c - the dnstap message as protocol buffer bytes.
 *
 * Protocol buffer encoding, the four pieces used: a key is a varint of
 * (field number << 3 | wire type); wire type 0 is a varint (7 bits a
 * byte, low bits first, high bit set on all but the last), 2 a varint
 * length and that many bytes (strings, bytes, nested messages), 5 four
 * bytes little-endian (fixed32). A nested message is written after its
 * length, so the Message is measured first (message_len(), which the
 * unit tests hold to what put_message() writes); with the total known
 * to fit, the writes check nothing.
 */
#include <assert.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/ops/dnstap_pb.h"

/* Field numbers of dnstap.proto. */
enum {
	F_DNSTAP_IDENTITY = 1,
	F_DNSTAP_VERSION = 2,
	F_DNSTAP_MESSAGE = 14,
	F_DNSTAP_TYPE = 15,
	F_MSG_TYPE = 1,
	F_MSG_SOCKET_FAMILY = 2,
	F_MSG_SOCKET_PROTOCOL = 3,
	F_MSG_QUERY_ADDRESS = 4,
	F_MSG_RESPONSE_ADDRESS = 5,
	F_MSG_QUERY_PORT = 6,
	F_MSG_RESPONSE_PORT = 7,
	F_MSG_QUERY_TIME_SEC = 8,
	F_MSG_QUERY_TIME_NSEC = 9,
	F_MSG_QUERY_MESSAGE = 10,
	F_MSG_RESPONSE_TIME_SEC = 12,
	F_MSG_RESPONSE_TIME_NSEC = 13,
	F_MSG_RESPONSE_MESSAGE = 14,
};

enum { WT_VARINT = 0, WT_LEN = 2, WT_FIXED32 = 5 };

/* Dnstap.Type MESSAGE; SocketFamily INET, INET6. */
#define DNSTAP_TYPE_MESSAGE 1
#define FAMILY_INET 1
#define FAMILY_INET6 2

/* A varint of 64 bits takes at most 10 bytes. */
#define VARINT_MAX 10

/* Bytes of a Message beyond its two DNS messages: every key, varint and
 * length at its largest, two IPv6 addresses. Generous on purpose. */
#define MSG_FIXED_MAX 160

/* A cursor into a buffer known to be big enough: the total is computed
 * first, so no write below checks for room. */
struct pb {
	uint8_t *p;
};

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_varint(struct pb *pb, uint64_t v)
{
	while (v >= 0x80) {
		*pb->p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*pb->p++ = (uint8_t)v;
}

/* Every field number here is below 16: its key is one byte. */
static void put_key(struct pb *pb, unsigned field, unsigned wt)
{
	*pb->p++ = (uint8_t)(field << 3 | wt);
}

static void put_uint(struct pb *pb, unsigned field, uint64_t v)
{
	put_key(pb, field, WT_VARINT);
	put_varint(pb, v);
}

static void put_bytes(struct pb *pb, unsigned field, const void *p, size_t n)
{
	put_key(pb, field, WT_LEN);
	put_varint(pb, n);
	memcpy(pb->p, p, n);
	pb->p += n;
}

static void put_fixed32(struct pb *pb, unsigned field, uint32_t v)
{
	put_key(pb, field, WT_FIXED32);
	pb->p[0] = (uint8_t)v;
	pb->p[1] = (uint8_t)(v >> 8);
	pb->p[2] = (uint8_t)(v >> 16);
	pb->p[3] = (uint8_t)(v >> 24);
	pb->p += 4;
}

/* Bytes of a key + varint field, and of a key + length + bytes field. */
static size_t uint_len(uint64_t v)
{
	return 1 + varint_len(v);
}

static size_t bytes_len(size_t n)
{
	return 1 + varint_len(n) + n;
}

/* Address bytes and port of sa; false for anything but IPv4 and IPv6. */
static bool sa_parts(const struct sockaddr *sa, const uint8_t **addr, size_t *len, uint16_t *port)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		*addr = (const uint8_t *)&in->sin_addr;
		*len = 4;
		*port = ntohs(in->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		*addr = (const uint8_t *)&in6->sin6_addr;
		*len = 16;
		*port = ntohs(in6->sin6_port);
		return true;
	}
	return false;
}

static void put_time(struct pb *pb, unsigned f_sec, unsigned f_nsec, const struct px_tap_time *t)
{
	if (t->sec == 0)
		return;
	put_uint(pb, f_sec, t->sec);
	put_fixed32(pb, f_nsec, t->nsec);
}

/* The fields of a Message, in field-number order. */
static void put_message(struct pb *pb, const struct px_tap_msg *m)
{
	const uint8_t *qa = NULL, *ra = NULL;
	size_t qalen = 0, ralen = 0;
	uint16_t qport = 0, rport = 0;
	bool has_q = sa_parts(m->query_sa, &qa, &qalen, &qport);
	bool has_r = sa_parts(m->response_sa, &ra, &ralen, &rport);

	put_uint(pb, F_MSG_TYPE, (uint64_t)m->type);
	if (has_q || has_r)
		put_uint(pb, F_MSG_SOCKET_FAMILY,
		         (has_q ? qalen : ralen) == 4 ? FAMILY_INET : FAMILY_INET6);
	put_uint(pb, F_MSG_SOCKET_PROTOCOL, (uint64_t)m->proto);
	if (has_q)
		put_bytes(pb, F_MSG_QUERY_ADDRESS, qa, qalen);
	if (has_r)
		put_bytes(pb, F_MSG_RESPONSE_ADDRESS, ra, ralen);
	if (has_q)
		put_uint(pb, F_MSG_QUERY_PORT, qport);
	if (has_r)
		put_uint(pb, F_MSG_RESPONSE_PORT, rport);
	put_time(pb, F_MSG_QUERY_TIME_SEC, F_MSG_QUERY_TIME_NSEC, &m->query_time);
	if (m->query != NULL)
		put_bytes(pb, F_MSG_QUERY_MESSAGE, m->query, m->query_len);
	put_time(pb, F_MSG_RESPONSE_TIME_SEC, F_MSG_RESPONSE_TIME_NSEC, &m->response_time);
	if (m->response != NULL)
		put_bytes(pb, F_MSG_RESPONSE_MESSAGE, m->response, m->response_len);
}

/* What put_message() writes, in bytes. */
static size_t message_len(const struct px_tap_msg *m)
{
	const uint8_t *a;
	size_t qalen = 0, ralen = 0, n = 0;
	uint16_t qport = 0, rport = 0;
	bool has_q = sa_parts(m->query_sa, &a, &qalen, &qport);
	bool has_r = sa_parts(m->response_sa, &a, &ralen, &rport);

	n += uint_len((uint64_t)m->type) + uint_len((uint64_t)m->proto);
	if (has_q || has_r)
		n += 2; /* socket_family: 1 or 2 */
	if (has_q)
		n += bytes_len(qalen) + uint_len(qport);
	if (has_r)
		n += bytes_len(ralen) + uint_len(rport);
	if (m->query_time.sec != 0)
		n += uint_len(m->query_time.sec) + 5;
	if (m->query != NULL)
		n += bytes_len(m->query_len);
	if (m->response_time.sec != 0)
		n += uint_len(m->response_time.sec) + 5;
	if (m->response != NULL)
		n += bytes_len(m->response_len);
	return n;
}

size_t px_tap_encode_max(const struct px_tap_msg *m, size_t identity_len, size_t version_len)
{
	size_t n = MSG_FIXED_MAX + identity_len + version_len + 4 * VARINT_MAX;

	if (m->query != NULL)
		n += m->query_len;
	if (m->response != NULL)
		n += m->response_len;
	return n;
}

size_t px_tap_encode(uint8_t *out, size_t cap, const char *identity, size_t identity_len,
                     const char *version, size_t version_len, const struct px_tap_msg *m)
{
	size_t mlen = message_len(m);
	size_t total = bytes_len(mlen) + uint_len(DNSTAP_TYPE_MESSAGE);
	struct pb pb = {out};

	if (identity_len > 0)
		total += bytes_len(identity_len);
	if (version_len > 0)
		total += bytes_len(version_len);
	if (total > cap)
		return 0;
	if (identity_len > 0)
		put_bytes(&pb, F_DNSTAP_IDENTITY, identity, identity_len);
	if (version_len > 0)
		put_bytes(&pb, F_DNSTAP_VERSION, version, version_len);
	put_key(&pb, F_DNSTAP_MESSAGE, WT_LEN);
	put_varint(&pb, mlen);
	put_message(&pb, m);
	put_uint(&pb, F_DNSTAP_TYPE, DNSTAP_TYPE_MESSAGE);
	assert((size_t)(pb.p - out) == total);
	return total;
}
