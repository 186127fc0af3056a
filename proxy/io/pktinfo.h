/* proxy/io/pktinfo.h - the local address of a datagram on a wildcard socket.
 *
 * A socket bound to 0.0.0.0 or [::] receives datagrams for every address
 * of the host. Its answer must leave from the address the client asked,
 * or the client (which matches the source of the reply) drops it; the
 * kernel alone would pick a source by route, which on a multi-homed host,
 * or for an anycast address on lo, is another address. So such a socket
 * asks for each datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO),
 * and every reply carries it back in an IP_PKTINFO or IPV6_PKTINFO
 * control message. A socket bound to one address needs none of this.
 *
 * Threads: any; nothing here keeps state.
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Control-message room for one in6_pktinfo (the larger of the two):
 * enough for a receive and for a send. */
#define PX_PKTINFO_SPACE CMSG_SPACE(sizeof(struct in6_pktinfo))

/** Where a datagram arrived: the source for its answer. */
struct px_udp_local {
	sa_family_t family; /* 0: not known (a specific socket), the kernel picks */
	uint32_t ifindex;   /* IPv6: the interface it came in on */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

/* Is sa an unspecified address (0.0.0.0, ::), whatever the port? */
bool px_pktinfo_wildcard(const struct sockaddr *sa);
/* Asks the kernel for each datagram's destination on fd (a socket of
 * family). 0 or a negative errno. */
int px_pktinfo_enable(int fd, int family);
/* The destination the kernel put into a received message's control
 * buffer into out (family 0 when there is none or it can be no source:
 * unspecified, or an IPv6 multicast group). */
void px_pktinfo_parse_any(const struct msghdr *mh, struct px_udp_local *out);
/* The same, inline for every query of a wildcard listener: a socket that
 * asked for nothing else gets its pktinfo as the first message. */
static inline void px_pktinfo_parse(const struct msghdr *mh, struct px_udp_local *out)
{
	const struct cmsghdr *c = (const struct cmsghdr *)mh->msg_control;

	if (mh->msg_controllen >= CMSG_LEN(sizeof(struct in_pktinfo)) &&
	    c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
	    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
		struct in_pktinfo pi;
		memcpy(&pi, CMSG_DATA(c), sizeof(pi));
		/* ipi_spec_dst, not ipi_addr: for a unicast query they are
		 * the same address, and for one sent to a broadcast address
		 * only the former can be a source. */
		out->family = pi.ipi_spec_dst.s_addr != htonl(INADDR_ANY) ? AF_INET : 0;
		out->ifindex = 0;
		out->addr.v4 = pi.ipi_spec_dst;
		return;
	}
	if (mh->msg_controllen >= CMSG_LEN(sizeof(struct in6_pktinfo)) &&
	    c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
	    c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
		struct in6_pktinfo pi;
		memcpy(&pi, CMSG_DATA(c), sizeof(pi));
		/* A multicast destination is no source: the kernel picks. */
		out->family = IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr) ||
		                              IN6_IS_ADDR_UNSPECIFIED(&pi.ipi6_addr)
		                      ? 0
		                      : AF_INET6;
		out->ifindex = pi.ipi6_ifindex;
		out->addr.v6 = pi.ipi6_addr;
		return;
	}
	px_pktinfo_parse_any(mh, out);
}
/* Writes the control message that makes a reply leave from src into buf
 * (PX_PKTINFO_SPACE bytes, suitably aligned: a union with struct
 * cmsghdr); the msg_controllen for it, 0 when src is NULL or its family
 * 0. Every byte up to that length is written (no padding: it is the only
 * message). Inline: every answer of a wildcard listener passes here. */
static inline size_t px_pktinfo_cmsg(const struct px_udp_local *src, void *buf)
{
	struct cmsghdr *c = buf;

	if (src == NULL || src->family == 0)
		return 0;
	if (src->family == AF_INET) {
		/* No interface: the routing table picks the way back, as it
		 * does for a socket bound to the address itself. */
		struct in_pktinfo pi = {.ipi_ifindex = 0, .ipi_spec_dst = src->addr.v4};
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_LEN(sizeof(pi));
	}
	/* The interface of arrival only where the address needs it: a
	 * link-local address exists on its link alone. Elsewhere forcing it
	 * would override the routing table (asymmetric routes, policy
	 * routing on multi-homed hosts), which a bound socket never does. */
	struct in6_pktinfo pi = {.ipi6_addr = src->addr.v6, .ipi6_ifindex = 0};
	if (IN6_IS_ADDR_LINKLOCAL(&src->addr.v6))
		pi.ipi6_ifindex = src->ifindex;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_PKTINFO;
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	return CMSG_LEN(sizeof(pi));
}
/* The source a control message px_pktinfo_cmsg wrote says (the
 * interface only where the message kept it). */
void px_pktinfo_of_cmsg(const void *buf, struct px_udp_local *out);
/* One datagram to peer (alen bytes; NULL and 0 on a connected socket)
 * from src (NULL: the kernel picks). 0 or a libuv error. */
int px_pktinfo_sendmsg(int fd, const struct sockaddr *peer, socklen_t alen,
                       const struct px_udp_local *src, const uint8_t *msg, size_t len);
