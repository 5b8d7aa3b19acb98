/* crm_hubspot.c — HubSpot write-back with a private-app token: read a deal's stage, move
 * the deal back and set the reason property.
 *
 * Read: GET {api_base}/crm/v3/objects/deals/{id}?properties={stage property}.
 * Update: PATCH /crm/v3/objects/deals/{id} with {"properties": {...}}; answer 200. The stage
 * property is [hubspot] property.stage (default dealstage), the reason property [hubspot]
 * reason_property.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/crm.h"
#include "connectors/http.h"

#define HS_URL_MAX 1024

typedef struct {
    conn_http_client *http;
    char *api_base; /* no trailing slash */
    char *token;
    char *stage_prop;
    char *reason_prop; /* NULL: only the stage is written */
} hs_state;

static void hs_close(void *p)
{
    hs_state *s = p;
    if (!s) return;
    conn_http_client_free(s->http);
    free(s->api_base);
    conn_wipe_free(s->token);
    free(s->stage_prop);
    free(s->reason_prop);
    free(s);
}

static dg_err hs_open(const struct cfg *c, void **out, char *err, size_t errlen)
{
    const cfg_hubspot *h = &c->hubspot;
    dg_err rc = DG_ECONFIG;
    *out = NULL;
    if (!h->token || !*h->token)
        return dg_errf(err, errlen, rc, "hubspot: write-back needs [hubspot] token");
    if (strlen(h->token) >= CRM_TOKEN_MAX)
        return dg_errf(err, errlen, rc, "hubspot: the token is too long");
    const char *base = h->api_base && *h->api_base ? h->api_base : "https://api.hubapi.com";
    if (conn_http_check_base(base, "hubspot: api_base", err, errlen) != DG_OK) return DG_ECONFIG;
    const char *stage = "dealstage";
    for (size_t i = 0; i < h->nproperties; i++)
        if (strcmp(h->properties[i].label, "stage") == 0) stage = h->properties[i].cloud;
    hs_state *s = calloc(1, sizeof *s);
    rc = DG_ENOMEM;
    if (!s) return dg_errf(err, errlen, rc, "out of memory");
    s->api_base = conn_http_base_dup(base);
    s->token = strdup(h->token);
    s->stage_prop = strdup(stage);
    if (h->reason_property && *h->reason_property) s->reason_prop = strdup(h->reason_property);
    if (!s->api_base || !s->token || !s->stage_prop ||
        (h->reason_property && *h->reason_property && !s->reason_prop)) {
        dg_errf(err, errlen, rc, "out of memory");
        goto fail;
    }
    if ((rc = conn_http_client_new(&s->http, err, errlen)) != DG_OK) goto fail;
    *out = s;
    return DG_OK;
fail:
    hs_close(s);
    return rc;
}

/* HubSpot's error text: {"message", "category"}, or the first of "errors" (batch). */
static void hs_error_text(const conn_http_resp *rs, char *out, size_t n)
{
    cJSON *j = rs->body ? cJSON_Parse(rs->body) : NULL;
    const cJSON *o = j;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
    if (cJSON_IsArray(errs) && errs->child) o = errs->child;
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(o, "category");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
    crm_error_text(cJSON_IsString(cat) ? cat->valuestring : NULL,
                   cJSON_IsString(msg) ? msg->valuestring : NULL, rs->body, out, n);
    cJSON_Delete(j);
}

static dg_err hs_status_err(const conn_http_resp *rs, const char *what, char *err, size_t errlen)
{
    char text[300];
    hs_error_text(rs, text, sizeof text);
    dg_err rc = crm_status_err("hubspot", what, rs->status, text, err, errlen);
    return rs->status == 207 ? DG_EINVAL : rc; /* a batch answer naming failed records */
}

static dg_err hs_get_stage(void *p, const char *opp_id, const atomic_int *cancel, char **stage,
                           char *err, size_t errlen)
{
    hs_state *s = p;
    *stage = NULL;
    char url[HS_URL_MAX];
    char *id = conn_http_escape(opp_id), *prop = conn_http_escape(s->stage_prop);
    dg_err rc = DG_ENOMEM;
    conn_http_resp rs = {0};
    cJSON *j = NULL;
    if (!id || !prop) {
        dg_errf(err, errlen, rc, "out of memory");
        goto out;
    }
    int n = snprintf(url, sizeof url, "%s/crm/v3/objects/deals/%s?properties=%s", s->api_base, id,
                     prop);
    if (n < 0 || (size_t)n >= sizeof url) {
        rc = dg_errf(err, errlen, DG_EINVAL, "hubspot: the deal URL is too long");
        goto out;
    }
    rc = crm_bearer_call(s->http, s->token, "GET", url, NULL, cancel, &rs, err, errlen);
    if (rc != DG_OK) goto out;
    if (rs.status != 200) {
        rc = hs_status_err(&rs, "reading the deal", err, errlen);
        goto out;
    }
    j = cJSON_Parse(rs.body);
    char *v = NULL;
    if (conn_json_str(cJSON_GetObjectItemCaseSensitive(j, "properties"), s->stage_prop,
                      CRM_STAGE_MAX, &v) != 0 ||
        !v) {
        free(v);
        rc = dg_errf(err, errlen, DG_EUPSTREAM, "hubspot: the deal has no usable %s property",
                     s->stage_prop);
        goto out;
    }
    *stage = v;
    rc = DG_OK;
out:
    cJSON_Delete(j);
    conn_http_resp_free(&rs);
    free(id);
    free(prop);
    return rc;
}

static dg_err hs_set_stage(void *p, const char *opp_id, const char *stage, const char *reason,
                           const atomic_int *cancel, char *err, size_t errlen)
{
    hs_state *s = p;
    char url[HS_URL_MAX], cut[CRM_REASON_MAX + 1];
    dg_err rc = DG_ENOMEM;
    conn_http_resp rs = {0};
    char *body = NULL, *id = conn_http_escape(opp_id);
    cJSON *o = cJSON_CreateObject();
    cJSON *props = o ? cJSON_AddObjectToObject(o, "properties") : NULL;
    crm_cut_reason(reason, CRM_REASON_MAX, cut, sizeof cut);
    if (!id || !props || !cJSON_AddStringToObject(props, s->stage_prop, stage) ||
        (s->reason_prop && !cJSON_AddStringToObject(props, s->reason_prop, cut)) ||
        !(body = cJSON_PrintUnformatted(o))) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto out;
    }
    int n = snprintf(url, sizeof url, "%s/crm/v3/objects/deals/%s", s->api_base, id);
    if (n < 0 || (size_t)n >= sizeof url) {
        rc = dg_errf(err, errlen, DG_EINVAL, "hubspot: the deal URL is too long");
        goto out;
    }
    rc = crm_bearer_call(s->http, s->token, "PATCH", url, body, cancel, &rs, err, errlen);
    if (rc != DG_OK) goto out;
    if (rs.status != 200) rc = hs_status_err(&rs, "updating the deal", err, errlen);
out:
    conn_http_resp_free(&rs);
    free(id);
    free(body);
    cJSON_Delete(o);
    return rc;
}

const crm_ops crm_hubspot_ops = {
    .name = "hubspot",
    .open = hs_open,
    .close = hs_close,
    .get_stage = hs_get_stage,
    .set_stage = hs_set_stage,
};
