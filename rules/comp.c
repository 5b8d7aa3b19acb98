/* comp.c — the commission-neutrality verdict for one line (see comp.h).
 *
 * Every amount is an int64 of the line's minor units and every product goes through
 * dg_amount_mul_rates (128-bit, one rounding), so nothing here can wrap or drift: an
 * overflow is an error for the line. Comparisons "beyond tolerance" are strict: a
 * difference equal to the tolerance is clean. Messages are built only for lines that are
 * not clean, so a clean line costs a handful of integer operations.
 */
#include "rules/comp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const code_names[RULES_COMP_NCODES] = {
    "fee_deducted_from_base", "rate_below_direct",  "commission_below_direct_equivalent",
    "calculation_mismatch",   "marketplace_uplift",
};

const char *rules_comp_code_name(rules_comp_code c)
{
    return (unsigned)c < RULES_COMP_NCODES ? code_names[c] : "unknown";
}

dg_err rules_comp_ctx_init(rules_comp_ctx *ctx, const struct cfg *c, char *err, size_t errlen)
{
    const char *tol = c->comp.has_tolerance && c->comp.tolerance ? c->comp.tolerance : "0.01";
    char msg[160];

    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = c;
    ctx->rounding = c->comp.rounding;
    ctx->allow_uplift = c->comp.allow_uplift;
    ctx->rate_format = c->comp.rate_format;
    for (int e = 0; e <= RULES_COMP_MAX_EXPONENT; e++) {
        int64_t v = 0;
        dg_err rc = dg_amount_parse(tol, strlen(tol), e, 0, &v, msg, sizeof msg);
        if (rc == DG_ERANGE) {
            /* Finer than this currency's minor unit: cut to it (read at 10^-9, divide). */
            int64_t fine = 0;
            rc = dg_amount_parse(tol, strlen(tol), RULES_COMP_MAX_EXPONENT, 0, &fine, msg,
                                 sizeof msg);
            if (rc == DG_OK) {
                for (int k = e; k < RULES_COMP_MAX_EXPONENT; k++)
                    fine /= 10;
                v = fine;
            }
        }
        if (rc == DG_EOVERFLOW) {
            v = INT64_MAX; /* a tolerance beyond any amount of this exponent */
            rc = DG_OK;
        }
        if (rc != DG_OK)
            return dg_errf(err, errlen, DG_ECONFIG, "[comp] tolerance %s: %s", tol, msg);
        if (v < 0)
            return dg_errf(err, errlen, DG_ECONFIG, "[comp] tolerance %s: must not be negative",
                           tol);
        ctx->tolerance[e] = v;
    }
    return DG_OK;
}

/* The rate of label in a (cfg_map, rates) table, matched ignoring case; 0 if absent. */
static int find_rate(const cfg_map *m, const dg_rate *rates, size_t n, const char *label,
                     dg_rate *out, const char **name)
{
    if (label == NULL || label[0] == '\0') return 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].label != NULL && strcasecmp(m[i].label, label) == 0) {
            *out = rates[i];
            if (name) *name = m[i].label;
            return 1;
        }
    }
    return 0;
}

/* "AWS" for aws/gcp (short keys read as acronyms), "Azure" for azure. */
static void cloud_display(const char *cloud, char *buf, size_t n)
{
    size_t len = strlen(cloud);
    size_t i = 0;
    for (; i + 1 < n && i < len; i++) {
        char ch = cloud[i];
        if ((len <= 3 || i == 0) && ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        if ((unsigned char)ch < 0x20 || ch == 0x7f) ch = '?'; /* messages carry no controls */
        buf[i] = ch;
    }
    if (n > 0) buf[i] = '\0';
}

static void add_reason(rules_comp_verdict *v, rules_comp_code code, int violation, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void add_reason(rules_comp_verdict *v, rules_comp_code code, int violation, const char *fmt,
                       ...)
{
    rules_comp_reason *r = &v->reasons[v->nreasons++];
    va_list ap;

    r->code = code;
    r->violation = violation;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    v->codes |= 1u << code;
    if (violation)
        v->violation = 1;
    else
        v->warning = 1;
}

/* Formatting helpers for messages (grouped amounts, percents). */
typedef struct {
    char s[DG_MONEY_STRLEN];
} amt_txt;

static amt_txt amt(int64_t minor, int exponent)
{
    amt_txt t;
    dg_amount_format_grouped(minor, exponent, t.s, sizeof t.s);
    return t;
}

typedef struct {
    char s[32];
} rate_txt;

static rate_txt pct(dg_rate r)
{
    rate_txt t;
    dg_rate_format(r, t.s, sizeof t.s);
    return t;
}

/* " x 50% split" when the split is not 100%, else "". */
static void split_txt(dg_rate split, char *buf, size_t n)
{
    if (split == DG_RATE_SCALE) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, n, " x %s split", pct(split).s);
}

/* |a - b| <= tol, without overflow. */
static int within(int64_t a, int64_t b, int64_t tol)
{
    int64_t d;
    if (dg_amount_sub(a, b, &d) != DG_OK) return 0;
    return d <= tol && d >= -tol;
}

static void source_txt(const rules_comp_verdict *v, char *buf, size_t n)
{
    switch (v->dr_source) {
    case RULES_COMP_DR_LINE:
        snprintf(buf, n, "direct_rate of the line");
        break;
    case RULES_COMP_DR_PLAN:
        snprintf(buf, n, "plan.%s", v->dr_plan);
        break;
    case RULES_COMP_DR_DEFAULT:
        snprintf(buf, n, "plan.default");
        break;
    default:
        snprintf(buf, n, "none");
        break;
    }
}

static dg_err overflow(char *err, size_t errlen, const char *what)
{
    return dg_errf(err, errlen, DG_EOVERFLOW, "%s: amount too large to compute", what);
}

/* Texts of a marketplace line's messages, made only once a message is needed (most lines
 * are clean and need none). */
typedef struct {
    int ready;
    char cloud[32], split[48], src[CFG_NAME_MAX + 32];
} mp_text;

static mp_text *texts(mp_text *t, const rules_comp_line *l, const rules_comp_verdict *v,
                      int has_fee)
{
    if (!t->ready) {
        t->cloud[0] = '\0';
        if (has_fee) cloud_display(l->cloud, t->cloud, sizeof t->cloud);
        split_txt(l->split, t->split, sizeof t->split);
        source_txt(v, t->src, sizeof t->src);
        t->ready = 1;
    }
    return t;
}

#define TXT texts(&t, l, v, has_fee)

/* The marketplace checks: fee in the base, rate, neutral commission, uplift. */
static dg_err check_marketplace(const rules_comp_ctx *ctx, const rules_comp_line *l,
                                rules_comp_verdict *v, char *err, size_t errlen)
{
    const cfg_comp *cc = &ctx->cfg->comp;
    const int e = l->exponent;
    const int64_t tol = ctx->tolerance[e];
    int64_t neutral, gross, d;
    dg_rate fee = 0;
    int has_fee = find_rate(cc->fees, cc->fee_rates, cc->nfees, l->cloud, &fee, NULL);
    mp_text t;
    t.ready = 0; /* (not zeroed: the texts are filled on first use) */

    if (dg_amount_mul_rates(l->acv, v->direct_rate, l->split, ctx->rounding, &neutral) != DG_OK)
        return overflow(err, errlen, "acv");
    if (dg_amount_mul_rates(l->acv, l->split, DG_RATE_SCALE, ctx->rounding, &gross) != DG_OK)
        return overflow(err, errlen, "acv");
    v->expected = neutral;

    if (l->has_base) {
        if (dg_amount_sub(gross, l->base, &d) != DG_OK)
            return overflow(err, errlen, "commission_base");
        if (d > tol) {
            int64_t fb1 = 0, fb2 = 0, acv_net = 0;
            int explained = 0;
            if (has_fee && fee < DG_RATE_SCALE) {
                /* acv x (1 - fee) x split, or (acv - fee amount) x split, as tools do. */
                if (dg_amount_mul_rates(l->acv, DG_RATE_SCALE - fee, l->split, ctx->rounding,
                                        &fb1) == DG_OK &&
                    within(l->base, fb1, tol))
                    explained = 1;
                if (!explained &&
                    dg_amount_mul_rates(l->acv, DG_RATE_SCALE - fee, DG_RATE_SCALE, ctx->rounding,
                                        &acv_net) == DG_OK &&
                    dg_amount_mul_rates(acv_net, l->split, DG_RATE_SCALE, ctx->rounding, &fb2) ==
                        DG_OK &&
                    within(l->base, fb2, tol))
                    explained = 1;
            }
            if (explained)
                add_reason(v, RULES_COMP_FEE_DEDUCTED_FROM_BASE, 1,
                           "base %s is ACV %s%s less the %s %s fee", amt(l->base, e).s,
                           amt(l->acv, e).s, TXT->split, pct(fee).s, TXT->cloud);
            else if (l->split == DG_RATE_SCALE)
                add_reason(v, RULES_COMP_FEE_DEDUCTED_FROM_BASE, 1, "base %s is %s below ACV %s",
                           amt(l->base, e).s, amt(d, e).s, amt(l->acv, e).s);
            else
                add_reason(v, RULES_COMP_FEE_DEDUCTED_FROM_BASE, 1,
                           "base %s is %s below ACV %s%s = %s", amt(l->base, e).s, amt(d, e).s,
                           amt(l->acv, e).s, TXT->split, amt(gross, e).s);
        }
    }

    if (l->has_rate && l->rate < v->direct_rate) {
        int64_t net_rate = 0;
        if (has_fee &&
            dg_amount_mul_rates(v->direct_rate, DG_RATE_SCALE - fee, DG_RATE_SCALE,
                                DG_ROUND_HALF_UP, &net_rate) == DG_OK &&
            net_rate == l->rate)
            add_reason(v, RULES_COMP_RATE_BELOW_DIRECT, 1,
                       "rate %s is the direct rate %s (%s) less the %s %s fee", pct(l->rate).s,
                       pct(v->direct_rate).s, TXT->src, pct(fee).s, TXT->cloud);
        else
            add_reason(v, RULES_COMP_RATE_BELOW_DIRECT, 1,
                       "rate %s is below the direct rate %s (%s)", pct(l->rate).s,
                       pct(v->direct_rate).s, TXT->src);
    }

    if (dg_amount_sub(neutral, l->commission, &d) != DG_OK)
        return overflow(err, errlen, "commission");
    if (d > tol) {
        int64_t net = 0;
        v->shortfall = d;
        if (has_fee &&
            dg_amount_mul_rates(neutral, DG_RATE_SCALE - fee, DG_RATE_SCALE, ctx->rounding, &net) ==
                DG_OK &&
            within(l->commission, net, tol))
            add_reason(v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT, 1,
                       "paid %s, %s less than the direct equivalent %s (%s x ACV %s%s): the %s "
                       "%s fee came out of the rep's pay",
                       amt(l->commission, e).s, amt(d, e).s, amt(neutral, e).s,
                       pct(v->direct_rate).s, amt(l->acv, e).s, TXT->split, pct(fee).s, TXT->cloud);
        else
            add_reason(v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT, 1,
                       "paid %s, %s less than the direct equivalent %s (%s x ACV %s%s)",
                       amt(l->commission, e).s, amt(d, e).s, amt(neutral, e).s,
                       pct(v->direct_rate).s, amt(l->acv, e).s, TXT->split);
    } else if (d < -tol) {
        int64_t up = 0;
        if (dg_amount_sub(l->commission, neutral, &up) != DG_OK)
            return overflow(err, errlen, "commission");
        add_reason(v, RULES_COMP_MARKETPLACE_UPLIFT, !ctx->allow_uplift,
                   "paid %s, %s more than the direct equivalent %s%s", amt(l->commission, e).s,
                   amt(up, e).s, amt(neutral, e).s,
                   ctx->allow_uplift ? "" : " (allow_uplift = no)");
    }
    return DG_OK;
}

#undef TXT

dg_err rules_comp_check(const rules_comp_ctx *ctx, const rules_comp_line *l, rules_comp_verdict *v,
                        char *err, size_t errlen)
{
    const cfg_comp *cc = &ctx->cfg->comp;
    int64_t calc = 0, d;
    int has_calc = l->has_rate && l->has_base;
    dg_err rc;

    /* Not memset: the reasons array is large and only nreasons of it is ever read. */
    v->violation = v->warning = 0;
    v->codes = 0;
    v->nreasons = 0;
    v->shortfall = 0;
    v->direct_rate = 0;
    v->dr_plan = NULL;
    v->actual = l->commission;
    v->expected = l->commission;
    if (l->exponent < 0 || l->exponent > RULES_COMP_MAX_EXPONENT)
        return dg_errf(err, errlen, DG_ERANGE, "currency: exponent %d not supported", l->exponent);

    if (l->has_direct_rate) {
        v->dr_source = RULES_COMP_DR_LINE;
        v->direct_rate = l->direct_rate;
    } else if (find_rate(cc->plans, cc->plan_rates, cc->nplans, l->plan, &v->direct_rate,
                         &v->dr_plan)) {
        v->dr_source = RULES_COMP_DR_PLAN;
    } else if (find_rate(cc->plans, cc->plan_rates, cc->nplans, "default", &v->direct_rate, NULL)) {
        v->dr_source = RULES_COMP_DR_DEFAULT;
    } else {
        v->dr_source = RULES_COMP_DR_NONE;
    }

    if (has_calc) {
        if (dg_amount_mul_rates(l->base, l->rate, DG_RATE_SCALE, ctx->rounding, &calc) != DG_OK)
            return overflow(err, errlen, "commission_base");
        v->expected = calc;
    }

    if (l->marketplace) {
        if (v->dr_source == RULES_COMP_DR_NONE)
            return dg_errf(err, errlen, DG_EINVAL,
                           "direct_rate: none for this marketplace line (give direct_rate, or set "
                           "[comp] plan.%s or plan.default)",
                           l->plan && l->plan[0] ? l->plan : "<plan>");
        rc = check_marketplace(ctx, l, v, err, errlen);
        if (rc != DG_OK) return rc;
    }

    if (has_calc) {
        const int e = l->exponent;
        const int64_t tol = ctx->tolerance[e];
        if (dg_amount_sub(calc, l->commission, &d) != DG_OK)
            return overflow(err, errlen, "commission");
        if (d > tol || d < -tol) {
            add_reason(v, RULES_COMP_CALCULATION_MISMATCH, 1,
                       "commission %s is not rate %s x base %s = %s", amt(l->commission, e).s,
                       pct(l->rate).s, amt(l->base, e).s, amt(calc, e).s);
            if (!l->marketplace && d > 0) v->shortfall = d;
        }
    }

    /* Keep reasons in code order (calculation_mismatch was added after the uplift). */
    if (v->nreasons > 1) {
        for (size_t i = 1; i < v->nreasons; i++) {
            rules_comp_reason tmp = v->reasons[i];
            size_t j = i;
            while (j > 0 && v->reasons[j - 1].code > tmp.code) {
                v->reasons[j] = v->reasons[j - 1];
                j--;
            }
            v->reasons[j] = tmp;
        }
    }
    return DG_OK;
}
