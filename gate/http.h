/* http.h — the HTTP edge: one request context, routing, auth, bounded bodies, replies.
 *
 * civetweb serves each connection on a worker thread and calls gate_http_handle(). A route
 * names its method, path, auth class and handler; the edge checks auth, reads the body
 * within [server] max_body, and every reply is JSON (or the route's own type). Handlers
 * never see a request they cannot answer with a 2xx or a documented 4xx.
 */
#ifndef DG_HTTP_H
#define DG_HTTP_H

#include <civetweb.h>
#include <cjson/cJSON.h>
#include <stddef.h>

#include "gate/gate.h"

typedef enum {
    GATE_AUTH_NONE = 0,
    GATE_AUTH_WEBHOOK,
    GATE_AUTH_READER,
    GATE_AUTH_COMP,
    GATE_AUTH_DESK,
    GATE_AUTH_HUBSPOT /* signature or webhook token: checked by the handler */
} gate_auth;

typedef struct gate_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    gate_ctx *g;
    gate_rt *rt;             /* held for the request */
    const char *path;        /* ri->local_uri */
    char *body;              /* NUL-terminated copy, body_len bytes (NULL for GET) */
    size_t body_len;
    int authed;              /* the request carried a valid token of the route's class */
    int status;              /* reply status, for the access log */
    char decision_id[40];    /* for the access log */
} gate_req;

typedef int (*gate_handler)(gate_req *r);

/* Replies with a JSON body (takes ownership of j; NULL → 503). extra_headers: "" or lines
 * each ending in "\r\n". Returns status. */
int gate_reply_json(gate_req *r, int status, cJSON *j, const char *extra_headers);
/* Replies with a raw body of the given content type. Returns status. */
int gate_reply_raw(gate_req *r, int status, const char *ctype, const char *body, size_t len,
                   const char *extra_headers);
/* Replies {"error": {"code": code, "message": ...}}. Returns status. */
int gate_reply_error(gate_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers a read of the decision log: rc DG_OK → 200 with json (application/json);
 * DG_EINVAL → 422 invalid_field with message `invalid`; DG_ENOTFOUND → 404 not_found with
 * message `missing`; anything else → 503 log_unavailable. Frees json. Returns the status. */
int gate_reply_read(gate_req *r, dg_err rc, char *json, const char *invalid, const char *missing);

/* Reads query parameter name into buf (cap bytes). Returns 1 if present, 0 if absent,
 * -1 if longer than cap - 1. */
int gate_query(const gate_req *r, const char *name, char *buf, size_t cap);

/* Returns 1 if the request carries a bearer/Basic token in set (or [auth] open). */
int gate_auth_check(const gate_req *r, const gate_tokens *set);

/* Returns 1 if the request's Content-Type media type equals mt (case-insensitive). */
int gate_content_type_is(const gate_req *r, const char *mt);

/* The civetweb request handler: routes, authenticates, dispatches. cbdata is gate_ctx. */
int gate_http_handle(struct mg_connection *conn, void *cbdata);

/* Starts civetweb on the runtime's [server] settings. Returns the context or NULL with a
 * message in err. */
struct mg_context *gate_http_start(gate_ctx *g, char *err, size_t errlen);

/* Stops civetweb (waiting for in-flight requests) promptly: a local connection to the
 * listening address wakes its master thread instead of waiting for its poll quantum. */
void gate_http_stop(struct mg_context *ctx, const char *listen);

#endif
