/* comp.h — the commission-neutrality verdict for one line: (cfg, line) -> verdict.
 *
 * Pure: no I/O, no allocation, no clock. gate/comp_intake.c turns a JSON line or a CSV
 * record into a rules_comp_line (exact minor units and rates, already parsed) and calls
 * rules_comp_check(). The neutral commission is direct_rate x acv x split, rounded once to
 * the line's minor unit ([comp] rounding); tolerance is [comp] tolerance read as money in
 * the line's currency. Codes and their exact conditions: docs/commission.md.
 *
 * A rules_comp_ctx is prepared once per configuration snapshot (it parses the tolerance
 * for every currency exponent up front) and borrows that snapshot.
 */
#ifndef DG_RULES_COMP_H
#define DG_RULES_COMP_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "config/err.h"
#include "config/money.h"

/* Stable codes. The first four are violations; marketplace_uplift is a warning unless
 * [comp] allow_uplift = no. */
typedef enum {
    RULES_COMP_FEE_DEDUCTED_FROM_BASE = 0,
    RULES_COMP_RATE_BELOW_DIRECT,
    RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT,
    RULES_COMP_CALCULATION_MISMATCH,
    RULES_COMP_MARKETPLACE_UPLIFT,
    RULES_COMP_NCODES
} rules_comp_code;

#define RULES_COMP_MAX_EXPONENT 9 /* highest currency exponent a ctx prepares */
#define RULES_COMP_MSG_MAX 224    /* one reason message, NUL included */

/* Returns the stable name of c ("fee_deducted_from_base"); static storage. */
const char *rules_comp_code_name(rules_comp_code c);

typedef struct {
    const struct cfg *cfg;                          /* borrowed */
    dg_rounding rounding;                           /* [comp] rounding */
    int allow_uplift;                               /* [comp] allow_uplift */
    dg_rate_bare rate_format;                       /* [comp] rate_format */
    int64_t tolerance[RULES_COMP_MAX_EXPONENT + 1]; /* by exponent, in minor units */
} rules_comp_ctx;

/* Prepares ctx from c (borrowed: c must outlive ctx). A tolerance finer than a currency's
 * minor unit is cut to it (0.01 is 0 yen: JPY lines must match exactly). Returns DG_OK,
 * or DG_ECONFIG with a message (an unreadable tolerance). */
dg_err rules_comp_ctx_init(rules_comp_ctx *ctx, const struct cfg *c, char *err, size_t errlen);

/* One line, parsed. Strings borrowed, may be NULL (absent). */
typedef struct {
    int marketplace;   /* channel: 1 marketplace, 0 direct */
    const char *cloud; /* cloud key as written (fee.<cloud> is matched ignoring case) */
    const char *plan;  /* plan name (plan.<plan> matched ignoring case) */
    int exponent;      /* of the line's currency, 0..RULES_COMP_MAX_EXPONENT */
    int64_t acv;       /* gross contract value, minor units */
    int has_base;
    int64_t base; /* commission_base */
    int has_rate;
    dg_rate rate;       /* rate the comp tool applied */
    int64_t commission; /* what the rep was paid */
    int has_direct_rate;
    dg_rate direct_rate; /* the line's own direct rate */
    dg_rate split;       /* rep's share of credit; DG_RATE_SCALE when not given */
} rules_comp_line;

typedef enum {
    RULES_COMP_DR_LINE = 0, /* the line's direct_rate */
    RULES_COMP_DR_PLAN,     /* [comp] plan.<plan> */
    RULES_COMP_DR_DEFAULT,  /* [comp] plan.default */
    RULES_COMP_DR_NONE      /* none: only possible on direct lines */
} rules_comp_dr_source;

typedef struct {
    rules_comp_code code;
    int violation; /* 1 violation, 0 warning */
    char message[RULES_COMP_MSG_MAX];
} rules_comp_reason;

typedef struct {
    int violation;  /* any reason is a violation */
    int warning;    /* any reason is a warning */
    unsigned codes; /* bit (1u << code) per reason */
    size_t nreasons;
    rules_comp_reason reasons[RULES_COMP_NCODES]; /* in code order */
    /* expected: marketplace lines the neutral commission; direct lines rate x base when
     * both are given, else the commission itself (nothing to compare). actual: the
     * commission. shortfall: expected - actual when the line was paid less beyond tolerance
     * (commission_below_direct_equivalent; on a direct line an underpaid
     * calculation_mismatch), else 0. All minor units of the line's currency. */
    int64_t expected, actual, shortfall;
    rules_comp_dr_source dr_source;
    dg_rate direct_rate; /* valid unless dr_source == RULES_COMP_DR_NONE */
    const char *dr_plan; /* plan name for RULES_COMP_DR_PLAN (borrowed from cfg) */
} rules_comp_verdict;

/* Checks line l. Fills *v (reasons past nreasons are left as they were) and returns DG_OK; or
 * returns DG_EINVAL when a marketplace line has no direct rate (no direct_rate, no plan.<plan>, no
 * plan.default), DG_ERANGE for an exponent out of range, DG_EOVERFLOW when a product does not fit:
 * each with a one-line message naming the field. Never allocates. */
dg_err rules_comp_check(const rules_comp_ctx *ctx, const rules_comp_line *l, rules_comp_verdict *v,
                        char *err, size_t errlen);

#endif
