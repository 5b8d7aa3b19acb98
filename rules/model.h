/* model.h — the domain model shared by the layers: canonical event, facts, decision.
 *
 * gate/ builds a dg_event from a CRM payload, connectors/ fill dg_facts, rules/ turns
 * (cfg, event, facts, now) into a dg_decision, and gate/ logs it and answers.
 * Every string in these structs is owned by the struct (malloc'd) unless noted; free with
 * the matching *_free() function, which also zeroes the struct.
 */
#ifndef DG_MODEL_H
#define DG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define DG_ID_MAX 128     /* opportunity ids: 1-128 printable characters */
#define DG_REG_ID_MAX 128 /* registration ids */

typedef struct {
    char *cloud; /* cloud key */
    char *id;    /* registration id as held in the CRM */
} dg_reg_ref;

typedef struct dg_event {
    char *event_id;      /* NULL when absent */
    char *opp_id;        /* required */
    char *name, *account, *owner, *pipeline, *source; /* NULL when absent */
    int has_amount;
    int64_t amount;      /* minor units of currency */
    char currency[4];    /* always set (event's or [server] currency) */
    char **clouds;       /* cloud keys, validated against [cloud:*] */
    size_t nclouds;
    dg_reg_ref *regs;
    size_t nregs;
    char *from_stage;    /* raw CRM value, NULL when absent */
    char *to_stage;      /* raw CRM value, required */
} dg_event;

typedef enum {
    DG_LOOKUP_FOUND = 0,   /* the co-sell system knows it */
    DG_LOOKUP_NOT_FOUND,   /* looked up, unknown (by id), or nothing found by CRM id */
    DG_LOOKUP_FAILED,      /* the look-up itself failed (timeout, 5xx, auth, ...) */
    DG_LOOKUP_SKIPPED      /* no look-up was needed/possible */
} dg_lookup_status;

/* What the co-sell system said about one cloud of the deal. */
typedef struct {
    char *cloud;            /* cloud key */
    char *id;               /* registration id (the CRM's, or the one found by CRM id); NULL if none */
    int by_crm_id;          /* 1 if found/looked for by the CRM opportunity id */
    dg_lookup_status lookup;
    char *status;           /* the system's state (ACE ReviewStatus, PC substatus...); NULL if unknown */
    char *crm_id;           /* CRM id on the co-sell record; NULL if the record carries none */
    char *created_at;       /* RFC 3339, NULL if unknown */
    char *origin;           /* "partner" | "cloud" | NULL */
    char *source;           /* connector name: "ace", "partner_center", "gcp", "file", "none" */
    char *error;            /* one line, when lookup == DG_LOOKUP_FAILED; never a secret */
    int retryable;          /* failed look-up worth retrying (throttled, 5xx, timeout) */
} dg_reg_fact;

/* A deal-desk exception (POST /v1/overrides): rule `rule` allows this deal while
 * now < expires_at, with the warning `override` naming approver and reason. */
typedef struct {
    char *id;          /* "ov_" + 26 chars */
    char *rule;        /* rule name */
    char *approved_by; /* who approved it */
    char *reason;      /* why */
    int64_t expires_at; /* unix seconds; the override stops applying at this time */
} dg_override;

/* Everything the rules need besides the config and the event. */
typedef struct dg_facts {
    dg_reg_fact *regs;      /* one per cloud of the deal that was looked up */
    size_t nregs;
    char *last_stage;       /* the deal's last stage in the log (pipeline stage name), or NULL */
    char *last_stage_raw;   /* the raw CRM value it last arrived with, or NULL */
    int64_t retry_since;    /* unix seconds of the first retry answer for this deal, 0 if none */
    dg_override *overrides; /* the deal's overrides (expired ones are ignored by `now`) */
    size_t noverrides;
} dg_facts;

typedef struct {
    char *rule;     /* rule name ("" for pipeline-level reasons like stage_unknown) */
    char *code;     /* stable reason/warning code */
    char *cloud;    /* cloud key or NULL */
    char *message;  /* one line for a sales manager */
} dg_reason;

typedef enum { DG_OUTCOME_ALLOW = 0, DG_OUTCOME_BLOCK, DG_OUTCOME_RETRY } dg_outcome;

typedef struct dg_decision {
    dg_outcome outcome;     /* RETRY: answer 503 + Retry-After, nothing final */
    int allowed;            /* outcome == ALLOW */
    char *mode;             /* "enforce" | "report" (report when every gating rule reported) */
    char *message;          /* one line; "" when allowed */
    dg_reason *reasons;
    size_t nreasons;
    dg_reason *warnings;
    size_t nwarnings;
    char *pipeline;         /* resolved pipeline name ("default" for [pipeline]) */
    char *from_stage;       /* stage the move came from: the event's, else the log's; or NULL */
    char *to_stage;         /* resolved stage name or NULL (unknown) */
    char *revert_to;        /* stage name when blocked, else NULL */
    char *revert_to_raw;    /* CRM value for revert_to (last raw, first alias, or the name) */
    int gated;              /* 1 if at least one rule applied to this move */
    int retry_after_s;      /* when outcome == RETRY */
} dg_decision;

void dg_event_free(dg_event *e);
void dg_facts_free(dg_facts *f);
void dg_reg_fact_free(dg_reg_fact *r);
void dg_override_free(dg_override *o);
void dg_decision_free(dg_decision *d);

/* Frees nothing else; strdup that returns NULL for NULL. */
char *dg_strdup0(const char *s);

#endif
