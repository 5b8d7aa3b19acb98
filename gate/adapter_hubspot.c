/* adapter_hubspot.c — POST /v1/gate/hubspot: workflow custom actions and "Send a webhook".
 *
 * Authentication first (DESIGN.md "Auth"): with [hubspot] client_secret set, a request
 * carrying X-HubSpot-Signature-v3 must verify as v3 (timestamped, 5-minute window); else one
 * carrying X-HubSpot-Signature must verify as v2 (v1 covers neither method nor URL and
 * HubSpot uses it only for its webhooks API, so it is refused); a request with no signature
 * needs a bearer webhook token. The signed URI is [hubspot] public_url + the path and query
 * as received, because TLS ends at a proxy and the scheme and host HubSpot called are not
 * what dealgate sees.
 *
 * Then the payload: a custom action carries callbackId (the idempotency key: HubSpot retries
 * with the same one) and the deal's properties; a webhook carries the deal object and no id,
 * so an identical body for the same deal within 10 minutes is the same event. Properties map
 * to event fields through [hubspot] property.*; values arrive plain or as {"value": ...}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/adapters.h"
#include "gate/event.h"
#include "gate/hubspot_sig.h"
#include "gate/routes.h"

#define HS_TEXT_MAX 256
#define HS_LIST_MAX 4096
#define HS_DEDUPE_WINDOW_S 600 /* identical webhook body, same deal: the same event */
#define HS_URI_MAX 2048

const char *gate_hs_stage_property(const struct cfg *c)
{
    for (size_t i = 0; i < c->hubspot.nproperties; i++)
        if (strcmp(c->hubspot.properties[i].label, "stage") == 0)
            return c->hubspot.properties[i].cloud;
    return "dealstage";
}

/* The deal property for event field `field`: [hubspot] property.<field>, else the default
 * (NULL when the field has none). */
static const char *hs_prop(const struct cfg *c, const char *field, const char *dflt)
{
    for (size_t i = 0; i < c->hubspot.nproperties; i++)
        if (strcmp(c->hubspot.properties[i].label, field) == 0)
            return c->hubspot.properties[i].cloud;
    return dflt;
}

/* Where properties come from: one or two objects, with their names for messages. */
typedef struct {
    const cJSON *src[2];
    const char *path[2];
} hs_props;

/* Finds property name in the sources: the item (unwrapped from {"value": ...}) and the
 * path of its field for messages. */
static const cJSON *hs_find(const hs_props *p, const char *name, char *field, size_t fcap)
{
    for (int i = 0; i < 2; i++) {
        if (!p->src[i]) continue;
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(p->src[i], name);
        if (!it) continue;
        snprintf(field, fcap, "%s%s%.64s", p->path[i], *p->path[i] ? "." : "", name);
        if (cJSON_IsObject(it)) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
            if (v) return v;
        }
        return it;
    }
    snprintf(field, fcap, "%s%s%.64s", p->path[0], *p->path[0] ? "." : "", name);
    return NULL;
}

/* Reads property `name` as text into buf (numbers as written by HubSpot: integers plain).
 * *out NULL when absent, null or "". */
static dg_err hs_text(const hs_props *p, const char *name, char *buf, size_t cap, const char **out,
                      char *field, size_t fcap, char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *it = hs_find(p, name, field, fcap);
    if (!it || cJSON_IsNull(it)) return DG_OK;
    if (cJSON_IsString(it)) {
        *out = *it->valuestring ? it->valuestring : NULL;
        return DG_OK;
    }
    if (cJSON_IsNumber(it) && it->valuedouble > -1e15 && it->valuedouble < 1e15 &&
        it->valuedouble == (double)(long long)it->valuedouble) { /* range first: no UB cast */
        snprintf(buf, cap, "%lld", (long long)it->valuedouble);
        *out = buf;
        return DG_OK;
    }
    if (cJSON_IsBool(it)) {
        *out = cJSON_IsTrue(it) ? "true" : "false";
        return DG_OK;
    }
    return dg_errf(err, errlen, DG_EINVAL, "field %s must be a string", field);
}

static dg_err hs_str(const hs_props *p, const char *name, char **dst, char *err, size_t errlen)
{
    if (!name) return DG_OK;
    char num[32], field[160];
    const char *v;
    dg_err rc = hs_text(p, name, num, sizeof num, &v, field, sizeof field, err, errlen);
    if (rc != DG_OK) return rc;
    if (v && strlen(v) > HS_TEXT_MAX)
        return dg_errf(err, errlen, DG_EINVAL, "field %s is longer than %d characters", field,
                       HS_TEXT_MAX);
    return gate_event_set_str(dst, v, HS_TEXT_MAX, field, err, errlen);
}

/* A clouds property value to a cloud key: [hubspot] cloud.<value>, else a cloud key. */
static const char *hs_cloud_of(const struct cfg *c, const char *value)
{
    for (size_t i = 0; i < c->hubspot.nclouds; i++)
        if (strcasecmp(c->hubspot.clouds[i].label, value) == 0) return c->hubspot.clouds[i].cloud;
    for (size_t i = 0; i < c->nclouds; i++)
        if (strcasecmp(c->clouds[i].key, value) == 0) return c->clouds[i].key;
    return NULL;
}

static dg_err hs_clouds(const struct cfg *c, const hs_props *p, dg_event *ev, char *err,
                        size_t errlen)
{
    const char *name = hs_prop(c, "clouds", NULL);
    if (!name) return DG_OK;
    char num[32], field[160];
    const char *v;
    dg_err rc = hs_text(p, name, num, sizeof num, &v, field, sizeof field, err, errlen);
    if (rc != DG_OK || !v) return rc;
    if (strlen(v) > HS_LIST_MAX)
        return dg_errf(err, errlen, DG_EINVAL, "field %s is too long", field);
    for (const char *s = v;;) {
        const char *semi = strchr(s, ';');
        size_t n = semi ? (size_t)(semi - s) : strlen(s);
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n > 0) {
            char one[CFG_NAME_MAX * 2];
            if (n >= sizeof one)
                return dg_errf(err, errlen, DG_EINVAL, "field %s: a value is too long", field);
            memcpy(one, s, n);
            one[n] = '\0';
            const char *key = hs_cloud_of(c, one);
            if (!key)
                return dg_errf(err, errlen, DG_EINVAL,
                               "field %s: value \"%s\" is not mapped to a cloud (add [hubspot] "
                               "cloud.%s = <cloud key>)",
                               field, one, one);
            if ((rc = gate_event_add_cloud(c, ev, key, field, err, errlen)) != DG_OK) return rc;
        }
        if (!semi) break;
        s = semi + 1;
    }
    return DG_OK;
}

static dg_err hs_regs(const struct cfg *c, const hs_props *p, dg_event *ev, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < c->hubspot.nproperties; i++) {
        const cfg_map *m = &c->hubspot.properties[i];
        if (strncmp(m->label, "registration.", 13) != 0) continue;
        char num[32], field[160];
        const char *v;
        dg_err rc = hs_text(p, m->cloud, num, sizeof num, &v, field, sizeof field, err, errlen);
        if (rc != DG_OK) return rc;
        if (v && (rc = gate_event_add_reg(c, ev, m->label + 13, v, field, err, errlen)) != DG_OK)
            return rc;
    }
    return DG_OK;
}

static dg_err hs_pipeline(const struct cfg *c, const hs_props *p, dg_event *ev, char *err,
                          size_t errlen)
{
    char num[32], field[160];
    const char *v;
    dg_err rc = hs_text(p, hs_prop(c, "pipeline", "pipeline"), num, sizeof num, &v, field,
                        sizeof field, err, errlen);
    if (rc != DG_OK || !v) return rc;
    if (cfg_pipeline_find(c, v))
        return gate_event_set_str(&ev->pipeline, v, HS_TEXT_MAX, field, err, errlen);
    /* HubSpot calls its first pipeline "default": that is [pipeline] unless one is named so */
    if (strcasecmp(v, "default") == 0) return DG_OK;
    return dg_errf(err, errlen, DG_EINVAL,
                   "field %s: unknown pipeline \"%.64s\" (add [pipeline:%.64s] with its stage ids)",
                   field, v, v);
}

/* The deal id: property.id if configured, else objectId / dealId of the object, else the
 * hs_object_id property. */
static dg_err hs_id(const struct cfg *c, const cJSON *obj, const char *objpath, const hs_props *p,
                    dg_event *ev, char *err, size_t errlen)
{
    char num[32], field[160];
    const char *v = NULL;
    dg_err rc;
    const char *name = hs_prop(c, "id", NULL);
    if (name) {
        if ((rc = hs_text(p, name, num, sizeof num, &v, field, sizeof field, err, errlen)) != DG_OK)
            return rc;
    } else {
        static const char *const keys[] = {"objectId", "dealId"};
        for (size_t i = 0; !v && obj && i < 2; i++) {
            hs_props one = {{obj, NULL}, {objpath, ""}};
            if ((rc = hs_text(&one, keys[i], num, sizeof num, &v, field, sizeof field, err,
                              errlen)) != DG_OK)
                return rc;
        }
        if (!v && (rc = hs_text(p, "hs_object_id", num, sizeof num, &v, field, sizeof field, err,
                                errlen)) != DG_OK)
            return rc;
        if (!v) snprintf(field, sizeof field, "%s%sobjectId", objpath, *objpath ? "." : "");
    }
    if ((rc = gate_event_check_id(v, field, err, errlen)) != DG_OK) return rc;
    if (!(ev->opp_id = strdup(v))) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    return DG_OK;
}

dg_err gate_hs_event(const struct cfg *c, const cJSON *root, dg_event *ev, gate_hs_kind *kind,
                     char *err, size_t errlen)
{
    dg_err rc;
    memset(ev, 0, sizeof *ev);
    memcpy(ev->currency, c->server.currency, 4);
    *kind = GATE_HS_WEBHOOK;
    if (!cJSON_IsObject(root))
        return dg_errf(err, errlen, DG_EINVAL, "the body must be a JSON object");
    hs_props p = {{NULL, NULL}, {"", ""}};
    const cJSON *obj = root;
    const char *objpath = "";
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(root, "callbackId");
    if (cb && !cJSON_IsNull(cb)) {
        *kind = GATE_HS_CUSTOM_ACTION;
        if (!cJSON_IsString(cb) || !*cb->valuestring)
            return dg_errf(err, errlen, DG_EINVAL, "field callbackId must be a non-empty string");
        if ((rc = gate_event_set_str(&ev->event_id, cb->valuestring, HS_TEXT_MAX, "callbackId", err,
                                     errlen)) != DG_OK)
            return rc;
        obj = cJSON_GetObjectItemCaseSensitive(root, "object");
        if (!cJSON_IsObject(obj))
            return dg_errf(err, errlen, DG_EINVAL, "field object is required (the deal)");
        objpath = "object";
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "objectType");
        if (type && !cJSON_IsNull(type) &&
            !(cJSON_IsString(type) && (strcasecmp(type->valuestring, "DEAL") == 0 ||
                                       strcmp(type->valuestring, "0-3") == 0)))
            return dg_errf(err, errlen, DG_EINVAL,
                           "field object.objectType must be DEAL (the action runs on deals)");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(obj, "properties");
        if (props && !cJSON_IsNull(props) && !cJSON_IsObject(props))
            return dg_errf(err, errlen, DG_EINVAL, "field object.properties must be an object");
        const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputFields");
        if (inputs && !cJSON_IsNull(inputs) && !cJSON_IsObject(inputs))
            return dg_errf(err, errlen, DG_EINVAL, "field inputFields must be an object");
        p.src[0] = cJSON_IsObject(props) ? props : NULL;
        p.path[0] = "object.properties";
        p.src[1] = cJSON_IsObject(inputs) ? inputs : NULL;
        p.path[1] = "inputFields";
    } else {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(root, "properties");
        if (props && !cJSON_IsObject(props))
            return dg_errf(err, errlen, DG_EINVAL, "field properties must be an object");
        /* A customised webhook body (chosen properties as top-level keys) is its own map. */
        p.src[0] = props ? props : root;
        p.path[0] = props ? "properties" : "";
    }
    if ((rc = hs_id(c, obj, objpath, &p, ev, err, errlen)) != DG_OK) return rc;
    if ((rc = hs_str(&p, hs_prop(c, "stage", "dealstage"), &ev->to_stage, err, errlen)) != DG_OK)
        return rc;
    if (!ev->to_stage) {
        char field[160];
        hs_find(&p, hs_prop(c, "stage", "dealstage"), field, sizeof field);
        return dg_errf(err, errlen, DG_EINVAL,
                       "field %s is required (the deal stage; see [hubspot] property.stage)",
                       field);
    }
    if ((rc = hs_str(&p, hs_prop(c, "name", "dealname"), &ev->name, err, errlen)) != DG_OK ||
        (rc = hs_str(&p, hs_prop(c, "account", NULL), &ev->account, err, errlen)) != DG_OK ||
        (rc = hs_str(&p, hs_prop(c, "owner", "hubspot_owner_id"), &ev->owner, err, errlen)) !=
            DG_OK)
        return rc;
    if ((rc = hs_pipeline(c, &p, ev, err, errlen)) != DG_OK) return rc;
    const char *src_name = hs_prop(c, "source", NULL);
    if (src_name) {
        char num[32], field[160];
        const char *v;
        if ((rc = hs_text(&p, src_name, num, sizeof num, &v, field, sizeof field, err, errlen)) !=
            DG_OK)
            return rc;
        if (v) {
            if (strcasecmp(v, "partner") != 0 && strcasecmp(v, "cloud") != 0)
                return dg_errf(err, errlen, DG_EINVAL, "field %s must be \"partner\" or \"cloud\"",
                               field);
            if (!(ev->source = strdup(strcasecmp(v, "partner") == 0 ? "partner" : "cloud")))
                return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        }
    }
    {
        char num[32], field[160], afield[160];
        const char *ccy = NULL;
        if ((rc = hs_text(&p, hs_prop(c, "currency", "deal_currency_code"), num, sizeof num, &ccy,
                          field, sizeof field, err, errlen)) != DG_OK)
            return rc;
        const cJSON *amount = hs_find(&p, hs_prop(c, "amount", "amount"), afield, sizeof afield);
        if (amount && cJSON_IsString(amount) && !*amount->valuestring) amount = NULL;
        if ((rc = gate_event_set_amount(c, ev, NULL, amount, ccy, afield, err, errlen)) != DG_OK)
            return rc;
    }
    if ((rc = hs_clouds(c, &p, ev, err, errlen)) != DG_OK ||
        (rc = hs_regs(c, &p, ev, err, errlen)) != DG_OK)
        return rc;
    return DG_OK;
}

cJSON *gate_hs_response(const cJSON *decision, gate_hs_kind kind)
{
    cJSON *flat = gate_sf_response(decision);
    if (!flat || kind == GATE_HS_WEBHOOK) return flat;
    cJSON *o = cJSON_CreateObject();
    cJSON *out = o ? cJSON_AddObjectToObject(o, "outputFields") : NULL;
    if (!out) goto fail;
    for (const cJSON *it = flat->child; it; it = it->next) {
        const char *v = cJSON_IsBool(it)     ? (cJSON_IsTrue(it) ? "true" : "false")
                        : cJSON_IsString(it) ? it->valuestring
                                             : "";
        if (!cJSON_AddStringToObject(out, it->string, v)) goto fail;
    }
    cJSON_Delete(flat);
    return o;
fail:
    cJSON_Delete(flat);
    cJSON_Delete(o);
    return NULL;
}

/* Builds the URI HubSpot signed: public_url (or https:// + Host) + path + ?query. */
static int hs_uri(const gate_req *r, char *buf, size_t cap)
{
    const char *base = r->rt->cfg->hubspot.public_url;
    const char *host = mg_get_header(r->conn, "Host");
    const char *path = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->path;
    const char *qs = r->ri->query_string;
    size_t blen = base ? strlen(base) : 0;
    while (blen && base[blen - 1] == '/')
        blen--;
    int n;
    if (base && *base)
        n = snprintf(buf, cap, "%.*s%s%s%s", (int)blen, base, path, qs ? "?" : "", qs ? qs : "");
    else
        n = snprintf(buf, cap, "https://%s%s%s%s", host ? host : "", path, qs ? "?" : "",
                     qs ? qs : "");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Checks the request is HubSpot's (a valid signature) or carries a webhook token. Returns 1
 * when authenticated, else 0 with the reason in why. */
static int hs_authenticate(const gate_req *r, char *why, size_t whylen)
{
    const struct cfg *c = r->rt->cfg;
    const char *secret = c->hubspot.client_secret;
    const char *v3 = mg_get_header(r->conn, "X-HubSpot-Signature-v3");
    const char *v2 = mg_get_header(r->conn, "X-HubSpot-Signature");
    if (!secret || !*secret || (!v3 && !v2)) {
        if (r->authed) return 1;
        snprintf(why, whylen, "%s",
                 (v3 || v2) ? "a HubSpot signature cannot be checked without [hubspot] "
                              "client_secret; send a bearer webhook token"
                            : "a HubSpot signature (X-HubSpot-Signature-v3 or "
                              "X-HubSpot-Signature v2) or a bearer webhook token is required");
        return 0;
    }
    char uri[HS_URI_MAX], err[160];
    if (hs_uri(r, uri, sizeof uri) != 0) {
        snprintf(why, whylen, "the request URI is too long to verify");
        return 0;
    }
    hs_sig_input in = {.secret = secret,
                       .method = r->ri->request_method,
                       .uri = uri,
                       .body = r->body,
                       .body_len = r->body_len,
                       .timestamp = mg_get_header(r->conn, "X-HubSpot-Request-Timestamp")};
    if (v3) {
        if (!in.timestamp) {
            snprintf(why, whylen, "X-HubSpot-Signature-v3 needs X-HubSpot-Request-Timestamp");
            return 0;
        }
        if (hs_sig_verify(HS_SIG_V3, &in, v3, gate_now_ms(), err, sizeof err) != DG_OK) {
            snprintf(why, whylen, "HubSpot signature v3: %s", err);
            return 0;
        }
        return 1;
    }
    const char *ver = mg_get_header(r->conn, "X-HubSpot-Signature-Version");
    if (ver && strcasecmp(ver, "v2") != 0) {
        snprintf(why, whylen,
                 "HubSpot signature version %.8s is not accepted here (workflow calls are signed "
                 "with v2 or v3)",
                 ver);
        return 0;
    }
    if (hs_sig_verify(HS_SIG_V2, &in, v2, gate_now_ms(), err, sizeof err) != DG_OK) {
        snprintf(why, whylen, "HubSpot signature v2: %s", err);
        return 0;
    }
    return 1;
}

/* arg is the request's gate_hs_kind: set here, read by hs_answer. */
static dg_err hs_event(const struct cfg *c, const cJSON *root, void *arg, dg_event *ev,
                       int *dedupe_window_s, char *err, size_t errlen)
{
    gate_hs_kind *kind = arg;
    dg_err rc = gate_hs_event(c, root, ev, kind, err, errlen);
    *dedupe_window_s = *kind == GATE_HS_WEBHOOK ? HS_DEDUPE_WINDOW_S : 0;
    return rc;
}

static cJSON *hs_answer(const cJSON *decision, void *arg)
{
    return gate_hs_response(decision, *(const gate_hs_kind *)arg);
}

int gate_h_hubspot(gate_req *r)
{
    static const gate_adapter hs = {
        .name = "hubspot", .noun = "body", .event = hs_event, .answer = hs_answer};
    char why[320];
    if (!hs_authenticate(r, why, sizeof why))
        return gate_reply_error(r, 401, "unauthorized", "%s", why);
    gate_hs_kind kind = GATE_HS_WEBHOOK;
    return gate_handle_event(r, &hs, &kind);
}
