/* Unit tests for proxy/io/udptx: the per-worker sendmmsg queues, and
 * what a failure callback may do to the queue being flushed (issue 12,
 * item 9). A connected AF_UNIX datagram socketpair stands in for a good
 * socket (what is sent can be read back, and no queue length limit
 * applies between a pair); an unconnected AF_UNIX datagram socket for a
 * broken one (every send fails with ENOTCONN).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/io/udptx.h"
#include "tests/unit/helpers.h"

/* The datagram's one byte of payload is its tag, so what arrives says
 * which entry it was. */
struct fixture {
	struct px_udp_tx *q;
	int good[2]; /* [0] sends, [1] reads */
	int bad;
	unsigned fails[256]; /* failure reports per tag */
	unsigned pushes;     /* entries the callback still queues */
	const void *forget;  /* the callback forgets this owner's entries */
};

static struct fixture *fx;

static void count_fail(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                       const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	(void)owner, (void)msg, (void)len, (void)peer, (void)src, (void)err;
	fx->fails[tag & 0xff]++;
}

/* As a backend send failure does: the transaction fails, which ends a
 * TCP connection's query and sends its next one to the backend, on the
 * queue being flushed. */
static void fail_then_push(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                           const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	count_fail(owner, tag, msg, len, peer, src, err);
	if (fx->forget != NULL)
		px_udp_tx_forget(fx->q, fx->forget, count_fail);
	if (fx->pushes == 0)
		return;
	fx->pushes--;
	uint8_t b = 2;
	/* Not queued: the caller sends it at once (as backend/udp.c does). */
	if (!px_udp_tx_push(fx->q, fx->good[0], NULL, 2, NULL, &b, 1))
		assert_int_equal(send(fx->good[0], &b, 1, MSG_DONTWAIT), 1);
}

static int setup(void **state)
{
	(void)state;
	fx = calloc(1, sizeof(*fx));
	fx->q = malloc(sizeof(*fx->q));
	if (fx == NULL || fx->q == NULL)
		return -1;
	px_udp_tx_init(fx->q, fail_then_push);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, fx->good) < 0)
		return -1;
	fx->bad = socket(AF_UNIX, SOCK_DGRAM, 0);
	return fx->bad < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	close(fx->good[0]);
	close(fx->good[1]);
	close(fx->bad);
	free(fx->q);
	free(fx);
	return 0;
}

/* Reads everything that arrived: how many datagrams of each tag. */
static void drain(unsigned got[256])
{
	uint8_t b[16];

	memset(got, 0, 256 * sizeof(got[0]));
	while (recv(fx->good[1], b, sizeof(b), MSG_DONTWAIT) == 1)
		got[b[0]]++;
}

static void push(int fd, const void *owner, uint8_t tag)
{
	assert_true(px_udp_tx_push(fx->q, fd, (void *)owner, tag, NULL, &tag, 1));
}

/* The entry the callback queues during the flush goes out in the same
 * flush, once; it used to be dropped with the queue's reset (the query
 * then got SERVFAIL at the backend timeout). */
static void test_udptx_entry_queued_by_failure_is_sent(void **state)
{
	(void)state;
	unsigned got[256];

	fx->pushes = 1;
	push(fx->bad, NULL, 1);
	push(fx->good[0], NULL, 3);
	px_udp_tx_flush(fx->q);
	drain(got);
	assert_int_equal(fx->fails[1], 1);
	assert_int_equal(got[3], 1);
	if (got[2] != 1)
		fail_msg("the datagram queued by the failure callback arrived %u times", got[2]);
	assert_false(px_udp_tx_pending(fx->q));
}

/* A full queue: the callback's push used to flush it from inside the
 * flush, sending every entry a second time and losing its own. */
static void test_udptx_full_queue_push_during_flush_sends_each_once(void **state)
{
	(void)state;
	unsigned got[256];

	fx->pushes = 1;
	push(fx->bad, NULL, 1);
	for (unsigned i = 1; i < PX_UDP_TX_MAX; i++)
		push(fx->good[0], NULL, (uint8_t)(100 + i));
	px_udp_tx_flush(fx->q);
	drain(got);
	assert_int_equal(fx->fails[1], 1);
	for (unsigned i = 1; i < PX_UDP_TX_MAX; i++)
		if (got[100 + i] != 1)
			fail_msg("datagram %u arrived %u times", 100 + i, got[100 + i]);
	assert_int_equal(got[2], 1);
	assert_false(px_udp_tx_pending(fx->q));
}

/* The callback closes an owner's socket (px_udp_tx_forget): its entries
 * still in the flush's current run are handled by forget alone, once. */
static void test_udptx_forget_during_flush_handles_each_once(void **state)
{
	(void)state;
	static const char owner = 0;

	fx->forget = &owner;
	push(fx->bad, &owner, 1);
	push(fx->bad, &owner, 4);
	push(fx->bad, &owner, 5);
	px_udp_tx_flush(fx->q);
	assert_int_equal(fx->fails[1], 1);
	if (fx->fails[4] != 1 || fx->fails[5] != 1)
		fail_msg("forgotten entries reported %u and %u times", fx->fails[4], fx->fails[5]);
	assert_false(px_udp_tx_pending(fx->q));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_udptx_entry_queued_by_failure_is_sent, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_udptx_full_queue_push_during_flush_sends_each_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_udptx_forget_during_flush_handles_each_once,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
