/* ace.c — the AWS ACE backend (Partner Central Selling API, connector = ace).
 *
 * By id: one signed `POST /` with X-Amz-Target AWSPartnerCentralSelling.GetOpportunity.
 * By CRM id: ListOpportunities cannot filter on PartnerOpportunityIdentifier, so a background
 * thread started at open keeps an in-memory index PartnerOpportunityIdentifier -> opportunity
 * ids: a full pass at start, then incremental passes (LastModifiedDate after the newest seen,
 * minus a second of overlap, sorted ascending) every ACE_REFRESH_MS. A request never pages
 * the list itself: on a miss it asks the thread for an early pass (at most one per
 * ACE_EARLY_GAP_MS) and waits for it only within its own timeout; a hit is confirmed with
 * GetOpportunity, which gives the current state.
 *
 * Errors are classified by the exception type name (x-amzn-ErrorType, else __type in the
 * body), never by status code alone: ResourceNotFoundException is NOT_FOUND; throttling and
 * server errors are retried within the caller's time and then FAILED retryable (a throttle
 * also holds every call of this instance back for a growing back-off); access, signature
 * and validation errors are FAILED for good.
 *
 * Locking: st->mu guards the index, the refresh bookkeeping and the health fields; HTTP
 * calls run outside it. st->cv (CLOCK_MONOTONIC) is broadcast when a pass ends, a refresh is
 * wanted, or the instance closes.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "connectors/parse.h"

#define ACE_SERVICE "partnercentral-selling"
#define ACE_REFRESH_MS 60000      /* incremental index pass */
#define ACE_EARLY_GAP_MS 10000    /* at most one miss-triggered pass per this */
#define ACE_STALE_MS (5 * 60000)  /* an index older than this answers misses with FAILED */
#define ACE_PAGE_TIMEOUT_MS 15000 /* per ListOpportunities page (at least timeout_ms) */
#define ACE_PAGE_SIZE 100
#define ACE_MAX_PAGES 20000
#define ACE_ATTEMPTS 3
#define ACE_STR_MAX 512
#define ACE_MSG_MAX 256
#define NONE SIZE_MAX

typedef struct {
    char *id;      /* "O123..." */
    char *crm_id;  /* PartnerOpportunityIdentifier, NULL if none */
    char *status;  /* LifeCycle.ReviewStatus as listed, NULL if none */
    char *lastmod; /* LastModifiedDate as listed */
    size_t next;   /* next entry with the same crm_id, NONE at the end */
} ace_entry;

typedef struct {
    size_t *slot; /* entry indices, NONE = empty; open addressing, linear probing */
    size_t cap;   /* power of two (0 = empty table) */
} ace_ht;

typedef struct {
    char *url; /* endpoint + "/" */
    char *region, *catalog, *akid, *secret, *token;
    conn_sigv4 sig;
    int timeout_ms;
    conn_http_client *http;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    ace_entry *ents;
    size_t nents, cap;
    ace_ht by_id, by_crm;
    int ready;           /* a full pass has completed */
    int64_t maxmod_s;    /* newest LastModifiedDate seen (unix seconds), 0 = none */
    int64_t index_at_ms; /* end of the last successful pass */
    uint64_t passes;     /* passes ended, successful or not */
    int refreshing, want_refresh;
    int64_t last_early_ms; /* last miss-triggered pass, INT64_MIN = never */
    char index_err[ACE_MSG_MAX];
    int64_t last_ok_ms, last_err_ms; /* 0 = never */
    char last_err[ACE_MSG_MAX];
    int64_t throttled_until_ms;
    int throttle_backoff_ms;

    atomic_int stop;
    pthread_t thr;
    int thr_started;
} ace_state;

/* ---- small helpers --------------------------------------------------------------------- */

static int ace_valid_id(const char *id)
{
    if (id == NULL || id[0] != 'O') return 0;
    size_t n = 0;
    for (const char *p = id + 1; *p; p++, n++)
        if (*p < '0' || *p > '9' || n >= 19) return 0;
    return n >= 1;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s && *s ? s : dflt);
}

/* Sleeps ms, or less if the instance closes meanwhile (close broadcasts st->cv). */
static void nap(ace_state *st, int64_t ms)
{
    int64_t until = conn_now_ms() + ms;
    pthread_mutex_lock(&st->mu);
    while (!atomic_load(&st->stop) && conn_now_ms() < until)
        conn_cond_wait_until(&st->cv, &st->mu, until);
    pthread_mutex_unlock(&st->mu);
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" into unix seconds. Returns 0 or -1. */
static int parse_time(const char *s, int64_t *out)
{
    int v[6];
    static const int len[6] = {4, 2, 2, 2, 2, 2};
    static const char sep[6] = {'-', '-', 'T', ':', ':', 0};
    const char *p = s;
    if (s == NULL) return -1;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < len[i]; k++, p++) {
            if (*p < '0' || *p > '9') return -1;
            v[i] = v[i] * 10 + (*p - '0');
        }
        if (sep[i]) {
            if (*p != sep[i] && !(i == 2 && (*p == 't' || *p == ' '))) return -1;
            p++;
        }
    }
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) {
        }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
               p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '9' && p[5] >= '0' &&
               p[5] <= '9') {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        if (*p == '-') off = -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0' || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 ||
        v[5] > 60)
        return -1;
    /* days from civil (proleptic Gregorian) */
    int64_t y = v[0] - (v[1] <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (v[1] + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + v[2] - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    *out = days * 86400 + v[3] * 3600 + v[4] * 60 + v[5] - off;
    return 0;
}

static void format_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void note_ok(ace_state *st)
{
    pthread_mutex_lock(&st->mu);
    st->last_ok_ms = conn_now_ms();
    st->throttle_backoff_ms = 0;
    pthread_mutex_unlock(&st->mu);
}

static void note_err(ace_state *st, const char *msg)
{
    pthread_mutex_lock(&st->mu);
    st->last_err_ms = conn_now_ms();
    snprintf(st->last_err, sizeof st->last_err, "%s", msg);
    pthread_mutex_unlock(&st->mu);
}

/* ---- one API call ---------------------------------------------------------------------- */

typedef enum { CALL_OK, CALL_NOT_FOUND, CALL_FAILED } call_outcome;

typedef struct {
    call_outcome outcome;
    dg_err rc;
    int retryable;
    cJSON *json;           /* CALL_OK: the parsed response (caller deletes) */
    char msg[ACE_MSG_MAX]; /* CALL_FAILED: one line */
} call_result;

typedef enum { ERR_UNKNOWN, ERR_NOT_FOUND, ERR_THROTTLED, ERR_SERVER, ERR_FINAL } err_class;

static err_class classify(const char *type)
{
    static const char *const final_types[] = {
        "AccessDeniedException",      "ValidationException",   "UnrecognizedClientException",
        "InvalidSignatureException",  "ExpiredTokenException", "IncompleteSignature",
        "MissingAuthenticationToken", "InvalidClientTokenId",  "SerializationException",
        "UnknownOperationException",  "ConflictException"};
    if (strcmp(type, "ResourceNotFoundException") == 0) return ERR_NOT_FOUND;
    if (strcmp(type, "ThrottlingException") == 0 || strcmp(type, "TooManyRequestsException") == 0)
        return ERR_THROTTLED;
    if (strcmp(type, "InternalServerException") == 0 ||
        strcmp(type, "ServiceUnavailableException") == 0 || strcmp(type, "InternalFailure") == 0 ||
        strcmp(type, "ServiceUnavailable") == 0)
        return ERR_SERVER;
    for (size_t i = 0; i < sizeof final_types / sizeof *final_types; i++)
        if (strcmp(type, final_types[i]) == 0) return ERR_FINAL;
    return ERR_UNKNOWN;
}

/* The exception type of a response: the header, else __type of a JSON body, cut to the name
 * ("ns#Name" -> "Name", "Name:uri" -> "Name"). Writes "" when there is none. */
static void error_type(const char *hdr, const cJSON *body, char *out, size_t n)
{
    const char *t = hdr ? hdr : "";
    if (*t == '\0' && body) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(body, "__type");
        if (cJSON_IsString(ty) && ty->valuestring) t = ty->valuestring;
    }
    const char *hash = strrchr(t, '#');
    if (hash) t = hash + 1;
    size_t k = strcspn(t, ":");
    char tmp[128];
    if (k >= sizeof tmp) k = sizeof tmp - 1;
    memcpy(tmp, t, k);
    tmp[k] = '\0';
    conn_http_excerpt(tmp, out, n);
}

/* The class of an error answer: by type name, else by status (5xx retried, else final). */
static err_class answer_class(const char *type, long status)
{
    err_class cls = type[0] ? classify(type) : ERR_UNKNOWN;
    if (cls == ERR_UNKNOWN) cls = status >= 500 ? ERR_SERVER : ERR_FINAL;
    return cls;
}

/* The dg_err of a failed call of class cls (not ERR_NOT_FOUND). */
static dg_err class_rc(err_class cls, const char *type)
{
    return cls == ERR_THROTTLED ? DG_ETHROTTLED
           : cls == ERR_SERVER  ? DG_EUPSTREAM
           : (strstr(type, "Access") || strstr(type, "Signature") || strstr(type, "Token") ||
              strstr(type, "Unrecognized"))
               ? DG_EAUTH
               : DG_EUPSTREAM;
}

static const char *error_message(const cJSON *body)
{
    if (body == NULL) return "";
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "message");
    if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(body, "Message");
    return cJSON_IsString(m) && m->valuestring ? m->valuestring : "";
}

/* Calls operation op with JSON body `body` until deadline_ms (monotonic). Retries throttling
 * and server errors while time remains. Records health. */
static void ace_call(ace_state *st, const char *op, const char *body, int64_t deadline_ms,
                     int max_attempts, call_result *res)
{
    char target[96];
    snprintf(target, sizeof target, "X-Amz-Target: AWSPartnerCentralSelling.%s", op);
    const char *const headers[] = {"Content-Type: application/x-amz-json-1.0", target,
                                   "Accept: application/json", NULL};
    memset(res, 0, sizeof *res);

    for (int attempt = 1;; attempt++) {
        conn_http_resp rs;
        char err[ACE_MSG_MAX];
        int64_t now = conn_now_ms();

        /* a recent throttle holds every call back */
        pthread_mutex_lock(&st->mu);
        int64_t until = st->throttled_until_ms;
        pthread_mutex_unlock(&st->mu);
        if (until > now) {
            if (until >= deadline_ms) {
                res->outcome = CALL_FAILED;
                res->rc = DG_ETHROTTLED;
                res->retryable = 1;
                snprintf(res->msg, sizeof res->msg,
                         "AWS ACE %s: backing off after ThrottlingException", op);
                return;
            }
            nap(st, until - now);
            now = conn_now_ms();
        }
        if (deadline_ms - now <= 0) {
            res->outcome = CALL_FAILED;
            res->rc = DG_ETIMEOUT;
            res->retryable = 1;
            snprintf(res->msg, sizeof res->msg, "AWS ACE %s: out of time", op);
            return;
        }

        conn_http_req rq = {.method = "POST",
                            .url = st->url,
                            .headers = headers,
                            .body = body,
                            .body_len = strlen(body),
                            .timeout_ms = (int)(deadline_ms - now),
                            .sigv4 = &st->sig,
                            .cancel = &st->stop};
        dg_err rc = conn_http_do(st->http, &rq, &rs, err, sizeof err);
        if (rc != DG_OK) {
            conn_http_resp_free(&rs);
            res->outcome = CALL_FAILED;
            res->rc = rc;
            res->retryable = rc != DG_ETOOBIG && rc != DG_EINVAL;
            dg_errf(res->msg, sizeof res->msg, rc, "AWS ACE %s: %s", op, err);
            note_err(st, res->msg);
            return;
        }

        cJSON *json = cJSON_ParseWithLength(rs.body, rs.len);
        char type[128];
        error_type(rs.amzn_error_type, cJSON_IsObject(json) ? json : NULL, type, sizeof type);
        int ok_status = rs.status >= 200 && rs.status < 300;

        if (ok_status && type[0] == '\0') {
            conn_http_resp_free(&rs);
            if (!cJSON_IsObject(json)) {
                cJSON_Delete(json);
                res->outcome = CALL_FAILED;
                res->rc = DG_EPARSE;
                res->retryable = 1;
                snprintf(res->msg, sizeof res->msg, "AWS ACE %s: malformed JSON in the response",
                         op);
                note_err(st, res->msg);
                return;
            }
            res->outcome = CALL_OK;
            res->json = json;
            note_ok(st);
            return;
        }

        err_class cls = answer_class(type, rs.status);
        char detail[160];
        conn_http_excerpt(error_message(cJSON_IsObject(json) ? json : NULL), detail, sizeof detail);
        int retry_after = rs.retry_after_s;
        long status = rs.status;
        cJSON_Delete(json);
        conn_http_resp_free(&rs);

        if (cls == ERR_NOT_FOUND) {
            res->outcome = CALL_NOT_FOUND;
            note_ok(st); /* the service answered */
            return;
        }
        res->outcome = CALL_FAILED;
        res->retryable = cls == ERR_THROTTLED || cls == ERR_SERVER;
        res->rc = class_rc(cls, type);
        dg_errf(res->msg, sizeof res->msg, res->rc, "AWS ACE %s: %s%s%s (HTTP %ld)", op,
                type[0] ? type : "error", detail[0] ? ": " : "", detail, status);
        note_err(st, res->msg);

        int64_t wait = 0;
        if (cls == ERR_THROTTLED) {
            pthread_mutex_lock(&st->mu);
            st->throttle_backoff_ms = st->throttle_backoff_ms ? st->throttle_backoff_ms * 2 : 100;
            if (st->throttle_backoff_ms > 5000) st->throttle_backoff_ms = 5000;
            wait = st->throttle_backoff_ms;
            if (retry_after > 0 && retry_after * 1000 > wait)
                wait = retry_after > 60 ? 60000 : (int64_t)retry_after * 1000;
            st->throttled_until_ms = conn_now_ms() + wait;
            pthread_mutex_unlock(&st->mu);
        } else if (cls == ERR_SERVER) {
            wait = 50L * attempt;
        } else {
            return;
        }
        if (attempt >= max_attempts || conn_now_ms() + wait >= deadline_ms ||
            atomic_load(&st->stop))
            return;
        if (cls == ERR_SERVER) nap(st, wait); /* throttles wait at the top of the loop */
    }
}

/* ---- GetOpportunity -------------------------------------------------------------------- */

static char *catalog_body(const ace_state *st, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "Catalog", st->catalog) &&
        cJSON_AddStringToObject(o, "Identifier", id))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Fills out from a GetOpportunity response. Returns DG_OK or a FAILED fact's error. */
static dg_err fill_fact(const cJSON *r, const char *id, dg_reg_fact *out)
{
    char *rid = NULL, *status = NULL, *crm = NULL, *created = NULL, *origin = NULL;
    dg_err rc = DG_EPARSE;
    const cJSON *lc = cJSON_GetObjectItemCaseSensitive(r, "LifeCycle");
    if (conn_json_str(r, "Id", ACE_STR_MAX, &rid) != 0 ||
        (lc && !cJSON_IsNull(lc) && !cJSON_IsObject(lc)) ||
        (cJSON_IsObject(lc) && conn_json_str(lc, "ReviewStatus", 64, &status) != 0) ||
        conn_json_str(r, "PartnerOpportunityIdentifier", ACE_STR_MAX, &crm) != 0 ||
        conn_json_str(r, "CreatedDate", 64, &created) != 0 ||
        conn_json_str(r, "Origin", 64, &origin) != 0) {
        rc = conn_fact_fail(out, DG_EPARSE, 1, "AWS ACE GetOpportunity: unexpected response shape");
        goto out;
    }
    if (rid && strcmp(rid, id) != 0) {
        rc = conn_fact_fail(out, DG_EUPSTREAM, 0,
                            "AWS ACE GetOpportunity: answer is for another opportunity");
        goto out;
    }
    conn_fact_clear(out);
    rc = DG_ENOMEM;
    out->lookup = DG_LOOKUP_FOUND;
    out->status = status;
    out->crm_id = crm;
    out->created_at = created;
    status = crm = created = NULL;
    if (origin) {
        const char *o = strcmp(origin, "AWS Referral") == 0       ? "cloud"
                        : strcmp(origin, "Partner Referral") == 0 ? "partner"
                                                                  : NULL;
        if (o && (out->origin = strdup(o)) == NULL) goto out;
    }
    rc = DG_OK;
out:
    free(rid);
    free(status);
    free(crm);
    free(created);
    free(origin);
    return rc;
}

static dg_err get_opportunity(ace_state *st, const char *id, int64_t deadline_ms, dg_reg_fact *out)
{
    char *body = catalog_body(st, id);
    if (body == NULL) return conn_fact_fail(out, DG_ENOMEM, 1, "AWS ACE: out of memory");
    call_result res;
    ace_call(st, "GetOpportunity", body, deadline_ms, ACE_ATTEMPTS, &res);
    free(body);
    if (res.outcome == CALL_NOT_FOUND) return conn_fact_not_found(out, NULL);
    if (res.outcome == CALL_FAILED) return conn_fact_fail(out, res.rc, res.retryable, res.msg);
    dg_err rc = fill_fact(res.json, id, out);
    cJSON_Delete(res.json);
    return rc;
}

/* ---- the index ------------------------------------------------------------------------- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static const char *ekey(const ace_entry *e, int crm)
{
    return crm ? e->crm_id : e->id;
}

static size_t ht_find(const ace_ht *t, const ace_entry *ents, int crm, const char *key)
{
    if (t->cap == 0) return NONE;
    for (size_t i = str_hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        size_t e = t->slot[i];
        if (e == NONE) return NONE;
        const char *k = ekey(&ents[e], crm);
        if (k && strcmp(k, key) == 0) return e;
    }
}

static void ht_put(ace_ht *t, const ace_entry *ents, int crm, size_t idx)
{
    size_t i = str_hash(ekey(&ents[idx], crm)) & (t->cap - 1);
    while (t->slot[i] != NONE)
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = idx;
}

/* Rebuilds table t for n entries. Returns 0 or -1 (out of memory: t unchanged). */
static int ht_rebuild(ace_ht *t, ace_entry *ents, size_t n, int crm)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    size_t *slot = malloc(cap * sizeof *slot);
    if (slot == NULL) return -1;
    for (size_t i = 0; i < cap; i++)
        slot[i] = NONE;
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    for (size_t i = 0; i < n; i++) {
        if (!crm) {
            ht_put(t, ents, 0, i);
            continue;
        }
        ents[i].next = NONE;
        if (ents[i].crm_id == NULL) continue;
        size_t head = ht_find(t, ents, 1, ents[i].crm_id);
        if (head == NONE) {
            ht_put(t, ents, 1, i);
        } else {
            ents[i].next = ents[head].next;
            ents[head].next = i;
        }
    }
    return 0;
}

/* Preference among several opportunities carrying the same CRM id. */
static int status_rank(const char *s)
{
    static const char *const order[] = {"Rejected",  "Pending Submission", "Action Required",
                                        "Submitted", "In review",          "Approved"};
    for (int i = 0; s && i < 6; i++)
        if (strcmp(s, order[i]) == 0) return i + 1;
    return 0;
}

/* The best opportunity id for crm (under st->mu): highest review status, then the most
 * recently modified, then the highest id. Returns NULL or a borrowed pointer. */
static const char *index_find(const ace_state *st, const char *crm)
{
    size_t e = ht_find(&st->by_crm, st->ents, 1, crm);
    const ace_entry *best = NULL;
    for (; e != NONE; e = st->ents[e].next) {
        const ace_entry *c = &st->ents[e];
        if (c->crm_id == NULL || strcmp(c->crm_id, crm) != 0) continue;
        if (best == NULL) {
            best = c;
            continue;
        }
        int d = status_rank(c->status) - status_rank(best->status);
        if (d == 0) d = strcmp(c->lastmod ? c->lastmod : "", best->lastmod ? best->lastmod : "");
        if (d == 0)
            d = strlen(c->id) != strlen(best->id) ? (int)strlen(c->id) - (int)strlen(best->id)
                                                  : strcmp(c->id, best->id);
        if (d > 0) best = c;
    }
    return best ? best->id : NULL;
}

/* Merges one ListOpportunities page (under st->mu). Returns 0 or -1 out of memory; *maxmod
 * gets the newest LastModifiedDate of the page. */
static int index_merge(ace_state *st, const cJSON *items, int64_t *maxmod)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        char *id = NULL, *crm = NULL, *status = NULL, *lastmod = NULL;
        const cJSON *lc = cJSON_GetObjectItemCaseSensitive(it, "LifeCycle");
        if (!cJSON_IsObject(it) || conn_json_str(it, "Id", 64, &id) != 0 || !ace_valid_id(id) ||
            conn_json_str(it, "PartnerOpportunityIdentifier", ACE_STR_MAX, &crm) != 0 ||
            conn_json_str(it, "LastModifiedDate", 64, &lastmod) != 0 ||
            (cJSON_IsObject(lc) && conn_json_str(lc, "ReviewStatus", 64, &status) != 0)) {
            free(id);
            free(crm);
            free(status);
            free(lastmod);
            continue; /* a summary we cannot read is skipped, not fatal */
        }
        int64_t t;
        if (lastmod && parse_time(lastmod, &t) == 0 && t > *maxmod) *maxmod = t;
        size_t e = ht_find(&st->by_id, st->ents, 0, id);
        if (e != NONE) {
            ace_entry *x = &st->ents[e];
            free(id);
            conn_set_str(&x->crm_id, crm);
            conn_set_str(&x->status, status);
            conn_set_str(&x->lastmod, lastmod);
            continue;
        }
        if (st->nents == st->cap) {
            size_t cap = st->cap ? st->cap * 2 : 256;
            ace_entry *g = realloc(st->ents, cap * sizeof *g);
            if (g == NULL) goto oom;
            st->ents = g;
            st->cap = cap;
        }
        st->ents[st->nents] = (ace_entry){
            .id = id, .crm_id = crm, .status = status, .lastmod = lastmod, .next = NONE};
        st->nents++;
        if (2 * st->nents + 2 > st->by_id.cap) {
            if (ht_rebuild(&st->by_id, st->ents, st->nents, 0) != 0) {
                st->nents--;
                id = crm = status = lastmod = NULL; /* owned by the dropped entry below */
                free(st->ents[st->nents].id);
                free(st->ents[st->nents].crm_id);
                free(st->ents[st->nents].status);
                free(st->ents[st->nents].lastmod);
                return -1;
            }
        } else {
            ht_put(&st->by_id, st->ents, 0, st->nents - 1);
        }
        continue;
    oom:
        free(id);
        free(crm);
        free(status);
        free(lastmod);
        return -1;
    }
    return ht_rebuild(&st->by_crm, st->ents, st->nents, 1);
}

/* The parts of a ListOpportunities answer: the summaries and the next page's token
 * (malloc'd, NULL on the last page). Returns 0, or -1 when the answer has another shape. */
static int list_shape(const cJSON *json, const cJSON **items, char **next)
{
    *items = cJSON_GetObjectItemCaseSensitive(json, "OpportunitySummaries");
    *next = NULL;
    if (!cJSON_IsArray(*items) || conn_json_str(json, "NextToken", 8192, next) != 0) return -1;
    return 0;
}

/* Frees the index (entries and both tables) and leaves it empty. */
static void index_free(ace_state *st)
{
    for (size_t i = 0; i < st->nents; i++) {
        free(st->ents[i].id);
        free(st->ents[i].crm_id);
        free(st->ents[i].status);
        free(st->ents[i].lastmod);
    }
    free(st->ents);
    free(st->by_id.slot);
    free(st->by_crm.slot);
    st->ents = NULL;
    st->nents = st->cap = 0;
    st->by_id = st->by_crm = (ace_ht){0};
}

static char *list_body(const ace_state *st, int64_t after_s, const char *next_token)
{
    char ts[32];
    char *s = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    if (!cJSON_AddStringToObject(o, "Catalog", st->catalog) ||
        !cJSON_AddNumberToObject(o, "MaxResults", ACE_PAGE_SIZE))
        goto out;
    cJSON *sort = cJSON_AddObjectToObject(o, "Sort");
    if (!sort || !cJSON_AddStringToObject(sort, "SortOrder", "Ascending") ||
        !cJSON_AddStringToObject(sort, "SortBy", "LastModifiedDate"))
        goto out;
    if (after_s > 0) {
        format_time(after_s, ts, sizeof ts);
        cJSON *lm = cJSON_AddObjectToObject(o, "LastModifiedDate");
        if (!lm || !cJSON_AddStringToObject(lm, "AfterLastModifiedDate", ts)) goto out;
    }
    if (next_token && !cJSON_AddStringToObject(o, "NextToken", next_token)) goto out;
    s = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(o);
    return s;
}

/* One index pass: full when the index is not ready, else incremental. Returns DG_OK or an
 * error with a message in err. */
static dg_err index_pass(ace_state *st, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->mu);
    int64_t after = st->ready && st->maxmod_s > 0 ? st->maxmod_s - 1 : 0;
    pthread_mutex_unlock(&st->mu);

    int64_t maxmod = 0;
    char *token = NULL;
    dg_err rc = DG_OK;
    for (int page = 0; page < ACE_MAX_PAGES; page++) {
        if (atomic_load(&st->stop)) {
            rc = dg_errf(err, errlen, DG_EUNAVAILABLE, "AWS ACE: closing");
            break;
        }
        char *body = list_body(st, after, token);
        if (body == NULL) {
            rc = dg_errf(err, errlen, DG_ENOMEM, "AWS ACE: out of memory");
            break;
        }
        int t = st->timeout_ms > ACE_PAGE_TIMEOUT_MS ? st->timeout_ms : ACE_PAGE_TIMEOUT_MS;
        call_result res;
        ace_call(st, "ListOpportunities", body, conn_now_ms() + t, 5, &res);
        free(body);
        if (res.outcome != CALL_OK) {
            rc = dg_errf(err, errlen, res.outcome == CALL_NOT_FOUND ? DG_EUPSTREAM : res.rc, "%s",
                         res.outcome == CALL_NOT_FOUND
                             ? "AWS ACE ListOpportunities: ResourceNotFoundException"
                             : res.msg);
            break;
        }
        const cJSON *items = NULL;
        char *next = NULL;
        if (list_shape(res.json, &items, &next) != 0) {
            cJSON_Delete(res.json);
            rc = dg_errf(err, errlen, DG_EPARSE,
                         "AWS ACE ListOpportunities: unexpected response shape");
            break;
        }
        pthread_mutex_lock(&st->mu);
        int m = index_merge(st, items, &maxmod);
        pthread_mutex_unlock(&st->mu);
        cJSON_Delete(res.json);
        free(token);
        token = next;
        if (m != 0) {
            rc = dg_errf(err, errlen, DG_ENOMEM, "AWS ACE: out of memory building the index");
            break;
        }
        if (token == NULL) break;
        if (token && page + 1 == ACE_MAX_PAGES)
            rc = dg_errf(err, errlen, DG_ETOOBIG, "AWS ACE ListOpportunities: too many pages");
    }
    free(token);
    if (rc == DG_OK) {
        pthread_mutex_lock(&st->mu);
        if (maxmod > st->maxmod_s) st->maxmod_s = maxmod;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

static void *refresher(void *arg)
{
    ace_state *st = arg;
    pthread_setname_np(pthread_self(), "dg-ace-index"); /* top -H, bench/gate.sh */
    int64_t fail_backoff = 0;
    pthread_mutex_lock(&st->mu);
    while (!atomic_load(&st->stop)) {
        st->refreshing = 1;
        st->want_refresh = 0;
        pthread_mutex_unlock(&st->mu);

        char err[ACE_MSG_MAX];
        dg_err rc = index_pass(st, err, sizeof err);

        pthread_mutex_lock(&st->mu);
        int64_t now = conn_now_ms(), next_due;
        st->refreshing = 0;
        st->passes++;
        if (rc == DG_OK) {
            st->ready = 1;
            st->index_at_ms = now;
            st->index_err[0] = '\0';
            fail_backoff = 0;
            next_due = now + ACE_REFRESH_MS;
        } else {
            snprintf(st->index_err, sizeof st->index_err, "%s", err);
            fail_backoff = fail_backoff ? fail_backoff * 2 : 1000;
            if (fail_backoff > ACE_REFRESH_MS) fail_backoff = ACE_REFRESH_MS;
            next_due = now + fail_backoff;
        }
        pthread_cond_broadcast(&st->cv);
        while (!atomic_load(&st->stop) && !st->want_refresh && conn_now_ms() < next_due)
            conn_cond_wait_until(&st->cv, &st->mu, next_due);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- ops ------------------------------------------------------------------------------- */

static void ace_close(void *state)
{
    ace_state *st = state;
    if (st == NULL) return;
    if (st->thr_started) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->stop, 1);
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thr, NULL);
    }
    index_free(st);
    conn_http_client_free(st->http);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st->url);
    free(st->region);
    free(st->catalog);
    conn_wipe_free(st->akid);
    conn_wipe_free(st->secret);
    conn_wipe_free(st->token);
    free(st);
}

static dg_err ace_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                       size_t errlen)
{
    (void)state_dir;
    dg_err rc = DG_ENOMEM;
    *state = NULL;
    ace_state *st = calloc(1, sizeof *st);
    if (st == NULL) return dg_errf(err, errlen, DG_ENOMEM, "ace: out of memory");
    if (conn_cond_init_monotonic(&st->cv) != 0) {
        free(st);
        return dg_errf(err, errlen, DG_EINTERNAL, "ace: cannot create a condition variable");
    }
    pthread_mutex_init(&st->mu, NULL);
    st->last_early_ms = INT64_MIN;
    atomic_init(&st->stop, 0);

    rc = conn_http_check_base(cc->endpoint, "endpoint", err, errlen);
    if (rc != DG_OK) goto out;
    rc = DG_ENOMEM;
    size_t n = strlen(cc->endpoint);
    st->url = malloc(n + 2);
    if (st->url == NULL) goto oom;
    memcpy(st->url, cc->endpoint, n + 1);
    while (n > 0 && st->url[n - 1] == '/')
        st->url[--n] = '\0';
    memcpy(st->url + n, "/", 2);
    if ((st->region = dup_or(cc->region, "us-east-1")) == NULL ||
        (st->catalog = dup_or(cc->catalog, "AWS")) == NULL)
        goto oom;
    if (cc->access_key_id == NULL || cc->secret_access_key == NULL) {
        rc = dg_errf(err, errlen, DG_EINVAL, "ace: access_key_id and secret_access_key required");
        goto out;
    }
    if ((st->akid = strdup(cc->access_key_id)) == NULL ||
        (st->secret = strdup(cc->secret_access_key)) == NULL ||
        (cc->session_token && *cc->session_token &&
         (st->token = strdup(cc->session_token)) == NULL))
        goto oom;
    st->sig = (conn_sigv4){.access_key_id = st->akid,
                           .secret_access_key = st->secret,
                           .session_token = st->token,
                           .region = st->region,
                           .service = ACE_SERVICE};
    rc = conn_sigv4_check(&st->sig, err, errlen);
    if (rc != DG_OK) goto out;
    st->timeout_ms = cc->timeout_ms > 0 ? cc->timeout_ms : 2000;
    rc = conn_http_client_new(&st->http, err, errlen);
    if (rc != DG_OK) goto out;
    if (pthread_create(&st->thr, NULL, refresher, st) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "ace: cannot start the index thread");
        goto out;
    }
    st->thr_started = 1;
    *state = st;
    st = NULL;
    rc = DG_OK;
    goto out;
oom:
    rc = dg_errf(err, errlen, DG_ENOMEM, "ace: out of memory");
out:
    ace_close(st);
    return rc;
}

static dg_err ace_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    ace_state *st = state;
    if (!ace_valid_id(id))
        return conn_fact_not_found(out,
                                   "invalid AWS ACE opportunity id (expected O and 1-19 digits)");
    if (timeout_ms <= 0) timeout_ms = st->timeout_ms;
    return get_opportunity(st, id, conn_now_ms() + timeout_ms, out);
}

static dg_err ace_by_crm_id(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out)
{
    ace_state *st = state;
    char id[32] = "";
    char msg[ACE_MSG_MAX] = "";
    if (crm_id == NULL || *crm_id == '\0') return conn_fact_not_found(out, NULL);
    if (timeout_ms <= 0) timeout_ms = st->timeout_ms;
    int64_t deadline = conn_now_ms() + timeout_ms;

    pthread_mutex_lock(&st->mu);
    while (!st->ready && conn_now_ms() < deadline)
        conn_cond_wait_until(&st->cv, &st->mu, deadline);
    if (!st->ready) {
        dg_errf(msg, sizeof msg, DG_EUNAVAILABLE, "AWS ACE: CRM-id index not built yet%s%s",
                st->index_err[0] ? ": " : "", st->index_err);
        pthread_mutex_unlock(&st->mu);
        return conn_fact_fail(out, DG_EUNAVAILABLE, 1, msg);
    }
    const char *hit = index_find(st, crm_id);
    if (hit == NULL) {
        int64_t now = conn_now_ms();
        uint64_t target = 0;
        if (st->last_early_ms == INT64_MIN || now - st->last_early_ms >= ACE_EARLY_GAP_MS) {
            st->last_early_ms = now;
            st->want_refresh = 1;
            pthread_cond_broadcast(&st->cv);
            /* a pass already running may have read past the new record: wait for the next */
            target = st->passes + (st->refreshing ? 2 : 1);
        } else if (st->refreshing) {
            target = st->passes + 1;
        }
        while (target && st->passes < target && conn_now_ms() < deadline && !atomic_load(&st->stop))
            conn_cond_wait_until(&st->cv, &st->mu, deadline);
        hit = index_find(st, crm_id);
    }
    if (hit) snprintf(id, sizeof id, "%s", hit);
    int stale = conn_now_ms() - st->index_at_ms > ACE_STALE_MS;
    if (hit == NULL && stale)
        dg_errf(msg, sizeof msg, DG_EUNAVAILABLE, "AWS ACE: CRM-id index is stale%s%s",
                st->index_err[0] ? ": " : "", st->index_err);
    pthread_mutex_unlock(&st->mu);

    if (hit == NULL) {
        if (stale) return conn_fact_fail(out, DG_EUNAVAILABLE, 1, msg);
        return conn_fact_not_found(out, NULL);
    }
    dg_err rc = get_opportunity(st, id, deadline, out);
    if (rc != DG_OK) return rc;
    /* the record was relinked since the last pass: it no longer names this deal */
    if (out->lookup == DG_LOOKUP_FOUND && (out->crm_id == NULL || strcmp(out->crm_id, crm_id)))
        return conn_fact_not_found(out, NULL);
    if (out->lookup == DG_LOOKUP_FOUND) {
        char *dup = strdup(id);
        if (dup == NULL) return conn_fact_fail(out, DG_ENOMEM, 1, "AWS ACE: out of memory");
        conn_set_str(&out->id, dup);
    }
    return DG_OK;
}

static void ace_health(void *state, char *buf, size_t n)
{
    ace_state *st = state;
    int64_t now = conn_now_ms();
    char a[ACE_MSG_MAX + 64] = "", b[160];
    pthread_mutex_lock(&st->mu);
    conn_health_calls(a, sizeof a, now, st->last_ok_ms, st->last_err_ms, st->last_err);
    if (st->ready)
        snprintf(b, sizeof b, "index %zu records, %lld s old%s", st->nents,
                 (long long)((now - st->index_at_ms) / 1000),
                 st->index_err[0] ? " (last refresh failed)" : "");
    else
        snprintf(b, sizeof b, "index not built yet%s",
                 st->index_err[0] ? " (refresh failing)" : "");
    pthread_mutex_unlock(&st->mu);
    snprintf(buf, n, "%s; %s", a, b);
}

const conn_backend conn_ace_backend = {
    .name = "ace",
    .valid_id = ace_valid_id,
    .open = ace_open,
    .close = ace_close,
    .by_id = ace_by_id,
    .by_crm_id = ace_by_crm_id,
    .health = ace_health,
};

/* ---- pure parsing entry points (connectors/parse.h) ------------------------------------ */

dg_err conn_ace_parse_opportunity(const char *body, size_t len, const char *id, dg_reg_fact *out,
                                  char *err, size_t errlen)
{
    cJSON *json = cJSON_ParseWithLength(body, len);
    dg_err rc;
    if (!cJSON_IsObject(json))
        rc = conn_fact_fail(out, DG_EPARSE, 1,
                            "AWS ACE GetOpportunity: malformed JSON in the response");
    else
        rc = fill_fact(json, id ? id : "", out);
    cJSON_Delete(json);
    if (rc != DG_OK) dg_errf(err, errlen, rc, "%s", out->error ? out->error : "out of memory");
    return rc;
}

dg_err conn_ace_parse_error(long status, const char *hdr_type, const char *body, size_t len,
                            char *type, size_t n, int *retryable)
{
    cJSON *json = cJSON_ParseWithLength(body, len);
    char t[128];
    error_type(hdr_type, cJSON_IsObject(json) ? json : NULL, t, sizeof t);
    cJSON_Delete(json);
    if (n) snprintf(type, n, "%s", t);
    err_class cls = answer_class(t, status);
    *retryable = cls == ERR_THROTTLED || cls == ERR_SERVER;
    return cls == ERR_NOT_FOUND ? DG_ENOTFOUND : class_rc(cls, t);
}

dg_err conn_ace_parse_list_page(const char *body, size_t len, size_t *nindexed, char **next_token,
                                char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    ace_state st = {0};
    const cJSON *items = NULL;
    int64_t maxmod = 0;
    *nindexed = 0;
    *next_token = NULL;
    cJSON *json = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(json) || list_shape(json, &items, next_token) != 0) {
        rc =
            dg_errf(err, errlen, DG_EPARSE, "AWS ACE ListOpportunities: unexpected response shape");
        goto out;
    }
    if (index_merge(&st, items, &maxmod) != 0) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "AWS ACE: out of memory building the index");
        goto out;
    }
    for (size_t i = 0; i < st.nents; i++) /* each id finds its entry, each CRM id one */
        if (ht_find(&st.by_id, st.ents, 0, st.ents[i].id) != i ||
            (st.ents[i].crm_id && index_find(&st, st.ents[i].crm_id) == NULL)) {
            rc = dg_errf(err, errlen, DG_EINTERNAL, "AWS ACE: index lost entry %zu", i);
            goto out;
        }
    *nindexed = st.nents;
    rc = DG_OK;
out:
    if (rc != DG_OK) {
        free(*next_token);
        *next_token = NULL;
    }
    index_free(&st);
    cJSON_Delete(json);
    return rc;
}
