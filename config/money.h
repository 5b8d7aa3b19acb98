/* money.h — exact money and rates.
 *
 * Money is an int64 count of the currency's minor units (cents for USD, yen for JPY, fils
 * for KWD: the ISO 4217 exponent). Rates are exact decimals held as parts per 10^9
 * (dg_rate): "12.5%" and "0.125" are both 125000000. Products are computed in 128-bit
 * integers and rounded once, half-up or half-even. No floating point is used for money;
 * the only double that is ever accepted is a JSON number, converted through its shortest
 * decimal form and refused unless |x| < 10^12 (see dg_money_from_double).
 */
#ifndef DG_MONEY_H
#define DG_MONEY_H

#include <stdint.h>
#include <stddef.h>

#include "config/err.h"

#define DG_RATE_SCALE 1000000000LL /* 1.0 as a dg_rate */
#define DG_MONEY_STRLEN 48         /* enough for any formatted amount, grouped, with sign */

typedef int64_t dg_rate;

typedef enum { DG_ROUND_HALF_UP = 0, DG_ROUND_HALF_EVEN = 1 } dg_rounding;

/* How a bare rate without % is read: refused, as a percent ("10" = 10%), or a fraction. */
typedef enum { DG_RATE_BARE_ERROR = 0, DG_RATE_BARE_PERCENT, DG_RATE_BARE_FRACTION } dg_rate_bare;

/* Flags for dg_amount_parse. */
#define DG_AMOUNT_THOUSANDS 1u /* accept "1,250,000.00" (groups of three, commas) */

typedef struct {
    int64_t minor; /* minor units of ccy */
    char ccy[4];   /* ISO 4217 code, NUL-terminated */
} dg_money;

/* Returns 1 if ccy is three ASCII uppercase letters, else 0. */
int dg_ccy_valid(const char *ccy);

/* Returns the minor-unit exponent of ccy (JPY 0, KWD 3, USD 2; 2 for any other valid
 * code), or -1 if ccy is not valid. */
int dg_ccy_exponent(const char *ccy);

/* Parses a decimal amount (s, len bytes; optional leading '-', digits, optional '.' and at
 * most `exponent` fraction digits) into minor units. Surrounding spaces are ignored.
 * Returns DG_OK, DG_EPARSE (malformed; message says why), DG_ERANGE (more fraction digits
 * than the currency has) or DG_EOVERFLOW. */
dg_err dg_amount_parse(const char *s, size_t len, int exponent, unsigned flags, int64_t *minor,
                       char *err, size_t errlen);

/* Parses "10000", "10000 USD" or "USD 10000" (config syntax) into out; default_ccy is used
 * when none is named. Same errors as dg_amount_parse, plus DG_EINVAL for a bad code. */
dg_err dg_money_parse(const char *s, const char *default_ccy, dg_money *out, char *err,
                      size_t errlen);

/* Converts a JSON number to minor units: accepted only when |x| < 10^12 and its shortest
 * round-tripping decimal form has at most `exponent` fraction digits. Else DG_ERANGE with a
 * message asking for a string. */
dg_err dg_amount_from_double(double x, int exponent, int64_t *minor, char *err, size_t errlen);

/* Formats minor units as a plain decimal with `exponent` fraction digits ("-1234.50").
 * Returns the length written (buf always NUL-terminated when n > 0). */
size_t dg_amount_format(int64_t minor, int exponent, char *buf, size_t n);

/* Same as dg_amount_format with thousands separators ("1,234.50"), for messages. */
size_t dg_amount_format_grouped(int64_t minor, int exponent, char *buf, size_t n);

/* Parses a rate: "12.5%", "0.125", or a bare "10" read per `bare` (a value with no '%'
 * and no '.' is bare; "0" is always zero). At most 9 fraction digits of a fraction.
 * Returns DG_OK, DG_EPARSE, DG_EINVAL (bare refused: message says to write 10% or 0.10),
 * DG_ERANGE (negative or above 1000%). */
dg_err dg_rate_parse(const char *s, size_t len, dg_rate_bare bare, dg_rate *out, char *err,
                     size_t errlen);

/* Formats a rate as a percent with no trailing zeros ("12.5%", "3%"). Returns length. */
size_t dg_rate_format(dg_rate r, char *buf, size_t n);

/* out = round(minor × r1 × r2) with one rounding at the end (pass DG_RATE_SCALE as r2 for
 * a single rate). Returns DG_OK or DG_EOVERFLOW. */
dg_err dg_amount_mul_rates(int64_t minor, dg_rate r1, dg_rate r2, dg_rounding mode, int64_t *out);

/* out = a + b, a - b with overflow detection. Return DG_OK or DG_EOVERFLOW. */
dg_err dg_amount_add(int64_t a, int64_t b, int64_t *out);
dg_err dg_amount_sub(int64_t a, int64_t b, int64_t *out);

#endif
