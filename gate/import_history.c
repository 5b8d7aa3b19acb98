/* import_history.c — `dealgate import-history [-c FILE] history.csv` (import_history.h).
 *
 * A CRM stage-history export becomes decisions of adapter "import": one per stage change,
 * outcome allow, not gated (nothing was checked), at the time the change happened. The log
 * then knows each deal's stage and its closes and wins, so the KPIs have a baseline from
 * day one. The event id of a row is derived from deal, stage and time, and (adapter,
 * event id) is unique in the log: importing the same export twice, or two overlapping
 * exports, adds each change once. Rows are read with libcsv one physical line at a time
 * (so a quoted field may span lines and errors still name the line); header names are
 * matched case-insensitively ignoring spaces, '_', '-' and '.', with the Salesforce
 * (OpportunityFieldHistory, Opportunity report) and HubSpot (deal export, property history)
 * spellings accepted: docs/operations.md lists them. A bad row is reported as
 * "line N: message" on stderr and skipped; the others are imported.
 */
#include "gate/import_history.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "config/sha256.h"
#include "gate/cli.h"
#include "gate/dlog.h"
#include "gate/event.h"
#include "gate/gate.h"
#include "gate/timeparse.h"

#define IH_FIELD_MAX 4096 /* bytes of one cell */
#define IH_FIELDS_MAX 512 /* cells of one row */
#define IH_NORM_MAX 128   /* a normalised header name */
#define IH_ERRORS_SHOWN 200

enum {
    C_DEAL,
    C_STAGE,
    C_FROM,
    C_FIELD,
    C_TIME,
    C_AMOUNT,
    C_CURRENCY,
    C_CLOUDS,
    C_NAME,
    C_ACCOUNT,
    C_OWNER,
    C_PIPELINE,
    C_REGS,
    C_COUNT
};

/* Accepted header names per column, normalised (lower case, no ' ', '_', '-', '.'). */
static const char *const col_names[C_COUNT][12] = {
    [C_DEAL] = {"dealid", "opportunityid", "opportunity", "recordid", "hsobjectid", "oppid", "deal",
                "id", NULL},
    [C_STAGE] = {"stage", "stagename", "newvalue", "dealstage", "tostage", "newstage", NULL},
    [C_FROM] = {"fromstage", "oldvalue", "previousstage", "priorstagename", "oldstage", NULL},
    [C_FIELD] = {"field", "property", "propertyname", NULL},
    [C_TIME] = {"time", "timestamp", "createddate", "changedat", "changedate", "date", "updatedat",
                "dateentered", "enteredat", "lastmodifieddate", NULL},
    [C_AMOUNT] = {"amount", "dealamount", NULL},
    [C_CURRENCY] = {"currency", "currencyisocode", "dealcurrencycode", NULL},
    [C_CLOUDS] = {"clouds", "cloudprograms", "cloudprogramsc", "cloudprogram", NULL},
    [C_NAME] = {"name", "opportunityname", "dealname", NULL},
    [C_ACCOUNT] = {"account", "accountname", "company", NULL},
    [C_OWNER] = {"owner", "owneremail", "dealowner", "opportunityowner", NULL},
    [C_PIPELINE] = {"pipeline", NULL},
    [C_REGS] = {"registrations", "registrationids", NULL},
};

static const char *const col_label[C_COUNT] = {
    "deal id", "stage", "from stage", "field", "time",     "amount",       "currency",
    "clouds",  "name",  "account",    "owner", "pipeline", "registrations"};

typedef struct {
    int col;           /* cell index */
    const char *cloud; /* cloud key (borrowed from the config) */
} reg_col;

typedef struct {
    const struct cfg *c;
    dlog *log;
    int col[C_COUNT]; /* cell index of each column, -1 when absent */
    reg_col regs[32];
    size_t nregs;
    int have_header;
    /* the row being read */
    char *cells[IH_FIELDS_MAX];
    size_t ncells;
    int too_long;
    long line; /* physical lines fed so far */
    /* counts */
    unsigned long imported, already, skipped, failed, rows;
    int fatal; /* the log refused a write: stop */
    char fatal_msg[700];
} ih_state;

static void normalise(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    for (; *s && o + 1 < cap; s++) {
        char ch = *s;
        if (ch == ' ' || ch == '_' || ch == '-' || ch == '.' || ch == '\t') continue;
        out[o++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[o] = '\0';
}

/* A cloud key for registration header h (normalised), or NULL. */
static const char *reg_cloud(const struct cfg *c, const char *h)
{
    for (size_t i = 0; i < c->nclouds; i++) {
        char k[IH_NORM_MAX], a[IH_NORM_MAX + 32];
        normalise(c->clouds[i].key, k, sizeof k);
        const char *forms[] = {"registration%s", "%sregistration", "%sregistrationid",
                               "%sregistrationids"};
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            snprintf(a, sizeof a, forms[f], k);
            if (strcmp(a, h) == 0) return c->clouds[i].key;
        }
    }
    /* the Salesforce adapter's field names, by connector (else the usual key) */
    static const struct {
        const char *h;
        cfg_connector conn;
        const char *key;
    } sf[] = {{"aceopportunityid", CFG_CONN_ACE, "aws"},
              {"partnercenterreferralid", CFG_CONN_PARTNER_CENTER, "azure"},
              {"gcpopportunityid", CFG_CONN_GCP, "gcp"}};
    for (size_t i = 0; i < sizeof sf / sizeof sf[0]; i++) {
        if (strcmp(h, sf[i].h) != 0) continue;
        for (size_t j = 0; j < c->nclouds; j++)
            if (c->clouds[j].connector == sf[i].conn) return c->clouds[j].key;
        const cfg_cloud *cc = cfg_cloud_find(c, sf[i].key);
        return cc ? cc->key : NULL;
    }
    /* [hubspot] property.registration.<cloud> = <property> */
    for (size_t i = 0; i < c->hubspot.nproperties; i++) {
        const cfg_map *m = &c->hubspot.properties[i];
        if (!m->label || strncmp(m->label, "registration.", 13) != 0 || !m->cloud) continue;
        char p[IH_NORM_MAX];
        normalise(m->cloud, p, sizeof p);
        if (strcmp(p, h) == 0) {
            const cfg_cloud *cc = cfg_cloud_find(c, m->label + 13);
            return cc ? cc->key : NULL;
        }
    }
    return NULL;
}

static void header(ih_state *s)
{
    for (int k = 0; k < C_COUNT; k++)
        s->col[k] = -1;
    char ignored[512] = "";
    size_t io = 0;
    for (size_t i = 0; i < s->ncells; i++) {
        char h[IH_NORM_MAX];
        normalise(s->cells[i], h, sizeof h);
        int hit = 0;
        for (int k = 0; k < C_COUNT && !hit; k++)
            for (int j = 0; col_names[k][j] && !hit; j++)
                if (strcmp(col_names[k][j], h) == 0 && s->col[k] < 0) {
                    s->col[k] = (int)i;
                    hit = 1;
                }
        const char *cloud = hit ? NULL : reg_cloud(s->c, h);
        if (cloud && s->nregs < sizeof s->regs / sizeof s->regs[0]) {
            s->regs[s->nregs++] = (reg_col){(int)i, cloud};
            hit = 1;
        }
        if (!hit && io + 1 < sizeof ignored) {
            int w = snprintf(ignored + io, sizeof ignored - io, "%s\"%.40s\"", io ? ", " : "",
                             s->cells[i]);
            if (w > 0) io += (size_t)w;
        }
    }
    if (io > 0)
        fprintf(stderr, "dealgate import-history: columns ignored: %s\n",
                io >= sizeof ignored ? "(many)" : ignored);
    s->have_header = 1;
    static const int required[] = {C_DEAL, C_STAGE, C_TIME};
    for (size_t r = 0; r < 3 && !s->fatal; r++) {
        int k = required[r];
        if (s->col[k] >= 0) continue;
        char names[300] = "";
        size_t o = 0;
        for (int j = 0; col_names[k][j] && o < sizeof names; j++) {
            int w = snprintf(names + o, sizeof names - o, "%s%s", j ? ", " : "", col_names[k][j]);
            if (w < 0) break;
            o += (size_t)w;
        }
        s->fatal = 1;
        snprintf(s->fatal_msg, sizeof s->fatal_msg,
                 "line %ld: the header has no %s column (accepted, ignoring case, spaces and "
                 "'_': %s)",
                 s->line, col_label[k], names);
    }
}

static const char *cell(const ih_state *s, int k)
{
    int i = s->col[k];
    if (i < 0 || (size_t)i >= s->ncells) return NULL;
    return s->cells[i][0] ? s->cells[i] : NULL;
}

static void line_error(ih_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_error(ih_state *s, const char *fmt, ...)
{
    s->failed++;
    if (s->failed > IH_ERRORS_SHOWN) return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "line %ld: %s\n", s->line, msg);
    if (s->failed == IH_ERRORS_SHOWN)
        fprintf(stderr, "dealgate import-history: further line errors are counted, not shown\n");
}

/* Maps one label of a clouds cell to a cloud key: [salesforce] / [hubspot] cloud.<label>
 * maps, else the key itself (any case). */
static const char *map_cloud(const struct cfg *c, const char *label)
{
    const cfg_map *maps[2] = {c->salesforce.clouds, c->hubspot.clouds};
    size_t n[2] = {c->salesforce.nclouds, c->hubspot.nclouds};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n[k]; i++)
            if (maps[k][i].label && strcasecmp(maps[k][i].label, label) == 0)
                return maps[k][i].cloud;
    const cfg_cloud *cc = cfg_cloud_find(c, label);
    if (cc) return cc->key;
    for (size_t i = 0; i < c->nclouds; i++)
        if (strcasecmp(c->clouds[i].key, label) == 0) return c->clouds[i].key;
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Splits a list cell ("AWS;Azure", "aws, gcp") and calls fn on each item. Returns 0, or
 * -1 when fn refused an item (already reported). */
static int each_item(ih_state *s, const char *text, dg_event *ev,
                     int (*fn)(ih_state *, dg_event *, char *))
{
    char buf[IH_FIELD_MAX + 1];
    snprintf(buf, sizeof buf, "%s", text);
    char *p = buf;
    while (p) {
        char *sep = strpbrk(p, ";,");
        if (sep) *sep = '\0';
        char *item = trim(p);
        if (*item && fn(s, ev, item) != 0) return -1;
        p = sep ? sep + 1 : NULL;
    }
    return 0;
}

static int add_cloud(ih_state *s, dg_event *ev, char *label)
{
    char err[300];
    const char *key = map_cloud(s->c, label);
    if (!key) {
        line_error(s,
                   "cloud \"%.60s\" is not configured (a [cloud:KEY] key, or a [salesforce] / "
                   "[hubspot] cloud.<label>)",
                   label);
        return -1;
    }
    if (gate_event_add_cloud(s->c, ev, key, "clouds", err, sizeof err) != DG_OK) {
        line_error(s, "%s", err);
        return -1;
    }
    return 0;
}

/* "aws:O123" items of a registrations cell. */
static int add_reg_item(ih_state *s, dg_event *ev, char *item)
{
    char err[300];
    char *colon = strchr(item, ':');
    if (!colon) {
        line_error(s, "registrations: \"%.60s\" is not cloud:id", item);
        return -1;
    }
    *colon = '\0';
    const char *key = map_cloud(s->c, trim(item));
    if (!key) {
        line_error(s, "registrations: cloud \"%.60s\" is not configured", item);
        return -1;
    }
    if (gate_event_add_reg(s->c, ev, key, trim(colon + 1), "registrations", err, sizeof err) !=
        DG_OK) {
        line_error(s, "%s", err);
        return -1;
    }
    return 0;
}

/* The amount cell without thousands separators or spaces. */
static void clean_amount(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 1 < cap; in++)
        if (*in != ',' && *in != ' ' && *in != '\'') out[o++] = *in;
    out[o] = '\0';
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* Imports the row in s->cells. */
static void row(ih_state *s)
{
    dg_event ev = {0};
    char err[300], id[40], ts[32], eid[80], amount[64];
    cJSON *o = NULL, *regs = NULL, *clouds = NULL;
    char *dec_t = NULL, *regs_t = NULL, *clouds_t = NULL;
    const struct cfg *c = s->c;
    s->rows++;

    const char *field = cell(s, C_FIELD);
    if (field) {
        char f[IH_NORM_MAX];
        normalise(field, f, sizeof f);
        if (strcmp(f, "stagename") != 0 && strcmp(f, "dealstage") != 0 && strcmp(f, "stage") != 0) {
            s->skipped++; /* a history row of another field */
            goto done;
        }
    }
    const char *deal = cell(s, C_DEAL), *stage = cell(s, C_STAGE), *when = cell(s, C_TIME);
    if (!deal || !stage || !when) {
        line_error(s, "%s is empty", !deal ? "the deal id" : !stage ? "the stage" : "the time");
        goto done;
    }
    if (gate_event_check_id(deal, "deal id", err, sizeof err) != DG_OK ||
        gate_event_set_str(&ev.opp_id, deal, DG_ID_MAX, "deal id", err, sizeof err) != DG_OK ||
        gate_event_set_str(&ev.to_stage, stage, 256, "stage", err, sizeof err) != DG_OK ||
        gate_event_set_str(&ev.from_stage, cell(s, C_FROM), 256, "from stage", err, sizeof err) !=
            DG_OK ||
        gate_event_set_str(&ev.name, cell(s, C_NAME), 512, "name", err, sizeof err) != DG_OK ||
        gate_event_set_str(&ev.account, cell(s, C_ACCOUNT), 512, "account", err, sizeof err) !=
            DG_OK ||
        gate_event_set_str(&ev.owner, cell(s, C_OWNER), 512, "owner", err, sizeof err) != DG_OK ||
        gate_event_set_str(&ev.pipeline, cell(s, C_PIPELINE), 256, "pipeline", err, sizeof err) !=
            DG_OK) {
        line_error(s, "%s", err);
        goto done;
    }
    int64_t t_ms = 0;
    if (!gate_time_parse(when, 1, &t_ms)) {
        line_error(s, "time \"%.60s\" is not a date or date-time (2026-10-01T09:00:00Z)", when);
        goto done;
    }
    const cfg_pipeline *p = cfg_pipeline_find(c, ev.pipeline);
    if (!p && ev.pipeline && strcasecmp(ev.pipeline, "default") == 0)
        p = cfg_pipeline_find(c, NULL);
    if (!p) {
        line_error(s, "pipeline \"%.60s\" is not configured ([pipeline:NAME])", ev.pipeline);
        goto done;
    }
    const char *pname = p == &c->pipelines[0] ? "default" : p->name;
    int to = cfg_stage_index(p, stage);
    if (to < 0) {
        line_error(s, "stage \"%.60s\" is not in pipeline %s (add it, or alias.<value> = <stage>)",
                   stage, pname);
        goto done;
    }
    int from = ev.from_stage ? cfg_stage_index(p, ev.from_stage) : -1;
    clean_amount(cell(s, C_AMOUNT) ? cell(s, C_AMOUNT) : "", amount, sizeof amount);
    if (gate_event_set_amount(c, &ev, amount, NULL, cell(s, C_CURRENCY), "amount", err,
                              sizeof err) != DG_OK) {
        line_error(s, "%s", err);
        goto done;
    }
    if (cell(s, C_CLOUDS) && each_item(s, cell(s, C_CLOUDS), &ev, add_cloud) != 0) goto done;
    if (cell(s, C_REGS) && each_item(s, cell(s, C_REGS), &ev, add_reg_item) != 0) goto done;
    for (size_t i = 0; i < s->nregs; i++) {
        int ci = s->regs[i].col;
        if ((size_t)ci >= s->ncells || !s->cells[ci][0]) continue;
        if (gate_event_add_reg(c, &ev, s->regs[i].cloud, trim(s->cells[ci]), "registration", err,
                               sizeof err) != DG_OK) {
            line_error(s, "%s", err);
            goto done;
        }
    }

    int won = 0, lost = 0;
    for (size_t i = 0; i < p->won.n; i++)
        won |= strcmp(p->won.v[i], p->stages.v[to]) == 0;
    for (size_t i = 0; i < p->lost.n; i++)
        lost |= strcmp(p->lost.v[i], p->stages.v[to]) == 0;

    /* idempotency: the same change (deal, stage value, time) is one event */
    char key[DG_ID_MAX + 300], hex[65];
    int kn = snprintf(key, sizeof key, "%s\x1f%s\x1f%lld", deal, stage, (long long)t_ms);
    dg_sha256_hex(key, kn > 0 ? (size_t)kn : 0, hex);
    snprintf(eid, sizeof eid, "imp_%.32s", hex);
    gate_new_id("dg_", id, sizeof id);
    gate_time_format(t_ms, ts);

    regs = cJSON_CreateArray();
    for (size_t i = 0; regs && i < ev.nregs; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        cJSON_AddStringToObject(r, "cloud", ev.regs[i].cloud);
        cJSON_AddStringToObject(r, "id", ev.regs[i].id);
        cJSON_AddNullToObject(r, "status");
        cJSON_AddBoolToObject(r, "verified", 0); /* the export says so; nobody checked */
        cJSON_AddStringToObject(r, "source", "import");
        cJSON_AddNullToObject(r, "created_at");
        cJSON_AddNullToObject(r, "origin");
        cJSON_AddStringToObject(r, "lookup", "skipped");
        cJSON_AddItemToArray(regs, r);
    }
    clouds = cJSON_CreateArray();
    for (size_t i = 0; clouds && i < ev.nclouds; i++)
        cJSON_AddItemToArray(clouds, cJSON_CreateString(ev.clouds[i]));
    o = cJSON_CreateObject();
    if (!o || !regs || !clouds) goto oom;
    cJSON_AddStringToObject(o, "decision_id", id);
    cJSON_AddBoolToObject(o, "allowed", 1);
    cJSON_AddStringToObject(o, "outcome", "allow");
    cJSON_AddStringToObject(o, "mode", "enforce");
    cJSON_AddStringToObject(o, "message", "");
    cJSON_AddItemToObject(o, "reasons", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "warnings", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "registrations", cJSON_Duplicate(regs, 1));
    cJSON_AddNullToObject(o, "revert_to");
    cJSON_AddNullToObject(o, "revert_to_value");
    cJSON_AddStringToObject(o, "opportunity_id", ev.opp_id);
    cJSON_AddStringToObject(o, "pipeline", pname);
    add_str_or_null(o, "from_stage", from >= 0 ? p->stages.v[from] : NULL);
    cJSON_AddStringToObject(o, "to_stage", p->stages.v[to]);
    add_str_or_null(o, "from_value", ev.from_stage);
    cJSON_AddStringToObject(o, "to_value", ev.to_stage);
    cJSON_AddBoolToObject(o, "gated", 0);
    add_str_or_null(o, "owner", ev.owner);
    add_str_or_null(o, "name", ev.name);
    cJSON_AddStringToObject(o, "adapter", "import");
    cJSON_AddStringToObject(o, "event_id", eid);
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "config_version", c->version);
    cJSON_AddNumberToObject(o, "latency_ms", 0);
    cJSON_AddBoolToObject(o, "imported", 1);
    if (!(dec_t = cJSON_PrintUnformatted(o)) || !(regs_t = cJSON_PrintUnformatted(regs)) ||
        !(clouds_t = cJSON_PrintUnformatted(clouds)))
        goto oom;
    char hash[65];
    dg_sha256_hex(key, kn > 0 ? (size_t)kn : 0, hash);
    dlog_decision d = {
        .id = id,
        .time_ms = t_ms,
        .adapter = "import",
        .event_id = eid,
        .body_hash = hash,
        .opp_id = ev.opp_id,
        .pipeline = pname,
        .name = ev.name,
        .account = ev.account,
        .owner = ev.owner,
        .has_amount = ev.has_amount,
        .amount = ev.amount,
        .currency = ev.currency,
        .clouds_json = clouds_t,
        .from_stage = from >= 0 ? p->stages.v[from] : NULL,
        .from_raw = ev.from_stage,
        .to_stage = p->stages.v[to],
        .to_raw = ev.to_stage,
        .outcome = "allow",
        .mode = "enforce",
        .message = "",
        .reasons_json = "[]",
        .warnings_json = "[]",
        .registrations_json = regs_t,
        .config_version = c->version,
        .won = won,
        .lost = lost,
        .decision_json = dec_t,
    };
    dg_err rc = dlog_append(s->log, &d, err, sizeof err);
    if (rc == DG_OK) {
        s->imported++;
    } else if (rc == DG_EEXISTS) {
        s->already++;
    } else if (rc == DG_EINVAL) {
        line_error(s, "%s", err);
    } else {
        s->fatal = 1;
        snprintf(s->fatal_msg, sizeof s->fatal_msg, "line %ld: %.400s", s->line, err);
    }
    goto done;
oom:
    s->fatal = 1;
    snprintf(s->fatal_msg, sizeof s->fatal_msg, "out of memory");
done:
    cJSON_Delete(o);
    cJSON_Delete(regs);
    cJSON_Delete(clouds);
    free(dec_t);
    free(regs_t);
    free(clouds_t);
    dg_event_free(&ev);
}

/* ---- libcsv callbacks ------------------------------------------------------------------ */

static void on_field(void *data, size_t len, void *user)
{
    ih_state *s = user;
    if (s->ncells >= IH_FIELDS_MAX || len > IH_FIELD_MAX) {
        s->too_long = 1;
        return;
    }
    char *f = malloc(len + 1);
    if (!f) {
        s->too_long = 1;
        return;
    }
    if (len) memcpy(f, data, len);
    f[len] = '\0';
    s->cells[s->ncells++] = f;
}

static void on_record(int ch, void *user)
{
    ih_state *s = user;
    (void)ch;
    int blank = s->ncells == 0 || (s->ncells == 1 && s->cells[0][0] == '\0');
    if (s->fatal) {
        /* the log refused a write: the rest is not attempted */
    } else if (s->too_long) {
        if (!s->have_header) {
            s->fatal = 1;
            snprintf(s->fatal_msg, sizeof s->fatal_msg,
                     "line %ld: the header has too many or too long columns", s->line);
        } else {
            s->rows++;
            line_error(s, "more than %d cells or a cell longer than %d bytes", IH_FIELDS_MAX,
                       IH_FIELD_MAX);
        }
    } else if (blank) {
        /* blank line */
    } else if (!s->have_header) {
        header(s);
    } else {
        row(s);
    }
    for (size_t i = 0; i < s->ncells; i++)
        free(s->cells[i]);
    s->ncells = 0;
    s->too_long = 0;
}

/* ---- the command ------------------------------------------------------------------------ */

int gate_import_history_main(int argc, char **argv)
{
    char *rest[argc + 1];
    int nargs = 0;
    const char *cfg_path = gate_cli_config_arg(argc, argv, rest, &nargs);
    if (!cfg_path) return 2;
    const char *csv_path = nargs == 1 ? rest[0] : NULL;
    if (!csv_path) {
        fprintf(stderr, "usage: dealgate import-history [-c FILE] history.csv\n");
        return 2;
    }
    int status = 2;
    struct cfg *c = NULL;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    struct csv_parser p;
    int csv_ok = 0;
    ih_state *s = calloc(1, sizeof *s);
    char err[400];
    if (!s) goto done;
    if (!(c = gate_cli_load(cfg_path, 0))) goto done;
    s->c = c;
    f = strcmp(csv_path, "-") == 0 ? stdin : fopen(csv_path, "rb");
    if (!f) {
        fprintf(stderr, "dealgate import-history: %s: %s\n", csv_path, strerror(errno));
        goto done;
    }
    if (dlog_open(c->server.data_dir, &s->log, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dealgate import-history: decision log in %s: %s\n", c->server.data_dir,
                err);
        goto done;
    }
    if (csv_init(&p, CSV_APPEND_NULL | CSV_STRICT | CSV_STRICT_FINI) != 0) goto done;
    csv_ok = 1;
    ssize_t n;
    while (!s->fatal && (n = getline(&line, &cap, f)) > 0) {
        s->line++;
        if ((size_t)csv_parse(&p, line, (size_t)n, on_field, on_record, s) != (size_t)n) {
            snprintf(s->fatal_msg, sizeof s->fatal_msg, "line %ld: %s", s->line,
                     csv_strerror(csv_error(&p)));
            s->fatal = 1;
        }
    }
    if (!s->fatal && ferror(f)) {
        snprintf(s->fatal_msg, sizeof s->fatal_msg, "%s: read error", csv_path);
        s->fatal = 1;
    }
    if (!s->fatal && csv_fini(&p, on_field, on_record, s) != 0) {
        snprintf(s->fatal_msg, sizeof s->fatal_msg, "line %ld: %s (an unterminated quote?)",
                 s->line, csv_strerror(csv_error(&p)));
        s->fatal = 1;
    }
    if (!s->fatal && !s->have_header) {
        snprintf(s->fatal_msg, sizeof s->fatal_msg, "%s: empty file (no header row)", csv_path);
        s->fatal = 1;
    }
    if (s->fatal) {
        fprintf(stderr, "dealgate import-history: %s\n", s->fatal_msg);
    } else {
        status = s->failed ? 1 : 0;
    }
    printf("imported %lu, already imported %lu, skipped %lu, failed %lu (%lu rows)\n", s->imported,
           s->already, s->skipped, s->failed, s->rows);
done:
    if (csv_ok) csv_free(&p);
    free(line);
    if (f && f != stdin) fclose(f);
    if (s) {
        for (size_t i = 0; i < s->ncells; i++)
            free(s->cells[i]);
        dlog_close(s->log);
    }
    free(s);
    cfg_free(c);
    return status;
}
