/* tests/unit/test_cfg_dnstap.c - config/: [server] dnstap and dnstap-chases.
 *
 * The destination is off by default and when empty; unix: takes an
 * absolute socket path that fits sun_path (the socket is the collector's
 * and may not exist yet), file: an absolute path apexd can write, checked
 * as the query log is. dnstap-chases = yes needs a destination. Errors
 * carry the file, the line and what is allowed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

#define BASE "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"
#define ALLOWED                                                                                    \
	"allowed: unix: and an absolute socket path of at most 107 bytes, like "                   \
	"unix:/run/apexd/dnstap.sock, or file: and an absolute path of a file apexd may write, "   \
	"like file:/var/log/apexd/apexd.dnstap; empty for no dnstap\n"

static int load(const char *text, struct cfg **cfg, struct cfg_error *err)
{
	return cfg_load_mem("t.ini", text, strlen(text), cfg, err);
}

static void load_fails(const char *text, const char *msg)
{
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;

	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.msg, msg);
}

static void test_dnstap_default_and_empty_are_off(void **state)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	(void)state;
	assert_int_equal(load(BASE, &cfg, &err), 0);
	assert_string_equal(cfg->server.dnstap, "");
	assert_false(cfg->server.dnstap_chases);
	cfg_free(cfg);
	assert_int_equal(load(BASE "[server]\ndnstap =\ndnstap-chases = no\n", &cfg, &err), 0);
	assert_string_equal(cfg->server.dnstap, "");
	cfg_free(cfg);
}

static void test_dnstap_unix_socket_need_not_exist(void **state)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	(void)state;
	assert_int_equal(load(BASE "[server]\ndnstap = unix:/nonexistent-dir/dnstap.sock\n"
	                           "dnstap-chases = yes\n",
	                      &cfg, &err),
	                 0);
	assert_string_equal(cfg->server.dnstap, "unix:/nonexistent-dir/dnstap.sock");
	assert_true(cfg->server.dnstap_chases);
	cfg_free(cfg);
}

static void test_dnstap_file_checked_like_the_query_log(void **state)
{
	char dir[] = "/tmp/apex-tap-XXXXXX", text[512], want[512];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(text, sizeof(text), BASE "[server]\ndnstap = file:%s/t.dnstap\n", dir);
	assert_int_equal(load(text, &cfg, &err), 0);
	snprintf(want, sizeof(want), "file:%s/t.dnstap", dir);
	assert_string_equal(cfg->server.dnstap, want);
	cfg_free(cfg);
	snprintf(text, sizeof(text), BASE "[server]\ndnstap = file:%s/no/t.dnstap\n", dir);
	snprintf(want, sizeof(want),
	         "t.ini:6: [server] dnstap: \"%s/no/t.dnstap\" cannot be created: directory "
	         "%s/no: No such file or directory; " ALLOWED,
	         dir, dir);
	load_fails(text, want);
	snprintf(text, sizeof(text), BASE "[server]\ndnstap = file:%s\n", dir);
	snprintf(want, sizeof(want), "t.ini:6: [server] dnstap: \"%s\" is a directory; " ALLOWED,
	         dir);
	load_fails(text, want);
	rmdir(dir);
}

static void test_dnstap_bad_values_refused(void **state)
{
	(void)state;
	load_fails(BASE "[server]\ndnstap = /run/apexd/dnstap.sock\n",
	           "t.ini:6: [server] dnstap: \"/run/apexd/dnstap.sock\" is not unix:PATH or "
	           "file:PATH; " ALLOWED);
	load_fails(BASE "[server]\ndnstap = tcp:127.0.0.1:6000\n",
	           "t.ini:6: [server] dnstap: \"tcp:127.0.0.1:6000\" is not unix:PATH or "
	           "file:PATH; " ALLOWED);
	load_fails(BASE "[server]\ndnstap = unix:\n",
	           "t.ini:6: [server] dnstap: \"unix:\" is not unix:PATH or file:PATH; " ALLOWED);
	load_fails(BASE "[server]\ndnstap = unix:run/dnstap.sock\n",
	           "t.ini:6: [server] dnstap: \"unix:run/dnstap.sock\" is not an absolute path of "
	           "a socket; " ALLOWED);
	load_fails(BASE "[server]\ndnstap = unix:/run/apexd/\n",
	           "t.ini:6: [server] dnstap: \"unix:/run/apexd/\" is not an absolute path of a "
	           "socket; " ALLOWED);
	load_fails(BASE "[server]\ndnstap = file:var/log/x\n",
	           "t.ini:6: [server] dnstap: \"var/log/x\" is not an absolute path of a "
	           "file; " ALLOWED);
	/* 108 bytes of path: one more than sun_path holds with its NUL. */
	char text[512], want[700], path[109];
	memset(path, 'a', 108);
	path[0] = '/';
	path[108] = '\0';
	snprintf(text, sizeof(text), BASE "[server]\ndnstap = unix:%s\n", path);
	snprintf(want, sizeof(want),
	         "t.ini:6: [server] dnstap: \"unix:%s\": the socket path is longer than 107 "
	         "bytes; " ALLOWED,
	         path);
	load_fails(text, want);
	path[107] = '\0';
	snprintf(text, sizeof(text), BASE "[server]\ndnstap = unix:%s\n", path);
	struct cfg *cfg = NULL;
	struct cfg_error err;
	assert_int_equal(load(text, &cfg, &err), 0);
	cfg_free(cfg);
}

static void test_dnstap_chases_needs_dnstap(void **state)
{
	(void)state;
	load_fails(BASE "[server]\ndnstap-chases = yes\n",
	           "t.ini:6: [server] dnstap-chases: yes needs [server] dnstap (where the messages "
	           "go); allowed: no, or yes once dnstap = unix:PATH or file:PATH is set\n");
	load_fails(BASE "[server]\ndnstap-chases = often\n",
	           "t.ini:6: [server] dnstap-chases: \"often\" is not a boolean; allowed: yes, no, "
	           "true, "
	           "false, on, off\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dnstap_default_and_empty_are_off),
	        cmocka_unit_test(test_dnstap_unix_socket_need_not_exist),
	        cmocka_unit_test(test_dnstap_file_checked_like_the_query_log),
	        cmocka_unit_test(test_dnstap_bad_values_refused),
	        cmocka_unit_test(test_dnstap_chases_needs_dnstap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
