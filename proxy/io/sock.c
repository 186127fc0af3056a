/* proxy/io/sock.c - listening sockets, bound by main before the workers run.
 *
 * libuv 1.44 has no flag for SO_REUSEPORT, so the socket is made here,
 * the option set, the address bound, and the descriptor handed to the
 * worker, which opens it with uv_udp_open()/uv_tcp_open(). Binding in
 * main means a busy port or a missing address stops startup with a clear
 * message instead of failing inside a thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/io/pktinfo.h"
#include "proxy/io/sock.h"

/* Room for bursts of queries while a worker is busy. Best effort: the
 * kernel caps it at net.core.rmem_max. */
#define PX_UDP_RCVBUF (4 * 1024 * 1024)

int px_sock_bind(const struct cfg_addr *a, int type, uv_os_sock_t *out)
{
	int one = 1;
	int fd = socket(a->sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* SO_REUSEADDR on TCP lets a restart bind past TIME_WAIT; on UDP it
	 * would let strangers share the port, so only TCP gets it. */
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* An IPv6 wildcard must not swallow the IPv4 port: both may be
	 * listed separately, as in BIND. */
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (type == SOCK_DGRAM) {
		int size = PX_UDP_RCVBUF;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		/* Before bind: a datagram queued without its destination would
		 * be answered from whatever address the kernel picks. */
		if (px_pktinfo_wildcard((const struct sockaddr *)&a->sa) &&
		    px_pktinfo_enable(fd, a->sa.ss_family) < 0)
			goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0)
		goto fail;
	*out = fd;
	return 0;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

int px_sock_probe(const struct cfg_addr *a, int type)
{
	int one = 1;
	int fd = socket(a->sa.ss_family, type | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->sa.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
