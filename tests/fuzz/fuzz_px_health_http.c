/* tests/fuzz/fuzz_px_health_http.c - libFuzzer target for the status line
 * parser of [health] http: checks (px_health_http_status, _final).
 *
 * The input is the response head as a server would send it. Each prefix
 * is parsed from an exact-size copy, so a read past the bytes given is an
 * AddressSanitizer report. Checked: a status is 100..599 with the line
 * length inside the input and ending in CRLF; "need more" never turns
 * into a verdict that a longer input contradicts (a prefix that failed
 * stays failed, one that decided stays decided the same way).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/health/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > PX_HEALTH_HTTP_MAX)
		size = PX_HEALTH_HTTP_MAX;
	int first = 0, first_final = 0;
	for (size_t n = 0; n <= size; n++) {
		uint8_t *p = malloc(n ? n : 1);
		if (p == NULL)
			return 0;
		memcpy(p, data, n);
		size_t used = 0;
		int code = px_health_http_status(p, n, &used);
		int fin = px_health_http_final(p, n);
		free(p);
		check(code == 0 || code == -1 || (code >= 100 && code <= 599));
		if (code > 0) {
			check(used >= 14 && used <= n);
			check(data[used - 2] == '\r' && data[used - 1] == '\n');
		}
		check(fin == 0 || fin == -1 || (fin >= 100 && fin <= 599));
		if (first != 0)
			check(code == first);
		else
			first = code;
		if (first_final != 0)
			check(fin == first_final);
		else
			first_final = fin;
	}
	return 0;
}
