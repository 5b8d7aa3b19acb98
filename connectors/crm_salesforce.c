/* crm_salesforce.c — Salesforce write-back: OAuth2 client credentials, read and update an
 * Opportunity through the REST API.
 *
 * Token: POST {instance_url}/services/oauth2/token (grant_type=client_credentials) gives an
 * access token, cached until expires_in (when given) or SF_TOKEN_TTL_MS, and fetched again
 * once when a call answers 401. The instance_url the token response names is not followed:
 * calls go to the configured instance_url (the org's My Domain) only.
 * Read: GET /services/data/{ver}/sobjects/Opportunity/{id}?fields=StageName.
 * Update: PATCH /services/data/{ver}/sobjects/Opportunity/{id} with StageName and the
 * reason field; answer 204.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/crm.h"
#include "connectors/http.h"

#define SF_TOKEN_TTL_MS (30 * 60 * 1000) /* when the token response names no expiry */
#define SF_URL_MAX 1024

typedef struct {
    conn_http_client *http;
    char *instance_url; /* no trailing slash */
    char *client_id, *client_secret;
    char api_version[16]; /* "v60.0" */
    char *reason_field;   /* NULL: only the stage is written */
    char token[CRM_TOKEN_MAX];
    int64_t token_until_ms; /* monotonic; 0 = no token */
} sf_state;

static void sf_close(void *p)
{
    sf_state *s = p;
    if (!s) return;
    conn_http_client_free(s->http);
    free(s->instance_url);
    free(s->client_id);
    conn_wipe_free(s->client_secret);
    free(s->reason_field);
    explicit_bzero(s->token, sizeof s->token);
    free(s);
}

static dg_err sf_open(const struct cfg *c, void **out, char *err, size_t errlen)
{
    const cfg_salesforce *sf = &c->salesforce;
    dg_err rc = DG_ECONFIG;
    *out = NULL;
    if (!sf->instance_url || !*sf->instance_url || !sf->client_id || !*sf->client_id ||
        !sf->client_secret || !*sf->client_secret)
        return dg_errf(err, errlen, rc,
                       "salesforce: write-back needs instance_url, client_id and client_secret");
    if (conn_http_check_base(sf->instance_url, "salesforce: instance_url", err, errlen) != DG_OK)
        return DG_ECONFIG;
    const char *ver = sf->api_version && *sf->api_version ? sf->api_version : "v60.0";
    if (strlen(ver) > 10 ||
        strspn(ver + (ver[0] == 'v'), "0123456789.") != strlen(ver) - (ver[0] == 'v'))
        return dg_errf(err, errlen, rc, "salesforce: api_version must look like v60.0");
    sf_state *s = calloc(1, sizeof *s);
    rc = DG_ENOMEM;
    if (!s) return dg_errf(err, errlen, rc, "out of memory");
    snprintf(s->api_version, sizeof s->api_version, "%s%s", ver[0] == 'v' ? "" : "v", ver);
    s->instance_url = conn_http_base_dup(sf->instance_url);
    s->client_id = strdup(sf->client_id);
    s->client_secret = strdup(sf->client_secret);
    if (sf->reason_field && *sf->reason_field) s->reason_field = strdup(sf->reason_field);
    if (!s->instance_url || !s->client_id || !s->client_secret ||
        (sf->reason_field && *sf->reason_field && !s->reason_field)) {
        dg_errf(err, errlen, rc, "out of memory");
        goto fail;
    }
    if ((rc = conn_http_client_new(&s->http, err, errlen)) != DG_OK) goto fail;
    *out = s;
    return DG_OK;
fail:
    sf_close(s);
    return rc;
}

/* Quotes the CRM's own error text from a Salesforce error body: [{"message", "errorCode"}]
 * or {"error", "error_description"}. */
static void sf_error_text(const conn_http_resp *rs, char *out, size_t n)
{
    cJSON *j = rs->body ? cJSON_Parse(rs->body) : NULL;
    const cJSON *o = cJSON_IsArray(j) ? j->child : j;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "errorCode");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (!cJSON_IsString(code)) code = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (!cJSON_IsString(msg)) msg = cJSON_GetObjectItemCaseSensitive(o, "error_description");
    crm_error_text(cJSON_IsString(code) ? code->valuestring : NULL,
                   cJSON_IsString(msg) ? msg->valuestring : NULL, rs->body, out, n);
    cJSON_Delete(j);
}

/* Classifies a non-2xx answer. */
static dg_err sf_status_err(const conn_http_resp *rs, const char *what, char *err, size_t errlen)
{
    char text[300];
    sf_error_text(rs, text, sizeof text);
    dg_err rc = crm_status_err("salesforce", what, rs->status, text, err, errlen);
    /* Two 4xx answers that heal by themselves: a record locked by another save (400) and
     * the org's API request limit (403). */
    if (strstr(text, "UNABLE_TO_LOCK_ROW")) rc = DG_EUPSTREAM;
    if (strstr(text, "REQUEST_LIMIT_EXCEEDED")) rc = DG_ETHROTTLED;
    return rc;
}

static dg_err sf_token(sf_state *s, const atomic_int *cancel, char *err, size_t errlen)
{
    if (s->token[0] && conn_now_ms() < s->token_until_ms) return DG_OK;
    s->token[0] = '\0';
    char url[SF_URL_MAX];
    if ((size_t)snprintf(url, sizeof url, "%s/services/oauth2/token", s->instance_url) >=
        sizeof url)
        return dg_errf(err, errlen, DG_ECONFIG, "salesforce: instance_url is too long");
    char *id = conn_http_escape(s->client_id), *sec = conn_http_escape(s->client_secret);
    char *body = NULL;
    dg_err rc = DG_ENOMEM;
    conn_http_resp rs = {0};
    cJSON *j = NULL;
    if (!id || !sec) goto oom;
    size_t blen = strlen(id) + strlen(sec) + 64;
    if (!(body = malloc(blen))) goto oom;
    snprintf(body, blen, "grant_type=client_credentials&client_id=%s&client_secret=%s", id, sec);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    conn_http_req rq = {.method = "POST",
                        .url = url,
                        .headers = hdrs,
                        .body = body,
                        .body_len = strlen(body),
                        .timeout_ms = CRM_TIMEOUT_MS,
                        .max_response = 64 * 1024,
                        .cancel = cancel};
    rc = conn_http_do(s->http, &rq, &rs, err, errlen);
    if (rc != DG_OK) goto out;
    if (rs.status != 200) {
        rc = sf_status_err(&rs, "the token endpoint", err, errlen);
        if (rc == DG_EINVAL) rc = DG_EAUTH; /* 400 invalid_client / invalid_grant */
        goto out;
    }
    j = cJSON_Parse(rs.body);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    if (!cJSON_IsString(tok) || !*tok->valuestring || strlen(tok->valuestring) >= sizeof s->token) {
        rc = dg_errf(err, errlen, DG_EUPSTREAM,
                     "salesforce: the token response has no usable "
                     "access_token");
        goto out;
    }
    snprintf(s->token, sizeof s->token, "%s", tok->valuestring);
    int64_t ttl = SF_TOKEN_TTL_MS;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    if (cJSON_IsNumber(exp) && exp->valuedouble > 120 && exp->valuedouble < 86400 * 30)
        ttl = (int64_t)(exp->valuedouble - 60) * 1000;
    s->token_until_ms = conn_now_ms() + ttl;
    rc = DG_OK;
    goto out;
oom:
    rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
out:
    cJSON_Delete(j);
    conn_http_resp_free(&rs);
    free(id);
    conn_wipe_free(sec);
    conn_wipe_free(body);
    return rc;
}

/* One authorised call; on 401 the token is fetched again and the call repeated once. */
static dg_err sf_call(sf_state *s, const char *method, const char *url, const char *body,
                      const atomic_int *cancel, conn_http_resp *rs, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        dg_err rc = sf_token(s, cancel, err, errlen);
        if (rc != DG_OK) return rc;
        rc = crm_bearer_call(s->http, s->token, method, url, body, cancel, rs, err, errlen);
        if (rc != DG_OK) return rc;
        if (rs->status != 401 || attempt > 0) return DG_OK;
        s->token[0] = '\0'; /* expired or revoked: one fresh token, one more try */
        conn_http_resp_free(rs);
    }
}

static dg_err sf_url(const sf_state *s, const char *opp_id, const char *suffix, char *url,
                     size_t cap, char *err, size_t errlen)
{
    char *id = conn_http_escape(opp_id);
    if (!id) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    int n = snprintf(url, cap, "%s/services/data/%s/sobjects/Opportunity/%s%s", s->instance_url,
                     s->api_version, id, suffix);
    free(id);
    if (n < 0 || (size_t)n >= cap)
        return dg_errf(err, errlen, DG_EINVAL, "salesforce: the opportunity URL is too long");
    return DG_OK;
}

static dg_err sf_get_stage(void *p, const char *opp_id, const atomic_int *cancel, char **stage,
                           char *err, size_t errlen)
{
    sf_state *s = p;
    char url[SF_URL_MAX];
    *stage = NULL;
    dg_err rc = sf_url(s, opp_id, "?fields=StageName", url, sizeof url, err, errlen);
    if (rc != DG_OK) return rc;
    conn_http_resp rs = {0};
    rc = sf_call(s, "GET", url, NULL, cancel, &rs, err, errlen);
    if (rc == DG_OK && rs.status != 200) {
        rc = sf_status_err(&rs, "reading the opportunity", err, errlen);
    } else if (rc == DG_OK) {
        cJSON *j = cJSON_Parse(rs.body);
        char *v = NULL;
        if (conn_json_str(j, "StageName", CRM_STAGE_MAX, &v) != 0 || !v) {
            free(v);
            rc = dg_errf(err, errlen, DG_EUPSTREAM,
                         "salesforce: the opportunity record has no usable StageName");
        } else {
            *stage = v;
        }
        cJSON_Delete(j);
    }
    conn_http_resp_free(&rs);
    return rc;
}

static dg_err sf_set_stage(void *p, const char *opp_id, const char *stage, const char *reason,
                           const atomic_int *cancel, char *err, size_t errlen)
{
    sf_state *s = p;
    char url[SF_URL_MAX], cut[CRM_REASON_MAX + 1];
    dg_err rc = sf_url(s, opp_id, "", url, sizeof url, err, errlen);
    if (rc != DG_OK) return rc;
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;
    conn_http_resp rs = {0};
    crm_cut_reason(reason, CRM_REASON_MAX, cut, sizeof cut);
    if (!o || !cJSON_AddStringToObject(o, "StageName", stage) ||
        (s->reason_field && !cJSON_AddStringToObject(o, s->reason_field, cut)) ||
        !(body = cJSON_PrintUnformatted(o))) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto out;
    }
    rc = sf_call(s, "PATCH", url, body, cancel, &rs, err, errlen);
    if (rc == DG_OK && rs.status != 204 && rs.status != 200)
        rc = sf_status_err(&rs, "updating the opportunity", err, errlen);
out:
    conn_http_resp_free(&rs);
    free(body);
    cJSON_Delete(o);
    return rc;
}

const crm_ops crm_salesforce_ops = {
    .name = "salesforce",
    .open = sf_open,
    .close = sf_close,
    .get_stage = sf_get_stage,
    .set_stage = sf_set_stage,
};
