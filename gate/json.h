/* json.h — strict JSON intake on top of cJSON.
 *
 * cJSON 1.7.15 accepts duplicate keys, cuts strings at \u0000, does not check UTF-8 and keeps
 * numbers only as doubles. gate_json_parse() refuses all of those before a handler sees the
 * tree, so a handler can trust what it reads. Money from JSON goes through
 * gate_json_amount() (exact; numbers only while exactly representable).
 */
#ifndef DG_JSON_H
#define DG_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/err.h"

/* Parses body (len bytes, need not be NUL-terminated). Returns DG_OK and *out (caller
 * frees with cJSON_Delete); DG_EPARSE for malformed JSON ("malformed JSON at byte N: ...",
 * an HTTP 400); DG_EINVAL for valid JSON that is refused (duplicate key, NUL character,
 * invalid UTF-8, nesting deeper than 64; an HTTP 422, the message names the field). */
dg_err gate_json_parse(const char *body, size_t len, cJSON **out, char *err, size_t errlen);

/* Reads an optional string member `key` of obj. Returns DG_OK with *val borrowed (NULL when
 * absent or JSON null), or DG_EINVAL "field <path>.<key> must be a string". `path` names
 * obj in messages ("opportunity"); may be "". max_len 0 = unlimited, else longer is EINVAL. */
dg_err gate_json_str(const cJSON *obj, const char *path, const char *key, size_t max_len,
                     const char **val, char *err, size_t errlen);

/* Reads a money amount: a decimal string or a JSON number (exact, |x| < 10^12). Returns
 * DG_OK and *minor, DG_EINVAL naming the field otherwise. */
dg_err gate_json_amount(const cJSON *item, const char *field, int exponent, int64_t *minor,
                        char *err, size_t errlen);

/* Writes the hex SHA-256 of root printed unformatted into hex (65 bytes): the identity of
 * an event's content for idempotency (same id, other body: 409). Returns DG_OK or
 * DG_ENOMEM. */
dg_err gate_json_hash(const cJSON *root, char hex[65]);

#endif
