/* cfg_internal.h — helpers shared by the config loader's files (not a public interface).
 *
 * cfg_value.c turns one raw INI value into text or a typed scalar: ${ENV} expansion,
 * @secret files, booleans, bounded integers, sizes, comma lists, listen addresses and
 * URLs. cfg.c owns the INI reading, the per-section tables and the cross-checks. Every
 * function here writes a one-line reason into (err, errlen) on failure and never copies
 * the value itself into it, so a secret cannot leak through an error message.
 */
#ifndef DG_CFG_INTERNAL_H
#define DG_CFG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"

#define CFG_SECRET_MAX (64 * 1024) /* bytes of a secret file */
#define CFG_VALUE_MAX (64 * 1024)  /* bytes of a value after ${} expansion */

/* Expands raw: `${NAME}` and `${NAME:-default}` anywhere; a raw value that is exactly
 * "@path" (path itself may use ${}) is replaced by the file's contents, trailing newlines
 * stripped. On success returns 0, *out (caller frees), *from_file = 1 when it came from a
 * file, and a warning in warn (empty if none; e.g. a world-readable secret file). On
 * failure returns -1 with the reason in err. */
int cfg_expand_value(const char *raw, char **out, int *from_file, char *warn, size_t warnlen,
                     char *err, size_t errlen);

/* yes/no/true/false/on/off/1/0, case-insensitive. Returns 0 and *out (0/1), else -1. */
int cfg_parse_bool(const char *s, int *out);

/* A decimal integer in [min, max]. Returns 0, -1 (not an integer), or -2 (out of range). */
int cfg_parse_int(const char *s, long long min, long long max, long long *out);

/* A byte count with an optional k or m suffix (1024-based) in [min, max]. Returns 0, -1
 * (malformed) or -2 (out of range). */
int cfg_parse_size(const char *s, int64_t min, int64_t max, int64_t *out);

/* Splits a comma list, trimming items. An empty (all-blank) value is an empty list; an empty
 * item is an error. Returns 0 and *out (free with cfg_strlist_clear), or -1 with err. */
int cfg_parse_list(const char *s, cfg_strlist *out, char *err, size_t errlen);

/* Checks "host:port" or "[v6]:port". Returns 0, or -1 with err. */
int cfg_check_listen(const char *s, char *err, size_t errlen);

/* Checks an upstream base URL: https://host[:port][/path], or http:// to a loopback host.
 * Returns 0, or -1 with err. */
int cfg_check_url(const char *s, char *err, size_t errlen);

/* Appends a copy of s[0..len) to l. Returns 0, or -1 out of memory. */
int cfg_strlist_push(cfg_strlist *l, const char *s, size_t len);
void cfg_strlist_clear(cfg_strlist *l);

#endif
