/* crm.c — what the CRM write-back backends share: finding one by name, cutting a reason,
 * the bearer-token call, quoting and classifying an error answer. */
#include "connectors/crm.h"

#include <stdio.h>
#include <string.h>

const crm_ops *crm_ops_find(const char *name)
{
    if (!name) return NULL;
    if (strcmp(name, crm_salesforce_ops.name) == 0) return &crm_salesforce_ops;
    if (strcmp(name, crm_hubspot_ops.name) == 0) return &crm_hubspot_ops;
    return NULL;
}

void crm_cut_reason(const char *reason, size_t max, char *out, size_t cap)
{
    if (cap == 0) return;
    size_t n = reason ? strlen(reason) : 0;
    if (n > max) n = max;
    if (n > cap - 1) n = cap - 1;
    /* back off over continuation bytes so a multi-byte character is never split */
    if (reason && n < strlen(reason))
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    if (n) memcpy(out, reason, n);
    out[n] = '\0';
}

dg_err crm_bearer_call(conn_http_client *http, const char *token, const char *method,
                       const char *url, const char *body, const atomic_int *cancel,
                       conn_http_resp *rs, char *err, size_t errlen)
{
    char auth[CRM_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *hdrs[] = {auth, "Accept: application/json",
                          body ? "Content-Type: application/json" : NULL, NULL};
    conn_http_req rq = {.method = method,
                        .url = url,
                        .headers = hdrs,
                        .body = body,
                        .body_len = body ? strlen(body) : 0,
                        .timeout_ms = CRM_TIMEOUT_MS,
                        .max_response = 256 * 1024,
                        .cancel = cancel};
    dg_err rc = conn_http_do(http, &rq, rs, err, errlen);
    explicit_bzero(auth, sizeof auth);
    return rc;
}

void crm_error_text(const char *code, const char *message, const char *body, char *out, size_t n)
{
    char raw[512];
    snprintf(raw, sizeof raw, "%s%s%s", code ? code : "", code && message ? ": " : "",
             message ? message : "");
    if (!raw[0]) snprintf(raw, sizeof raw, "%.200s", body ? body : "");
    conn_http_excerpt(raw, out, n);
}

dg_err crm_status_err(const char *crm, const char *what, long status, const char *text, char *err,
                      size_t errlen)
{
    dg_err rc = status == 404                    ? DG_ENOTFOUND
                : status == 401 || status == 403 ? DG_EAUTH
                : status == 429                  ? DG_ETHROTTLED
                : status >= 500 || status == 408 ? DG_EUPSTREAM
                : status >= 400                  ? DG_EINVAL
                                                 : DG_EUPSTREAM;
    return dg_errf(err, errlen, rc, "%s: %s answered HTTP %ld: %s", crm, what, status,
                   text[0] ? text : "(no error text)");
}
