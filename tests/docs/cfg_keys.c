/* tests/docs/cfg_keys.c - cfg-keys: prints the configuration key table.
 *
 * One line per key, "[section] key", with " later" after a key that
 * CONFIG.md has but this version does not build yet. The lines come from
 * cfg_keys_foreach(), so the keys are written down once, in
 * config/keys.c; check_keys_docs.py holds the documentation to them.
 */
#include <stdio.h>

#include "config/config.h"

static int print_key(const struct cfg_key_info *k, void *arg)
{
	(void)arg;
	return printf("[%s] %s%s\n", k->section, k->key, k->later ? " later" : "") < 0;
}

int main(void)
{
	if (cfg_keys_foreach(print_key, NULL) != 0 || fflush(stdout) != 0) {
		perror("cfg-keys");
		return 1;
	}
	return 0;
}
