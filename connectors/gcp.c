/* gcp.c — the Google Cloud backend: Cloud CRM Partners API (connector = gcp).
 *
 * By id: GET {endpoint}/v1/partners/{partner_id}/opportunities/{id} with an OAuth2 bearer
 * token: either the static access_token of the config (through ${ENV} or an @file a token
 * helper rewrites, then reload), or one this backend gets for the service account of the
 * `credentials` key file (JSON: type service_account, client_email, private_key PEM,
 * token_uri, private_key_id). For that it signs a JWT (RS256: SHA-256, PKCS#1 v1.5, with
 * mbedTLS; iss client_email, scope cloud-platform, aud token_uri, an hour's validity) and
 * POSTs it as a jwt-bearer grant to token_url (default: the key file's token_uri). The token
 * is cached, fetched lazily within a look-up's time and refreshed once on a 401 through
 * oauth.h's cache (so one request at a time uses the key and its RNG). The API has no list
 * method, so a look-up needs the opportunity id: by CRM id always answers NOT_FOUND with a
 * note saying so. No token or key material reaches an error text or the health line.
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
#include <time.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "config/cfg.h"
#include "connectors/backends.h"
#include "connectors/http.h"
#include "connectors/oauth.h"
#include "connectors/parse.h"

#define GCP_ATTEMPTS 3
#define GCP_MSG_MAX 256
#define GCP_STR_MAX 512
#define GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define GCP_JWT_LIFETIME_S 3600
#define GCP_GRANT "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

/* The service account of a credentials key file, and what signing needs. */
typedef struct {
    char *email, *kid, *aud; /* client_email, private_key_id (or NULL), token_uri */
    char *token_url;         /* where to POST: token_url of the config, else token_uri */
    mbedtls_pk_context pk;   /* the RSA private key */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    conn_oauth tok;
} gcp_sa;

typedef struct {
    char *partner_url; /* {endpoint}/v1/partners/{partner_id, percent-encoded} */
    char *auth;        /* "Authorization: Bearer ..." of a static access_token, else NULL */
    gcp_sa *sa;        /* with credentials, else NULL */
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

/* ---- the service account: key file, JWT, token request -------------------------------- */

static void sa_free(gcp_sa *sa)
{
    if (sa == NULL) return;
    conn_oauth_destroy(&sa->tok);
    mbedtls_pk_free(&sa->pk);
    mbedtls_ctr_drbg_free(&sa->drbg);
    mbedtls_entropy_free(&sa->entropy);
    free(sa->email);
    free(sa->kid);
    free(sa->aud);
    free(sa->token_url);
    free(sa);
}

/* Reads the key file at path into *out: its fields checked, the key parsed (RSA), the RNG
 * seeded. token_url (may be NULL) overrides the file's token_uri as the POST target. Errors
 * name the file and the field, never a value of it. */
static dg_err sa_load(const char *path, const char *token_url, gcp_sa **out, char *err,
                      size_t errlen)
{
    dg_err rc = DG_EINVAL;
    char *text = NULL, *type = NULL, warn[8], e[300];
    const char *key = NULL;
    cJSON *j = NULL;
    *out = NULL;
    gcp_sa *sa = calloc(1, sizeof *sa);
    if (sa == NULL) return dg_errf(err, errlen, DG_ENOMEM, "gcp: out of memory");
    mbedtls_pk_init(&sa->pk);
    mbedtls_entropy_init(&sa->entropy);
    mbedtls_ctr_drbg_init(&sa->drbg);
    if (conn_oauth_init(&sa->tok) != DG_OK) {
        mbedtls_pk_free(&sa->pk);
        mbedtls_ctr_drbg_free(&sa->drbg);
        mbedtls_entropy_free(&sa->entropy);
        free(sa);
        return dg_errf(err, errlen, DG_EINTERNAL, "gcp: cannot create a condition variable");
    }
    if (cfg_read_secret_file("credentials file", path, &text, warn, sizeof warn, e, sizeof e) !=
        0) {
        dg_errf(err, errlen, rc, "gcp: %s", e);
        goto out;
    }
    j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) {
        dg_errf(err, errlen, rc, "gcp: credentials file %.200s: not a JSON object", path);
        goto out;
    }
    static const char *const fields[] = {"type", "client_email", "token_uri", "private_key_id"};
    char **slots[] = {&type, &sa->email, &sa->aud, &sa->kid};
    static const size_t max[] = {64, 320, 2048, 256};
    for (size_t i = 0; i < 4; i++) {
        if (conn_json_str(j, fields[i], max[i], slots[i]) != 0) {
            dg_errf(err, errlen, rc, "gcp: credentials file %.200s: %s is not a valid string", path,
                    fields[i]);
            goto out;
        }
        if (*slots[i] == NULL && i != 3) { /* private_key_id is optional */
            dg_errf(err, errlen, rc, "gcp: credentials file %.200s: %s is missing", path,
                    fields[i]);
            goto out;
        }
    }
    /* the PEM has line breaks, which conn_json_str refuses */
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(j, "private_key");
    if (pk == NULL || cJSON_IsNull(pk)) {
        dg_errf(err, errlen, rc, "gcp: credentials file %.200s: private_key is missing", path);
        goto out;
    }
    if (!cJSON_IsString(pk) || pk->valuestring == NULL || strlen(pk->valuestring) > 16384) {
        dg_errf(err, errlen, rc, "gcp: credentials file %.200s: private_key is not a valid string",
                path);
        goto out;
    }
    key = pk->valuestring; /* borrowed from j, which is wiped */
    if (strcmp(type, "service_account") != 0) {
        dg_errf(err, errlen, rc,
                "gcp: credentials file %.200s: type is not \"service_account\" (only service "
                "account keys are supported)",
                path);
        goto out;
    }
    if (conn_http_check_base(sa->aud, "token_uri", e, sizeof e) != DG_OK) {
        dg_errf(err, errlen, rc, "gcp: credentials file %.200s: %s", path, e);
        goto out;
    }
    int mrc = mbedtls_pk_parse_key(&sa->pk, (const unsigned char *)key, strlen(key) + 1, NULL, 0);
    if (mrc != 0) {
        dg_errf(err, errlen, rc,
                "gcp: credentials file %.200s: private_key is not a PEM private key mbedTLS can "
                "read (-0x%04x)",
                path, (unsigned)-mrc);
        goto out;
    }
    if (mbedtls_pk_get_type(&sa->pk) != MBEDTLS_PK_RSA) {
        dg_errf(err, errlen, rc, "gcp: credentials file %.200s: private_key is not an RSA key",
                path);
        goto out;
    }
    static const char pers[] = "dealgate-gcp-jwt";
    if (mbedtls_ctr_drbg_seed(&sa->drbg, mbedtls_entropy_func, &sa->entropy,
                              (const unsigned char *)pers, sizeof pers - 1) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "gcp: cannot seed the random generator");
        goto out;
    }
    if ((sa->token_url = strdup(token_url ? token_url : sa->aud)) == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "gcp: out of memory");
        goto out;
    }
    *out = sa;
    sa = NULL;
    rc = DG_OK;
out:
    free(type);
    conn_oauth_json_free(j);
    conn_wipe_free(text);
    sa_free(sa);
    return rc;
}

/* base64url of in[0..n) without padding, malloc'd (NULL when out of memory). */
static char *b64url(const unsigned char *in, size_t n)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, in, n); /* the size needed, NUL included */
    char *out = malloc(olen + 1);
    if (out == NULL || mbedtls_base64_encode((unsigned char *)out, olen + 1, &olen, in, n) != 0) {
        free(out);
        return NULL;
    }
    while (olen > 0 && out[olen - 1] == '=')
        olen--;
    out[olen] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* base64url of the compact JSON of o (deleted), malloc'd, or NULL. */
static char *b64url_json(cJSON *o)
{
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    char *b = txt ? b64url((const unsigned char *)txt, strlen(txt)) : NULL;
    free(txt);
    return b;
}

/* The signed assertion of sa at time now: header.claims.signature. Returns it malloc'd, or
 * NULL with f filled. One caller at a time (the RNG and the key's blinding are not
 * thread-safe): oauth.h's single flight sees to it. */
static char *sa_jwt(gcp_sa *sa, int64_t now, conn_fail *f)
{
    char *head = NULL, *claims = NULL, *sig64 = NULL, *jwt = NULL;
    cJSON *h = cJSON_CreateObject(), *c = cJSON_CreateObject();
    if (h == NULL || c == NULL || !cJSON_AddStringToObject(h, "alg", "RS256") ||
        !cJSON_AddStringToObject(h, "typ", "JWT") ||
        (sa->kid && !cJSON_AddStringToObject(h, "kid", sa->kid)) ||
        !cJSON_AddStringToObject(c, "iss", sa->email) ||
        !cJSON_AddStringToObject(c, "scope", GCP_SCOPE) ||
        !cJSON_AddStringToObject(c, "aud", sa->aud) ||
        !cJSON_AddNumberToObject(c, "iat", (double)now) ||
        !cJSON_AddNumberToObject(c, "exp", (double)(now + GCP_JWT_LIFETIME_S))) {
        cJSON_Delete(h);
        cJSON_Delete(c);
        h = c = NULL;
    }
    head = b64url_json(h);
    claims = b64url_json(c);
    if (head == NULL || claims == NULL) goto nomem;
    size_t n = strlen(head) + strlen(claims) + 2;
    char *signing = malloc(n);
    if (signing == NULL) goto nomem;
    snprintf(signing, n, "%s.%s", head, claims);
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t slen = 0;
    int mrc = mbedtls_sha256_ret((const unsigned char *)signing, n - 1, hash, 0);
    if (mrc == 0)
        mrc = mbedtls_pk_sign(&sa->pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &slen,
                              mbedtls_ctr_drbg_random, &sa->drbg);
    if (mrc != 0) {
        free(signing);
        conn_failf(f, DG_EINTERNAL, 0, "Google Cloud: cannot sign the token request (-0x%04x)",
                   (unsigned)-mrc);
        goto out;
    }
    if ((sig64 = b64url(sig, slen)) == NULL) {
        free(signing);
        goto nomem;
    }
    n += strlen(sig64) + 1;
    if ((jwt = malloc(n)) != NULL) snprintf(jwt, n, "%s.%s", signing, sig64);
    free(signing);
    if (jwt == NULL) goto nomem;
    goto out;
nomem:
    conn_failf(f, DG_ENOMEM, 1, "Google Cloud: out of memory");
out:
    free(head);
    free(claims);
    free(sig64);
    return jwt;
}

/* One jwt-bearer grant (a conn_oauth_fetch_fn). */
static dg_err sa_fetch(void *ctx, int64_t deadline, char **access, int64_t *expires_in,
                       conn_fail *f)
{
    gcp_state *st = ctx;
    gcp_sa *sa = st->sa;
    char *form = NULL;
    long status = 0;
    cJSON *j = NULL;
    dg_err rc = DG_ENOMEM;
    *access = NULL;
    *expires_in = 0;
    char *jwt = sa_jwt(sa, (int64_t)time(NULL), f);
    if (jwt == NULL) return f->rc;
    size_t len = strlen(GCP_GRANT) + strlen(jwt);
    if ((form = malloc(len + 1)) == NULL) {
        conn_failf(f, rc, 1, "Google Cloud: out of memory");
        goto out;
    }
    snprintf(form, len + 1, "%s%s", GCP_GRANT, jwt);
    rc = conn_oauth_post_form(st->http, sa->token_url, form, len, deadline,
                              "Google Cloud: token request", &status, &j, f);
    if (rc != DG_OK) goto out;
    if (status != 200) {
        char code[64] = "error", desc[160] = "";
        const cJSON *e = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
        const cJSON *d =
            cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error_description") : NULL;
        if (cJSON_IsString(e) && e->valuestring)
            conn_http_excerpt(e->valuestring, code, sizeof code);
        if (cJSON_IsString(d) && d->valuestring)
            conn_http_excerpt(d->valuestring, desc, sizeof desc);
        int retry = status == 429 || status >= 500;
        rc = retry ? (status == 429 ? DG_ETHROTTLED : DG_EUPSTREAM) : DG_EAUTH;
        conn_failf(f, rc, retry, "Google Cloud: token refused: %s%s%s (HTTP %ld)", code,
                   desc[0] ? ": " : "", desc, status);
        goto out;
    }
    rc = DG_EPARSE;
    if (conn_oauth_parse_token(j, access, expires_in, NULL) != 0) {
        conn_failf(f, rc, 1, "Google Cloud: malformed token response");
        goto out;
    }
    rc = DG_OK;
out:
    conn_oauth_json_free(j);
    conn_wipe_free(form);
    conn_wipe_free(jwt);
    return rc;
}

/* The Authorization header line for one call, malloc'd (free with conn_wipe_free), and the
 * generation of its token (0 for a static one). Returns DG_OK, else the error with f. */
static dg_err auth_header(gcp_state *st, int64_t deadline, char **hdr, uint64_t *gen, conn_fail *f)
{
    char *tok = NULL;
    *gen = 0;
    if (st->sa == NULL) {
        *hdr = strdup(st->auth);
    } else {
        dg_err rc =
            conn_oauth_get(&st->sa->tok, deadline, sa_fetch, st, "Google Cloud", &tok, gen, f);
        if (rc != DG_OK) return rc;
        size_t n = strlen(tok) + 32;
        if ((*hdr = malloc(n)) != NULL) snprintf(*hdr, n, "Authorization: Bearer %s", tok);
        conn_wipe_free(tok);
    }
    if (*hdr != NULL) return DG_OK;
    conn_failf(f, DG_ENOMEM, 1, "Google Cloud: out of memory");
    return DG_ENOMEM;
}

static void gcp_close(void *state)
{
    gcp_state *st = state;
    if (st == NULL) return;
    conn_http_client_free(st->http);
    pthread_mutex_destroy(&st->mu);
    free(st->partner_url);
    conn_wipe_free(st->auth);
    sa_free(st->sa);
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
    int tok = cc->access_token != NULL && *cc->access_token != '\0';
    int cred = cc->credentials != NULL && *cc->credentials != '\0';
    if (tok == cred) {
        dg_errf(err, errlen, rc, "gcp: exactly one of access_token and credentials is required");
        goto out;
    }
    for (const char *p = tok ? cc->access_token : ""; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            dg_errf(err, errlen, rc, "gcp: access_token has characters a token cannot have");
            goto out;
        }
    if (cred && cc->token_url) {
        rc = conn_http_check_base(cc->token_url, "token_url", err, errlen);
        if (rc != DG_OK) goto out;
    }
    if (cred) {
        rc = sa_load(cc->credentials, cc->token_url, &st->sa, err, errlen);
        if (rc != DG_OK) goto out;
    }
    rc = DG_ENOMEM;
    size_t an = tok ? strlen(cc->access_token) + 32 : 0;
    if ((base = conn_http_base_dup(cc->endpoint)) == NULL ||
        (st->partner_url = conn_http_url_id(base, "/v1/partners/", cc->partner_id)) == NULL ||
        (tok && (st->auth = malloc(an)) == NULL)) {
        dg_errf(err, errlen, rc, "gcp: out of memory");
        goto out;
    }
    if (tok) snprintf(st->auth, an, "Authorization: Bearer %s", cc->access_token);
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
    int refreshed = 0;
    for (int attempt = 1;; attempt++) {
        char *auth = NULL;
        uint64_t gen = 0;
        conn_fail f;
        if (auth_header(st, deadline, &auth, &gen, &f) != DG_OK) {
            rc = fact_failed(st, out, f.rc, f.retryable, f.msg);
            goto out;
        }
        const char *const headers[] = {auth, "Accept: application/json", NULL};
        conn_http_json ans;
        int retry, nf;
        dg_err hrc = conn_http_get_json(st->http, url, headers, deadline, "Google Cloud", &ans, msg,
                                        sizeof msg, &retry);
        conn_wipe_free(auth);
        if (hrc != DG_OK) {
            rc = fact_failed(st, out, hrc, retry, msg);
            goto out;
        }
        if (ans.status == 401 && st->sa && !refreshed) { /* revoked or expired early */
            cJSON_Delete(ans.json);
            conn_oauth_invalidate(&st->sa->tok, gen);
            refreshed = 1;
            continue;
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
    int64_t now = conn_now_ms(), valid = st->sa ? conn_oauth_valid_s(&st->sa->tok) : 0;
    char calls[GCP_MSG_MAX + 64];
    pthread_mutex_lock(&st->mu);
    conn_health_calls(calls, sizeof calls, now, st->last_ok_ms, st->last_err_ms, st->last_err);
    pthread_mutex_unlock(&st->mu);
    if (st->sa == NULL)
        snprintf(buf, n, "%s", calls);
    else if (valid >= 0)
        snprintf(buf, n, "%s; token valid %lld s more", calls, (long long)valid);
    else
        snprintf(buf, n, "%s; no valid token", calls);
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
