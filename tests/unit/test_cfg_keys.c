/* tests/unit/test_cfg_keys.c - config/: cfg_keys_foreach(), the key table.
 *
 * The docs check (unit.cfg_keys_docs) trusts that what cfg_keys_foreach()
 * reports is what the loader reads. These tests hold the two together:
 * every key reported is one the loader knows under its section (a bad
 * value gets a value error, never "unknown key"), keys not built yet are
 * refused as such, and the walk stops when asked to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

struct walk {
	unsigned keys, zone_keys, stop_after;
};

static int count_key(const struct cfg_key_info *k, void *arg)
{
	struct walk *w = arg;

	assert_non_null(k->section);
	assert_non_null(k->key);
	w->keys++;
	w->zone_keys += strcmp(k->section, "zone NAME") == 0;
	return w->stop_after != 0 && w->keys == w->stop_after ? 7 : 0;
}

static void test_keys_walk_reports_sections_as_the_docs_head_them(void **state)
{
	struct walk w = {0};

	(void)state;
	assert_int_equal(cfg_keys_foreach(count_key, &w), 0);
	/* 40 keys today; the bound only catches a walk that stopped early. */
	assert_true(w.keys >= 40);
	assert_int_equal(w.zone_keys, 3);
}

static void test_keys_walk_stops_at_nonzero_return(void **state)
{
	struct walk w = {.stop_after = 3};

	(void)state;
	assert_int_equal(cfg_keys_foreach(count_key, &w), 7);
	assert_int_equal(w.keys, 3);
}

/* Loads "[section]\nkey = ?" and checks how the key was taken: "?" is
 * wrong for every type, so the load fails, but the error must be about
 * the value (or "not supported yet" for a key not built), not about the
 * key's name. */
static int check_loader_knows(const struct cfg_key_info *k, void *arg)
{
	char text[512], header[64], want[128];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	(void)arg;
	if (strcmp(k->section, "zone NAME") == 0)
		snprintf(header, sizeof(header), "[zone example.com]");
	else
		snprintf(header, sizeof(header), "[%s]", k->section);
	snprintf(
	        text, sizeof(text),
	        "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n%s\n%s = ?\n",
	        header, k->key);
	assert_int_not_equal(cfg_load_mem("t.ini", text, strlen(text), &cfg, &err), 0);
	assert_null(cfg);
	snprintf(want, sizeof(want), "t.ini:6: %s %s: ", header, k->key);
	if (strstr(err.msg, want) == NULL)
		fail_msg("no error about line 6 (%s) in:\n%s", want, err.msg);
	if (strstr(err.msg, "unknown key") != NULL)
		fail_msg("[%s] %s is in the table but unknown to the loader:\n%s", k->section,
		         k->key, err.msg);
	if (k->later != (strstr(err.msg, "not supported by this version") != NULL))
		fail_msg("[%s] %s: later=%d, but the loader said:\n%s", k->section, k->key,
		         k->later, err.msg);
	return 0;
}

static void test_keys_every_key_is_read_by_the_loader(void **state)
{
	(void)state;
	assert_int_equal(cfg_keys_foreach(check_loader_knows, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keys_walk_reports_sections_as_the_docs_head_them),
	        cmocka_unit_test(test_keys_walk_stops_at_nonzero_return),
	        cmocka_unit_test(test_keys_every_key_is_read_by_the_loader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
