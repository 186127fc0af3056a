/* tests/unit/test_px_health.c - proxy/health/: the fall/rise state
 * machine, the HTTP status line parser, the shared table as the answer
 * path reads it, and the checker thread against a real (loopback) port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "codec/name.h"
#include "config/config.h"
#include "proxy/health/health.h"
#include "proxy/health/internal.h"

/* ---- the state machine -------------------------------------------------- */

static void test_sm_fall_rise(void **state)
{
	struct px_health_sm sm = {0};

	(void)state;
	/* Unknown is served; two failures of fall 3 leave it so. */
	px_health_sm_step(&sm, false, 3, 2);
	px_health_sm_step(&sm, false, 3, 2);
	assert_int_equal(sm.state, PX_HS_UNKNOWN);
	assert_int_equal(px_health_sm_step(&sm, false, 3, 2), PX_HS_UNKNOWN);
	assert_int_equal(sm.state, PX_HS_DOWN);
	/* One success of rise 2 is not enough; a failure resets it. */
	px_health_sm_step(&sm, true, 3, 2);
	assert_int_equal(sm.state, PX_HS_DOWN);
	px_health_sm_step(&sm, false, 3, 2);
	px_health_sm_step(&sm, true, 3, 2);
	assert_int_equal(sm.state, PX_HS_DOWN);
	assert_int_equal(px_health_sm_step(&sm, true, 3, 2), PX_HS_DOWN);
	assert_int_equal(sm.state, PX_HS_UP);
	/* Up: fall consecutive failures, a success in between resets. */
	px_health_sm_step(&sm, false, 3, 2);
	px_health_sm_step(&sm, false, 3, 2);
	px_health_sm_step(&sm, true, 3, 2);
	px_health_sm_step(&sm, false, 3, 2);
	px_health_sm_step(&sm, false, 3, 2);
	assert_int_equal(sm.state, PX_HS_UP);
	px_health_sm_step(&sm, false, 3, 2);
	assert_int_equal(sm.state, PX_HS_DOWN);

	/* A first success from unknown is up at once; fall 1 is down at once. */
	sm = (struct px_health_sm){0};
	px_health_sm_step(&sm, true, 1, 5);
	assert_int_equal(sm.state, PX_HS_UP);
	px_health_sm_step(&sm, false, 1, 5);
	assert_int_equal(sm.state, PX_HS_DOWN);
	/* Counters saturate instead of wrapping. */
	for (int i = 0; i < 300; i++)
		px_health_sm_step(&sm, false, 1, 5);
	assert_int_equal(sm.fails, 255);
	assert_int_equal(sm.state, PX_HS_DOWN);
}

/* ---- the HTTP status line ------------------------------------------------ */

static int status(const char *s)
{
	size_t used = 0;
	return px_health_http_status((const uint8_t *)s, strlen(s), &used);
}

static int final(const char *s)
{
	return px_health_http_final((const uint8_t *)s, strlen(s));
}

static void test_http_status_line(void **state)
{
	size_t used = 0;
	const char *ok = "HTTP/1.1 200 OK\r\nServer: x\r\n";

	(void)state;
	assert_int_equal(px_health_http_status((const uint8_t *)ok, strlen(ok), &used), 200);
	assert_int_equal(used, 17);
	assert_int_equal(status("HTTP/1.0 301 Moved Permanently\r\n"), 301);
	assert_int_equal(status("HTTP/1.1 500\r\n"), 500);              /* no SP, no reason */
	assert_int_equal(status("HTTP/1.1 204 \r\n"), 204);             /* empty reason */
	assert_int_equal(status("HTTP/1.1 200 \xe2\x9c\x93\r\n"), 200); /* obs-text */
	/* Every prefix of a good line asks for more. */
	for (size_t n = 0; n < strlen(ok) - 13; n++) {
		size_t u = 0;
		if (n < 17)
			assert_int_equal(px_health_http_status((const uint8_t *)ok, n, &u), 0);
	}
	/* Strict: anything else is no status line. */
	assert_int_equal(status("HTTP/2 200\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 200 OK\n"), -1); /* bare LF */
	assert_int_equal(status("http/1.1 200 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1  200 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 20 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 2000 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 099 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 600 OK\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 200 O\x01K\r\n"), -1);
	assert_int_equal(status("HTTP/1.x 200 OK\r\n"), -1);
	assert_int_equal(status("SSH-2.0-OpenSSH\r\n"), -1);
	assert_int_equal(status("HTTP/1.1 200 OK\rX"), -1);
}

static void test_http_final_skips_interim(void **state)
{
	(void)state;
	assert_int_equal(final("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n"), 503);
	assert_int_equal(final("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"),
	                 200);
	assert_int_equal(final("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"), 0);
	assert_int_equal(final("HTTP/1.1 103 Early Hints\r\nLink: </a>\n\n"), -1);
	assert_int_equal(final("HTTP/1.1 100 Continue\r\n\r\n"), 0);
	assert_int_equal(final("HTTP/1.1 404 Not Found\r\n"), 404);
	assert_int_equal(final("HTTP/1.1 200 OK"), 0);
	assert_int_equal(final("<html>"), -1);
}

/* ---- the table ---------------------------------------------------------- */

static struct cfg *load(const char *extra)
{
	char text[1024];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	snprintf(text, sizeof(text),
	         "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"
	         "[zone example.com]\n%s",
	         extra);
	if (cfg_load_mem("t.ini", text, strlen(text), &cfg, &err) != 0)
		fail_msg("%s", err.msg);
	return cfg;
}

static const uint8_t owner[] = "\3www\7example\3com";

/* Puts an entry into a slot as the checker would. */
static void publish(struct px_health *h, const struct cfg_check *c, const uint8_t *addr,
                    uint16_t qtype, enum px_health_state st)
{
	uint64_t key = px_health_key(h, c, owner, sizeof(owner), qtype), a[2];

	px_health_addr_words(addr, qtype, a);
	uint32_t i = px_health_bucket(key, a);
	while (atomic_load(&h->slots[i].tag) != 0)
		i++; /* the next way of the bucket */
	atomic_store(&h->slots[i].a[0], a[0]);
	atomic_store(&h->slots[i].a[1], a[1]);
	atomic_store(&h->slots[i].state, st);
	atomic_store(&h->slots[i].tag, key);
}

static void test_table_reads(void **state)
{
	(void)state;
	/* No zone has a check: the table is there, the thread is not. */
	struct cfg *cfg = load("");
	struct px_health *h = px_health_new(cfg);
	struct cfg_check tls = {.kind = CFG_CHECK_TLS, .port = 443};
	struct cfg_check tcp = {.kind = CFG_CHECK_TCP, .port = 443};
	const uint8_t a1[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2};
	uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8};
	memcpy(a6 + 4, a1, 4);

	assert_non_null(h);
	assert_false(atomic_load(&h->running));
	publish(h, &tls, a1, 1, PX_HS_DOWN);
	publish(h, &tls, a2, 1, PX_HS_UP);

	struct px_health_ask ask = {
	        .h = h, .check = &tls, .owner = owner, .owner_len = sizeof(owner)};
	assert_true(px_health_down(&ask, a1, 1));
	assert_false(px_health_down(&ask, a2, 1));
	/* Another family, another check, another owner, no check, no state:
	 * unknown, so up; nothing handed over without a checker. */
	assert_false(px_health_down(&ask, a6, 28));
	struct px_health_ask other = ask;
	other.check = &tcp;
	other.key = 0;
	assert_false(px_health_down(&other, a1, 1));
	other = ask;
	other.owner = (const uint8_t *)"\3xxx\7example\3com";
	other.key = 0;
	assert_false(px_health_down(&other, a1, 1));
	other = ask;
	other.check = &cfg->zones[0].check; /* none */
	assert_false(px_health_down(&other, a1, 1));
	other.h = NULL;
	other.check = &tls;
	assert_false(px_health_down(&other, a1, 1));
	assert_int_equal(h->n_pending, 0);
	/* The same address as IPv4 and IPv6 (mapped) are different keys. */
	publish(h, &tls, a6, 28, PX_HS_DOWN);
	assert_true(px_health_down(&ask, a6, 28));
	assert_true(px_health_down(&ask, a1, 1));
	/* A dropped slot (tag 0) reads as unknown. */
	uint64_t key = px_health_key(h, &tls, owner, sizeof(owner), 1), w[2];
	px_health_addr_words(a1, 1, w);
	int idx = px_health_find(h, key, w);
	assert_true(idx >= 0);
	atomic_store(&h->slots[idx].tag, 0);
	assert_false(px_health_down(&ask, a1, 1));
	px_health_free(h);
	cfg_free(cfg);
}

/* The key folds case exactly as codec_name_lower does, for every octet
 * value at every position of the 8-octet words it reads. */
static void test_key_folds_case(void **state)
{
	(void)state;
	struct cfg *cfg = load("");
	struct px_health *h = px_health_new(cfg);
	struct cfg_check c = {.kind = CFG_CHECK_HTTP, .port = 80, .path = "/A"};
	struct cfg_check c2 = {.kind = CFG_CHECK_HTTP, .port = 80, .path = "/a"};
	uint8_t name[64], low[64];

	for (unsigned v = 0; v < 256; v++) {
		for (unsigned pos = 1; pos < 20; pos++) {
			/* one label of 20 octets, then the root */
			name[0] = 20;
			for (unsigned i = 1; i <= 20; i++)
				name[i] = (uint8_t)('a' + i);
			name[pos] = (uint8_t)v;
			name[21] = 0;
			memcpy(low, name, 22);
			codec_name_lower(low, 22);
			assert_true(px_health_key(h, &c, name, 22, 1) ==
			            px_health_key(h, &c, low, 22, 1));
			if (low[pos] != (uint8_t)v) /* it folded: so did the key */
				assert_true(v >= 'A' && v <= 'Z');
		}
	}
	name[1] = 'x';
	assert_true(px_health_key(h, &c, name, 22, 1) != px_health_key(h, &c, name, 22, 28));
	assert_true(px_health_key(h, &c, name, 22, 1) != px_health_key(h, &c2, name, 22, 1));
	px_health_free(h);
	cfg_free(cfg);
}

/* ---- the checker, end to end on loopback --------------------------------- */

static int listen_on(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t free_port(void)
{
	int fd = listen_on(0);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Asks until the answer is want, for 10 s at most (a bound, not a timing
 * assertion: the checker needs fall x 100 ms here). */
static bool wait_for(struct px_health_ask *ask, const uint8_t *addr, bool want)
{
	uint16_t qtype = addr[0] == 127 ? 1 : 28;

	for (int i = 0; i < 1000; i++) {
		if (px_health_down(ask, addr, qtype) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_checker_tcp(void **state)
{
	(void)state;
	uint16_t port = free_port();
	char extra[128];
	snprintf(extra, sizeof(extra),
	         "check = tcp:%u\n[health]\ninterval = 100ms\ntimeout = 100ms\nfall = 2\n"
	         "rise = 1\n",
	         port);
	struct cfg *cfg = load(extra);
	struct px_health *h = px_health_new(cfg);
	const uint8_t lo[4] = {127, 0, 0, 1};

	assert_non_null(h);
	assert_true(atomic_load(&h->running));
	assert_false(px_health_any_down(h));
	struct px_health_ask ask = {
	        .h = h, .check = &cfg->zones[0].check, .owner = owner, .owner_len = sizeof(owner)};
	/* Nothing listens: refused twice, then down. */
	assert_true(wait_for(&ask, lo, true));
	assert_true(atomic_load(&h->checks[PX_HR_REFUSED]) >= 2);
	/* The answer path's quick test sees it (flat/health.c). */
	assert_true(px_health_any_down(h));
	/* ::1 for AAAA, the same way (nothing listens there either). */
	const uint8_t lo6[16] = {[15] = 1};
	assert_true(wait_for(&ask, lo6, true));
	/* A listener: up again after one success. */
	int fd = listen_on(port);
	assert_true(fd >= 0);
	assert_true(wait_for(&ask, lo, false));
	assert_true(atomic_load(&h->checks[PX_HR_OK]) >= 1);
	/* ::1 is still down; once it is dropped (below) nothing is. */
	assert_true(px_health_any_down(h));
	close(fd);

	/* A reload to a check nobody used drops the entry at once. */
	struct cfg *cfg2 = load("check = tcp:1\n");
	px_health_reload(h, cfg2);
	for (int i = 0; i < 1000 && atomic_load(&h->n_addrs) != 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&h->n_addrs), 0);
	assert_false(px_health_any_down(h));
	px_health_free(h);
	cfg_free(cfg);
	cfg_free(cfg2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sm_fall_rise),
	        cmocka_unit_test(test_http_status_line),
	        cmocka_unit_test(test_http_final_skips_interim),
	        cmocka_unit_test(test_table_reads),
	        cmocka_unit_test(test_key_folds_case),
	        cmocka_unit_test(test_checker_tcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
