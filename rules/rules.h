/* rules.h — pure evaluation of registration rules: (cfg, event, facts, now) -> decision.
 *
 * No I/O, no clock reads: the caller passes `now` and everything the connectors and the
 * decision log found. The semantics are DESIGN.md's "Canonical event and decision"; the
 * choices made where it is silent are in docs/internals/rules.md.
 */
#ifndef DG_RULES_H
#define DG_RULES_H

#include <stdint.h>

#include "config/cfg.h"
#include "config/err.h"
#include "rules/model.h"

/* Which clouds of event e need a registration look-up for this move, given the deal's last
 * stage from the log (NULL if none). Fills *clouds with cloud keys (borrowed from e, caller
 * frees only the array with free()) and *n. None when the move is not gated. Returns DG_OK
 * or DG_ENOMEM. */
dg_err rules_lookup_clouds(const struct cfg *c, const dg_event *e, const char *last_stage,
                           const char ***clouds, size_t *n);

/* 1 when deciding e needs the deal's last stage from the log: the event's from_stage is
 * missing or is no stage of its pipeline. 0 when the event alone says where the move comes
 * from (then rules_lookup_clouds and rules_decide ignore the last stage and its raw value). */
int rules_needs_last_stage(const struct cfg *c, const dg_event *e);

/* 1 when deciding needs facts->retry_since: a rule has on_lookup_error = retry and the
 * look-up of one of the clouds (as rules_lookup_clouds named them) failed or reported
 * nothing. Otherwise rules_decide never reads it. */
int rules_needs_retry_since(const struct cfg *c, const dg_facts *f, const char *const *clouds,
                            size_t nclouds);

/* Decides the move described by e. facts->regs holds one fact per cloud that
 * rules_lookup_clouds named (a cloud without a fact counts as a failed look-up).
 * `now` is unix seconds. Fills *out (caller frees with dg_decision_free()).
 * Returns DG_OK, DG_ENOMEM, or DG_EINVAL with a message naming the field
 * (e.g. an unknown pipeline). */
dg_err rules_decide(const struct cfg *c, const dg_event *e, const dg_facts *f, int64_t now,
                    dg_decision *out, char *err, size_t errlen);

/* The live override of f for rule `rule` at `now` (unix seconds): among f->overrides with
 * that rule name (exact) and now < expires_at, the one that expires last (the first of
 * equals). Borrowed from f; NULL when there is none. A rule that would block (or make the
 * CRM retry) a deal with a live override allows it instead, with the warning `override`. */
const dg_override *rules_override_find(const dg_facts *f, const char *rule, int64_t now);

/* Name of an outcome: "allow", "block", "retry". */
const char *rules_outcome_name(dg_outcome o);

#endif
