/* Loop tests for a UDP listener on a wildcard address (proxy/listen/
 * udpwild.c): its own recvmmsg with the destination of each datagram,
 * apexd's own reply sent from that destination, answers held for a full
 * socket buffer and sent when it drains, and the close.
 *
 * The worker is a bare one: a loop, the receive block, nothing else. A
 * query then finds no transaction slot and gets apexd's SERVFAIL
 * ("overloaded"), written by the query path itself, which is all a test of
 * the transport needs. Loopback only: the listener on 0.0.0.0 is asked at
 * 127.0.0.2 by a client bound to 127.0.0.1 and connected to 127.0.0.2,
 * which the kernel hands only datagrams from 127.0.0.2.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/wire.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/io/pktinfo.h"
#include "proxy/io/sock.h"
#include "proxy/listen/listen.h"
#include "tests/unit/helpers.h"

struct fixture {
	struct px_worker *w;
	struct px_udp_listener *l;
	int cli;
	struct sockaddr_in cli_addr;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->w = calloc(1, sizeof(*f->w));
	/* An empty configuration: no proxy-protocol-from, so every datagram
	 * is a query of its own. */
	static struct cfg empty_cfg;
	f->w->cfg = &empty_cfg;
	/* A server of one worker: nothing to steer (engine/steer.c). */
	static struct px_server srv;
	srv.n_workers = 1;
	srv.workers = f->w;
	f->w->srv = &srv;
	f->l = calloc(1, sizeof(*f->l));
	assert_non_null(f->w);
	assert_non_null(f->l);
	assert_int_equal(uv_loop_init(&f->w->loop), 0);
	f->w->udp_rx = malloc((size_t)PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX);
	assert_non_null(f->w->udp_rx);

	/* The listener, bound the way main binds it. */
	struct sockaddr_in any = {.sin_family = AF_INET};
	memcpy(&f->l->addr.sa, &any, sizeof(any));
	f->l->addr.salen = sizeof(any);
	strcpy(f->l->addr.text, "0.0.0.0:0");
	assert_int_equal(px_sock_bind(&f->l->addr, SOCK_DGRAM, &f->l->fd), 0);
	struct sockaddr_in bound;
	socklen_t blen = sizeof(bound);
	assert_int_equal(getsockname(f->l->fd, (struct sockaddr *)&bound, &blen), 0);
	assert_int_equal(px_udp_start(f->l, f->w), 0);
	assert_true(f->l->pktinfo);

	/* The client: from 127.0.0.1, connected to 127.0.0.2. */
	f->cli = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f->cli >= 0);
	f->cli_addr = (struct sockaddr_in){.sin_family = AF_INET,
	                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(f->cli, (struct sockaddr *)&f->cli_addr, sizeof(f->cli_addr)), 0);
	socklen_t clen = sizeof(f->cli_addr);
	assert_int_equal(getsockname(f->cli, (struct sockaddr *)&f->cli_addr, &clen), 0);
	struct sockaddr_in to = {.sin_family = AF_INET,
	                         .sin_port = bound.sin_port,
	                         .sin_addr.s_addr = htonl(0x7f000002)};
	assert_int_equal(connect(f->cli, (struct sockaddr *)&to, sizeof(to)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* Removing the listener closes and frees it; then the loop has
	 * nothing left. */
	if (f->l != NULL)
		px_udp_remove(f->l);
	assert_int_equal(uv_run(&f->w->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->w->loop), 0);
	close(f->cli);
	free(f->w->udp_rx);
	free(f->w);
	free(f);
	return 0;
}

/* Runs the loop until the client has a datagram (or 2 s pass); its
 * length, 0 if none came. */
static ssize_t client_recv(struct fixture *f, uint8_t *buf, size_t len)
{
	for (int i = 0; i < 200; i++) {
		uv_run(&f->w->loop, UV_RUN_NOWAIT);
		struct pollfd p = {.fd = f->cli, .events = POLLIN};
		if (poll(&p, 1, 10) == 1)
			return recv(f->cli, buf, len, 0);
	}
	return 0;
}

static void test_udpwild_reply_from_address_asked(void **state)
{
	struct fixture *f = *state;
	uint8_t q[64], r[512];
	long qlen = th_pkt("hdr 0x4242 0x0100\nqd www.example.test IN A", q, sizeof(q));

	assert_true(qlen > 0);
	assert_int_equal(send(f->cli, q, (size_t)qlen, 0), qlen);
	ssize_t n = client_recv(f, r, sizeof(r));
	if (n <= 0)
		fail_msg("no reply on the socket connected to 127.0.0.2");
	assert_true(n >= CODEC_HDR_LEN);
	assert_int_equal(codec_get_u16(r), 0x4242);
	assert_int_equal(r[3] & 0x0f, CODEC_RCODE_SERVFAIL);
}

/* The queue's failure callback with a full buffer: the answer is held,
 * with its source, and sent when the socket is writable again. */
static void test_udpwild_held_answers_leave_from_their_source(void **state)
{
	struct fixture *f = *state;
	struct px_udp_local src = {.family = AF_INET};
	uint8_t r[16];

	src.addr.v4.s_addr = htonl(0x7f000002);
	for (uint8_t i = 0; i < 3; i++) {
		uint8_t msg[4] = {'a', 'n', 's', i};
		px_udp_send_failed(f->l, 0, msg, sizeof(msg), (struct sockaddr *)&f->cli_addr, &src,
		                   UV_EAGAIN);
	}
	assert_int_equal(f->l->n_held, 3);
	assert_true(px_udp_sends_pending(f->l));
	for (uint8_t i = 0; i < 3; i++) {
		ssize_t n = client_recv(f, r, sizeof(r));
		assert_int_equal(n, 4);
		assert_int_equal(r[3], i); /* in the order they were held */
	}
	assert_int_equal(f->l->n_held, 0);
	assert_false(px_udp_sends_pending(f->l));
}

/* A held answer the listener cannot send any more still goes when it is
 * removed: the close waits for it. */
static void test_udpwild_removed_listener_waits_for_held(void **state)
{
	struct fixture *f = *state;
	struct px_udp_local src = {.family = AF_INET};
	uint8_t r[16];

	src.addr.v4.s_addr = htonl(0x7f000002);
	px_udp_send_failed(f->l, 0, (const uint8_t *)"last", 4, (struct sockaddr *)&f->cli_addr,
	                   &src, UV_ENOBUFS);
	px_udp_remove(f->l);
	f->l = NULL; /* freed by its close */
	assert_int_equal(client_recv(f, r, sizeof(r)), 4);
	assert_memory_equal(r, "last", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_udpwild_reply_from_address_asked, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_udpwild_held_answers_leave_from_their_source,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_udpwild_removed_listener_waits_for_held, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
