/* proxy/io/pktinfo.c - the local address of a datagram on a wildcard socket
 * (see pktinfo.h for why).
 */
#include <errno.h>
#include <string.h>
#include <uv.h>

#include "proxy/io/pktinfo.h"

bool px_pktinfo_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

int px_pktinfo_enable(int fd, int family)
{
	int one = 1;
	int rc = family == AF_INET6
	                 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one))
	                 : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	return rc < 0 ? -errno : 0;
}

void px_pktinfo_parse_any(const struct msghdr *mh, struct px_udp_local *out)
{
	out->family = 0;
	out->ifindex = 0;
	if (mh->msg_controllen == 0)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			if (pi.ipi_spec_dst.s_addr == htonl(INADDR_ANY))
				return;
			out->family = AF_INET;
			out->addr.v4 = pi.ipi_spec_dst;
			return;
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			/* A multicast destination is no source: the kernel picks. */
			if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr) ||
			    IN6_IS_ADDR_UNSPECIFIED(&pi.ipi6_addr))
				return;
			out->family = AF_INET6;
			out->addr.v6 = pi.ipi6_addr;
			out->ifindex = pi.ipi6_ifindex;
			return;
		}
	}
}

int px_pktinfo_sendmsg(int fd, const struct sockaddr *peer, socklen_t alen,
                       const struct px_udp_local *src, const uint8_t *msg, size_t len)
{
	union {
		struct cmsghdr align;
		uint8_t b[PX_PKTINFO_SPACE];
	} ctl;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_name = (void *)peer,
	                    .msg_namelen = peer != NULL ? alen : 0,
	                    .msg_iov = &iov,
	                    .msg_iovlen = 1};
	size_t cl = px_pktinfo_cmsg(src, ctl.b);

	if (cl > 0) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = cl;
	}
	ssize_t rc;
	do
		rc = sendmsg(fd, &mh, MSG_DONTWAIT);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? uv_translate_sys_error(errno) : 0;
}

void px_pktinfo_of_cmsg(const void *buf, struct px_udp_local *out)
{
	const struct cmsghdr *c = buf;
	struct msghdr mh = {.msg_control = (void *)buf, .msg_controllen = c->cmsg_len};

	px_pktinfo_parse_any(&mh, out);
}
