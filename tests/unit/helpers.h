/* tests/unit/helpers.h - shared helpers for the cmocka unit tests.
 *
 * Packet fixtures from hex text and from ldns presentation format, so a
 * test can state its input the way a human reads DNS.
 * Threads: test main thread only.
 */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/**
 * Decodes hex text ("0a 1b2c", whitespace and '#'-to-end-of-line comments
 * ignored) into out.
 * @return the byte count, or -1 on a bad digit or overflow of outlen.
 */
long th_hex(const char *hex, uint8_t *out, size_t outlen);
