/* err.h — the one error type of dealgate.
 *
 * Every module returns a dg_err. The table below generates the enum, the stable name
 * ("DG_ENOTFOUND") and a short message. Codes of libraries (errno, curl, SQLite, mbedTLS)
 * are translated to one of these once, where the call is made; the details go into the
 * one-line error text the caller passed (char *err, size_t errlen).
 */
#ifndef DG_ERR_H
#define DG_ERR_H

#include <stddef.h>

#define DG_ERR_MAP(X)                                                                              \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid input")                                                                      \
    X(PARSE, "cannot parse")                                                                       \
    X(RANGE, "value out of range")                                                                 \
    X(OVERFLOW, "arithmetic overflow")                                                             \
    X(TOOBIG, "too large")                                                                         \
    X(IO, "input/output error")                                                                    \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(CONFLICT, "conflict")                                                                        \
    X(AUTH, "not authorized")                                                                      \
    X(TIMEOUT, "timed out")                                                                        \
    X(UPSTREAM, "upstream error")                                                                  \
    X(THROTTLED, "upstream throttled")                                                             \
    X(UNAVAILABLE, "temporarily unavailable")                                                      \
    X(DB, "decision log error")                                                                    \
    X(CONFIG, "configuration error")                                                               \
    X(INTERNAL, "internal error")

typedef enum {
    DG_OK = 0,
#define DG_ERR_ENUM(name, msg) DG_E##name,
    DG_ERR_MAP(DG_ERR_ENUM)
#undef DG_ERR_ENUM
        DG_ERR_COUNT
} dg_err;

/* Returns the stable name of e ("DG_ENOTFOUND"); static storage. */
const char *dg_err_name(dg_err e);
/* Returns the short message of e ("not found"); static storage. */
const char *dg_strerror(dg_err e);

/* Writes a formatted one-line message into err (size errlen; nothing if err is NULL),
 * replacing any newline with a space and any byte that is not part of valid UTF-8 (a
 * quoted value cut by a precision or by errlen) with '?'. Returns code, so it can be used as
 * `return dg_errf(err, errlen, DG_EINVAL, "field %s", name);`. */
dg_err dg_errf(char *err, size_t errlen, dg_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
