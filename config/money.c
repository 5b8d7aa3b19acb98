/* money.c — exact money and rates (see money.h).
 *
 * One decimal scanner (scan_decimal) reads every textual number in the project: an
 * optional '-', digits (optionally grouped by commas in threes), an optional '.' and
 * fraction digits, and returns the value scaled by 10^scale as an int64, refusing any
 * non-zero digit beyond `scale` and any overflow. Amounts scale by the currency's ISO 4217
 * exponent, fractions of rates by 9 and percents by 7. Products are computed in __int128
 * and rounded once. The only double ever read (a JSON number) is turned into its shortest
 * round-tripping decimal text first and then scanned like any other string.
 */
#include "config/money.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISO 4217 minor-unit exponents other than 2 (list of 2023). */
static const struct {
    char code[4];
    int exponent;
} ccy_exceptions[] = {
    {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0},
    {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0}, {"VND", 0}, {"VUV", 0},
    {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3},
    {"LYD", 3}, {"OMR", 3}, {"TND", 3}, {"CLF", 4}, {"UYW", 4},
};

#define RATE_MAX (10 * DG_RATE_SCALE) /* 1000% */

int dg_ccy_valid(const char *ccy)
{
    if (ccy == NULL) return 0;
    for (int i = 0; i < 3; i++)
        if (ccy[i] < 'A' || ccy[i] > 'Z') return 0;
    return ccy[3] == '\0';
}

int dg_ccy_exponent(const char *ccy)
{
    if (!dg_ccy_valid(ccy)) return -1;
    for (size_t i = 0; i < sizeof ccy_exceptions / sizeof ccy_exceptions[0]; i++)
        if (memcmp(ccy_exceptions[i].code, ccy, 3) == 0) return ccy_exceptions[i].exponent;
    return 2;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_space((*s)[*len - 1]))
        (*len)--;
}

/* Accumulates one digit into a non-negative int64 magnitude; returns 0 on overflow. */
static int acc_digit(int64_t *v, int d)
{
    if (*v > (INT64_MAX - d) / 10) return 0;
    *v = *v * 10 + d;
    return 1;
}

/* Scans s[0..len) (already trimmed) as [-]digits[.digits] into value × 10^scale.
 * thousands: accept comma groups in the integer part. *neg_seen reports a leading '-'
 * (the value itself may be 0 for "-0"). Returns DG_EPARSE, DG_ERANGE (a non-zero digit
 * beyond `scale`), DG_EOVERFLOW or DG_OK. `what` names the thing in messages. */
static dg_err scan_decimal(const char *s, size_t len, int scale, int thousands, int64_t *out,
                           int *neg_seen, const char *what, char *err, size_t errlen)
{
    size_t i = 0;
    int neg = 0;
    int64_t v = 0;

    if (len == 0) return dg_errf(err, errlen, DG_EPARSE, "empty %s", what);
    if (s[0] == '-') {
        neg = 1;
        i++;
    }
    if (i >= len || !is_digit(s[i]))
        return dg_errf(err, errlen, DG_EPARSE, "%s must start with a digit", what);

    /* Integer part, possibly grouped "1,250,000". */
    size_t group_len = 0, ngroups = 1;
    for (; i < len && (is_digit(s[i]) || s[i] == ','); i++) {
        if (s[i] == ',') {
            if (!thousands)
                return dg_errf(err, errlen, DG_EPARSE,
                               "%s has a ',' (write plain digits, '.' for decimals)", what);
            if ((ngroups == 1 && (group_len < 1 || group_len > 3)) ||
                (ngroups > 1 && group_len != 3))
                return dg_errf(err, errlen, DG_EPARSE, "%s has misplaced thousands separators",
                               what);
            ngroups++;
            group_len = 0;
            continue;
        }
        group_len++;
        if (!acc_digit(&v, s[i] - '0'))
            return dg_errf(err, errlen, DG_EOVERFLOW, "%s is too large", what);
    }
    if (ngroups > 1 && group_len != 3)
        return dg_errf(err, errlen, DG_EPARSE, "%s has misplaced thousands separators", what);

    /* Fraction. */
    int frac = 0, too_precise = 0;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return dg_errf(err, errlen, DG_EPARSE, "%s needs digits after '.'", what);
        for (; i < len && is_digit(s[i]); i++) {
            int d = s[i] - '0';
            if (frac < scale) {
                if (!acc_digit(&v, d))
                    return dg_errf(err, errlen, DG_EOVERFLOW, "%s is too large", what);
                frac++;
            } else if (d != 0) {
                too_precise = 1;
            }
        }
    }
    if (i != len) return dg_errf(err, errlen, DG_EPARSE, "%s has an unexpected character", what);
    if (too_precise)
        return dg_errf(err, errlen, DG_ERANGE, "%s has more than %d decimal place%s", what, scale,
                       scale == 1 ? "" : "s");
    for (; frac < scale; frac++)
        if (!acc_digit(&v, 0)) return dg_errf(err, errlen, DG_EOVERFLOW, "%s is too large", what);

    *out = neg ? -v : v;
    if (neg_seen) *neg_seen = neg;
    return DG_OK;
}

dg_err dg_amount_parse(const char *s, size_t len, int exponent, unsigned flags, int64_t *minor,
                       char *err, size_t errlen)
{
    if (s == NULL || minor == NULL) return dg_errf(err, errlen, DG_EPARSE, "missing amount");
    if (exponent < 0 || exponent > 9) return dg_errf(err, errlen, DG_EINVAL, "bad exponent");
    trim(&s, &len);
    return scan_decimal(s, len, exponent, (flags & DG_AMOUNT_THOUSANDS) != 0, minor, NULL, "amount",
                        err, errlen);
}

/* Splits "a b" on the first run of spaces; returns 1 with both tokens, 0 for one token. */
static int split_two(const char *s, size_t len, const char **a, size_t *alen, const char **b,
                     size_t *blen)
{
    size_t i = 0;
    while (i < len && !is_space(s[i]))
        i++;
    *a = s;
    *alen = i;
    if (i == len) return 0;
    while (i < len && is_space(s[i]))
        i++;
    *b = s + i;
    *blen = len - i;
    return 1;
}

static int looks_like_ccy(const char *s, size_t len)
{
    if (len != 3) return 0;
    for (size_t i = 0; i < 3; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) return 0;
    return 1;
}

dg_err dg_money_parse(const char *s, const char *default_ccy, dg_money *out, char *err,
                      size_t errlen)
{
    if (s == NULL || out == NULL) return dg_errf(err, errlen, DG_EPARSE, "missing amount");
    size_t len = strlen(s);
    trim(&s, &len);

    const char *a, *b = NULL, *num, *code = NULL;
    size_t alen, blen = 0, numlen, codelen = 0;
    if (split_two(s, len, &a, &alen, &b, &blen)) {
        if (looks_like_ccy(a, alen) && !looks_like_ccy(b, blen)) {
            code = a, codelen = alen, num = b, numlen = blen;
        } else {
            num = a, numlen = alen, code = b, codelen = blen;
        }
    } else {
        num = a, numlen = alen;
    }

    char ccy[4];
    if (code != NULL) {
        if (codelen != 3)
            return dg_errf(err, errlen, DG_EINVAL, "bad currency code (three letters, e.g. USD)");
        for (size_t i = 0; i < 3; i++)
            ccy[i] = code[i];
        ccy[3] = '\0';
        if (!dg_ccy_valid(ccy))
            return dg_errf(err, errlen, DG_EINVAL,
                           "bad currency code (three uppercase letters, e.g. USD)");
    } else {
        if (!dg_ccy_valid(default_ccy))
            return dg_errf(err, errlen, DG_EINVAL, "amount names no currency");
        memcpy(ccy, default_ccy, 4);
    }

    int64_t minor;
    dg_err e = dg_amount_parse(num, numlen, dg_ccy_exponent(ccy), 0, &minor, err, errlen);
    if (e != DG_OK) return e;
    out->minor = minor;
    memcpy(out->ccy, ccy, 4);
    return DG_OK;
}

/* Rewrites a "%g" text (maybe "1.5e+07", "-2e-05") as plain decimal digits into buf.
 * Returns 0 on success, -1 if it does not fit or is malformed. */
static int expand_exponent(const char *in, char *buf, size_t n)
{
    const char *e = strchr(in, 'e');
    if (e == NULL) {
        size_t l = strlen(in);
        if (l + 1 > n) return -1;
        memcpy(buf, in, l + 1);
        return 0;
    }
    char digits[32];
    size_t nd = 0, intdigits = 0;
    int neg = 0, seen_point = 0;
    const char *p = in;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; p < e; p++) {
        if (*p == '.') {
            seen_point = 1;
            continue;
        }
        if (!is_digit(*p) || nd + 1 >= sizeof digits) return -1;
        digits[nd++] = *p;
        if (!seen_point) intdigits++;
    }
    char *end = NULL;
    long ex = strtol(e + 1, &end, 10);
    if (end == e + 1 || *end != '\0' || ex < -400 || ex > 400) return -1;
    long point = (long)intdigits + ex; /* digits before the decimal point */

    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 >= n) return -1;                                                                 \
        buf[o++] = (c);                                                                            \
    } while (0)
    if (neg) PUT('-');
    if (point <= 0) {
        PUT('0');
        PUT('.');
        for (long k = 0; k < -point; k++)
            PUT('0');
        for (size_t k = 0; k < nd; k++)
            PUT(digits[k]);
    } else {
        for (long k = 0; k < point; k++)
            PUT((size_t)k < nd ? digits[k] : '0');
        if ((size_t)point < nd) {
            PUT('.');
            for (size_t k = (size_t)point; k < nd; k++)
                PUT(digits[k]);
        }
    }
#undef PUT
    buf[o] = '\0';
    return 0;
}

dg_err dg_amount_from_double(double x, int exponent, int64_t *minor, char *err, size_t errlen)
{
    if (!isfinite(x))
        return dg_errf(err, errlen, DG_ERANGE,
                       "amount is not a finite number; send it as a "
                       "decimal string");
    if (fabs(x) >= 1e12)
        return dg_errf(err, errlen, DG_ERANGE,
                       "amount is too large for a JSON number (|x| >= 10^12); send it as a "
                       "decimal string, e.g. \"1250000000000.00\"");

    char text[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(text, sizeof text, "%.*g", p, x);
        if (strtod(text, NULL) == x) break;
    }
    char plain[480];
    if (expand_exponent(text, plain, sizeof plain) != 0)
        return dg_errf(err, errlen, DG_ERANGE,
                       "amount cannot be read exactly from a JSON number; send it as a "
                       "decimal string");
    char sub[160];
    dg_err e = dg_amount_parse(plain, strlen(plain), exponent, 0, minor, sub, sizeof sub);
    if (e == DG_ERANGE)
        return dg_errf(err, errlen, DG_ERANGE,
                       "amount %.40s has more than %d decimal place%s; send it as a decimal "
                       "string with at most %d",
                       plain, exponent, exponent == 1 ? "" : "s", exponent);
    if (e != DG_OK)
        return dg_errf(err, errlen, e == DG_EOVERFLOW ? DG_ERANGE : e,
                       "%s; send the amount as "
                       "a decimal string",
                       sub);
    return DG_OK;
}

/* Writes minor as a decimal with a '.' before the last `exponent` digits
 * and optional grouping, into out (reversed build). Returns the length. */
static size_t format_amount(int64_t minor, int exponent, int grouped, char *buf, size_t n)
{
    char tmp[DG_MONEY_STRLEN + 64];
    size_t o = 0;
    uint64_t u = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    if (exponent < 0) exponent = 0;
    if (exponent > 18) exponent = 18;

    for (int k = 0; k < exponent; k++) {
        tmp[o++] = (char)('0' + u % 10);
        u /= 10;
    }
    if (exponent > 0) tmp[o++] = '.';
    int ndig = 0;
    do {
        if (grouped && ndig > 0 && ndig % 3 == 0) tmp[o++] = ',';
        tmp[o++] = (char)('0' + u % 10);
        u /= 10;
        ndig++;
    } while (u != 0);
    if (minor < 0) tmp[o++] = '-';

    size_t w = 0;
    if (n == 0) return 0;
    while (o > 0 && w + 1 < n)
        buf[w++] = tmp[--o];
    buf[w] = '\0';
    return w;
}

size_t dg_amount_format(int64_t minor, int exponent, char *buf, size_t n)
{
    return format_amount(minor, exponent, 0, buf, n);
}

size_t dg_amount_format_grouped(int64_t minor, int exponent, char *buf, size_t n)
{
    return format_amount(minor, exponent, 1, buf, n);
}

dg_err dg_rate_parse(const char *s, size_t len, dg_rate_bare bare, dg_rate *out, char *err,
                     size_t errlen)
{
    if (s == NULL || out == NULL) return dg_errf(err, errlen, DG_EPARSE, "missing rate");
    trim(&s, &len);
    if (len == 0) return dg_errf(err, errlen, DG_EPARSE, "empty rate");

    int percent = 0;
    if (s[len - 1] == '%') {
        percent = 1;
        len--;
        while (len > 0 && is_space(s[len - 1]))
            len--;
    }
    int has_point = memchr(s, '.', len) != NULL;
    int scale = 9;
    if (percent) {
        scale = 7;
    } else if (!has_point) {
        if (bare == DG_RATE_BARE_PERCENT) {
            scale = 7;
        } else if (bare == DG_RATE_BARE_ERROR) {
            int64_t v;
            char sub[96];
            dg_err e = scan_decimal(s, len, 9, 0, &v, NULL, "rate", sub, sizeof sub);
            if (e == DG_OK && v == 0) {
                *out = 0;
                return DG_OK;
            }
            if (e == DG_EPARSE) return dg_errf(err, errlen, e, "%s", sub);
            return dg_errf(err, errlen, DG_EINVAL,
                           "rate \"%.*s\" is ambiguous: write %.*s%% or a fraction like 0.10",
                           (int)(len > 20 ? 20 : len), s, (int)(len > 20 ? 20 : len), s);
        }
    }

    int64_t v;
    int neg = 0;
    char sub[96];
    dg_err e = scan_decimal(s, len, scale, 0, &v, &neg, "rate", sub, sizeof sub);
    if (e == DG_EOVERFLOW) return dg_errf(err, errlen, DG_ERANGE, "rate is above 1000%%");
    if (e != DG_OK) {
        if (e == DG_ERANGE)
            return dg_errf(err, errlen, DG_EPARSE,
                           "rate has too many decimal places (at most %d%s)", scale,
                           percent || scale == 7 ? " for a percentage" : "");
        return dg_errf(err, errlen, e, "%s", sub);
    }
    if (neg && v != 0) return dg_errf(err, errlen, DG_ERANGE, "rate is negative");
    /* A percent scanned with 7 decimals is already in parts per 10^9. */
    if (v > RATE_MAX) return dg_errf(err, errlen, DG_ERANGE, "rate is above 1000%%");
    *out = v;
    return DG_OK;
}

size_t dg_rate_format(dg_rate r, char *buf, size_t n)
{
    /* As a percent: r / 10^7, with up to 7 fraction digits, trailing zeros removed. */
    char tmp[48];
    uint64_t u = r < 0 ? (uint64_t)0 - (uint64_t)r : (uint64_t)r;
    uint64_t ip = u / 10000000u, fp = u % 10000000u;
    size_t o = 0;
    char frac[8];
    int nf = 7;
    for (int k = 6; k >= 0; k--) {
        frac[k] = (char)('0' + fp % 10);
        fp /= 10;
    }
    while (nf > 0 && frac[nf - 1] == '0')
        nf--;
    char ipbuf[24];
    int ni = 0;
    do {
        ipbuf[ni++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip != 0);
    if (r < 0) tmp[o++] = '-';
    while (ni > 0)
        tmp[o++] = ipbuf[--ni];
    if (nf > 0) {
        tmp[o++] = '.';
        for (int k = 0; k < nf; k++)
            tmp[o++] = frac[k];
    }
    tmp[o++] = '%';

    size_t w = 0;
    if (n == 0) return 0;
    for (; w < o && w + 1 < n; w++)
        buf[w] = tmp[w];
    buf[w] = '\0';
    return w;
}

dg_err dg_amount_mul_rates(int64_t minor, dg_rate r1, dg_rate r2, dg_rounding mode, int64_t *out)
{
    /* minor × r1 always fits in 128 bits (|.| < 2^126); if the second product overflows
     * 128 bits the result (≥ 2^127 / 10^18 > 2^63) overflows int64 anyway. */
    __int128 p = (__int128)minor * r1;
    __int128 n;
    if (__builtin_mul_overflow(p, (__int128)r2, &n)) return DG_EOVERFLOW;

    const __int128 d = (__int128)DG_RATE_SCALE * DG_RATE_SCALE;
    __int128 q = n / d, rem = n % d; /* truncates toward zero; rem has n's sign */
    __int128 arem = rem < 0 ? -rem : rem;
    int sign = n < 0 ? -1 : 1;
    if (2 * arem > d || (2 * arem == d && (mode == DG_ROUND_HALF_UP || (q % 2) != 0))) q += sign;
    if (q > INT64_MAX || q < INT64_MIN) return DG_EOVERFLOW;
    *out = (int64_t)q;
    return DG_OK;
}

dg_err dg_amount_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return DG_EOVERFLOW;
    *out = r;
    return DG_OK;
}

dg_err dg_amount_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return DG_EOVERFLOW;
    *out = r;
    return DG_OK;
}
