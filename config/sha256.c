/* sha256.c — the hex SHA-256 digest (sha256.h), on mbedTLS. */
#include "config/sha256.h"

#include <mbedtls/sha256.h>

void dg_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char h[32];
    mbedtls_sha256_ret((const unsigned char *)data, len, h, 0);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[h[i] >> 4];
        hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[64] = '\0';
}
