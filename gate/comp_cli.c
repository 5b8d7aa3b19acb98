/* comp_cli.c — `dealgate comp-check` (see comp_cli.h).
 *
 * One pass, constant memory, two threads: a reader thread reads 64 KiB blocks and cuts
 * records with libcsv into NBATCH bounded batches (cutting CSV is a third of the work);
 * the main thread checks each record, adds it to the totals and the per-rep table and, if it
 * is to be reported, writes it straight to stdout in the chosen format. Nothing else is
 * kept. The per-rep table is an open-addressing hash of (rep, currency) with a fixed
 * number of slots, allocated once; reps past the cap are summed per currency as "other
 * reps". On an input error the JSON output is still closed into a valid object (with an
 * "error" member) before exiting 2, so a pipeline reading it sees a clean failure.
 */
#include "gate/comp_cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "gate/comp_intake.h"
#include "rules/comp.h"

#define CLI_DEFAULT_CONFIG "config/dealgate.ini"
#define CLI_READ_SIZE (64 * 1024)
#define REP_SLOTS 16384 /* power of two, > GATE_COMP_CLI_MAX_REPS / 0.7 */

typedef enum { FMT_TEXT = 0, FMT_JSON, FMT_CSV } out_format;

typedef struct {
    char *rep; /* NULL: free slot */
    char ccy[4];
    int exponent;
    uint64_t lines; /* lines with a violation */
    int64_t shortfall;
} rep_entry;

typedef struct {
    rep_entry *slots; /* REP_SLOTS */
    size_t n;
    /* reps beyond the cap, per currency */
    gate_comp_totals others; /* reuses the per-currency sums; checked = lines */
} rep_table;

typedef struct {
    const char *file;
    out_format fmt;
    int all;
    FILE *out;
    dg_buf buf; /* one JSON result */
    gate_comp_totals totals;
    rep_table reps;
    uint64_t reported;
} cli_run;

static const char usage[] =
    "usage: dealgate comp-check [-c FILE] STATEMENT.csv [--format text|json|csv] [--all]\n";

/* ---------------------------------------------------------------- rep table */

static uint64_t hash_key(const char *rep, const char *ccy)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)rep; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (int i = 0; i < 3; i++)
        h = (h ^ (unsigned char)ccy[i]) * 1099511628211ULL;
    return h;
}

static dg_err reps_add(rep_table *t, const gate_comp_item *it, char *err, size_t errlen)
{
    const char *rep = it->rep[0] ? it->rep : "(no rep)";
    uint64_t h = hash_key(rep, it->currency);
    size_t i = (size_t)h & (REP_SLOTS - 1);

    for (;;) {
        rep_entry *e = &t->slots[i];
        if (e->rep == NULL) {
            if (t->n >= GATE_COMP_CLI_MAX_REPS) break;
            e->rep = strdup(rep);
            if (e->rep == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
            memcpy(e->ccy, it->currency, 4);
            e->exponent = it->in.exponent;
            t->n++;
        } else if (memcmp(e->ccy, it->currency, 4) != 0 || strcmp(e->rep, rep) != 0) {
            i = (i + 1) & (REP_SLOTS - 1);
            continue;
        }
        e->lines++;
        if (dg_amount_add(e->shortfall, it->v.shortfall, &e->shortfall) != DG_OK)
            return dg_errf(err, errlen, DG_EOVERFLOW, "shortfall of rep %s does not fit", rep);
        return DG_OK;
    }
    return gate_comp_totals_add(&t->others, it, err, errlen);
}

static int rep_cmp(const void *a, const void *b)
{
    const rep_entry *x = a, *y = b;
    int c = memcmp(x->ccy, y->ccy, 3);
    if (c) return c;
    if (x->shortfall != y->shortfall) return x->shortfall > y->shortfall ? -1 : 1;
    return strcmp(x->rep, y->rep);
}

static void reps_free(rep_table *t)
{
    if (t->slots)
        for (size_t i = 0; i < REP_SLOTS; i++)
            free(t->slots[i].rep);
    free(t->slots);
    gate_comp_totals_free(&t->others);
}

/* ---------------------------------------------------------------- output */

/* Report lines are built in a buffer and written with one fwrite: per-character stdio
 * calls (each takes the stream lock) cost more than the checks themselves. */
#define B(str) dg_buf_add(b, str, sizeof str - 1)

/* Appends s with control characters shown as '?' (text reports go to terminals). */
static void put_text(dg_buf *b, const char *s)
{
    size_t n = strlen(s);
    size_t at = b->len;
    if (dg_buf_add(b, s, n)) return;
    for (size_t i = at; i < b->len; i++)
        if ((unsigned char)b->p[i] < 0x20 || b->p[i] == 0x7f) b->p[i] = '?';
}

static void put_grouped(dg_buf *b, int64_t minor, int exponent)
{
    char t[DG_MONEY_STRLEN];
    size_t n = dg_amount_format_grouped(minor, exponent, t, sizeof t);
    dg_buf_add(b, t, n);
}

static void put_size(dg_buf *b, size_t v)
{
    char t[24];
    size_t n = sizeof t;
    do {
        t[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    dg_buf_add(b, t + n, sizeof t - n);
}

static const char *status_word(const rules_comp_verdict *v, int upper)
{
    if (v->violation) return upper ? "VIOLATION" : "violation";
    return v->warning ? "warning" : "clean";
}

static void text_line(dg_buf *b, const gate_comp_item *it)
{
    const rules_comp_verdict *v = &it->v;
    B("line ");
    put_size(b, it->line);
    B(": ");
    put_text(b, it->deal_id);
    B(" (");
    if (it->rep[0]) {
        B("rep ");
        put_text(b, it->rep);
        B(", ");
    }
    dg_buf_str(b, it->channel);
    if (it->cloud[0]) {
        B(" ");
        put_text(b, it->cloud);
    }
    B(", ");
    dg_buf_add(b, it->currency, 3);
    B("): ");
    dg_buf_str(b, status_word(v, 1));
    B(", expected ");
    put_grouped(b, v->expected, it->in.exponent);
    B(", paid ");
    put_grouped(b, v->actual, it->in.exponent);
    if (v->shortfall) {
        B(", shortfall ");
        put_grouped(b, v->shortfall, it->in.exponent);
    }
    B("\n");
    for (size_t i = 0; i < v->nreasons; i++) {
        B("    ");
        dg_buf_str(b, rules_comp_code_name(v->reasons[i].code));
        if (!v->reasons[i].violation) B(" (warning)");
        B(": ");
        dg_buf_str(b, v->reasons[i].message); /* rules keep controls out of these */
        B("\n");
    }
}

/* One CSV cell: neutralised (= + - @ tab CR first get a ') and quoted when needed. */
static void csv_cell(dg_buf *b, const char *s)
{
    int lead =
        s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    int quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || (s[0] && s[strlen(s) - 1] == ' ');
    if (quote) B("\"");
    if (lead) B("'");
    if (!quote) {
        dg_buf_str(b, s);
        return;
    }
    for (const char *p = s; *p; p++) {
        const char *q = strchr(p, '"');
        size_t n = q ? (size_t)(q - p) + 1 : strlen(p);
        dg_buf_add(b, p, n);
        if (q == NULL) break;
        B("\""); /* a quote is doubled */
        p = q;
    }
    B("\"");
}

static const char csv_header[] = "line,deal_id,rep,channel,cloud,plan,currency,status,codes,"
                                 "expected,actual,shortfall,direct_rate,message\r\n";

static void csv_line(dg_buf *b, const gate_comp_item *it)
{
    const rules_comp_verdict *v = &it->v;
    char t[RULES_COMP_MSG_MAX * RULES_COMP_NCODES + 64];
    size_t n = 0;

    put_size(b, it->line);
    B(",");
    csv_cell(b, it->deal_id);
    B(",");
    csv_cell(b, it->rep);
    B(",");
    csv_cell(b, it->channel);
    B(",");
    csv_cell(b, it->cloud);
    B(",");
    csv_cell(b, it->plan);
    B(",");
    dg_buf_add(b, it->currency, 3);
    B(",");
    dg_buf_str(b, status_word(v, 0));
    B(",");
    t[0] = '\0';
    for (size_t i = 0; i < v->nreasons; i++)
        n += (size_t)snprintf(t + n, sizeof t - n, "%s%s", i ? ";" : "",
                              rules_comp_code_name(v->reasons[i].code));
    csv_cell(b, t);
    B(",");
    dg_amount_format(v->expected, it->in.exponent, t, sizeof t);
    csv_cell(b, t);
    B(",");
    dg_amount_format(v->actual, it->in.exponent, t, sizeof t);
    csv_cell(b, t);
    B(",");
    dg_amount_format(v->shortfall, it->in.exponent, t, sizeof t);
    csv_cell(b, t);
    B(",");
    if (v->dr_source != RULES_COMP_DR_NONE) {
        dg_rate_format(v->direct_rate, t, sizeof t);
        csv_cell(b, t);
    }
    B(",");
    t[0] = '\0';
    n = 0;
    for (size_t i = 0; i < v->nreasons && n < sizeof t; i++)
        n += (size_t)snprintf(t + n, sizeof t - n, "%s%s", i ? "; " : "", v->reasons[i].message);
    csv_cell(b, t);
    B("\r\n");
}

static dg_err on_line(void *arg, const gate_comp_item *it, char *err, size_t errlen)
{
    cli_run *r = arg;
    dg_err rc = gate_comp_totals_add(&r->totals, it, err, errlen);
    if (rc != DG_OK) return rc;
    if (it->v.violation) {
        rc = reps_add(&r->reps, it, err, errlen);
        if (rc != DG_OK) return rc;
    }
    if (!r->all && it->v.nreasons == 0) return DG_OK;
    r->buf.len = 0;
    switch (r->fmt) {
    case FMT_TEXT:
        text_line(&r->buf, it);
        break;
    case FMT_CSV:
        csv_line(&r->buf, it);
        break;
    case FMT_JSON:
        if (r->reported) dg_buf_add(&r->buf, ",\n", 2);
        gate_comp_result_json(&r->buf, it);
        break;
    }
    if (dg_buf_failed(&r->buf)) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    fwrite(r->buf.p, 1, r->buf.len, r->out);
    r->reported++;
    return DG_OK;
}

/* Summary helpers (a few hundred lines at most: plain stdio is fine). */
static void fput_text(FILE *f, const char *s)
{
    for (const char *p = s; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static void fput_grouped(FILE *f, int64_t minor, int exponent)
{
    char t[DG_MONEY_STRLEN];
    dg_amount_format_grouped(minor, exponent, t, sizeof t);
    fputs(t, f);
}

static void print_summary(FILE *f, const cli_run *r)
{
    const gate_comp_totals *t = &r->totals;
    fprintf(f, "%s: %llu lines checked, %llu with violations, %llu with warnings only\n", r->file,
            (unsigned long long)t->checked, (unsigned long long)t->violations,
            (unsigned long long)t->warnings);
    if (t->violations || t->warnings) {
        fputs("lines by code:\n", f);
        for (int i = 0; i < RULES_COMP_NCODES; i++)
            if (t->by_code[i])
                fprintf(f, "  %-36s %llu\n", rules_comp_code_name((rules_comp_code)i),
                        (unsigned long long)t->by_code[i]);
    }
    fputs("total shortfall:", f);
    for (size_t i = 0; i < t->nccy; i++) {
        fprintf(f, "%s %s ", i ? "," : "", t->ccy[i].ccy);
        fput_grouped(f, t->ccy[i].shortfall, t->ccy[i].exponent);
    }
    fputs(t->nccy ? "\n" : " none\n", f);
    if (r->reps.n == 0) return;

    /* Compact the table in place and sort: by currency, largest shortfall first. */
    rep_entry *e = r->reps.slots;
    size_t n = 0;
    for (size_t i = 0; i < REP_SLOTS; i++)
        if (e[i].rep) {
            rep_entry tmp = e[i];
            e[i] = e[n];
            e[n++] = tmp;
        }
    qsort(e, n, sizeof *e, rep_cmp);
    fputs("shortfall by rep (lines with violations, shortfall):\n", f);
    for (size_t i = 0; i < n; i++) {
        fputs("  ", f);
        fput_text(f, e[i].rep);
        fprintf(f, "  %llu  %s ", (unsigned long long)e[i].lines, e[i].ccy);
        fput_grouped(f, e[i].shortfall, e[i].exponent);
        fputc('\n', f);
    }
    const gate_comp_totals *o = &r->reps.others;
    for (size_t i = 0; i < o->nccy; i++) {
        fprintf(f, "  (other reps past the first %d)  %s ", GATE_COMP_CLI_MAX_REPS, o->ccy[i].ccy);
        fput_grouped(f, o->ccy[i].shortfall, o->ccy[i].exponent);
        fputc('\n', f);
    }
    if (o->nccy) fprintf(f, "  (other reps: %llu lines)\n", (unsigned long long)o->checked);
}

/* Closes the JSON output: the summary members, or an error member. */
static void json_close(cli_run *r, const char *code, const char *msg)
{
    dg_buf b;
    dg_buf_init(&b, 1u << 20);
    dg_buf_str(&b, "\n],");
    if (code) {
        dg_buf_str(&b, "\"error\":{\"code\":");
        dg_buf_json_str(&b, code);
        dg_buf_str(&b, ",\"message\":");
        dg_buf_json_str(&b, msg);
        dg_buf_str(&b, "}}\n");
    } else {
        gate_comp_totals_json(&b, &r->totals);
        dg_buf_str(&b, "}\n");
    }
    if (!dg_buf_failed(&b)) fwrite(b.p, 1, b.len, r->out);
    dg_buf_free(&b);
}

/* ---------------------------------------------------------------- pipeline */

/* Two threads: a reader cuts records (fread + libcsv) into batches; the main thread checks
 * them and writes the report, in file order. NBATCH batches of at most BATCH_RECS records
 * and BATCH_BYTES of cell text bound the memory between them. */
#define NBATCH 4
#define BATCH_RECS 256
#define BATCH_BYTES (64 * 1024)

typedef struct {
    size_t n, used;
    struct {
        size_t line;
        unsigned has;
        uint32_t off[GATE_COMP_NFIELDS];
        uint16_t len[GATE_COMP_NFIELDS];
    } rec[BATCH_RECS];
    char bytes[BATCH_BYTES];
} batch;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv_prod, cv_cons;
    batch *slots;                          /* NBATCH */
    size_t head;                           /* first filled slot */
    size_t count;                          /* filled slots (the one being checked included) */
    int eof;                               /* the reader is done */
    int stop;                              /* the checker gave up: the reader stops too */
    dg_err prc;                            /* the reader's result */
    char perr[768];                        /* and its message */
    const char *labels[GATE_COMP_NFIELDS]; /* header of each field (owned by the stream) */
    int have_labels;
    /* reader side only */
    FILE *in;
    char *block;
    gate_comp_csv *s;
    batch *cur;
} pipe_q;

/* Reader: the slot to fill, waiting for one to be free. NULL once the checker stopped. */
static batch *slot_acquire(pipe_q *q)
{
    batch *b = NULL;
    pthread_mutex_lock(&q->mu);
    while (q->count == NBATCH && !q->stop)
        pthread_cond_wait(&q->cv_prod, &q->mu);
    if (!q->stop) b = &q->slots[(q->head + q->count) % NBATCH];
    pthread_mutex_unlock(&q->mu);
    if (b) b->n = b->used = 0;
    return b;
}

static void slot_push(pipe_q *q)
{
    if (q->cur == NULL || q->cur->n == 0) return;
    pthread_mutex_lock(&q->mu);
    q->count++;
    pthread_cond_signal(&q->cv_cons);
    pthread_mutex_unlock(&q->mu);
    q->cur = NULL;
}

static dg_err enqueue(void *arg, const gate_comp_record *r, char *err, size_t errlen)
{
    pipe_q *q = arg;
    size_t need = 0;
    for (int f = 0; f < GATE_COMP_NFIELDS; f++)
        if (r->has & (1u << f)) need += r->len[f] + 1;
    if (q->cur && (q->cur->n == BATCH_RECS || q->cur->used + need > BATCH_BYTES)) slot_push(q);
    if (q->cur == NULL) {
        if (!q->have_labels) { /* the same for every record; copied before the first push */
            memcpy(q->labels, r->label, sizeof q->labels);
            q->have_labels = 1;
        }
        q->cur = slot_acquire(q);
        if (q->cur == NULL) return dg_errf(err, errlen, DG_EINTERNAL, "stopped");
    }
    batch *b = q->cur;
    b->rec[b->n].line = r->line;
    b->rec[b->n].has = r->has;
    for (int f = 0; f < GATE_COMP_NFIELDS; f++) {
        if (!(r->has & (1u << f))) continue;
        b->rec[b->n].off[f] = (uint32_t)b->used;
        b->rec[b->n].len[f] = (uint16_t)r->len[f];
        memcpy(b->bytes + b->used, r->val[f], r->len[f] + 1);
        b->used += r->len[f] + 1;
    }
    b->n++;
    return DG_OK;
}

static void *reader_main(void *arg)
{
    pipe_q *q = arg;
    dg_err rc = DG_OK;
    char err[768];

    for (;;) {
        size_t n = fread(q->block, 1, CLI_READ_SIZE, q->in);
        if (n > 0) rc = gate_comp_csv_feed(q->s, q->block, n, err, sizeof err);
        if (rc != DG_OK) break;
        if (n < CLI_READ_SIZE) {
            if (ferror(q->in)) {
                rc = dg_errf(err, sizeof err, DG_EIO, "line %zu: read error: %s",
                             gate_comp_csv_line(q->s), strerror(errno));
                break;
            }
            if (feof(q->in)) break;
        }
    }
    if (rc == DG_OK) rc = gate_comp_csv_finish(q->s, err, sizeof err);
    slot_push(q); /* the records before an error are still checked and reported */
    pthread_mutex_lock(&q->mu);
    q->eof = 1;
    q->prc = rc;
    if (rc != DG_OK) snprintf(q->perr, sizeof q->perr, "%s", err);
    pthread_cond_signal(&q->cv_cons);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Checker: checks and reports every record in file order. Returns the first error (the
 * checker's, or else the reader's) with its message in err. */
static dg_err check_all(pipe_q *q, const rules_comp_ctx *ctx, gate_comp_scratch *sc, cli_run *r,
                        char *err, size_t errlen)
{
    dg_err rc = DG_OK;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && !q->eof)
            pthread_cond_wait(&q->cv_cons, &q->mu);
        if (q->count == 0) {
            rc = q->prc;
            if (rc != DG_OK) dg_errf(err, errlen, rc, "%s", q->perr);
            pthread_mutex_unlock(&q->mu);
            return rc;
        }
        batch *b = &q->slots[q->head];
        pthread_mutex_unlock(&q->mu);

        for (size_t i = 0; i < b->n && rc == DG_OK; i++) {
            gate_comp_record rec;
            const gate_comp_item *it = NULL;
            rec.line = b->rec[i].line;
            rec.has = b->rec[i].has;
            for (int f = 0; f < GATE_COMP_NFIELDS; f++) {
                rec.label[f] = q->labels[f];
                rec.val[f] = b->bytes + b->rec[i].off[f];
                rec.len[f] = b->rec[i].len[f];
            }
            rc = gate_comp_check_record(ctx, sc, &rec, &it, err, errlen);
            if (rc == DG_OK) rc = on_line(r, it, err, errlen);
        }

        pthread_mutex_lock(&q->mu);
        q->head = (q->head + 1) % NBATCH;
        q->count--;
        if (rc != DG_OK) q->stop = 1;
        pthread_cond_broadcast(&q->cv_prod);
        pthread_mutex_unlock(&q->mu);
        if (rc != DG_OK) return rc;
    }
}

/* ---------------------------------------------------------------- main */

int gate_comp_check_main(int argc, char **argv)
{
    const char *cfg_path = CLI_DEFAULT_CONFIG, *file = NULL;
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    rules_comp_ctx ctx;
    gate_comp_csv *s = NULL;
    FILE *in = NULL;
    char *block = NULL;
    char err[768];
    cli_run r;
    pipe_q q;
    pthread_t reader;
    gate_comp_scratch *sc = NULL;
    int status = 2, q_init = 0;
    dg_err rc;

    memset(&r, 0, sizeof r);
    memset(&q, 0, sizeof q);
    r.out = stdout;
    dg_buf_init(&r.buf, 1u << 20);
    gate_comp_totals_init(&r.totals);
    gate_comp_totals_init(&r.reps.others);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i >= argc) goto usage;
            cfg_path = argv[i];
        } else if (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0) {
            const char *v = a[8] == '=' ? a + 9 : (++i < argc ? argv[i] : NULL);
            if (v == NULL) goto usage;
            if (strcmp(v, "text") == 0)
                r.fmt = FMT_TEXT;
            else if (strcmp(v, "json") == 0)
                r.fmt = FMT_JSON;
            else if (strcmp(v, "csv") == 0)
                r.fmt = FMT_CSV;
            else {
                fprintf(stderr, "dealgate comp-check: unknown format \"%s\"\n", v);
                goto usage;
            }
        } else if (strcmp(a, "--all") == 0) {
            r.all = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "dealgate comp-check: unknown option %s\n", a);
            goto usage;
        } else if (file == NULL) {
            file = a;
        } else {
            fprintf(stderr, "dealgate comp-check: one statement at a time (%s, %s)\n", file, a);
            goto usage;
        }
    }
    if (file == NULL) goto usage;
    r.file = strcmp(file, "-") == 0 ? "<stdin>" : file;

    if (cfg_load(cfg_path, &c, &errs) != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        if (errs.lines.n == 0) fprintf(stderr, "%s: cannot load configuration\n", cfg_path);
        goto done;
    }
    if (rules_comp_ctx_init(&ctx, c, err, sizeof err) != DG_OK) {
        fprintf(stderr, "%s: %s\n", cfg_path, err);
        goto done;
    }
    r.reps.slots = calloc(REP_SLOTS, sizeof *r.reps.slots);
    block = malloc(CLI_READ_SIZE);
    q.slots = malloc(NBATCH * sizeof *q.slots);
    if (r.reps.slots == NULL || block == NULL || q.slots == NULL ||
        gate_comp_csv_new_records(&ctx, enqueue, &q, &s) != DG_OK ||
        gate_comp_scratch_new(&sc) != DG_OK) {
        fprintf(stderr, "dealgate comp-check: out of memory\n");
        goto done;
    }
    in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (in == NULL) {
        fprintf(stderr, "%s: cannot open: %s\n", file, strerror(errno));
        goto done;
    }

    setvbuf(r.out, NULL, _IOFBF, 1 << 16);
    if (r.fmt == FMT_JSON) fputs("{\"results\":[\n", r.out);
    if (r.fmt == FMT_CSV) fputs(csv_header, r.out);
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv_prod, NULL);
    pthread_cond_init(&q.cv_cons, NULL);
    q_init = 1;
    q.in = in;
    q.block = block;
    q.s = s;
    if (pthread_create(&reader, NULL, reader_main, &q) != 0) {
        fprintf(stderr, "dealgate comp-check: cannot start the reader thread\n");
        goto done;
    }
    rc = check_all(&q, &ctx, sc, &r, err, sizeof err);
    pthread_join(reader, NULL);
    if (rc != DG_OK) {
        if (r.fmt == FMT_JSON) {
            char full[1024];
            snprintf(full, sizeof full, "%s: %s", r.file, err);
            json_close(&r, rc == DG_EPARSE ? "invalid_csv" : "invalid_field", full);
        }
        fflush(r.out);
        fprintf(stderr, "%s: %s\n", r.file, err);
        goto done;
    }
    if (r.fmt == FMT_JSON)
        json_close(&r, NULL, NULL);
    else
        print_summary(r.fmt == FMT_CSV ? stderr : r.out, &r);
    if (fflush(r.out) != 0 || ferror(r.out)) {
        fprintf(stderr, "dealgate comp-check: write error: %s\n", strerror(errno));
        goto done;
    }
    status = r.totals.violations ? 1 : 0;
    goto done;
usage:
    fputs(usage, stderr);
done:
    if (q_init) {
        pthread_mutex_destroy(&q.mu);
        pthread_cond_destroy(&q.cv_prod);
        pthread_cond_destroy(&q.cv_cons);
    }
    free(q.slots);
    gate_comp_scratch_free(sc);
    if (in != NULL && in != stdin) fclose(in);
    gate_comp_csv_free(s);
    free(block);
    reps_free(&r.reps);
    dg_buf_free(&r.buf);
    gate_comp_totals_free(&r.totals);
    if (c) cfg_free(c);
    cfg_errors_free(&errs);
    return status;
}
