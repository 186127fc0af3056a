/* Unit tests for proxy/io/pktinfo (the destination of a datagram on a
 * wildcard socket and the control message that makes its answer leave
 * from there) and for its use by the sendmmsg queue (proxy/io/udptx).
 *
 * The socket tests stay on loopback: a socket on 0.0.0.0 receives a query
 * sent to 127.0.0.2 by a client bound to 127.0.0.1 and connected to
 * 127.0.0.2, which the kernel hands only datagrams from 127.0.0.2. Over
 * IPv6 only ::1 exists outside a namespace of our own, so there the
 * destination and the interface index are checked, and the answer's
 * arrival.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/io/pktinfo.h"
#include "proxy/io/udptx.h"
#include "tests/unit/helpers.h"

union ctl {
	struct cmsghdr align;
	uint8_t b[2 * PX_PKTINFO_SPACE];
};

static struct px_udp_local local4(const char *text)
{
	struct px_udp_local l = {.family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, text, &l.addr.v4), 1);
	return l;
}

static struct px_udp_local local6(const char *text, uint32_t ifindex)
{
	struct px_udp_local l = {.family = AF_INET6, .ifindex = ifindex};
	assert_int_equal(inet_pton(AF_INET6, text, &l.addr.v6), 1);
	return l;
}

/* --- the control messages ----------------------------------------------- */

static void test_pktinfo_wildcard_only_unspecified(void **state)
{
	(void)state;
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
	struct sockaddr un = {.sa_family = AF_UNIX};

	assert_true(px_pktinfo_wildcard((struct sockaddr *)&in));
	assert_true(px_pktinfo_wildcard((struct sockaddr *)&in6));
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in6.sin6_addr = in6addr_loopback;
	assert_false(px_pktinfo_wildcard((struct sockaddr *)&in));
	assert_false(px_pktinfo_wildcard((struct sockaddr *)&in6));
	assert_false(px_pktinfo_wildcard(&un));
}

static void test_pktinfo_none_builds_no_cmsg(void **state)
{
	(void)state;
	union ctl c;
	struct px_udp_local none = {.family = 0};

	assert_int_equal(px_pktinfo_cmsg(NULL, c.b), 0);
	assert_int_equal(px_pktinfo_cmsg(&none, c.b), 0);
}

static void test_pktinfo_v4_cmsg_parses_back(void **state)
{
	(void)state;
	union ctl c;
	struct px_udp_local src = local4("192.0.2.10"), got;
	size_t n = px_pktinfo_cmsg(&src, c.b);
	struct msghdr mh = {.msg_control = c.b, .msg_controllen = n};

	assert_int_equal(n, CMSG_LEN(sizeof(struct in_pktinfo)));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	assert_int_equal(cm->cmsg_level, IPPROTO_IP);
	assert_int_equal(cm->cmsg_type, IP_PKTINFO);
	struct in_pktinfo pi;
	memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
	/* No interface: the routing table decides the way back. */
	assert_int_equal(pi.ipi_ifindex, 0);
	assert_int_equal(pi.ipi_spec_dst.s_addr, src.addr.v4.s_addr);
	px_pktinfo_parse(&mh, &got);
	assert_int_equal(got.family, AF_INET);
	assert_int_equal(got.addr.v4.s_addr, src.addr.v4.s_addr);
}

static struct in6_pktinfo v6_cmsg(const struct px_udp_local *src)
{
	union ctl c;
	size_t n = px_pktinfo_cmsg(src, c.b);
	struct msghdr mh = {.msg_control = c.b, .msg_controllen = n};
	struct in6_pktinfo pi;

	assert_int_equal(n, CMSG_LEN(sizeof(struct in6_pktinfo)));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	assert_int_equal(cm->cmsg_level, IPPROTO_IPV6);
	assert_int_equal(cm->cmsg_type, IPV6_PKTINFO);
	memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
	assert_memory_equal(&pi.ipi6_addr, &src->addr.v6, 16);
	return pi;
}

/* A global address goes out by route; a link-local one exists on its
 * link only, so it keeps the interface the query came in on. */
static void test_pktinfo_v6_ifindex_only_for_link_local(void **state)
{
	(void)state;
	struct px_udp_local global = local6("2001:db8::10", 7);
	struct px_udp_local ll = local6("fe80::10", 7);

	assert_int_equal(v6_cmsg(&global).ipi6_ifindex, 0);
	assert_int_equal(v6_cmsg(&ll).ipi6_ifindex, 7);
}

/* A received message's control buffer: another cmsg first, then the
 * pktinfo written as the kernel does. */
static size_t fake_rx_v6(union ctl *c, const char *addr, uint32_t ifindex, size_t pi_len)
{
	struct msghdr mh = {.msg_control = c->b, .msg_controllen = sizeof(c->b)};
	int ttl = 64;

	memset(c, 0, sizeof(*c));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = IPPROTO_IPV6;
	cm->cmsg_type = IPV6_HOPLIMIT;
	cm->cmsg_len = CMSG_LEN(sizeof(ttl));
	memcpy(CMSG_DATA(cm), &ttl, sizeof(ttl));
	cm = CMSG_NXTHDR(&mh, cm);
	struct in6_pktinfo pi = {.ipi6_ifindex = ifindex};
	assert_int_equal(inet_pton(AF_INET6, addr, &pi.ipi6_addr), 1);
	cm->cmsg_level = IPPROTO_IPV6;
	cm->cmsg_type = IPV6_PKTINFO;
	cm->cmsg_len = CMSG_LEN(pi_len);
	memcpy(CMSG_DATA(cm), &pi, pi_len);
	return CMSG_SPACE(sizeof(ttl)) + CMSG_SPACE(pi_len);
}

static void test_pktinfo_parse_v6_after_other_cmsg(void **state)
{
	(void)state;
	union ctl c;
	struct px_udp_local got;
	struct msghdr mh = {.msg_control = c.b};

	mh.msg_controllen = fake_rx_v6(&c, "2001:db8::10", 3, sizeof(struct in6_pktinfo));
	px_pktinfo_parse(&mh, &got);
	assert_int_equal(got.family, AF_INET6);
	assert_int_equal(got.ifindex, 3);
	struct px_udp_local want = local6("2001:db8::10", 3);
	assert_memory_equal(&got.addr.v6, &want.addr.v6, 16);
}

static void test_pktinfo_parse_rejects_what_is_no_source(void **state)
{
	(void)state;
	union ctl c;
	struct px_udp_local got = {.family = AF_INET6};
	struct msghdr mh = {.msg_control = c.b};

	/* No control data at all (a truncated control buffer too). */
	mh.msg_controllen = 0;
	px_pktinfo_parse(&mh, &got);
	assert_int_equal(got.family, 0);
	/* A multicast destination cannot be a source. */
	mh.msg_controllen = fake_rx_v6(&c, "ff02::1", 3, sizeof(struct in6_pktinfo));
	px_pktinfo_parse(&mh, &got);
	assert_int_equal(got.family, 0);
	/* A pktinfo shorter than the struct is not read. */
	mh.msg_controllen = fake_rx_v6(&c, "2001:db8::10", 3, 8);
	px_pktinfo_parse(&mh, &got);
	assert_int_equal(got.family, 0);
}

/* --- on loopback sockets ---------------------------------------------------- */

static int udp_socket(int family, const char *addr, uint16_t port, bool pktinfo)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	if (family == AF_INET6) {
		int one = 1;
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	}
	if (pktinfo)
		assert_int_equal(px_pktinfo_enable(fd, family), 0);
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		len = sizeof(*in6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void connect_to(int fd, int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_port = htons(port);
		inet_pton(AF_INET, addr, &in->sin_addr);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		len = sizeof(*in6);
	}
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
}

/* The server side: one datagram, its sender and its destination. */
static void rx_one(int fd, struct sockaddr_storage *peer, socklen_t *alen, struct px_udp_local *dst)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t buf[64];
	union ctl c;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_name = peer,
	                    .msg_namelen = sizeof(*peer),
	                    .msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = c.b,
	                    .msg_controllen = sizeof(c.b)};

	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(recvmsg(fd, &mh, 0), 5);
	*alen = mh.msg_namelen;
	px_pktinfo_parse(&mh, dst);
}

/* Did the connected client get the answer within ms? */
static bool client_got(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t buf[64];

	if (poll(&p, 1, ms) != 1)
		return false;
	return recv(fd, buf, sizeof(buf), 0) == 6;
}

static void no_fail(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                    const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	(void)owner, (void)tag, (void)msg, (void)len, (void)peer, (void)src;
	fail_msg("a queued answer failed: %s", strerror(-err));
}

/* Asked at 127.0.0.2 from 127.0.0.1: the kernel alone answers from
 * 127.0.0.1 (the route's source), which the client never sees; with the
 * destination as source, through the sendmmsg queue and through a
 * single send, it does. */
static void test_pktinfo_v4_answer_leaves_from_address_asked(void **state)
{
	(void)state;
	int srv = udp_socket(AF_INET, "0.0.0.0", 0, true);
	int cli = udp_socket(AF_INET, "127.0.0.1", 0, false);
	struct px_udp_tx *q = malloc(sizeof(*q));
	struct sockaddr_storage peer;
	socklen_t alen;
	struct px_udp_local dst;

	assert_non_null(q);
	px_udp_tx_init(q, no_fail);
	connect_to(cli, AF_INET, "127.0.0.2", port_of(srv));
	assert_int_equal(send(cli, "query", 5, 0), 5);
	rx_one(srv, &peer, &alen, &dst);
	assert_int_equal(dst.family, AF_INET);
	assert_int_equal(dst.addr.v4.s_addr, htonl(0x7f000002));

	assert_int_equal(px_pktinfo_sendmsg(srv, (struct sockaddr *)&peer, alen, NULL,
	                                    (const uint8_t *)"answer", 6),
	                 0);
	assert_false(client_got(cli, 200));
	assert_true(px_udp_tx_push(q, srv, NULL, 0, (struct sockaddr *)&peer,
	                           (const uint8_t *)"answer", 6));
	px_udp_tx_set_src(q, &dst);
	px_udp_tx_flush(q);
	assert_true(client_got(cli, 2000));
	assert_int_equal(px_pktinfo_sendmsg(srv, (struct sockaddr *)&peer, alen, &dst,
	                                    (const uint8_t *)"answer", 6),
	                 0);
	assert_true(client_got(cli, 2000));
	free(q);
	close(cli);
	close(srv);
}

static void test_pktinfo_v6_destination_and_interface(void **state)
{
	(void)state;
	int srv = socket(AF_INET6, SOCK_DGRAM, 0);
	if (srv < 0 || bind(srv,
	                    (struct sockaddr *)&(struct sockaddr_in6){
	                            .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT},
	                    sizeof(struct sockaddr_in6)) < 0) {
		/* A machine without IPv6 has nothing to test; CI has ::1 and
		 * must not pass by skipping. */
		if (srv >= 0)
			close(srv);
		const char *ci = getenv("CI");
		if (ci != NULL && strcmp(ci, "true") == 0)
			fail_msg("no ::1 to bind (CI=true: no skipping)");
		skip();
	}
	close(srv);
	srv = udp_socket(AF_INET6, "::", 0, true);
	int cli = udp_socket(AF_INET6, "::1", 0, false);
	struct px_udp_tx *q = malloc(sizeof(*q));
	struct sockaddr_storage peer;
	socklen_t alen;
	struct px_udp_local dst;

	assert_non_null(q);
	px_udp_tx_init(q, no_fail);
	connect_to(cli, AF_INET6, "::1", port_of(srv));
	assert_int_equal(send(cli, "query", 5, 0), 5);
	rx_one(srv, &peer, &alen, &dst);
	assert_int_equal(dst.family, AF_INET6);
	assert_true(IN6_IS_ADDR_LOOPBACK(&dst.addr.v6));
	assert_int_equal(dst.ifindex, if_nametoindex("lo"));
	assert_true(px_udp_tx_push(q, srv, NULL, 0, (struct sockaddr *)&peer,
	                           (const uint8_t *)"answer", 6));
	px_udp_tx_set_src(q, &dst);
	px_udp_tx_flush(q);
	assert_true(client_got(cli, 2000));
	free(q);
	close(cli);
	close(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pktinfo_wildcard_only_unspecified),
	        cmocka_unit_test(test_pktinfo_none_builds_no_cmsg),
	        cmocka_unit_test(test_pktinfo_v4_cmsg_parses_back),
	        cmocka_unit_test(test_pktinfo_v6_ifindex_only_for_link_local),
	        cmocka_unit_test(test_pktinfo_parse_v6_after_other_cmsg),
	        cmocka_unit_test(test_pktinfo_parse_rejects_what_is_no_source),
	        cmocka_unit_test(test_pktinfo_v4_answer_leaves_from_address_asked),
	        cmocka_unit_test(test_pktinfo_v6_destination_and_interface),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
