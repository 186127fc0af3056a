/* codec/ecs.c - the EDNS Client Subnet option (RFC 7871). */
#include "codec/ecs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECS_OPTION_CODE 8

size_t codec_ecs_addr_len(uint16_t family)
{
	switch (family) {
	case CODEC_ECS_FAMILY_IP4:
		return 4;
	case CODEC_ECS_FAMILY_IP6:
		return 16;
	default:
		return 0;
	}
}

static unsigned prefix_octets(unsigned prefix)
{
	return (prefix + 7u) / 8u;
}

void codec_ecs_mask(uint8_t *addr, size_t len, unsigned prefix)
{
	size_t full = prefix / 8u;
	if (full >= len)
		return;
	unsigned rest = prefix % 8u;
	if (rest != 0) {
		addr[full] &= (uint8_t)(0xffu << (8u - rest));
		full++;
	}
	memset(addr + full, 0, len - full);
}

/* RFC 7871 6: bits past SOURCE "MUST be set to 0"; a server that finds
 * any set must answer FORMERR (7.1.1), since a cache keyed on the
 * address would otherwise split one subnet into several. */
static bool tail_is_zero(const uint8_t *addr, unsigned octets, unsigned prefix)
{
	if (octets == 0)
		return true;
	unsigned rest = prefix % 8u;
	if (rest != 0 && (addr[octets - 1] & (uint8_t)(0xffu >> rest)) != 0)
		return false;
	return true;
}

int codec_ecs_parse(const uint8_t *data, size_t len, bool query, struct codec_ecs *out)
{
	if (len < 4)
		return -EINVAL;
	uint16_t family = (uint16_t)((unsigned)data[0] << 8 | data[1]);
	size_t width = codec_ecs_addr_len(family);
	if (width == 0)
		return -EAFNOSUPPORT;
	unsigned source = data[2], scope = data[3];
	if (source > width * 8 || scope > width * 8)
		return -EINVAL;
	if (query && scope != 0)
		return -EINVAL;
	unsigned octets = prefix_octets(source);
	if (len - 4 != octets)
		return -EINVAL;
	if (!tail_is_zero(data + 4, octets, source))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = family;
	out->source = (uint8_t)source;
	out->scope = (uint8_t)scope;
	memcpy(out->addr, data + 4, octets);
	return 0;
}

int codec_ecs_find(const uint8_t *msg, const struct codec_view *v, bool query,
                   struct codec_ecs *out)
{
	size_t off;
	uint16_t len;
	if (!v->has_opt || !codec_edns_option(msg, v, ECS_OPTION_CODE, &off, &len))
		return 0;
	int rc = codec_ecs_parse(msg + off, len, query, out);
	return rc < 0 ? rc : 1;
}

size_t codec_ecs_write(const struct codec_ecs *e, uint8_t *out, size_t room)
{
	size_t width = codec_ecs_addr_len(e->family);
	if (width == 0 || e->source > width * 8 || e->scope > width * 8)
		return 0;
	unsigned octets = prefix_octets(e->source);
	size_t need = 8 + octets;
	if (room < need)
		return 0;
	size_t dlen = 4 + octets;
	out[0] = 0;
	out[1] = ECS_OPTION_CODE;
	out[2] = (uint8_t)(dlen >> 8);
	out[3] = (uint8_t)dlen;
	out[4] = (uint8_t)(e->family >> 8);
	out[5] = (uint8_t)e->family;
	out[6] = e->source;
	out[7] = e->scope;
	memcpy(out + 8, e->addr, octets);
	/* The caller's address may carry bits past SOURCE; the wire must not. */
	codec_ecs_mask(out + 8, octets, e->source);
	return need;
}

static unsigned clamp(unsigned prefix, unsigned width)
{
	return prefix > width ? width : prefix;
}

int codec_ecs_from_sockaddr(const struct sockaddr *sa, unsigned prefix4, unsigned prefix6,
                            struct codec_ecs *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		out->family = CODEC_ECS_FAMILY_IP4;
		memcpy(out->addr, &s4->sin_addr, 4);
		out->source = (uint8_t)clamp(prefix4, 32);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; the
		 * CDN must see them as the IPv4 clients they are. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			out->family = CODEC_ECS_FAMILY_IP4;
			memcpy(out->addr, s6->sin6_addr.s6_addr + 12, 4);
			out->source = (uint8_t)clamp(prefix4, 32);
		} else {
			out->family = CODEC_ECS_FAMILY_IP6;
			memcpy(out->addr, s6->sin6_addr.s6_addr, 16);
			out->source = (uint8_t)clamp(prefix6, 128);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	codec_ecs_mask(out->addr, 16, out->source);
	return 0;
}

void codec_ecs_cut(struct codec_ecs *e, unsigned max)
{
	if (e->source > max)
		e->source = (uint8_t)max;
	codec_ecs_mask(e->addr, 16, e->source);
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8u, rest = prefix % 8u;
	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t m = (uint8_t)(0xffu << (8u - rest));
	return (a[full] & m) == (b[full] & m);
}

bool codec_ecs_matches(const struct codec_ecs *query, const struct codec_ecs *resp)
{
	return query->family == resp->family && query->source == resp->source &&
	       prefix_equal(query->addr, resp->addr, query->source);
}

bool codec_ecs_covers(uint16_t family, unsigned prefix, const uint8_t *addr,
                      const struct codec_ecs *client)
{
	return family == client->family && prefix <= client->source &&
	       prefix <= codec_ecs_addr_len(family) * 8 && prefix_equal(addr, client->addr, prefix);
}

int codec_ecs_format(const struct codec_ecs *e, bool with_scope, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];
	int af = e->family == CODEC_ECS_FAMILY_IP4 ? AF_INET : AF_INET6;
	if (codec_ecs_addr_len(e->family) == 0 ||
	    inet_ntop(af, e->addr, text, sizeof(text)) == NULL)
		return snprintf(out, size, "family%u/%u", e->family, e->source);
	if (with_scope)
		return snprintf(out, size, "%s/%u/%u", text, e->source, e->scope);
	return snprintf(out, size, "%s/%u", text, e->source);
}

int codec_ecs_from_text(const char *text, struct codec_ecs *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(text);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n + 1);
	char *slash = strchr(buf, '/');
	long prefix = -1;
	if (slash != NULL) {
		*slash = '\0';
		const char *p = slash + 1;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		char *end;
		prefix = strtol(p, &end, 10);
		if (*end != '\0' || end - p > 3)
			return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	unsigned width;
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = CODEC_ECS_FAMILY_IP4;
		width = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = CODEC_ECS_FAMILY_IP6;
		width = 128;
	} else {
		return -EINVAL;
	}
	if (prefix > (long)width)
		return -EINVAL;
	out->source = (uint8_t)(prefix < 0 ? width : (unsigned)prefix);
	codec_ecs_mask(out->addr, 16, out->source);
	return 0;
}
