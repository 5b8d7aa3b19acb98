/* crm_hubspot.c — HubSpot write-back with a private-app token: read a deal's stage, move
 * the deal back and set the reason property.
 *
 * Read: GET {api_base}/crm/v3/objects/deals/{id}?properties={stage property}.
 * Update: PATCH /crm/v3/objects/deals/{id} with {"properties": {...}}; answer 200. The stage property is [hubspot] property.stage (default
 * dealstage), the reason property [hubspot] reason_property.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/crm.h"
#include "connectors/http.h"

#define HS_URL_MAX 1024
#define HS_TOKEN_MAX 4096

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
    if (s->token) memset(s->token, 0, strlen(s->token));
    free(s->token);
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
    if (strlen(h->token) >= HS_TOKEN_MAX)
        return dg_errf(err, errlen, rc, "hubspot: the token is too long");
    const char *base = h->api_base && *h->api_base ? h->api_base : "https://api.hubapi.com";
    if (conn_http_check_base(base, "hubspot: api_base", err, errlen) != DG_OK) return DG_ECONFIG;
    const char *stage = "dealstage";
    for (size_t i = 0; i < h->nproperties; i++)
        if (strcmp(h->properties[i].label, "stage") == 0) stage = h->properties[i].cloud;
    hs_state *s = calloc(1, sizeof *s);
    rc = DG_ENOMEM;
    if (!s) return dg_errf(err, errlen, rc, "out of memory");
    s->api_base = strdup(base);
    s->token = strdup(h->token);
    s->stage_prop = strdup(stage);
    if (h->reason_property && *h->reason_property) s->reason_prop = strdup(h->reason_property);
    if (!s->api_base || !s->token || !s->stage_prop ||
        (h->reason_property && *h->reason_property && !s->reason_prop)) {
        dg_errf(err, errlen, rc, "out of memory");
        goto fail;
    }
    size_t n = strlen(s->api_base);
    while (n && s->api_base[n - 1] == '/')
        s->api_base[--n] = '\0';
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
    char raw[512];
    snprintf(raw, sizeof raw, "%s%s%s", cJSON_IsString(cat) ? cat->valuestring : "",
             cJSON_IsString(cat) && cJSON_IsString(msg) ? ": " : "",
             cJSON_IsString(msg) ? msg->valuestring : "");
    if (!raw[0]) snprintf(raw, sizeof raw, "%.200s", rs->body ? rs->body : "");
    conn_http_excerpt(raw, out, n);
    cJSON_Delete(j);
}

static dg_err hs_status_err(const conn_http_resp *rs, const char *what, char *err, size_t errlen)
{
    char text[300];
    hs_error_text(rs, text, sizeof text);
    long st = rs->status;
    dg_err rc = st == 404                ? DG_ENOTFOUND
                : st == 401 || st == 403 ? DG_EAUTH
                : st == 429              ? DG_ETHROTTLED
                : st >= 500 || st == 408 ? DG_EUPSTREAM
                : st >= 400 || st == 207 ? DG_EINVAL
                                         : DG_EUPSTREAM;
    return dg_errf(err, errlen, rc, "hubspot: %s answered HTTP %ld: %s", what, st,
                   text[0] ? text : "(no error text)");
}

static dg_err hs_call(hs_state *s, const char *method, const char *url, const char *body,
                      const atomic_int *cancel, conn_http_resp *rs, char *err, size_t errlen)
{
    char auth[HS_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    const char *hdrs[] = {auth, "Accept: application/json",
                          body ? "Content-Type: application/json" : NULL, NULL};
    conn_http_req rq = {.method = method,
                        .url = url,
                        .headers = hdrs,
                        .body = body,
                        .body_len = body ? strlen(body) : 0,
                        .timeout_ms = CRM_TIMEOUT_MS,
                        .max_response = 256 * 1024,
                        .cancel = cancel};
    dg_err rc = conn_http_do(s->http, &rq, rs, err, errlen);
    memset(auth, 0, sizeof auth);
    return rc;
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
    if ((rc = hs_call(s, "GET", url, NULL, cancel, &rs, err, errlen)) != DG_OK) goto out;
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
    if ((rc = hs_call(s, "PATCH", url, body, cancel, &rs, err, errlen)) != DG_OK) goto out;
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
