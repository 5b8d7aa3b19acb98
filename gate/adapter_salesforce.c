/* adapter_salesforce.c — POST /v1/gate/salesforce: a Flow HTTP Callout in, scalars out.
 *
 * Flow (External Services) sends a flat object and can only act on scalars, so the body is
 * mapped field by field onto the canonical event and the answer is the flat subset a Flow
 * branches on. Multi-select picklists arrive as "AWS;Azure"; each label goes through
 * [salesforce] cloud.<label>. The three registration fields belong to the cloud whose
 * connector speaks that system (ace, partner_center, gcp) or, with none, to the cloud key
 * of that name (aws, azure, gcp). Errors stay JSON error objects with a 4xx, which a Flow
 * takes to its fault path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/adapters.h"
#include "gate/event.h"
#include "gate/routes.h"

#define SF_TEXT_MAX 256
#define SF_PICKLIST_MAX 4096

/* Reads member key as text: a string, or (for Flow's number-typed fields) an integral
 * number. Absent, null and "" leave *out NULL. */
static dg_err sf_text(const cJSON *root, const char *key, char *buf, size_t cap, const char **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return DG_OK;
    if (cJSON_IsString(it)) {
        if (strlen(it->valuestring) > SF_TEXT_MAX)
            return dg_errf(err, errlen, DG_EINVAL, "field %s is longer than %d characters", key,
                           SF_TEXT_MAX);
        *out = *it->valuestring ? it->valuestring : NULL;
        return DG_OK;
    }
    if (cJSON_IsNumber(it) && it->valuedouble > -1e15 && it->valuedouble < 1e15 &&
        it->valuedouble == (double)(long long)it->valuedouble) { /* range first: no UB cast */
        snprintf(buf, cap, "%lld", (long long)it->valuedouble);
        *out = buf;
        return DG_OK;
    }
    return dg_errf(err, errlen, DG_EINVAL, "field %s must be a string", key);
}

static dg_err sf_str(const cJSON *root, const char *key, char **dst, char *err, size_t errlen)
{
    char num[32];
    const char *v;
    dg_err rc = sf_text(root, key, num, sizeof num, &v, err, errlen);
    if (rc != DG_OK) return rc;
    return gate_event_set_str(dst, v, SF_TEXT_MAX, key, err, errlen);
}

/* Maps one picklist label to a cloud key: [salesforce] cloud.<label>, else a cloud key of
 * that name (both case-insensitive). NULL when unmapped. */
static const char *sf_cloud_of(const struct cfg *c, const char *label)
{
    for (size_t i = 0; i < c->salesforce.nclouds; i++)
        if (strcasecmp(c->salesforce.clouds[i].label, label) == 0)
            return c->salesforce.clouds[i].cloud;
    for (size_t i = 0; i < c->nclouds; i++)
        if (strcasecmp(c->clouds[i].key, label) == 0) return c->clouds[i].key;
    return NULL;
}

static dg_err sf_add_label(const struct cfg *c, dg_event *ev, const char *label, size_t len,
                           char *err, size_t errlen)
{
    while (len && (*label == ' ' || *label == '\t'))
        label++, len--;
    while (len && (label[len - 1] == ' ' || label[len - 1] == '\t'))
        len--;
    if (len == 0) return DG_OK;
    char buf[CFG_NAME_MAX * 2];
    if (len >= sizeof buf)
        return dg_errf(err, errlen, DG_EINVAL,
                       "field cloudPrograms: a value is longer than %zu "
                       "characters",
                       sizeof buf - 1);
    memcpy(buf, label, len);
    buf[len] = '\0';
    const char *key = sf_cloud_of(c, buf);
    if (!key)
        return dg_errf(err, errlen, DG_EINVAL,
                       "field cloudPrograms: picklist value \"%s\" is not mapped to a cloud "
                       "(add [salesforce] cloud.%s = <cloud key>)",
                       buf, buf);
    return gate_event_add_cloud(c, ev, key, "cloudPrograms", err, errlen);
}

static dg_err sf_clouds(const struct cfg *c, const cJSON *root, dg_event *ev, char *err,
                        size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "cloudPrograms");
    if (!it || cJSON_IsNull(it)) return DG_OK;
    dg_err rc;
    if (cJSON_IsString(it)) {
        const char *s = it->valuestring;
        if (strlen(s) > SF_PICKLIST_MAX)
            return dg_errf(err, errlen, DG_EINVAL, "field cloudPrograms is too long");
        for (;;) {
            const char *semi = strchr(s, ';');
            size_t n = semi ? (size_t)(semi - s) : strlen(s);
            if ((rc = sf_add_label(c, ev, s, n, err, errlen)) != DG_OK) return rc;
            if (!semi) break;
            s = semi + 1;
        }
        return DG_OK;
    }
    if (cJSON_IsArray(it)) {
        int i = 0;
        for (const cJSON *e = it->child; e; e = e->next, i++) {
            if (!cJSON_IsString(e))
                return dg_errf(err, errlen, DG_EINVAL, "field cloudPrograms[%d] must be a string",
                               i);
            if ((rc = sf_add_label(c, ev, e->valuestring, strlen(e->valuestring), err, errlen)) !=
                DG_OK)
                return rc;
        }
        return DG_OK;
    }
    return dg_errf(err, errlen, DG_EINVAL,
                   "field cloudPrograms must be a string (\"AWS;Azure\") or a list of strings");
}

/* The cloud a registration field belongs to: the one cloud whose connector is `conn` (if
 * several, the one the deal names), else the cloud keyed `key`. */
static const char *sf_reg_cloud(const struct cfg *c, const dg_event *ev, cfg_connector conn,
                                const char *key, const char *field, char *err, size_t errlen)
{
    const char *found = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->nclouds; i++)
        if (c->clouds[i].connector == conn) {
            n++;
            found = c->clouds[i].key;
        }
    if (n > 1) {
        found = NULL;
        size_t on_deal = 0;
        for (size_t i = 0; i < c->nclouds; i++) {
            if (c->clouds[i].connector != conn) continue;
            for (size_t k = 0; k < ev->nclouds; k++)
                if (strcmp(ev->clouds[k], c->clouds[i].key) == 0) {
                    on_deal++;
                    found = c->clouds[i].key;
                }
        }
        if (on_deal != 1) {
            dg_errf(err, errlen, DG_EINVAL,
                    "field %s: several clouds use this co-sell system; name exactly one of them "
                    "in cloudPrograms",
                    field);
            return NULL;
        }
        return found;
    }
    if (found) return found;
    const cfg_cloud *cc = cfg_cloud_find(c, key);
    if (cc) return cc->key;
    dg_errf(err, errlen, DG_EINVAL,
            "field %s: no [cloud:%s] section (nor a cloud with this "
            "connector) to check it against",
            field, key);
    return NULL;
}

static dg_err sf_reg(const struct cfg *c, const cJSON *root, dg_event *ev, const char *field,
                     cfg_connector conn, const char *key, char *err, size_t errlen)
{
    char num[32];
    const char *id;
    dg_err rc = sf_text(root, field, num, sizeof num, &id, err, errlen);
    if (rc != DG_OK || !id) return rc;
    const char *cloud = sf_reg_cloud(c, ev, conn, key, field, err, errlen);
    if (!cloud) return DG_EINVAL;
    return gate_event_add_reg(c, ev, cloud, id, field, err, errlen);
}

dg_err gate_sf_event(const struct cfg *c, const cJSON *root, dg_event *ev, char *err, size_t errlen)
{
    dg_err rc;
    char num[32];
    const char *v;
    memset(ev, 0, sizeof *ev);
    memcpy(ev->currency, c->server.currency, 4);
    if (!cJSON_IsObject(root))
        return dg_errf(err, errlen, DG_EINVAL, "the body must be a JSON object");
    if ((rc = sf_text(root, "opportunityId", num, sizeof num, &v, err, errlen)) != DG_OK) return rc;
    if ((rc = gate_event_check_id(v, "opportunityId", err, errlen)) != DG_OK) return rc;
    if (!(ev->opp_id = strdup(v))) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    if ((rc = sf_str(root, "eventId", &ev->event_id, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "name", &ev->name, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "accountName", &ev->account, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "ownerEmail", &ev->owner, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "pipeline", &ev->pipeline, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "stageName", &ev->to_stage, err, errlen)) != DG_OK ||
        (rc = sf_str(root, "priorStageName", &ev->from_stage, err, errlen)) != DG_OK)
        return rc;
    if (!ev->to_stage) return dg_errf(err, errlen, DG_EINVAL, "field stageName is required");
    if (ev->pipeline && !cfg_pipeline_find(c, ev->pipeline))
        return dg_errf(err, errlen, DG_EINVAL,
                       "field pipeline: unknown pipeline \"%.64s\" (add [pipeline:%.64s])",
                       ev->pipeline, ev->pipeline);
    if ((rc = sf_text(root, "source", num, sizeof num, &v, err, errlen)) != DG_OK) return rc;
    if (v) {
        if (strcasecmp(v, "partner") != 0 && strcasecmp(v, "cloud") != 0)
            return dg_errf(err, errlen, DG_EINVAL, "field source must be \"partner\" or \"cloud\"");
        if (!(ev->source = strdup(strcasecmp(v, "partner") == 0 ? "partner" : "cloud")))
            return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    }
    const char *ccy = NULL;
    if ((rc = sf_text(root, "currencyIsoCode", num, sizeof num, &ccy, err, errlen)) != DG_OK)
        return rc;
    if ((rc = gate_event_set_amount(c, ev, NULL, cJSON_GetObjectItemCaseSensitive(root, "amount"),
                                    ccy, "amount", err, errlen)) != DG_OK)
        return rc;
    if ((rc = sf_clouds(c, root, ev, err, errlen)) != DG_OK) return rc;
    if ((rc = sf_reg(c, root, ev, "aceOpportunityId", CFG_CONN_ACE, "aws", err, errlen)) != DG_OK ||
        (rc = sf_reg(c, root, ev, "partnerCenterReferralId", CFG_CONN_PARTNER_CENTER, "azure", err,
                     errlen)) != DG_OK ||
        (rc = sf_reg(c, root, ev, "gcpOpportunityId", CFG_CONN_GCP, "gcp", err, errlen)) != DG_OK)
        return rc;
    return DG_OK;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : dflt;
}

cJSON *gate_sf_response(const cJSON *decision)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(decision, "reasons");
    const cJSON *first = cJSON_IsArray(reasons) ? reasons->child : NULL;
    int allowed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(decision, "allowed"));
    if (!cJSON_AddBoolToObject(o, "allowed", allowed) ||
        !cJSON_AddStringToObject(o, "outcome", str_or(decision, "outcome", "")) ||
        !cJSON_AddStringToObject(o, "message", str_or(decision, "message", "")) ||
        !cJSON_AddStringToObject(o, "revertTo",
                                 allowed ? "" : str_or(decision, "revert_to_value", "")) ||
        !cJSON_AddStringToObject(o, "decisionId", str_or(decision, "decision_id", "")) ||
        !cJSON_AddStringToObject(o, "reasonCode", first ? str_or(first, "code", "") : "")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static dg_err sf_event(const struct cfg *c, const cJSON *root, void *arg, dg_event *ev,
                       int *dedupe_window_s, char *err, size_t errlen)
{
    (void)arg, (void)dedupe_window_s;
    return gate_sf_event(c, root, ev, err, errlen);
}

static cJSON *sf_answer(const cJSON *decision, void *arg)
{
    (void)arg;
    return gate_sf_response(decision);
}

int gate_h_salesforce(gate_req *r)
{
    static const gate_adapter sf = {
        .name = "salesforce", .noun = "body", .event = sf_event, .answer = sf_answer};
    return gate_handle_event(r, &sf, NULL);
}
