/* rules.c — registration rules: (cfg, event, facts, now) -> decision.
 *
 * A decision is made in three steps. First the move is resolved against its pipeline: the
 * stage it goes to, the stage it effectively comes from (the event's, else the deal's last
 * stage from the log, else "before every stage", which fails closed). Then every rule is
 * asked whether it gates this move (its pipelines, its stage, its amount threshold, the
 * deal's clouds) and, if so, each cloud it checks is judged from the connectors' facts:
 * pass, pass with a warning, fail with a reason, or retry later. Last, the rule results
 * are combined (match all|any per rule, report mode turns a block into a warning, any
 * enforced block blocks) and the revert target is picked. rules_lookup_clouds() runs the
 * first two steps without facts, so the gate looks up exactly what will be judged.
 * Nothing here reads a clock or does I/O; every choice DESIGN.md leaves open is written
 * down in docs/internals/rules.md.
 */
#include "rules/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rules/text.h"

#define RULES_RETRY_AFTER_S 30 /* Retry-After of a RETRY outcome, capped by the window left */

/* ---- growable list of reasons ------------------------------------------------------ */

typedef struct {
    dg_reason *v;
    size_t n, cap;
} reason_vec;

static void rv_free(reason_vec *rv)
{
    for (size_t i = 0; i < rv->n; i++) {
        free(rv->v[i].rule);
        free(rv->v[i].code);
        free(rv->v[i].cloud);
        free(rv->v[i].message);
    }
    free(rv->v);
    memset(rv, 0, sizeof *rv);
}

/* Appends a copy of (rule, code, cloud, message). Returns 0, or -1 when out of memory. */
static int rv_push(reason_vec *rv, const char *rule, const char *code, const char *cloud,
                   const char *message)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 4;
        dg_reason *v = realloc(rv->v, cap * sizeof *v);
        if (!v) return -1;
        rv->v = v;
        rv->cap = cap;
    }
    dg_reason r = {
        .rule = strdup(rule ? rule : ""),
        .code = strdup(code),
        .cloud = dg_strdup0(cloud),
        .message = strdup(message ? message : ""),
    };
    if (!r.rule || !r.code || (cloud && !r.cloud) || !r.message) {
        free(r.rule);
        free(r.code);
        free(r.cloud);
        free(r.message);
        return -1;
    }
    rv->v[rv->n++] = r;
    return 0;
}

/* Moves every entry of src to the end of dst (src ends empty). Returns 0 or -1. */
static int rv_move(reason_vec *dst, reason_vec *src)
{
    for (size_t i = 0; i < src->n; i++) {
        if (dst->n == dst->cap) {
            size_t cap = dst->cap ? dst->cap * 2 : 4;
            while (cap < dst->n + (src->n - i))
                cap *= 2;
            dg_reason *v = realloc(dst->v, cap * sizeof *v);
            if (!v) return -1; /* entries i.. stay owned by src */
            dst->v = v;
            dst->cap = cap;
        }
        dst->v[dst->n++] = src->v[i];
        memset(&src->v[i], 0, sizeof src->v[i]);
    }
    src->n = 0;
    return 0;
}

/* ---- small look-ups ---------------------------------------------------------------- */

static int is_empty(const char *s)
{
    return s == NULL || *s == '\0';
}

static int list_has(const cfg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0) return 1;
    return 0;
}

/* Case-insensitive equality ignoring surrounding blanks (states as systems report them). */
static int state_eq(const char *a, const char *b)
{
    while (*a == ' ' || *a == '\t')
        a++;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && (a[la - 1] == ' ' || a[la - 1] == '\t'))
        la--;
    while (lb > 0 && (b[lb - 1] == ' ' || b[lb - 1] == '\t'))
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int is_alnum_str(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
            return 0;
    }
    return 1;
}

/* Whether the CRM id on a co-sell record names deal `opp`. Salesforce ids come in a
 * case-sensitive 15-character form and an 18-character form (the 15 plus a checksum);
 * co-sell records hold either, so a 15/18 pair with the same first 15 characters matches. */
static int same_deal(const char *crm_id, const char *opp)
{
    if (strcmp(crm_id, opp) == 0) return 1;
    size_t a = strlen(crm_id), b = strlen(opp);
    if (!((a == 15 && b == 18) || (a == 18 && b == 15))) return 0;
    if (!is_alnum_str(crm_id, a) || !is_alnum_str(opp, b)) return 0;
    return memcmp(crm_id, opp, 15) == 0;
}

/* The pipeline an event names: NULL, "" and "default" are [pipeline]; else the
 * [pipeline:NAME] with that name (exact, else case-insensitive). NULL if there is none. */
static const cfg_pipeline *find_pipeline(const struct cfg *c, const char *name)
{
    if (c->npipelines == 0) return NULL;
    if (is_empty(name) || strcasecmp(name, "default") == 0) return &c->pipelines[0];
    for (size_t i = 1; i < c->npipelines; i++)
        if (c->pipelines[i].name && strcmp(c->pipelines[i].name, name) == 0)
            return &c->pipelines[i];
    for (size_t i = 1; i < c->npipelines; i++)
        if (c->pipelines[i].name && strcasecmp(c->pipelines[i].name, name) == 0)
            return &c->pipelines[i];
    return NULL;
}

static int pipeline_is_default(const struct cfg *c, const cfg_pipeline *p)
{
    return p == &c->pipelines[0];
}

static int stage_is_lost(const cfg_pipeline *p, int idx)
{
    return idx >= 0 && (size_t)idx < p->stages.n && list_has(&p->lost, p->stages.v[idx]);
}

static const cfg_cloud *find_cloud(const struct cfg *c, const char *key)
{
    for (size_t i = 0; i < c->nclouds; i++)
        if (c->clouds[i].key && strcasecmp(c->clouds[i].key, key) == 0) return &c->clouds[i];
    return NULL;
}

static const char *cloud_display(const struct cfg *c, const char *key)
{
    const cfg_cloud *cc = find_cloud(c, key);
    return cc && !is_empty(cc->name) ? cc->name : key;
}

/* Whether a found registration comes from a presence-only source (connector = none): it
 * proves an id is in the CRM, nothing about the registration's state or link. */
static int presence_only(const struct cfg *c, const char *key, const dg_reg_fact *fact)
{
    const cfg_cloud *cc = find_cloud(c, key);
    return (cc && cc->connector == CFG_CONN_NONE) ||
           (fact->source && strcmp(fact->source, "none") == 0);
}

static const dg_reg_fact *find_fact(const dg_facts *f, const char *key)
{
    if (!f) return NULL;
    for (size_t i = 0; i < f->nregs; i++)
        if (f->regs[i].cloud && strcasecmp(f->regs[i].cloud, key) == 0) return &f->regs[i];
    return NULL;
}

/* The registration id the CRM holds for this cloud, or NULL. */
static const char *event_reg_id(const dg_event *e, const char *key)
{
    for (size_t i = 0; i < e->nregs; i++)
        if (e->regs[i].cloud && strcasecmp(e->regs[i].cloud, key) == 0 && !is_empty(e->regs[i].id))
            return e->regs[i].id;
    return NULL;
}

static const cfg_accept *find_accept(const cfg_rule *r, const char *key)
{
    for (size_t i = 0; i < r->naccept; i++)
        if (r->accept[i].cloud && strcasecmp(r->accept[i].cloud, key) == 0) return &r->accept[i];
    return NULL;
}

/* ---- the move ---------------------------------------------------------------------- */

enum from_source { FROM_NONE = 0, FROM_EVENT, FROM_LOG };

typedef struct {
    const struct cfg *c;
    const dg_event *e;
    const cfg_pipeline *p;
    int to;               /* stage index; -1 when to_stage is not in the pipeline */
    int from;             /* effective from index; -1 = before every stage (fail closed) */
    int from_event;       /* index of the event's own from_stage, -1 if absent/unknown */
    int from_log;         /* index of the log's last stage, -1 if none/unknown */
    enum from_source src; /* where `from` came from */
} move;

/* Index in p of the event's own from_stage, -1 if absent or not a stage of p. */
static int event_from_index(const cfg_pipeline *p, const dg_event *e)
{
    return is_empty(e->from_stage) ? -1 : cfg_stage_index(p, e->from_stage);
}

/* Resolves e's stages in p. `last_stage` is the deal's last stage from the log or NULL.
 * A from stage that is a lost stage counts as before every stage: a deal reopened from
 * Closed Lost passes the gate again. */
static void move_resolve(move *m, const struct cfg *c, const dg_event *e, const cfg_pipeline *p,
                         const char *last_stage)
{
    memset(m, 0, sizeof *m);
    m->c = c;
    m->e = e;
    m->p = p;
    m->to = is_empty(e->to_stage) ? -1 : cfg_stage_index(p, e->to_stage);
    m->from_event = event_from_index(p, e);
    m->from_log = is_empty(last_stage) ? -1 : cfg_stage_index(p, last_stage);
    if (m->from_event >= 0) {
        m->src = FROM_EVENT;
        m->from = m->from_event;
    } else if (m->from_log >= 0) {
        m->src = FROM_LOG;
        m->from = m->from_log;
    } else {
        m->src = FROM_NONE;
        m->from = -1;
    }
    if (stage_is_lost(p, m->from)) m->from = -1;
}

/* The amount threshold of r for currency ccy: 1 and *min when there is one, 0 when none. */
static int rule_threshold(const cfg_rule *r, const char *ccy, int64_t *min)
{
    for (size_t i = 0; i < r->nmin_amount_ccy; i++)
        if (strcasecmp(r->min_amount_ccy[i].ccy, ccy) == 0) {
            *min = r->min_amount_ccy[i].minor;
            return 1;
        }
    if (r->has_min_amount && strcasecmp(r->min_amount.ccy, ccy) == 0) {
        *min = r->min_amount.minor;
        return 1;
    }
    return 0;
}

/* Whether r covers this move regardless of clouds: its pipelines, the move crossing into its
 * stage (or later) from before it, not into a lost stage, and the deal not below its amount
 * threshold. Returns the rule's stage index, or -1 when it does not cover the move. */
static int rule_covers(const move *m, const cfg_rule *r)
{
    const cfg_pipeline *p = m->p;
    if (r->type != CFG_RULE_REGISTRATION) return -1;
    if (!r->all_pipelines) {
        const char *pname = pipeline_is_default(m->c, p) ? "default" : p->name;
        int listed = 0;
        for (size_t i = 0; i < r->pipelines.n && !listed; i++)
            listed = strcmp(r->pipelines.v[i], pname) == 0;
        if (!listed) return -1;
    }
    int rs = is_empty(r->stage) ? -1 : cfg_stage_index(p, r->stage);
    if (rs < 0 || m->to < 0) return -1;
    if (m->to < rs || stage_is_lost(p, m->to)) return -1;
    if (m->from >= rs) return -1;

    int has_min = r->has_min_amount || r->nmin_amount_ccy > 0;
    if (has_min && m->e->has_amount) {
        int64_t min = 0;
        if (rule_threshold(r, m->e->currency, &min) && m->e->amount < min) return -1;
    }
    return rs;
}

/* Whether r checks the deal's i-th cloud (the first occurrence of a key only). */
static int rule_checks_cloud(const cfg_rule *r, const dg_event *e, size_t i)
{
    const char *key = e->clouds[i];
    if (is_empty(key)) return 0;
    for (size_t j = 0; j < i; j++)
        if (e->clouds[j] && strcasecmp(e->clouds[j], key) == 0) return 0;
    return r->clouds_deal || list_has(&r->clouds, key);
}

/* Whether r applies: it covers the move and has a cloud to check, or the deal names no
 * cloud and r requires one. */
static int rule_applies(const move *m, const cfg_rule *r)
{
    if (rule_covers(m, r) < 0) return 0;
    if (m->e->nclouds == 0) return r->require_clouds;
    for (size_t i = 0; i < m->e->nclouds; i++)
        if (rule_checks_cloud(r, m->e, i)) return 1;
    return 0;
}

int rules_needs_last_stage(const struct cfg *c, const dg_event *e)
{
    if (!c || !e) return 1;
    const cfg_pipeline *p = find_pipeline(c, e->pipeline);
    if (!p) return 0;                  /* rules_decide refuses the unknown pipeline */
    return event_from_index(p, e) < 0; /* move_resolve then takes the log's */
}

int rules_needs_retry_since(const struct cfg *c, const dg_facts *f, const char *const *clouds,
                            size_t nclouds)
{
    int retry = 0;
    for (size_t i = 0; c && i < c->nrules && !retry; i++)
        retry = c->rules[i].on_lookup_error == CFG_LOOKUP_RETRY;
    if (!retry) return 0;
    for (size_t i = 0; i < nclouds; i++) {
        const dg_reg_fact *fact = f ? find_fact(f, clouds[i]) : NULL;
        if (!fact || fact->lookup == DG_LOOKUP_FAILED) return 1;
    }
    return 0;
}

dg_err rules_lookup_clouds(const struct cfg *c, const dg_event *e, const char *last_stage,
                           const char ***clouds, size_t *n)
{
    *clouds = NULL;
    *n = 0;
    if (!c || !e || e->nclouds == 0) return DG_OK;
    const cfg_pipeline *p = find_pipeline(c, e->pipeline);
    if (!p) return DG_OK; /* rules_decide reports the unknown pipeline */
    move m;
    move_resolve(&m, c, e, p, last_stage);
    if (m.to < 0) return DG_OK;

    const char **out = NULL;
    size_t cnt = 0;
    for (size_t ri = 0; ri < c->nrules; ri++) {
        const cfg_rule *r = &c->rules[ri];
        if (!rule_applies(&m, r)) continue;
        for (size_t i = 0; i < e->nclouds; i++) {
            if (!rule_checks_cloud(r, e, i)) continue;
            int dup = 0;
            for (size_t k = 0; k < cnt; k++)
                if (strcasecmp(out[k], e->clouds[i]) == 0) dup = 1;
            if (dup) continue;
            if (!out) {
                out = calloc(e->nclouds, sizeof *out);
                if (!out) return DG_ENOMEM;
            }
            out[cnt++] = e->clouds[i];
        }
    }
    *clouds = out;
    *n = cnt;
    return DG_OK;
}

/* ---- judging one cloud ------------------------------------------------------------- */

typedef enum { CK_PASS = 0, CK_FAIL, CK_RETRY } ck_result;

/* One rule's evaluation state. */
typedef struct {
    const move *m;
    const dg_facts *f;
    int64_t now;
    const cfg_rule *r;
    reason_vec fails;   /* reasons of failing clouds */
    reason_vec warns;   /* warnings of passing clouds */
    reason_vec retries; /* failed look-ups being retried (code "lookup_retry") */
    int retry_after;    /* smallest Retry-After among retries */
    int oom;
} rule_eval;

static void re_push(rule_eval *re, reason_vec *rv, const char *code, const char *cloud,
                    rules_text *t)
{
    if (rv_push(rv, re->r->name, code, cloud, rules_text_str(t)) != 0) re->oom = 1;
}

static const char *deal_label(const dg_event *e)
{
    return is_empty(e->name) ? (e->opp_id ? e->opp_id : "") : e->name;
}

/* "the AWS ACE registration O123", or "the AWS ACE registration of deal 006..." */
static void add_reg_phrase(rules_text *t, const char *cname, const char *id, const char *opp)
{
    if (!is_empty(id))
        rules_text_addf(t, "the %s registration %s", cname, id);
    else
        rules_text_addf(t, "the %s registration of deal %s", cname, opp);
}

static void add_duration(rules_text *t, int s)
{
    if (s >= 120 && s % 60 == 0)
        rules_text_addf(t, "%d min", s / 60);
    else
        rules_text_addf(t, "%d s", s);
}

static void add_accepted_list(rules_text *t, const cfg_accept *acc)
{
    for (size_t i = 0; i < acc->states.n; i++) {
        if (i > 0) rules_text_add(t, i + 1 == acc->states.n ? " or " : ", ");
        rules_text_add(t, acc->states.v[i]);
    }
}

/* A look-up that failed (or never reported), judged by the rule's on_lookup_error. */
static ck_result judge_failed(rule_eval *re, const char *key, const char *cname, const char *id,
                              const dg_reg_fact *fact)
{
    const dg_event *e = re->m->e;
    const cfg_rule *r = re->r;
    const char *why =
        fact ? (is_empty(fact->error) ? "look-up failed" : fact->error) : "no look-up result";
    int retryable = fact ? fact->retryable : 1;
    rules_text t;
    rules_text_init(&t);
    rules_text_add(&t, "Could not verify ");
    add_reg_phrase(&t, cname, id, e->opp_id);
    rules_text_addf(&t, " (%s)", why);

    if (r->on_lookup_error == CFG_LOOKUP_ALLOW) {
        rules_text_add(&t, "; allowed by rule policy.");
        re_push(re, &re->warns, "lookup_failed_allowed", key, &t);
        return CK_PASS;
    }
    if (r->on_lookup_error == CFG_LOOKUP_RETRY) {
        int64_t elapsed = 0;
        if (re->f && re->f->retry_since > 0 && re->now > re->f->retry_since)
            elapsed = re->now - re->f->retry_since;
        int64_t window = r->retry_window_s > 0 ? r->retry_window_s : 0;
        if (retryable && elapsed < window) {
            int64_t left = window - elapsed;
            int after = left < RULES_RETRY_AFTER_S ? (int)left : RULES_RETRY_AFTER_S;
            if (after < 1) after = 1;
            if (re->retry_after == 0 || after < re->retry_after) re->retry_after = after;
            re_push(re, &re->retries, "lookup_retry", key, &t);
            return CK_RETRY;
        }
        if (retryable) {
            rules_text_add(&t, " for ");
            add_duration(&t, (int)window);
            rules_text_add(&t, "; blocked until it can be verified.");
        } else {
            rules_text_add(&t, "; retrying will not help, blocked until it can be verified.");
        }
        re_push(re, &re->fails, "registration_unverifiable", key, &t);
        return CK_FAIL;
    }
    rules_text_add(&t, "; blocked until it can be verified.");
    re_push(re, &re->fails, "registration_unverifiable", key, &t);
    return CK_FAIL;
}

static ck_result judge_missing(rule_eval *re, const char *key, const char *cname)
{
    const move *m = re->m;
    const cfg_rule *r = re->r;
    rules_text_vars v = {
        .cloud = key,
        .cloud_name = cname,
        .stage = m->p->stages.v[m->to],
        .deal = deal_label(m->e),
        .id = m->e->opp_id,
        .rule = r->name,
    };
    rules_text t;
    rules_text_init(&t);
    rules_text_template(&t,
                        is_empty(r->message)
                            ? "Register this deal in {cloud_name} before moving to {stage}."
                            : r->message,
                        &v);
    re_push(re, &re->fails, "registration_missing", key, &t);
    return CK_FAIL;
}

/* Judges cloud `key` of the deal for rule re->r. */
static ck_result judge_cloud(rule_eval *re, const char *key)
{
    const move *m = re->m;
    const dg_event *e = m->e;
    const cfg_rule *r = re->r;
    const char *cname = cloud_display(m->c, key);
    const dg_reg_fact *fact = find_fact(re->f, key);
    const char *crm_reg = event_reg_id(e, key);
    const char *id = fact && !is_empty(fact->id) ? fact->id : crm_reg;
    const char *stage = m->p->stages.v[m->to];
    rules_text t;
    rules_text_init(&t);

    if (!fact || fact->lookup == DG_LOOKUP_FAILED) return judge_failed(re, key, cname, id, fact);

    if (fact->lookup == DG_LOOKUP_SKIPPED) /* presence only (connector = none) */
        return is_empty(id) ? judge_missing(re, key, cname) : CK_PASS;

    if (fact->lookup == DG_LOOKUP_NOT_FOUND) {
        const char *held =
            crm_reg ? crm_reg : (!fact->by_crm_id && !is_empty(fact->id) ? fact->id : NULL);
        if (!held) return judge_missing(re, key, cname);
        rules_text_addf(&t, "%s has no registration %s", cname, held);
        if (!is_empty(fact->error)) rules_text_addf(&t, " (%s)", fact->error);
        rules_text_addf(&t, "; correct the registration id on the deal before moving to %s.",
                        stage);
        re_push(re, &re->fails, "registration_not_found", key, &t);
        return CK_FAIL;
    }

    /* DG_LOOKUP_FOUND */
    if (presence_only(m->c, key, fact)) return CK_PASS;
    if (!is_empty(fact->crm_id) && !same_deal(fact->crm_id, e->opp_id)) {
        if (is_empty(id))
            rules_text_addf(&t, "The %s registration found for deal %s", cname, e->opp_id);
        else
            rules_text_addf(&t, "%s registration %s", cname, id);
        rules_text_addf(&t, " belongs to deal %s, not %s.", fact->crm_id, e->opp_id);
        re_push(re, &re->fails, "registration_mismatch", key, &t);
        return CK_FAIL;
    }
    /* No accept.<cloud> list: no state counts (cfg warns about it at load). */
    const cfg_accept *acc = find_accept(r, key);
    int accepted = 0;
    for (size_t i = 0; acc && !is_empty(fact->status) && i < acc->states.n; i++)
        if (state_eq(acc->states.v[i], fact->status)) accepted = 1;
    if (!accepted) {
        if (is_empty(id))
            rules_text_addf(&t, "%s registration of deal %s", cname, e->opp_id);
        else
            rules_text_addf(&t, "%s registration %s", cname, id);
        if (is_empty(fact->status))
            rules_text_add(&t, " has no status");
        else
            rules_text_addf(&t, " is %s", fact->status);
        if (acc) {
            rules_text_addf(&t, "; moving to %s needs ", stage);
            add_accepted_list(&t, acc);
            rules_text_add(&t, ".");
        } else {
            rules_text_addf(&t,
                            "; rule %s accepts no %s state (no accept.%s): ask the deal "
                            "desk.",
                            r->name, cname, key);
        }
        re_push(re, &re->fails, "registration_not_accepted", key, &t);
        return CK_FAIL;
    }
    if (is_empty(fact->crm_id)) {
        if (r->require_link) {
            rules_text_addf(&t,
                            "%s registration %s carries no CRM id; record %s on it in %s "
                            "to show it belongs to this deal.",
                            cname, is_empty(id) ? "(no id)" : id, e->opp_id, cname);
            re_push(re, &re->fails, "registration_unlinked", key, &t);
            return CK_FAIL;
        }
        rules_text_addf(&t,
                        "%s registration %s carries no CRM id, so it is not proven to "
                        "belong to deal %s.",
                        cname, is_empty(id) ? "(no id)" : id, e->opp_id);
        re_push(re, &re->warns, "registration_unlinked", key, &t);
    }
    return CK_PASS;
}

/* ---- one rule ---------------------------------------------------------------------- */

typedef enum { RS_PASS = 0, RS_BLOCK, RS_RETRY } rule_status;

/* Evaluates rule re->r (which applies to the move) into re's vectors. */
static rule_status rule_eval_run(rule_eval *re)
{
    const move *m = re->m;
    const dg_event *e = m->e;
    const cfg_rule *r = re->r;

    if (e->nclouds == 0) { /* rule_applies(): only here when require_clouds = yes */
        rules_text t;
        rules_text_init(&t);
        rules_text_addf(&t,
                        "The deal names no co-sell cloud; set its cloud programs before "
                        "moving to %s.",
                        m->p->stages.v[m->to]);
        re_push(re, &re->fails, "clouds_missing", NULL, &t);
        return RS_BLOCK;
    }

    size_t npass = 0, nfail = 0, nretry = 0;
    for (size_t i = 0; i < e->nclouds && !re->oom; i++) {
        if (!rule_checks_cloud(r, e, i)) continue;
        ck_result ck = judge_cloud(re, e->clouds[i]);
        if (ck == CK_PASS)
            npass++;
        else if (ck == CK_FAIL)
            nfail++;
        else
            nretry++;
    }

    if (r->match_all) {
        if (nfail > 0) return RS_BLOCK;
        if (nretry > 0) return RS_RETRY;
        return RS_PASS;
    }
    /* match = any: one passing cloud is enough; the others' reasons are dropped */
    if (npass > 0) {
        rv_free(&re->fails);
        rv_free(&re->retries);
        return RS_PASS;
    }
    if (nretry > 0) return RS_RETRY;
    return RS_BLOCK;
}

/* ---- overrides --------------------------------------------------------------------- */

const dg_override *rules_override_find(const dg_facts *f, const char *rule, int64_t now)
{
    const dg_override *best = NULL;
    if (!f || !rule) return NULL;
    for (size_t i = 0; i < f->noverrides; i++) {
        const dg_override *o = &f->overrides[i];
        if (!o->rule || strcmp(o->rule, rule) != 0 || now >= o->expires_at) continue;
        if (!best || o->expires_at > best->expires_at) best = o;
    }
    return best;
}

/* Replaces rule re->r's block or retry by the warning `override` of ov: "Allowed by
 * override ov_X (approved by A until T; would block: CODES): REASON". */
static void override_apply(rule_eval *re, const dg_override *ov, rule_status st)
{
    rules_text t;
    rules_text_init(&t);
    char until[32] = "?";
    time_t exp = (time_t)ov->expires_at;
    struct tm tm;
    if (gmtime_r(&exp, &tm))
        snprintf(until, sizeof until, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tm.tm_year + 1900) % 10000,
                 (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                 tm.tm_sec % 100);
    rules_text_addf(&t, "Allowed by override %s (approved by %s until %s; would %s: ",
                    is_empty(ov->id) ? "(no id)" : ov->id,
                    is_empty(ov->approved_by) ? "(unknown)" : ov->approved_by, until,
                    st == RS_RETRY ? "wait for" : "block");
    const reason_vec *rv = st == RS_RETRY ? &re->retries : &re->fails;
    size_t shown = 0;
    for (size_t i = 0; i < rv->n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= strcmp(rv->v[j].code, rv->v[i].code) == 0;
        if (dup) continue;
        rules_text_addf(&t, "%s%s", shown++ ? ", " : "", rv->v[i].code);
    }
    rules_text_addf(&t, "): %s", is_empty(ov->reason) ? "(no reason)" : ov->reason);
    re_push(re, &re->warns, "override", NULL, &t);
    rv_free(&re->fails);
    rv_free(&re->retries);
}

/* ---- the decision ------------------------------------------------------------------ */

static void add_unknown_stage(rules_text *t, const move *m)
{
    const char *pname = pipeline_is_default(m->c, m->p) ? "default" : m->p->name;
    rules_text_addf(t, "Stage \"%s\" is not configured in dealgate (pipeline %s)",
                    m->e->to_stage ? m->e->to_stage : "", pname);
}

/* First alias listed for stage idx in p, else its name. */
static const char *stage_raw(const cfg_pipeline *p, int idx)
{
    for (size_t i = 0; i < p->naliases; i++)
        if (p->aliases[i].stage == (size_t)idx && !is_empty(p->aliases[i].raw))
            return p->aliases[i].raw;
    return p->stages.v[idx];
}

/* Picks revert_to / revert_to_raw for a block; block_stage is the earliest enforced
 * blocking rule's stage index, -1 for a pipeline-level block. Returns 0 or -1 (memory). */
static int pick_revert(dg_decision *out, const move *m, const dg_facts *f, int block_stage)
{
    const cfg_pipeline *p = m->p;
    const char *to = NULL, *raw = NULL;
    if (m->from_event >= 0) {
        to = p->stages.v[m->from_event];
        raw = m->e->from_stage;
    } else if (m->from_log >= 0) {
        to = p->stages.v[m->from_log];
        raw = f && !is_empty(f->last_stage_raw) ? f->last_stage_raw : stage_raw(p, m->from_log);
    } else if (block_stage > 0) {
        int idx = block_stage - 1;
        while (idx >= 0 && stage_is_lost(p, idx))
            idx--;
        if (idx >= 0) {
            to = p->stages.v[idx];
            raw = stage_raw(p, idx);
        }
    }
    if (!to) return 0;
    out->revert_to = strdup(to);
    out->revert_to_raw = strdup(raw);
    return out->revert_to && out->revert_to_raw ? 0 : -1;
}

/* Copies a vector into a decision's (array, count) pair. */
static void rv_give(reason_vec *rv, dg_reason **v, size_t *n)
{
    *v = rv->v;
    *n = rv->n;
    memset(rv, 0, sizeof *rv);
}

/* The decision's one line: the first message (plus `suffix`), then " (+N more)". */
static char *summary(const reason_vec *rv, const char *suffix)
{
    rules_text t;
    rules_text_init(&t);
    if (rv->n > 0) rules_text_add(&t, rv->v[0].message);
    rules_text_add(&t, suffix);
    if (rv->n > 1) {
        /* keep " (+N more)" whole even when the first message fills the buffer */
        char more[32];
        int k = snprintf(more, sizeof more, " (+%zu more)", rv->n - 1);
        if (k > 0 && t.len + (size_t)k > RULES_TEXT_MAX - 1) {
            size_t len = RULES_TEXT_MAX - 1 - (size_t)k;
            while (len > 0 && ((unsigned char)t.s[len] & 0xC0) == 0x80)
                len--;
            t.len = len;
            t.s[len] = '\0';
            t.cut = 0;
        }
        rules_text_add(&t, more);
    }
    return strdup(rules_text_str(&t));
}

dg_err rules_decide(const struct cfg *c, const dg_event *e, const dg_facts *f, int64_t now,
                    dg_decision *out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    reason_vec reasons = {0}, warnings = {0}, retries = {0};
    if (out) memset(out, 0, sizeof *out);
    if (!c || !e || !out) return dg_errf(err, errlen, DG_EINVAL, "rules_decide: missing argument");
    if (is_empty(e->opp_id)) return dg_errf(err, errlen, DG_EINVAL, "opportunity.id: required");
    if (is_empty(e->to_stage)) return dg_errf(err, errlen, DG_EINVAL, "to_stage: required");
    const cfg_pipeline *p = find_pipeline(c, e->pipeline);
    if (!p)
        return dg_errf(err, errlen, DG_EINVAL,
                       "pipeline: unknown pipeline \"%.64s\" (no [pipeline:%.64s] section)",
                       e->pipeline, e->pipeline);

    move m;
    move_resolve(&m, c, e, p, f ? f->last_stage : NULL);

    out->pipeline = strdup(pipeline_is_default(c, p) ? "default" : p->name);
    if (!out->pipeline) goto done;
    /* The stage the move came from as used: the event's, else the deal's last from the log. */
    int from_shown = m.from_event >= 0 ? m.from_event : m.from_log;
    if (from_shown >= 0 && !(out->from_stage = strdup(p->stages.v[from_shown]))) goto done;
    if (m.to >= 0 && !(out->to_stage = strdup(p->stages.v[m.to]))) goto done;

    int block = 0, block_stage = -1, retry = 0, retry_after = 0;
    int would_block_enforce = 0, would_block_report = 0;

    if (m.to < 0) {
        rules_text t;
        rules_text_init(&t);
        add_unknown_stage(&t, &m);
        if (p->unknown_block) {
            rules_text_add(&t, "; ask the deal desk to add it.");
            if (rv_push(&reasons, "", "stage_unknown", NULL, rules_text_str(&t)) != 0) goto done;
            block = 1;
            would_block_enforce = 1;
        } else {
            rules_text_add(&t, "; allowed without checks.");
            if (rv_push(&warnings, "", "stage_unknown", NULL, rules_text_str(&t)) != 0) goto done;
        }
    } else {
        for (size_t ri = 0; ri < c->nrules; ri++) {
            const cfg_rule *r = &c->rules[ri];
            if (!rule_applies(&m, r)) continue;
            out->gated = 1;
            rule_eval re = {.m = &m, .f = f, .now = now, .r = r};
            rule_status st = rule_eval_run(&re);
            int ok = !re.oom;
            const dg_override *ov =
                ok && st != RS_PASS ? rules_override_find(f, r->name, now) : NULL;
            if (ov) {
                /* a deal-desk exception: the rule allows, whatever its mode */
                override_apply(&re, ov, st);
                ok = !re.oom;
            } else if (ok && r->mode == CFG_MODE_REPORT) {
                /* report mode: a would-be block or retry becomes a warning */
                for (size_t i = 0; ok && st == RS_BLOCK && i < re.fails.n; i++) {
                    rules_text t;
                    rules_text_init(&t);
                    rules_text_addf(&t, "Would block (%s): %s", re.fails.v[i].code,
                                    re.fails.v[i].message);
                    ok = rv_push(&re.warns, r->name, "report_only", re.fails.v[i].cloud,
                                 rules_text_str(&t)) == 0;
                }
                for (size_t i = 0; ok && st == RS_RETRY && i < re.retries.n; i++) {
                    rules_text t;
                    rules_text_init(&t);
                    rules_text_addf(&t, "%s; allowed in report mode.", re.retries.v[i].message);
                    ok = rv_push(&re.warns, r->name, "lookup_failed_allowed", re.retries.v[i].cloud,
                                 rules_text_str(&t)) == 0;
                }
                if (st == RS_BLOCK) would_block_report = 1;
            } else if (ok && st == RS_BLOCK) {
                would_block_enforce = 1;
                block = 1;
                int rs = cfg_stage_index(p, r->stage);
                if (block_stage < 0 || rs < block_stage) block_stage = rs;
                ok = rv_move(&reasons, &re.fails) == 0;
            } else if (ok && st == RS_RETRY) {
                would_block_enforce = 1; /* not final, but never a report-mode decision */
                retry = 1;
                if (retry_after == 0 || re.retry_after < retry_after) retry_after = re.retry_after;
                ok = rv_move(&retries, &re.retries) == 0;
            }
            if (ok) ok = rv_move(&warnings, &re.warns) == 0;
            rv_free(&re.fails);
            rv_free(&re.warns);
            rv_free(&re.retries);
            if (!ok) goto done;
        }
    }

    if (block) {
        out->outcome = DG_OUTCOME_BLOCK;
        out->message = summary(&reasons, NULL);
        if (pick_revert(out, &m, f, block_stage) != 0) goto done;
    } else if (retry) {
        out->outcome = DG_OUTCOME_RETRY;
        out->retry_after_s = retry_after > 0 ? retry_after : RULES_RETRY_AFTER_S;
        char suffix[48];
        snprintf(suffix, sizeof suffix, "; try again in %d s.", out->retry_after_s);
        out->message = summary(&retries, suffix);
    } else {
        out->outcome = DG_OUTCOME_ALLOW;
        out->message = strdup("");
    }
    out->allowed = out->outcome == DG_OUTCOME_ALLOW;
    out->mode = strdup(would_block_report && !would_block_enforce ? "report" : "enforce");
    if (!out->message || !out->mode) goto done;
    rv_give(&reasons, &out->reasons, &out->nreasons);
    rv_give(&warnings, &out->warnings, &out->nwarnings);
    rc = DG_OK;
done:
    rv_free(&reasons);
    rv_free(&warnings);
    rv_free(&retries);
    if (rc != DG_OK) {
        dg_decision_free(out);
        dg_errf(err, errlen, rc, "rules_decide: out of memory");
    }
    return rc;
}

const char *rules_outcome_name(dg_outcome o)
{
    switch (o) {
    case DG_OUTCOME_ALLOW:
        return "allow";
    case DG_OUTCOME_BLOCK:
        return "block";
    case DG_OUTCOME_RETRY:
        return "retry";
    }
    return "unknown";
}
