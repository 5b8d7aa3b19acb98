/* err.c — names and messages of dg_err, generated from DG_ERR_MAP. */
#include "config/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/utf8.h"

static const char *const err_names[] = {"DG_OK",
#define DG_ERR_NAME(name, msg) "DG_E" #name,
                                        DG_ERR_MAP(DG_ERR_NAME)
#undef DG_ERR_NAME
};

static const char *const err_msgs[] = {"success",
#define DG_ERR_MSG(name, msg) msg,
                                       DG_ERR_MAP(DG_ERR_MSG)
#undef DG_ERR_MSG
};

const char *dg_err_name(dg_err e)
{
    return (unsigned)e < DG_ERR_COUNT ? err_names[e] : "DG_EUNKNOWN";
}

const char *dg_strerror(dg_err e)
{
    return (unsigned)e < DG_ERR_COUNT ? err_msgs[e] : "unknown error";
}

dg_err dg_errf(char *err, size_t errlen, dg_err code, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* One line of valid UTF-8: messages quote input ("%.64s" may cut a character in two,
     * and the buffer may cut the end) and go into JSON answers as they are. */
    unsigned char *p = (unsigned char *)err, *end = p + strlen(err);
    while (p < end) {
        size_t n = dg_utf8_seq(p, (size_t)(end - p));
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        if (*p == '\n' || *p == '\r') *p = ' ';
        p += n;
    }
    return code;
}
