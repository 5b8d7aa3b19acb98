/* fuzz_common.h — what the libFuzzer targets share: one config snapshot per process, the
 * rules run on a parsed event, and the invariants every parser of outside input keeps.
 *
 * Each fuzz_*.c includes this once (everything here is static). The config is loaded on the
 * first input and kept for the life of the process (libFuzzer runs every input in one
 * process): it is the only state a target keeps between inputs, and it is never written
 * after the load. A broken invariant calls fuzz_fail(), which prints and aborts, so
 * libFuzzer saves the input as a crash. Invariants checked:
 *   - error texts are one line of valid UTF-8: they go into JSON answers (where cJSON
 *     escapes control characters but copies any other byte as it is);
 *   - strings an upstream or a CRM handed in and that end up in a decision (facts' status,
 *     CRM id, dates, errors) are valid UTF-8 without control characters;
 *   - rules decisions are consistent (a block has a reason and a message).
 */
#ifndef DG_FUZZ_COMMON_H
#define DG_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "rules/model.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The configuration every target runs with: two pipelines with aliases, two rules (enforce
 * and report, match all and any, retry policy, amounts), comp settings with column names,
 * three clouds, Salesforce and HubSpot mappings. connector = none: no file, no network. */
static const char fuzz_ini[] =
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "data_dir = /nonexistent-fuzz\n"
    "currency = USD\n"
    "[auth]\n"
    "open = yes\n"
    "[pipeline]\n"
    "stages = Prospecting, Qualification, Demo, Proposal, Negotiation, Closed Won, Closed Lost\n"
    "won = Closed Won\n"
    "lost = Closed Lost\n"
    "unknown_stage = block\n"
    "alias.appointmentscheduled = Prospecting\n"
    "alias.qualifiedtobuy = Qualification\n"
    "alias.presentationscheduled = Demo\n"
    "alias.decisionmakerboughtin = Proposal\n"
    "alias.contractsent = Negotiation\n"
    "alias.closedwon = Closed Won\n"
    "alias.closedlost = Closed Lost\n"
    "[pipeline:emea]\n"
    "stages = Discovery, Demo, Proposal, Won, Lost\n"
    "won = Won\n"
    "lost = Lost\n"
    "unknown_stage = allow\n"
    "alias.1234567 = Discovery\n"
    "alias.1234568 = Demo\n"
    "[rule:demo-needs-registration]\n"
    "type = registration\n"
    "stage = Demo\n"
    "clouds = deal\n"
    "accept.aws = Submitted, In review, Approved\n"
    "accept.azure = Accepted, Won\n"
    "accept.gcp = QUALIFIED\n"
    "min_amount = 10000 USD\n"
    "min_amount.EUR = 9000\n"
    "on_lookup_error = block\n"
    "message = Register {deal} ({id}) in {cloud_name} before {stage}; rule {rule}, {cloud}.\n"
    "[rule:proposal-any]\n"
    "type = registration\n"
    "stage = Proposal\n"
    "pipelines = default, emea\n"
    "clouds = aws, azure\n"
    "require_clouds = yes\n"
    "match = any\n"
    "accept.aws = Approved\n"
    "accept.azure = Won\n"
    "require_link = yes\n"
    "on_lookup_error = retry\n"
    "retry_window_s = 60\n"
    "mode = report\n"
    "[comp]\n"
    "tolerance = 0.01\n"
    "rounding = half_up\n"
    "fee.aws = 3%\n"
    "fee.azure = 2.5%\n"
    "plan.default = 10%\n"
    "plan.enterprise = 0.12\n"
    "allow_uplift = no\n"
    "column.acv = Contract Value\n"
    "column.rep = Sales Rep\n"
    "[cloud:aws]\n"
    "name = AWS ACE\n"
    "connector = none\n"
    "[cloud:azure]\n"
    "name = Microsoft Partner Center\n"
    "connector = none\n"
    "[cloud:gcp]\n"
    "name = Google Cloud\n"
    "connector = none\n"
    "[salesforce]\n"
    "cloud.AWS = aws\n"
    "cloud.Azure = azure\n"
    "cloud.Google Cloud = gcp\n"
    "[hubspot]\n"
    "client_secret = fuzz-secret\n"
    "public_url = https://gate.example.com\n"
    "property.stage = dealstage\n"
    "property.amount = amount\n"
    "property.clouds = cloud_programs\n"
    "property.registration.aws = ace_opportunity_id\n"
    "property.registration.azure = pc_referral_id\n"
    "cloud.aws = aws\n"
    "cloud.Microsoft = azure\n";

static inline void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz invariant broken: %s: %.300s\n", what, detail ? detail : "(null)");
    abort();
}

static inline const struct cfg *fuzz_cfg(void)
{
    static struct cfg *c; /* loaded once, read-only afterwards */
    if (c == NULL) {
        cfg_errors errs = {0};
        if (cfg_load_string("fuzz.ini", fuzz_ini, &c, &errs) != DG_OK) {
            for (size_t i = 0; i < errs.lines.n; i++)
                fprintf(stderr, "%s\n", errs.lines.v[i]);
            fuzz_fail("the fuzz config does not load", "");
        }
    }
    return c;
}

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
static inline int fuzz_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k) return 0; /* needs k continuation bytes after s[i] */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A text that goes into a JSON answer or a log line: valid UTF-8, no control character. */
static inline void fuzz_check_text(const char *what, const char *s)
{
    if (s == NULL) return;
    size_t n = strlen(s);
    const char *bad = NULL;
    for (size_t i = 0; i < n && !bad; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) bad = "control character";
    if (!bad && !fuzz_utf8_ok((const unsigned char *)s, n)) bad = "invalid UTF-8";
    if (bad) {
        fprintf(stderr, "text: \"");
        for (size_t i = 0; i < n && i < 300; i++)
            fprintf(stderr,
                    (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? "\\x%02x" : "%c",
                    (unsigned char)s[i]);
        fprintf(stderr, "\"\n");
        fuzz_fail(what, bad);
    }
}

/* An error text that goes into a JSON answer (cJSON escapes control characters there, but
 * copies other bytes as they are): one line of valid UTF-8. */
static inline void fuzz_check_msg(const char *what, const char *s)
{
    if (s == NULL) return;
    if (strchr(s, '\n')) fuzz_fail(what, s);
    if (!fuzz_utf8_ok((const unsigned char *)s, strlen(s))) {
        fprintf(stderr, "text: %s\n", s);
        fuzz_fail(what, "invalid UTF-8");
    }
}

/* An upstream's fact: its strings are clean, its state consistent. */
static inline void fuzz_check_fact(const dg_reg_fact *f)
{
    fuzz_check_text("fact.id", f->id);
    fuzz_check_text("fact.status", f->status);
    fuzz_check_text("fact.crm_id", f->crm_id);
    fuzz_check_text("fact.created_at", f->created_at);
    fuzz_check_text("fact.origin", f->origin);
    fuzz_check_text("fact.error", f->error);
    if (f->lookup == DG_LOOKUP_FAILED && f->error == NULL) fuzz_fail("FAILED fact", "no error");
    if (f->origin && strcmp(f->origin, "partner") != 0 && strcmp(f->origin, "cloud") != 0)
        fuzz_fail("fact.origin", f->origin);
}

/* Runs the rules on a parsed event the way the pipeline does, with facts invented from the
 * event itself (found / not found / failed by the registration id's first byte), so that the
 * CRM-provided strings flow through rules and message templates. */
static inline void fuzz_decide(const struct cfg *c, const dg_event *ev)
{
    const char **clouds = NULL;
    size_t n = 0;
    dg_facts f = {0};
    dg_decision d = {0};
    char err[320] = "";
    static const char *const states[] = {"Approved", "Rejected", "Won", "QUALIFIED", "Submitted"};
    const char *last = ev->opp_id && ev->opp_id[0] == 'P' ? "Proposal" : NULL;
    if (rules_lookup_clouds(c, ev, last, &clouds, &n) != DG_OK) goto out;
    if (n) {
        f.regs = calloc(n, sizeof *f.regs);
        if (f.regs == NULL) goto out;
    }
    for (size_t i = 0; i < n; i++) {
        dg_reg_fact *r = &f.regs[i];
        const char *reg = NULL;
        for (size_t k = 0; k < ev->nregs; k++)
            if (strcmp(ev->regs[k].cloud, clouds[i]) == 0) reg = ev->regs[k].id;
        unsigned sel = reg && reg[0] ? (unsigned char)reg[0] : (unsigned)(ev->opp_id[0]);
        f.nregs++;
        r->cloud = strdup(clouds[i]);
        r->source = strdup("fuzz");
        r->id = reg ? strdup(reg) : NULL;
        r->by_crm_id = reg == NULL;
        switch (sel % 4) {
        case 0:
            r->lookup = DG_LOOKUP_NOT_FOUND;
            break;
        case 1:
            r->lookup = DG_LOOKUP_FAILED;
            r->error = strdup("fuzz: look-up failed");
            r->retryable = 1;
            break;
        default:
            r->lookup = DG_LOOKUP_FOUND;
            r->status = strdup(states[sel % 5]);
            r->crm_id = sel % 4 == 2 ? strdup(ev->opp_id) : NULL;
            r->created_at = strdup("2026-01-02T03:04:05Z");
            r->origin = strdup(sel & 8 ? "cloud" : "partner");
        }
    }
    dg_err rc = rules_decide(c, ev, &f, 1767225600, &d, err, sizeof err);
    if (rc == DG_OK) {
        if (d.allowed != (d.outcome == DG_OUTCOME_ALLOW)) fuzz_fail("decision", "allowed/outcome");
        if (d.outcome == DG_OUTCOME_BLOCK && (d.nreasons == 0 || !d.message || !*d.message))
            fuzz_fail("decision", "a block without a reason or message");
        fuzz_check_text("decision.message", d.message);
        for (size_t i = 0; i < d.nreasons; i++)
            fuzz_check_text("reason.message", d.reasons[i].message);
    } else {
        fuzz_check_text("rules_decide error", err);
    }
out:
    free(clouds);
    dg_facts_free(&f);
    dg_decision_free(&d);
}

/* A NUL-terminated copy of data (caller frees), or NULL. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        if (size) memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/* Splits data at the first `sep` byte: *a, *an = the part before, returns what follows
 * (and its length in *rest), or NULL when there is no sep (then *a is everything). */
static inline const uint8_t *fuzz_split(const uint8_t *data, size_t size, uint8_t sep, size_t *an,
                                        size_t *rest)
{
    const uint8_t *p = memchr(data, sep, size);
    if (p == NULL) {
        *an = size;
        *rest = 0;
        return NULL;
    }
    *an = (size_t)(p - data);
    *rest = size - *an - 1;
    return p + 1;
}

#endif
