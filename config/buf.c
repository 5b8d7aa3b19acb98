/* buf.c — the growable text buffer (buf.h). */
#include "config/buf.h"

#include <stdlib.h>
#include <string.h>

#include "config/utf8.h"

void dg_buf_init(dg_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

/* Makes room for n more bytes and the NUL. Returns 0, or -1 (and sets cut or oom). */
static int grow(dg_buf *b, size_t n)
{
    if (b->oom || b->cut) return -1;
    if (b->max && (b->len > b->max || n > b->max - b->len)) {
        b->cut = 1;
        return -1;
    }
    if (n >= b->cap - b->len) { /* no room for n bytes and the NUL */
        if (n > (size_t)-1 / 2 - b->len) {
            b->oom = 1;
            return -1;
        }
        size_t need = b->len + n + 1, cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap *= 2;
        if (b->max && cap > b->max + 1) cap = b->max + 1; /* need <= max + 1 here */
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = 1;
            return -1;
        }
        b->p = np;
        b->cap = cap;
    }
    return 0;
}

int dg_buf_reserve(dg_buf *b, size_t n)
{
    if (grow(b, n)) return -1;
    b->p[b->len] = '\0';
    return 0;
}

int dg_buf_add(dg_buf *b, const void *s, size_t n)
{
    if (grow(b, n)) return -1;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int dg_buf_str(dg_buf *b, const char *s)
{
    return dg_buf_add(b, s, strlen(s));
}

void dg_buf_free(dg_buf *b)
{
    free(b->p);
    dg_buf_init(b, b->max);
}

int dg_buf_json_str(dg_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n, run = 0;

    if (s == NULL) return dg_buf_add(b, "null", 4);
    n = strlen(s);
    if (dg_buf_add(b, "\"", 1)) return -1;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { /* the common case */
            run++;
            i++;
            continue;
        }
        size_t k = c >= 0x20 && c != '"' && c != '\\' ? dg_utf8_seq(p + i, n - i) : 0;
        if (k > 0) {
            run += k;
            i += k;
            continue;
        }
        if (run && dg_buf_add(b, (const char *)p + i - run, run)) return -1;
        run = 0;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            if (dg_buf_add(b, esc, 2)) return -1;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            if (dg_buf_add(b, esc, 6)) return -1;
        } else if (dg_buf_add(b, "\\ufffd", 6)) {
            return -1;
        }
        i++;
    }
    if (run && dg_buf_add(b, (const char *)p + n - run, run)) return -1;
    return dg_buf_add(b, "\"", 1);
}
