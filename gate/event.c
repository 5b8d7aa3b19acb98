/* event.c — canonical event intake and the validation helpers every adapter shares. */
#include "gate/event.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/money.h"
#include "gate/json.h"
#include <stdio.h>

#define EVENT_TEXT_MAX 256

static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 1;
    return 0;
}

dg_err gate_event_check_id(const char *id, const char *field, char *err, size_t errlen)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0) return dg_errf(err, errlen, DG_EINVAL, "field %s is required", field);
    if (n > DG_ID_MAX)
        return dg_errf(err, errlen, DG_EINVAL, "field %s is longer than %d characters", field,
                       DG_ID_MAX);
    if (has_control(id))
        return dg_errf(err, errlen, DG_EINVAL, "field %s has a control character", field);
    return DG_OK;
}

dg_err gate_event_set_str(char **dst, const char *val, size_t max_len, const char *field,
                          char *err, size_t errlen)
{
    if (val == NULL || *val == '\0') return DG_OK;
    if (strlen(val) > max_len)
        return dg_errf(err, errlen, DG_EINVAL, "field %s is longer than %zu characters", field,
                       max_len);
    if (has_control(val))
        return dg_errf(err, errlen, DG_EINVAL, "field %s has a control character", field);
    char *copy = strdup(val);
    if (!copy) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    free(*dst);
    *dst = copy;
    return DG_OK;
}

dg_err gate_event_add_cloud(const struct cfg *c, dg_event *ev, const char *key, const char *field,
                            char *err, size_t errlen)
{
    const cfg_cloud *cc = NULL;
    for (size_t i = 0; i < c->nclouds && key; i++)
        if (strcasecmp(c->clouds[i].key, key) == 0) cc = &c->clouds[i];
    if (!cc)
        return dg_errf(err, errlen, DG_EINVAL, "field %s: unknown cloud \"%.64s\" (known: see "
                       "[cloud:*] sections)", field, key ? key : "");
    for (size_t i = 0; i < ev->nclouds; i++)
        if (strcmp(ev->clouds[i], cc->key) == 0) return DG_OK;
    char **v = realloc(ev->clouds, (ev->nclouds + 1) * sizeof *v);
    if (!v) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    ev->clouds = v;
    if (!(v[ev->nclouds] = strdup(cc->key))) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    ev->nclouds++;
    return DG_OK;
}

dg_err gate_event_add_reg(const struct cfg *c, dg_event *ev, const char *cloud, const char *id,
                          const char *field, char *err, size_t errlen)
{
    if (id == NULL || *id == '\0') return DG_OK;
    dg_err rc = gate_event_add_cloud(c, ev, cloud, field, err, errlen);
    if (rc != DG_OK) return rc;
    if (strlen(id) > DG_REG_ID_MAX)
        return dg_errf(err, errlen, DG_EINVAL, "field %s is longer than %d characters", field,
                       DG_REG_ID_MAX);
    if (has_control(id))
        return dg_errf(err, errlen, DG_EINVAL, "field %s has a control character", field);
    const char *key = NULL;
    for (size_t i = 0; i < c->nclouds; i++)
        if (strcasecmp(c->clouds[i].key, cloud) == 0) key = c->clouds[i].key;
    for (size_t i = 0; i < ev->nregs; i++)
        if (strcmp(ev->regs[i].cloud, key) == 0)
            return dg_errf(err, errlen, DG_EINVAL, "field %s: a second registration for cloud %s",
                           field, key);
    dg_reg_ref *v = realloc(ev->regs, (ev->nregs + 1) * sizeof *v);
    if (!v) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    ev->regs = v;
    v[ev->nregs].cloud = strdup(key);
    v[ev->nregs].id = strdup(id);
    ev->nregs++;
    if (!v[ev->nregs - 1].cloud || !v[ev->nregs - 1].id)
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    return DG_OK;
}

dg_err gate_event_set_amount(const struct cfg *c, dg_event *ev, const char *amount_text,
                             const cJSON *amount_item, const char *currency, const char *field,
                             char *err, size_t errlen)
{
    const char *ccy = (currency && *currency) ? currency : c->server.currency;
    if (!dg_ccy_valid(ccy))
        return dg_errf(err, errlen, DG_EINVAL,
                       "field currency: \"%.16s\" is not a 3-letter ISO 4217 code", ccy);
    memcpy(ev->currency, ccy, 4);
    int exp = dg_ccy_exponent(ccy);
    if (amount_item && !cJSON_IsNull(amount_item)) {
        dg_err rc = gate_json_amount(amount_item, field, exp, &ev->amount, err, errlen);
        if (rc != DG_OK) return rc;
        ev->has_amount = 1;
    } else if (amount_text && *amount_text) {
        char msg[160];
        if (dg_amount_parse(amount_text, strlen(amount_text), exp, 0, &ev->amount, msg,
                            sizeof msg) != DG_OK)
            return dg_errf(err, errlen, DG_EINVAL, "field %s: %s", field, msg);
        ev->has_amount = 1;
    }
    return DG_OK;
}

static dg_err opt_str(const cJSON *obj, const char *path, const char *key, char **dst,
                      char *err, size_t errlen)
{
    const char *v;
    char field[96];
    snprintf(field, sizeof field, "%s%s%s", path, *path ? "." : "", key);
    dg_err rc = gate_json_str(obj, path, key, EVENT_TEXT_MAX, &v, err, errlen);
    if (rc != DG_OK) return rc;
    return gate_event_set_str(dst, v, EVENT_TEXT_MAX, field, err, errlen);
}

dg_err gate_event_from_json(const struct cfg *c, const cJSON *root, dg_event *ev, char *err,
                            size_t errlen)
{
    dg_err rc;
    memset(ev, 0, sizeof *ev);
    memcpy(ev->currency, c->server.currency, 4);
    if (!cJSON_IsObject(root))
        return dg_errf(err, errlen, DG_EINVAL, "the body must be a JSON object");
    if ((rc = opt_str(root, "", "event_id", &ev->event_id, err, errlen)) != DG_OK) return rc;
    const cJSON *opp = cJSON_GetObjectItemCaseSensitive(root, "opportunity");
    if (!cJSON_IsObject(opp))
        return dg_errf(err, errlen, DG_EINVAL, "field opportunity is required (an object)");
    const char *id;
    if ((rc = gate_json_str(opp, "opportunity", "id", 0, &id, err, errlen)) != DG_OK) return rc;
    if ((rc = gate_event_check_id(id, "opportunity.id", err, errlen)) != DG_OK) return rc;
    if (!(ev->opp_id = strdup(id))) return DG_ENOMEM;
    if ((rc = opt_str(opp, "opportunity", "name", &ev->name, err, errlen)) != DG_OK ||
        (rc = opt_str(opp, "opportunity", "account", &ev->account, err, errlen)) != DG_OK ||
        (rc = opt_str(opp, "opportunity", "owner", &ev->owner, err, errlen)) != DG_OK ||
        (rc = opt_str(opp, "opportunity", "pipeline", &ev->pipeline, err, errlen)) != DG_OK ||
        (rc = opt_str(opp, "opportunity", "source", &ev->source, err, errlen)) != DG_OK)
        return rc;
    if (ev->source && strcmp(ev->source, "partner") != 0 && strcmp(ev->source, "cloud") != 0)
        return dg_errf(err, errlen, DG_EINVAL,
                       "field opportunity.source must be \"partner\" or \"cloud\"");
    if (ev->pipeline && !cfg_pipeline_find(c, ev->pipeline))
        return dg_errf(err, errlen, DG_EINVAL, "field opportunity.pipeline: unknown pipeline "
                       "\"%.64s\"", ev->pipeline);
    const char *ccy;
    if ((rc = gate_json_str(opp, "opportunity", "currency", 8, &ccy, err, errlen)) != DG_OK)
        return rc;
    if ((rc = gate_event_set_amount(c, ev, NULL, cJSON_GetObjectItemCaseSensitive(opp, "amount"),
                                    ccy, "opportunity.amount", err, errlen)) != DG_OK)
        return rc;
    const cJSON *clouds = cJSON_GetObjectItemCaseSensitive(opp, "clouds");
    if (clouds && !cJSON_IsNull(clouds)) {
        if (!cJSON_IsArray(clouds))
            return dg_errf(err, errlen, DG_EINVAL, "field opportunity.clouds must be an array");
        int i = 0;
        for (const cJSON *it = clouds->child; it; it = it->next, i++) {
            char field[64];
            snprintf(field, sizeof field, "opportunity.clouds[%d]", i);
            if (!cJSON_IsString(it))
                return dg_errf(err, errlen, DG_EINVAL, "field %s must be a string", field);
            if ((rc = gate_event_add_cloud(c, ev, it->valuestring, field, err, errlen)) != DG_OK)
                return rc;
        }
    }
    const cJSON *regs = cJSON_GetObjectItemCaseSensitive(opp, "registrations");
    if (regs && !cJSON_IsNull(regs)) {
        if (!cJSON_IsObject(regs))
            return dg_errf(err, errlen, DG_EINVAL,
                           "field opportunity.registrations must be an object");
        for (const cJSON *it = regs->child; it; it = it->next) {
            char field[128];
            snprintf(field, sizeof field, "opportunity.registrations.%.64s", it->string);
            if (cJSON_IsNull(it)) continue;
            if (!cJSON_IsString(it))
                return dg_errf(err, errlen, DG_EINVAL, "field %s must be a string", field);
            if ((rc = gate_event_add_reg(c, ev, it->string, it->valuestring, field, err,
                                         errlen)) != DG_OK)
                return rc;
        }
    }
    if ((rc = opt_str(root, "", "from_stage", &ev->from_stage, err, errlen)) != DG_OK ||
        (rc = opt_str(root, "", "to_stage", &ev->to_stage, err, errlen)) != DG_OK)
        return rc;
    if (!ev->to_stage) return dg_errf(err, errlen, DG_EINVAL, "field to_stage is required");
    return DG_OK;
}
