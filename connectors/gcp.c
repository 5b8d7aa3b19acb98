/* gcp.c — the Google Cloud backend: Cloud CRM Partners API (connector = gcp).
 *
 * By id: GET {endpoint}/v1/partners/{partner_id}/opportunities/{id} with the OAuth2 bearer
 * access_token of the config (supply it through ${ENV} or an @file a token helper rewrites,
 * then reload). The API has no list method, so a look-up needs the opportunity id: by CRM
 * id always answers NOT_FOUND with a note saying so.
 *
 * State: qualificationState, the registration's acceptance by Google (e.g. QUALIFIED),
 * unless it is absent or *_UNSPECIFIED; then salesStage. The CRM id is externalSystemId;
 * the creation date is createTime when present, else createDate {year, month, day} as
 * midnight UTC. The API carries no field that says who referred the deal, so origin stays
 * unknown. Errors are classified by Google's error.status (NOT_FOUND, PERMISSION_DENIED,
 * RESOURCE_EXHAUSTED, UNAVAILABLE, ...), else by HTTP status.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "connectors/parse.h"

#define GCP_ATTEMPTS 3
#define GCP_MSG_MAX 256
#define GCP_STR_MAX 512

typedef struct {
    char *partner_url; /* {endpoint}/v1/partners/{partner_id, percent-encoded} */
    char *auth;        /* "Authorization: Bearer ..." */
    int timeout_ms;
    conn_http_client *http;
    pthread_mutex_t mu; /* health fields */
    int64_t last_ok_ms, last_err_ms;
    char last_err[GCP_MSG_MAX];
} gcp_state;

/* [A-Za-z0-9_-]{1,64}, starting with a letter or digit */
static int gcp_valid_id(const char *id)
{
    return conn_id_chars(id, "-_", 64) && id[0] != '-' && id[0] != '_';
}

static dg_err fact_failed(gcp_state *st, dg_reg_fact *out, dg_err rc, int retryable,
                          const char *msg)
{
    pthread_mutex_lock(&st->mu);
    st->last_err_ms = conn_now_ms();
    snprintf(st->last_err, sizeof st->last_err, "%s", msg);
    pthread_mutex_unlock(&st->mu);
    return conn_fact_fail(out, rc, retryable, msg);
}

static void note_ok(gcp_state *st)
{
    pthread_mutex_lock(&st->mu);
    st->last_ok_ms = conn_now_ms();
    pthread_mutex_unlock(&st->mu);
}

static int unspecified(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n == 0 || (n >= 11 && strcmp(s + n - 11, "UNSPECIFIED") == 0);
}

/* createTime, else createDate {year, month, day}. Returns 0 (with *out malloc'd or NULL)
 * or -1 on a malformed value. */
static int read_created(const cJSON *o, char **out)
{
    if (conn_json_str(o, "createTime", 64, out) != 0) return -1;
    if (*out) return 0;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "createDate");
    if (d == NULL || cJSON_IsNull(d)) return 0;
    if (!cJSON_IsObject(d)) return -1;
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(d, "year");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "month");
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(d, "day");
    if (!cJSON_IsNumber(y) || !cJSON_IsNumber(m) || !cJSON_IsNumber(dd)) return -1;
    double yv = y->valuedouble, mv = m->valuedouble, dv = dd->valuedouble;
    if (yv < 1 || yv > 9999 || mv < 1 || mv > 12 || dv < 1 || dv > 31 || yv != (int)yv ||
        mv != (int)mv || dv != (int)dv)
        return -1;
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT00:00:00Z", (int)yv, (int)mv, (int)dv);
    *out = strdup(buf);
    return *out ? 0 : -1;
}

static void gcp_close(void *state)
{
    gcp_state *st = state;
    if (st == NULL) return;
    conn_http_client_free(st->http);
    pthread_mutex_destroy(&st->mu);
    free(st->partner_url);
    conn_wipe_free(st->auth);
    free(st);
}

static dg_err gcp_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                       size_t errlen)
{
    (void)state_dir;
    dg_err rc;
    char *base = NULL;
    *state = NULL;
    gcp_state *st = calloc(1, sizeof *st);
    if (st == NULL) return dg_errf(err, errlen, DG_ENOMEM, "gcp: out of memory");
    pthread_mutex_init(&st->mu, NULL);
    rc = conn_http_check_base(cc->endpoint, "endpoint", err, errlen);
    if (rc != DG_OK) goto out;
    rc = DG_EINVAL;
    if (cc->partner_id == NULL || *cc->partner_id == '\0') {
        dg_errf(err, errlen, rc, "gcp: partner_id is required");
        goto out;
    }
    if (cc->access_token == NULL || *cc->access_token == '\0') {
        dg_errf(err, errlen, rc, "gcp: access_token is required");
        goto out;
    }
    for (const char *p = cc->access_token; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            dg_errf(err, errlen, rc, "gcp: access_token has characters a token cannot have");
            goto out;
        }
    rc = DG_ENOMEM;
    size_t an = strlen(cc->access_token) + 32;
    if ((base = conn_http_base_dup(cc->endpoint)) == NULL ||
        (st->partner_url = conn_http_url_id(base, "/v1/partners/", cc->partner_id)) == NULL ||
        (st->auth = malloc(an)) == NULL) {
        dg_errf(err, errlen, rc, "gcp: out of memory");
        goto out;
    }
    snprintf(st->auth, an, "Authorization: Bearer %s", cc->access_token);
    st->timeout_ms = cc->timeout_ms > 0 ? cc->timeout_ms : 2000;
    rc = conn_http_client_new(&st->http, err, errlen);
    if (rc != DG_OK) goto out;
    *state = st;
    st = NULL;
    rc = DG_OK;
out:
    free(base);
    gcp_close(st);
    return rc;
}

/* Maps Google's error.status (or the HTTP status) to (dg_err, retryable, not_found). */
static void classify(const char *gstatus, long http, dg_err *rc, int *retry, int *nf)
{
    *nf = 0;
    *retry = 0;
    *rc = DG_EUPSTREAM;
    if (gstatus[0]) {
        if (strcmp(gstatus, "NOT_FOUND") == 0)
            *nf = 1;
        else if (strcmp(gstatus, "RESOURCE_EXHAUSTED") == 0)
            *rc = DG_ETHROTTLED, *retry = 1;
        else if (strcmp(gstatus, "UNAVAILABLE") == 0 || strcmp(gstatus, "INTERNAL") == 0 ||
                 strcmp(gstatus, "DEADLINE_EXCEEDED") == 0 || strcmp(gstatus, "ABORTED") == 0)
            *retry = 1;
        else if (strcmp(gstatus, "PERMISSION_DENIED") == 0 ||
                 strcmp(gstatus, "UNAUTHENTICATED") == 0)
            *rc = DG_EAUTH;
        else if (http >= 500)
            *retry = 1;
        return;
    }
    if (http == 404)
        *nf = 1;
    else if (http == 429)
        *rc = DG_ETHROTTLED, *retry = 1;
    else if (http == 401 || http == 403)
        *rc = DG_EAUTH;
    else if (http >= 500)
        *retry = 1;
}

/* Google's error.status and error.message of an error answer j (may be NULL), as clean
 * excerpts ("" when absent). */
static void error_parts(const cJSON *j, char *gstatus, size_t gn, char *detail, size_t dn)
{
    const cJSON *e = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    if (gn) gstatus[0] = '\0';
    if (dn) detail[0] = '\0';
    if (cJSON_IsObject(e)) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "status");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (cJSON_IsString(s) && s->valuestring) conn_http_excerpt(s->valuestring, gstatus, gn);
        if (cJSON_IsString(m) && m->valuestring) conn_http_excerpt(m->valuestring, detail, dn);
    }
}

/* Fills out from the opportunity object j asked for as `id`. Returns DG_OK (FOUND), or an
 * error with *msg (static text) and *retry for the caller's FAILED fact. */
static dg_err opp_fill(const cJSON *j, const char *id, dg_reg_fact *out, const char **msg,
                       int *retry)
{
    dg_err rc = DG_OK;
    char *name = NULL, *qs = NULL, *stage = NULL, *crm = NULL, *created = NULL;
    if (conn_json_str(j, "name", GCP_STR_MAX, &name) != 0 ||
        conn_json_str(j, "qualificationState", 64, &qs) != 0 ||
        conn_json_str(j, "salesStage", 64, &stage) != 0 ||
        conn_json_str(j, "externalSystemId", GCP_STR_MAX, &crm) != 0 ||
        read_created(j, &created) != 0) {
        rc = DG_EPARSE;
        *retry = 1;
        *msg = "Google Cloud: unexpected opportunity shape";
    } else {
        /* name is partners/{partner}/opportunities/{id}: it must end with our id */
        size_t nl = name ? strlen(name) : 0, il = strlen(id);
        if (name && (nl < il + 15 || strcmp(name + nl - il, id) != 0 ||
                     strncmp(name + nl - il - 15, "/opportunities/", 15) != 0)) {
            rc = DG_EUPSTREAM;
            *retry = 0;
            *msg = "Google Cloud: answer is for another opportunity";
        } else {
            conn_fact_clear(out);
            out->lookup = DG_LOOKUP_FOUND;
            if (!unspecified(qs)) {
                out->status = qs;
                qs = NULL;
            } else if (!unspecified(stage)) {
                out->status = stage;
                stage = NULL;
            }
            out->crm_id = crm;
            out->created_at = created;
            crm = created = NULL;
        }
    }
    free(name);
    free(qs);
    free(stage);
    free(crm);
    free(created);
    return rc;
}

static dg_err gcp_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    gcp_state *st = state;
    if (!gcp_valid_id(id))
        return conn_fact_not_found(
            out, "invalid Google Cloud opportunity id (expected [A-Za-z0-9_-]{1,64})");
    if (timeout_ms <= 0) timeout_ms = st->timeout_ms;
    int64_t deadline = conn_now_ms() + timeout_ms;
    char *url = conn_http_url_id(st->partner_url, "/opportunities/", id);
    if (url == NULL) return fact_failed(st, out, DG_ENOMEM, 1, "Google Cloud: out of memory");

    dg_err rc = DG_OK;
    cJSON *j = NULL;
    char msg[GCP_MSG_MAX];
    for (int attempt = 1;; attempt++) {
        const char *const headers[] = {st->auth, "Accept: application/json", NULL};
        conn_http_json ans;
        int retry, nf;
        dg_err hrc = conn_http_get_json(st->http, url, headers, deadline, "Google Cloud", &ans, msg,
                                        sizeof msg, &retry);
        if (hrc != DG_OK) {
            rc = fact_failed(st, out, hrc, retry, msg);
            goto out;
        }
        j = ans.json;
        if (ans.status == 200) break;
        char gstatus[48] = "", detail[160] = "";
        error_parts(j, gstatus, sizeof gstatus, detail, sizeof detail);
        cJSON_Delete(j);
        j = NULL;
        dg_err erc;
        classify(gstatus, ans.status, &erc, &retry, &nf);
        if (nf) {
            note_ok(st);
            rc = conn_fact_not_found(out, NULL);
            goto out;
        }
        snprintf(msg, sizeof msg, "Google Cloud: HTTP %ld%s%s%s%s", ans.status,
                 gstatus[0] ? " " : "", gstatus, detail[0] ? ": " : "", detail);
        int64_t wait = ans.retry_after_s > 0 ? (int64_t)ans.retry_after_s * 1000 : 100L * attempt;
        if (!retry || attempt >= GCP_ATTEMPTS || conn_now_ms() + wait >= deadline) {
            rc = fact_failed(st, out, erc, retry, msg);
            goto out;
        }
        conn_sleep_ms(wait);
    }

    {
        const char *why = NULL;
        int retry = 0;
        rc = opp_fill(j, id, out, &why, &retry);
        if (rc == DG_OK)
            note_ok(st);
        else
            rc = fact_failed(st, out, rc, retry, why);
    }
out:
    cJSON_Delete(j);
    free(url);
    return rc;
}

static dg_err gcp_by_crm_id(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out)
{
    (void)state;
    (void)crm_id;
    (void)timeout_ms;
    return conn_fact_not_found(
        out, "Google Cloud look-ups need the opportunity id (the API has no search)");
}

static void gcp_health(void *state, char *buf, size_t n)
{
    gcp_state *st = state;
    int64_t now = conn_now_ms();
    pthread_mutex_lock(&st->mu);
    conn_health_calls(buf, n, now, st->last_ok_ms, st->last_err_ms, st->last_err);
    pthread_mutex_unlock(&st->mu);
}

const conn_backend conn_gcp_backend = {
    .name = "gcp",
    .valid_id = gcp_valid_id,
    .open = gcp_open,
    .close = gcp_close,
    .by_id = gcp_by_id,
    .by_crm_id = gcp_by_crm_id,
    .health = gcp_health,
};

/* ---- pure parsing entry points (connectors/parse.h) ------------------------------------ */

/* opp_fill with its failure made a FAILED fact (a conn_fact_fill_fn). */
static dg_err opp_fact(const cJSON *j, const char *id, dg_reg_fact *out)
{
    const char *why = NULL;
    int retry = 0;
    dg_err rc = opp_fill(j, id, out, &why, &retry);
    return rc == DG_OK ? rc : conn_fact_fail(out, rc, retry, why);
}

dg_err conn_gcp_parse_opportunity(const char *body, size_t len, const char *id, dg_reg_fact *out,
                                  char *err, size_t errlen)
{
    return conn_parse_fact(body, len, id, "Google Cloud", opp_fact, out, err, errlen);
}

dg_err conn_gcp_parse_error(long status, const char *body, size_t len, char *gstatus, size_t gn,
                            char *detail, size_t dn, int *retryable)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    error_parts(j, gstatus, gn, detail, dn);
    cJSON_Delete(j);
    dg_err rc;
    int nf = 0;
    classify(gn ? gstatus : "", status, &rc, retryable, &nf);
    return nf ? DG_ENOTFOUND : rc;
}
