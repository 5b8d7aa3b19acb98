/* http.c — bounded, timed libcurl calls for the live connectors (see http.h).
 *
 * Handles: a client keeps up to POOL_MAX idle easy handles; a call pops one (or creates
 * one), resets it, sets every option again and pushes it back afterwards, so connections
 * stay alive between calls without sharing a connection cache across threads (which
 * libcurl 7.88 does not support). DNS and TLS sessions are shared through a CURLSH with one
 * mutex per data kind. The response body goes into a buffer that refuses to grow past the
 * cap; headers are scanned only for x-amzn-ErrorType and Retry-After.
 */
#include "connectors/http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "config/utf8.h"

#define POOL_MAX 8

struct conn_http_client {
    pthread_mutex_t mu; /* guards idle[] */
    CURL *idle[POOL_MAX];
    size_t nidle;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static dg_err global_rc = DG_EINTERNAL; /* written once under pthread_once */

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? DG_OK : DG_EINTERNAL;
}

dg_err conn_http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

int64_t conn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t conn_now_ms(void)
{
    return conn_now_ns() / 1000000;
}

/* ---- client ---------------------------------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    conn_http_client *c = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    conn_http_client *c = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&c->share_mu[data]);
}

dg_err conn_http_client_new(conn_http_client **out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    *out = NULL;
    if (conn_http_global_init() != DG_OK)
        return dg_errf(err, errlen, DG_EINTERNAL, "http: libcurl initialisation failed");
    conn_http_client *c = calloc(1, sizeof *c);
    if (c == NULL) goto out;
    pthread_mutex_init(&c->mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    c->share = curl_share_init();
    if (c->share == NULL) goto out;
    if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        rc = DG_EINTERNAL;
        goto out;
    }
    *out = c;
    c = NULL;
    rc = DG_OK;
out:
    if (c) conn_http_client_free(c);
    if (rc != DG_OK) dg_errf(err, errlen, rc, "http: cannot create a client");
    return rc;
}

void conn_http_client_free(conn_http_client *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    if (c->share) curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static CURL *handle_get(conn_http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0) h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    if (h) {
        curl_easy_reset(h); /* options only: live connections and caches stay */
        return h;
    }
    return curl_easy_init();
}

static void handle_put(conn_http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h) curl_easy_cleanup(h);
}

/* ---- URLs ------------------------------------------------------------------------------ */

int conn_http_is_loopback(const char *host)
{
    if (host == NULL) return 0;
    char h[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof h) return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0) return 1;
    if (strcmp(h, "::1") == 0) return 1;
    /* 127.0.0.0/8 as a dotted quad of plain decimal numbers */
    int parts = 0;
    const char *p = h;
    while (*p) {
        long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255) return 0;
        if (parts == 0 && v != 127) return 0;
        parts++;
        if (*p == '.') {
            p++;
            if (*p == '\0') return 0;
        } else if (*p != '\0') {
            return 0;
        }
    }
    return parts == 4;
}

typedef struct {
    char scheme[8];
    char host[256];
    long port;
    int has_user, has_query, has_fragment;
} url_parts;

static dg_err url_split(const char *url, url_parts *p)
{
    dg_err rc = DG_EINVAL;
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *query = NULL, *frag = NULL;
    memset(p, 0, sizeof *p);
    CURLU *u = curl_url();
    if (u == NULL) return DG_ENOMEM;
    if (url == NULL || strlen(url) > 8192) goto out;
    for (const char *s = url; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) goto out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) goto out;
    p->has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
    p->has_query = curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK;
    p->has_fragment = curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK;
    if (strlen(scheme) >= sizeof p->scheme || strlen(host) >= sizeof p->host || *host == '\0')
        goto out;
    for (size_t i = 0; scheme[i]; i++)
        p->scheme[i] = (char)tolower((unsigned char)scheme[i]);
    for (size_t i = 0; host[i]; i++)
        p->host[i] = (char)tolower((unsigned char)host[i]);
    if (strcmp(p->scheme, "http") != 0 && strcmp(p->scheme, "https") != 0) goto out;
    char *end = NULL;
    long v = strtol(port, &end, 10);
    if (end == port || *end != '\0' || v <= 0 || v > 65535) goto out;
    p->port = v;
    rc = DG_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

dg_err conn_http_origin(const char *url, char *buf, size_t n)
{
    url_parts p;
    dg_err rc = url_split(url, &p);
    if (rc != DG_OK) return rc;
    int w = snprintf(buf, n, "%s://%s:%ld", p.scheme, p.host, p.port);
    return (w < 0 || (size_t)w >= n) ? DG_ETOOBIG : DG_OK;
}

int conn_http_same_origin(const char *url, const char *origin)
{
    char o[CONN_HTTP_ORIGIN_MAX];
    if (conn_http_origin(url, o, sizeof o) != DG_OK) return 0;
    return strcmp(o, origin) == 0;
}

dg_err conn_http_check_base(const char *url, const char *what, char *err, size_t errlen)
{
    url_parts p;
    if (url == NULL || *url == '\0') return dg_errf(err, errlen, DG_EINVAL, "%s: missing", what);
    if (url_split(url, &p) != DG_OK)
        return dg_errf(err, errlen, DG_EINVAL, "%s: not an absolute http(s) URL", what);
    if (p.has_user || p.has_query || p.has_fragment)
        return dg_errf(err, errlen, DG_EINVAL, "%s: no user info, query or fragment allowed", what);
    if (strcmp(p.scheme, "http") == 0 && !conn_http_is_loopback(p.host))
        return dg_errf(err, errlen, DG_EINVAL, "%s: plain http:// only to a loopback address",
                       what);
    return DG_OK;
}

char *conn_http_base_dup(const char *url)
{
    char *b = strdup(url);
    if (b == NULL) return NULL;
    for (size_t n = strlen(b); n > 0 && b[n - 1] == '/'; n--)
        b[n - 1] = '\0';
    return b;
}

char *conn_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') ? 1 : 3;
    char *out = malloc(n + 1);
    if (out == NULL) return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *conn_http_url_id(const char *base, const char *path, const char *id)
{
    char *eid = conn_http_escape(id);
    if (eid == NULL) return NULL;
    size_t n = strlen(base) + strlen(path) + strlen(eid) + 1;
    char *url = malloc(n);
    if (url) snprintf(url, n, "%s%s%s", base, path, eid);
    free(eid);
    return url;
}

void conn_http_excerpt(const char *s, char *out, size_t n)
{
    if (n == 0) return;
    size_t o = 0;
    int space = 0;
    if (s == NULL) s = "";
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == 0x7f) {
            space = 1;
            continue;
        }
        size_t need = (space ? 2 : 1);
        if (o + need + 1 > n) {
            /* cut: end with "..." if it fits */
            if (n >= 4) {
                o = o > n - 4 ? n - 4 : o;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            out[o] = '\0';
            return;
        }
        if (space && o > 0) out[o++] = ' ';
        space = 0;
        out[o++] = ch >= 0x80 ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* ---- one call -------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap, max;
    int overflow;
    conn_http_resp *rs;
    const atomic_int *cancel;
} call_ctx;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    call_ctx *cx = ud;
    size_t n = size * nmemb;
    if (n > cx->max - cx->len) {
        cx->overflow = 1;
        return 0;
    }
    if (cx->len + n + 1 > cx->cap) {
        size_t cap = cx->cap ? cx->cap : 4096;
        while (cap < cx->len + n + 1)
            cap *= 2;
        if (cap > cx->max + 1) cap = cx->max + 1;
        char *b = realloc(cx->buf, cap);
        if (b == NULL) return 0;
        cx->buf = b;
        cx->cap = cap;
    }
    memcpy(cx->buf + cx->len, data, n);
    cx->len += n;
    cx->buf[cx->len] = '\0';
    return n;
}

/* If line (not NUL-terminated, length n) is header `name`, returns its trimmed value in
 * val (cut to vn-1 bytes) and 1. */
static int header_value(const char *line, size_t n, const char *name, char *val, size_t vn)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return 0;
    const char *v = line + k + 1;
    const char *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t len = (size_t)(e - v);
    if (len >= vn) len = vn - 1;
    memcpy(val, v, len);
    val[len] = '\0';
    return 1;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    call_ctx *cx = ud;
    size_t n = size * nmemb;
    char val[128];
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response: forget the last one's */
        cx->rs->amzn_error_type[0] = '\0';
        cx->rs->retry_after_s = -1;
    } else if (header_value(data, n, "x-amzn-ErrorType", val, sizeof val)) {
        char *colon = strchr(val, ':');
        if (colon) *colon = '\0';
        conn_http_excerpt(val, cx->rs->amzn_error_type, sizeof cx->rs->amzn_error_type);
    } else if (header_value(data, n, "Retry-After", val, sizeof val)) {
        char *end = NULL;
        long v = strtol(val, &end, 10);
        if (end != val && *end == '\0' && v >= 0 && v <= 86400) cx->rs->retry_after_s = (int)v;
    }
    return n;
}

static int xfer_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    call_ctx *cx = ud;
    return (cx->cancel && atomic_load(cx->cancel)) ? 1 : 0;
}

void conn_http_resp_free(conn_http_resp *rs)
{
    if (rs == NULL) return;
    free(rs->body);
    memset(rs, 0, sizeof *rs);
    rs->retry_after_s = -1;
}

dg_err conn_http_do(conn_http_client *c, const conn_http_req *rq, conn_http_resp *rs, char *err,
                    size_t errlen)
{
    dg_err rc = DG_EINVAL;
    struct curl_slist *hdrs = NULL;
    CURL *h = NULL;
    char origin[CONN_HTTP_ORIGIN_MAX] = "upstream";
    char ebuf[CURL_ERROR_SIZE] = "";
    call_ctx cx = {0};
    url_parts up;

    memset(rs, 0, sizeof *rs);
    rs->retry_after_s = -1;
    cx.rs = rs;
    cx.cancel = rq->cancel;
    cx.max = rq->max_response ? rq->max_response : CONN_HTTP_MAX_BODY;

    if (rq->timeout_ms <= 0 || rq->method == NULL) {
        dg_errf(err, errlen, DG_EINVAL, "http: bad request parameters");
        goto out;
    }
    if (url_split(rq->url, &up) != DG_OK) {
        dg_errf(err, errlen, DG_EINVAL, "http: not an absolute http(s) URL");
        goto out;
    }
    snprintf(origin, sizeof origin, "%s://%s:%ld", up.scheme, up.host, up.port);
    if (strcmp(up.scheme, "http") == 0 && !conn_http_is_loopback(up.host)) {
        dg_errf(err, errlen, DG_EINVAL, "%s: plain http:// only to a loopback address", origin);
        goto out;
    }
    int post = strcmp(rq->method, "POST") == 0, patch = strcmp(rq->method, "PATCH") == 0;
    if (!post && !patch && strcmp(rq->method, "GET") != 0) {
        dg_errf(err, errlen, DG_EINVAL, "http: method %s not supported", rq->method);
        goto out;
    }

    rc = DG_ENOMEM;
    h = handle_get(c);
    if (h == NULL) {
        dg_errf(err, errlen, rc, "http: cannot create a handle");
        goto out;
    }
    for (const char *const *p = rq->headers; p && *p; p++) {
        struct curl_slist *l = curl_slist_append(hdrs, *p);
        if (l == NULL) goto oom;
        hdrs = l;
    }
    /* No "Expect:" line to suppress 100-continue: curl 7.88 would sign the empty header it
     * never sends, and it adds Expect only to bodies over 1 MiB, which no call here has. */
    if (rq->sigv4) {
        rc = conn_sigv4_apply(h, &hdrs, rq->sigv4, err, errlen);
        if (rc != DG_OK) goto out;
    }

    CURLcode cc = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, opt, val);                                    \
    } while (0)
    SETOPT(CURLOPT_URL, rq->url);
    SETOPT(CURLOPT_SHARE, c->share);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)rq->timeout_ms);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cx.max);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    SETOPT(CURLOPT_USERAGENT, "dealgate/" DG_VERSION);
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    SETOPT(CURLOPT_ERRORBUFFER, ebuf);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, &cx);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, &cx);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    if (rq->cancel) {
        SETOPT(CURLOPT_XFERINFOFUNCTION, xfer_cb);
        SETOPT(CURLOPT_XFERINFODATA, &cx);
        SETOPT(CURLOPT_NOPROGRESS, 0L);
    }
    if (post || patch) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        SETOPT(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        SETOPT(CURLOPT_CUSTOMREQUEST, patch ? "PATCH" : NULL);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, NULL);
        SETOPT(CURLOPT_HTTPGET, 1L);
    }
#undef SETOPT
    if (cc != CURLE_OK) {
        rc = DG_EINTERNAL;
        dg_errf(err, errlen, rc, "%s: cannot set up the call (%s)", origin, curl_easy_strerror(cc));
        goto out;
    }

    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        const char *detail = ebuf[0] ? ebuf : curl_easy_strerror(cc);
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
            rc = dg_errf(err, errlen, DG_ETIMEOUT, "%s: no answer within %d ms", origin,
                         rq->timeout_ms);
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            rc = dg_errf(err, errlen, DG_EUNAVAILABLE, "%s: cannot connect: %s", origin, detail);
            break;
        case CURLE_ABORTED_BY_CALLBACK:
            rc = dg_errf(err, errlen, DG_EUNAVAILABLE, "%s: call cancelled", origin);
            break;
        case CURLE_FILESIZE_EXCEEDED:
            rc = dg_errf(err, errlen, DG_ETOOBIG, "%s: response larger than %zu bytes", origin,
                         cx.max);
            break;
        case CURLE_WRITE_ERROR:
            if (cx.overflow) {
                rc = dg_errf(err, errlen, DG_ETOOBIG, "%s: response larger than %zu bytes", origin,
                             cx.max);
                break;
            }
            rc = dg_errf(err, errlen, DG_ENOMEM, "%s: out of memory reading the response", origin);
            break;
        default:
            rc = dg_errf(err, errlen, DG_EUPSTREAM, "%s: %s", origin, detail);
            break;
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    if (cx.buf == NULL) {
        cx.buf = calloc(1, 1);
        if (cx.buf == NULL) goto oom;
    }
    rs->body = cx.buf;
    rs->len = cx.len;
    cx.buf = NULL;
    rc = DG_OK;
    goto out;
oom:
    rc = dg_errf(err, errlen, DG_ENOMEM, "http: out of memory");
out:
    free(cx.buf);
    curl_slist_free_all(hdrs);
    if (h) {
        /* the handle keeps a pointer to our stack error buffer: detach before pooling */
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        handle_put(c, h);
    }
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------------ */

int conn_id_chars(const char *id, const char *punct, size_t max)
{
    size_t n = 0;
    if (id == NULL) return 0;
    for (const char *p = id; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(punct, *p) != NULL) ||
            n >= max)
            return 0;
    return n >= 1;
}

int conn_json_str(const cJSON *o, const char *name, size_t max, char **out)
{
    *out = NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (it == NULL || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsString(it) || it->valuestring == NULL) return -1;
    size_t n = strlen(it->valuestring);
    if (n > max) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)it->valuestring[i] < 0x20 || it->valuestring[i] == 0x7f) return -1;
    /* cJSON checks no encoding; what is kept ends up in decision JSON and the log */
    if (!dg_utf8_valid(it->valuestring, n)) return -1;
    if (n == 0) return 0;
    *out = strdup(it->valuestring);
    return *out ? 0 : -1;
}

void conn_set_str(char **slot, char *s)
{
    free(*slot);
    *slot = s;
}

/* ---- for the backends ------------------------------------------------------------------ */

void conn_fact_clear(dg_reg_fact *out)
{
    conn_set_str(&out->status, NULL);
    conn_set_str(&out->crm_id, NULL);
    conn_set_str(&out->created_at, NULL);
    conn_set_str(&out->origin, NULL);
    conn_set_str(&out->error, NULL);
    out->retryable = 0;
}

dg_err conn_fact_fail(dg_reg_fact *out, dg_err rc, int retryable, const char *msg)
{
    conn_fact_clear(out);
    out->lookup = DG_LOOKUP_FAILED;
    out->retryable = retryable;
    out->error = strdup(msg);
    return out->error ? rc : DG_ENOMEM;
}

dg_err conn_fact_not_found(dg_reg_fact *out, const char *note)
{
    conn_fact_clear(out);
    out->lookup = DG_LOOKUP_NOT_FOUND;
    if (note == NULL) return DG_OK;
    out->error = strdup(note);
    return out->error ? DG_OK : DG_ENOMEM;
}

#define MALFORMED_JSON "malformed JSON in the response"

dg_err conn_http_get_json(conn_http_client *c, const char *url, const char *const *headers,
                          int64_t deadline_ms, const char *who, conn_http_json *ans, char *msg,
                          size_t msglen, int *retryable)
{
    ans->status = 0;
    ans->retry_after_s = -1;
    ans->json = NULL;
    *retryable = 1;
    int64_t left = deadline_ms - conn_now_ms();
    if (left <= 0) return dg_errf(msg, msglen, DG_ETIMEOUT, "%s: out of time", who);
    conn_http_req rq = {.method = "GET", .url = url, .headers = headers, .timeout_ms = (int)left};
    conn_http_resp rs;
    char err[256];
    dg_err rc = conn_http_do(c, &rq, &rs, err, sizeof err);
    if (rc != DG_OK) {
        conn_http_resp_free(&rs);
        *retryable = rc != DG_ETOOBIG && rc != DG_EINVAL;
        return dg_errf(msg, msglen, rc, "%s: %s", who, err);
    }
    cJSON *j = cJSON_ParseWithLength(rs.body, rs.len);
    long status = rs.status;
    int retry_after = rs.retry_after_s;
    conn_http_resp_free(&rs);
    if (status == 200 && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return dg_errf(msg, msglen, DG_EPARSE, "%s: " MALFORMED_JSON, who);
    }
    ans->status = status;
    ans->retry_after_s = retry_after;
    ans->json = j;
    return DG_OK;
}

dg_err conn_parse_fact(const char *body, size_t len, const char *id, const char *who,
                       conn_fact_fill_fn fill, dg_reg_fact *out, char *err, size_t errlen)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    dg_err rc;
    if (cJSON_IsObject(j)) {
        rc = fill(j, id ? id : "", out);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: " MALFORMED_JSON, who);
        rc = conn_fact_fail(out, DG_EPARSE, 1, msg);
    }
    cJSON_Delete(j);
    if (rc != DG_OK) dg_errf(err, errlen, rc, "%s", out->error ? out->error : "out of memory");
    return rc;
}

void conn_sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int conn_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    int ok =
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    return ok ? 0 : -1;
}

void conn_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000,
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(cv, mu, &ts);
}

void conn_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void conn_health_calls(char *buf, size_t n, int64_t now, int64_t last_ok_ms, int64_t last_err_ms,
                       const char *last_err)
{
    if (last_err_ms && last_err_ms >= last_ok_ms)
        snprintf(buf, n, "error %lld s ago: %s", (long long)((now - last_err_ms) / 1000), last_err);
    else if (last_ok_ms)
        snprintf(buf, n, "ok, last success %lld s ago", (long long)((now - last_ok_ms) / 1000));
    else
        snprintf(buf, n, "no call yet");
}
