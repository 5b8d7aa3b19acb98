/* cfg.c — INI file → validated, immutable struct cfg (see cfg.h).
 *
 * Loading runs in three steps. (1) inih reads the text through our own reader, which
 * hands it one line at a time, counts lines, and screens every line first: over-long
 * lines, NUL bytes, ':' delimiters, lines without '=' (inih would fold an indented one into
 * the previous key, or stop reporting after the first) and section headers are dealt with
 * here, each error with its line. A valid header reaches inih as "[N]", N being our own
 * index of the section, so inih's 50-byte section buffer never truncates a name. The
 * handler only records (key, value, line) under its section. (2) Each section is applied
 * to its table of keys (name, converter, field offset, bounds, default, flags): plain keys
 * first, then defaults, then prefixed keys (alias., accept., fee., ...), which may rely on
 * the plain ones. (3) Cross-checks that span sections (a rule's stage in each pipeline it
 * covers, auth versus listen, ...). Every error is collected as "path:line: message" and
 * the list is sorted by line, so an admin sees all of them at once and in file order.
 *
 * inih keeps its options in process-wide variables: a load sets all of them and parses
 * under one mutex, the only mutable static state of this module.
 */
#include "config/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg_internal.h"

#define CFG_LINE_MAX 1024          /* characters of one line, without its newline */
#define CFG_FILE_MAX (1024 * 1024) /* bytes of a config file */
#define CFG_ERRORS_MAX 200         /* reported errors (then "too many errors") */
#define CFG_INI_BUF 4096           /* inih's line buffer: > CFG_LINE_MAX + "\r\n\0" */
#define CFG_STAGE_MAX 128          /* characters of a stage name */
#define DEFAULT_MESSAGE "Register this deal in {cloud_name} before moving to {stage}."

static pthread_mutex_t ini_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- raw sections, diagnostics, loader ------------------------------------------------ */

enum sec_kind {
    SK_SERVER,
    SK_AUTH,
    SK_PIPELINE,
    SK_PIPELINE_NAMED,
    SK_RULE,
    SK_COMP,
    SK_CLOUD,
    SK_SALESFORCE,
    SK_HUBSPOT,
    SK_REVERIFY
};

static const struct {
    const char *name;
    enum sec_kind kind;
    int named; /* [name:NAME] */
} sec_kinds[] = {
    {"server", SK_SERVER, 0},
    {"auth", SK_AUTH, 0},
    {"pipeline", SK_PIPELINE, 0},
    {"comp", SK_COMP, 0},
    {"salesforce", SK_SALESFORCE, 0},
    {"hubspot", SK_HUBSPOT, 0},
    {"reverify", SK_REVERIFY, 0},
    {"pipeline", SK_PIPELINE_NAMED, 1},
    {"rule", SK_RULE, 1},
    {"cloud", SK_CLOUD, 1},
};

typedef struct {
    char *key;
    char *val; /* raw, before ${} expansion */
    int line;
} rawkv;

typedef struct {
    enum sec_kind kind;
    char *name;  /* NAME of [kind:NAME], else "" */
    char *title; /* "rule:demo" as written, for messages */
    int line;    /* of the header; 0 for an absent section */
    rawkv *kv;
    size_t nkv;
} rawsec;

typedef struct {
    int line;
    size_t seq;
    char *text;
} diag;

typedef struct {
    diag *v;
    size_t n;
} diaglist;

typedef struct {
    const char *path; /* name used in messages */
    const char *text;
    size_t len, pos;
    int lineno;
    rawsec *secs;
    size_t nsecs;
    diaglist errs, warns;
    size_t seq;
    int oom;
    struct cfg *c;
    rawsec **pipe_sec; /* parallel to c->pipelines */
} loader;

static void diag_vadd(loader *L, diaglist *dl, int line, const char *kind, const char *fmt,
                      va_list ap)
{
    char msg[1024], full[1400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (line > 0)
        snprintf(full, sizeof full, "%s:%d: %s%s", L->path, line, kind, msg);
    else
        snprintf(full, sizeof full, "%s: %s%s", L->path, kind, msg);
    diag *nv = realloc(dl->v, (dl->n + 1) * sizeof *nv);
    char *t = strdup(full);
    if (nv == NULL || t == NULL) {
        if (nv != NULL) dl->v = nv;
        free(t);
        L->oom = 1;
        return;
    }
    dl->v = nv;
    dl->v[dl->n].line = line;
    dl->v[dl->n].seq = L->seq++;
    dl->v[dl->n].text = t;
    dl->n++;
}

static void errat(loader *L, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errat(loader *L, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(L, &L->errs, line, "", fmt, ap);
    va_end(ap);
}

static void warnat(loader *L, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warnat(loader *L, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(L, &L->warns, line, "warning: ", fmt, ap);
    va_end(ap);
}

static char *xstrdup(loader *L, const char *s)
{
    char *d = strdup(s ? s : "");
    if (d == NULL) L->oom = 1;
    return d;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- step 1: the line reader and the inih handler ------------------------------------ */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CFG_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Screens a section header p[0..n) (p[0] == '['). Writes what inih gets into out. */
static void section_line(loader *L, const char *p, size_t n, char *out, size_t outlen)
{
    snprintf(out, outlen, "[-]"); /* keys under a bad header are dropped silently */
    const char *rb = memchr(p, ']', n);
    if (rb == NULL) {
        errat(L, L->lineno, "section header without ']'");
        return;
    }
    for (const char *q = rb + 1; q < p + n; q++) {
        if (*q == ';' || *q == '#') break;
        if (!is_space(*q)) {
            errat(L, L->lineno, "unexpected text after section header");
            return;
        }
    }
    const char *a = p + 1, *b = rb;
    while (a < b && is_space(*a))
        a++;
    while (b > a && is_space(b[-1]))
        b--;
    size_t in = (size_t)(b - a);
    const char *colon = memchr(a, ':', in);
    size_t kn = colon ? (size_t)(colon - a) : in;
    int kind = -1;
    for (size_t i = 0; i < sizeof sec_kinds / sizeof sec_kinds[0]; i++) {
        if (strlen(sec_kinds[i].name) == kn && strncmp(sec_kinds[i].name, a, kn) == 0 &&
            sec_kinds[i].named == (colon != NULL)) {
            kind = (int)sec_kinds[i].kind;
            break;
        }
    }
    if (kind < 0) {
        errat(L, L->lineno,
              "unknown section [%.*s] (known: server, auth, pipeline, pipeline:NAME, "
              "rule:NAME, comp, cloud:KEY, salesforce, hubspot, reverify)",
              (int)(in > 80 ? 80 : in), a);
        return;
    }
    const char *nm = colon ? colon + 1 : "";
    size_t nn = colon ? (size_t)(b - colon - 1) : 0;
    if (colon && !name_ok(nm, nn)) {
        errat(L, L->lineno,
              "bad section name [%.*s]: the part after ':' must be 1-%d letters, digits, '-' "
              "or '_'",
              (int)(in > 80 ? 80 : in), a, CFG_NAME_MAX - 1);
        return;
    }
    if (kind == SK_PIPELINE_NAMED && nn == 7 && strncmp(nm, "default", 7) == 0) {
        errat(L, L->lineno, "[pipeline:default] is not allowed: \"default\" names [pipeline]");
        return;
    }
    for (size_t i = 0; i < L->nsecs; i++) {
        rawsec *s = &L->secs[i];
        if ((int)s->kind == kind && strlen(s->name) == nn && strncmp(s->name, nm, nn) == 0) {
            errat(L, L->lineno, "duplicate section [%s] (first at line %d)", s->title, s->line);
            return;
        }
    }
    rawsec *nv = realloc(L->secs, (L->nsecs + 1) * sizeof *nv);
    if (nv == NULL) {
        L->oom = 1;
        return;
    }
    L->secs = nv;
    rawsec *s = &L->secs[L->nsecs];
    memset(s, 0, sizeof *s);
    s->kind = (enum sec_kind)kind;
    s->line = L->lineno;
    s->name = strndup(nm, nn);
    s->title = strndup(a, in);
    if (s->name == NULL || s->title == NULL) {
        free(s->name);
        free(s->title);
        L->oom = 1;
        return;
    }
    snprintf(out, outlen, "[%zu]", L->nsecs);
    L->nsecs++;
}

/* The inih reader: one whole line per call, screened; see the file comment. */
static char *line_reader(char *buf, int size, void *stream)
{
    loader *L = stream;
    if (L->pos >= L->len || size < 8) return NULL;
    const char *p = L->text + L->pos;
    size_t rest = L->len - L->pos;
    const char *nl = memchr(p, '\n', rest);
    size_t n = nl ? (size_t)(nl - p) : rest;
    L->pos += n + (nl != NULL);
    L->lineno++;
    if (n > 0 && p[n - 1] == '\r') n--;
    if (L->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }

    char hdr[32];
    const char *out = "";
    size_t outn = 0;
    size_t limit = (size_t)size - 3 < CFG_LINE_MAX ? (size_t)size - 3 : CFG_LINE_MAX;
    size_t i = 0;
    while (i < n && is_space(p[i]))
        i++;
    if (n > limit) {
        errat(L, L->lineno, "line too long (max %zu characters)", limit);
    } else if (memchr(p, '\0', n) != NULL) {
        errat(L, L->lineno, "line contains a NUL byte");
    } else if (i == n || p[i] == ';' || p[i] == '#') {
        /* blank or comment */
    } else if (p[i] == '[') {
        section_line(L, p + i, n - i, hdr, sizeof hdr);
        out = hdr;
        outn = strlen(hdr);
    } else {
        size_t j = i;
        int was_space = 0;
        for (; j < n; j++) {
            if (p[j] == '=' || p[j] == ':') break;
            if (was_space && p[j] == ';') {
                j = n;
                break;
            }
            was_space = is_space(p[j]);
        }
        size_t k = j;
        while (k > i && is_space(p[k - 1]))
            k--;
        if (j < n && p[j] == ':') {
            errat(L, L->lineno, "':' is not a delimiter here: write key = value");
        } else if (j >= n) {
            if (i > 0)
                errat(L, L->lineno,
                      "indented line without '=': continuation lines are not supported, keep "
                      "each value on one line");
            else
                errat(L, L->lineno, "expected key = value");
        } else if (k == i) {
            errat(L, L->lineno, "missing key before '='");
        } else {
            out = p + i;
            outn = n - i;
        }
    }
    memcpy(buf, out, outn);
    buf[outn] = '\n';
    buf[outn + 1] = '\0';
    return buf;
}

static int kv_handler(void *user, const char *section, const char *name, const char *value)
{
    loader *L = user;
    if (section[0] == '-') return 1;
    if (section[0] == '\0') {
        errat(L, L->lineno, "key '%.80s' outside any section", name);
        return 1;
    }
    char *end = NULL;
    unsigned long idx = strtoul(section, &end, 10);
    if (end == section || *end != '\0' || idx >= L->nsecs) return 1; /* cannot happen */
    rawsec *s = &L->secs[idx];
    rawkv *nv = realloc(s->kv, (s->nkv + 1) * sizeof *nv);
    if (nv == NULL) {
        L->oom = 1;
        return 1;
    }
    s->kv = nv;
    rawkv *kv = &s->kv[s->nkv];
    kv->key = strdup(name);
    kv->val = strdup(value ? value : "");
    kv->line = L->lineno;
    if (kv->key == NULL || kv->val == NULL) {
        free(kv->key);
        free(kv->val);
        L->oom = 1;
        return 1;
    }
    s->nkv++;
    return 1;
}

/* ---- step 2: key tables ------------------------------------------------------------- */

#define KF_SECRET 1u   /* never shown in messages */
#define KF_PREFIX 2u   /* name is a prefix ("alias."): applied after plain keys */
#define KF_NONEMPTY 4u /* an empty string is an error */
#define KF_ACE (1u << 8)
#define KF_PC (1u << 9)
#define KF_GCP (1u << 10)
#define KF_FILE (1u << 11)
#define KF_CONNS (KF_ACE | KF_PC | KF_GCP | KF_FILE)

typedef struct {
    const char *name;
    int value;
} enumval;

typedef struct keyspec keyspec;

/* Conversion context of one key. */
typedef struct {
    loader *L;
    rawsec *sec;
    const rawkv *kv; /* NULL when applying a default */
    const char *key; /* the full key as written */
    int line;
    int show; /* the value may appear in messages */
} kctx;

typedef int (*kconv)(kctx *k, const keyspec *ks, const char *val, void *obj);

struct keyspec {
    const char *name;
    kconv conv;
    size_t off;
    long long min, max;
    const char *def;
    const enumval *enums;
    unsigned flags;
};

static void kerr(kctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kerr(kctx *k, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    errat(k->L, k->line, "%.100s: %s", k->key, msg);
}

/* " (got \"x\")" for a shown value, else "". */
static const char *got(kctx *k, const char *val, char *buf, size_t n)
{
    if (!k->show) return "";
    snprintf(buf, n, " (got \"%.60s\")", val);
    return buf;
}

#define FIELD(obj, ks, type) ((type *)(void *)((char *)(obj) + (ks)->off))

static int conv_str(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    if ((ks->flags & KF_NONEMPTY) && *val == '\0') {
        kerr(k, "must not be empty");
        return -1;
    }
    char **f = FIELD(obj, ks, char *);
    free(*f);
    *f = xstrdup(k->L, val);
    return 0;
}

static int conv_bool(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    char g[96];
    if (cfg_parse_bool(val, FIELD(obj, ks, int)) != 0) {
        kerr(k, "expected yes or no%s", got(k, val, g, sizeof g));
        return -1;
    }
    return 0;
}

static int conv_int(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    long long v;
    char g[96];
    if (cfg_parse_int(val, ks->min, ks->max, &v) != 0) {
        kerr(k, "expected an integer from %lld to %lld%s", ks->min, ks->max,
             got(k, val, g, sizeof g));
        return -1;
    }
    *FIELD(obj, ks, int) = (int)v;
    return 0;
}

static int conv_size(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    int64_t v;
    char g[96];
    if (cfg_parse_size(val, ks->min, ks->max, &v) != 0) {
        kerr(k, "expected a size from %lld to %lld bytes, with an optional k or m suffix%s",
             ks->min, ks->max, got(k, val, g, sizeof g));
        return -1;
    }
    *FIELD(obj, ks, int64_t) = v;
    return 0;
}

/* Splits val as a comma list into *l (cfg_parse_list). Returns 0, or -1 after reporting. */
static int klist(kctx *k, const char *val, cfg_strlist *l)
{
    char e[200];
    if (cfg_parse_list(val, l, e, sizeof e) != 0) {
        kerr(k, "%s", e);
        return -1;
    }
    return 0;
}

static int conv_list(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    cfg_strlist l;
    if (klist(k, val, &l) != 0) return -1;
    if ((ks->flags & KF_NONEMPTY) && l.n == 0) {
        kerr(k, "must not be empty");
        return -1;
    }
    cfg_strlist *f = FIELD(obj, ks, cfg_strlist);
    cfg_strlist_clear(f);
    *f = l;
    return 0;
}

static int conv_ccy(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    char g[96];
    if (!dg_ccy_valid(val)) {
        kerr(k, "expected an ISO 4217 currency code like USD%s", got(k, val, g, sizeof g));
        return -1;
    }
    memcpy(FIELD(obj, ks, char), val, 4);
    return 0;
}

/* A string that check() accepts (0, or -1 with a message in e). */
static int conv_checked(kctx *k, const keyspec *ks, const char *val, void *obj,
                        int (*check)(const char *val, char *e, size_t elen))
{
    char e[200], g[96];
    if (check(val, e, sizeof e) != 0) {
        kerr(k, "%s%s", e, got(k, val, g, sizeof g));
        return -1;
    }
    return conv_str(k, ks, val, obj);
}

static int conv_listen(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    return conv_checked(k, ks, val, obj, cfg_check_listen);
}

static int conv_url(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    return conv_checked(k, ks, val, obj, cfg_check_url);
}

static int conv_enum(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    char names[200] = "", g[96];
    size_t o = 0;
    for (const enumval *e = ks->enums; e->name; e++) {
        if (strcmp(e->name, val) == 0) {
            *FIELD(obj, ks, int) = e->value;
            return 0;
        }
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? " | " : "", e->name);
        if (o >= sizeof names) o = sizeof names - 1;
    }
    kerr(k, "expected %s%s", names, got(k, val, g, sizeof g));
    return -1;
}

/* A non-negative decimal string (comp tolerance). */
static int conv_decimal(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    int64_t v;
    char e[160], g[96];
    if (dg_amount_parse(val, strlen(val), 9, 0, &v, e, sizeof e) != DG_OK || v < 0) {
        kerr(k, "expected a non-negative decimal like 0.01%s", got(k, val, g, sizeof g));
        return -1;
    }
    return conv_str(k, ks, val, obj);
}

/* Finds the line of key `name` in s, or the header line when absent. */
static int key_line(const rawsec *s, const char *name)
{
    for (size_t i = 0; i < s->nkv; i++)
        if (strcmp(s->kv[i].key, name) == 0) return s->kv[i].line;
    return s->line;
}

static int has_key(const rawsec *s, const char *name)
{
    for (size_t i = 0; i < s->nkv; i++)
        if (strcmp(s->kv[i].key, name) == 0) return 1;
    return 0;
}

/* The index of the first key of s named as key i: i itself unless it is a duplicate. */
static size_t first_of_key(const rawsec *s, size_t i)
{
    size_t d;
    for (d = 0; d < i; d++)
        if (strcmp(s->kv[d].key, s->kv[i].key) == 0) break;
    return d;
}

static const char *conn_name(cfg_connector c)
{
    static const char *const n[] = {"none", "file", "ace", "partner_center", "gcp"};
    return (unsigned)c < 5 ? n[c] : "?";
}

static unsigned conn_flag(int conn)
{
    switch (conn) {
    case CFG_CONN_ACE:
        return KF_ACE;
    case CFG_CONN_PARTNER_CENTER:
        return KF_PC;
    case CFG_CONN_GCP:
        return KF_GCP;
    case CFG_CONN_FILE:
        return KF_FILE;
    default:
        return 0;
    }
}

/* Applies the table to section s, filling obj. conn: the cloud's connector (-1 when not a
 * cloud or unknown): keys reserved to other connectors are errors, and their defaults are
 * skipped. */
static void apply(loader *L, rawsec *s, const keyspec *ks, size_t nks, void *obj, int conn)
{
    int seen[48] = {0};
    const char *what = s->title;

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* defaults between plain and prefixed keys */
            for (size_t j = 0; j < nks; j++) {
                if (seen[j] || ks[j].def == NULL || (ks[j].flags & KF_PREFIX)) continue;
                if ((ks[j].flags & KF_CONNS) && !(ks[j].flags & conn_flag(conn))) continue;
                kctx k = {L, s, NULL, ks[j].name, s->line, 1};
                ks[j].conv(&k, &ks[j], ks[j].def, obj);
            }
        }
        for (size_t i = 0; i < s->nkv; i++) {
            const rawkv *kv = &s->kv[i];
            size_t j;
            for (j = 0; j < nks; j++) {
                if (ks[j].flags & KF_PREFIX) {
                    size_t pl = strlen(ks[j].name);
                    if (strncmp(kv->key, ks[j].name, pl) == 0 && kv->key[pl] != '\0') break;
                } else if (strcmp(kv->key, ks[j].name) == 0) {
                    break;
                }
            }
            int prefixed = j < nks && (ks[j].flags & KF_PREFIX);
            if (pass == 0) {
                size_t d = first_of_key(s, i);
                if (d < i) {
                    errat(L, kv->line, "duplicate key '%.80s' (first at line %d)", kv->key,
                          s->kv[d].line);
                    continue;
                }
                if (j == nks) {
                    errat(L, kv->line, "unknown key '%.80s' in [%s]", kv->key, what);
                    continue;
                }
                if ((ks[j].flags & KF_CONNS) && conn >= 0 && !(ks[j].flags & conn_flag(conn))) {
                    errat(L, kv->line, "key '%.80s' does not apply to connector %s", kv->key,
                          conn_name((cfg_connector)conn));
                    continue;
                }
                if (prefixed) continue;
                seen[j] = 1;
            } else {
                if (j == nks || !prefixed) continue;
                if (first_of_key(s, i) < i) continue; /* a duplicate, reported in pass 0 */
            }
            char *val = NULL, warn[300], e[300];
            int from_file = 0;
            if (cfg_expand_value(kv->val, &val, &from_file, warn, sizeof warn, e, sizeof e) != 0) {
                errat(L, kv->line, "%.100s: %s", kv->key, e);
                continue;
            }
            if (warn[0]) warnat(L, kv->line, "%.100s: %s", kv->key, warn);
            kctx k = {L, s, kv, kv->key, kv->line, !(ks[j].flags & KF_SECRET) && !from_file};
            ks[j].conv(&k, &ks[j], val, obj);
            free(val);
        }
    }
}

/* ---- [server] and [auth] ---- */

static const keyspec server_keys[] = {
    {"listen", conv_listen, offsetof(cfg_server, listen), 0, 0, "127.0.0.1:8080", NULL, 0},
    {"threads", conv_int, offsetof(cfg_server, threads), 1, 1024, "32", NULL, 0},
    {"max_body", conv_size, offsetof(cfg_server, max_body), 1024, 64LL << 20, "1m", NULL, 0},
    {"request_timeout_ms", conv_int, offsetof(cfg_server, request_timeout_ms), 100, 600000, "10000",
     NULL, 0},
    {"decision_budget_ms", conv_int, offsetof(cfg_server, decision_budget_ms), 10, 600000, "5000",
     NULL, 0},
    {"data_dir", conv_str, offsetof(cfg_server, data_dir), 0, 0, "./var", NULL, KF_NONEMPTY},
    {"currency", conv_ccy, offsetof(cfg_server, currency), 0, 0, "USD", NULL, 0},
    {"retain_days", conv_int, offsetof(cfg_server, retain_days), 0, 36500, "0", NULL, 0},
};

static const keyspec auth_keys[] = {
    {"webhook_tokens", conv_list, offsetof(cfg_auth, webhook_tokens), 0, 0, NULL, NULL, KF_SECRET},
    {"reader_tokens", conv_list, offsetof(cfg_auth, reader_tokens), 0, 0, NULL, NULL, KF_SECRET},
    {"comp_reader_tokens", conv_list, offsetof(cfg_auth, comp_reader_tokens), 0, 0, NULL, NULL,
     KF_SECRET},
    {"desk_tokens", conv_list, offsetof(cfg_auth, desk_tokens), 0, 0, NULL, NULL, KF_SECRET},
    {"open", conv_bool, offsetof(cfg_auth, open), 0, 0, "no", NULL, 0},
};

/* Returns 1 if an error was already reported at line (so a follow-up would be noise). */
static int line_has_error(const loader *L, int line)
{
    for (size_t i = 0; i < L->errs.n && line > 0; i++)
        if (L->errs.v[i].line == line) return 1;
    return 0;
}

static void check_auth(loader *L, rawsec *s)
{
    struct cfg *c = L->c;
    int open_line = key_line(s, "open");
    if (c->auth.open) {
        if (c->server.listen == NULL) return; /* invalid: reported already */
        if (!cfg_is_loopback_host(c->server.listen))
            errat(L, open_line,
                  "open = yes needs a loopback listen address (listen = %.80s): it would let "
                  "anyone in",
                  c->server.listen ? c->server.listen : "");
        else
            warnat(L, open_line, "[auth] open = yes: requests need no token (loopback only)");
        return;
    }
    static const char *const lists[] = {"webhook_tokens", "reader_tokens"};
    const cfg_strlist *v[] = {&c->auth.webhook_tokens, &c->auth.reader_tokens};
    for (size_t i = 0; i < 2; i++)
        if (v[i]->n == 0 && !line_has_error(L, key_line(s, lists[i])))
            errat(L, key_line(s, lists[i]),
                  "%s is empty: set at least one token, or open = yes for a loopback-only "
                  "setup",
                  lists[i]);
}

/* ---- [cloud:KEY] ---- */

/* A file holding a private key (gcp credentials): the path, checked here as an @file secret
 * is (refused when group- or world-writable, a warning when world-readable) so that
 * check-config reports it; the connector reads it again when it opens. */
static int conv_keyfile(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    if (conv_str(k, ks, val, obj) != 0) return -1;
    char *body = NULL, warn[300], e[300];
    if (cfg_read_secret_file("credentials file", val, &body, warn, sizeof warn, e, sizeof e) != 0) {
        kerr(k, "%s", e);
        return -1;
    }
    explicit_bzero(body, strlen(body));
    free(body);
    if (warn[0]) warnat(k->L, k->line, "%.100s: %s", k->key, warn);
    return 0;
}

static const enumval conn_enum[] = {
    {"none", CFG_CONN_NONE}, {"file", CFG_CONN_FILE},
    {"ace", CFG_CONN_ACE},   {"partner_center", CFG_CONN_PARTNER_CENTER},
    {"gcp", CFG_CONN_GCP},   {NULL, 0}};

#define CK(f) offsetof(cfg_cloud, f)
static const keyspec cloud_keys[] = {
    {"name", conv_str, CK(name), 0, 0, NULL, NULL, KF_NONEMPTY},
    {"connector", conv_enum, CK(connector), 0, 0, NULL, conn_enum, 0},
    {"endpoint", conv_url, CK(endpoint), 0, 0, NULL, NULL, KF_ACE | KF_PC | KF_GCP},
    {"region", conv_str, CK(region), 0, 0, "us-east-1", NULL, KF_ACE | KF_NONEMPTY},
    {"catalog", conv_str, CK(catalog), 0, 0, "AWS", NULL, KF_ACE | KF_NONEMPTY},
    {"access_key_id", conv_str, CK(access_key_id), 0, 0, NULL, NULL, KF_ACE | KF_SECRET},
    {"secret_access_key", conv_str, CK(secret_access_key), 0, 0, NULL, NULL, KF_ACE | KF_SECRET},
    {"session_token", conv_str, CK(session_token), 0, 0, NULL, NULL, KF_ACE | KF_SECRET},
    {"timeout_ms", conv_int, CK(timeout_ms), 1, 120000, "2000", NULL, 0},
    {"cache_ttl_s", conv_int, CK(cache_ttl_s), 0, 604800, "300", NULL, 0},
    {"negative_cache_ttl_s", conv_int, CK(negative_cache_ttl_s), 0, 86400, "30", NULL, 0},
    {"token_url", conv_url, CK(token_url), 0, 0, NULL, NULL, KF_PC | KF_GCP},
    {"client_id", conv_str, CK(client_id), 0, 0, NULL, NULL, KF_PC | KF_SECRET},
    {"client_secret", conv_str, CK(client_secret), 0, 0, NULL, NULL, KF_PC | KF_SECRET},
    {"refresh_token", conv_str, CK(refresh_token), 0, 0, NULL, NULL, KF_PC | KF_SECRET},
    {"path", conv_str, CK(path), 0, 0, NULL, NULL, KF_FILE | KF_NONEMPTY},
    {"partner_id", conv_str, CK(partner_id), 0, 0, NULL, NULL, KF_GCP},
    {"access_token", conv_str, CK(access_token), 0, 0, NULL, NULL, KF_GCP | KF_SECRET},
    {"credentials", conv_keyfile, CK(credentials), 0, 0, NULL, NULL, KF_GCP | KF_NONEMPTY},
};
#undef CK

/* connector = gcp: exactly one of access_token and credentials; token_url only with
 * credentials. */
static void check_gcp_auth(loader *L, rawsec *s, const cfg_cloud *cl)
{
    int tok = has_key(s, "access_token"), cred = has_key(s, "credentials");
    if (tok && cred)
        errat(L, key_line(s, "credentials"),
              "credentials: give access_token or credentials in [%s], not both", s->title);
    else if (!tok && !cred)
        errat(L, key_line(s, "connector"),
              "connector gcp needs access_token or credentials in [%s]", s->title);
    else if (tok && has_key(s, "token_url"))
        errat(L, key_line(s, "token_url"),
              "token_url: applies to connector gcp only with credentials");
    if (tok && cl->access_token != NULL && *cl->access_token == '\0')
        errat(L, key_line(s, "access_token"),
              "access_token: must not be empty (connector gcp needs it)");
}

static void build_cloud(loader *L, rawsec *s, cfg_cloud *cl)
{
    cl->key = xstrdup(L, s->name);
    /* The connector decides which keys apply: read it first. */
    int conn = -1;
    for (size_t i = 0; i < s->nkv; i++) {
        if (strcmp(s->kv[i].key, "connector") != 0) continue;
        char *v = NULL, w[8], e[8];
        int ff;
        if (cfg_expand_value(s->kv[i].val, &v, &ff, w, sizeof w, e, sizeof e) == 0)
            for (const enumval *en = conn_enum; en->name; en++)
                if (strcmp(en->name, v) == 0) conn = en->value;
        free(v);
        break;
    }
    cl->connector = CFG_CONN_NONE;
    apply(L, s, cloud_keys, sizeof cloud_keys / sizeof cloud_keys[0], cl, conn);
    if (cl->name == NULL) cl->name = xstrdup(L, s->name);
    if (!has_key(s, "connector")) {
        errat(L, s->line, "[%s] needs connector = ace | partner_center | gcp | file | none",
              s->title);
        return;
    }
    if (conn < 0) return; /* reported by the table */

    if (conn == CFG_CONN_PARTNER_CENTER && cl->token_url == NULL)
        cl->token_url = xstrdup(L, "https://login.microsoftonline.com/common/oauth2/token");
    static const char *const endpoints[] = {
        NULL, NULL, "https://partnercentral-selling.us-east-1.api.aws",
        "https://api.partner.microsoft.com", "https://cloudcrmpartners.googleapis.com"};
    if (cl->endpoint == NULL && endpoints[conn] != NULL) cl->endpoint = xstrdup(L, endpoints[conn]);

    static const struct {
        int conn;
        const char *key;
        size_t off;
    } required[] = {
        {CFG_CONN_ACE, "access_key_id", offsetof(cfg_cloud, access_key_id)},
        {CFG_CONN_ACE, "secret_access_key", offsetof(cfg_cloud, secret_access_key)},
        {CFG_CONN_PARTNER_CENTER, "client_id", offsetof(cfg_cloud, client_id)},
        {CFG_CONN_PARTNER_CENTER, "client_secret", offsetof(cfg_cloud, client_secret)},
        {CFG_CONN_PARTNER_CENTER, "refresh_token", offsetof(cfg_cloud, refresh_token)},
        {CFG_CONN_GCP, "partner_id", offsetof(cfg_cloud, partner_id)},
        {CFG_CONN_FILE, "path", offsetof(cfg_cloud, path)},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (required[i].conn != conn) continue;
        char *v = *(char **)(void *)((char *)cl + required[i].off);
        if (!has_key(s, required[i].key))
            errat(L, key_line(s, "connector"), "connector %s needs %s in [%s]", conn_name(conn),
                  required[i].key, s->title);
        else if (v != NULL && *v == '\0')
            errat(L, key_line(s, required[i].key), "%s: must not be empty (connector %s needs it)",
                  required[i].key, conn_name(conn));
    }
    if (conn == CFG_CONN_GCP) check_gcp_auth(L, s, cl);
    if (conn == CFG_CONN_FILE && cl->path != NULL && *cl->path && access(cl->path, R_OK) != 0)
        warnat(L, key_line(s, "path"),
               "path: registrations file %.200s cannot be read from here (%s); look-ups fail "
               "until it can",
               cl->path, strerror(errno));
}

/* ---- [pipeline] and [pipeline:NAME] ---- */

/* Case-insensitive index of a stage name, or -1. */
static int stage_by_name(const cfg_pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->stages.n; i++)
        if (strcasecmp(p->stages.v[i], name) == 0) return (int)i;
    return -1;
}

static int conv_stages(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    if (conv_list(k, ks, val, obj) != 0) return -1;
    cfg_pipeline *p = obj;
    for (size_t i = 0; i < p->stages.n; i++) {
        if (strlen(p->stages.v[i]) > CFG_STAGE_MAX) {
            kerr(k, "stage %zu is longer than %d characters", i + 1, CFG_STAGE_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(p->stages.v[i], p->stages.v[j]) == 0) {
                kerr(k, "stage '%.80s' is listed twice", p->stages.v[i]);
                return -1;
            }
        }
    }
    return 0;
}

static int conv_alias(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_pipeline *p = obj;
    const char *raw = k->key + strlen("alias.");
    if (p->stages.n == 0) return 0; /* stages missing or bad: reported already */
    int idx = stage_by_name(p, val);
    if (idx < 0) {
        kerr(k, "'%.80s' is not a stage of this pipeline", val);
        return -1;
    }
    for (size_t i = 0; i < p->naliases; i++) {
        if (strcasecmp(p->aliases[i].raw, raw) == 0) {
            kerr(k, "alias '%.80s' is defined twice (aliases ignore case)", raw);
            return -1;
        }
    }
    int named = stage_by_name(p, raw);
    if (named >= 0 && named != idx) {
        kerr(k, "alias '%.80s' is the name of another stage", raw);
        return -1;
    }
    cfg_alias *nv = realloc(p->aliases, (p->naliases + 1) * sizeof *nv);
    if (nv == NULL) {
        k->L->oom = 1;
        return -1;
    }
    p->aliases = nv;
    p->aliases[p->naliases].raw = xstrdup(k->L, raw);
    p->aliases[p->naliases].stage = (size_t)idx;
    p->naliases++;
    return 0;
}

static const enumval unknown_enum[] = {{"block", 1}, {"allow", 0}, {NULL, 0}};

static const keyspec pipeline_keys[] = {
    {"stages", conv_stages, offsetof(cfg_pipeline, stages), 0, 0, NULL, NULL, KF_NONEMPTY},
    {"won", conv_list, offsetof(cfg_pipeline, won), 0, 0, NULL, NULL, 0},
    {"lost", conv_list, offsetof(cfg_pipeline, lost), 0, 0, NULL, NULL, 0},
    {"unknown_stage", conv_enum, offsetof(cfg_pipeline, unknown_block), 0, 0, "block", unknown_enum,
     0},
    {"alias.", conv_alias, 0, 0, 0, NULL, NULL, KF_PREFIX},
};

static void build_pipeline(loader *L, rawsec *s, cfg_pipeline *p)
{
    p->name = xstrdup(L, s->kind == SK_PIPELINE ? "" : s->name);
    apply(L, s, pipeline_keys, sizeof pipeline_keys / sizeof pipeline_keys[0], p, -1);
    if (!has_key(s, "stages")) {
        errat(L, s->line, "[%s] needs stages = a comma list", s->title);
        return;
    }
    if (p->stages.n == 0) return;
    const cfg_strlist *lists[] = {&p->won, &p->lost};
    static const char *const names[] = {"won", "lost"};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            if (stage_by_name(p, lists[l]->v[i]) < 0)
                errat(L, key_line(s, names[l]), "%s: '%.80s' is not a stage of this pipeline",
                      names[l], lists[l]->v[i]);
            else if (l == 1)
                for (size_t j = 0; j < p->won.n; j++)
                    if (strcasecmp(p->won.v[j], lists[l]->v[i]) == 0)
                        errat(L, key_line(s, "lost"), "lost: '%.80s' is also a won stage",
                              lists[l]->v[i]);
        }
    }
}

/* ---- [rule:NAME] ---- */

static int conv_rule_pipelines(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_rule *r = obj;
    cfg_strlist l;
    if (klist(k, val, &l) != 0) return -1;
    cfg_strlist_clear(&r->pipelines);
    r->all_pipelines = 0;
    if (l.n == 1 && strcmp(l.v[0], "*") == 0) {
        r->all_pipelines = 1;
        cfg_strlist_clear(&l);
        return 0;
    }
    int rc = 0;
    if (l.n == 0) {
        kerr(k, "must be * or a list of pipelines (default names [pipeline])");
        rc = -1;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        if (strcmp(l.v[i], "default") == 0) continue;
        size_t j;
        for (j = 1; j < k->L->c->npipelines; j++)
            if (strcmp(k->L->c->pipelines[j].name, l.v[i]) == 0) break;
        if (j == k->L->c->npipelines) {
            kerr(k, "no [pipeline:%.80s] section", l.v[i]);
            rc = -1;
        }
    }
    if (rc == 0)
        r->pipelines = l;
    else
        cfg_strlist_clear(&l);
    return rc;
}

static int cloud_defined(loader *L, const char *key)
{
    return cfg_cloud_find(L->c, key) != NULL;
}

static int conv_rule_clouds(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_rule *r = obj;
    cfg_strlist_clear(&r->clouds);
    r->clouds_deal = 0;
    if (strcmp(val, "deal") == 0) {
        r->clouds_deal = 1;
        return 0;
    }
    cfg_strlist l;
    if (klist(k, val, &l) != 0) return -1;
    if (l.n == 0) {
        kerr(k, "must be deal or a list of cloud keys");
        return -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (!cloud_defined(k->L, l.v[i])) {
            kerr(k, "no [cloud:%.80s] section", l.v[i]);
            cfg_strlist_clear(&l);
            return -1;
        }
    }
    r->clouds = l;
    return 0;
}

static int conv_accept(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_rule *r = obj;
    const char *cloud = k->key + strlen("accept.");
    if (!cloud_defined(k->L, cloud)) {
        kerr(k, "no [cloud:%.80s] section", cloud);
        return -1;
    }
    cfg_strlist l;
    if (klist(k, val, &l) != 0) return -1;
    if (l.n == 0) {
        kerr(k, "must list at least one accepted state");
        return -1;
    }
    cfg_accept *nv = realloc(r->accept, (r->naccept + 1) * sizeof *nv);
    if (nv == NULL) {
        cfg_strlist_clear(&l);
        k->L->oom = 1;
        return -1;
    }
    r->accept = nv;
    r->accept[r->naccept].cloud = xstrdup(k->L, cloud);
    r->accept[r->naccept].states = l;
    r->naccept++;
    return 0;
}

static int conv_min_amount(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_rule *r = obj;
    char e[200], g[96];
    if (dg_money_parse(val, k->L->c->server.currency, &r->min_amount, e, sizeof e) != DG_OK) {
        kerr(k, "%s%s", e, got(k, val, g, sizeof g));
        return -1;
    }
    if (r->min_amount.minor < 0) {
        kerr(k, "must not be negative");
        return -1;
    }
    r->has_min_amount = 1;
    return 0;
}

static int conv_min_amount_ccy(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_rule *r = obj;
    const char *ccy = k->key + strlen("min_amount.");
    char e[200], g[96];
    if (!dg_ccy_valid(ccy)) {
        kerr(k, "'%.40s' is not a currency code like EUR", ccy);
        return -1;
    }
    dg_money m;
    if (dg_money_parse(val, ccy, &m, e, sizeof e) != DG_OK) {
        kerr(k, "%s%s", e, got(k, val, g, sizeof g));
        return -1;
    }
    if (strcmp(m.ccy, ccy) != 0) {
        kerr(k, "amount is in %s, the key names %s", m.ccy, ccy);
        return -1;
    }
    if (m.minor < 0) {
        kerr(k, "must not be negative");
        return -1;
    }
    dg_money *nv = realloc(r->min_amount_ccy, (r->nmin_amount_ccy + 1) * sizeof *nv);
    if (nv == NULL) {
        k->L->oom = 1;
        return -1;
    }
    r->min_amount_ccy = nv;
    r->min_amount_ccy[r->nmin_amount_ccy++] = m;
    return 0;
}

static int conv_message(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    static const char *const ph[] = {"cloud", "cloud_name", "stage", "deal", "id", "rule"};
    for (const char *p = strchr(val, '{'); p; p = strchr(p + 1, '{')) {
        const char *q = p + 1;
        while ((*q >= 'a' && *q <= 'z') || *q == '_')
            q++;
        if (*q != '}' || q == p + 1) continue;
        size_t n = (size_t)(q - p - 1), i;
        for (i = 0; i < sizeof ph / sizeof ph[0]; i++)
            if (strlen(ph[i]) == n && strncmp(ph[i], p + 1, n) == 0) break;
        if (i == sizeof ph / sizeof ph[0]) {
            kerr(k,
                 "unknown placeholder {%.*s} (known: {cloud} {cloud_name} {stage} {deal} {id} "
                 "{rule})",
                 (int)(n > 40 ? 40 : n), p + 1);
            return -1;
        }
    }
    return conv_str(k, ks, val, obj);
}

static const enumval rule_type_enum[] = {{"registration", CFG_RULE_REGISTRATION}, {NULL, 0}};
static const enumval match_enum[] = {{"all", 1}, {"any", 0}, {NULL, 0}};
static const enumval lookup_enum[] = {{"block", CFG_LOOKUP_BLOCK},
                                      {"allow", CFG_LOOKUP_ALLOW},
                                      {"retry", CFG_LOOKUP_RETRY},
                                      {NULL, 0}};
static const enumval mode_enum[] = {
    {"enforce", CFG_MODE_ENFORCE}, {"report", CFG_MODE_REPORT}, {NULL, 0}};

#define RK(f) offsetof(cfg_rule, f)
static const keyspec rule_keys[] = {
    {"type", conv_enum, RK(type), 0, 0, "registration", rule_type_enum, 0},
    {"stage", conv_str, RK(stage), 0, 0, NULL, NULL, KF_NONEMPTY},
    {"pipelines", conv_rule_pipelines, 0, 0, 0, "*", NULL, 0},
    {"clouds", conv_rule_clouds, 0, 0, 0, "deal", NULL, 0},
    {"require_clouds", conv_bool, RK(require_clouds), 0, 0, "no", NULL, 0},
    {"match", conv_enum, RK(match_all), 0, 0, "all", match_enum, 0},
    {"accept.", conv_accept, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"require_link", conv_bool, RK(require_link), 0, 0, "no", NULL, 0},
    {"min_amount", conv_min_amount, 0, 0, 0, NULL, NULL, 0},
    {"min_amount.", conv_min_amount_ccy, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"on_lookup_error", conv_enum, RK(on_lookup_error), 0, 0, "block", lookup_enum, 0},
    {"retry_window_s", conv_int, RK(retry_window_s), 0, 86400, "900", NULL, 0},
    {"mode", conv_enum, RK(mode), 0, 0, "enforce", mode_enum, 0},
    {"message", conv_message, RK(message), 0, 0, DEFAULT_MESSAGE, NULL, KF_NONEMPTY},
};
#undef RK

static void build_rule(loader *L, rawsec *s, cfg_rule *r)
{
    struct cfg *c = L->c;
    r->name = xstrdup(L, s->name);
    apply(L, s, rule_keys, sizeof rule_keys / sizeof rule_keys[0], r, -1);
    if (!has_key(s, "stage")) {
        errat(L, s->line, "[%s] needs stage = the first gated stage", s->title);
        return;
    }
    if (r->stage == NULL || *r->stage == '\0') return;
    int line = key_line(s, "stage");
    for (size_t i = 0; i < c->npipelines; i++) {
        const cfg_pipeline *p = &c->pipelines[i];
        int covered = r->all_pipelines;
        for (size_t j = 0; j < r->pipelines.n && !covered; j++)
            covered = strcmp(r->pipelines.v[j], i == 0 ? "default" : p->name) == 0;
        if (!covered || p->stages.n == 0) continue;
        if (cfg_stage_index(p, r->stage) < 0) {
            if (i == 0)
                errat(L, line, "stage: '%.80s' is not a stage of [pipeline]", r->stage);
            else
                errat(L, line, "stage: '%.80s' is not a stage of [pipeline:%s]", r->stage, p->name);
        }
    }
    /* A checked cloud without accept.<cloud> never counts as registered. */
    for (size_t i = 0; i < c->nclouds; i++) {
        const cfg_cloud *cl = &c->clouds[i];
        int checked = r->clouds_deal;
        for (size_t j = 0; j < r->clouds.n && !checked; j++)
            checked = strcmp(r->clouds.v[j], cl->key) == 0;
        if (!checked || cl->connector == CFG_CONN_NONE) continue;
        size_t j;
        for (j = 0; j < r->naccept; j++)
            if (strcmp(r->accept[j].cloud, cl->key) == 0) break;
        if (j == r->naccept)
            warnat(L, s->line, "[%s] has no accept.%s: no %s registration will count as accepted",
                   s->title, cl->key, cl->key);
    }
}

/* ---- [comp] ---- */

static int map_push(loader *L, cfg_map **maps, size_t *n, const char *label, const char *val)
{
    cfg_map *nv = realloc(*maps, (*n + 1) * sizeof *nv);
    if (nv == NULL) {
        L->oom = 1;
        return -1;
    }
    *maps = nv;
    nv[*n].label = xstrdup(L, label);
    nv[*n].cloud = xstrdup(L, val);
    (*n)++;
    return 0;
}

static int map_find_ci(const cfg_map *m, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(m[i].label, label) == 0) return (int)i;
    return -1;
}

static int comp_rate(kctx *k, const char *prefix, const char *val, cfg_map **maps, size_t *n,
                     dg_rate **rates)
{
    cfg_comp *cp = &k->L->c->comp;
    const char *label = k->key + strlen(prefix);
    char e[200], g[96];
    dg_rate r;
    if (dg_rate_parse(val, strlen(val), cp->rate_format, &r, e, sizeof e) != DG_OK) {
        kerr(k, "%s%s", e, got(k, val, g, sizeof g));
        return -1;
    }
    dg_rate *nv = realloc(*rates, (*n + 1) * sizeof *nv);
    if (nv == NULL) {
        k->L->oom = 1;
        return -1;
    }
    *rates = nv;
    nv[*n] = r;
    return map_push(k->L, maps, n, label, val);
}

static int conv_fee(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_comp *cp = obj;
    return comp_rate(k, "fee.", val, &cp->fees, &cp->nfees, &cp->fee_rates);
}

static int conv_plan(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_comp *cp = obj;
    return comp_rate(k, "plan.", val, &cp->plans, &cp->nplans, &cp->plan_rates);
}

static int conv_column(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    static const char *const fields[] = {
        "deal_id", "rep",        "channel", "cloud",       "acv",   "commission_base",
        "rate",    "commission", "plan",    "direct_rate", "split", "currency"};
    cfg_comp *cp = obj;
    const char *field = k->key + strlen("column.");
    size_t i;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i], field) == 0) break;
    if (i == sizeof fields / sizeof fields[0]) {
        kerr(k,
             "unknown field '%.40s' (fields: deal_id rep channel cloud acv commission_base rate "
             "commission plan direct_rate split currency)",
             field);
        return -1;
    }
    if (*val == '\0') {
        kerr(k, "must name a column header");
        return -1;
    }
    for (size_t j = 0; j < cp->ncolumns; j++) {
        if (strcasecmp(cp->columns[j].cloud, val) == 0) {
            kerr(k, "header '%.80s' is already mapped to column.%s", val, cp->columns[j].label);
            return -1;
        }
    }
    return map_push(k->L, &cp->columns, &cp->ncolumns, field, val);
}

static const enumval rounding_enum[] = {
    {"half_up", DG_ROUND_HALF_UP}, {"half_even", DG_ROUND_HALF_EVEN}, {NULL, 0}};
static const enumval rate_format_enum[] = {
    {"percent", DG_RATE_BARE_PERCENT}, {"fraction", DG_RATE_BARE_FRACTION}, {NULL, 0}};

static const keyspec comp_keys[] = {
    {"tolerance", conv_decimal, offsetof(cfg_comp, tolerance), 0, 0, "0.01", NULL, 0},
    {"rounding", conv_enum, offsetof(cfg_comp, rounding), 0, 0, "half_up", rounding_enum, 0},
    {"rate_format", conv_enum, offsetof(cfg_comp, rate_format), 0, 0, NULL, rate_format_enum, 0},
    {"allow_uplift", conv_bool, offsetof(cfg_comp, allow_uplift), 0, 0, "yes", NULL, 0},
    {"fee.", conv_fee, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"plan.", conv_plan, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"column.", conv_column, 0, 0, 0, NULL, NULL, KF_PREFIX},
};

/* ---- [salesforce] and [hubspot] ---- */

static int conv_cloud_map(kctx *k, const char *label, const char *val, cfg_map **maps, size_t *n)
{
    if (!cloud_defined(k->L, val)) {
        kerr(k, "no [cloud:%.80s] section", val);
        return -1;
    }
    if (map_find_ci(*maps, *n, label) >= 0) {
        kerr(k, "'%.80s' is mapped twice (labels ignore case)", label);
        return -1;
    }
    return map_push(k->L, maps, n, label, val);
}

static int conv_sf_cloud(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_salesforce *sf = obj;
    return conv_cloud_map(k, k->key + strlen("cloud."), val, &sf->clouds, &sf->nclouds);
}

static int conv_hs_cloud(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    cfg_hubspot *hs = obj;
    return conv_cloud_map(k, k->key + strlen("cloud."), val, &hs->clouds, &hs->nclouds);
}

static int conv_hs_property(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    (void)ks;
    static const char *const fields[] = {"id",       "name",   "account", "owner",    "amount",
                                         "currency", "source", "clouds",  "pipeline", "stage"};
    cfg_hubspot *hs = obj;
    const char *field = k->key + strlen("property.");
    int ok = 0;
    if (strncmp(field, "registration.", 13) == 0) {
        if (!cloud_defined(k->L, field + 13)) {
            kerr(k, "no [cloud:%.80s] section", field + 13);
            return -1;
        }
        ok = 1;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !ok; i++)
        ok = strcmp(fields[i], field) == 0;
    if (!ok) {
        kerr(k,
             "unknown field '%.40s' (fields: id name account owner amount currency source "
             "clouds pipeline stage registration.<cloud>)",
             field);
        return -1;
    }
    if (*val == '\0') {
        kerr(k, "must name a deal property");
        return -1;
    }
    return map_push(k->L, &hs->properties, &hs->nproperties, field, val);
}

static int conv_api_version(kctx *k, const keyspec *ks, const char *val, void *obj)
{
    const char *p = val;
    int ok = *p++ == 'v';
    size_t d1 = 0, d2 = 0;
    while (ok && *p >= '0' && *p <= '9')
        p++, d1++;
    ok = ok && d1 > 0 && *p++ == '.';
    while (ok && *p >= '0' && *p <= '9')
        p++, d2++;
    char g[96];
    if (!ok || d2 == 0 || *p != '\0') {
        kerr(k, "expected a version like v60.0%s", got(k, val, g, sizeof g));
        return -1;
    }
    return conv_str(k, ks, val, obj);
}

#define SF(f) offsetof(cfg_salesforce, f)
static const keyspec sf_keys[] = {
    {"cloud.", conv_sf_cloud, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"writeback", conv_bool, SF(writeback), 0, 0, "no", NULL, 0},
    {"instance_url", conv_url, SF(instance_url), 0, 0, NULL, NULL, 0},
    {"client_id", conv_str, SF(client_id), 0, 0, NULL, NULL, KF_SECRET},
    {"client_secret", conv_str, SF(client_secret), 0, 0, NULL, NULL, KF_SECRET},
    {"api_version", conv_api_version, SF(api_version), 0, 0, "v60.0", NULL, 0},
    {"reason_field", conv_str, SF(reason_field), 0, 0, NULL, NULL, KF_NONEMPTY},
};
#undef SF

#define HS(f) offsetof(cfg_hubspot, f)
static const keyspec hs_keys[] = {
    {"client_secret", conv_str, HS(client_secret), 0, 0, NULL, NULL, KF_SECRET},
    {"public_url", conv_url, HS(public_url), 0, 0, NULL, NULL, 0},
    {"property.", conv_hs_property, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"cloud.", conv_hs_cloud, 0, 0, 0, NULL, NULL, KF_PREFIX},
    {"writeback", conv_bool, HS(writeback), 0, 0, "no", NULL, 0},
    {"api_base", conv_url, HS(api_base), 0, 0, "https://api.hubapi.com", NULL, 0},
    {"token", conv_str, HS(token), 0, 0, NULL, NULL, KF_SECRET},
    {"reason_property", conv_str, HS(reason_property), 0, 0, NULL, NULL, KF_NONEMPTY},
};
#undef HS

#define RV(f) offsetof(cfg_reverify, f)
static const keyspec reverify_keys[] = {
    {"enabled", conv_bool, RV(enabled), 0, 0, "yes", NULL, 0},
    {"interval_s", conv_int, RV(interval_s), 1, 30 * 86400, "3600", NULL, 0},
    {"batch", conv_int, RV(batch), 1, 10000, "100", NULL, 0},
    {"pause_ms", conv_int, RV(pause_ms), 0, 60000, "200", NULL, 0},
};
#undef RV

/* Writeback needs credentials: reported at the writeback line. */
static void check_writeback(loader *L, rawsec *s, int writeback, const char *const *keys,
                            const char *const *vals, size_t n)
{
    if (!writeback) return;
    for (size_t i = 0; i < n; i++)
        if (vals[i] == NULL || *vals[i] == '\0')
            errat(L, key_line(s, "writeback"), "writeback = yes needs %s in [%s]", keys[i],
                  s->title);
}

/* ---- step 3: the whole snapshot ------------------------------------------------------ */

static rawsec *find_sec(loader *L, enum sec_kind kind)
{
    for (size_t i = 0; i < L->nsecs; i++)
        if (L->secs[i].kind == kind) return &L->secs[i];
    return NULL;
}

static size_t count_secs(loader *L, enum sec_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < L->nsecs; i++)
        n += L->secs[i].kind == kind;
    return n;
}

static void build(loader *L)
{
    struct cfg *c = L->c;
    rawsec none = {0};

    rawsec *s = find_sec(L, SK_SERVER);
    none.title = (char *)"server";
    apply(L, s ? s : &none, server_keys, sizeof server_keys / sizeof server_keys[0], &c->server,
          -1);

    rawsec *auth = find_sec(L, SK_AUTH);
    none.title = (char *)"auth";
    apply(L, auth ? auth : &none, auth_keys, sizeof auth_keys / sizeof auth_keys[0], &c->auth, -1);
    check_auth(L, auth ? auth : &none);

    size_t n = count_secs(L, SK_CLOUD);
    c->clouds = calloc(n ? n : 1, sizeof *c->clouds);
    if (c->clouds == NULL) goto nomem;
    for (size_t i = 0; i < L->nsecs; i++)
        if (L->secs[i].kind == SK_CLOUD) build_cloud(L, &L->secs[i], &c->clouds[c->nclouds++]);

    n = 1 + count_secs(L, SK_PIPELINE_NAMED);
    c->pipelines = calloc(n, sizeof *c->pipelines);
    L->pipe_sec = calloc(n, sizeof *L->pipe_sec);
    if (c->pipelines == NULL || L->pipe_sec == NULL) goto nomem;
    s = find_sec(L, SK_PIPELINE);
    c->npipelines = 1;
    if (s == NULL) {
        errat(L, 0, "no [pipeline] section (the default pipeline: stages = ...)");
        c->pipelines[0].name = xstrdup(L, "");
        c->pipelines[0].unknown_block = 1;
    } else {
        build_pipeline(L, s, &c->pipelines[0]);
    }
    for (size_t i = 0; i < L->nsecs; i++)
        if (L->secs[i].kind == SK_PIPELINE_NAMED)
            build_pipeline(L, &L->secs[i], &c->pipelines[c->npipelines++]);

    n = count_secs(L, SK_RULE);
    c->rules = calloc(n ? n : 1, sizeof *c->rules);
    if (c->rules == NULL) goto nomem;
    for (size_t i = 0; i < L->nsecs; i++)
        if (L->secs[i].kind == SK_RULE) build_rule(L, &L->secs[i], &c->rules[c->nrules++]);

    s = find_sec(L, SK_COMP);
    none.title = (char *)"comp";
    apply(L, s ? s : &none, comp_keys, sizeof comp_keys / sizeof comp_keys[0], &c->comp, -1);
    c->comp.has_tolerance = c->comp.tolerance != NULL;

    s = find_sec(L, SK_SALESFORCE);
    none.title = (char *)"salesforce";
    c->salesforce.present = s != NULL;
    apply(L, s ? s : &none, sf_keys, sizeof sf_keys / sizeof sf_keys[0], &c->salesforce, -1);
    if (s) {
        static const char *const k[] = {"instance_url", "client_id", "client_secret"};
        const char *v[] = {c->salesforce.instance_url, c->salesforce.client_id,
                           c->salesforce.client_secret};
        check_writeback(L, s, c->salesforce.writeback, k, v, 3);
    }

    s = find_sec(L, SK_HUBSPOT);
    none.title = (char *)"hubspot";
    c->hubspot.present = s != NULL;
    apply(L, s ? s : &none, hs_keys, sizeof hs_keys / sizeof hs_keys[0], &c->hubspot, -1);
    if (s) {
        static const char *const k[] = {"token"};
        const char *v[] = {c->hubspot.token};
        check_writeback(L, s, c->hubspot.writeback, k, v, 1);
    }

    s = find_sec(L, SK_REVERIFY);
    none.title = (char *)"reverify";
    apply(L, s ? s : &none, reverify_keys, sizeof reverify_keys / sizeof reverify_keys[0],
          &c->reverify, -1);
    return;
nomem:
    L->oom = 1;
}

/* ---- load / free -------------------------------------------------------------------- */

static void rawsecs_free(loader *L)
{
    for (size_t i = 0; i < L->nsecs; i++) {
        rawsec *s = &L->secs[i];
        for (size_t j = 0; j < s->nkv; j++) {
            free(s->kv[j].key);
            free(s->kv[j].val);
        }
        free(s->kv);
        free(s->name);
        free(s->title);
    }
    free(L->secs);
    free(L->pipe_sec);
}

static void diags_free(diaglist *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].text);
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

static int diag_cmp(const void *a, const void *b)
{
    const diag *x = a, *y = b;
    int lx = x->line ? x->line : 1 << 30, ly = y->line ? y->line : 1 << 30;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the texts of d, sorted, into l (capped at CFG_ERRORS_MAX). Returns -1 on OOM. */
static int diags_take(loader *L, diaglist *d, cfg_strlist *l, int cap)
{
    if (d->n > 1) qsort(d->v, d->n, sizeof *d->v, diag_cmp);
    size_t n = d->n;
    if (cap && n > CFG_ERRORS_MAX) n = CFG_ERRORS_MAX;
    for (size_t i = 0; i < n; i++)
        if (cfg_strlist_push(l, d->v[i].text, strlen(d->v[i].text)) != 0) return -1;
    if (n < d->n) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: too many errors (%zu more not shown)", L->path, d->n - n);
        if (cfg_strlist_push(l, msg, strlen(msg)) != 0) return -1;
    }
    return 0;
}

static dg_err load_text(const char *name, const char *text, size_t len, struct cfg **out,
                        cfg_errors *errs)
{
    dg_err rc = DG_ECONFIG;
    loader L = {0};
    L.path = name;
    L.text = text;
    L.len = len;
    *out = NULL;
    errs->lines.v = NULL;
    errs->lines.n = 0;

    L.c = calloc(1, sizeof *L.c);
    if (L.c == NULL) goto nomem;
    L.c->path = xstrdup(&L, name);
    unsigned char sum[32];
    mbedtls_sha256_ret((const unsigned char *)text, len, sum, 0);
    for (int i = 0; i < 8; i++)
        snprintf(L.c->version + 2 * i, 3, "%02x", sum[i]);

    pthread_mutex_lock(&ini_lock);
    ini_allow_multiline = false;
    ini_allow_bom = false; /* the reader strips a BOM itself */
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = (char *)";";
    ini_start_comment_prefixes = (char *)";#";
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = CFG_INI_BUF;
    ini_initial_alloc = CFG_INI_BUF; /* the heap buffer's size when realloc is off */
    int prc = ini_parse_stream(line_reader, &L, kv_handler, &L);
    pthread_mutex_unlock(&ini_lock);
    if (prc == -2) goto nomem;

    build(&L);
    if (L.oom) goto nomem;
    if (L.errs.n > 0) {
        if (diags_take(&L, &L.errs, &errs->lines, 1) != 0) goto nomem;
        goto done;
    }
    if (diags_take(&L, &L.warns, &L.c->warnings, 0) != 0) goto nomem;
    *out = L.c;
    L.c = NULL;
    rc = DG_OK;
    goto done;
nomem:
    cfg_errors_free(errs);
    {
        char msg[300];
        snprintf(msg, sizeof msg, "%s: out of memory", name);
        cfg_strlist_push(&errs->lines, msg, strlen(msg));
    }
    rc = DG_ECONFIG;
done:
    diags_free(&L.errs);
    diags_free(&L.warns);
    rawsecs_free(&L);
    cfg_free(L.c);
    return rc;
}

dg_err cfg_load_string(const char *name, const char *text, struct cfg **out, cfg_errors *errs)
{
    return load_text(name ? name : "<string>", text ? text : "", text ? strlen(text) : 0, out,
                     errs);
}

static dg_err one_error(cfg_errors *errs, const char *path, const char *what)
{
    char msg[600];
    snprintf(msg, sizeof msg, "%s: %s", path, what);
    errs->lines.v = NULL;
    errs->lines.n = 0;
    cfg_strlist_push(&errs->lines, msg, strlen(msg));
    return DG_ECONFIG;
}

dg_err cfg_load(const char *path, struct cfg **out, cfg_errors *errs)
{
    dg_err rc = DG_ECONFIG;
    int fd = -1;
    char *buf = NULL;
    char what[300];

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(what, sizeof what, "cannot open: %s", strerror(errno));
        rc = one_error(errs, path, what);
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = one_error(errs, path, "cannot open: not a regular file");
        goto done;
    }
    if (st.st_size > CFG_FILE_MAX) {
        snprintf(what, sizeof what, "file too large (max %d bytes)", CFG_FILE_MAX);
        rc = one_error(errs, path, what);
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = one_error(errs, path, "out of memory");
        goto done;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(what, sizeof what, "cannot read: %s", strerror(errno));
            rc = one_error(errs, path, what);
            goto done;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    rc = load_text(path, buf, n, out, errs);
done:
    if (fd >= 0) close(fd);
    free(buf);
    return rc;
}

static void maps_free(cfg_map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].label);
        free(m[i].cloud);
    }
    free(m);
}

void cfg_free(struct cfg *c)
{
    if (c == NULL) return;
    free(c->path);
    free(c->server.listen);
    free(c->server.data_dir);
    cfg_strlist_clear(&c->auth.webhook_tokens);
    cfg_strlist_clear(&c->auth.reader_tokens);
    cfg_strlist_clear(&c->auth.comp_reader_tokens);
    cfg_strlist_clear(&c->auth.desk_tokens);
    for (size_t i = 0; i < c->npipelines; i++) {
        cfg_pipeline *p = &c->pipelines[i];
        free(p->name);
        cfg_strlist_clear(&p->stages);
        cfg_strlist_clear(&p->won);
        cfg_strlist_clear(&p->lost);
        for (size_t j = 0; j < p->naliases; j++)
            free(p->aliases[j].raw);
        free(p->aliases);
    }
    free(c->pipelines);
    for (size_t i = 0; i < c->nrules; i++) {
        cfg_rule *r = &c->rules[i];
        free(r->name);
        free(r->stage);
        cfg_strlist_clear(&r->pipelines);
        cfg_strlist_clear(&r->clouds);
        for (size_t j = 0; j < r->naccept; j++) {
            free(r->accept[j].cloud);
            cfg_strlist_clear(&r->accept[j].states);
        }
        free(r->accept);
        free(r->min_amount_ccy);
        free(r->message);
    }
    free(c->rules);
    for (size_t i = 0; i < c->nclouds; i++) {
        cfg_cloud *cl = &c->clouds[i];
        char *fields[] = {
            cl->key,       cl->name,          cl->endpoint,          cl->region,
            cl->catalog,   cl->access_key_id, cl->secret_access_key, cl->session_token,
            cl->token_url, cl->client_id,     cl->client_secret,     cl->refresh_token,
            cl->path,      cl->partner_id,    cl->access_token,      cl->credentials};
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++)
            free(fields[j]);
    }
    free(c->clouds);
    free(c->comp.tolerance);
    maps_free(c->comp.fees, c->comp.nfees);
    free(c->comp.fee_rates);
    maps_free(c->comp.plans, c->comp.nplans);
    free(c->comp.plan_rates);
    maps_free(c->comp.columns, c->comp.ncolumns);
    maps_free(c->salesforce.clouds, c->salesforce.nclouds);
    free(c->salesforce.instance_url);
    free(c->salesforce.client_id);
    free(c->salesforce.client_secret);
    free(c->salesforce.api_version);
    free(c->salesforce.reason_field);
    free(c->hubspot.client_secret);
    free(c->hubspot.public_url);
    maps_free(c->hubspot.properties, c->hubspot.nproperties);
    maps_free(c->hubspot.clouds, c->hubspot.nclouds);
    free(c->hubspot.api_base);
    free(c->hubspot.token);
    free(c->hubspot.reason_property);
    cfg_strlist_clear(&c->warnings);
    free(c);
}

void cfg_errors_free(cfg_errors *e)
{
    if (e == NULL) return;
    cfg_strlist_clear(&e->lines);
}

/* ---- look-ups ----------------------------------------------------------------------- */

const cfg_pipeline *cfg_pipeline_find(const struct cfg *c, const char *name)
{
    if (c == NULL || c->npipelines == 0) return NULL;
    if (name == NULL || *name == '\0' || strcmp(name, "default") == 0) return &c->pipelines[0];
    for (size_t i = 1; i < c->npipelines; i++)
        if (strcmp(c->pipelines[i].name, name) == 0) return &c->pipelines[i];
    return NULL;
}

const cfg_cloud *cfg_cloud_find(const struct cfg *c, const char *key)
{
    if (c == NULL || key == NULL) return NULL;
    for (size_t i = 0; i < c->nclouds; i++)
        if (c->clouds[i].key != NULL && strcmp(c->clouds[i].key, key) == 0) return &c->clouds[i];
    return NULL;
}

int cfg_stage_index(const cfg_pipeline *p, const char *name)
{
    if (p == NULL || name == NULL) return -1;
    int i = stage_by_name(p, name);
    if (i >= 0) return i;
    for (size_t j = 0; j < p->naliases; j++)
        if (strcasecmp(p->aliases[j].raw, name) == 0) return (int)p->aliases[j].stage;
    return -1;
}
