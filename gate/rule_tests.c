/* rule_tests.c — `dealgate test`: declarative rule cases against a config (rule_tests.h).
 *
 * Case files are JSON: one case object, an array of cases, or {"cases": [...]}; a directory
 * argument runs its *.json files in name order. Every key of a case is checked, so a typo
 * in "expect" is an unusable case (exit 2), never a silent pass. The facts for each cloud
 * the rules would look up come from the case's "registrations": an object is a record the
 * co-sell system knows, "not_found" one it does not, "error" (or {"error": "..."}) a
 * failed look-up; a cloud the case leaves out is not found. Registration ids go through
 * the connector's own syntax check first, as a live look-up would, and presence-only
 * clouds (connector = none) answer as that connector does. Nothing is logged, no network.
 */
#include "gate/rule_tests.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "gate/cli.h"
#include "connectors/conn.h"
#include "gate/event.h"
#include "gate/json.h"
#include "gate/timeparse.h"
#include "rules/rules.h"

#define RT_FILE_MAX (4 << 20)
#define RT_MSG 600

typedef struct {
    unsigned passed, failed, unusable;
} rt_counts;

static void unusable(rt_counts *n, const char *where, const char *why)
{
    fprintf(stderr, "dealgate test: %s: %s\n", where, why ? why : "unusable");
    n->unusable++;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= RT_FILE_MAX) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || !buf) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int keys_ok(const cJSON *o, const char *const *known, size_t n, const char **bad)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        size_t k = 0;
        while (k < n && strcmp(known[k], it->string) != 0)
            k++;
        if (k == n) {
            *bad = it->string;
            return 0;
        }
    }
    return 1;
}

static char *xstrdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *obj_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The fact for cloud `key` from the case's spec (NULL: not found). Returns NULL on
 * success, else what is wrong with the spec. */
static const char *make_fact(const struct cfg *c, const dg_event *ev, const char *key,
                             const cJSON *spec, dg_reg_fact *f)
{
    const cfg_cloud *cc = cfg_cloud_find(c, key);
    const conn_backend *be = cc ? conn_backend_for(cc->connector) : NULL;
    const char *crm_reg = NULL;
    for (size_t i = 0; i < ev->nregs; i++)
        if (strcasecmp(ev->regs[i].cloud, key) == 0) crm_reg = ev->regs[i].id;
    memset(f, 0, sizeof *f);
    f->cloud = strdup(key);
    f->source = xstrdup0(be ? be->name : "file");
    f->by_crm_id = crm_reg == NULL;
    f->id = xstrdup0(crm_reg);
    f->lookup = DG_LOOKUP_NOT_FOUND;
    if (crm_reg && be && be->valid_id && !be->valid_id(crm_reg)) {
        char buf[200];
        snprintf(buf, sizeof buf, "invalid %s registration id syntax",
                 cc->name ? cc->name : cc->key);
        f->error = strdup(buf);
        return NULL;
    }
    if (spec == NULL) {
        /* presence only: an id in the CRM counts (what connector = none answers) */
        if (cc && cc->connector == CFG_CONN_NONE && crm_reg) f->lookup = DG_LOOKUP_FOUND;
        return NULL;
    }
    if (cJSON_IsString(spec)) {
        if (strcmp(spec->valuestring, "not_found") == 0) return NULL;
        if (strcmp(spec->valuestring, "error") == 0) {
            f->lookup = DG_LOOKUP_FAILED;
            f->retryable = 1;
            f->error = strdup("look-up failed (test case)");
            return NULL;
        }
        return "a registration is an object, \"not_found\" or \"error\"";
    }
    if (!cJSON_IsObject(spec)) return "a registration is an object, \"not_found\" or \"error\"";
    static const char *const known[] = {"id",     "status", "crm_id",   "created_at",
                                        "origin", "error",  "retryable"};
    const char *bad = NULL;
    if (!keys_ok(spec, known, sizeof known / sizeof known[0], &bad))
        return "unknown key in a registration (id, status, crm_id, created_at, origin, error, "
               "retryable)";
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(spec, "error");
    if (err) {
        if (!cJSON_IsString(err)) return "registration error must be a string";
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(spec, "retryable");
        f->lookup = DG_LOOKUP_FAILED;
        f->retryable = r ? cJSON_IsTrue(r) : 1;
        f->error = strdup(err->valuestring);
        return NULL;
    }
    f->lookup = DG_LOOKUP_FOUND;
    const char *id = obj_str(spec, "id");
    if (id) {
        free(f->id);
        f->id = strdup(id);
    }
    f->status = xstrdup0(obj_str(spec, "status"));
    f->crm_id = xstrdup0(obj_str(spec, "crm_id"));
    f->created_at = xstrdup0(obj_str(spec, "created_at"));
    f->origin = xstrdup0(obj_str(spec, "origin"));
    return NULL;
}

/* Sorted copies of the codes of v (for an order-free comparison) as "a, b" into out. */
static int code_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void codes_text(const dg_reason *v, size_t n, char *out, size_t cap)
{
    const char *tmp[64];
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++)
        tmp[i] = v[i].code;
    qsort(tmp, k, sizeof tmp[0], code_cmp);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < k && o < cap; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", tmp[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* The expected codes (a JSON array of strings) as sorted text; NULL if malformed. */
static int expected_codes(const cJSON *arr, char *out, size_t cap)
{
    if (!cJSON_IsArray(arr)) return 0;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n > 64) return 0;
    dg_reason tmp[64];
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) return 0;
        tmp[k++] = (dg_reason){.code = it->valuestring};
    }
    codes_text(tmp, k, out, cap);
    return 1;
}

/* Runs one case; returns 1 passed, 0 failed, -1 unusable (message in why). */
static int run_case(const struct cfg *c, const cJSON *cs, char *why, size_t whylen)
{
    static const char *const known[] = {
        "name",      "description", "event", "registrations", "last_stage", "last_stage_value",
        "overrides", "retry_since", "now",   "expect"};
    const char *bad = NULL;
    int result = -1;
    dg_event ev = {0};
    dg_facts facts = {0};
    dg_decision d = {0};
    const char **clouds = NULL;
    size_t nclouds = 0;
    char err[400];
    if (!cJSON_IsObject(cs)) {
        snprintf(why, whylen, "a case must be a JSON object");
        return -1;
    }
    if (!keys_ok(cs, known, sizeof known / sizeof known[0], &bad)) {
        snprintf(why, whylen, "unknown key \"%.60s\" in the case", bad);
        return -1;
    }
    const cJSON *event = cJSON_GetObjectItemCaseSensitive(cs, "event");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(cs, "expect");
    const cJSON *regs = cJSON_GetObjectItemCaseSensitive(cs, "registrations");
    if (!cJSON_IsObject(event) || !cJSON_IsObject(expect)) {
        snprintf(why, whylen, "a case needs \"event\" and \"expect\" objects");
        return -1;
    }
    static const char *const ekeys[] = {"outcome",   "reasons",          "warnings",
                                        "revert_to", "message_contains", "gated"};
    if (!keys_ok(expect, ekeys, sizeof ekeys / sizeof ekeys[0], &bad)) {
        snprintf(why, whylen,
                 "unknown key \"%.60s\" in expect (outcome, reasons, warnings, revert_to, "
                 "message_contains, gated)",
                 bad);
        return -1;
    }
    const char *want = obj_str(expect, "outcome");
    if (!want || (strcmp(want, "allow") && strcmp(want, "block") && strcmp(want, "retry"))) {
        snprintf(why, whylen, "expect.outcome must be allow, block or retry");
        return -1;
    }
    if (regs && !cJSON_IsObject(regs)) {
        snprintf(why, whylen, "\"registrations\" must be an object keyed by cloud");
        goto done;
    }
    if (gate_event_from_json(c, event, &ev, err, sizeof err) != DG_OK) {
        snprintf(why, whylen, "event: %s", err);
        goto done;
    }
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    const char *now_s = obj_str(cs, "now");
    if (cJSON_GetObjectItemCaseSensitive(cs, "now") &&
        (!now_s || !gate_time_parse(now_s, 1, &now_ms))) {
        snprintf(why, whylen, "\"now\" must be an RFC 3339 time");
        goto done;
    }
    const char *since = obj_str(cs, "retry_since");
    int64_t since_ms = 0;
    if (cJSON_GetObjectItemCaseSensitive(cs, "retry_since")) {
        if (!since || !gate_time_parse(since, 1, &since_ms)) {
            snprintf(why, whylen, "\"retry_since\" must be an RFC 3339 time");
            goto done;
        }
        facts.retry_since = since_ms / 1000;
    }
    facts.last_stage = xstrdup0(obj_str(cs, "last_stage"));
    facts.last_stage_raw = xstrdup0(obj_str(cs, "last_stage_value"));
    const cJSON *ovs = cJSON_GetObjectItemCaseSensitive(cs, "overrides");
    if (ovs) {
        int n = cJSON_IsArray(ovs) ? cJSON_GetArraySize(ovs) : -1;
        if (n < 0 || n > 64) {
            snprintf(why, whylen, "\"overrides\" must be an array (at most 64)");
            goto done;
        }
        facts.overrides = calloc((size_t)n + 1, sizeof *facts.overrides);
        if (!facts.overrides) goto oom;
        const cJSON *o;
        cJSON_ArrayForEach(o, ovs)
        {
            static const char *const okeys[] = {"id", "rule", "approved_by", "reason",
                                                "expires_at"};
            const char *rule = obj_str(o, "rule"), *exp = obj_str(o, "expires_at");
            int64_t exp_ms = 0;
            if (!cJSON_IsObject(o) || !keys_ok(o, okeys, 5, &bad) || !rule || !exp ||
                !gate_time_parse(exp, 1, &exp_ms)) {
                snprintf(why, whylen,
                         "an override is {\"rule\", \"expires_at\" (RFC 3339), \"approved_by\", "
                         "\"reason\", \"id\"}");
                goto done;
            }
            dg_override *x = &facts.overrides[facts.noverrides++];
            x->id = strdup(obj_str(o, "id") ? obj_str(o, "id") : "ov_TEST");
            x->rule = strdup(rule);
            x->approved_by = xstrdup0(obj_str(o, "approved_by"));
            x->reason = xstrdup0(obj_str(o, "reason"));
            x->expires_at = exp_ms / 1000 + (exp_ms % 1000 != 0);
        }
    }
    const cJSON *spec;
    cJSON_ArrayForEach(spec, regs)
    {
        if (!cfg_cloud_find(c, spec->string)) {
            snprintf(why, whylen, "registrations: \"%.60s\" is not a configured cloud",
                     spec->string);
            goto done;
        }
    }
    if (rules_lookup_clouds(c, &ev, facts.last_stage, &clouds, &nclouds) != DG_OK) goto oom;
    if (nclouds > 0) {
        facts.regs = calloc(nclouds, sizeof *facts.regs);
        if (!facts.regs) goto oom;
    }
    for (size_t i = 0; i < nclouds; i++) {
        const cJSON *s = NULL;
        cJSON_ArrayForEach(spec, regs)
        {
            if (strcasecmp(spec->string, clouds[i]) == 0) s = spec;
        }
        const char *problem = make_fact(c, &ev, clouds[i], s, &facts.regs[facts.nregs++]);
        if (problem) {
            snprintf(why, whylen, "registrations.%.60s: %s", clouds[i], problem);
            goto done;
        }
    }
    if (rules_decide(c, &ev, &facts, now_ms / 1000, &d, err, sizeof err) != DG_OK) {
        snprintf(why, whylen, "the rules refused the event: %s", err);
        goto done;
    }

    /* compare */
    char got_codes[RT_MSG], want_codes[RT_MSG];
    const char *got = rules_outcome_name(d.outcome);
    result = 0;
    if (strcmp(got, want) != 0) {
        codes_text(d.reasons, d.nreasons, got_codes, sizeof got_codes);
        snprintf(why, whylen, "expected %s, got %s%s%.400s%s", want, got, d.nreasons ? " (" : "",
                 d.nreasons ? got_codes : "", d.nreasons ? ")" : "");
        goto done;
    }
    const char *lists[2] = {"reasons", "warnings"};
    for (int k = 0; k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(expect, lists[k]);
        if (!arr) continue;
        if (!expected_codes(arr, want_codes, sizeof want_codes)) {
            snprintf(why, whylen, "expect.%s must be an array of code strings", lists[k]);
            result = -1;
            goto done;
        }
        if (k == 0)
            codes_text(d.reasons, d.nreasons, got_codes, sizeof got_codes);
        else
            codes_text(d.warnings, d.nwarnings, got_codes, sizeof got_codes);
        if (strcmp(got_codes, want_codes) != 0) {
            snprintf(why, whylen, "expected %s [%.300s], got [%.300s]", lists[k], want_codes,
                     got_codes);
            goto done;
        }
    }
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(expect, "revert_to");
    if (rv) {
        const char *w = cJSON_IsString(rv) ? rv->valuestring : NULL;
        if (!cJSON_IsNull(rv) && !w) {
            snprintf(why, whylen, "expect.revert_to must be a stage name or null");
            result = -1;
            goto done;
        }
        if ((w == NULL) != (d.revert_to == NULL) || (w && strcmp(w, d.revert_to) != 0)) {
            snprintf(why, whylen, "expected revert_to %s, got %s", w ? w : "null",
                     d.revert_to ? d.revert_to : "null");
            goto done;
        }
    }
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(expect, "message_contains");
    if (mc) {
        if (!cJSON_IsString(mc)) {
            snprintf(why, whylen, "expect.message_contains must be a string");
            result = -1;
            goto done;
        }
        if (!strstr(d.message ? d.message : "", mc->valuestring)) {
            snprintf(why, whylen, "message \"%.300s\" does not contain \"%.100s\"",
                     d.message ? d.message : "", mc->valuestring);
            goto done;
        }
    }
    const cJSON *gated = cJSON_GetObjectItemCaseSensitive(expect, "gated");
    if (gated) {
        if (!cJSON_IsBool(gated)) {
            snprintf(why, whylen, "expect.gated must be true or false");
            result = -1;
            goto done;
        }
        if (cJSON_IsTrue(gated) != (d.gated != 0)) {
            snprintf(why, whylen, "expected gated %s, got %s",
                     cJSON_IsTrue(gated) ? "true" : "false", d.gated ? "true" : "false");
            goto done;
        }
    }
    result = 1;
    goto done;
oom:
    snprintf(why, whylen, "out of memory");
    result = -1;
done:
    free(clouds);
    dg_decision_free(&d);
    dg_facts_free(&facts);
    dg_event_free(&ev);
    return result;
}

/* Runs every case of one file. */
static void run_file(const struct cfg *c, const char *path, rt_counts *n)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        unusable(n, path, strerror(errno));
        return;
    }
    cJSON *root = NULL;
    char err[400];
    if (gate_json_parse(text, len, &root, err, sizeof err) != DG_OK) {
        unusable(n, path, err);
        free(text);
        return;
    }
    free(text);
    const cJSON *cases = root;
    if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "cases"))
        cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    int single = cJSON_IsObject(cases);
    if (!single && !cJSON_IsArray(cases)) {
        unusable(n, path, "expected a case, an array of cases or {\"cases\": [...]}");
        cJSON_Delete(root);
        return;
    }
    int idx = 0;
    const cJSON *cs = single ? cases : cases->child;
    for (; cs; cs = single ? NULL : cs->next, idx++) {
        char where[512], why[RT_MSG + 200] = "";
        const char *name = obj_str(cs, "name");
        if (single)
            snprintf(where, sizeof where, "%s", path);
        else
            snprintf(where, sizeof where, "%s#%d", path, idx + 1);
        int r = run_case(c, cs, why, sizeof why);
        if (r < 0) {
            unusable(n, where, why);
        } else if (r > 0) {
            n->passed++;
            printf("PASS %s%s%s\n", where, name ? ": " : "", name ? name : "");
        } else {
            n->failed++;
            printf("FAIL %s%s%s: %s\n", where, name ? ": " : "", name ? name : "", why);
        }
    }
    cJSON_Delete(root);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory: its *.json files in name order. */
static void run_dir(const struct cfg *c, const char *dir, rt_counts *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        unusable(n, dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".json")) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) break;
            names = nv;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if ((names[cnt] = malloc(len)) == NULL) break;
        snprintf(names[cnt], len, "%s/%s", dir, e->d_name);
        cnt++;
    }
    closedir(d);
    if (cnt > 1) qsort(names, cnt, sizeof *names, name_cmp); /* names is NULL when empty */
    if (cnt == 0) unusable(n, dir, "no *.json case files");
    for (size_t i = 0; i < cnt; i++) {
        run_file(c, names[i], n);
        free(names[i]);
    }
    free(names);
}

int gate_rule_tests_main(int argc, char **argv)
{
    char *cases[argc + 1]; /* the arguments that are not "-c FILE" */
    int nargs = 0;
    const char *path = gate_cli_config_arg(argc, argv, cases, &nargs);
    if (!path) return 2;
    if (nargs == 0) {
        fprintf(stderr, "usage: dealgate test [-c FILE] CASES...  (case files or directories)\n");
        return 2;
    }
    struct cfg *c = gate_cli_load(path, 0);
    if (!c) {
        printf("0 passed, 0 failed\n");
        return 2;
    }
    rt_counts n = {0};
    for (int i = 0; i < nargs; i++) {
        struct stat sb;
        if (stat(cases[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            run_dir(c, cases[i], &n);
        else
            run_file(c, cases[i], &n);
    }
    cfg_free(c);
    printf("%u passed, %u failed\n", n.passed, n.failed);
    if (n.unusable > 0) return 2;
    return n.failed > 0 ? 1 : 0;
}
