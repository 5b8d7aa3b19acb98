/* oauth.c — the shared OAuth2 access-token cache (see oauth.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/oauth.h"

void conn_failf(conn_fail *f, dg_err rc, int retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->rc = rc;
    f->retryable = retryable;
}

dg_err conn_oauth_init(conn_oauth *o)
{
    memset(o, 0, sizeof *o);
    if (conn_cond_init_monotonic(&o->cv) != 0) return DG_EINTERNAL;
    pthread_mutex_init(&o->mu, NULL);
    return DG_OK;
}

void conn_oauth_destroy(conn_oauth *o)
{
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    conn_wipe_free(o->token);
    o->token = NULL;
}

/* A copy of the current token into *tok (o->mu held). Returns DG_OK or DG_ENOMEM (f). */
static dg_err copy_token(conn_oauth *o, const char *who, char **tok, uint64_t *gen, conn_fail *f)
{
    *tok = strdup(o->token);
    *gen = o->gen;
    if (*tok != NULL) return DG_OK;
    conn_failf(f, DG_ENOMEM, 1, "%s: out of memory", who);
    return DG_ENOMEM;
}

dg_err conn_oauth_get(conn_oauth *o, int64_t deadline_ms, conn_oauth_fetch_fn fetch, void *ctx,
                      const char *who, char **tok, uint64_t *gen, conn_fail *f)
{
    dg_err rc;
    *tok = NULL;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        int64_t now = conn_now_ms();
        if (o->token && now < o->exp_ms) {
            rc = copy_token(o, who, tok, gen, f);
            pthread_mutex_unlock(&o->mu);
            return rc;
        }
        if (!o->fetching) break;
        if (now >= deadline_ms) {
            pthread_mutex_unlock(&o->mu);
            conn_failf(f, DG_ETIMEOUT, 1, "%s: out of time waiting for a token", who);
            return DG_ETIMEOUT;
        }
        conn_cond_wait_until(&o->cv, &o->mu, deadline_ms);
    }
    o->fetching = 1;
    pthread_mutex_unlock(&o->mu);

    char *access = NULL;
    int64_t expires_in = 0;
    rc = fetch(ctx, deadline_ms, &access, &expires_in, f);

    pthread_mutex_lock(&o->mu);
    o->fetching = 0;
    pthread_cond_broadcast(&o->cv);
    if (rc == DG_OK) {
        int64_t now = conn_now_ms();
        conn_wipe_free(o->token);
        o->token = access;
        o->exp_ms = expires_in > CONN_OAUTH_EXPIRY_MARGIN_S
                        ? now + (expires_in - CONN_OAUTH_EXPIRY_MARGIN_S) * 1000
                        : now;
        o->gen++;
        rc = copy_token(o, who, tok, gen, f);
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void conn_oauth_invalidate(conn_oauth *o, uint64_t gen)
{
    pthread_mutex_lock(&o->mu);
    if (o->gen == gen) o->exp_ms = 0;
    pthread_mutex_unlock(&o->mu);
}

int64_t conn_oauth_valid_s(conn_oauth *o)
{
    int64_t now = conn_now_ms(), s = -1;
    pthread_mutex_lock(&o->mu);
    if (o->token && now < o->exp_ms) s = (o->exp_ms - now) / 1000;
    pthread_mutex_unlock(&o->mu);
    return s;
}

dg_err conn_oauth_post_form(conn_http_client *http, const char *url, const char *form, size_t len,
                            int64_t deadline_ms, const char *who, long *status, cJSON **json,
                            conn_fail *f)
{
    conn_http_resp rs = {0};
    dg_err rc;
    *status = 0;
    *json = NULL;
    int64_t left = deadline_ms - conn_now_ms();
    if (left <= 0) {
        conn_failf(f, DG_ETIMEOUT, 1, "%s: out of time", who);
        return DG_ETIMEOUT;
    }
    const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                   "Accept: application/json", NULL};
    conn_http_req rq = {.method = "POST",
                        .url = url,
                        .headers = headers,
                        .body = form,
                        .body_len = len,
                        .timeout_ms = (int)(left > 600000 ? 600000 : left),
                        .max_response = 256 * 1024};
    char err[CONN_FAIL_MSG_MAX];
    rc = conn_http_do(http, &rq, &rs, err, sizeof err);
    if (rc != DG_OK) {
        conn_failf(f, rc, rc != DG_ETOOBIG && rc != DG_EINVAL, "%s: %s", who, err);
    } else {
        *status = rs.status;
        *json = cJSON_ParseWithLength(rs.body, rs.len);
    }
    if (rs.body) explicit_bzero(rs.body, rs.len);
    conn_http_resp_free(&rs);
    return rc;
}

void conn_oauth_json_free(cJSON *j)
{
    if (j == NULL) return;
    const cJSON *k;
    cJSON_ArrayForEach(k, j) if (cJSON_IsString(k) && k->valuestring)
        explicit_bzero(k->valuestring, strlen(k->valuestring));
    cJSON_Delete(j);
}

int conn_oauth_parse_token(const cJSON *j, char **access, int64_t *expires_in, char **rotated)
{
    const cJSON *ei = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "expires_in") : NULL;
    int64_t exp = -1;
    char *rot = NULL;
    *access = NULL;
    if (rotated) *rotated = NULL;
    if (cJSON_IsNumber(ei) && ei->valuedouble >= 0 && ei->valuedouble < 1e9) {
        exp = (int64_t)ei->valuedouble;
    } else if (cJSON_IsString(ei) && ei->valuestring) { /* Azure AD v1 sends a string */
        char *end = NULL;
        errno = 0;
        long long v = strtoll(ei->valuestring, &end, 10);
        if (end != ei->valuestring && *end == '\0' && errno == 0 && v >= 0 && v < 1000000000)
            exp = v;
    }
    if (!cJSON_IsObject(j) || conn_json_str(j, "access_token", CONN_OAUTH_TOKEN_MAX, access) != 0 ||
        *access == NULL || exp < 0 ||
        (rotated && conn_json_str(j, "refresh_token", CONN_OAUTH_TOKEN_MAX, &rot) != 0)) {
        conn_wipe_free(*access);
        conn_wipe_free(rot);
        *access = NULL;
        return -1;
    }
    if (rotated) *rotated = rot;
    *expires_in = exp;
    return 0;
}

int conn_oauth_form_add(char **buf, size_t *len, const char *name, const char *value)
{
    char *v = conn_http_escape(value);
    if (v == NULL) return -1;
    size_t add = strlen(name) + strlen(v) + 2;
    char *b = realloc(*buf, *len + add + 1);
    if (b == NULL) {
        conn_wipe_free(v);
        return -1;
    }
    snprintf(b + *len, add + 1, "%s%s=%s", *len ? "&" : "", name, v);
    *len += strlen(b + *len);
    *buf = b;
    conn_wipe_free(v);
    return 0;
}
