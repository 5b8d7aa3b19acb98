/* text.c — bounded one-line text and message templates for rules/ (see text.h).
 *
 * Bytes are copied one at a time into a fixed buffer; once it is full the text is marked
 * cut, and rules_text_str() backs up to a character boundary to make room for "...".
 */
#include "rules/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ELLIPSIS "..."

void rules_text_init(rules_text *t)
{
    t->s[0] = '\0';
    t->len = 0;
    t->cut = 0;
}

static void add_bytes(rules_text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t->len >= RULES_TEXT_MAX - 1) {
            t->cut = 1;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        t->s[t->len++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    t->s[t->len] = '\0';
}

void rules_text_add(rules_text *t, const char *s)
{
    if (s) add_bytes(t, s, strlen(s));
}

void rules_text_addf(rules_text *t, const char *fmt, ...)
{
    char buf[RULES_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    add_bytes(t, buf, strlen(buf));
    if ((size_t)n >= sizeof buf) t->cut = 1;
}

static const char *var_value(const rules_text_vars *v, const char *name, size_t n)
{
    const struct {
        const char *name;
        const char *val;
    } vars[] = {
        {"cloud", v->cloud}, {"cloud_name", v->cloud_name},
        {"stage", v->stage}, {"deal", v->deal},
        {"id", v->id},       {"rule", v->rule},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strlen(vars[i].name) == n && memcmp(vars[i].name, name, n) == 0)
            return vars[i].val ? vars[i].val : "";
    return NULL;
}

void rules_text_template(rules_text *t, const char *tmpl, const rules_text_vars *v)
{
    if (!tmpl) return;
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) {
            rules_text_add(t, p);
            return;
        }
        add_bytes(t, p, (size_t)(open - p));
        const char *close = strchr(open + 1, '}');
        const char *val = close ? var_value(v, open + 1, (size_t)(close - open - 1)) : NULL;
        if (val) {
            rules_text_add(t, val);
            p = close + 1;
        } else {
            add_bytes(t, open, 1); /* not a placeholder: keep the brace */
            p = open + 1;
        }
    }
}

const char *rules_text_str(rules_text *t)
{
    if (t->cut && t->len > RULES_TEXT_MAX - 1 - strlen(ELLIPSIS)) {
        size_t len = RULES_TEXT_MAX - 1 - strlen(ELLIPSIS);
        /* s[len] is the first byte dropped: never drop half a UTF-8 character. */
        while (len > 0 && ((unsigned char)t->s[len] & 0xC0) == 0x80)
            len--;
        memcpy(t->s + len, ELLIPSIS, sizeof ELLIPSIS);
        t->len = len + strlen(ELLIPSIS);
    }
    return t->s;
}
