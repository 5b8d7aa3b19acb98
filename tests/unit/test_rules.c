/* test_rules.c — the registration-rule engine: every reason and warning code, stage order,
 * pipelines, clouds, amounts, look-up failure policies, report mode, messages, revert_to.
 *
 * Each test loads its own configuration with cfg_load_string() (a shared base plus the
 * rule sections under test), builds an event and the connectors' facts by hand, and checks
 * the decision rules_decide() makes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/cfg.h"
#include "rules/model.h"
#include "rules/rules.h"
#include "rules/text.h"

#define NOW 1800000000LL

static const char BASE[] =
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "currency = USD\n"
    "\n"
    "[auth]\n"
    "open = yes\n"
    "\n"
    "[pipeline]\n"
    "stages = Prospecting, Qualification, Demo, Proposal, Negotiation, Closed Won, Closed Lost\n"
    "won = Closed Won\n"
    "lost = Closed Lost\n"
    "unknown_stage = block\n"
    "alias.appointmentscheduled = Prospecting\n"
    "alias.qualifiedtobuy = Qualification\n"
    "alias.presentationscheduled = Demo\n"
    "alias.demo_booked = Demo\n"
    "alias.closedwon = Closed Won\n"
    "alias.closedlost = Closed Lost\n"
    "\n"
    "[pipeline:partner]\n"
    "stages = Intake, Qualified, Demo, Won, Lost\n"
    "won = Won\n"
    "lost = Lost\n"
    "unknown_stage = allow\n"
    "alias.p_intake = Intake\n"
    "\n"
    "[pipeline:odd]\n"
    "stages = Start, Dropped, Demo, Contract, Signed\n"
    "won = Signed\n"
    "lost = Dropped\n"
    "\n"
    "[cloud:aws]\n"
    "name = AWS ACE\n"
    "connector = file\n"
    "path = registrations.csv\n"
    "\n"
    "[cloud:azure]\n"
    "name = Microsoft Partner Center\n"
    "connector = file\n"
    "path = registrations.csv\n"
    "\n"
    "[cloud:gcp]\n"
    "name = Google Cloud Partner Advantage\n"
    "connector = file\n"
    "path = registrations.csv\n"
    "\n"
    "[cloud:crm]\n"
    "name = CRM field\n"
    "connector = none\n"
    "\n";

/* The rule most tests use; %s slots let a test add keys. */
static const char DEMO_RULE[] =
    "[rule:demo-needs-registration]\n"
    "type = registration\n"
    "stage = Demo\n"
    "accept.aws = Submitted, In review, Approved\n"
    "accept.azure = Accepted, Won\n"
    "message = Register this deal in {cloud_name} before moving to {stage}.\n";

/* ---- helpers ---------------------------------------------------------------------- */

static struct cfg *load(const char *rules)
{
    size_t n = strlen(BASE) + strlen(rules) + 1;
    char *text = malloc(n);
    assert_non_null(text);
    snprintf(text, n, "%s%s", BASE, rules);
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    dg_err rc = cfg_load_string("test.ini", text, &c, &errs);
    if (rc != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        cfg_errors_free(&errs);
        free(text);
        fail_msg("configuration refused");
    }
    cfg_errors_free(&errs);
    free(text);
    assert_non_null(c);
    return c;
}

/* Builds a rule config: DEMO_RULE followed by extra lines (inside the same section). */
static struct cfg *load_demo(const char *extra)
{
    size_t n = strlen(DEMO_RULE) + strlen(extra) + 1;
    char *text = malloc(n);
    assert_non_null(text);
    snprintf(text, n, "%s%s", DEMO_RULE, extra);
    struct cfg *c = load(text);
    free(text);
    return c;
}

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* clouds: "aws,azure" or NULL; regs: "aws=O123,azure=R9" or NULL. */
static void ev(dg_event *e, const char *from, const char *to, const char *clouds, const char *regs)
{
    memset(e, 0, sizeof *e);
    e->opp_id = xstrdup("006Dn00000AbCdE");
    e->name = xstrdup("Acme - Data Platform");
    e->from_stage = xstrdup(from);
    e->to_stage = xstrdup(to);
    memcpy(e->currency, "USD", 4);
    for (const char *p = clouds; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        e->clouds = realloc(e->clouds, (e->nclouds + 1) * sizeof *e->clouds);
        assert_non_null(e->clouds);
        e->clouds[e->nclouds] = strndup(p, len);
        assert_non_null(e->clouds[e->nclouds]);
        e->nclouds++;
        p = end ? end + 1 : p + len;
    }
    for (const char *p = regs; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        assert_non_null(eq);
        e->regs = realloc(e->regs, (e->nregs + 1) * sizeof *e->regs);
        assert_non_null(e->regs);
        e->regs[e->nregs].cloud = strndup(p, (size_t)(eq - p));
        e->regs[e->nregs].id = strndup(eq + 1, len - (size_t)(eq - p) - 1);
        e->nregs++;
        p = end ? end + 1 : p + len;
    }
}

static void amount(dg_event *e, int64_t minor, const char *ccy)
{
    e->has_amount = 1;
    e->amount = minor;
    memcpy(e->currency, ccy, 4);
}

/* Adds a fact; the returned pointer is valid until the next fact() on f. */
static dg_reg_fact *fact(dg_facts *f, const char *cloud, dg_lookup_status st, const char *id,
                         const char *status, const char *crm_id)
{
    f->regs = realloc(f->regs, (f->nregs + 1) * sizeof *f->regs);
    assert_non_null(f->regs);
    dg_reg_fact *r = &f->regs[f->nregs++];
    memset(r, 0, sizeof *r);
    r->cloud = xstrdup(cloud);
    r->lookup = st;
    r->id = xstrdup(id);
    r->status = xstrdup(status);
    r->crm_id = xstrdup(crm_id);
    r->source = xstrdup("file");
    return r;
}

static dg_reg_fact *failed(dg_facts *f, const char *cloud, const char *id, const char *error,
                           int retryable)
{
    dg_reg_fact *r = fact(f, cloud, DG_LOOKUP_FAILED, id, NULL, NULL);
    r->error = xstrdup(error);
    r->retryable = retryable;
    return r;
}

static void history(dg_facts *f, const char *last, const char *raw)
{
    f->last_stage = xstrdup(last);
    f->last_stage_raw = xstrdup(raw);
}

static void decide(const struct cfg *c, const dg_event *e, const dg_facts *f, int64_t now,
                   dg_decision *d)
{
    char err[256] = "";
    dg_err rc = rules_decide(c, e, f, now, d, err, sizeof err);
    if (rc != DG_OK) fail_msg("rules_decide: %s (%s)", dg_err_name(rc), err);
    assert_non_null(d->mode);
    assert_non_null(d->message);
    assert_non_null(d->pipeline);
    assert_int_equal(d->allowed, d->outcome == DG_OUTCOME_ALLOW);
}

static const dg_reason *find(const dg_reason *v, size_t n, const char *code, const char *cloud)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].code, code) != 0) continue;
        if (cloud == NULL ? v[i].cloud == NULL : (v[i].cloud && strcmp(v[i].cloud, cloud) == 0))
            return &v[i];
    }
    return NULL;
}

static const dg_reason *reason(const dg_decision *d, const char *code, const char *cloud)
{
    return find(d->reasons, d->nreasons, code, cloud);
}

static const dg_reason *warning(const dg_decision *d, const char *code, const char *cloud)
{
    return find(d->warnings, d->nwarnings, code, cloud);
}

static void assert_contains(const char *hay, const char *needle)
{
    assert_non_null(hay);
    if (!strstr(hay, needle)) fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void assert_allowed_clean(const dg_decision *d)
{
    assert_int_equal(d->outcome, DG_OUTCOME_ALLOW);
    assert_string_equal(d->message, "");
    assert_int_equal(d->nreasons, 0);
    assert_null(d->revert_to);
    assert_null(d->revert_to_raw);
}

static void assert_blocked_one(const dg_decision *d, const char *rule, const char *code,
                               const char *cloud)
{
    assert_int_equal(d->outcome, DG_OUTCOME_BLOCK);
    assert_int_equal(d->allowed, 0);
    assert_string_equal(d->mode, "enforce");
    assert_int_equal(d->nreasons, 1);
    const dg_reason *r = reason(d, code, cloud);
    if (!r) fail_msg("no reason %s (first: %s)", code, d->reasons[0].code);
    assert_string_equal(r->rule, rule);
    assert_string_equal(d->message, r->message);
}

/* Runs one decision for the demo rule + extra keys, with a single aws fact. */
typedef struct {
    struct cfg *c;
    dg_event e;
    dg_facts f;
    dg_decision d;
} fx;

static void fx_free(fx *x)
{
    dg_decision_free(&x->d);
    dg_facts_free(&x->f);
    dg_event_free(&x->e);
    cfg_free(x->c);
}

/* ---- outcome names ------------------------------------------------------------------- */

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(rules_outcome_name(DG_OUTCOME_ALLOW), "allow");
    assert_string_equal(rules_outcome_name(DG_OUTCOME_BLOCK), "block");
    assert_string_equal(rules_outcome_name(DG_OUTCOME_RETRY), "retry");
    assert_string_equal(rules_outcome_name((dg_outcome)42), "unknown");
}

/* ---- reason codes -------------------------------------------------------------------- */

static void test_registered_and_accepted(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O1234567");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O1234567", "Approved", "006Dn00000AbCdE");
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    assert_int_equal(x.d.nwarnings, 0);
    assert_int_equal(x.d.gated, 1);
    assert_string_equal(x.d.mode, "enforce");
    assert_string_equal(x.d.pipeline, "default");
    assert_string_equal(x.d.from_stage, "Qualification");
    assert_string_equal(x.d.to_stage, "Demo");
    fx_free(&x);
}

static void test_registration_missing(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", NULL);
    dg_reg_fact *r = fact(&x.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    r->by_crm_id = 1;
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_missing", "aws");
    assert_string_equal(x.d.message, "Register this deal in AWS ACE before moving to Demo.");
    assert_string_equal(x.d.revert_to, "Qualification");
    assert_string_equal(x.d.revert_to_raw, "Qualification");
    assert_int_equal(x.d.gated, 1);
    fx_free(&x);
}

static void test_registration_not_found(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O999");
    fact(&x.f, "aws", DG_LOOKUP_NOT_FOUND, "O999", NULL, NULL);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_not_found", "aws");
    assert_string_equal(x.d.message, "AWS ACE has no registration O999; correct the registration "
                                     "id on the deal before moving to Demo.");
    fx_free(&x);

    /* a syntax error found before any call is named */
    fx v = {.c = load_demo("")};
    ev(&v.e, "Qualification", "Demo", "aws", "aws=abc");
    fact(&v.f, "aws", DG_LOOKUP_NOT_FOUND, "abc", NULL, NULL)->error = xstrdup("invalid ACE id");
    decide(v.c, &v.e, &v.f, NOW, &v.d);
    assert_blocked_one(&v.d, "demo-needs-registration", "registration_not_found", "aws");
    assert_contains(v.d.message, "AWS ACE has no registration abc (invalid ACE id); correct");
    fx_free(&v);

    /* the connector reports the id it looked for, the event carries none: still the CRM's */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", NULL);
    fact(&y.f, "aws", DG_LOOKUP_NOT_FOUND, "O777", NULL, NULL);
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_not_found", "aws");
    assert_contains(y.d.message, "O777");
    fx_free(&y);
}

static void test_registration_not_accepted(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O123", "Rejected", "006Dn00000AbCdE");
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_not_accepted", "aws");
    assert_string_equal(x.d.message, "AWS ACE registration O123 is Rejected; moving to Demo "
                                     "needs Submitted, In review or Approved.");
    fx_free(&x);

    /* no status at all is not accepted either */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&y.f, "aws", DG_LOOKUP_FOUND, "O123", NULL, "006Dn00000AbCdE");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_not_accepted", "aws");
    assert_contains(y.d.message, "AWS ACE registration O123 has no status");
    fx_free(&y);
}

static void test_accept_case_and_missing_list(void **state)
{
    (void)state;
    /* states compare case-insensitively, ignoring surrounding blanks */
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O123", " in REVIEW ", "006Dn00000AbCdE");
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    fx_free(&x);

    /* gcp has no accept.gcp list: no state counts (fail closed; cfg warns at load) */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "gcp", "gcp=G1");
    fact(&y.f, "gcp", DG_LOOKUP_FOUND, "G1", "Approved", "006Dn00000AbCdE");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_not_accepted", "gcp");
    assert_string_equal(y.d.message,
                        "Google Cloud Partner Advantage registration G1 is Approved; rule "
                        "demo-needs-registration accepts no Google Cloud Partner Advantage "
                        "state (no accept.gcp): ask the deal desk.");
    fx_free(&y);
}

static void test_registration_mismatch(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006Dn00000ZZZZZ");
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_mismatch", "aws");
    assert_string_equal(x.d.message,
                        "AWS ACE registration O123 belongs to deal 006Dn00000ZZZZZ, not "
                        "006Dn00000AbCdE.");
    fx_free(&x);

    /* a mismatch wins over a state that is not accepted */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&y.f, "aws", DG_LOOKUP_FOUND, "O123", "Rejected", "other");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_mismatch", "aws");
    fx_free(&y);

    /* the CRM id is compared case-sensitively (Salesforce 15-character ids are) */
    fx z = {.c = load_demo("")};
    ev(&z.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&z.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006dn00000abcde");
    decide(z.c, &z.e, &z.f, NOW, &z.d);
    assert_blocked_one(&z.d, "demo-needs-registration", "registration_mismatch", "aws");
    fx_free(&z);
}

static void test_salesforce_15_18_ids_match(void **state)
{
    (void)state;
    /* an 18-character id on the record matches the 15-character one in the event */
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006Dn00000AbCdEIAX");
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    fx_free(&x);

    /* and the other way round */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", "aws=O123");
    free(y.e.opp_id);
    y.e.opp_id = xstrdup("006Dn00000AbCdEIAX");
    fact(&y.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006Dn00000AbCdE");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_allowed_clean(&y.d);
    fx_free(&y);

    /* 18 characters whose first 15 differ do not */
    fx z = {.c = load_demo("")};
    ev(&z.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&z.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006Dn00000AbCdFIAX");
    decide(z.c, &z.e, &z.f, NOW, &z.d);
    assert_blocked_one(&z.d, "demo-needs-registration", "registration_mismatch", "aws");
    fx_free(&z);
}

static void test_unlinked_warning_and_require_link(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", NULL);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    assert_int_equal(x.d.nwarnings, 1);
    const dg_reason *w = warning(&x.d, "registration_unlinked", "aws");
    assert_non_null(w);
    assert_string_equal(w->rule, "demo-needs-registration");
    assert_contains(w->message, "AWS ACE registration O123 carries no CRM id");
    fx_free(&x);

    /* an empty CRM id on the record is no link either */
    fx y = {.c = load_demo("require_link = yes\n")};
    ev(&y.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&y.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_unlinked", "aws");
    assert_contains(y.d.message, "record 006Dn00000AbCdE on it in AWS ACE");
    assert_int_equal(y.d.nwarnings, 0);
    fx_free(&y);

    /* require_link with a matching CRM id passes */
    fx z = {.c = load_demo("require_link = yes\n")};
    ev(&z.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&z.f, "aws", DG_LOOKUP_FOUND, "O123", "Approved", "006Dn00000AbCdE");
    decide(z.c, &z.e, &z.f, NOW, &z.d);
    assert_allowed_clean(&z.d);
    assert_int_equal(z.d.nwarnings, 0);
    fx_free(&z);
}

static void test_presence_only(void **state)
{
    (void)state;
    /* connector = none: FOUND with no state and no link is registered, even with
     * require_link = yes and an accept list for that cloud */
    fx a = {.c = load_demo("require_link = yes\naccept.crm = Approved\n")};
    ev(&a.e, "Qualification", "Demo", "crm", "crm=X1");
    dg_reg_fact *r = fact(&a.f, "crm", DG_LOOKUP_FOUND, "X1", NULL, NULL);
    free(r->source);
    r->source = xstrdup("none");
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.nwarnings, 0);
    assert_int_equal(a.d.gated, 1);
    fx_free(&a);

    /* a fact whose source is "none" counts the same, whatever the cloud's connector */
    fx b = {.c = load_demo("")};
    ev(&b.e, "Qualification", "Demo", "aws", "aws=O1");
    r = fact(&b.f, "aws", DG_LOOKUP_FOUND, "O1", NULL, NULL);
    free(r->source);
    r->source = xstrdup("none");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_allowed_clean(&b.d);
    assert_int_equal(b.d.nwarnings, 0);
    fx_free(&b);

    /* no id in the CRM: missing, as for any connector */
    fx c = {.c = load_demo("")};
    ev(&c.e, "Qualification", "Demo", "crm", NULL);
    fact(&c.f, "crm", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL)->by_crm_id = 1;
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_blocked_one(&c.d, "demo-needs-registration", "registration_missing", "crm");
    assert_string_equal(c.d.message, "Register this deal in CRM field before moving to Demo.");
    fx_free(&c);
}

static void test_skipped(void **state)
{
    (void)state;
    /* connector = none: an id in the CRM counts as registered */
    fx x = {.c = load_demo("")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    fact(&x.f, "aws", DG_LOOKUP_SKIPPED, "O123", NULL, NULL);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    fx_free(&x);

    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", NULL);
    fact(&y.f, "aws", DG_LOOKUP_SKIPPED, NULL, NULL, NULL);
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_missing", "aws");
    fx_free(&y);
}

/* ---- look-up failures ------------------------------------------------------------------ */

static void test_lookup_failed_block(void **state)
{
    (void)state;
    fx x = {.c = load_demo("on_lookup_error = block\n")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    failed(&x.f, "aws", "O123", "timeout after 2000 ms", 1);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_unverifiable", "aws");
    assert_string_equal(x.d.message, "Could not verify the AWS ACE registration O123 (timeout "
                                     "after 2000 ms); blocked until it can be verified.");
    fx_free(&x);

    /* a cloud the connectors reported nothing for counts as a failed look-up */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Qualification", "Demo", "aws", NULL);
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_blocked_one(&y.d, "demo-needs-registration", "registration_unverifiable", "aws");
    assert_contains(y.d.message, "registration of deal 006Dn00000AbCdE (no look-up result)");
    fx_free(&y);

    /* facts may be NULL altogether */
    fx z = {.c = load_demo("")};
    ev(&z.e, "Qualification", "Demo", "aws", NULL);
    decide(z.c, &z.e, NULL, NOW, &z.d);
    assert_blocked_one(&z.d, "demo-needs-registration", "registration_unverifiable", "aws");
    fx_free(&z);
}

static void test_lookup_failed_allow(void **state)
{
    (void)state;
    fx x = {.c = load_demo("on_lookup_error = allow\n")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    failed(&x.f, "aws", "O123", "HTTP 503", 1);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_allowed_clean(&x.d);
    assert_int_equal(x.d.nwarnings, 1);
    const dg_reason *w = warning(&x.d, "lookup_failed_allowed", "aws");
    assert_non_null(w);
    assert_string_equal(w->message, "Could not verify the AWS ACE registration O123 (HTTP 503); "
                                    "allowed by rule policy.");
    assert_int_equal(x.d.gated, 1);
    fx_free(&x);
}

/* The log is read only when the rules need it: when rules_needs_last_stage says no, the
 * deal's history changes nothing; when rules_needs_retry_since says no, neither does the
 * retry start. */
static void test_history_read_only_when_needed(void **state)
{
    (void)state;
    struct cfg *c = load_demo("");
    const struct {
        const char *pipeline, *from, *to;
        int needs;
    } moves[] = {
        {NULL, "Qualification", "Demo", 0},
        {NULL, "qualifiedtobuy", "presentationscheduled", 0}, /* aliases resolve */
        {NULL, "QUALIFICATION", "Demo", 0},                   /* case-insensitive */
        {NULL, "Closed Lost", "Demo", 0},                     /* a lost stage is a stage */
        {NULL, NULL, "Demo", 1},                              /* no from stage */
        {NULL, "", "Demo", 1},
        {NULL, "Somewhere Else", "Demo", 1}, /* not a stage of the pipeline */
        {"partner", "Qualified", "Demo", 0},
        {"partner", "Qualification", "Demo", 1}, /* a stage of another pipeline only */
        {"no-such-pipeline", NULL, "Demo", 0},   /* refused whatever the log says */
    };
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
        dg_event e;
        ev(&e, moves[i].from, moves[i].to, "aws", NULL);
        e.pipeline = xstrdup(moves[i].pipeline);
        if (rules_needs_last_stage(c, &e) != moves[i].needs) fail_msg("move %zu", i);
        if (!moves[i].needs && moves[i].pipeline == NULL) {
            /* the same decision with and without a history that says otherwise */
            dg_facts bare = {0}, hist = {0};
            history(&hist, "Proposal", "proposal_raw");
            dg_decision a, b;
            decide(c, &e, &bare, NOW, &a);
            decide(c, &e, &hist, NOW, &b);
            assert_int_equal(a.outcome, b.outcome);
            assert_string_equal(a.message, b.message);
            if (a.revert_to || b.revert_to) {
                assert_string_equal(a.revert_to, b.revert_to);
                assert_string_equal(a.revert_to_raw, b.revert_to_raw);
            }
            dg_decision_free(&a);
            dg_decision_free(&b);
            dg_facts_free(&bare);
            dg_facts_free(&hist);
        }
        dg_event_free(&e);
    }
    cfg_free(c);

    /* retry_since matters only under a retry policy, for a look-up that failed */
    struct cfg *block = load_demo("");
    struct cfg *retry = load_demo("on_lookup_error = retry\nretry_window_s = 900\n");
    const char *aws[] = {"aws"}, *two[] = {"aws", "azure"};
    dg_facts ok = {0}, bad = {0}, half = {0};
    fact(&ok, "aws", DG_LOOKUP_FOUND, "O123", "Approved", NULL);
    failed(&bad, "aws", "O123", "ThrottlingException", 1);
    fact(&half, "AWS", DG_LOOKUP_FOUND, "O123", "Approved", NULL); /* keys match any case */
    assert_int_equal(rules_needs_retry_since(retry, &ok, aws, 1), 0);
    assert_int_equal(rules_needs_retry_since(retry, &bad, aws, 1), 1);
    assert_int_equal(rules_needs_retry_since(retry, &half, aws, 1), 0);
    assert_int_equal(rules_needs_retry_since(retry, &half, two, 2), 1); /* azure: no result */
    assert_int_equal(rules_needs_retry_since(retry, &bad, aws, 0), 0);  /* nothing looked up */
    assert_int_equal(rules_needs_retry_since(block, &bad, aws, 1), 0);
    assert_int_equal(rules_needs_retry_since(block, &half, two, 2), 0);
    dg_facts_free(&ok);
    dg_facts_free(&bad);
    dg_facts_free(&half);
    cfg_free(block);
    cfg_free(retry);
}

static void test_lookup_failed_retry_window(void **state)
{
    (void)state;
    struct cfg *c = load_demo("on_lookup_error = retry\nretry_window_s = 900\n");
    const struct {
        int64_t since, now;
        int retryable;
        dg_outcome outcome;
        int after;
    } cases[] = {
        {0, NOW, 1, DG_OUTCOME_RETRY, 30},         /* first failure: retry */
        {NOW - 100, NOW, 1, DG_OUTCOME_RETRY, 30}, /* inside the window */
        {NOW - 885, NOW, 1, DG_OUTCOME_RETRY, 15}, /* Retry-After capped by what is left */
        {NOW - 899, NOW, 1, DG_OUTCOME_RETRY, 1},  /* last second */
        {NOW - 900, NOW, 1, DG_OUTCOME_BLOCK, 0},  /* window over */
        {NOW - 5000, NOW, 1, DG_OUTCOME_BLOCK, 0}, /* long over */
        {NOW + 60, NOW, 1, DG_OUTCOME_RETRY, 30},  /* clock skew: since in the future */
        {0, NOW, 0, DG_OUTCOME_BLOCK, 0},          /* not worth retrying */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dg_event e;
        dg_facts f = {0};
        dg_decision d;
        ev(&e, "Qualification", "Demo", "aws", "aws=O123");
        failed(&f, "aws", "O123", "ThrottlingException", cases[i].retryable);
        f.retry_since = cases[i].since;
        decide(c, &e, &f, cases[i].now, &d);
        if (d.outcome != cases[i].outcome) fail_msg("case %zu: outcome %d", i, d.outcome);
        if (cases[i].outcome == DG_OUTCOME_RETRY) {
            assert_int_equal(d.retry_after_s, cases[i].after);
            assert_int_equal(d.allowed, 0);
            assert_int_equal(d.nreasons, 0);
            assert_null(d.revert_to);
            assert_string_equal(d.mode, "enforce");
            char want[160];
            snprintf(want, sizeof want,
                     "Could not verify the AWS ACE registration O123 (ThrottlingException); "
                     "try again in %d s.",
                     cases[i].after);
            assert_string_equal(d.message, want);
        } else {
            assert_blocked_one(&d, "demo-needs-registration", "registration_unverifiable", "aws");
            assert_string_equal(d.revert_to, "Qualification");
            if (cases[i].retryable)
                assert_contains(d.message, "(ThrottlingException) for 15 min; blocked");
            else
                assert_contains(d.message, "retrying will not help");
        }
        dg_decision_free(&d);
        dg_facts_free(&f);
        dg_event_free(&e);
    }
    cfg_free(c);
}

static void test_retry_short_window(void **state)
{
    (void)state;
    fx x = {.c = load_demo("on_lookup_error = retry\nretry_window_s = 20\n")};
    ev(&x.e, "Qualification", "Demo", "aws", "aws=O123");
    failed(&x.f, "aws", "O123", "timeout", 1);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_int_equal(x.d.outcome, DG_OUTCOME_RETRY);
    assert_int_equal(x.d.retry_after_s, 20);
    dg_decision_free(&x.d);
    x.f.retry_since = NOW - 25;
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_unverifiable", "aws");
    assert_contains(x.d.message, "for 20 s; blocked");
    fx_free(&x);
}

static void test_retry_and_block_across_clouds(void **state)
{
    (void)state;
    /* match = all: a definite failure on one cloud blocks, however the other's retry ends */
    fx x = {.c = load_demo("on_lookup_error = retry\n")};
    ev(&x.e, "Qualification", "Demo", "aws,azure", "aws=O123");
    failed(&x.f, "aws", "O123", "timeout", 1);
    fact(&x.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_missing", "azure");
    fx_free(&x);

    /* match = any: a passing cloud is enough, no retry needed */
    fx y = {.c = load_demo("on_lookup_error = retry\nmatch = any\n")};
    ev(&y.e, "Qualification", "Demo", "aws,azure", "aws=O123,azure=R1");
    failed(&y.f, "aws", "O123", "timeout", 1);
    fact(&y.f, "azure", DG_LOOKUP_FOUND, "R1", "Accepted", "006Dn00000AbCdE");
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_allowed_clean(&y.d);
    assert_int_equal(y.d.nwarnings, 0);
    fx_free(&y);

    /* match = any: nothing passes, one is being retried: retry */
    fx z = {.c = load_demo("on_lookup_error = retry\nmatch = any\n")};
    ev(&z.e, "Qualification", "Demo", "aws,azure", "aws=O123");
    failed(&z.f, "aws", "O123", "timeout", 1);
    fact(&z.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(z.c, &z.e, &z.f, NOW, &z.d);
    assert_int_equal(z.d.outcome, DG_OUTCOME_RETRY);
    assert_int_equal(z.d.retry_after_s, 30);
    fx_free(&z);

    /* one rule retries, another enforced rule blocks: the block wins */
    fx w = {.c = load("[rule:r1]\nstage = Demo\non_lookup_error = retry\nclouds = aws\n"
                      "[rule:r2]\nstage = Demo\nclouds = azure\n")};
    ev(&w.e, "Qualification", "Demo", "aws,azure", NULL);
    failed(&w.f, "aws", NULL, "timeout", 1);
    fact(&w.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(w.c, &w.e, &w.f, NOW, &w.d);
    assert_blocked_one(&w.d, "r2", "registration_missing", "azure");
    fx_free(&w);
}

/* ---- stages ---------------------------------------------------------------------------- */

typedef struct {
    const char *from, *to;
    int gated;
} move_case;

static void test_stage_order(void **state)
{
    (void)state;
    struct cfg *c = load_demo("");
    const move_case cases[] = {
        {"Qualification", "Demo", 1},        /* into the stage from before */
        {"Prospecting", "Negotiation", 1},   /* skipping over the stage */
        {"Qualification", "Closed Won", 1},  /* straight to won */
        {"Demo", "Proposal", 0},             /* already past the gate */
        {"Proposal", "Demo", 0},             /* backwards into the stage */
        {"Negotiation", "Qualification", 0}, /* backwards out of it */
        {"Demo", "Demo", 0},                 /* no move */
        {"Prospecting", "Qualification", 0}, /* before the stage */
        {"Qualification", "Closed Lost", 0}, /* lost is never gated */
        {"Closed Lost", "Demo", 1},          /* reopened from lost: passes the gate again */
        {"Closed Lost", "Closed Won", 1},
        {"Closed Won", "Demo", 0},    /* backwards from won */
        {"qualification", "DEMO", 1}, /* stage names are case-insensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dg_event e;
        dg_facts f = {0};
        dg_decision d;
        ev(&e, cases[i].from, cases[i].to, "aws", NULL);
        fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
        decide(c, &e, &f, NOW, &d);
        if (d.gated != cases[i].gated)
            fail_msg("%s -> %s: gated %d", cases[i].from, cases[i].to, d.gated);
        assert_int_equal(d.outcome, cases[i].gated ? DG_OUTCOME_BLOCK : DG_OUTCOME_ALLOW);
        if (!cases[i].gated) assert_allowed_clean(&d);

        const char **clouds = NULL;
        size_t n = 99;
        assert_int_equal(rules_lookup_clouds(c, &e, NULL, &clouds, &n), DG_OK);
        assert_int_equal(n, (size_t)cases[i].gated);
        if (n) assert_ptr_equal(clouds[0], e.clouds[0]); /* borrowed from the event */
        free(clouds);

        dg_decision_free(&d);
        dg_facts_free(&f);
        dg_event_free(&e);
    }
    cfg_free(c);
}

static void test_aliases(void **state)
{
    (void)state;
    fx x = {.c = load_demo("")};
    ev(&x.e, "qualifiedtobuy", "PresentationScheduled", "aws", NULL);
    fact(&x.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(x.c, &x.e, &x.f, NOW, &x.d);
    assert_blocked_one(&x.d, "demo-needs-registration", "registration_missing", "aws");
    assert_string_equal(x.d.from_stage, "Qualification");
    assert_string_equal(x.d.to_stage, "Demo");
    assert_string_equal(x.d.revert_to, "Qualification");
    assert_string_equal(x.d.revert_to_raw, "qualifiedtobuy"); /* as the CRM sent it */
    fx_free(&x);

    /* the second alias of a stage resolves too */
    fx y = {.c = load_demo("")};
    ev(&y.e, "Demo_Booked", "Proposal", "aws", NULL);
    decide(y.c, &y.e, &y.f, NOW, &y.d);
    assert_allowed_clean(&y.d);
    assert_int_equal(y.d.gated, 0);
    assert_string_equal(y.d.from_stage, "Demo");
    fx_free(&y);
}

static void test_from_stage_absent(void **state)
{
    (void)state;
    /* HubSpot: no from_stage; the log says the deal was in Demo: not gated */
    fx a = {.c = load_demo("")};
    ev(&a.e, NULL, "Proposal", "aws", NULL);
    history(&a.f, "Demo", "presentationscheduled");
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.gated, 0);
    assert_string_equal(a.d.from_stage, "Demo"); /* the stage used: the log's */
    const char **clouds = NULL;
    size_t n = 9;
    assert_int_equal(rules_lookup_clouds(a.c, &a.e, "Demo", &clouds, &n), DG_OK);
    assert_int_equal(n, 0);
    assert_null(clouds);
    fx_free(&a);

    /* the log says Qualification: gated; revert to it with its logged raw value */
    fx b = {.c = load_demo("")};
    ev(&b.e, NULL, "Demo", "aws", NULL);
    history(&b.f, "Qualification", "QualifiedToBuy");
    fact(&b.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_blocked_one(&b.d, "demo-needs-registration", "registration_missing", "aws");
    assert_string_equal(b.d.revert_to, "Qualification");
    assert_string_equal(b.d.revert_to_raw, "QualifiedToBuy");
    assert_int_equal(rules_lookup_clouds(b.c, &b.e, "Qualification", &clouds, &n), DG_OK);
    assert_int_equal(n, 1);
    free(clouds);
    fx_free(&b);

    /* last stage known but no raw value logged: the stage's first alias */
    fx c = {.c = load_demo("")};
    ev(&c.e, NULL, "Demo", "aws", NULL);
    history(&c.f, "Qualification", NULL);
    fact(&c.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_string_equal(c.d.revert_to, "Qualification");
    assert_string_equal(c.d.revert_to_raw, "qualifiedtobuy");
    fx_free(&c);

    /* no history: fail closed, revert to the stage before the rule's stage */
    fx d = {.c = load_demo("")};
    ev(&d.e, NULL, "Negotiation", "aws", NULL);
    fact(&d.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_blocked_one(&d.d, "demo-needs-registration", "registration_missing", "aws");
    assert_string_equal(d.d.revert_to, "Qualification");
    assert_string_equal(d.d.revert_to_raw, "qualifiedtobuy");
    fx_free(&d);

    /* a last stage that no longer exists in the pipeline counts as no history */
    fx e = {.c = load_demo("")};
    ev(&e.e, NULL, "Proposal", "aws", NULL);
    history(&e.f, "Evaluation", "evaluation");
    fact(&e.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(e.c, &e.e, &e.f, NOW, &e.d);
    assert_int_equal(e.d.outcome, DG_OUTCOME_BLOCK);
    assert_string_equal(e.d.revert_to, "Qualification");
    fx_free(&e);
}

static void test_from_stage_unknown(void **state)
{
    (void)state;
    /* an unknown from_stage is treated like an absent one: the log decides */
    fx a = {.c = load_demo("")};
    ev(&a.e, "Technical Win", "Proposal", "aws", NULL);
    history(&a.f, "Demo", NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.gated, 0);
    assert_string_equal(a.d.from_stage, "Demo"); /* the stage used: the log's */
    fx_free(&a);

    fx b = {.c = load_demo("")};
    ev(&b.e, "Technical Win", "Proposal", "aws", NULL);
    history(&b.f, "Qualification", "qualifiedtobuy");
    fact(&b.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_int_equal(b.d.outcome, DG_OUTCOME_BLOCK);
    assert_string_equal(b.d.revert_to, "Qualification");
    assert_string_equal(b.d.revert_to_raw, "qualifiedtobuy");
    fx_free(&b);

    /* ... and without history it fails closed */
    fx c = {.c = load_demo("")};
    ev(&c.e, "Technical Win", "Proposal", "aws", NULL);
    fact(&c.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_int_equal(c.d.outcome, DG_OUTCOME_BLOCK);
    assert_string_equal(c.d.revert_to, "Qualification");
    fx_free(&c);

    /* a given from_stage wins over the log */
    fx d = {.c = load_demo("")};
    ev(&d.e, "Prospecting", "Demo", "aws", NULL);
    history(&d.f, "Qualification", "qualifiedtobuy");
    fact(&d.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_string_equal(d.d.revert_to, "Prospecting");
    assert_string_equal(d.d.revert_to_raw, "Prospecting");
    fx_free(&d);
}

static void test_revert_skips_lost_and_first_stage(void **state)
{
    (void)state;
    /* the stage before the rule's stage is lost: revert further back */
    fx a = {.c = load("[rule:odd-demo]\nstage = Demo\npipelines = odd\n")};
    ev(&a.e, NULL, "Contract", "aws", NULL);
    free(a.e.pipeline);
    a.e.pipeline = xstrdup("odd");
    fact(&a.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_blocked_one(&a.d, "odd-demo", "registration_missing", "aws");
    assert_string_equal(a.d.pipeline, "odd");
    assert_string_equal(a.d.revert_to, "Start");
    assert_string_equal(a.d.revert_to_raw, "Start");
    fx_free(&a);

    /* a rule on the first stage has no stage before it: no revert target */
    fx b = {.c = load("[rule:first]\nstage = Prospecting\npipelines = default\n")};
    ev(&b.e, NULL, "Qualification", "aws", NULL);
    fact(&b.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_blocked_one(&b.d, "first", "registration_missing", "aws");
    assert_null(b.d.revert_to);
    assert_null(b.d.revert_to_raw);
    fx_free(&b);

    /* from a lost stage (reopened): revert to the lost stage it came from */
    fx c = {.c = load_demo("")};
    ev(&c.e, "closedlost", "Demo", "aws", NULL);
    fact(&c.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_int_equal(c.d.outcome, DG_OUTCOME_BLOCK);
    assert_string_equal(c.d.revert_to, "Closed Lost");
    assert_string_equal(c.d.revert_to_raw, "closedlost");
    fx_free(&c);
}

static void test_unknown_stage(void **state)
{
    (void)state;
    /* default pipeline: unknown_stage = block */
    fx a = {.c = load_demo("")};
    ev(&a.e, "Qualification", "Technical Win", "aws", NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_blocked_one(&a.d, "", "stage_unknown", NULL);
    assert_string_equal(a.d.message, "Stage \"Technical Win\" is not configured in dealgate "
                                     "(pipeline default); ask the deal desk to add it.");
    assert_null(a.d.to_stage);
    assert_int_equal(a.d.gated, 0);
    assert_string_equal(a.d.revert_to, "Qualification");
    assert_string_equal(a.d.revert_to_raw, "Qualification");
    const char **clouds = NULL;
    size_t n = 9;
    assert_int_equal(rules_lookup_clouds(a.c, &a.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 0);
    fx_free(&a);

    /* no from stage: the log's last stage, else no revert target */
    fx b = {.c = load_demo("")};
    ev(&b.e, NULL, "Technical Win", "aws", NULL);
    history(&b.f, "Demo", "presentationscheduled");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_blocked_one(&b.d, "", "stage_unknown", NULL);
    assert_string_equal(b.d.revert_to, "Demo");
    assert_string_equal(b.d.revert_to_raw, "presentationscheduled");
    fx_free(&b);

    fx c = {.c = load_demo("")};
    ev(&c.e, NULL, "Technical Win", "aws", NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_blocked_one(&c.d, "", "stage_unknown", NULL);
    assert_null(c.d.revert_to);
    fx_free(&c);

    /* pipeline partner: unknown_stage = allow, with a warning */
    fx d = {.c = load_demo("")};
    ev(&d.e, "Intake", "Pilot", "aws", NULL);
    d.e.pipeline = xstrdup("partner");
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_allowed_clean(&d.d);
    assert_int_equal(d.d.gated, 0);
    assert_string_equal(d.d.pipeline, "partner");
    assert_int_equal(d.d.nwarnings, 1);
    const dg_reason *w = warning(&d.d, "stage_unknown", NULL);
    assert_non_null(w);
    assert_string_equal(w->rule, "");
    assert_string_equal(w->message, "Stage \"Pilot\" is not configured in dealgate (pipeline "
                                    "partner); allowed without checks.");
    fx_free(&d);
}

/* ---- pipelines ------------------------------------------------------------------------- */

static void test_pipeline_selection(void **state)
{
    (void)state;
    struct cfg *c = load_demo("");
    const struct {
        const char *pipeline, *want;
    } ok[] = {{NULL, "default"},
              {"", "default"},
              {"default", "default"},
              {"partner", "partner"},
              {"PARTNER", "partner"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        dg_event e;
        dg_facts f = {0};
        dg_decision d;
        ev(&e, "Qualification", "Demo", "aws", NULL);
        if (ok[i].pipeline) e.pipeline = xstrdup(ok[i].pipeline);
        fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
        decide(c, &e, &f, NOW, &d);
        assert_string_equal(d.pipeline, ok[i].want);
        if (strcmp(ok[i].want, "default") == 0) {
            assert_int_equal(d.outcome, DG_OUTCOME_BLOCK);
        } else {
            /* partner has no Qualification stage: the from stage is unknown, no history */
            assert_int_equal(d.outcome, DG_OUTCOME_BLOCK);
            assert_null(d.from_stage);
            assert_string_equal(d.revert_to, "Qualified");
        }
        dg_decision_free(&d);
        dg_facts_free(&f);
        dg_event_free(&e);
    }

    /* an unknown pipeline is an invalid event, naming the field */
    dg_event e;
    dg_decision d;
    ev(&e, "Qualification", "Demo", "aws", NULL);
    e.pipeline = xstrdup("enterprise");
    char err[256] = "";
    assert_int_equal(rules_decide(c, &e, NULL, NOW, &d, err, sizeof err), DG_EINVAL);
    assert_contains(err, "pipeline");
    assert_contains(err, "enterprise");
    assert_null(d.message);
    const char **clouds = NULL;
    size_t n = 9;
    assert_int_equal(rules_lookup_clouds(c, &e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 0);
    dg_event_free(&e);
    cfg_free(c);
}

static void test_pipelines_filter(void **state)
{
    (void)state;
    struct cfg *c = load("[rule:partner-only]\nstage = Demo\npipelines = partner\n"
                         "[rule:default-only]\nstage = Proposal\npipelines = default\n");
    /* default pipeline: only default-only applies */
    dg_event e;
    dg_facts f = {0};
    dg_decision d;
    ev(&e, "Qualification", "Proposal", "aws", NULL);
    fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c, &e, &f, NOW, &d);
    assert_blocked_one(&d, "default-only", "registration_missing", "aws");
    /* the default template names the stage moved to */
    assert_string_equal(d.message, "Register this deal in AWS ACE before moving to Proposal.");
    assert_string_equal(d.revert_to, "Qualification");
    dg_decision_free(&d);
    dg_event_free(&e);

    /* partner pipeline: only partner-only applies */
    ev(&e, "Qualified", "Demo", "aws", NULL);
    e.pipeline = xstrdup("partner");
    decide(c, &e, &f, NOW, &d);
    assert_blocked_one(&d, "partner-only", "registration_missing", "aws");
    dg_decision_free(&d);
    dg_event_free(&e);

    /* odd pipeline: neither */
    ev(&e, "Start", "Signed", "aws", NULL);
    e.pipeline = xstrdup("odd");
    decide(c, &e, &f, NOW, &d);
    assert_allowed_clean(&d);
    assert_int_equal(d.gated, 0);
    dg_decision_free(&d);
    dg_event_free(&e);
    dg_facts_free(&f);
    cfg_free(c);
}

/* ---- clouds ---------------------------------------------------------------------------- */

static void test_clouds_deal_and_list(void **state)
{
    (void)state;
    /* clouds = deal: every cloud of the deal is checked */
    fx a = {.c = load_demo("")};
    ev(&a.e, "Qualification", "Demo", "aws,azure", "aws=O1");
    fact(&a.f, "aws", DG_LOOKUP_FOUND, "O1", "Approved", "006Dn00000AbCdE");
    fact(&a.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_blocked_one(&a.d, "demo-needs-registration", "registration_missing", "azure");
    assert_string_equal(a.d.message,
                        "Register this deal in Microsoft Partner Center before moving to Demo.");
    const char **clouds = NULL;
    size_t n = 0;
    assert_int_equal(rules_lookup_clouds(a.c, &a.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(clouds[0], "aws");
    assert_string_equal(clouds[1], "azure");
    free(clouds);
    fx_free(&a);

    /* clouds = azure: only azure is checked, aws is not looked at */
    fx b = {.c =
                load("[rule:azure-only]\nstage = Demo\nclouds = azure\naccept.azure = Accepted\n")};
    ev(&b.e, "Qualification", "Demo", "aws,azure", NULL);
    fact(&b.f, "azure", DG_LOOKUP_FOUND, "R1", "Accepted", "006Dn00000AbCdE");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_allowed_clean(&b.d);
    assert_int_equal(b.d.gated, 1);
    assert_int_equal(rules_lookup_clouds(b.c, &b.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(clouds[0], "azure");
    free(clouds);
    fx_free(&b);

    /* a deal whose clouds are all outside the list: the rule does not apply */
    fx c = {.c = load("[rule:azure-only]\nstage = Demo\nclouds = azure\nrequire_clouds = yes\n")};
    ev(&c.e, "Qualification", "Demo", "gcp", NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_allowed_clean(&c.d);
    assert_int_equal(c.d.gated, 0);
    assert_int_equal(rules_lookup_clouds(c.c, &c.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 0);
    fx_free(&c);

    /* a cloud listed twice on the deal is checked once */
    fx d = {.c = load_demo("")};
    ev(&d.e, "Qualification", "Demo", "aws,aws", NULL);
    fact(&d.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_int_equal(d.d.nreasons, 1);
    assert_int_equal(rules_lookup_clouds(d.c, &d.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 1);
    free(clouds);
    fx_free(&d);
}

static void test_no_clouds_and_require_clouds(void **state)
{
    (void)state;
    fx a = {.c = load_demo("")};
    ev(&a.e, "Qualification", "Demo", NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.gated, 0);
    assert_int_equal(a.d.nwarnings, 0);
    fx_free(&a);

    fx b = {.c = load_demo("require_clouds = yes\n")};
    ev(&b.e, "Qualification", "Demo", NULL, NULL);
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_blocked_one(&b.d, "demo-needs-registration", "clouds_missing", NULL);
    assert_string_equal(b.d.message, "The deal names no co-sell cloud; set its cloud programs "
                                     "before moving to Demo.");
    assert_int_equal(b.d.gated, 1);
    assert_string_equal(b.d.revert_to, "Qualification");
    const char **clouds = NULL;
    size_t n = 9;
    assert_int_equal(rules_lookup_clouds(b.c, &b.e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 0);
    fx_free(&b);

    /* require_clouds is about the stage move: not gated moves pass */
    fx c = {.c = load_demo("require_clouds = yes\n")};
    ev(&c.e, "Demo", "Proposal", NULL, NULL);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_allowed_clean(&c.d);
    fx_free(&c);
}

static void test_match_all_any(void **state)
{
    (void)state;
    /* all: one failing cloud blocks */
    fx a = {.c = load_demo("match = all\n")};
    ev(&a.e, "Qualification", "Demo", "aws,azure", "aws=O1,azure=R1");
    fact(&a.f, "aws", DG_LOOKUP_FOUND, "O1", "Approved", "006Dn00000AbCdE");
    fact(&a.f, "azure", DG_LOOKUP_FOUND, "R1", "Declined", "006Dn00000AbCdE");
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_blocked_one(&a.d, "demo-needs-registration", "registration_not_accepted", "azure");
    assert_string_equal(a.d.message, "Microsoft Partner Center registration R1 is Declined; "
                                     "moving to Demo needs Accepted or Won.");
    fx_free(&a);

    /* any: one passing cloud is enough; its warnings stay, the others' reasons go */
    fx b = {.c = load_demo("match = any\n")};
    ev(&b.e, "Qualification", "Demo", "aws,azure", "aws=O1,azure=R1");
    fact(&b.f, "aws", DG_LOOKUP_FOUND, "O1", "Approved", NULL);
    fact(&b.f, "azure", DG_LOOKUP_FOUND, "R1", "Declined", "006Dn00000AbCdE");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_allowed_clean(&b.d);
    assert_int_equal(b.d.nwarnings, 1);
    assert_non_null(warning(&b.d, "registration_unlinked", "aws"));
    fx_free(&b);

    /* any: nothing passes, every cloud's reason is given, (+N more) */
    fx c = {.c = load_demo("match = any\n")};
    ev(&c.e, "Qualification", "Demo", "aws,azure", "azure=R1");
    fact(&c.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&c.f, "azure", DG_LOOKUP_FOUND, "R1", "Declined", "006Dn00000AbCdE");
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_int_equal(c.d.outcome, DG_OUTCOME_BLOCK);
    assert_int_equal(c.d.nreasons, 2);
    assert_string_equal(c.d.reasons[0].code, "registration_missing");
    assert_string_equal(c.d.reasons[0].cloud, "aws");
    assert_string_equal(c.d.reasons[1].code, "registration_not_accepted");
    assert_string_equal(c.d.reasons[1].cloud, "azure");
    assert_string_equal(c.d.message,
                        "Register this deal in AWS ACE before moving to Demo. (+1 more)");
    fx_free(&c);

    /* all: every failing cloud gets its reason */
    fx d = {.c = load_demo("")};
    ev(&d.e, "Qualification", "Demo", "aws,azure,gcp", "gcp=G1");
    fact(&d.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&d.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&d.f, "gcp", DG_LOOKUP_NOT_FOUND, "G1", NULL, NULL);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_int_equal(d.d.nreasons, 3);
    assert_non_null(reason(&d.d, "registration_not_found", "gcp"));
    assert_contains(d.d.message, "(+2 more)");
    fx_free(&d);
}

/* ---- amounts --------------------------------------------------------------------------- */

static void test_min_amount(void **state)
{
    (void)state;
    struct cfg *c = load_demo("min_amount = 10000 USD\nmin_amount.EUR = 9000\n");
    const struct {
        int has;
        int64_t minor;
        const char *ccy;
        int gated;
    } cases[] = {
        {1, 999999, "USD", 0},                      /* 9,999.99 USD: below */
        {1, 1000000, "USD", 1},                     /* exactly the threshold */
        {1, 5000000, "USD", 1}, {0, 0, "USD", 1},   /* no amount: fail closed */
        {1, 899999, "EUR", 0},                      /* per currency threshold */
        {1, 900000, "EUR", 1},  {1, 100, "GBP", 1}, /* no threshold in GBP: the rule applies */
        {1, 100, "JPY", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dg_event e;
        dg_facts f = {0};
        dg_decision d;
        ev(&e, "Qualification", "Demo", "aws", NULL);
        if (cases[i].has) amount(&e, cases[i].minor, cases[i].ccy);
        fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
        decide(c, &e, &f, NOW, &d);
        if (d.gated != cases[i].gated) fail_msg("case %zu: gated %d", i, d.gated);
        assert_int_equal(d.outcome, cases[i].gated ? DG_OUTCOME_BLOCK : DG_OUTCOME_ALLOW);
        const char **clouds = NULL;
        size_t n = 9;
        assert_int_equal(rules_lookup_clouds(c, &e, NULL, &clouds, &n), DG_OK);
        assert_int_equal(n, (size_t)cases[i].gated);
        free(clouds);
        dg_decision_free(&d);
        dg_facts_free(&f);
        dg_event_free(&e);
    }
    cfg_free(c);

    /* only a EUR threshold: USD deals are all gated, whatever their size */
    c = load_demo("min_amount.EUR = 9000\n");
    dg_event e;
    dg_decision d;
    ev(&e, "Qualification", "Demo", "aws", NULL);
    amount(&e, 1, "USD");
    decide(c, &e, NULL, NOW, &d);
    assert_int_equal(d.gated, 1);
    dg_decision_free(&d);
    dg_event_free(&e);
    cfg_free(c);
}

/* ---- report mode ----------------------------------------------------------------------- */

static void test_report_mode(void **state)
{
    (void)state;
    fx a = {.c = load_demo("mode = report\n")};
    ev(&a.e, "Qualification", "Demo", "aws", NULL);
    fact(&a.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.gated, 1);
    assert_string_equal(a.d.mode, "report");
    assert_int_equal(a.d.nwarnings, 1);
    const dg_reason *w = warning(&a.d, "report_only", "aws");
    assert_non_null(w);
    assert_string_equal(w->rule, "demo-needs-registration");
    assert_string_equal(w->message, "Would block (registration_missing): Register this deal in "
                                    "AWS ACE before moving to Demo.");
    fx_free(&a);

    /* report mode, nothing would block: enforce mode, no warning */
    fx b = {.c = load_demo("mode = report\n")};
    ev(&b.e, "Qualification", "Demo", "aws", "aws=O1");
    fact(&b.f, "aws", DG_LOOKUP_FOUND, "O1", "Approved", "006Dn00000AbCdE");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_allowed_clean(&b.d);
    assert_string_equal(b.d.mode, "enforce");
    assert_int_equal(b.d.nwarnings, 0);
    fx_free(&b);

    /* report mode with a look-up to retry: allowed, never a 503 for a report-only rule */
    fx c = {.c = load_demo("mode = report\non_lookup_error = retry\n")};
    ev(&c.e, "Qualification", "Demo", "aws", "aws=O1");
    failed(&c.f, "aws", "O1", "timeout", 1);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_allowed_clean(&c.d);
    w = warning(&c.d, "lookup_failed_allowed", "aws");
    assert_non_null(w);
    assert_contains(w->message, "allowed in report mode");
    fx_free(&c);

    /* report mode + require_clouds */
    fx d = {.c = load_demo("mode = report\nrequire_clouds = yes\n")};
    ev(&d.e, "Qualification", "Demo", NULL, NULL);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_allowed_clean(&d.d);
    assert_string_equal(d.d.mode, "report");
    w = warning(&d.d, "report_only", NULL);
    assert_non_null(w);
    assert_contains(w->message, "Would block (clouds_missing): ");
    fx_free(&d);
}

static void test_report_and_enforce_rules(void **state)
{
    (void)state;
    struct cfg *c = load("[rule:enforced]\nstage = Demo\nclouds = azure\naccept.azure = Accepted\n"
                         "[rule:trial]\nstage = Demo\nclouds = aws\nmode = report\n");
    /* both would block: blocked, mode enforce, the report rule shows as a warning */
    dg_event e;
    dg_facts f = {0};
    dg_decision d;
    ev(&e, "Qualification", "Demo", "aws,azure", NULL);
    fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c, &e, &f, NOW, &d);
    assert_blocked_one(&d, "enforced", "registration_missing", "azure");
    assert_string_equal(d.mode, "enforce");
    assert_non_null(warning(&d, "report_only", "aws"));
    dg_decision_free(&d);
    dg_facts_free(&f);

    /* only the report rule would block: allowed, mode report */
    fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&f, "azure", DG_LOOKUP_FOUND, "R1", "Accepted", "006Dn00000AbCdE");
    decide(c, &e, &f, NOW, &d);
    assert_allowed_clean(&d);
    assert_string_equal(d.mode, "report");
    dg_decision_free(&d);
    dg_facts_free(&f);
    dg_event_free(&e);
    cfg_free(c);

    /* the enforced rule retries, the report rule would block: retry, mode enforce */
    c = load("[rule:enforced]\nstage = Demo\nclouds = azure\non_lookup_error = retry\n"
             "[rule:trial]\nstage = Demo\nclouds = aws\nmode = report\n");
    ev(&e, "Qualification", "Demo", "aws,azure", NULL);
    fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    failed(&f, "azure", NULL, "timeout", 1);
    decide(c, &e, &f, NOW, &d);
    assert_int_equal(d.outcome, DG_OUTCOME_RETRY);
    assert_string_equal(d.mode, "enforce");
    assert_non_null(warning(&d, "report_only", "aws"));
    assert_string_equal(d.message, "Could not verify the Microsoft Partner Center registration "
                                   "of deal 006Dn00000AbCdE (timeout); try again in 30 s.");
    dg_decision_free(&d);
    dg_facts_free(&f);
    dg_event_free(&e);
    cfg_free(c);
}

/* ---- several rules --------------------------------------------------------------------- */

static void test_multiple_rules(void **state)
{
    (void)state;
    struct cfg *c = load("[rule:demo]\nstage = Demo\npipelines = default\n"
                         "accept.aws = Submitted, Approved\n"
                         "message = {rule}: register in {cloud_name}.\n"
                         "[rule:negotiation]\nstage = Negotiation\npipelines = default\n"
                         "accept.aws = Approved\n");
    /* no history, to Closed Won: both rules apply and block; revert before the earliest */
    dg_event e;
    dg_facts f = {0};
    dg_decision d;
    ev(&e, NULL, "Closed Won", "aws", NULL);
    fact(&f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(c, &e, &f, NOW, &d);
    assert_int_equal(d.outcome, DG_OUTCOME_BLOCK);
    assert_int_equal(d.nreasons, 2);
    assert_string_equal(d.reasons[0].rule, "demo");
    assert_string_equal(d.reasons[1].rule, "negotiation");
    assert_string_equal(d.message, "demo: register in AWS ACE. (+1 more)");
    assert_string_equal(d.revert_to, "Qualification");
    dg_decision_free(&d);
    dg_facts_free(&f);

    /* only the Negotiation rule blocks (Submitted is fine for demo, not for negotiation) */
    fact(&f, "aws", DG_LOOKUP_FOUND, "O1", "Submitted", "006Dn00000AbCdE");
    decide(c, &e, &f, NOW, &d);
    assert_blocked_one(&d, "negotiation", "registration_not_accepted", "aws");
    assert_string_equal(d.revert_to, "Proposal");
    assert_string_equal(d.revert_to_raw, "Proposal");
    dg_decision_free(&d);

    /* lookup_clouds: aws once, though two rules check it */
    const char **clouds = NULL;
    size_t n = 0;
    assert_int_equal(rules_lookup_clouds(c, &e, NULL, &clouds, &n), DG_OK);
    assert_int_equal(n, 1);
    free(clouds);

    /* from Demo to Negotiation: only the second rule gates */
    dg_event_free(&e);
    ev(&e, "Demo", "Negotiation", "aws", NULL);
    decide(c, &e, &f, NOW, &d);
    assert_blocked_one(&d, "negotiation", "registration_not_accepted", "aws");
    assert_string_equal(d.revert_to, "Demo");
    dg_decision_free(&d);
    dg_facts_free(&f);
    dg_event_free(&e);
    cfg_free(c);
}

/* ---- messages -------------------------------------------------------------------------- */

static void test_message_template(void **state)
{
    (void)state;
    fx a = {.c = load("[rule:t]\nstage = Demo\n"
                      "message = {rule}|{cloud}|{cloud_name}|{stage}|{deal}|{id}\n")};
    ev(&a.e, "Qualification", "Proposal", "gcp", NULL);
    fact(&a.f, "gcp", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_string_equal(a.d.message, "t|gcp|Google Cloud Partner Advantage|Proposal|Acme - Data "
                                     "Platform|006Dn00000AbCdE");
    fx_free(&a);

    /* {deal} falls back to the CRM id; control characters never reach a message */
    fx b = {.c = load("[rule:t]\nstage = Demo\nmessage = {deal} / {id}\n")};
    ev(&b.e, "Qualification", "Demo", "aws", NULL);
    free(b.e.name);
    b.e.name = NULL;
    free(b.e.opp_id);
    b.e.opp_id = xstrdup("006\nX\tY");
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_int_equal(b.d.outcome, DG_OUTCOME_BLOCK);
    assert_string_equal(b.d.reasons[0].code, "registration_unverifiable"); /* no fact */
    assert_null(strchr(b.d.message, '\n'));
    assert_null(strchr(b.d.message, '\t'));
    dg_decision_free(&b.d);
    fact(&b.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_string_equal(b.d.message, "006 X Y / 006 X Y");
    fx_free(&b);
}

/* Sets the deal's name to `n` bytes: `prefix` then repeats of `unit`. */
static void long_name(dg_event *e, const char *prefix, const char *unit, size_t n)
{
    free(e->name);
    e->name = malloc(n + 1);
    assert_non_null(e->name);
    size_t k = strlen(prefix);
    memcpy(e->name, prefix, k);
    while (k + strlen(unit) <= n) {
        memcpy(e->name + k, unit, strlen(unit));
        k += strlen(unit);
    }
    e->name[k] = '\0';
}

static void test_long_messages_are_cut(void **state)
{
    (void)state;
    fx a = {.c = load("[rule:long]\nstage = Demo\nmessage = {deal}\n")};
    ev(&a.e, "Qualification", "Demo", "aws,azure", NULL);
    long_name(&a.e, "\xc3\xa9", "x", 1200);
    fact(&a.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    fact(&a.f, "azure", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_int_equal(a.d.nreasons, 2);
    size_t len = strlen(a.d.reasons[0].message);
    assert_int_equal(len, 511);
    assert_memory_equal(a.d.reasons[0].message, "\xc3\xa9xxx", 5);
    assert_string_equal(a.d.reasons[0].message + len - 4, "x...");
    /* the summary keeps " (+1 more)" whole */
    len = strlen(a.d.message);
    assert_int_equal(len, 511);
    assert_string_equal(a.d.message + len - 11, "x (+1 more)");
    fx_free(&a);
}

static void test_cut_keeps_utf8_whole(void **state)
{
    (void)state;
    /* a message of two-byte characters cut at the limit never ends in half a character */
    for (int shift = 0; shift < 2; shift++) {
        fx a = {.c = load("[rule:u]\nstage = Demo\nmessage = {deal}\n")};
        ev(&a.e, "Qualification", "Demo", "aws", NULL);
        long_name(&a.e, shift ? "a" : "", "\xc3\xa9", 1100);
        fact(&a.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL);
        decide(a.c, &a.e, &a.f, NOW, &a.d);
        const char *m = a.d.reasons[0].message;
        size_t len = strlen(m);
        assert_int_equal(len, shift ? 510 : 511);
        assert_string_equal(m + len - 3, "...");
        assert_int_equal((unsigned char)m[len - 5], 0xc3); /* a whole character before "..." */
        assert_int_equal((unsigned char)m[len - 4], 0xa9);
        fx_free(&a);
    }
}

static void test_text_template_direct(void **state)
{
    (void)state;
    /* cfg refuses unknown placeholders; the expander still keeps them as written */
    rules_text t;
    rules_text_init(&t);
    rules_text_vars v = {.cloud = "aws", .cloud_name = NULL, .rule = "r"};
    rules_text_template(&t, "{other}|{|}|{cloud}{cloud_name}|{rule}|{|{", &v);
    assert_string_equal(rules_text_str(&t), "{other}|{|}|aws|r|{|{");
    rules_text_init(&t);
    rules_text_template(&t, NULL, &v);
    rules_text_add(&t, NULL);
    rules_text_addf(&t, "%s\r\n%d", "a", 1);
    assert_string_equal(rules_text_str(&t), "a  1");
    /* cutting twice is harmless */
    rules_text_init(&t);
    for (int i = 0; i < 100; i++)
        rules_text_add(&t, "0123456789");
    assert_int_equal(strlen(rules_text_str(&t)), RULES_TEXT_MAX - 1);
    assert_string_equal(rules_text_str(&t) + RULES_TEXT_MAX - 4, "...");
    assert_int_equal(strlen(rules_text_str(&t)), RULES_TEXT_MAX - 1);
}

/* ---- arguments ------------------------------------------------------------------------- */

static void test_invalid_events(void **state)
{
    (void)state;
    struct cfg *c = load_demo("");
    dg_event e;
    dg_decision d;
    char err[128];
    ev(&e, "Qualification", NULL, "aws", NULL);
    assert_int_equal(rules_decide(c, &e, NULL, NOW, &d, err, sizeof err), DG_EINVAL);
    assert_contains(err, "to_stage");
    dg_event_free(&e);
    ev(&e, "Qualification", "Demo", "aws", NULL);
    free(e.opp_id);
    e.opp_id = NULL;
    assert_int_equal(rules_decide(c, &e, NULL, NOW, &d, err, sizeof err), DG_EINVAL);
    assert_contains(err, "opportunity.id");
    assert_int_equal(rules_decide(NULL, &e, NULL, NOW, &d, NULL, 0), DG_EINVAL);
    dg_event_free(&e);
    cfg_free(c);
}

/* ---- overrides ---------------------------------------------------------------------- */

static void add_override(dg_facts *f, const char *id, const char *rule, int64_t expires)
{
    f->overrides = realloc(f->overrides, (f->noverrides + 1) * sizeof *f->overrides);
    assert_non_null(f->overrides);
    dg_override *o = &f->overrides[f->noverrides++];
    o->id = xstrdup(id);
    o->rule = xstrdup(rule);
    o->approved_by = xstrdup("Dana Desk");
    o->reason = xstrdup("Strategic account; AWS review pending");
    o->expires_at = expires;
}

static void test_overrides(void **state)
{
    (void)state;
    /* a live override turns the rule's block into an allow with the warning `override` */
    fx a = {.c = load_demo("")};
    ev(&a.e, "Qualification", "Demo", "aws", NULL);
    fact(&a.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL)->by_crm_id = 1;
    add_override(&a.f, "ov_OTHERRULE", "another-rule", NOW + 3600);
    add_override(&a.f, "ov_SHORT", "demo-needs-registration", NOW + 60);
    add_override(&a.f, "ov_LONG", "demo-needs-registration", NOW + 86400);
    decide(a.c, &a.e, &a.f, NOW, &a.d);
    assert_allowed_clean(&a.d);
    assert_int_equal(a.d.gated, 1);
    assert_string_equal(a.d.mode, "enforce");
    assert_int_equal(a.d.nwarnings, 1);
    const dg_reason *w = warning(&a.d, "override", NULL);
    assert_non_null(w);
    assert_string_equal(w->rule, "demo-needs-registration");
    assert_string_equal(w->message,
                        "Allowed by override ov_LONG (approved by Dana Desk until "
                        "2027-01-16T08:00:00Z; would block: registration_missing): Strategic "
                        "account; AWS review pending");
    assert_ptr_equal(rules_override_find(&a.f, "demo-needs-registration", NOW), &a.f.overrides[2]);
    fx_free(&a);

    /* expired (now == expires_at) or for another rule: blocks as usual */
    fx b = {.c = load_demo("")};
    ev(&b.e, "Qualification", "Demo", "aws", NULL);
    fact(&b.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL)->by_crm_id = 1;
    add_override(&b.f, "ov_EXPIRED", "demo-needs-registration", NOW);
    add_override(&b.f, "ov_OTHER", "Demo-Needs-Registration", NOW + 60); /* names are exact */
    decide(b.c, &b.e, &b.f, NOW, &b.d);
    assert_blocked_one(&b.d, "demo-needs-registration", "registration_missing", "aws");
    assert_null(warning(&b.d, "override", NULL));
    assert_null(rules_override_find(&b.f, "demo-needs-registration", NOW));
    assert_non_null(rules_override_find(&b.f, "demo-needs-registration", NOW - 1));
    fx_free(&b);

    /* a rule that passes does not use its override: no warning */
    fx c = {.c = load_demo("")};
    ev(&c.e, "Qualification", "Demo", "aws", "aws=O1");
    fact(&c.f, "aws", DG_LOOKUP_FOUND, "O1", "Approved", "006Dn00000AbCdE");
    add_override(&c.f, "ov_UNUSED", "demo-needs-registration", NOW + 60);
    decide(c.c, &c.e, &c.f, NOW, &c.d);
    assert_allowed_clean(&c.d);
    assert_int_equal(c.d.nwarnings, 0);
    fx_free(&c);

    /* a retry is not waited for; every distinct code is named once */
    fx d = {.c = load_demo("on_lookup_error = retry\n")};
    ev(&d.e, "Qualification", "Demo", "aws,azure", "aws=O1,azure=R1");
    failed(&d.f, "aws", "O1", "timeout", 1);
    failed(&d.f, "azure", "R1", "timeout", 1);
    add_override(&d.f, "ov_RETRY", "demo-needs-registration", NOW + 60);
    decide(d.c, &d.e, &d.f, NOW, &d.d);
    assert_allowed_clean(&d.d);
    w = warning(&d.d, "override", NULL);
    assert_non_null(w);
    assert_contains(w->message, "would wait for: lookup_retry)");
    fx_free(&d);

    /* two rules: the override lifts its own rule only */
    struct cfg *cfg2 =
        load("[rule:first]\nstage = Demo\nclouds = aws\naccept.aws = Approved\n"
             "[rule:second]\nstage = Demo\nclouds = azure\naccept.azure = Accepted\n");
    dg_event e;
    dg_facts f = {0};
    dg_decision dd;
    ev(&e, "Qualification", "Demo", "aws,azure", "aws=O1,azure=R1");
    fact(&f, "aws", DG_LOOKUP_FOUND, "O1", "Rejected", NULL);
    fact(&f, "azure", DG_LOOKUP_FOUND, "R1", "Declined", NULL);
    add_override(&f, "ov_FIRST", "first", NOW + 60);
    decide(cfg2, &e, &f, NOW, &dd);
    assert_blocked_one(&dd, "second", "registration_not_accepted", "azure");
    w = warning(&dd, "override", NULL);
    assert_non_null(w);
    assert_string_equal(w->rule, "first");
    assert_contains(w->message, "would block: registration_not_accepted)");
    dg_decision_free(&dd);

    /* report mode: the override is what allows, no report_only warning */
    dg_facts_free(&f);
    cfg_free(cfg2);
    dg_event_free(&e);
    fx r = {.c = load_demo("mode = report\n")};
    ev(&r.e, "Qualification", "Demo", "aws", NULL);
    fact(&r.f, "aws", DG_LOOKUP_NOT_FOUND, NULL, NULL, NULL)->by_crm_id = 1;
    add_override(&r.f, "ov_REPORT", "demo-needs-registration", NOW + 60);
    decide(r.c, &r.e, &r.f, NOW, &r.d);
    assert_allowed_clean(&r.d);
    assert_string_equal(r.d.mode, "enforce");
    assert_null(warning(&r.d, "report_only", "aws"));
    assert_non_null(warning(&r.d, "override", NULL));
    fx_free(&r);
    assert_null(rules_override_find(NULL, "x", NOW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_registered_and_accepted),
        cmocka_unit_test(test_registration_missing),
        cmocka_unit_test(test_registration_not_found),
        cmocka_unit_test(test_registration_not_accepted),
        cmocka_unit_test(test_accept_case_and_missing_list),
        cmocka_unit_test(test_registration_mismatch),
        cmocka_unit_test(test_salesforce_15_18_ids_match),
        cmocka_unit_test(test_unlinked_warning_and_require_link),
        cmocka_unit_test(test_presence_only),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_lookup_failed_block),
        cmocka_unit_test(test_lookup_failed_allow),
        cmocka_unit_test(test_history_read_only_when_needed),
        cmocka_unit_test(test_lookup_failed_retry_window),
        cmocka_unit_test(test_retry_short_window),
        cmocka_unit_test(test_retry_and_block_across_clouds),
        cmocka_unit_test(test_stage_order),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_from_stage_absent),
        cmocka_unit_test(test_from_stage_unknown),
        cmocka_unit_test(test_revert_skips_lost_and_first_stage),
        cmocka_unit_test(test_unknown_stage),
        cmocka_unit_test(test_pipeline_selection),
        cmocka_unit_test(test_pipelines_filter),
        cmocka_unit_test(test_clouds_deal_and_list),
        cmocka_unit_test(test_no_clouds_and_require_clouds),
        cmocka_unit_test(test_match_all_any),
        cmocka_unit_test(test_min_amount),
        cmocka_unit_test(test_report_mode),
        cmocka_unit_test(test_report_and_enforce_rules),
        cmocka_unit_test(test_multiple_rules),
        cmocka_unit_test(test_message_template),
        cmocka_unit_test(test_long_messages_are_cut),
        cmocka_unit_test(test_cut_keeps_utf8_whole),
        cmocka_unit_test(test_text_template_direct),
        cmocka_unit_test(test_invalid_events),
        cmocka_unit_test(test_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
