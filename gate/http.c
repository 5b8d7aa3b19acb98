/* http.c — the HTTP edge over civetweb: route table, auth, bounded bodies, JSON replies,
 * and one JSON access-log line per request on stderr (never a header, body or token). */
#include "gate/http.h"

#include <mbedtls/base64.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gate/body_deadline.h"
#include "gate/metrics.h"
#include "gate/routes.h"

typedef struct {
    const char *method;
    const char *path;   /* exact, or a prefix when it ends in '/' */
    gate_auth auth;
    gate_handler fn;
} gate_route;

static const gate_route routes[] = {
    {"GET", "/healthz", GATE_AUTH_NONE, gate_h_healthz},
    {"GET", "/readyz", GATE_AUTH_NONE, gate_h_readyz},
    {"GET", "/openapi.json", GATE_AUTH_NONE, gate_h_openapi},
    {"POST", "/v1/gate/stage", GATE_AUTH_WEBHOOK, gate_h_stage},
    {"POST", "/v1/gate/salesforce", GATE_AUTH_WEBHOOK, gate_h_salesforce},
    {"POST", "/v1/gate/hubspot", GATE_AUTH_HUBSPOT, gate_h_hubspot},
    {"POST", "/v1/commission/check", GATE_AUTH_WEBHOOK, gate_h_comp_check},
    {"GET", "/v1/commission/checks", GATE_AUTH_COMP, gate_h_comp_checks},
    {"GET", "/v1/decisions", GATE_AUTH_READER, gate_h_decisions},
    {"GET", "/v1/kpis", GATE_AUTH_READER, gate_h_kpis},
    {"GET", "/ui", GATE_AUTH_READER, gate_h_ui},           /* browsers: Basic, token as password */
    {"GET", "/ui/deal", GATE_AUTH_READER, gate_h_ui_deal}, /* one deal's decision history */
    {"GET", "/metrics", GATE_AUTH_READER, gate_h_metrics},
    {"POST", "/v1/overrides", GATE_AUTH_DESK, gate_h_overrides_post},
    {"GET", "/v1/overrides", GATE_AUTH_DESK, gate_h_overrides_get},
    {"GET", "/v1/overrides/", GATE_AUTH_DESK, gate_h_override_get},
    {"DELETE", "/v1/overrides/", GATE_AUTH_DESK, gate_h_override_delete},
    {"GET", "/v1/decisions/", GATE_AUTH_READER, gate_h_decision},
    {"POST", "/v1/decisions/", GATE_AUTH_READER, gate_h_decision_writeback}, /* {id}/writeback */
};

static int route_matches(const gate_route *rt, const char *path)
{
    size_t n = strlen(rt->path);
    if (rt->path[n - 1] == '/') return strncmp(path, rt->path, n) == 0 && path[n] != '\0';
    return strcmp(path, rt->path) == 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Replies up to this size go out in one write (headers and body together: one send, one
 * TCP segment with tcp_nodelay); a larger body is written after the headers. */
#define GATE_REPLY_ONE_WRITE 8192

int gate_reply_raw(gate_req *r, int status, const char *ctype, const char *body, size_t len,
                   const char *extra_headers)
{
    r->status = status;
    char buf[GATE_REPLY_ONE_WRITE];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
                     status, status_text(status), ctype, len, extra_headers ? extra_headers : "");
    int with_body = len && strcmp(r->ri->request_method, "HEAD") != 0;
    if (n < 0 || (size_t)n >= sizeof buf) { /* headers this long cannot happen; be safe */
        mg_printf(r->conn,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
                  status, status_text(status), ctype, len, extra_headers ? extra_headers : "");
    } else if (with_body && len <= sizeof buf - (size_t)n) {
        memcpy(buf + n, body, len);
        mg_write(r->conn, buf, (size_t)n + len);
        return status;
    } else {
        mg_write(r->conn, buf, (size_t)n);
    }
    if (with_body) mg_write(r->conn, body, len);
    return status;
}

int gate_reply_json(gate_req *r, int status, cJSON *j, const char *extra_headers)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"overloaded\",\"message\":\"out of memory\"}}";
        return gate_reply_raw(r, 503, "application/json", oom, sizeof oom - 1,
                              "Retry-After: 5\r\n");
    }
    int rc = gate_reply_raw(r, status, "application/json", text, strlen(text), extra_headers);
    free(text);
    return rc;
}

int gate_reply_error(gate_req *r, int status, const char *code, const char *fmt, ...)
{
    char raw[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    dg_errf(msg, sizeof msg, DG_OK, "%s", raw); /* one line of valid UTF-8 (it quotes input) */
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    const char *extra = "";
    if (status == 401)
        extra = "WWW-Authenticate: Bearer realm=\"dealgate\"\r\n";
    else if (status == 408)
        extra = "Connection: close\r\n";
    else if (status == 503 || status == 429)
        extra = "Retry-After: 5\r\n";
    return gate_reply_json(r, status, o, extra);
}

int gate_reply_read(gate_req *r, dg_err rc, char *json, const char *invalid, const char *missing)
{
    int st;
    if (rc == DG_OK && json != NULL)
        st = gate_reply_raw(r, 200, "application/json", json, strlen(json), "");
    else if (rc == DG_EINVAL)
        st = gate_reply_error(r, 422, "invalid_field", "%s", invalid);
    else if (rc == DG_ENOTFOUND)
        st = gate_reply_error(r, 404, "not_found", "%s", missing);
    else
        st = gate_reply_error(r, 503, "log_unavailable", "the decision log cannot be read");
    free(json);
    return st;
}

int gate_query(const gate_req *r, const char *name, char *buf, size_t cap)
{
    const char *qs = r->ri->query_string;
    if (!qs) return 0;
    int n = mg_get_var(qs, strlen(qs), name, buf, cap);
    if (n == -1) return 0;
    if (n < 0) return -1;
    return 1;
}

static int token_in(const gate_tokens *set, const char *hdr)
{
    if (!hdr) return 0;
    if (strncasecmp(hdr, "Bearer ", 7) == 0) {
        const char *t = hdr + 7;
        while (*t == ' ') t++;
        return gate_token_match(set, t, strlen(t));
    }
    if (strncasecmp(hdr, "Basic ", 6) == 0) {
        const char *b = hdr + 6;
        while (*b == ' ') b++;
        unsigned char dec[512];
        size_t olen = 0;
        if (strlen(b) > 680) return 0;
        if (mbedtls_base64_decode(dec, sizeof dec - 1, &olen, (const unsigned char *)b,
                                  strlen(b)) != 0)
            return 0;
        dec[olen] = '\0';
        const char *colon = memchr(dec, ':', olen);
        if (!colon) return 0;
        const char *pw = colon + 1;
        int ok = gate_token_match(set, pw, olen - (size_t)(pw - (const char *)dec));
        memset(dec, 0, sizeof dec);
        return ok;
    }
    return 0;
}

int gate_auth_check(const gate_req *r, const gate_tokens *set)
{
    if (r->rt->cfg->auth.open) return 1;
    return token_in(set, mg_get_header(r->conn, "Authorization"));
}

int gate_content_type_is(const gate_req *r, const char *mt)
{
    const char *ct = mg_get_header(r->conn, "Content-Type");
    if (!ct) return 0;
    size_t n = strlen(mt);
    if (strncasecmp(ct, mt, n) != 0) return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Reads the body within max_body and timeout_ms. civetweb bounds each read by
 * request_timeout_ms, not the whole body, so a client sending a byte a second would hold a
 * worker thread for as long as it likes: the whole body gets timeout_ms here (408 after).
 * Returns 0, or the error status already answered. */
static int read_body(gate_req *r, int64_t max_body, int timeout_ms)
{
    long long cl = r->ri->content_length;
    if (cl > max_body)
        return gate_reply_error(r, 413, "payload_too_large",
                                "the body is larger than max_body (%lld bytes)",
                                (long long)max_body);
    size_t cap = cl >= 0 ? (size_t)cl : 65536;
    size_t len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return gate_reply_error(r, 503, "overloaded", "out of memory");
    gate_body_deadline *deadline = gate_body_deadline_start(r->ri, timeout_ms);
    for (;;) {
        if (len == cap) {
            if (cl >= 0) break;
            if ((int64_t)cap > max_body) {
                gate_body_deadline_end(deadline);
                free(buf);
                return gate_reply_error(r, 413, "payload_too_large",
                                        "the body is larger than max_body (%lld bytes)",
                                        (long long)max_body);
            }
            size_t ncap = cap * 2;
            if ((int64_t)ncap > max_body + 1) ncap = (size_t)max_body + 1;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                gate_body_deadline_end(deadline);
                free(buf);
                return gate_reply_error(r, 503, "overloaded", "out of memory");
            }
            buf = nb;
            cap = ncap;
        }
        int n = mg_read(r->conn, buf + len, cap - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    if (gate_body_deadline_end(deadline) && (cl < 0 || len < (size_t)cl)) {
        free(buf);
        return gate_reply_error(r, 408, "request_timeout",
                                "the body did not arrive within %d ms (request_timeout_ms)",
                                timeout_ms);
    }
    if (cl >= 0 && len < (size_t)cl) {
        free(buf);
        return gate_reply_error(r, 400, "invalid_body",
                                "the body ended after %zu of %lld bytes", len, cl);
    }
    if ((int64_t)len > max_body) {
        free(buf);
        return gate_reply_error(r, 413, "payload_too_large",
                                "the body is larger than max_body (%lld bytes)",
                                (long long)max_body);
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    return 0;
}

static const gate_tokens *tokens_for(const gate_rt *rt, gate_auth a)
{
    switch (a) {
    case GATE_AUTH_WEBHOOK:
    case GATE_AUTH_HUBSPOT: return &rt->webhook;
    case GATE_AUTH_READER: return &rt->reader;
    case GATE_AUTH_COMP: return &rt->comp_reader;
    case GATE_AUTH_DESK: return &rt->desk;
    default: return NULL;
    }
}

/* Appends s to out (at *len, cap bytes) as the inside of a JSON string, escaped as cJSON
 * prints strings (quote, backslash and control characters; other bytes as they are), cut at
 * max bytes of s. */
static void json_esc(char *out, size_t cap, size_t *len, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; s[i] && i < max && *len + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char)c;
        } else if (c < 0x20) {
            const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (e != NULL) {
                out[(*len)++] = e[0];
                out[(*len)++] = e[1];
            } else {
                memcpy(out + *len, "\\u00", 4);
                out[*len + 4] = hex[c >> 4];
                out[*len + 5] = hex[c & 15];
                *len += 6;
            }
        } else {
            out[(*len)++] = (char)c;
        }
    }
}

/* One JSON line per request: {"ts", "event": "request", "method", "path" (its first 1024
 * bytes), "status", "ms", "decision_id"}. Formatted by hand (this runs for every request). */
static void access_log(const gate_req *r, double ms)
{
    char line[8192], ts[32]; /* room for every field escaped at 6 bytes a byte */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t len = (size_t)snprintf(line, sizeof line,
                                  "{\"ts\":\"%s\",\"event\":\"request\",\"method\":\"", ts);
    json_esc(line, sizeof line, &len, r->ri->request_method, 32);
    memcpy(line + len, "\",\"path\":\"", 10);
    len += 10;
    json_esc(line, sizeof line, &len, r->path ? r->path : "", 1024);
    long us = (long)(ms * 1000);
    int n = snprintf(line + len, sizeof line - len, "\",\"status\":%d,\"ms\":%ld.%03ld", r->status,
                     us / 1000, us % 1000);
    if (n > 0 && (size_t)n < sizeof line - len) len += (size_t)n;
    if (r->decision_id[0]) {
        memcpy(line + len, ",\"decision_id\":\"", 16);
        len += 16;
        json_esc(line, sizeof line, &len, r->decision_id, sizeof r->decision_id);
        line[len++] = '"';
    }
    line[len++] = '}';
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

int gate_http_handle(struct mg_connection *conn, void *cbdata)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gate_req r = {.conn = conn, .ri = mg_get_request_info(conn), .g = cbdata};
    r.path = r.ri->local_uri ? r.ri->local_uri : "/";
    r.rt = gate_rt_acquire(r.g);
    const gate_route *match = NULL;
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_matches(&routes[i], r.path)) continue;
        path_known = 1;
        const char *m = r.ri->request_method;
        if (strcmp(routes[i].method, m) == 0 ||
            (strcmp(m, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            match = &routes[i];
            break;
        }
    }
    if (!r.rt) {
        gate_reply_error(&r, 503, "starting", "the service is starting");
    } else if (!match && path_known) {
        gate_reply_error(&r, 405, "method_not_allowed", "%s is not allowed on %s",
                         r.ri->request_method, r.path);
    } else if (!match) {
        gate_reply_error(&r, 404, "not_found", "no such endpoint");
    } else {
        const gate_tokens *set = tokens_for(r.rt, match->auth);
        r.authed = set ? gate_auth_check(&r, set) : 1;
        if (match->auth != GATE_AUTH_NONE && match->auth != GATE_AUTH_HUBSPOT && !r.authed) {
            const char *extra = match->auth == GATE_AUTH_READER || match->auth == GATE_AUTH_COMP
                                    ? "WWW-Authenticate: Basic realm=\"dealgate\"\r\n"
                                    : "WWW-Authenticate: Bearer realm=\"dealgate\"\r\n";
            cJSON *o = cJSON_CreateObject();
            cJSON *e = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(e, "code", "unauthorized");
            cJSON_AddStringToObject(e, "message", "a valid token is required for this endpoint");
            gate_reply_json(&r, 401, o, extra);
        } else if (strcmp(match->method, "POST") == 0 &&
                   read_body(&r, r.rt->cfg->server.max_body,
                             r.rt->cfg->server.request_timeout_ms) != 0) {
            /* read_body answered */
        } else {
            match->fn(&r);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    access_log(&r, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    gate_metrics_request(r.g->metrics, match ? match->path : NULL, r.status,
                         (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
                             (t1.tv_nsec - t0.tv_nsec) / 1000);
    free(r.body);
    gate_rt_release(r.g, r.rt);
    return r.status ? r.status : 500;
}

static int log_message_cb(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "http_server");
    cJSON_AddStringToObject(o, "message", message);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
    return 1;
}

struct mg_context *gate_http_start(gate_ctx *g, char *err, size_t errlen)
{
    gate_rt *rt = gate_rt_acquire(g);
    const cfg_server *s = &rt->cfg->server;
    char threads[16], timeout[16];
    snprintf(threads, sizeof threads, "%d", s->threads);
    snprintf(timeout, sizeof timeout, "%d", s->request_timeout_ms);
    const char *opts[] = {"listening_ports", s->listen,
                          "num_threads", threads,
                          "request_timeout_ms", timeout,
                          "enable_keep_alive", "yes",
                          "keep_alive_timeout_ms", "5000",
                          "max_request_size", "16384",
                          "linger_timeout_ms", "0",
                          "tcp_nodelay", "1", /* headers and body are two writes: no Nagle */
                          NULL};
    struct mg_callbacks cb = {0};
    cb.log_message = log_message_cb;
    struct mg_init_data init = {.callbacks = &cb, .user_data = g, .configuration_options = opts};
    struct mg_error_data ed = {0};
    char ebuf[256] = "";
    ed.text = ebuf;
    ed.text_buffer_size = sizeof ebuf;
    struct mg_context *ctx = mg_start2(&init, &ed);
    gate_rt_release(g, rt);
    if (!ctx) {
        dg_errf(err, errlen, DG_EIO, "cannot listen on %s: %s", s->listen,
                ebuf[0] ? ebuf : "unknown error");
        return NULL;
    }
    mg_set_request_handler(ctx, "/", gate_http_handle, g);
    return ctx;
}

/* A connection to our own listening socket: civetweb's master thread notices a stop only
 * when poll() returns, which is otherwise up to its 2 s quantum later. */
typedef struct {
    char host[64];
    int port;
} http_nudge;

static void *http_nudge_run(void *arg)
{
    http_nudge *n = arg;
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    char port[16];
    snprintf(port, sizeof port, "%d", n->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
    if (getaddrinfo(n->host, port, &hints, &ai) == 0 && ai) {
        int fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd >= 0) {
            (void)connect(fd, ai->ai_addr, ai->ai_addrlen);
            close(fd);
        }
        freeaddrinfo(ai);
    }
    free(n);
    return NULL;
}

void gate_http_stop(struct mg_context *ctx, const char *listen)
{
    if (!ctx) return;
    struct mg_server_port sp;
    http_nudge *n = calloc(1, sizeof *n);
    if (n && listen && mg_get_server_ports(ctx, 1, &sp) == 1) {
        /* The configured address, with the wildcard ones mapped to loopback. */
        const char *colon = strrchr(listen, ':');
        size_t hl = colon ? (size_t)(colon - listen) : 0;
        if (hl >= 2 && listen[0] == '[') {
            snprintf(n->host, sizeof n->host, "%.*s", (int)(hl - 2), listen + 1);
            if (strcmp(n->host, "::") == 0) snprintf(n->host, sizeof n->host, "::1");
        } else {
            snprintf(n->host, sizeof n->host, "%.*s", (int)hl, listen);
            if (hl == 0 || strcmp(n->host, "0.0.0.0") == 0)
                snprintf(n->host, sizeof n->host, "127.0.0.1");
        }
        n->port = sp.port;
        pthread_t t;
        if (pthread_create(&t, NULL, http_nudge_run, n) == 0)
            pthread_detach(t);
        else
            free(n);
    } else {
        free(n);
    }
    mg_stop(ctx); /* waits for in-flight requests */
}
