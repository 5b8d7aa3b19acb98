/* err.c — names and messages of dg_err, generated from DG_ERR_MAP. */
#include "config/err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[] = {
    "DG_OK",
#define DG_ERR_NAME(name, msg) "DG_E" #name,
    DG_ERR_MAP(DG_ERR_NAME)
#undef DG_ERR_NAME
};

static const char *const err_msgs[] = {
    "success",
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

/* Length of the valid UTF-8 sequence at s, or 0 (s is NUL-terminated). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0], cp;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
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
    for (unsigned char *p = (unsigned char *)err; *p;) {
        size_t n = utf8_len(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        if (*p == '\n' || *p == '\r') *p = ' ';
        p += n;
    }
    return code;
}
