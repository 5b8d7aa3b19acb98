/* comp_intake.c — commission lines in, results out (see comp_intake.h).
 *
 * Three layers. (1) build_item() turns the raw values of one line (text from a CSV cell
 * or a JSON string, or a JSON number) into a gate_comp_item: it trims, bounds, validates
 * and parses every field with the money API, then calls rules_comp_check(). Both input
 * forms go through it, so a CSV cell and a JSON string mean the same thing (CSV amounts
 * may also group thousands with commas). (2) The CSV stream feeds libcsv one physical line
 * at a time, which is how it knows the line a record starts on: before each line, a
 * parser in its "no row begun" state means the next record starts there. Cells of mapped
 * columns are copied into fixed buffers; the record is checked when libcsv reports its
 * end. (3) gate_comp_check_body() collects results and log rows for one HTTP request.
 *
 * Output is written by hand (not cJSON) so that a million results stream out with no
 * allocation per line.
 */
#include "gate/comp_intake.h"

#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/json.h"

static const char *const field_names[GATE_COMP_NFIELDS] = {
    "deal_id", "rep",        "channel", "cloud",       "acv",   "commission_base",
    "rate",    "commission", "plan",    "direct_rate", "split", "currency",
};

const char *gate_comp_field_name(gate_comp_field f)
{
    return (unsigned)f < GATE_COMP_NFIELDS ? field_names[f] : "unknown";
}

/* ---------------------------------------------------------------- buffers */

/* ---------------------------------------------------------------- results */

static int put_amount(dg_buf *b, int64_t minor, int exponent)
{
    char t[DG_MONEY_STRLEN + 2];
    t[0] = '"';
    size_t n = dg_amount_format(minor, exponent, t + 1, DG_MONEY_STRLEN);
    t[n + 1] = '"';
    return dg_buf_add(b, t, n + 2);
}

static int put_u64(dg_buf *b, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    return dg_buf_add(b, t, (size_t)n);
}

static const char *opt(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

int gate_comp_result_json(dg_buf *b, const gate_comp_item *it)
{
    const rules_comp_verdict *v = &it->v;
    const int e = it->in.exponent;
    int r = 0;

    r |= dg_buf_str(b, "{\"line\":");
    r |= put_u64(b, it->line);
    r |= dg_buf_str(b, ",\"deal_id\":");
    r |= dg_buf_json_str(b, it->deal_id);
    r |= dg_buf_str(b, ",\"rep\":");
    r |= dg_buf_json_str(b, opt(it->rep));
    r |= dg_buf_str(b, ",\"channel\":");
    r |= dg_buf_json_str(b, it->channel);
    r |= dg_buf_str(b, ",\"cloud\":");
    r |= dg_buf_json_str(b, opt(it->cloud));
    r |= dg_buf_str(b, ",\"plan\":");
    r |= dg_buf_json_str(b, opt(it->plan));
    r |= dg_buf_str(b, ",\"currency\":");
    r |= dg_buf_json_str(b, it->currency);
    r |= dg_buf_str(b, v->violation ? ",\"status\":\"violation\""
                       : v->warning ? ",\"status\":\"warning\""
                                    : ",\"status\":\"clean\"");
    r |= dg_buf_str(b, ",\"codes\":[");
    for (size_t i = 0; i < v->nreasons; i++) {
        if (i) r |= dg_buf_add(b, ",", 1);
        r |= dg_buf_json_str(b, rules_comp_code_name(v->reasons[i].code));
    }
    r |= dg_buf_str(b, "],\"reasons\":[");
    for (size_t i = 0; i < v->nreasons; i++) {
        if (i) r |= dg_buf_add(b, ",", 1);
        r |= dg_buf_str(b, "{\"code\":");
        r |= dg_buf_json_str(b, rules_comp_code_name(v->reasons[i].code));
        r |= dg_buf_str(b, v->reasons[i].violation ? ",\"severity\":\"violation\""
                                                   : ",\"severity\":\"warning\"");
        r |= dg_buf_str(b, ",\"message\":");
        r |= dg_buf_json_str(b, v->reasons[i].message);
        r |= dg_buf_add(b, "}", 1);
    }
    r |= dg_buf_str(b, "],\"message\":");
    if (v->nreasons == 0) {
        r |= dg_buf_str(b, "\"\"");
    } else {
        char msg[RULES_COMP_MSG_MAX + 32];
        if (v->nreasons > 1)
            snprintf(msg, sizeof msg, "%s (+%zu more)", v->reasons[0].message, v->nreasons - 1);
        else
            snprintf(msg, sizeof msg, "%s", v->reasons[0].message);
        r |= dg_buf_json_str(b, msg);
    }
    r |= dg_buf_str(b, ",\"expected\":");
    r |= put_amount(b, v->expected, e);
    r |= dg_buf_str(b, ",\"actual\":");
    r |= put_amount(b, v->actual, e);
    r |= dg_buf_str(b, ",\"shortfall\":");
    r |= put_amount(b, v->shortfall, e);
    r |= dg_buf_str(b, ",\"direct_rate\":");
    if (v->dr_source == RULES_COMP_DR_NONE) {
        r |= dg_buf_str(b, "null,\"direct_rate_source\":null}");
    } else {
        char rt[32], src[CFG_NAME_MAX + 16];
        dg_rate_format(v->direct_rate, rt, sizeof rt);
        r |= dg_buf_json_str(b, rt);
        if (v->dr_source == RULES_COMP_DR_LINE)
            snprintf(src, sizeof src, "line");
        else if (v->dr_source == RULES_COMP_DR_PLAN)
            snprintf(src, sizeof src, "plan.%s", v->dr_plan);
        else
            snprintf(src, sizeof src, "plan.default");
        r |= dg_buf_str(b, ",\"direct_rate_source\":");
        r |= dg_buf_json_str(b, src);
        r |= dg_buf_add(b, "}", 1);
    }
    return r ? -1 : 0;
}

/* ---------------------------------------------------------------- totals */

void gate_comp_totals_init(gate_comp_totals *t)
{
    memset(t, 0, sizeof *t);
}

dg_err gate_comp_totals_add(gate_comp_totals *t, const gate_comp_item *it, char *err, size_t errlen)
{
    struct gate_comp_ccy_total *c = NULL;

    t->checked++;
    if (it->v.violation)
        t->violations++;
    else if (it->v.warning)
        t->warnings++;
    for (size_t i = 0; i < it->v.nreasons; i++)
        t->by_code[it->v.reasons[i].code]++;

    for (size_t i = 0; i < t->nccy; i++) {
        if (memcmp(t->ccy[i].ccy, it->currency, 4) == 0) {
            c = &t->ccy[i];
            break;
        }
    }
    if (c == NULL) {
        if (t->nccy == GATE_COMP_MAX_CURRENCIES)
            return dg_errf(err, errlen, DG_ETOOBIG, "more than %d currencies",
                           GATE_COMP_MAX_CURRENCIES);
        if (t->nccy == t->capccy) {
            size_t cap = t->capccy ? t->capccy * 2 : 4;
            struct gate_comp_ccy_total *p = realloc(t->ccy, cap * sizeof *p);
            if (p == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
            t->ccy = p;
            t->capccy = cap;
        }
        c = &t->ccy[t->nccy++];
        memcpy(c->ccy, it->currency, 4);
        c->exponent = it->in.exponent;
        c->shortfall = 0;
    }
    if (dg_amount_add(c->shortfall, it->v.shortfall, &c->shortfall) != DG_OK)
        return dg_errf(err, errlen, DG_EOVERFLOW, "total shortfall in %s does not fit",
                       it->currency);
    return DG_OK;
}

int gate_comp_totals_json(dg_buf *b, const gate_comp_totals *t)
{
    int r = 0;
    r |= dg_buf_str(b, t->violations ? "\"ok\":false" : "\"ok\":true");
    r |= dg_buf_str(b, ",\"checked\":");
    r |= put_u64(b, t->checked);
    r |= dg_buf_str(b, ",\"violations\":");
    r |= put_u64(b, t->violations);
    r |= dg_buf_str(b, ",\"warnings\":");
    r |= put_u64(b, t->warnings);
    r |= dg_buf_str(b, ",\"violations_by_code\":{");
    for (int i = 0; i < RULES_COMP_NCODES; i++) {
        if (i) r |= dg_buf_add(b, ",", 1);
        r |= dg_buf_json_str(b, rules_comp_code_name((rules_comp_code)i));
        r |= dg_buf_add(b, ":", 1);
        r |= put_u64(b, t->by_code[i]);
    }
    r |= dg_buf_str(b, "},\"total_shortfall\":{");
    for (size_t i = 0; i < t->nccy; i++) {
        if (i) r |= dg_buf_add(b, ",", 1);
        r |= dg_buf_json_str(b, t->ccy[i].ccy);
        r |= dg_buf_add(b, ":", 1);
        r |= put_amount(b, t->ccy[i].shortfall, t->ccy[i].exponent);
    }
    r |= dg_buf_add(b, "}", 1);
    return r ? -1 : 0;
}

void gate_comp_totals_free(gate_comp_totals *t)
{
    free(t->ccy);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- one line */

/* A raw value of one field: text (s, n), or a JSON item (string or number). */
typedef struct {
    const char *s;
    size_t n;
    const cJSON *json;
    const char *label; /* CSV header / JSON key as written, for messages */
} raw_val;

/* Where a line came from, for messages. */
typedef struct {
    int csv;     /* 1: CSV line number; 0: JSON */
    int multi;   /* JSON: from lines[] */
    size_t line; /* CSV line / JSON 1-based position */
} line_loc;

/* Text storage for one line's strings (reused line after line). */
typedef struct {
    char deal_id[GATE_COMP_FIELD_MAX + 1];
    char rep[GATE_COMP_FIELD_MAX + 1];
    char cloud[GATE_COMP_FIELD_MAX + 1];
    char plan[GATE_COMP_FIELD_MAX + 1];
    char last_ccy[4]; /* currency of the previous line, and its exponent (a cache) */
    int last_exp;
    struct rate_cache { /* the previous line's text and value of each rate field */
        char txt[24];
        size_t n;
        dg_rate v;
    } rates[3];
} line_text;

/* "line 7, column \"Rate\" (rate)" / "field lines[2].rate" / "field rate". */
static void field_where(const line_loc *L, gate_comp_field f, const char *label, char *buf,
                        size_t n)
{
    const char *name = field_names[f];
    if (label == NULL) label = name;
    if (L->csv) {
        if (strcasecmp(label, name) == 0)
            snprintf(buf, n, "line %zu, column \"%s\"", L->line, label);
        else
            snprintf(buf, n, "line %zu, column \"%s\" (%s)", L->line, label, name);
    } else if (L->multi) {
        snprintf(buf, n, "field lines[%zu].%s", L->line - 1, label);
    } else {
        snprintf(buf, n, "field %s", label);
    }
}

static void line_where(const line_loc *L, char *buf, size_t n)
{
    if (L->csv)
        snprintf(buf, n, "line %zu", L->line);
    else if (L->multi)
        snprintf(buf, n, "lines[%zu]", L->line - 1);
    else
        snprintf(buf, n, "line");
}

static dg_err field_err(const line_loc *L, gate_comp_field f, const raw_val *rv, dg_err code,
                        char *err, size_t errlen, const char *msg)
{
    char where[GATE_COMP_FIELD_MAX + 64];
    field_where(L, f, rv ? rv->label : NULL, where, sizeof where);
    return dg_errf(err, errlen, code, "%s: %s", where, msg);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1]))
        (*n)--;
}

/* The text of rv, trimmed. Returns 0 absent/empty, 1 present, -1 not a string (JSON). */
static int raw_text(const raw_val *rv, const char **s, size_t *n)
{
    if (rv->json != NULL) {
        if (cJSON_IsNull(rv->json)) return 0;
        if (!cJSON_IsString(rv->json)) return -1;
        *s = rv->json->valuestring;
        *n = strlen(*s);
    } else if (rv->s != NULL) {
        *s = rv->s;
        *n = rv->n;
    } else {
        return 0;
    }
    trim(s, n);
    return *n > 0;
}

/* A printable excerpt of user text for messages (at most 40 bytes, controls as '?'). */
static void excerpt(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap && k < 40; i++)
        buf[k++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[k] = '\0';
    if (n > 40 && k + 4 < cap) memcpy(buf + k, "...", 4);
}

/* Copies a text field into dst (GATE_COMP_FIELD_MAX + 1 bytes). */
static dg_err text_field(const line_loc *L, gate_comp_field f, const raw_val *rv, int required,
                         char *dst, char *err, size_t errlen)
{
    const char *s = NULL;
    size_t n = 0;
    int k = raw_text(rv, &s, &n);
    dst[0] = '\0';
    if (k < 0) return field_err(L, f, rv, DG_EINVAL, err, errlen, "must be a string");
    if (k == 0) {
        if (required) return field_err(L, f, rv, DG_EINVAL, err, errlen, "required, empty");
        return DG_OK;
    }
    if (n > GATE_COMP_FIELD_MAX) {
        char m[64];
        snprintf(m, sizeof m, "longer than %d bytes", GATE_COMP_FIELD_MAX);
        return field_err(L, f, rv, DG_ETOOBIG, err, errlen, m);
    }
    if (memchr(s, '\0', n) != NULL)
        return field_err(L, f, rv, DG_EINVAL, err, errlen, "contains a NUL character");
    memcpy(dst, s, n);
    dst[n] = '\0';
    return DG_OK;
}

static dg_err amount_field(const line_loc *L, gate_comp_field f, const raw_val *rv, int exponent,
                           int required, int *has, int64_t *out, char *err, size_t errlen)
{
    char msg[160];
    const char *s = NULL;
    size_t n = 0;
    dg_err rc;

    *has = 0;
    int k = raw_text(rv, &s, &n);
    if (rv->json != NULL && (cJSON_IsNumber(rv->json) || k > 0)) {
        /* JSON: a decimal string or an exact number, read by the strict JSON layer. */
        char where[GATE_COMP_FIELD_MAX + 64];
        if (L->multi)
            snprintf(where, sizeof where, "lines[%zu].%s", L->line - 1, rv->label);
        else
            snprintf(where, sizeof where, "%s", rv->label);
        rc = gate_json_amount(rv->json, where, exponent, out, err, errlen);
        if (rc != DG_OK) return rc;
        *has = 1;
        return DG_OK;
    }
    if (k < 0) return field_err(L, f, rv, DG_EINVAL, err, errlen, "must be a string or number");
    if (k == 0) {
        if (required) return field_err(L, f, rv, DG_EINVAL, err, errlen, "required, empty");
        return DG_OK;
    }
    rc = dg_amount_parse(s, n, exponent, L->csv ? DG_AMOUNT_THOUSANDS : 0, out, msg, sizeof msg);
    if (rc != DG_OK) {
        char full[256], ex[48];
        excerpt(s, n, ex, sizeof ex);
        snprintf(full, sizeof full, "\"%s\": %s", ex, msg);
        return field_err(L, f, rv, rc == DG_EOVERFLOW ? DG_EOVERFLOW : DG_EINVAL, err, errlen,
                         full);
    }
    *has = 1;
    return DG_OK;
}

/* A rate given as a JSON number: read through its shortest decimal form (exact), with the
 * same bare-number rule as text ("10" is bare; 0.1 is a fraction). */
static dg_err rate_from_number(double x, dg_rate_bare bare, dg_rate *out, char *msg, size_t n)
{
    int64_t v = 0;
    dg_err rc = dg_amount_from_double(x, 9, &v, msg, n);
    if (rc != DG_OK) return dg_errf(msg, n, DG_EINVAL, "not an exact rate: write it as a string");
    if (v < 0) return dg_errf(msg, n, DG_ERANGE, "negative rate");
    if (v != 0 && v % DG_RATE_SCALE == 0) {
        if (bare == DG_RATE_BARE_ERROR)
            return dg_errf(msg, n, DG_EINVAL,
                           "a bare %lld is ambiguous: write \"%lld%%\" or a fraction like 0.10, "
                           "or set [comp] rate_format",
                           (long long)(v / DG_RATE_SCALE), (long long)(v / DG_RATE_SCALE));
        if (bare == DG_RATE_BARE_PERCENT) v /= 100;
    }
    if (v > 10 * DG_RATE_SCALE) return dg_errf(msg, n, DG_ERANGE, "rate above 1000%%");
    *out = v;
    return DG_OK;
}

static dg_err rate_field(const rules_comp_ctx *ctx, const line_loc *L, gate_comp_field f,
                         const raw_val *rv, struct rate_cache *rc_, int *has, dg_rate *out,
                         char *err, size_t errlen)
{
    char msg[192];
    const char *s = NULL;
    size_t n = 0;
    dg_err rc;

    *has = 0;
    if (rv->json != NULL && cJSON_IsNumber(rv->json)) {
        rc = rate_from_number(rv->json->valuedouble, ctx->rate_format, out, msg, sizeof msg);
        if (rc != DG_OK) return field_err(L, f, rv, DG_EINVAL, err, errlen, msg);
        *has = 1;
        return DG_OK;
    }
    int k = raw_text(rv, &s, &n);
    if (k < 0) return field_err(L, f, rv, DG_EINVAL, err, errlen, "must be a string or number");
    if (k == 0) return DG_OK;
    if (n == rc_->n && memcmp(s, rc_->txt, n) == 0) { /* the same text as the last line */
        *out = rc_->v;
        *has = 1;
        return DG_OK;
    }
    rc = dg_rate_parse(s, n, ctx->rate_format, out, msg, sizeof msg);
    if (rc == DG_OK && n < sizeof rc_->txt) {
        memcpy(rc_->txt, s, n);
        rc_->n = n;
        rc_->v = *out;
    }
    if (rc != DG_OK) {
        char full[256], ex[48];
        excerpt(s, n, ex, sizeof ex);
        snprintf(full, sizeof full, "\"%s\": %s", ex, msg);
        return field_err(L, f, rv, DG_EINVAL, err, errlen, full);
    }
    *has = 1;
    return DG_OK;
}

/* Turns the raw values of one line into *it and checks it. */
static dg_err build_item(const rules_comp_ctx *ctx, const raw_val *raw, const line_loc *L,
                         line_text *txt, gate_comp_item *it, char *err, size_t errlen)
{
    const char *s = NULL;
    size_t n = 0;
    int has;
    dg_err rc;

    memset(&it->in, 0, sizeof it->in);
    it->line = L->line;

    if ((rc = text_field(L, GATE_COMP_DEAL_ID, &raw[GATE_COMP_DEAL_ID], 1, txt->deal_id, err,
                         errlen)) != DG_OK ||
        (rc = text_field(L, GATE_COMP_REP, &raw[GATE_COMP_REP], 0, txt->rep, err, errlen)) !=
            DG_OK ||
        (rc = text_field(L, GATE_COMP_CLOUD, &raw[GATE_COMP_CLOUD], 0, txt->cloud, err, errlen)) !=
            DG_OK ||
        (rc = text_field(L, GATE_COMP_PLAN, &raw[GATE_COMP_PLAN], 0, txt->plan, err, errlen)) !=
            DG_OK)
        return rc;
    it->deal_id = txt->deal_id;
    it->rep = txt->rep;
    it->cloud = txt->cloud;
    it->plan = txt->plan;

    /* channel */
    const raw_val *rv = &raw[GATE_COMP_CHANNEL];
    int k = raw_text(rv, &s, &n);
    if (k < 0)
        return field_err(L, GATE_COMP_CHANNEL, rv, DG_EINVAL, err, errlen, "must be a string");
    if (k == 0)
        return field_err(L, GATE_COMP_CHANNEL, rv, DG_EINVAL, err, errlen,
                         "required, empty (direct or marketplace)");
    if (n == 6 && strncasecmp(s, "direct", 6) == 0) {
        it->channel = "direct";
    } else if (n == 11 && strncasecmp(s, "marketplace", 11) == 0) {
        it->channel = "marketplace";
        it->in.marketplace = 1;
    } else {
        char m[96], ex[48];
        excerpt(s, n, ex, sizeof ex);
        snprintf(m, sizeof m, "\"%s\" is neither direct nor marketplace", ex);
        return field_err(L, GATE_COMP_CHANNEL, rv, DG_EINVAL, err, errlen, m);
    }

    /* currency (before amounts: it gives their exponent) */
    rv = &raw[GATE_COMP_CURRENCY];
    k = raw_text(rv, &s, &n);
    if (k < 0)
        return field_err(L, GATE_COMP_CURRENCY, rv, DG_EINVAL, err, errlen, "must be a string");
    if (k == 0) {
        const char *d = ctx->cfg->server.currency[0] ? ctx->cfg->server.currency : "USD";
        memcpy(it->currency, d, 3);
        it->currency[3] = '\0';
    } else {
        int ok = n == 3;
        for (size_t i = 0; ok && i < 3; i++) {
            char c = s[i];
            if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            it->currency[i] = c;
        }
        if (ok) it->currency[3] = '\0';
        if (!ok || !dg_ccy_valid(it->currency)) {
            char m[96], ex[48];
            excerpt(s, n, ex, sizeof ex);
            snprintf(m, sizeof m, "\"%s\" is not an ISO 4217 code", ex);
            return field_err(L, GATE_COMP_CURRENCY, rv, DG_EINVAL, err, errlen, m);
        }
    }
    if (memcmp(txt->last_ccy, it->currency, 4) != 0) {
        memcpy(txt->last_ccy, it->currency, 4);
        txt->last_exp = dg_ccy_exponent(it->currency);
    }
    it->in.exponent = txt->last_exp;
    if (it->in.exponent < 0 || it->in.exponent > RULES_COMP_MAX_EXPONENT)
        return field_err(L, GATE_COMP_CURRENCY, rv, DG_EINVAL, err, errlen,
                         "currency exponent not supported");

    if ((rc = amount_field(L, GATE_COMP_ACV, &raw[GATE_COMP_ACV], it->in.exponent, 1, &has,
                           &it->in.acv, err, errlen)) != DG_OK ||
        (rc = amount_field(L, GATE_COMP_COMMISSION, &raw[GATE_COMP_COMMISSION], it->in.exponent, 1,
                           &has, &it->in.commission, err, errlen)) != DG_OK ||
        (rc = amount_field(L, GATE_COMP_COMMISSION_BASE, &raw[GATE_COMP_COMMISSION_BASE],
                           it->in.exponent, 0, &it->in.has_base, &it->in.base, err, errlen)) !=
            DG_OK)
        return rc;

    if ((rc = rate_field(ctx, L, GATE_COMP_RATE, &raw[GATE_COMP_RATE], &txt->rates[0],
                         &it->in.has_rate, &it->in.rate, err, errlen)) != DG_OK ||
        (rc = rate_field(ctx, L, GATE_COMP_DIRECT_RATE, &raw[GATE_COMP_DIRECT_RATE], &txt->rates[1],
                         &it->in.has_direct_rate, &it->in.direct_rate, err, errlen)) != DG_OK ||
        (rc = rate_field(ctx, L, GATE_COMP_SPLIT, &raw[GATE_COMP_SPLIT], &txt->rates[2], &has,
                         &it->in.split, err, errlen)) != DG_OK)
        return rc;
    if (!has) it->in.split = DG_RATE_SCALE;
    if (it->in.split > DG_RATE_SCALE)
        return field_err(L, GATE_COMP_SPLIT, &raw[GATE_COMP_SPLIT], DG_EINVAL, err, errlen,
                         "above 100%");
    it->in.cloud = txt->cloud;
    it->in.plan = txt->plan;

    char msg[256];
    rc = rules_comp_check(ctx, &it->in, &it->v, msg, sizeof msg);
    if (rc != DG_OK) {
        char where[64];
        line_where(L, where, sizeof where);
        return dg_errf(err, errlen, rc == DG_EOVERFLOW ? DG_EOVERFLOW : DG_EINVAL, "%s: %s", where,
                       msg);
    }
    return DG_OK;
}

/* The field a header / JSON key names (ignoring case and surrounding blanks), or -1. */
static int match_field(const rules_comp_ctx *ctx, const char *name, size_t n)
{
    const cfg_comp *cc = &ctx->cfg->comp;
    trim(&name, &n);
    for (size_t i = 0; i < cc->ncolumns; i++) {
        const char *h = cc->columns[i].cloud;
        if (h != NULL && strlen(h) == n && strncasecmp(h, name, n) == 0) {
            for (int f = 0; f < GATE_COMP_NFIELDS; f++)
                if (cc->columns[i].label && strcasecmp(cc->columns[i].label, field_names[f]) == 0)
                    return f;
        }
    }
    for (int f = 0; f < GATE_COMP_NFIELDS; f++)
        if (strlen(field_names[f]) == n && strncasecmp(field_names[f], name, n) == 0) return f;
    return -1;
}

/* "acv (or \"Contract Value\")" for a missing-column message. */
static void field_names_for(const rules_comp_ctx *ctx, gate_comp_field f, char *buf, size_t n)
{
    const cfg_comp *cc = &ctx->cfg->comp;
    for (size_t i = 0; i < cc->ncolumns; i++) {
        if (cc->columns[i].label && strcasecmp(cc->columns[i].label, field_names[f]) == 0 &&
            cc->columns[i].cloud) {
            snprintf(buf, n, "\"%s\" (%s)", cc->columns[i].cloud, field_names[f]);
            return;
        }
    }
    snprintf(buf, n, "%s", field_names[f]);
}

/* ---------------------------------------------------------------- CSV stream */

struct gate_comp_scratch {
    line_text txt;
    gate_comp_item item;
};

#define ROW_NOT_BEGUN 0 /* libcsv's pstate between records (csv_parser is public) */

struct gate_comp_csv {
    struct csv_parser p;
    const rules_comp_ctx *ctx;
    gate_comp_line_fn fn;
    void *arg;
    size_t line; /* physical line being fed, 1-based */
    int at_line_start;
    size_t rec_line; /* line the current record starts on */
    unsigned char bom[3];
    size_t nbom; /* bytes held while deciding about a BOM */
    int bom_done;
    int header_done;
    size_t ncols;
    char **headers;         /* ncols header texts (owned) */
    signed char *col_field; /* per column: field or -1 */
    size_t cap_cols;
    size_t col;   /* column of the next field */
    int nonempty; /* the record has a non-empty field */
    char val[GATE_COMP_NFIELDS][GATE_COMP_FIELD_MAX + 1];
    size_t vlen[GATE_COMP_NFIELDS];
    unsigned has;                  /* bit per field with a value in this record */
    int col_of[GATE_COMP_NFIELDS]; /* column of each field, -1 if none */
    gate_comp_record_fn rfn;       /* records mode: cut records, no checks */
    struct gate_comp_scratch sc;
    dg_err rc; /* first error; the stream is dead once set */
    char err[512];
};

/* libcsv grows its field buffer through this: refusing past the cap bounds memory. */
static void *csv_bounded_realloc(void *p, size_t n)
{
    if (n > GATE_COMP_CSV_ENTRY_MAX + 64) return NULL;
    return realloc(p, n);
}

dg_err gate_comp_csv_new(const rules_comp_ctx *ctx, gate_comp_line_fn fn, void *arg,
                         gate_comp_csv **out)
{
    gate_comp_csv *s = calloc(1, sizeof *s);
    *out = NULL;
    if (s == NULL) return DG_ENOMEM;
    if (csv_init(&s->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(s);
        return DG_ENOMEM;
    }
    csv_set_realloc_func(&s->p, csv_bounded_realloc);
    s->ctx = ctx;
    s->fn = fn;
    s->arg = arg;
    s->at_line_start = 1;
    for (int f = 0; f < GATE_COMP_NFIELDS; f++)
        s->col_of[f] = -1;
    *out = s;
    return DG_OK;
}

dg_err gate_comp_csv_new_records(const rules_comp_ctx *ctx, gate_comp_record_fn fn, void *arg,
                                 gate_comp_csv **out)
{
    dg_err rc = gate_comp_csv_new(ctx, NULL, arg, out);
    if (rc == DG_OK) (*out)->rfn = fn;
    return rc;
}

void gate_comp_csv_free(gate_comp_csv *s)
{
    if (s == NULL) return;
    csv_free(&s->p);
    for (size_t i = 0; i < s->ncols; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->col_field);
    free(s);
}

size_t gate_comp_csv_line(const gate_comp_csv *s)
{
    return s->line;
}

static void csv_fail(gate_comp_csv *s, dg_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void csv_fail(gate_comp_csv *s, dg_err rc, const char *fmt, ...)
{
    va_list ap;
    if (s->rc != DG_OK) return;
    s->rc = rc;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static void header_cell(gate_comp_csv *s, const char *data, size_t len)
{
    if (s->ncols == GATE_COMP_MAX_COLUMNS) {
        csv_fail(s, DG_ETOOBIG, "line %zu: more than %d columns in the header", s->rec_line,
                 GATE_COMP_MAX_COLUMNS);
        return;
    }
    if (len > GATE_COMP_FIELD_MAX) {
        csv_fail(s, DG_ETOOBIG, "line %zu, column %zu: header longer than %d bytes", s->rec_line,
                 s->ncols + 1, GATE_COMP_FIELD_MAX);
        return;
    }
    if (s->ncols == s->cap_cols) {
        size_t cap = s->cap_cols ? s->cap_cols * 2 : 16;
        char **h = realloc(s->headers, cap * sizeof *h);
        if (h == NULL) goto nomem;
        s->headers = h;
        signed char *cf = realloc(s->col_field, cap);
        if (cf == NULL) goto nomem;
        s->col_field = cf;
        s->cap_cols = cap;
    }
    char *h = malloc(len + 1);
    if (h == NULL) goto nomem;
    memcpy(h, data, len);
    h[len] = '\0';
    /* a NUL inside a header would cut it: show it as '?' */
    for (size_t i = 0; i < len; i++)
        if (h[i] == '\0') h[i] = '?';
    s->headers[s->ncols] = h;
    s->col_field[s->ncols] = -1;
    s->ncols++;
    return;
nomem:
    csv_fail(s, DG_ENOMEM, "out of memory");
}

static void header_done(gate_comp_csv *s)
{
    static const gate_comp_field required[] = {GATE_COMP_DEAL_ID, GATE_COMP_CHANNEL, GATE_COMP_ACV,
                                               GATE_COMP_COMMISSION};
    for (size_t c = 0; c < s->ncols; c++) {
        int f = match_field(s->ctx, s->headers[c], strlen(s->headers[c]));
        if (f < 0) continue;
        if (s->col_of[f] >= 0) {
            csv_fail(s, DG_EINVAL,
                     "line %zu: columns %d (\"%s\") and %zu (\"%s\") both name field %s",
                     s->rec_line, s->col_of[f] + 1, s->headers[s->col_of[f]], c + 1, s->headers[c],
                     field_names[f]);
            return;
        }
        s->col_of[f] = (int)c;
        s->col_field[c] = (signed char)f;
    }
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (s->col_of[required[i]] < 0) {
            char names[GATE_COMP_FIELD_MAX + 32];
            field_names_for(s->ctx, required[i], names, sizeof names);
            csv_fail(s, DG_EINVAL, "line %zu: header has no column %s (required)", s->rec_line,
                     names);
            return;
        }
    }
    s->header_done = 1;
}

static void cb_field(void *data, size_t len, void *vs)
{
    gate_comp_csv *s = vs;
    if (s->rc != DG_OK) return;
    if (!s->header_done) {
        header_cell(s, data, len);
        s->col++;
        return;
    }
    if (s->col >= s->ncols) {
        if (len > 0)
            csv_fail(s, DG_EINVAL, "line %zu, column %zu: more fields than the header's %zu",
                     s->rec_line, s->col + 1, s->ncols);
        s->col++;
        return;
    }
    int f = s->col_field[s->col];
    if (len > 0) s->nonempty = 1;
    if (f >= 0) {
        if (len > GATE_COMP_FIELD_MAX) {
            csv_fail(s, DG_ETOOBIG, "line %zu, column \"%s\": longer than %d bytes", s->rec_line,
                     s->headers[s->col], GATE_COMP_FIELD_MAX);
            return;
        }
        memcpy(s->val[f], data, len);
        s->val[f][len] = '\0';
        s->vlen[f] = len;
        s->has |= 1u << f;
    }
    s->col++;
}

/* The mapped cells of the record just completed, borrowed from the stream. */
static void current_record(const gate_comp_csv *s, gate_comp_record *r)
{
    r->line = s->rec_line;
    r->has = s->has;
    for (int f = 0; f < GATE_COMP_NFIELDS; f++) {
        r->label[f] = s->col_of[f] >= 0 ? s->headers[s->col_of[f]] : NULL;
        r->val[f] = s->val[f];
        r->len[f] = s->vlen[f];
    }
}

dg_err gate_comp_scratch_new(gate_comp_scratch **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? DG_OK : DG_ENOMEM;
}

void gate_comp_scratch_free(gate_comp_scratch *sc)
{
    free(sc);
}

dg_err gate_comp_check_record(const rules_comp_ctx *ctx, gate_comp_scratch *sc,
                              const gate_comp_record *r, const gate_comp_item **it, char *err,
                              size_t errlen)
{
    raw_val raw[GATE_COMP_NFIELDS];
    line_loc L = {1, 0, r->line};
    for (int f = 0; f < GATE_COMP_NFIELDS; f++) {
        raw[f].json = NULL;
        raw[f].label = r->label[f];
        if (r->has & (1u << f)) {
            raw[f].s = r->val[f];
            raw[f].n = r->len[f];
        } else {
            raw[f].s = NULL;
            raw[f].n = 0;
        }
    }
    *it = &sc->item;
    return build_item(ctx, raw, &L, &sc->txt, &sc->item, err, errlen);
}

static void check_record(gate_comp_csv *s)
{
    gate_comp_record r;
    const gate_comp_item *it = NULL;
    char err[512];
    dg_err rc;

    current_record(s, &r);
    if (s->rfn != NULL) {
        rc = s->rfn(s->arg, &r, err, sizeof err);
    } else {
        rc = gate_comp_check_record(s->ctx, &s->sc, &r, &it, err, sizeof err);
        if (rc == DG_OK) rc = s->fn(s->arg, it, err, sizeof err);
    }
    if (rc != DG_OK) csv_fail(s, rc, "%s", err);
}

static void cb_record(int c, void *vs)
{
    gate_comp_csv *s = vs;
    (void)c;
    if (s->rc != DG_OK) return;
    if (!s->header_done)
        header_done(s);
    else if (s->nonempty)
        check_record(s); /* a record of empty cells only (",,,") is a blank line */
    s->col = 0;
    s->has = 0;
    s->nonempty = 0;
}

/* Feeds bytes that are past any BOM, one physical line per csv_parse call. */
static void feed_lines(gate_comp_csv *s, const char *data, size_t len)
{
    while (len > 0 && s->rc == DG_OK) {
        if (s->at_line_start) {
            s->line++;
            if (s->p.pstate == ROW_NOT_BEGUN) s->rec_line = s->line;
        }
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) + 1 : len;
        size_t done = csv_parse(&s->p, data, n, cb_field, cb_record, s);
        if (s->rc != DG_OK) return;
        if (done < n) {
            int e = csv_error(&s->p);
            if (e == CSV_EPARSE)
                csv_fail(s, DG_EPARSE,
                         "line %zu, column %zu: malformed CSV (a quote inside an unquoted field, "
                         "or text after a closing quote)",
                         s->line, s->col + 1);
            else if (e == CSV_ENOMEM || e == CSV_ETOOBIG)
                csv_fail(s, DG_ETOOBIG, "line %zu, column %zu: field longer than %u bytes", s->line,
                         s->col + 1, GATE_COMP_CSV_ENTRY_MAX);
            else
                csv_fail(s, DG_EPARSE, "line %zu: %s", s->line, csv_strerror(e));
            return;
        }
        s->at_line_start = nl != NULL;
        data += n;
        len -= n;
    }
}

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

dg_err gate_comp_csv_feed(gate_comp_csv *s, const char *data, size_t len, char *err, size_t errlen)
{
    if (s->rc != DG_OK) return dg_errf(err, errlen, s->rc, "%s", s->err);
    while (!s->bom_done && len > 0) {
        unsigned char c = (unsigned char)*data;
        if (c == utf8_bom[s->nbom]) {
            s->bom[s->nbom++] = c;
            data++;
            len--;
            if (s->nbom == 3) s->bom_done = 1; /* a whole BOM: dropped */
        } else {
            s->bom_done = 1; /* not a BOM: give back what was held */
            feed_lines(s, (const char *)s->bom, s->nbom);
        }
    }
    if (len > 0) feed_lines(s, data, len);
    if (s->rc != DG_OK) return dg_errf(err, errlen, s->rc, "%s", s->err);
    return DG_OK;
}

dg_err gate_comp_csv_finish(gate_comp_csv *s, char *err, size_t errlen)
{
    if (s->rc == DG_OK && !s->bom_done) {
        s->bom_done = 1;
        feed_lines(s, (const char *)s->bom, s->nbom);
    }
    if (s->rc == DG_OK && csv_fini(&s->p, cb_field, cb_record, s) != 0 && s->rc == DG_OK)
        csv_fail(s, DG_EPARSE,
                 "line %zu: unterminated quoted field (the record starts on line %zu)", s->line,
                 s->rec_line);
    if (s->rc == DG_OK && !s->header_done) {
        if (s->ncols == 0)
            csv_fail(s, DG_EINVAL, "line 1: no header row (the input is empty)");
        else
            header_done(s);
    }
    if (s->rc != DG_OK) return dg_errf(err, errlen, s->rc, "%s", s->err);
    return DG_OK;
}

/* ---------------------------------------------------------------- JSON lines */

static dg_err json_line(const rules_comp_ctx *ctx, const cJSON *obj, size_t pos, int multi,
                        line_text *txt, gate_comp_item *it, char *err, size_t errlen)
{
    raw_val raw[GATE_COMP_NFIELDS];
    line_loc L = {0, multi, pos};

    memset(raw, 0, sizeof raw);
    if (!cJSON_IsObject(obj))
        return dg_errf(err, errlen, DG_EINVAL, "field lines[%zu]: must be an object", pos - 1);
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        int f = match_field(ctx, m->string, strlen(m->string));
        if (f < 0) continue; /* other members (a CRM's own) are ignored */
        if (raw[f].json != NULL) {
            char where[64];
            line_where(&L, where, sizeof where);
            return dg_errf(err, errlen, DG_EINVAL,
                           "%s: members \"%s\" and \"%s\" both name field %s", where, raw[f].label,
                           m->string, field_names[f]);
        }
        raw[f].json = m;
        raw[f].label = m->string;
    }
    return build_item(ctx, raw, &L, txt, it, err, errlen);
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    size_t deal_id, rep, channel, cloud, currency, codes, shortfall, result;
    int violation;
} rec_off;

#define NO_OFF ((size_t)-1)

typedef struct {
    dg_buf results; /* members of results[] */
    dg_buf one;     /* one result object */
    dg_buf arena;   /* strings of the log rows */
    gate_comp_totals totals;
    int all;
    size_t nres;
    rec_off *offs;
    size_t noffs, capoffs;
    int too_big;
} collect;

static size_t arena_str(collect *c, const char *s, size_t n)
{
    size_t off = c->arena.len;
    if (s == NULL || (n == 0 && s[0] == '\0')) return NO_OFF;
    if (dg_buf_add(&c->arena, s, n) || dg_buf_add(&c->arena, "", 1)) return NO_OFF;
    return off;
}

static dg_err collect_line(void *arg, const gate_comp_item *it, char *err, size_t errlen)
{
    collect *c = arg;
    char amt[DG_MONEY_STRLEN];
    dg_err rc = gate_comp_totals_add(&c->totals, it, err, errlen);
    if (rc != DG_OK) return rc;

    c->one.len = 0;
    if (gate_comp_result_json(&c->one, it)) goto too_big;
    if (c->all || it->v.nreasons > 0) {
        if (c->nres && dg_buf_add(&c->results, ",", 1)) goto too_big;
        if (dg_buf_add(&c->results, c->one.p, c->one.len)) goto too_big;
        c->nres++;
    }

    if (c->noffs == c->capoffs) {
        size_t cap = c->capoffs ? c->capoffs * 2 : 64;
        rec_off *p = realloc(c->offs, cap * sizeof *p);
        if (p == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        c->offs = p;
        c->capoffs = cap;
    }
    rec_off *o = &c->offs[c->noffs++];
    dg_buf codes;
    dg_buf_init(&codes, 1024);
    dg_buf_add(&codes, "[", 1);
    for (size_t i = 0; i < it->v.nreasons; i++) {
        if (i) dg_buf_add(&codes, ",", 1);
        dg_buf_json_str(&codes, rules_comp_code_name(it->v.reasons[i].code));
    }
    dg_buf_add(&codes, "]", 1);
    size_t an = dg_amount_format(it->v.shortfall, it->in.exponent, amt, sizeof amt);
    o->violation = it->v.violation;
    o->deal_id = arena_str(c, it->deal_id, strlen(it->deal_id));
    o->rep = arena_str(c, it->rep, strlen(it->rep));
    o->channel = arena_str(c, it->channel, strlen(it->channel));
    o->cloud = arena_str(c, it->cloud, strlen(it->cloud));
    o->currency = arena_str(c, it->currency, 3);
    o->codes = dg_buf_failed(&codes) ? NO_OFF : arena_str(c, codes.p, codes.len);
    o->shortfall = arena_str(c, amt, an);
    o->result = arena_str(c, c->one.p, c->one.len);
    dg_buf_free(&codes);
    if (dg_buf_failed(&c->arena)) goto too_big;
    return DG_OK;
too_big:
    c->too_big = 1;
    return dg_errf(err, errlen, DG_ETOOBIG,
                   "the response would exceed %u bytes: check this statement with dealgate "
                   "comp-check",
                   GATE_COMP_MAX_RESPONSE);
}

static int media_type_is(const char *ct, const char *mt)
{
    size_t n;
    if (ct == NULL) return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == strlen(mt) && strncasecmp(ct, mt, n) == 0;
}

/* Fills r with an error answer. Returns DG_OK, or DG_ENOMEM. */
static dg_err result_error(gate_comp_result *r, int status, const char *code, const char *msg)
{
    dg_buf b;
    dg_buf_init(&b, 4096);
    r->status = status;
    r->err_code = code;
    dg_buf_str(&b, "{\"error\":{\"code\":");
    dg_buf_json_str(&b, code);
    dg_buf_str(&b, ",\"message\":");
    dg_buf_json_str(&b, msg);
    dg_buf_add(&b, "}}", 3); /* NUL included */
    if (dg_buf_failed(&b)) {
        dg_buf_free(&b);
        return DG_ENOMEM;
    }
    r->body = b.p;
    r->body_len = b.len - 1;
    return DG_OK;
}

static dg_err run_json(const rules_comp_ctx *ctx, const char *body, size_t len, collect *c,
                       int *status, const char **code, char *err, size_t errlen)
{
    cJSON *root = NULL;
    line_text *txt = NULL;
    gate_comp_item it;
    dg_err rc = gate_json_parse(body, len, &root, err, errlen);

    *status = 422;
    *code = "invalid_field";
    if (rc == DG_EPARSE) {
        *status = 400;
        *code = "invalid_json";
        return rc;
    }
    if (rc != DG_OK) return rc;
    rc = DG_ENOMEM;
    txt = calloc(1, sizeof *txt);
    if (txt == NULL) goto done;
    if (!cJSON_IsObject(root)) {
        rc = dg_errf(err, errlen, DG_EINVAL,
                     "the body must be an object: one line, or {\"lines\": [...]}");
        goto done;
    }
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(root, "all");
    if (all != NULL && !cJSON_IsNull(all)) {
        if (!cJSON_IsBool(all)) {
            rc = dg_errf(err, errlen, DG_EINVAL, "field all must be true or false");
            goto done;
        }
        if (cJSON_IsTrue(all)) c->all = 1;
    }
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(root, "lines");
    if (lines != NULL) {
        size_t pos = 0;
        if (!cJSON_IsArray(lines)) {
            rc = dg_errf(err, errlen, DG_EINVAL, "field lines must be an array of line objects");
            goto done;
        }
        for (const cJSON *l = lines->child; l != NULL; l = l->next) {
            rc = json_line(ctx, l, ++pos, 1, txt, &it, err, errlen);
            if (rc == DG_OK) rc = collect_line(c, &it, err, errlen);
            if (rc != DG_OK) goto done;
        }
    } else {
        rc = json_line(ctx, root, 1, 0, txt, &it, err, errlen);
        if (rc == DG_OK) rc = collect_line(c, &it, err, errlen);
        if (rc != DG_OK) goto done;
    }
    rc = DG_OK;
done:
    free(txt);
    cJSON_Delete(root);
    return rc;
}

static dg_err run_csv(const rules_comp_ctx *ctx, const char *body, size_t len, collect *c,
                      int *status, const char **code, char *err, size_t errlen)
{
    gate_comp_csv *s = NULL;
    dg_err rc = gate_comp_csv_new(ctx, collect_line, c, &s);
    if (rc != DG_OK) return dg_errf(err, errlen, rc, "out of memory");
    rc = gate_comp_csv_feed(s, body, len, err, errlen);
    if (rc == DG_OK) rc = gate_comp_csv_finish(s, err, errlen);
    gate_comp_csv_free(s);
    *status = rc == DG_EPARSE ? 400 : 422;
    *code = rc == DG_EPARSE ? "invalid_csv" : "invalid_field";
    return rc;
}

/* Moves the collected results into r (status 200). Returns DG_OK or DG_ENOMEM. */
static dg_err result_ok(gate_comp_result *r, collect *c)
{
    dg_buf b;
    dg_buf_init(&b, (size_t)GATE_COMP_MAX_RESPONSE + 4096);
    dg_buf_add(&b, "{", 1);
    gate_comp_totals_json(&b, &c->totals);
    dg_buf_str(&b, ",\"results\":[");
    if (c->results.len) dg_buf_add(&b, c->results.p, c->results.len);
    dg_buf_add(&b, "]}", 3);
    if (dg_buf_failed(&b)) {
        dg_buf_free(&b);
        return DG_ENOMEM;
    }
    r->status = 200;
    r->body = b.p;
    r->body_len = b.len - 1;
    r->checked = c->totals.checked;
    r->violations = c->totals.violations;
    if (c->noffs > 0) {
        r->lines = calloc(c->noffs, sizeof *r->lines);
        if (r->lines == NULL) return DG_ENOMEM;
    }
    r->priv_arena = c->arena;
    dg_buf_init(&c->arena, 0);
    const char *base = r->priv_arena.p;
#define AT(off) ((off) == NO_OFF ? NULL : base + (off))
    for (size_t i = 0; i < c->noffs; i++) {
        const rec_off *o = &c->offs[i];
        dlog_comp_line *l = &r->lines[i];
        l->deal_id = AT(o->deal_id);
        l->rep = AT(o->rep);
        l->channel = AT(o->channel);
        l->cloud = AT(o->cloud);
        l->currency = AT(o->currency);
        l->violation = o->violation;
        l->codes_json = AT(o->codes);
        l->shortfall = AT(o->shortfall);
        l->result_json = AT(o->result);
    }
#undef AT
    r->nlines = c->noffs;
    return DG_OK;
}

dg_err gate_comp_check_body(const struct cfg *cf, const char *content_type, const char *body,
                            size_t len, int all, gate_comp_result **out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    rules_comp_ctx ctx;
    collect c;
    gate_comp_result *r = NULL;
    int status = 422;
    const char *code = "invalid_field";
    char msg[512];

    *out = NULL;
    memset(&c, 0, sizeof c);
    dg_buf_init(&c.results, GATE_COMP_MAX_RESPONSE);
    dg_buf_init(&c.one, GATE_COMP_MAX_RESPONSE);
    dg_buf_init(&c.arena, GATE_COMP_MAX_RESPONSE);
    gate_comp_totals_init(&c.totals);
    c.all = all;

    rc = rules_comp_ctx_init(&ctx, cf, err, errlen);
    if (rc != DG_OK) goto done;
    rc = DG_ENOMEM;
    r = calloc(1, sizeof *r);
    if (r == NULL) goto done;

    dg_err in;
    msg[0] = '\0';
    if (media_type_is(content_type, "application/json")) {
        in = run_json(&ctx, body, len, &c, &status, &code, msg, sizeof msg);
    } else if (media_type_is(content_type, "text/csv")) {
        in = run_csv(&ctx, body, len, &c, &status, &code, msg, sizeof msg);
    } else {
        in = dg_errf(msg, sizeof msg, DG_EINVAL,
                     "Content-Type must be application/json or text/csv");
        status = 415;
        code = "unsupported_media_type";
    }
    if (in == DG_ENOMEM && !c.too_big) goto done;
    if (c.too_big) {
        status = 413;
        code = "too_large";
    }
    if (in != DG_OK) {
        dg_errf(err, errlen, in, "%s", msg);
        rc = result_error(r, status, code, msg);
    } else {
        rc = result_ok(r, &c);
    }
    if (rc != DG_OK) goto done;
    *out = r;
    r = NULL;
    rc = DG_OK;
done:
    if (rc == DG_ENOMEM) dg_errf(err, errlen, rc, "out of memory");
    gate_comp_result_free(r);
    dg_buf_free(&c.results);
    dg_buf_free(&c.one);
    dg_buf_free(&c.arena);
    gate_comp_totals_free(&c.totals);
    free(c.offs);
    return rc;
}

void gate_comp_result_free(gate_comp_result *r)
{
    if (r == NULL) return;
    free(r->body);
    free(r->lines);
    dg_buf_free(&r->priv_arena);
    free(r);
}
