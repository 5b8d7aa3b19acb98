/* model.c — constructors and destructors of the shared domain structs. */
#include "rules/model.h"

#include <stdlib.h>
#include <string.h>

char *dg_strdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

void dg_event_free(dg_event *e)
{
    if (!e) return;
    free(e->event_id);
    free(e->opp_id);
    free(e->name);
    free(e->account);
    free(e->owner);
    free(e->pipeline);
    free(e->source);
    for (size_t i = 0; i < e->nclouds; i++) free(e->clouds[i]);
    free(e->clouds);
    for (size_t i = 0; i < e->nregs; i++) {
        free(e->regs[i].cloud);
        free(e->regs[i].id);
    }
    free(e->regs);
    free(e->from_stage);
    free(e->to_stage);
    memset(e, 0, sizeof *e);
}

void dg_reg_fact_free(dg_reg_fact *r)
{
    if (!r) return;
    free(r->cloud);
    free(r->id);
    free(r->status);
    free(r->crm_id);
    free(r->created_at);
    free(r->origin);
    free(r->source);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void dg_override_free(dg_override *o)
{
    if (!o) return;
    free(o->id);
    free(o->rule);
    free(o->approved_by);
    free(o->reason);
    memset(o, 0, sizeof *o);
}

void dg_facts_free(dg_facts *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->nregs; i++) dg_reg_fact_free(&f->regs[i]);
    free(f->regs);
    for (size_t i = 0; i < f->noverrides; i++) dg_override_free(&f->overrides[i]);
    free(f->overrides);
    free(f->last_stage);
    free(f->last_stage_raw);
    memset(f, 0, sizeof *f);
}

static void reasons_free(dg_reason *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].rule);
        free(r[i].code);
        free(r[i].cloud);
        free(r[i].message);
    }
    free(r);
}

void dg_decision_free(dg_decision *d)
{
    if (!d) return;
    free(d->mode);
    free(d->message);
    reasons_free(d->reasons, d->nreasons);
    reasons_free(d->warnings, d->nwarnings);
    free(d->pipeline);
    free(d->from_stage);
    free(d->to_stage);
    free(d->revert_to);
    free(d->revert_to_raw);
    memset(d, 0, sizeof *d);
}
