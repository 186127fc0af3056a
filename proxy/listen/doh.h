/* proxy/listen/doh.h - the HTTP/2 session of a DoH connection (RFC 8484),
 * over its TLS stream.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct px_conn;

int px_doh_start(struct px_conn *c);
/* Decrypted bytes from the client. */
void px_doh_recv(struct px_conn *c, const uint8_t *p, size_t n);
/* The DNS answer for a stream; a stream already reset is dropped. */
void px_doh_reply(struct px_conn *c, int32_t stream, const uint8_t *msg, size_t len);
/* Shutdown: GOAWAY, then close when the streams in flight are answered. */
void px_doh_goaway(struct px_conn *c);
/* Writes what nghttp2 has to send now. */
void px_doh_flush(struct px_conn *c);
void px_doh_free(struct px_conn *c);
