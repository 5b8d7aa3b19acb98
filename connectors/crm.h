/* crm.h — CRM write-back calls: read a deal's stage, set it back with a reason.
 *
 * Like the co-sell backends (conn.h), each CRM fills in one crm_ops, and the write-back
 * worker (gate/writeback.c) never names a specific CRM. A backend instance is opened from
 * one config snapshot and copies what it needs; it keeps its own libcurl client
 * (connectors/http.h) and credentials: Salesforce an OAuth2 client-credentials token from
 * instance_url/services/oauth2/token, cached until it expires or a call answers 401 (then
 * fetched once more and the call repeated); HubSpot a private-app token sent as is.
 * An instance is used by one thread at a time (the write-back worker).
 *
 * Errors: DG_ENOTFOUND (no such deal), DG_EAUTH (credentials refused), DG_EINVAL (the CRM
 * refused the request: a 4xx, e.g. a missing field), DG_ETHROTTLED (429), DG_EUPSTREAM /
 * DG_ETIMEOUT / DG_EUNAVAILABLE (5xx or transport: worth retrying), DG_ECONFIG (the section
 * lacks what the call needs). The message is one line naming the CRM and quoting the CRM's
 * own error text, never a token or secret.
 */
#ifndef DG_CRM_H
#define DG_CRM_H

#include <stdatomic.h>
#include <stddef.h>

#include "config/cfg.h"
#include "config/err.h"
#include "connectors/http.h"

#define CRM_TIMEOUT_MS 10000 /* each call, connect included */
#define CRM_STAGE_MAX 256    /* longest stage value accepted back from a CRM */
#define CRM_REASON_MAX 255   /* reason text is cut (at a UTF-8 boundary) to fit a text field */
#define CRM_TOKEN_MAX 4096   /* longest access token a backend sends */

typedef struct crm_ops {
    const char *name; /* "salesforce", "hubspot" */
    /* Opens an instance from c's section for this CRM (c is borrowed only during the call).
     * Returns DG_OK and *state, or DG_ECONFIG / DG_ENOMEM with a message in err. */
    dg_err (*open)(const struct cfg *c, void **state, char *err, size_t errlen);
    void (*close)(void *state);
    /* Reads deal opp_id's current stage value (the CRM's own: a StageName label, a HubSpot
     * stage id) into *stage (caller frees). cancel (may be NULL) aborts the call. */
    dg_err (*get_stage)(void *state, const char *opp_id, const atomic_int *cancel, char **stage,
                        char *err, size_t errlen);
    /* Sets deal opp_id's stage to `stage` and, when the section names a reason field, that
     * field to `reason` (cut to CRM_REASON_MAX bytes). */
    dg_err (*set_stage)(void *state, const char *opp_id, const char *stage, const char *reason,
                        const atomic_int *cancel, char *err, size_t errlen);
} crm_ops;

extern const crm_ops crm_salesforce_ops;
extern const crm_ops crm_hubspot_ops;

/* The backend named `name`, or NULL. */
const crm_ops *crm_ops_find(const char *name);

/* ---- for the backends ------------------------------------------------------------------ */

/* Copies reason into out (cap bytes) cut to at most max bytes without splitting a UTF-8
 * sequence. */
void crm_cut_reason(const char *reason, size_t max, char *out, size_t cap);

/* Makes one API call on http (borrowed): method on url with "Authorization: Bearer <token>"
 * (token shorter than CRM_TOKEN_MAX), Accept: application/json and, when body is not NULL,
 * a JSON body; CRM_TIMEOUT_MS, a 256 KiB answer cap; cancel (may be NULL) aborts it. Returns
 * as conn_http_do (free *rs with conn_http_resp_free). The header holding the token is
 * wiped before returning. */
dg_err crm_bearer_call(conn_http_client *http, const char *token, const char *method,
                       const char *url, const char *body, const atomic_int *cancel,
                       conn_http_resp *rs, char *err, size_t errlen);

/* Quotes a CRM's own error text as one clean line (conn_http_excerpt) into out (n bytes):
 * "code: message" (either alone when the other is NULL), or when that is empty the first
 * 200 bytes of the raw answer body (may be NULL). */
void crm_error_text(const char *code, const char *message, const char *body, char *out, size_t n);

/* The error of a non-2xx answer of CRM `crm` ("salesforce") to `what` ("reading the deal"):
 * writes "<crm>: <what> answered HTTP <status>: <text>" ("(no error text)" for an empty
 * text) into err and returns by status: 404 DG_ENOTFOUND, 401 and 403 DG_EAUTH, 429
 * DG_ETHROTTLED, 5xx and 408 DG_EUPSTREAM, other 4xx DG_EINVAL, anything else DG_EUPSTREAM.
 * A backend may refine the code from its own error text. */
dg_err crm_status_err(const char *crm, const char *what, long status, const char *text, char *err,
                      size_t errlen);

#endif
