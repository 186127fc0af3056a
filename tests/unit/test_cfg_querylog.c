/* tests/unit/test_cfg_querylog.c - config/: [server] query-log.
 *
 * The path of the query log: off by default and when empty, an absolute
 * path to a file that exists and can be written or that can be created
 * in an existing directory; everything else is refused at load time with
 * the exact text an operator sees.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

#define BASE "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"
#define ALLOWED                                                                                    \
	"allowed: an absolute path of a regular file apexd may append to (created if absent), "    \
	"like /var/log/apexd/queries.log; empty for no query log\n"

struct dir {
	char path[64];
};

static int dir_setup(void **state)
{
	struct dir *d = malloc(sizeof(*d));
	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/apex-qlog-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;
	char p[128];

	snprintf(p, sizeof(p), "%s/q.log", d->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub", d->path);
	rmdir(p);
	rmdir(d->path);
	free(d);
	return 0;
}

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

static void test_querylog_default_and_empty_are_off(void **state)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	(void)state;
	assert_int_equal(load(BASE, &cfg, &err), 0);
	assert_string_equal(cfg->server.query_log, "");
	cfg_free(cfg);
	assert_int_equal(load(BASE "[server]\nquery-log =\n", &cfg, &err), 0);
	assert_string_equal(cfg->server.query_log, "");
	cfg_free(cfg);
	/* A comment alone is still empty. */
	assert_int_equal(load(BASE "[server]\nquery-log =   ; off\n", &cfg, &err), 0);
	assert_string_equal(cfg->server.query_log, "");
	cfg_free(cfg);
}

static void test_querylog_absent_file_in_writable_dir_is_accepted(void **state)
{
	struct dir *d = *state;
	char text[512], want[128];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	snprintf(want, sizeof(want), "%s/q.log", d->path);
	snprintf(text, sizeof(text), BASE "[server]\nquery-log = %s\n", want);
	int rc = load(text, &cfg, &err);
	if (rc != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg->server.query_log, want);
	cfg_free(cfg);
	/* Loading does not create it: apexd opens it when it starts. */
	assert_int_equal(access(want, F_OK), -1);
}

static void test_querylog_existing_file_is_accepted(void **state)
{
	struct dir *d = *state;
	char text[512], path[128];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	snprintf(path, sizeof(path), "%s/q.log", d->path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(text, sizeof(text), BASE "[server]\nquery-log = %s\n", path);
	assert_int_equal(load(text, &cfg, &err), 0);
	assert_string_equal(cfg->server.query_log, path);
	cfg_free(cfg);
}

static void test_querylog_relative_path_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[server]\nquery-log = queries.log\n",
	           "t.ini:6: [server] query-log: \"queries.log\" is not an absolute path of a "
	           "file; " ALLOWED);
	load_fails(BASE "[server]\nquery-log = /var/log/\n",
	           "t.ini:6: [server] query-log: \"/var/log/\" is not an absolute path of a "
	           "file; " ALLOWED);
}

static void test_querylog_directory_is_rejected(void **state)
{
	struct dir *d = *state;
	char text[512], msg[512];

	snprintf(text, sizeof(text), BASE "[server]\nquery-log = %s\n", d->path);
	snprintf(msg, sizeof(msg), "t.ini:6: [server] query-log: \"%s\" is a directory; " ALLOWED,
	         d->path);
	load_fails(text, msg);
}

static void test_querylog_missing_directory_is_rejected(void **state)
{
	struct dir *d = *state;
	char text[512], msg[512];

	snprintf(text, sizeof(text), BASE "[server]\nquery-log = %s/sub/q.log\n", d->path);
	snprintf(msg, sizeof(msg),
	         "t.ini:6: [server] query-log: \"%s/sub/q.log\" cannot be created: directory "
	         "%s/sub: No such file or directory; " ALLOWED,
	         d->path, d->path);
	load_fails(text, msg);
}

static void test_querylog_parent_not_a_directory_is_rejected(void **state)
{
	struct dir *d = *state;
	char text[512], msg[512], path[128];

	/* "sub" is a file here, so "sub/q.log" cannot be made. */
	snprintf(path, sizeof(path), "%s/sub", d->path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(text, sizeof(text), BASE "[server]\nquery-log = %s/q.log\n", path);
	snprintf(msg, sizeof(msg),
	         "t.ini:6: [server] query-log: \"%s/q.log\" cannot be used (Not a "
	         "directory); " ALLOWED,
	         path);
	load_fails(text, msg);
	unlink(path);
}

static void test_querylog_too_long_is_rejected(void **state)
{
	char *text = malloc(5000 + 200);
	(void)state;
	assert_non_null(text);
	int n = sprintf(text, BASE "[server]\nquery-log = /");
	memset(text + n, 'a', 4100);
	strcpy(text + n + 4100, "\n");
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;
	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "t.ini:6: [server] query-log: \"/aaa"));
	assert_non_null(strstr(err.msg, "is longer than 4095 bytes; allowed: an absolute path"));
	free(text);
}

static void test_querylog_duplicate_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[server]\nquery-log =\nquery-log =\n",
	           "t.ini:7: [server] query-log: duplicate key (first set at line 6); allowed: one "
	           "value per key\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_querylog_default_and_empty_are_off),
	        cmocka_unit_test_setup_teardown(
	                test_querylog_absent_file_in_writable_dir_is_accepted, dir_setup,
	                dir_teardown),
	        cmocka_unit_test_setup_teardown(test_querylog_existing_file_is_accepted, dir_setup,
	                                        dir_teardown),
	        cmocka_unit_test(test_querylog_relative_path_is_rejected),
	        cmocka_unit_test_setup_teardown(test_querylog_directory_is_rejected, dir_setup,
	                                        dir_teardown),
	        cmocka_unit_test_setup_teardown(test_querylog_missing_directory_is_rejected,
	                                        dir_setup, dir_teardown),
	        cmocka_unit_test_setup_teardown(test_querylog_parent_not_a_directory_is_rejected,
	                                        dir_setup, dir_teardown),
	        cmocka_unit_test(test_querylog_too_long_is_rejected),
	        cmocka_unit_test(test_querylog_duplicate_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
