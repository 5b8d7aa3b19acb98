/* partner_center.c — the Microsoft Partner Center referrals backend (connector =
 * partner_center).
 *
 * By id: GET {endpoint}/v1.0/engagements/referrals/{id}. By CRM id: GET
 * {endpoint}/v1.0/engagements/referrals?$filter=externalReferenceId eq '<crm id>' (quotes
 * doubled, the whole filter percent-encoded), following @odata.nextLink only while it stays
 * on the configured endpoint's origin. The state is substatus when present (Accepted, Won,
 * ...), else status; direction Incoming means the cloud referred the deal to us.
 *
 * Tokens: App+User through a refresh token (MFA rules out the password grant). The access
 * token is cached until 60 s before expires_in; a rotated refresh token in the answer
 * replaces the configured one, in memory and, with a state_dir (the service's data_dir), in
 * <state_dir>/partner-center-<cloud>.token (0600, replaced atomically): a restart goes on
 * with it while the configured token is still the one it was rotated from (an admin who
 * configures a new refresh token overrides it); one refresh is in flight at a time and concurrent
 * callers wait for it (within their own timeouts); a 401 from the API invalidates the token
 * it was sent with, and the call is retried once with a fresh one (the cache is oauth.h's).
 * token_url ending in /oauth2/token (Azure AD v1) gets resource=https://api.partner.microsoft.com;
 * a v2.0 endpoint gets scope=https://api.partner.microsoft.com/.default offline_access.
 * No token, refresh token or client secret ever reaches an error text or the health line.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cfg.h"
#include "config/sha256.h"
#include "connectors/backends.h"
#include "connectors/http.h"
#include "connectors/oauth.h"
#include "connectors/parse.h"

#define PC_RESOURCE "https://api.partner.microsoft.com"
#define PC_MAX_PAGES 50
#define PC_ATTEMPTS 3
#define PC_MSG_MAX 256
#define PC_STR_MAX 512

typedef struct {
    char *base; /* endpoint without a trailing '/' */
    char origin[CONN_HTTP_ORIGIN_MAX];
    char *token_url, *client_id, *client_secret;
    int v2; /* token_url is an Azure AD v2.0 endpoint */
    int timeout_ms;
    conn_http_client *http;

    conn_oauth tok;          /* the access token */
    char *refresh_token;     /* current one (rotated in memory; only token_fetch uses it) */
    char *token_file;        /* where a rotated one is kept across restarts, or NULL */
    char configured_sha[65]; /* SHA-256 (hex) of the configured refresh token */

    pthread_mutex_t mu; /* health fields */
    int64_t last_ok_ms, last_err_ms;
    char last_err[PC_MSG_MAX];
    char keep_err[PC_MSG_MAX]; /* why the token file could not be written; "" once it was */
} pc_state;

/* [A-Za-z0-9-]{1,64} */
static int pc_valid_id(const char *id)
{
    return conn_id_chars(id, "-", 64);
}

static void note(pc_state *st, const char *err)
{
    pthread_mutex_lock(&st->mu);
    if (err) {
        st->last_err_ms = conn_now_ms();
        snprintf(st->last_err, sizeof st->last_err, "%s", err);
    } else {
        st->last_ok_ms = conn_now_ms();
    }
    pthread_mutex_unlock(&st->mu);
}

/* ---- tokens ---------------------------------------------------------------------------- */

#define PC_TOKEN_MAGIC "dealgate partner_center refresh token 1"

/* The token file's text: the magic line, the configured token's hash, the current token. */
static char *token_file_text(const pc_state *st, size_t *len)
{
    size_t n = sizeof PC_TOKEN_MAGIC + 65 + strlen(st->refresh_token) + 2;
    char *t = malloc(n);
    if (t == NULL) return NULL;
    *len = (size_t)snprintf(t, n, "%s\n%s\n%s\n", PC_TOKEN_MAGIC, st->configured_sha,
                            st->refresh_token);
    return t;
}

/* Starts from the kept refresh token when the file holds one rotated from the configured
 * token; anything else (no file, another configured token, a damaged file, one that fails
 * the secret-file checks) is ignored. */
static void token_load(pc_state *st)
{
    char *text = NULL, warn[8], err[8];
    if (cfg_read_secret_file("token file", st->token_file, &text, warn, sizeof warn, err,
                             sizeof err) != 0)
        return;
    size_t n = strlen(text);
    /* "<magic>\n<sha>\n<token>" (the trailing newline is stripped) */
    char *sha = strchr(text, '\n');
    char *tok = sha ? strchr(sha + 1, '\n') : NULL;
    if (tok != NULL && tok[1] != '\0' && strchr(tok + 1, '\n') == NULL) {
        *sha++ = '\0';
        *tok++ = '\0';
        char *copy;
        if (strcmp(text, PC_TOKEN_MAGIC) == 0 && strcmp(sha, st->configured_sha) == 0 &&
            (copy = strdup(tok)) != NULL) {
            conn_wipe_free(st->refresh_token);
            st->refresh_token = copy;
        }
    }
    explicit_bzero(text, n); /* all of it: the token is past the NULs put in above */
    free(text);
}

/* Keeps the current refresh token in the token file: a new file, synced, renamed over the
 * old one, so a crash leaves the old token or the new one. Returns 0, or -1 with errno. */
static int token_save(const pc_state *st)
{
    size_t n = strlen(st->token_file) + 8, len = 0;
    char *tmp = malloc(n), *text = token_file_text(st, &len);
    int fd = -1, rc = -1, e = ENOMEM;
    if (tmp == NULL || text == NULL) goto out;
    snprintf(tmp, n, "%s.XXXXXX", st->token_file);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) { /* mode 0600 */
        e = errno;
        goto out;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (done != len || fsync(fd) != 0 || rename(tmp, st->token_file) != 0) {
        e = errno ? errno : EIO;
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) close(fd);
    free(tmp);
    if (text) conn_wipe_free(text);
    if (rc != 0) errno = e;
    return rc;
}

/* One refresh-token grant (a conn_oauth_fetch_fn: one at a time, so the refresh token needs
 * no lock). A rotated refresh token in the answer replaces st->refresh_token. */
static dg_err token_fetch(void *ctx, int64_t deadline, char **access, int64_t *expires_in,
                          conn_fail *f)
{
    pc_state *st = ctx;
    char *form = NULL, *rotated = NULL;
    size_t len = 0;
    long status = 0;
    cJSON *j = NULL;
    dg_err rc = DG_ENOMEM;
    *access = NULL;
    *expires_in = 0;
    if (conn_oauth_form_add(&form, &len, "grant_type", "refresh_token") ||
        conn_oauth_form_add(&form, &len, "client_id", st->client_id) ||
        (st->client_secret &&
         conn_oauth_form_add(&form, &len, "client_secret", st->client_secret)) ||
        conn_oauth_form_add(&form, &len, "refresh_token", st->refresh_token) ||
        (st->v2 ? conn_oauth_form_add(&form, &len, "scope", PC_RESOURCE "/.default offline_access")
                : conn_oauth_form_add(&form, &len, "resource", PC_RESOURCE))) {
        conn_failf(f, DG_ENOMEM, 1, "Partner Center token refresh: out of memory");
        goto out;
    }
    rc = conn_oauth_post_form(st->http, st->token_url, form, len, deadline,
                              "Partner Center token refresh", &status, &j, f);
    if (rc != DG_OK) goto out;
    if (status != 200) {
        char code[64] = "error", aadsts[32] = "";
        const cJSON *e = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
        if (cJSON_IsString(e) && e->valuestring)
            conn_http_excerpt(e->valuestring, code, sizeof code);
        const cJSON *codes =
            cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error_codes") : NULL;
        const cJSON *c0 = cJSON_IsArray(codes) ? cJSON_GetArrayItem(codes, 0) : NULL;
        if (cJSON_IsNumber(c0) && c0->valuedouble >= 0 && c0->valuedouble < 1e9)
            snprintf(aadsts, sizeof aadsts, " (AADSTS%ld)", (long)c0->valuedouble);
        int retry = status == 429 || status >= 500;
        rc = retry ? (status == 429 ? DG_ETHROTTLED : DG_EUPSTREAM) : DG_EAUTH;
        conn_failf(f, rc, retry, "Partner Center token refresh: %s%s (HTTP %ld)", code, aadsts,
                   status);
        goto out;
    }
    rc = DG_EPARSE;
    if (conn_oauth_parse_token(j, access, expires_in, &rotated) != 0) {
        conn_failf(f, rc, 1, "Partner Center token refresh: malformed token response");
        goto out;
    }
    if (rotated) {
        conn_wipe_free(st->refresh_token);
        st->refresh_token = rotated;
        if (st->token_file) {
            int saved = token_save(st) == 0, e = errno;
            pthread_mutex_lock(&st->mu); /* stays on the health line until a save works */
            if (saved)
                st->keep_err[0] = '\0';
            else
                snprintf(st->keep_err, sizeof st->keep_err,
                         "cannot keep the rotated refresh token in %s: %s (a restart falls "
                         "back to the configured one)",
                         st->token_file, strerror(e));
            pthread_mutex_unlock(&st->mu);
        }
    }
    rc = DG_OK;
out:
    conn_oauth_json_free(j);
    conn_wipe_free(form);
    if (rc != DG_OK) note(st, f->msg);
    return rc;
}

/* Returns DG_OK and a malloc'd copy of a valid access token (and its generation), refreshing
 * it when needed; else fills f. */
static dg_err get_token(pc_state *st, int64_t deadline, char **tok, uint64_t *gen, conn_fail *f)
{
    return conn_oauth_get(&st->tok, deadline, token_fetch, st, "Partner Center", tok, gen, f);
}

/* ---- API calls ------------------------------------------------------------------------- */

typedef enum { API_OK, API_NOT_FOUND, API_FAILED } api_outcome;

/* GETs url with a bearer token. API_OK: *json holds the parsed object (caller deletes). */
static api_outcome api_get(pc_state *st, const char *url, int64_t deadline, cJSON **json,
                           conn_fail *f)
{
    int refreshed = 0;
    *json = NULL;
    for (int attempt = 1;; attempt++) {
        char *tok = NULL;
        uint64_t gen = 0;
        if (get_token(st, deadline, &tok, &gen, f) != DG_OK) return API_FAILED;
        size_t hn = strlen(tok) + 32;
        char *auth = malloc(hn);
        if (auth == NULL) {
            conn_wipe_free(tok);
            conn_failf(f, DG_ENOMEM, 1, "Partner Center: out of memory");
            return API_FAILED;
        }
        snprintf(auth, hn, "Authorization: Bearer %s", tok);
        conn_wipe_free(tok);
        const char *const headers[] = {auth, "Accept: application/json", NULL};
        conn_http_json ans;
        int retry;
        dg_err rc = conn_http_get_json(st->http, url, headers, deadline, "Partner Center", &ans,
                                       f->msg, sizeof f->msg, &retry);
        conn_wipe_free(auth);
        if (rc != DG_OK) {
            f->rc = rc;
            f->retryable = retry;
            note(st, f->msg);
            return API_FAILED;
        }
        long status = ans.status;
        cJSON *j = ans.json;
        if (status == 401 && !refreshed) { /* the token was revoked or expired early */
            cJSON_Delete(j);
            conn_oauth_invalidate(&st->tok, gen);
            refreshed = 1;
            continue;
        }
        if (status == 200) {
            note(st, NULL);
            *json = j;
            return API_OK;
        }
        char detail[160] = "";
        if (cJSON_IsObject(j)) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "description");
            if (!cJSON_IsString(d)) d = cJSON_GetObjectItemCaseSensitive(j, "message");
            if (cJSON_IsString(d) && d->valuestring)
                conn_http_excerpt(d->valuestring, detail, sizeof detail);
        }
        cJSON_Delete(j);
        if (status == 404) {
            note(st, NULL);
            return API_NOT_FOUND;
        }
        retry = status == 429 || status >= 500;
        dg_err erc = status == 429                    ? DG_ETHROTTLED
                     : status == 401 || status == 403 ? DG_EAUTH
                                                      : DG_EUPSTREAM;
        conn_failf(f, erc, retry, "Partner Center: HTTP %ld%s%s", status, detail[0] ? ": " : "",
                   detail);
        note(st, f->msg);
        if (!retry || attempt >= PC_ATTEMPTS) return API_FAILED;
        int64_t wait = ans.retry_after_s > 0 ? (int64_t)ans.retry_after_s * 1000 : 100L * attempt;
        if (conn_now_ms() + wait >= deadline) return API_FAILED;
        conn_sleep_ms(wait);
    }
}

/* Ranks a referral's state for choosing among several for one CRM id. */
static int state_rank(const char *s)
{
    static const char *const order[] = {"Expired", "Declined", "Lost",     "New", "Pending",
                                        "Active",  "Received", "Accepted", "Won"};
    for (int i = 0; s && i < (int)(sizeof order / sizeof *order); i++)
        if (strcasecmp(s, order[i]) == 0) return i + 1;
    return 0;
}

typedef struct {
    char *id, *status, *crm, *created, *origin;
} referral;

static void referral_free(referral *r)
{
    free(r->id);
    free(r->status);
    free(r->crm);
    free(r->created);
    free(r->origin);
    memset(r, 0, sizeof *r);
}

/* Reads one referral object. Returns 0, or -1 when it does not have the documented shape. */
static int referral_read(const cJSON *o, referral *r)
{
    char *st = NULL, *sub = NULL, *dir = NULL;
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o) || conn_json_str(o, "id", 128, &r->id) != 0 ||
        conn_json_str(o, "status", 64, &st) != 0 || conn_json_str(o, "substatus", 64, &sub) != 0 ||
        conn_json_str(o, "externalReferenceId", PC_STR_MAX, &r->crm) != 0 ||
        conn_json_str(o, "createdDateTime", 64, &r->created) != 0 ||
        conn_json_str(o, "direction", 32, &dir) != 0)
        goto bad;
    if (sub) {
        r->status = sub;
        sub = NULL;
    } else {
        r->status = st;
        st = NULL;
    }
    if (dir) {
        const char *og = strcasecmp(dir, "Incoming") == 0   ? "cloud"
                         : strcasecmp(dir, "Outgoing") == 0 ? "partner"
                                                            : NULL;
        if (og && (r->origin = strdup(og)) == NULL) goto bad;
    }
    free(st);
    free(sub);
    free(dir);
    return 0;
bad:
    free(st);
    free(sub);
    free(dir);
    referral_free(r);
    return -1;
}

static void referral_to_fact(referral *r, dg_reg_fact *out)
{
    conn_fact_clear(out);
    out->lookup = DG_LOOKUP_FOUND;
    out->status = r->status;
    out->crm_id = r->crm;
    out->created_at = r->created;
    out->origin = r->origin;
    r->status = r->crm = r->created = r->origin = NULL;
}

/* Fills out from the referral object j asked for as `id`. Returns DG_OK (FOUND) or the
 * FAILED fact's error. */
static dg_err referral_fact(const cJSON *j, const char *id, dg_reg_fact *out)
{
    referral r;
    if (referral_read(j, &r) != 0)
        return conn_fact_fail(out, DG_EPARSE, 1, "Partner Center: unexpected referral shape");
    if (r.id && strcasecmp(r.id, id) != 0) {
        referral_free(&r);
        return conn_fact_fail(out, DG_EUPSTREAM, 0,
                              "Partner Center: answer is for another referral");
    }
    referral_to_fact(&r, out);
    referral_free(&r);
    return DG_OK;
}

/* Folds the referrals of one list page into *best: those of crm_id only, the best state
 * first, then the latest created. */
static void page_pick(const cJSON *items, const char *crm_id, referral *best, int *have)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        referral r;
        if (referral_read(it, &r) != 0 || r.id == NULL || !pc_valid_id(r.id) || r.crm == NULL ||
            strcmp(r.crm, crm_id) != 0) {
            referral_free(&r);
            continue; /* not ours (or unreadable): never a match */
        }
        int d = *have ? state_rank(r.status) - state_rank(best->status) : 1;
        if (d == 0) d = strcmp(r.created ? r.created : "", best->created ? best->created : "");
        if (d > 0) {
            referral_free(best);
            *best = r;
            *have = 1;
        } else {
            referral_free(&r);
        }
    }
}

/* The URL of the next page from @odata.nextLink `next` (taken over): root-relative links go
 * to `origin`, absolute ones must be on it. Returns DG_OK with *url (malloc'd), DG_EUPSTREAM
 * for a link to another origin, DG_ENOMEM. */
static dg_err next_link(const char *origin, char *next, char **url)
{
    *url = NULL;
    if (next[0] == '/' && next[1] != '/') { /* root-relative: on the endpoint's origin */
        size_t n = strlen(origin) + strlen(next) + 1;
        *url = malloc(n);
        if (*url) snprintf(*url, n, "%s%s", origin, next);
        free(next);
        return *url ? DG_OK : DG_ENOMEM;
    }
    if (conn_http_same_origin(next, origin)) {
        *url = next;
        return DG_OK;
    }
    free(next);
    return DG_EUPSTREAM;
}

/* ---- ops ------------------------------------------------------------------------------- */

static void pc_close(void *state)
{
    pc_state *st = state;
    if (st == NULL) return;
    conn_http_client_free(st->http);
    conn_oauth_destroy(&st->tok);
    pthread_mutex_destroy(&st->mu);
    free(st->base);
    free(st->token_url);
    conn_wipe_free(st->client_id);
    conn_wipe_free(st->client_secret);
    conn_wipe_free(st->refresh_token);
    free(st->token_file);
    free(st);
}

static dg_err pc_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                      size_t errlen)
{
    dg_err rc;
    *state = NULL;
    pc_state *st = calloc(1, sizeof *st);
    if (st == NULL) return dg_errf(err, errlen, DG_ENOMEM, "partner_center: out of memory");
    if (conn_oauth_init(&st->tok) != DG_OK) {
        free(st);
        return dg_errf(err, errlen, DG_EINTERNAL,
                       "partner_center: cannot create a condition variable");
    }
    pthread_mutex_init(&st->mu, NULL);

    rc = conn_http_check_base(cc->endpoint, "endpoint", err, errlen);
    if (rc != DG_OK) goto out;
    rc = conn_http_check_base(cc->token_url, "token_url", err, errlen);
    if (rc != DG_OK) goto out;
    if (conn_http_origin(cc->endpoint, st->origin, sizeof st->origin) != DG_OK) {
        rc = dg_errf(err, errlen, DG_EINVAL, "endpoint: not an absolute http(s) URL");
        goto out;
    }
    if (cc->client_id == NULL || *cc->client_id == '\0' || cc->refresh_token == NULL ||
        *cc->refresh_token == '\0') {
        rc = dg_errf(err, errlen, DG_EINVAL,
                     "partner_center: client_id and refresh_token are required");
        goto out;
    }
    rc = DG_ENOMEM;
    if ((st->base = conn_http_base_dup(cc->endpoint)) == NULL ||
        (st->token_url = strdup(cc->token_url)) == NULL ||
        (st->client_id = strdup(cc->client_id)) == NULL ||
        (cc->client_secret && *cc->client_secret &&
         (st->client_secret = strdup(cc->client_secret)) == NULL) ||
        (st->refresh_token = strdup(cc->refresh_token)) == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "partner_center: out of memory");
        goto out;
    }
    dg_sha256_hex(cc->refresh_token, strlen(cc->refresh_token), st->configured_sha);
    if (state_dir && *state_dir) {
        size_t n = strlen(state_dir) + strlen(cc->key) + sizeof "/partner-center-.token";
        if ((st->token_file = malloc(n)) == NULL) {
            rc = dg_errf(err, errlen, DG_ENOMEM, "partner_center: out of memory");
            goto out;
        }
        snprintf(st->token_file, n, "%s/partner-center-%s.token", state_dir, cc->key);
        token_load(st);
    }
    st->v2 = strstr(st->token_url, "/oauth2/v2.0/") != NULL;
    st->timeout_ms = cc->timeout_ms > 0 ? cc->timeout_ms : 2000;
    rc = conn_http_client_new(&st->http, err, errlen);
    if (rc != DG_OK) goto out;
    *state = st;
    st = NULL;
    rc = DG_OK;
out:
    pc_close(st);
    return rc;
}

static dg_err pc_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    pc_state *st = state;
    if (!pc_valid_id(id))
        return conn_fact_not_found(
            out, "invalid Partner Center referral id (expected [A-Za-z0-9-]{1,64})");
    if (timeout_ms <= 0) timeout_ms = st->timeout_ms;
    int64_t deadline = conn_now_ms() + timeout_ms;
    char *url = conn_http_url_id(st->base, "/v1.0/engagements/referrals/", id);
    if (url == NULL) return conn_fact_fail(out, DG_ENOMEM, 1, "Partner Center: out of memory");
    cJSON *j = NULL;
    conn_fail f = {0};
    api_outcome o = api_get(st, url, deadline, &j, &f);
    free(url);
    if (o == API_NOT_FOUND) return conn_fact_not_found(out, NULL);
    if (o == API_FAILED) return conn_fact_fail(out, f.rc, f.retryable, f.msg);
    dg_err rc = referral_fact(j, id, out);
    cJSON_Delete(j);
    return rc;
}

/* The URL of the first filtered page. Caller frees. */
static char *filter_url(const pc_state *st, const char *crm)
{
    size_t n = strlen(crm);
    char *filter = malloc(2 * n + 40), *p;
    if (filter == NULL) return NULL;
    p = filter + snprintf(filter, 2 * n + 40, "externalReferenceId eq '");
    for (const char *s = crm; *s; s++) {
        if (*s == '\'') *p++ = '\'';
        *p++ = *s;
    }
    memcpy(p, "'", 2);
    char *enc = conn_http_escape(filter);
    free(filter);
    if (enc == NULL) return NULL;
    size_t un = strlen(st->base) + strlen(enc) + 48;
    char *url = malloc(un);
    if (url) snprintf(url, un, "%s/v1.0/engagements/referrals?$filter=%s", st->base, enc);
    free(enc);
    return url;
}

static dg_err pc_by_crm_id(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out)
{
    pc_state *st = state;
    if (crm_id == NULL || *crm_id == '\0' || strlen(crm_id) > PC_STR_MAX)
        return conn_fact_not_found(out, NULL);
    for (const char *p = crm_id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return conn_fact_fail(out, DG_EINVAL, 0,
                                  "Partner Center: CRM id has control characters");
    if (timeout_ms <= 0) timeout_ms = st->timeout_ms;
    int64_t deadline = conn_now_ms() + timeout_ms;
    char *url = filter_url(st, crm_id);
    if (url == NULL) return conn_fact_fail(out, DG_ENOMEM, 1, "Partner Center: out of memory");

    referral best = {0};
    int have = 0;
    dg_err rc = DG_OK;
    for (int page = 0;; page++) {
        cJSON *j = NULL;
        conn_fail f = {0};
        api_outcome o = api_get(st, url, deadline, &j, &f);
        free(url);
        url = NULL;
        if (o == API_NOT_FOUND) break; /* an empty result set, said the 404 way */
        if (o == API_FAILED) {
            rc = conn_fact_fail(out, f.rc, f.retryable, f.msg);
            goto out;
        }
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "value");
        if (!cJSON_IsArray(items)) {
            cJSON_Delete(j);
            rc = conn_fact_fail(out, DG_EPARSE, 1, "Partner Center: unexpected list shape");
            goto out;
        }
        page_pick(items, crm_id, &best, &have);
        char *next = NULL;
        if (conn_json_str(j, "@odata.nextLink", 8192, &next) != 0) {
            cJSON_Delete(j);
            rc = conn_fact_fail(out, DG_EPARSE, 1, "Partner Center: malformed @odata.nextLink");
            goto out;
        }
        cJSON_Delete(j);
        if (next == NULL) break;
        if (next_link(st->origin, next, &url) == DG_EUPSTREAM) {
            rc = conn_fact_fail(out, DG_EUPSTREAM, 0,
                                "Partner Center: refused an @odata.nextLink to another origin");
            goto out;
        }
        if (url == NULL) {
            rc = conn_fact_fail(out, DG_ENOMEM, 1, "Partner Center: out of memory");
            goto out;
        }
        if (page + 1 >= PC_MAX_PAGES) {
            rc = conn_fact_fail(out, DG_ETOOBIG, 0, "Partner Center: too many result pages");
            goto out;
        }
    }
    if (!have) {
        rc = conn_fact_not_found(out, NULL);
        goto out;
    }
    {
        char *id = best.id;
        best.id = NULL;
        referral_to_fact(&best, out);
        conn_set_str(&out->id, id);
    }
out:
    free(url);
    referral_free(&best);
    return rc;
}

static void pc_health(void *state, char *buf, size_t n)
{
    pc_state *st = state;
    int64_t now = conn_now_ms(), valid = conn_oauth_valid_s(&st->tok);
    char tok[96], calls[PC_MSG_MAX + 64], keep[PC_MSG_MAX + 2] = "";
    if (valid >= 0)
        snprintf(tok, sizeof tok, "token valid %lld s more", (long long)valid);
    else
        snprintf(tok, sizeof tok, "no valid token");
    pthread_mutex_lock(&st->mu);
    conn_health_calls(calls, sizeof calls, now, st->last_ok_ms, st->last_err_ms, st->last_err);
    if (st->keep_err[0]) snprintf(keep, sizeof keep, "; %s", st->keep_err);
    pthread_mutex_unlock(&st->mu);
    snprintf(buf, n, "%s; %s%s", calls, tok, keep);
}

const conn_backend conn_partner_center_backend = {
    .name = "partner_center",
    .valid_id = pc_valid_id,
    .open = pc_open,
    .close = pc_close,
    .by_id = pc_by_id,
    .by_crm_id = pc_by_crm_id,
    .health = pc_health,
};

/* ---- pure parsing entry points (connectors/parse.h) ------------------------------------ */

dg_err conn_pc_parse_referral(const char *body, size_t len, const char *id, dg_reg_fact *out,
                              char *err, size_t errlen)
{
    return conn_parse_fact(body, len, id, "Partner Center", referral_fact, out, err, errlen);
}

dg_err conn_pc_parse_list_page(const char *body, size_t len, const char *crm_id, const char *origin,
                               dg_reg_fact *out, char **next_url, char *err, size_t errlen)
{
    dg_err rc = DG_EPARSE;
    referral best = {0};
    int have = 0;
    char *next = NULL;
    *next_url = NULL;
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *items = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "value") : NULL;
    if (!cJSON_IsArray(items)) {
        rc = conn_fact_fail(out, DG_EPARSE, 1, "Partner Center: unexpected list shape");
        goto out;
    }
    page_pick(items, crm_id ? crm_id : "", &best, &have);
    if (conn_json_str(j, "@odata.nextLink", 8192, &next) != 0) {
        rc = conn_fact_fail(out, DG_EPARSE, 1, "Partner Center: malformed @odata.nextLink");
        goto out;
    }
    if (next) {
        rc = next_link(origin ? origin : "", next, next_url);
        if (rc == DG_EUPSTREAM)
            rc = conn_fact_fail(out, DG_EUPSTREAM, 0,
                                "Partner Center: refused an @odata.nextLink to another origin");
        else if (rc != DG_OK)
            rc = conn_fact_fail(out, rc, 1, "Partner Center: out of memory");
        if (rc != DG_OK) goto out;
    }
    if (have) {
        char *id = best.id;
        best.id = NULL;
        referral_to_fact(&best, out);
        conn_set_str(&out->id, id);
    } else {
        conn_fact_not_found(out, NULL); /* no note: cannot fail */
    }
    rc = DG_OK;
out:
    if (rc != DG_OK) {
        dg_errf(err, errlen, rc, "%s", out->error ? out->error : "out of memory");
        free(*next_url);
        *next_url = NULL;
    }
    referral_free(&best);
    cJSON_Delete(j);
    return rc;
}

dg_err conn_pc_parse_token(const char *body, size_t len, char **access, long long *expires_in,
                           char **rotated, char *err, size_t errlen)
{
    int64_t exp = 0;
    cJSON *j = cJSON_ParseWithLength(body, len);
    int bad = conn_oauth_parse_token(j, access, &exp, rotated);
    cJSON_Delete(j);
    *expires_in = bad ? 0 : (long long)exp;
    if (bad)
        return dg_errf(err, errlen, DG_EPARSE,
                       "Partner Center token refresh: malformed token response");
    return DG_OK;
}
