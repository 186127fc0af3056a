/* config/prefix.c - address prefixes ("10.0.0.0/8", "2001:db8::/32"):
 * parsed from the file, and matched against a peer's address.
 *
 * A prefix with bits set past its length ("10.1.2.3/8") is refused rather
 * than masked: it is either a typo or a misunderstanding, and for a list
 * of hosts allowed to name other clients neither should pass silently.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config/internal.h"

/* The first 12 bytes of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2). */
static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Is addr (len bits of it) inside p? Both in network order. */
static bool prefix_has(const struct cfg_prefix *p, const uint8_t *addr)
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (memcmp(p->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (p->addr[full] & mask) == (addr[full] & mask);
}

bool cfg_prefix_list_match(const struct cfg_prefix_list *l, const struct sockaddr *sa)
{
	const uint8_t *addr;
	int family;

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		addr = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		family = AF_INET6;
		if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			addr += sizeof(mapped);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].family == family && prefix_has(&l->v[i], addr))
			return true;
	return false;
}

/* Clears the bits of addr (alen bytes) past len; true if any was set. */
static bool clear_host_bits(uint8_t *addr, size_t alen, unsigned len)
{
	bool set = false;

	for (size_t i = 0; i < alen; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * (unsigned)i : 0;
		uint8_t mask = (uint8_t)(keep == 0 ? 0 : 0xff << (8 - keep));
		if (addr[i] & (uint8_t)~mask)
			set = true;
		addr[i] &= mask;
	}
	return set;
}

const char *cfg__parse_prefix(const char *s, size_t len, struct cfg_prefix *out, char *why,
                              size_t whylen)
{
	/* Longest valid address: 45 characters of IPv6 (with an IPv4 tail). */
	char host[48], ntop[INET6_ADDRSTRLEN];
	const char *slash = memchr(s, '/', len);
	size_t hlen = slash != NULL ? (size_t)(slash - s) : len;
	uint64_t plen;

	memset(out, 0, sizeof(*out));
	if (hlen == 0)
		return "has no address before the '/'";
	if (hlen >= sizeof(host))
		return "is not an IPv4 or IPv6 address";
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, host, out->addr) == 1)
		out->family = AF_INET6;
	else
		return "is not an IPv4 or IPv6 address";

	unsigned bits = out->family == AF_INET ? 32 : 128;
	size_t alen = bits / 8;
	if (slash == NULL) {
		plen = bits;
	} else if (cfg__parse_uint(slash + 1, len - hlen - 1, &plen) != 0 || plen > bits) {
		return out->family == AF_INET ? "prefix length must be 0..32"
		                              : "prefix length must be 0..128";
	}
	out->len = (unsigned)plen;
	/* ::ffff:a.b.c.d/N is an IPv4 prefix written the IPv6 way; peers
	 * are matched in their IPv4 form, so the prefix is kept in it too. */
	if (out->family == AF_INET6 && out->len >= 96 &&
	    memcmp(out->addr, mapped, sizeof(mapped)) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->len -= 96;
		alen = 4;
	}
	bool stray = clear_host_bits(out->addr, alen, out->len);
	if (inet_ntop(out->family, out->addr, ntop, sizeof(ntop)) == NULL)
		return "is not an IPv4 or IPv6 address";
	snprintf(out->text, sizeof(out->text), "%s/%u", ntop, out->len);
	if (stray) {
		snprintf(why, whylen, "has bits set past /%u; the prefix is %s", out->len,
		         out->text);
		return why;
	}
	return NULL;
}
