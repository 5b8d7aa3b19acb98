/* sha256.h — the hex SHA-256 digest every layer uses (idempotency keys of event bodies,
 * history import keys, the fingerprint of a configured refresh token). */
#ifndef DG_CONFIG_SHA256_H
#define DG_CONFIG_SHA256_H

#include <stddef.h>

/* Writes the lower-case hex SHA-256 of data[0..len) and a NUL into hex. */
void dg_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
