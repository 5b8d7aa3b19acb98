/* file.c — the file connector: registrations from a CSV file (a co-sell portal export).
 *
 * The file has a header row naming the columns cloud, registration_id, crm_opportunity_id,
 * status, created_at, origin (case-insensitive, any order, all six required, other columns
 * ignored); libcsv reads it (quoted fields, CRLF, a UTF-8 BOM). Only the rows whose cloud is
 * this [cloud:KEY] key (case-insensitive) are kept, in two sorted indexes: by registration
 * id (a later row for the same id replaces an earlier one) and by CRM opportunity id (the
 * most recently created registration first, then the later row). Every kept row is
 * validated; the first bad one makes the whole file unusable, reported as "path:line: ...".
 *
 * The file is re-read without a restart: a look-up at least a second after the last check
 * stat()s it and reloads when its inode, size or mtime changed. The new data is parsed
 * without the lock (one reloader at a time, look-ups go on with the old data) and swapped
 * in under a write lock. A file that is now unreadable or invalid keeps the old data
 * serving, and health says so until a good version appears.
 */
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/utf8.h"
#include "connectors/backends.h"
#include "connectors/http.h"
#include "connectors/parse.h"

#define FILE_MAX_BYTES ((size_t)64 << 20) /* a portal export of a few 100k rows */
#define FILE_CHECK_NS 1000000000LL        /* stat() the file at most once a second */
#define FILE_MAX_COLS 256
#define FILE_FIELD_MAX 4096
#define FILE_STATUS_MAX 128
#define FILE_ERR_MAX 256

enum { COL_CLOUD, COL_REG, COL_CRM, COL_STATUS, COL_CREATED, COL_ORIGIN, NCOLS };
static const char *const col_names[NCOLS] = {"cloud",  "registration_id", "crm_opportunity_id",
                                             "status", "created_at",      "origin"};

typedef struct {
    char *reg_id, *crm_id, *status, *created_at, *origin; /* NULL when empty */
    size_t line;
} frow;

typedef struct {
    frow *rows;
    size_t n, cap;
    frow **by_reg; /* sorted by reg_id, one per id */
    size_t nreg;
    frow **by_crm; /* rows with a crm_id, sorted by crm_id, newest first within one id */
    size_t ncrm;
} fdata;

typedef struct {
    int valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
} fsig;

typedef struct {
    char *path;  /* as configured */
    char *cloud; /* the [cloud:KEY] key */
    pthread_rwlock_t lock;
    fdata *data;              /* under lock */
    pthread_mutex_t check_mu; /* the fields below; held while reloading */
    int64_t last_check_ns;
    fsig sig;
    int64_t loaded_ns;
    char reload_err[FILE_ERR_MAX]; /* "" while the file on disk is the one serving */
} fstate;

static void data_free(fdata *d)
{
    if (d == NULL) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->rows[i].reg_id);
        free(d->rows[i].crm_id);
        free(d->rows[i].status);
        free(d->rows[i].created_at);
        free(d->rows[i].origin);
    }
    free(d->rows);
    free(d->by_reg);
    free(d->by_crm);
    free(d);
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef struct {
    const char *path, *cloud;
    size_t line;     /* line being fed to the parser (1-based) */
    size_t row_line; /* line the current row started on */
    char *fields[FILE_MAX_COLS];
    size_t nfields;
    int header_done;
    int col[NCOLS]; /* field index of each column */
    size_t ncols;   /* fields in the header */
    fdata *out;
    dg_err rc;
    char err[FILE_ERR_MAX];
} pctx;

static void pfail(pctx *p, dg_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pfail(pctx *p, dg_err code, const char *fmt, ...)
{
    if (p->rc != DG_OK) return;
    char msg[FILE_ERR_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->rc = code;
    snprintf(p->err, sizeof p->err, "%s:%zu: %s", p->path, p->row_line, msg);
}

/* A value quoted in an error message: at most 40 bytes, control characters as '?'. */
static void show(char *dst, size_t n, const char *s)
{
    size_t k = 0;
    for (; s[k] && k + 1 < n && k < 40; k++)
        dst[k] = ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) ? '?' : s[k];
    dst[k] = '\0';
}

static void trim(char *s)
{
    size_t len = strlen(s), a = 0;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (a < len && (s[a] == ' ' || s[a] == '\t'))
        a++;
    memmove(s, s + a, len - a);
    s[len - a] = '\0';
}

static int no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

static int utf8(const char *s)
{
    return s == NULL || dg_utf8_valid(s, strlen(s));
}

static void on_field(void *s, size_t len, void *data)
{
    pctx *p = data;
    if (p->rc != DG_OK) return;
    if (p->nfields == 0) p->row_line = p->line;
    if (p->nfields >= FILE_MAX_COLS) {
        pfail(p, DG_ETOOBIG, "more than %d columns", FILE_MAX_COLS);
        return;
    }
    if (len > FILE_FIELD_MAX) {
        pfail(p, DG_ETOOBIG, "field %zu is longer than %d bytes", p->nfields + 1, FILE_FIELD_MAX);
        return;
    }
    if (len > 0 && memchr(s, '\0', len)) {
        pfail(p, DG_EPARSE, "field %zu contains a NUL byte", p->nfields + 1);
        return;
    }
    char *v = malloc(len + 1);
    if (v == NULL) {
        pfail(p, DG_ENOMEM, "out of memory");
        return;
    }
    if (len > 0) memcpy(v, s, len);
    v[len] = '\0';
    trim(v);
    p->fields[p->nfields++] = v;
}

static void row_clear(pctx *p)
{
    for (size_t i = 0; i < p->nfields; i++)
        free(p->fields[i]);
    p->nfields = 0;
}

static void do_header(pctx *p)
{
    for (int c = 0; c < NCOLS; c++)
        p->col[c] = -1;
    for (size_t i = 0; i < p->nfields; i++) {
        const char *name = p->fields[i];
        for (int c = 0; c < NCOLS; c++) {
            if (strcasecmp(name, col_names[c]) != 0) continue;
            if (p->col[c] >= 0) {
                pfail(p, DG_EPARSE, "duplicate column '%s'", col_names[c]);
                return;
            }
            p->col[c] = (int)i;
        }
    }
    char missing[FILE_ERR_MAX] = "";
    size_t off = 0;
    for (int c = 0; c < NCOLS; c++) {
        if (p->col[c] >= 0) continue;
        int k =
            snprintf(missing + off, sizeof missing - off, "%s%s", off ? ", " : "", col_names[c]);
        if (k > 0 && (size_t)k < sizeof missing - off) off += (size_t)k;
    }
    if (off > 0) {
        pfail(p, DG_EPARSE, "missing column(s) %s (the header needs %s, %s, %s, %s, %s, %s)",
              missing, col_names[0], col_names[1], col_names[2], col_names[3], col_names[4],
              col_names[5]);
        return;
    }
    p->ncols = p->nfields;
    p->header_done = 1;
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Normalises a creation date to RFC 3339: "YYYY-MM-DD" becomes midnight UTC; a date-time
 * with 'T' (or 't' or ' ') and Z (or z, or +hh:mm / -hh:mm) is kept, 'T' and 'Z' upper
 * case. Returns a new string, or NULL (and *bad = 1) if the text is neither. */
static char *norm_date(const char *v, int *bad)
{
    size_t len = strlen(v);
    *bad = 1;
    if (len < 10 || !digits(v, 4) || v[4] != '-' || !digits(v + 5, 2) || v[7] != '-' ||
        !digits(v + 8, 2))
        return NULL;
    int mon = num2(v + 5), day = num2(v + 8);
    if (mon < 1 || mon > 12 || day < 1 || day > 31) return NULL;
    if (len == 10) {
        char *r = malloc(21);
        if (r == NULL) {
            *bad = 0;
            return NULL;
        }
        memcpy(r, v, 10);
        memcpy(r + 10, "T00:00:00Z", 11);
        *bad = 0;
        return r;
    }
    if (len < 20 || (v[10] != 'T' && v[10] != 't' && v[10] != ' ') || !digits(v + 11, 2) ||
        v[13] != ':' || !digits(v + 14, 2) || v[16] != ':' || !digits(v + 17, 2))
        return NULL;
    if (num2(v + 11) > 23 || num2(v + 14) > 59 || num2(v + 17) > 60) return NULL;
    size_t i = 19;
    if (v[i] == '.') {
        size_t f = ++i;
        while (i < len && v[i] >= '0' && v[i] <= '9')
            i++;
        if (i == f || i - f > 9) return NULL;
    }
    if (i + 1 == len && (v[i] == 'Z' || v[i] == 'z')) {
        /* ok */
    } else if (i + 6 == len && (v[i] == '+' || v[i] == '-') && digits(v + i + 1, 2) &&
               v[i + 3] == ':' && digits(v + i + 4, 2) && num2(v + i + 1) <= 23 &&
               num2(v + i + 4) <= 59) {
        /* ok */
    } else {
        return NULL;
    }
    char *r = strdup(v);
    *bad = 0;
    if (r == NULL) return NULL;
    r[10] = 'T';
    if (r[len - 1] == 'z') r[len - 1] = 'Z';
    return r;
}

/* Takes ownership of field i (NULL when empty or absent). */
static char *take(pctx *p, int c)
{
    size_t i = (size_t)p->col[c];
    if (i >= p->nfields || p->fields[i][0] == '\0') return NULL;
    char *v = p->fields[i];
    p->fields[i] = NULL;
    return v;
}

static void do_row(pctx *p)
{
    char shown[48];
    int any = 0;
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i][0]) any = 1;
    if (!any) return; /* ",,,,," */
    if (p->nfields > p->ncols) {
        pfail(p, DG_EPARSE, "%zu fields, the header has %zu", p->nfields, p->ncols);
        return;
    }
    size_t ci = (size_t)p->col[COL_CLOUD];
    if (ci >= p->nfields || strcasecmp(p->fields[ci], p->cloud) != 0) return; /* not ours */

    frow r = {.line = p->row_line};
    r.reg_id = take(p, COL_REG);
    r.crm_id = take(p, COL_CRM);
    r.status = take(p, COL_STATUS);
    char *created = take(p, COL_CREATED);
    r.origin = take(p, COL_ORIGIN);
    if (r.reg_id == NULL) {
        pfail(p, DG_EPARSE, "registration_id is empty");
    } else if (!utf8(r.reg_id) || !utf8(r.crm_id) || !utf8(r.status)) {
        /* what is kept ends up in decision JSON; other columns and clouds may hold anything */
        pfail(p, DG_EPARSE,
              "registration_id, crm_opportunity_id or status is not valid UTF-8 (save the file "
              "as UTF-8)");
    } else if (!conn_printable_id(r.reg_id)) {
        show(shown, sizeof shown, r.reg_id);
        pfail(p, DG_EPARSE, "registration_id '%s' is not 1-%d printable characters", shown,
              DG_REG_ID_MAX);
    } else if (r.crm_id && !conn_printable_id(r.crm_id)) {
        show(shown, sizeof shown, r.crm_id);
        pfail(p, DG_EPARSE, "crm_opportunity_id '%s' is not 1-%d printable characters", shown,
              DG_ID_MAX);
    } else if (r.status && (strlen(r.status) > FILE_STATUS_MAX || !no_controls(r.status))) {
        pfail(p, DG_EPARSE, "status is longer than %d bytes or holds control characters",
              FILE_STATUS_MAX);
    } else if (r.origin && strcasecmp(r.origin, "partner") != 0 &&
               strcasecmp(r.origin, "cloud") != 0) {
        show(shown, sizeof shown, r.origin);
        pfail(p, DG_EPARSE, "origin must be partner, cloud or empty, not '%s'", shown);
    } else if (created) {
        int bad = 0;
        r.created_at = norm_date(created, &bad);
        if (r.created_at == NULL) {
            show(shown, sizeof shown, created);
            if (bad)
                pfail(p, DG_EPARSE, "created_at '%s' is not a date (YYYY-MM-DD or RFC 3339)",
                      shown);
            else
                pfail(p, DG_ENOMEM, "out of memory");
        }
    }
    free(created);
    if (p->rc == DG_OK && r.origin) {
        for (char *c = r.origin; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    }
    fdata *d = p->out;
    if (p->rc == DG_OK && d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        frow *g = realloc(d->rows, cap * sizeof *g);
        if (g == NULL)
            pfail(p, DG_ENOMEM, "out of memory");
        else {
            d->rows = g;
            d->cap = cap;
        }
    }
    if (p->rc != DG_OK) {
        free(r.reg_id);
        free(r.crm_id);
        free(r.status);
        free(r.created_at);
        free(r.origin);
        return;
    }
    d->rows[d->n++] = r;
}

static void on_row(int c, void *data)
{
    pctx *p = data;
    (void)c;
    if (p->rc == DG_OK) {
        if (!p->header_done)
            do_header(p);
        else
            do_row(p);
    }
    row_clear(p);
}

/* ---- indexes ------------------------------------------------------------------------------ */

static int cmp_reg(const void *a, const void *b)
{
    const frow *x = *(const frow *const *)a, *y = *(const frow *const *)b;
    int c = strcmp(x->reg_id, y->reg_id);
    if (c) return c;
    return x->line < y->line ? 1 : x->line > y->line ? -1 : 0; /* later row first */
}

static int cmp_crm(const void *a, const void *b)
{
    const frow *x = *(const frow *const *)a, *y = *(const frow *const *)b;
    int c = strcmp(x->crm_id, y->crm_id);
    if (c) return c;
    if (x->created_at && y->created_at) {
        c = strcmp(y->created_at, x->created_at); /* newest first */
        if (c) return c;
    } else if (x->created_at || y->created_at) {
        return x->created_at ? -1 : 1; /* dated before undated */
    }
    return x->line < y->line ? 1 : x->line > y->line ? -1 : 0;
}

static dg_err build_indexes(fdata *d)
{
    d->by_reg = malloc((d->n ? d->n : 1) * sizeof *d->by_reg);
    d->by_crm = malloc((d->n ? d->n : 1) * sizeof *d->by_crm);
    if (d->by_reg == NULL || d->by_crm == NULL) return DG_ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        d->by_reg[i] = &d->rows[i];
        if (d->rows[i].crm_id) d->by_crm[d->ncrm++] = &d->rows[i];
    }
    if (d->n) qsort(d->by_reg, d->n, sizeof *d->by_reg, cmp_reg);
    if (d->ncrm) qsort(d->by_crm, d->ncrm, sizeof *d->by_crm, cmp_crm);
    for (size_t i = 0; i < d->n; i++) /* keep the first (latest row) of each id */
        if (d->nreg == 0 || strcmp(d->by_reg[d->nreg - 1]->reg_id, d->by_reg[i]->reg_id) != 0)
            d->by_reg[d->nreg++] = d->by_reg[i];
    return DG_OK;
}

/* First row in idx (n, sorted by the key that get() returns) whose key is key, or NULL. */
static const frow *lower_bound(frow *const *idx, size_t n, const char *key, int crm)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = crm ? idx[mid]->crm_id : idx[mid]->reg_id;
        if (strcmp(k, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n) return NULL;
    const char *k = crm ? idx[lo]->crm_id : idx[lo]->reg_id;
    return strcmp(k, key) == 0 ? idx[lo] : NULL;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void errno_text(char *buf, size_t n, int e)
{
    char tmp[128];
    const char *m = strerror_r(e, tmp, sizeof tmp); /* GNU variant (_GNU_SOURCE) */
    snprintf(buf, n, "%s", m);
}

/* Parses the len bytes of a registrations file (named path in messages). Returns DG_OK with
 * *out (free with data_free), or an error with "path:line: ..." in err. */
static dg_err parse_buf(const char *path, const char *cloud, const char *buf, size_t len,
                        fdata **out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    int csv_ok = 0;
    struct csv_parser cp;
    pctx p;
    memset(&p, 0, sizeof p);
    *out = NULL;
    p.path = path;
    p.cloud = cloud;
    p.line = 1;
    p.out = calloc(1, sizeof *p.out);
    if (p.out == NULL || csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    csv_ok = 1;
    size_t pos = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    while (pos < len && p.rc == DG_OK) { /* line by line, so errors can name the line */
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t chunk = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
        if (csv_parse(&cp, buf + pos, chunk, on_field, on_row, &p) != chunk) {
            p.row_line = p.line;
            pfail(&p, DG_EPARSE, "malformed CSV: %s", csv_strerror(csv_error(&cp)));
        }
        pos += chunk;
        if (nl) p.line++;
    }
    if (p.rc == DG_OK && csv_fini(&cp, on_field, on_row, &p) != 0) {
        p.row_line = p.line;
        pfail(&p, DG_EPARSE, "malformed CSV: %s", csv_strerror(csv_error(&cp)));
    }
    row_clear(&p);
    if (p.rc == DG_OK && !p.header_done) {
        rc = dg_errf(err, errlen, DG_EPARSE, "%s: empty file: no header row", path);
        goto cleanup;
    }
    if (p.rc != DG_OK) {
        rc = dg_errf(err, errlen, p.rc, "%s", p.err);
        goto cleanup;
    }
    if (build_indexes(p.out) != DG_OK) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    *out = p.out;
    p.out = NULL;
    rc = DG_OK;
cleanup:
    row_clear(&p);
    if (csv_ok) csv_free(&cp);
    data_free(p.out);
    return rc;
}

/* Reads and parses path. Returns DG_OK with *out (free with data_free) and the file's
 * signature, or an error with "path: ..." / "path:line: ..." in err. */
static dg_err load(const char *path, const char *cloud, fdata **out, fsig *sig, char *err,
                   size_t errlen)
{
    dg_err rc = DG_EIO;
    int fd = -1;
    char *buf = NULL;
    char et[128];
    *out = NULL;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        errno_text(et, sizeof et, errno);
        rc = dg_errf(err, errlen, errno == ENOENT ? DG_ENOTFOUND : DG_EIO, "%s: cannot open: %s",
                     path, et);
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = dg_errf(err, errlen, DG_EIO, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((size_t)sb.st_size > FILE_MAX_BYTES) {
        rc =
            dg_errf(err, errlen, DG_ETOOBIG, "%s: larger than %zu MiB", path, FILE_MAX_BYTES >> 20);
        goto cleanup;
    }
    sig->valid = 1;
    sig->dev = sb.st_dev;
    sig->ino = sb.st_ino;
    sig->size = sb.st_size;
    sig->mtim = sb.st_mtim;
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    for (;;) { /* the file may grow while we read: stop at the limit */
        if (len == cap) {
            if (cap > FILE_MAX_BYTES) {
                rc = dg_errf(err, errlen, DG_ETOOBIG, "%s: larger than %zu MiB", path,
                             FILE_MAX_BYTES >> 20);
                goto cleanup;
            }
            char *g = realloc(buf, cap * 2);
            if (g == NULL) {
                rc = dg_errf(err, errlen, DG_ENOMEM, "%s: out of memory", path);
                goto cleanup;
            }
            buf = g;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            errno_text(et, sizeof et, errno);
            rc = dg_errf(err, errlen, DG_EIO, "%s: cannot read: %s", path, et);
            goto cleanup;
        }
        if (k == 0) break;
        len += (size_t)k;
    }

    rc = parse_buf(path, cloud, buf, len, out, err, errlen);
cleanup:
    free(buf);
    if (fd >= 0) close(fd);
    return rc;
}

static int sig_same(const fsig *a, const struct stat *sb)
{
    return a->valid && a->dev == sb->st_dev && a->ino == sb->st_ino && a->size == sb->st_size &&
           a->mtim.tv_sec == sb->st_mtim.tv_sec && a->mtim.tv_nsec == sb->st_mtim.tv_nsec;
}

/* At most once a second: reload the file if it changed. Never blocks a look-up behind
 * another thread's reload (trylock), never drops the data serving now. */
static void maybe_reload(fstate *st)
{
    int64_t now = conn_now_ns();
    if (pthread_mutex_trylock(&st->check_mu) != 0) return;
    if (now - st->last_check_ns < FILE_CHECK_NS) goto done;
    st->last_check_ns = now;
    struct stat sb;
    if (stat(st->path, &sb) != 0) {
        char et[128];
        errno_text(et, sizeof et, errno);
        snprintf(st->reload_err, sizeof st->reload_err, "%s: cannot stat: %s", st->path, et);
        st->sig.valid = 0; /* whatever appears next is new */
        goto done;
    }
    if (sig_same(&st->sig, &sb)) goto done;
    fdata *nd = NULL;
    fsig nsig = {0};
    char err[FILE_ERR_MAX] = "";
    if (load(st->path, st->cloud, &nd, &nsig, err, sizeof err) == DG_OK) {
        pthread_rwlock_wrlock(&st->lock);
        fdata *old = st->data;
        st->data = nd;
        pthread_rwlock_unlock(&st->lock);
        data_free(old);
        st->sig = nsig;
        st->loaded_ns = now;
        st->reload_err[0] = '\0';
    } else {
        /* Remember the bad version so it is not parsed again every second. */
        st->sig.valid = 1;
        st->sig.dev = sb.st_dev;
        st->sig.ino = sb.st_ino;
        st->sig.size = sb.st_size;
        st->sig.mtim = sb.st_mtim;
        snprintf(st->reload_err, sizeof st->reload_err, "%s", err);
    }
done:
    pthread_mutex_unlock(&st->check_mu);
}

/* ---- the backend -------------------------------------------------------------------------- */

static void file_close(void *state)
{
    fstate *st = state;
    if (st == NULL) return;
    data_free(st->data);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->check_mu);
    free(st->path);
    free(st->cloud);
    free(st);
}

static dg_err file_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                        size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    int lock_ok = 0, mu_ok = 0;
    fstate *st = calloc(1, sizeof *st);
    *state = NULL;
    if (st == NULL) {
        dg_errf(err, errlen, rc, "out of memory");
        goto cleanup;
    }
    if (cc->path == NULL || cc->path[0] == '\0') {
        rc = dg_errf(err, errlen, DG_ECONFIG, "connector file needs path");
        goto cleanup;
    }
    (void)state_dir;
    st->path = strdup(cc->path); /* a relative path resolves against the working directory */
    st->cloud = strdup(cc->key);
    if (st->path == NULL || st->cloud == NULL) {
        dg_errf(err, errlen, rc, "out of memory");
        goto cleanup;
    }
    if (pthread_rwlock_init(&st->lock, NULL) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "cannot create lock");
        goto cleanup;
    }
    lock_ok = 1;
    if (pthread_mutex_init(&st->check_mu, NULL) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "cannot create lock");
        goto cleanup;
    }
    mu_ok = 1;
    rc = load(st->path, st->cloud, &st->data, &st->sig, err, errlen);
    if (rc != DG_OK) goto cleanup;
    st->last_check_ns = st->loaded_ns = conn_now_ns();
    *state = st;
    st = NULL;
    rc = DG_OK;
cleanup:
    if (st) {
        if (mu_ok) pthread_mutex_destroy(&st->check_mu);
        if (lock_ok) pthread_rwlock_destroy(&st->lock);
        data_free(st->data);
        free(st->path);
        free(st->cloud);
        free(st);
    }
    return rc;
}

/* Copies row r into out as FOUND (with the registration id when with_id). */
static dg_err found(const frow *r, int with_id, dg_reg_fact *out)
{
    out->lookup = DG_LOOKUP_FOUND;
    out->status = dg_strdup0(r->status);
    out->crm_id = dg_strdup0(r->crm_id);
    out->created_at = dg_strdup0(r->created_at);
    out->origin = dg_strdup0(r->origin);
    if (with_id) out->id = dg_strdup0(r->reg_id);
    if ((r->status && !out->status) || (r->crm_id && !out->crm_id) ||
        (r->created_at && !out->created_at) || (r->origin && !out->origin) ||
        (with_id && !out->id)) {
        dg_reg_fact_free(out);
        out->lookup = DG_LOOKUP_FAILED;
        out->error = strdup("out of memory");
        return DG_ENOMEM;
    }
    return DG_OK;
}

static dg_err lookup(fstate *st, const char *key, int crm, dg_reg_fact *out)
{
    dg_err rc = DG_OK;
    maybe_reload(st);
    pthread_rwlock_rdlock(&st->lock);
    const fdata *d = st->data;
    const frow *r =
        crm ? lower_bound(d->by_crm, d->ncrm, key, 1) : lower_bound(d->by_reg, d->nreg, key, 0);
    if (r)
        rc = found(r, crm, out);
    else
        out->lookup = DG_LOOKUP_NOT_FOUND;
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

static dg_err file_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    (void)timeout_ms;
    return lookup(state, id, 0, out);
}

static dg_err file_by_crm_id(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out)
{
    (void)timeout_ms;
    if (crm_id == NULL) {
        out->lookup = DG_LOOKUP_NOT_FOUND;
        return DG_OK;
    }
    return lookup(state, crm_id, 1, out);
}

static void file_health(void *state, char *buf, size_t n)
{
    fstate *st = state;
    if (n == 0) return;
    pthread_mutex_lock(&st->check_mu);
    pthread_rwlock_rdlock(&st->lock);
    size_t nreg = st->data->nreg;
    pthread_rwlock_unlock(&st->lock);
    long long age = (long long)((conn_now_ns() - st->loaded_ns) / 1000000000);
    if (st->reload_err[0])
        snprintf(buf, n, "error: reload failed (%s); serving %zu registrations loaded %lld s ago",
                 st->reload_err, nreg, age);
    else
        snprintf(buf, n, "ok: %zu registrations from %s, loaded %lld s ago", nreg, st->path, age);
    pthread_mutex_unlock(&st->check_mu);
}

const conn_backend conn_file_backend = {
    .name = "file",
    .valid_id = conn_printable_id,
    .open = file_open,
    .close = file_close,
    .by_id = file_by_id,
    .by_crm_id = file_by_crm_id,
    .health = file_health,
};

/* ---- pure parsing entry point (connectors/parse.h) ---------------------------------------- */

dg_err conn_file_parse(const char *name, const char *cloud, const char *buf, size_t len,
                       size_t *nrows, size_t *nregs, char *err, size_t errlen)
{
    fdata *d = NULL;
    *nrows = *nregs = 0;
    dg_err rc = parse_buf(name ? name : "<buffer>", cloud ? cloud : "", buf, len, &d, err, errlen);
    if (rc != DG_OK) return rc;
    for (size_t i = 0; i < d->n && rc == DG_OK; i++) { /* every row is found both ways */
        const frow *r = &d->rows[i];
        if (lower_bound(d->by_reg, d->nreg, r->reg_id, 0) == NULL ||
            (r->crm_id && lower_bound(d->by_crm, d->ncrm, r->crm_id, 1) == NULL))
            rc = dg_errf(err, errlen, DG_EINTERNAL, "%s:%zu: row not in the index", name, r->line);
    }
    *nrows = d->n;
    *nregs = d->nreg;
    data_free(d);
    return rc;
}
