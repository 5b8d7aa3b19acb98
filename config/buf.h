/* buf.h — a growable text buffer: the one every layer appends to (query pages, HTML pages,
 * commission results, expanded config values).
 *
 * The text is always NUL-terminated. `max` bounds the text's length (0: no bound). Once an
 * append fails (over max: `cut`; out of memory: `oom`), it and every later append do nothing
 * and return -1, so a caller may append freely and check once at the end. */
#ifndef DG_CONFIG_BUF_H
#define DG_CONFIG_BUF_H

#include <stddef.h>

typedef struct {
    char *p; /* NULL until the first append */
    size_t len, cap, max;
    int oom, cut;
} dg_buf;

/* Empties b (nothing allocated) with a length bound; 0 for none. */
void dg_buf_init(dg_buf *b, size_t max);
/* Appends n bytes of s. Returns 0, or -1 (and sets cut or oom). */
int dg_buf_add(dg_buf *b, const void *s, size_t n);
/* Makes room for n more bytes, so that appends up to that length do not allocate. Same
 * return. */
int dg_buf_reserve(dg_buf *b, size_t n);
/* Appends a NUL-terminated string. Same return. */
int dg_buf_str(dg_buf *b, const char *s);
/* Appends s as a JSON string literal, quotes included: `"` and `\` escaped, control
 * characters as \u00XX, invalid UTF-8 as U+FFFD. NULL appends `null`. Same return. */
int dg_buf_json_str(dg_buf *b, const char *s);
/* 1 once an append failed. */
static inline int dg_buf_failed(const dg_buf *b)
{
    return b->oom || b->cut;
}
/* Frees b's storage and empties it, keeping its bound; the failure flags are cleared. */
void dg_buf_free(dg_buf *b);

#endif
