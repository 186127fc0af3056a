/* Unit tests for handing connections between workers (listen/move.c):
 * which connections move when the number of active workers changes
 * (px_move_target, pure), and the kernel's side of steering new
 * connections (io/steer.c) on real SO_REUSEPORT TCP listeners: the
 * program names a listener by the order the group's sockets called
 * listen(), which is why main listens right after binding, worker 0
 * first (daemon/bind.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/io/steer.h"
#include "proxy/listen/internal.h"
#include "tests/unit/helpers.h"

/* --- which connections move ---------------------------------------------- */

/* Moves out of worker idx for n connections of one kind, by target. */
static unsigned moves(unsigned idx, unsigned active, unsigned before, unsigned n, unsigned *to,
                      unsigned nto)
{
	unsigned moved = 0;

	memset(to, 0, nto * sizeof(*to));
	for (unsigned k = 0; k < n; k++) {
		int t = px_move_target(idx, active, before, k);
		if (t < 0)
			continue;
		assert_true((unsigned)t < active);
		assert_true((unsigned)t != idx);
		to[t]++;
		moved++;
	}
	return moved;
}

static void test_target_step_up(void **state)
{
	(void)state;
	unsigned to[8];

	/* 1 -> 2: every second connection of worker 0 goes to worker 1. */
	assert_int_equal(moves(0, 2, 1, 16, to, 8), 8);
	assert_int_equal(to[1], 8);
	/* 2 -> 4: each old worker gives half, a quarter to each joiner. */
	assert_int_equal(moves(0, 4, 2, 16, to, 8), 8);
	assert_int_equal(to[2], 4);
	assert_int_equal(to[3], 4);
	assert_int_equal(moves(1, 4, 2, 16, to, 8), 8);
	assert_int_equal(to[2], 4);
	assert_int_equal(to[3], 4);
	/* A joiner that somehow holds connections keeps them. */
	assert_int_equal(moves(2, 4, 2, 16, to, 8), 0);
	/* One connection of a kind: it stays (k = 0 is the old worker's). */
	assert_int_equal(moves(0, 2, 1, 1, to, 8), 0);
}

static void test_target_step_down(void **state)
{
	(void)state;
	unsigned to[8];

	/* 2 -> 1: worker 1 is left, all its connections go to worker 0. */
	assert_int_equal(moves(1, 1, 2, 10, to, 8), 10);
	assert_int_equal(to[0], 10);
	/* 4 -> 2: workers 2 and 3 hand theirs round 0 and 1, evenly. */
	assert_int_equal(moves(3, 2, 4, 10, to, 8), 10);
	assert_int_equal(to[0], 5);
	assert_int_equal(to[1], 5);
	/* The ones that stay receive and give nothing. */
	assert_int_equal(moves(0, 2, 4, 10, to, 8), 0);
	assert_int_equal(moves(1, 2, 4, 10, to, 8), 0);
	/* Same number: nothing moves; no active worker: nothing either. */
	assert_int_equal(moves(0, 2, 2, 10, to, 8), 0);
	assert_int_equal(px_move_target(1, 0, 2, 3), -1);
}

/* --- the kernel: new connections follow the program ---------------------- */

static int tcp_reuseport(uint16_t port, uint16_t *got)
{
	return th_reuseport_socket(SOCK_STREAM, port, got);
}

static unsigned accept_all(int fd)
{
	unsigned n = 0;
	int c;

	while ((c = accept(fd, NULL, NULL)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

/* count connections, each from a new source port, then who got them.
 * The handshake completes in connect() on loopback, before it returns. */
static void connect_many(uint16_t port, unsigned count, int l0, int l1, unsigned *n0, unsigned *n1)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	int cs[64];

	assert_true(count <= 64);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (unsigned i = 0; i < count; i++) {
		cs[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(cs[i] >= 0);
		assert_int_equal(connect(cs[i], (struct sockaddr *)&to, sizeof(to)), 0);
	}
	*n0 = accept_all(l0);
	*n1 = accept_all(l1);
	for (unsigned i = 0; i < count; i++)
		close(cs[i]);
	assert_int_equal(*n0 + *n1, count);
}

static void test_kernel_tcp_listen_order(void **state)
{
	(void)state;
	uint16_t port, port2;
	int first = tcp_reuseport(0, &port);
	int second = tcp_reuseport(port, &port2);
	unsigned n0, n1;

	assert_int_equal(port, port2);
	/* Bound first, listening second: the group's socket 0 is the one
	 * that listened first. */
	assert_int_equal(listen(second, 64), 0);
	assert_int_equal(listen(first, 64), 0);
	connect_many(port, 60, first, second, &n0, &n1);
	assert_true(n0 > 0 && n1 > 0); /* the kernel's hash: both, 2^-59 */

	assert_int_equal(px_steer_attach(first, 1), 0);
	connect_many(port, 60, first, second, &n0, &n1);
	assert_int_equal(n1, 60); /* "return 0" is the first to listen */

	assert_int_equal(px_steer_attach(first, 2), 0);
	connect_many(port, 60, first, second, &n0, &n1);
	assert_true(n0 > 0 && n1 > 0);

	assert_int_equal(px_steer_attach(second, 1), 0);
	connect_many(port, 60, first, second, &n0, &n1);
	assert_int_equal(n1, 60);
	close(first);
	close(second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_target_step_up),
	        cmocka_unit_test(test_target_step_down),
	        cmocka_unit_test(test_kernel_tcp_listen_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
