/* comp_intake.h — commission lines in (a JSON line, {"lines": [...]}, or CSV), results out.
 *
 * Every input form is turned field by field into a rules_comp_line (exact minor units in
 * the line's currency, exact rates) and checked by rules_comp_check(). Fields and CSV
 * columns are matched ignoring case; [comp] column.<field> = <header> adds a comp tool's
 * own header as a name for a field. CSV is parsed by libcsv in strict mode and streamed:
 * gate_comp_csv_feed() takes any number of bytes, each record is checked as soon as it is
 * complete and handed to a callback, so memory stays constant whatever the input size
 * (one record's mapped fields, capped at GATE_COMP_FIELD_MAX bytes each; a field of an
 * unmapped column at GATE_COMP_CSV_ENTRY_MAX). Locations in messages are physical line
 * numbers (the line a record starts on) and column headers, e.g.
 * `line 7, column "Rate" (rate): ...`.
 *
 * HTTP handlers call gate_comp_check_body(); the CLI (gate/comp_cli.c) drives
 * gate_comp_csv_* itself and streams its output. Both write the same result objects
 * (gate_comp_result_json) and the same summary members (gate_comp_totals_json).
 */
#ifndef DG_COMP_INTAKE_H
#define DG_COMP_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "config/buf.h"
#include "config/cfg.h"
#include "config/err.h"
#include "gate/dlog.h"
#include "rules/comp.h"

#define GATE_COMP_FIELD_MAX 256            /* bytes of one mapped field (deal_id, rep, ...) */
#define GATE_COMP_CSV_ENTRY_MAX (1u << 20) /* bytes of any CSV field, mapped or not */
#define GATE_COMP_MAX_COLUMNS 512          /* columns of a CSV header */
#define GATE_COMP_MAX_CURRENCIES 1024      /* distinct currencies in one check */
#define GATE_COMP_MAX_RESPONSE (64u << 20) /* bytes of an HTTP response (and its log rows) */

typedef enum {
    GATE_COMP_DEAL_ID = 0,
    GATE_COMP_REP,
    GATE_COMP_CHANNEL,
    GATE_COMP_CLOUD,
    GATE_COMP_ACV,
    GATE_COMP_COMMISSION_BASE,
    GATE_COMP_RATE,
    GATE_COMP_COMMISSION,
    GATE_COMP_PLAN,
    GATE_COMP_DIRECT_RATE,
    GATE_COMP_SPLIT,
    GATE_COMP_CURRENCY,
    GATE_COMP_NFIELDS
} gate_comp_field;

/* Returns the canonical name of f ("commission_base"); static storage. */
const char *gate_comp_field_name(gate_comp_field f);

/* One checked line. Everything borrowed, valid only during the callback that receives it. */
typedef struct {
    size_t line;         /* CSV: physical line the record starts on (header = 1);
                            JSON: 1-based position in lines[] (1 for a single object) */
    const char *deal_id; /* never empty */
    const char *rep;     /* "" when absent */
    const char *channel; /* "direct" | "marketplace" */
    const char *cloud;   /* "" when absent */
    const char *plan;    /* "" when absent */
    char currency[4];    /* the line's, else [server] currency */
    rules_comp_line in;
    rules_comp_verdict v;
} gate_comp_item;

/* Appends it's result object: {"line", "deal_id", "rep", "channel", "cloud", "plan",
 * "currency", "status" ("clean"|"warning"|"violation"), "codes": [...], "reasons":
 * [{"code", "severity", "message"}], "message", "expected", "actual", "shortfall",
 * "direct_rate", "direct_rate_source"}. Amounts are exact decimal strings. Returns 0 or -1
 * (b full). */
int gate_comp_result_json(dg_buf *b, const gate_comp_item *it);

/* Running totals of a check. */
typedef struct {
    uint64_t checked;                    /* lines */
    uint64_t violations;                 /* lines with at least one violation */
    uint64_t warnings;                   /* lines with a warning and no violation */
    uint64_t by_code[RULES_COMP_NCODES]; /* lines carrying each code */
    struct gate_comp_ccy_total {
        char ccy[4];
        int exponent;
        int64_t shortfall; /* minor units */
    } * ccy;               /* every currency seen, in order of appearance */
    size_t nccy, capccy;
} gate_comp_totals;

/* Initialises t empty. */
void gate_comp_totals_init(gate_comp_totals *t);
/* Adds one checked line. Returns DG_OK, DG_EOVERFLOW (a currency total does not fit),
 * DG_ETOOBIG (more than GATE_COMP_MAX_CURRENCIES currencies) or DG_ENOMEM, with a message. */
dg_err gate_comp_totals_add(gate_comp_totals *t, const gate_comp_item *it, char *err,
                            size_t errlen);
/* Appends the summary members (no braces): "ok", "checked", "violations", "warnings",
 * "violations_by_code": {code: n}, "total_shortfall": {CCY: "decimal"} (every currency
 * seen, "0.00" when none). Returns 0 or -1 (b full). */
int gate_comp_totals_json(dg_buf *b, const gate_comp_totals *t);
void gate_comp_totals_free(gate_comp_totals *t);

/* Called for each checked line. A non-DG_OK return stops the stream with that error
 * (message in err). */
typedef dg_err (*gate_comp_line_fn)(void *arg, const gate_comp_item *it, char *err, size_t errlen);

typedef struct gate_comp_csv gate_comp_csv;

/* Starts a CSV stream (header row first) checked against ctx (borrowed; must outlive the
 * stream). Returns DG_OK and *out (free with gate_comp_csv_free), or DG_ENOMEM. */
dg_err gate_comp_csv_new(const rules_comp_ctx *ctx, gate_comp_line_fn fn, void *arg,
                         gate_comp_csv **out);

/* Feeds len bytes (any split; a leading UTF-8 BOM is skipped). Calls fn for every record
 * completed. Returns DG_OK, or the first error, after which the stream is dead:
 * DG_EPARSE malformed CSV (quotes), DG_EINVAL a bad header, field or line,
 * DG_ETOOBIG a field over its limit, DG_EOVERFLOW, DG_ENOMEM, or fn's error. The message
 * names the line and, where there is one, the column. */
dg_err gate_comp_csv_feed(gate_comp_csv *s, const char *data, size_t len, char *err, size_t errlen);

/* Ends the stream (the last record may lack a newline). Same errors as feed, plus
 * DG_EPARSE for an unterminated quoted field and DG_EINVAL for input with no header. */
dg_err gate_comp_csv_finish(gate_comp_csv *s, char *err, size_t errlen);

/* Records mode, for callers that check on another thread: the stream only cuts records
 * (header matched, cells bounded) and hands each one's mapped cells to fn, unchecked; the
 * caller checks them with gate_comp_check_record(). Otherwise as gate_comp_csv_new. */
typedef struct {
    size_t line;                          /* physical line the record starts on */
    unsigned has;                         /* bit (1u << field) per field with a cell */
    const char *val[GATE_COMP_NFIELDS];   /* cell text, NUL-terminated (may hold a NUL) */
    size_t len[GATE_COMP_NFIELDS];        /* cell length in bytes */
    const char *label[GATE_COMP_NFIELDS]; /* header of the field's column, NULL if none */
} gate_comp_record;

typedef dg_err (*gate_comp_record_fn)(void *arg, const gate_comp_record *r, char *err,
                                      size_t errlen);

dg_err gate_comp_csv_new_records(const rules_comp_ctx *ctx, gate_comp_record_fn fn, void *arg,
                                 gate_comp_csv **out);

/* Per-thread storage for checking records (one line's strings and item). */
typedef struct gate_comp_scratch gate_comp_scratch;
dg_err gate_comp_scratch_new(gate_comp_scratch **out); /* DG_OK or DG_ENOMEM; free below */
void gate_comp_scratch_free(gate_comp_scratch *sc);

/* Checks record r (its strings are only read). Returns DG_OK with *it pointing into sc
 * (valid until the next call with sc), or the error for the line (message names line and
 * column, as the stream's). ctx and r->label strings must stay valid for the call. */
dg_err gate_comp_check_record(const rules_comp_ctx *ctx, gate_comp_scratch *sc,
                              const gate_comp_record *r, const gate_comp_item **it, char *err,
                              size_t errlen);

/* The physical line the stream has reached (for messages of callers). */
size_t gate_comp_csv_line(const gate_comp_csv *s);

void gate_comp_csv_free(gate_comp_csv *s);

/* The outcome of one HTTP check. */
typedef struct {
    int status;           /* 200, or 400 / 413 / 415 / 422 */
    const char *err_code; /* NULL on 200, else "invalid_json" | "invalid_csv" |
                             "invalid_field" | "unsupported_media_type" | "too_large" */
    char *body;           /* NUL-terminated response JSON (the result object, or
                             {"error": {"code", "message"}}), body_len bytes */
    size_t body_len;
    uint64_t checked, violations;
    /* One record per checked line (status 200 only; every line, clean ones too), ready for
     * dlog_append_comp(lines, nlines). The caller fills id, time_ms and batch_id (pointers
     * it owns); every other string points into this result. */
    dlog_comp_line *lines;
    size_t nlines;
    dg_buf priv_arena; /* private: storage of the lines' strings */
} gate_comp_result;

/* Checks a POST /v1/commission/check body against config c (borrowed for the call).
 * content_type: the request's Content-Type (parameters such as charset are ignored):
 * application/json takes one line object or {"lines": [...], "all": bool}; text/csv takes
 * a header row and lines. all: every line in results[] (else only lines that are not
 * clean); the JSON member "all": true also sets it.
 *
 * Returns DG_OK with *out set whenever the request was answered: status 200 with the
 * result body, or a 4xx with an error body (the message also in err): 400 malformed JSON
 * (byte offset) or CSV (line, column), 415 another content type, 422 a field, column or
 * line that cannot be used (named), 413 a response over GATE_COMP_MAX_RESPONSE. Returns
 * DG_ENOMEM or DG_ECONFIG (an unreadable [comp] tolerance) with *out NULL: a 500.
 * Caller frees *out with gate_comp_result_free(). */
dg_err gate_comp_check_body(const struct cfg *c, const char *content_type, const char *body,
                            size_t len, int all, gate_comp_result **out, char *err, size_t errlen);

void gate_comp_result_free(gate_comp_result *r);

#endif
