/* buf.c — the growable text buffer (buf.h). */
#include "config/buf.h"

#include <stdlib.h>
#include <string.h>

void dg_buf_init(dg_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

int dg_buf_add(dg_buf *b, const void *s, size_t n)
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
