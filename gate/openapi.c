/* openapi.c — GET /openapi.json: an OpenAPI 3.0 description of the whole HTTP API.
 *
 * Written for Salesforce External Services as much as for people: every operation has an
 * operationId, response bodies use no enums (allowed values are in the descriptions), every
 * list holds one item type, no oneOf/anyOf/allOf, and the Salesforce operation takes and
 * answers only scalars. `GET /openapi.json?only=salesforce` serves just the Salesforce
 * operation and the schemas it uses (the smallest thing to import into a Named Credential's
 * External Service). The document is kept as text here, next to the code it describes;
 * the servers entry is taken from the request's Host unless X-Forwarded-Host/-Proto say
 * otherwise (the proxy in front terminates TLS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/routes.h"

static const char openapi_doc[] =
    "{"
    "\"openapi\":\"3.0.3\","
    "\"info\":{\"title\":\"dealgate\",\"version\":\"" DG_VERSION "\","
    "\"description\":\"Registration gate for co-sell deals: may this deal move to this stage? "
    "Decisions are HTTP 200 with allowed/outcome; errors are 4xx/5xx with an error object.\"},"
    "\"servers\":[{\"url\":\"/\"}],"
    "\"security\":[{\"bearer\":[]}],"
    "\"paths\":{"

    /* ---- Salesforce ---- */
    "\"/v1/gate/salesforce\":{\"post\":{"
    "\"operationId\":\"gateSalesforce\","
    "\"summary\":\"Decide a Salesforce opportunity stage change (Flow HTTP Callout)\","
    "\"description\":\"Flat body and flat answer for a Flow. eventId makes retries idempotent.\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/SalesforceRequest\"}}}},"
    "\"responses\":{"
    "\"200\":{\"description\":\"The decision\",\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/SalesforceResponse\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"413\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"415\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- canonical ---- */
    "\"/v1/gate/stage\":{\"post\":{"
    "\"operationId\":\"gateStage\","
    "\"summary\":\"Decide a stage change from the canonical event\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/Event\"}}}},"
    "\"responses\":{"
    "\"200\":{\"description\":\"The decision\",\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/Decision\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- HubSpot ---- */
    "\"/v1/gate/hubspot\":{\"post\":{"
    "\"operationId\":\"gateHubspot\","
    "\"summary\":\"Decide a HubSpot deal stage change (custom workflow action or webhook)\","
    "\"description\":\"Authenticated by HubSpot's X-HubSpot-Signature-v3 (with "
    "X-HubSpot-Request-Timestamp) or X-HubSpot-Signature v2, or a bearer webhook token. A body "
    "with callbackId is a custom action and is answered with outputFields (strings); any other "
    "body is a webhook with the deal's properties and is answered flat.\","
    "\"security\":[{\"bearer\":[]},{\"hubspotSignature\":[]}],"
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/HubspotRequest\"}}}},"
    "\"responses\":{"
    "\"200\":{\"description\":\"The decision (outputFields for a custom action)\",\"content\":"
    "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/HubspotResponse\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- read side ---- */
    "\"/v1/decisions\":{\"get\":{"
    "\"operationId\":\"listDecisions\",\"summary\":\"Decisions, newest first\","
    "\"parameters\":["
    "{\"name\":\"outcome\",\"in\":\"query\",\"schema\":{\"type\":\"string\"},"
    "\"description\":\"allow or block\"},"
    "{\"name\":\"owner\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"opportunity\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"since\",\"in\":\"query\",\"schema\":{\"type\":\"string\"},"
    "\"description\":\"RFC 3339 date or date-time\"},"
    "{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":500}},"
    "{\"name\":\"cursor\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"One page\",\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/DecisionPage\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    "\"/v1/decisions/{id}\":{\"get\":{"
    "\"operationId\":\"getDecision\",\"summary\":\"One decision, with its write-back state\","
    "\"parameters\":[{\"$ref\":\"#/components/parameters/DecisionId\"}],"
    "\"responses\":{\"200\":{\"description\":\"The decision\",\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/Decision\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    "\"/v1/decisions/{id}/writeback\":{\"post\":{"
    "\"operationId\":\"retryWriteback\",\"summary\":\"Retry a failed (or hurry a pending) "
    "write-back\","
    "\"parameters\":[{\"$ref\":\"#/components/parameters/DecisionId\"}],"
    "\"responses\":{\"202\":{\"description\":\"Queued again, due now\",\"content\":"
    "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/WritebackRetry\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    "\"/v1/kpis\":{\"get\":{"
    "\"operationId\":\"getKpis\",\"summary\":\"Co-sell KPIs over a window\","
    "\"parameters\":["
    "{\"name\":\"since\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"until\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"cloud\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"KPIs: rates in [0, 1] or null, money as "
    "objects of decimal strings by currency\",\"content\":{\"application/json\":{\"schema\":"
    "{\"type\":\"object\"}}}},\"401\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- commission ---- */
    "\"/v1/commission/check\":{\"post\":{"
    "\"operationId\":\"checkCommission\",\"summary\":\"Check commission lines for "
    "marketplace-fee leakage\","
    "\"requestBody\":{\"required\":true,\"content\":{"
    "\"application/json\":{\"schema\":{\"type\":\"object\",\"description\":\"one line, or "
    "{lines: [...]}\"}},"
    "\"text/csv\":{\"schema\":{\"type\":\"string\"}}}},"
    "\"responses\":{\"200\":{\"description\":\"ok, checked, violations, total_shortfall, "
    "results\",\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    "\"/v1/commission/checks\":{\"get\":{"
    "\"operationId\":\"listCommissionChecks\",\"summary\":\"Logged commission checks\","
    "\"parameters\":["
    "{\"name\":\"rep\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"since\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"violations\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"checks and next_cursor\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"object\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- overrides ---- */
    "\"/v1/overrides\":{"
    "\"post\":{\"operationId\":\"createOverride\",\"summary\":\"Let one deal past one rule "
    "until a date\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/OverrideRequest\"}}}},"
    "\"responses\":{\"201\":{\"description\":\"The override with its id\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"object\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Error\"}}},"
    "\"get\":{\"operationId\":\"listOverrides\",\"summary\":\"Overrides\","
    "\"parameters\":[{\"name\":\"active\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"Overrides\",\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\"}}}},\"401\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/v1/overrides/{id}\":{"
    "\"get\":{\"operationId\":\"getOverride\",\"summary\":\"One override\","
    "\"parameters\":[{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"schema\":"
    "{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"The override\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"object\"}}}},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"}}},"
    "\"delete\":{\"operationId\":\"deleteOverride\","
    "\"summary\":\"End an override\","
    "\"parameters\":[{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"schema\":"
    "{\"type\":\"string\"}}],"
    "\"responses\":{\"204\":{\"description\":\"Ended\"},"
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"}}}},"

    /* ---- operations ---- */
    "\"/healthz\":{\"get\":{\"operationId\":\"healthz\",\"security\":[],"
    "\"summary\":\"Liveness\",\"responses\":{\"200\":{\"description\":\"ok\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"object\",\"properties\":{\"status\":"
    "{\"type\":\"string\"},\"version\":{\"type\":\"string\"}}}}}}}}},"
    "\"/readyz\":{\"get\":{\"operationId\":\"readyz\",\"security\":[],"
    "\"summary\":\"Readiness (decision log writable; upstreams with a reader token)\","
    "\"responses\":{\"200\":{\"description\":\"ready\",\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\"}}}},\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/metrics\":{\"get\":{\"operationId\":\"metrics\",\"summary\":\"Prometheus metrics\","
    "\"responses\":{\"200\":{\"description\":\"text exposition format\",\"content\":"
    "{\"text/plain\":{\"schema\":{\"type\":\"string\"}}}}}}},"
    "\"/ui\":{\"get\":{\"operationId\":\"managerPage\",\"summary\":\"Manager page\","
    "\"responses\":{\"200\":{\"description\":\"HTML\",\"content\":{\"text/html\":{\"schema\":"
    "{\"type\":\"string\"}}}}}}},"
    "\"/ui/deal\":{\"get\":{\"operationId\":\"managerDealPage\",\"summary\":\"One deal's "
    "decision history (HTML)\","
    "\"parameters\":[{\"name\":\"id\",\"in\":\"query\",\"required\":true,\"schema\":"
    "{\"type\":\"string\"}}],"
    "\"responses\":{\"200\":{\"description\":\"HTML\",\"content\":{\"text/html\":{\"schema\":"
    "{\"type\":\"string\"}}}}}}},"
    "\"/openapi.json\":{\"get\":{\"operationId\":\"openapi\",\"security\":[],"
    "\"summary\":\"This document (?only=salesforce: the Salesforce operation alone)\","
    "\"responses\":{\"200\":{\"description\":\"OpenAPI 3.0\",\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\"}}}}}}}"
    "},"

    /* ---- components ---- */
    "\"components\":{"
    "\"securitySchemes\":{"
    "\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\",\"description\":\"A webhook, reader, "
    "comp reader or desk token, per endpoint. Reader endpoints also take HTTP Basic with the "
    "token as password.\"},"
    "\"hubspotSignature\":{\"type\":\"apiKey\",\"in\":\"header\",\"name\":"
    "\"X-HubSpot-Signature-v3\",\"description\":\"HubSpot request signature (v3, or "
    "X-HubSpot-Signature v2)\"}},"
    "\"parameters\":{\"DecisionId\":{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\"},\"description\":\"dg_... decision id\"}},"
    "\"responses\":{\"Error\":{\"description\":\"An error: 4xx for the caller, 503 with "
    "Retry-After when it is worth retrying\",\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/Error\"}}}}},"
    "\"schemas\":{"

    "\"SalesforceRequest\":{\"type\":\"object\",\"required\":[\"opportunityId\",\"stageName\"],"
    "\"properties\":{"
    "\"opportunityId\":{\"type\":\"string\",\"description\":\"Opportunity Id\"},"
    "\"name\":{\"type\":\"string\"},"
    "\"accountName\":{\"type\":\"string\"},"
    "\"ownerEmail\":{\"type\":\"string\"},"
    "\"amount\":{\"type\":\"string\",\"description\":\"decimal, e.g. 120000.00\"},"
    "\"currencyIsoCode\":{\"type\":\"string\"},"
    "\"stageName\":{\"type\":\"string\",\"description\":\"the new StageName\"},"
    "\"priorStageName\":{\"type\":\"string\",\"description\":\"PRIORVALUE(StageName)\"},"
    "\"pipeline\":{\"type\":\"string\",\"description\":\"a [pipeline:NAME]; empty for the "
    "default\"},"
    "\"cloudPrograms\":{\"type\":\"string\",\"description\":\"multi-select picklist value, "
    "e.g. AWS;Azure\"},"
    "\"aceOpportunityId\":{\"type\":\"string\"},"
    "\"partnerCenterReferralId\":{\"type\":\"string\"},"
    "\"gcpOpportunityId\":{\"type\":\"string\"},"
    "\"source\":{\"type\":\"string\",\"description\":\"partner or cloud\"},"
    "\"eventId\":{\"type\":\"string\",\"description\":\"idempotency key\"}}},"

    "\"SalesforceResponse\":{\"type\":\"object\",\"properties\":{"
    "\"allowed\":{\"type\":\"boolean\"},"
    "\"outcome\":{\"type\":\"string\",\"description\":\"allow or block\"},"
    "\"message\":{\"type\":\"string\",\"description\":\"one line for the rep; empty when "
    "allowed\"},"
    "\"revertTo\":{\"type\":\"string\",\"description\":\"the StageName to go back to when "
    "blocked; empty otherwise\"},"
    "\"decisionId\":{\"type\":\"string\"},"
    "\"reasonCode\":{\"type\":\"string\",\"description\":\"the first reason's code; empty when "
    "allowed\"}}},"

    "\"HubspotRequest\":{\"type\":\"object\",\"description\":\"A custom action call "
    "(callbackId, origin, object, inputFields) or a workflow webhook (the deal object)\","
    "\"properties\":{"
    "\"callbackId\":{\"type\":\"string\"},"
    "\"origin\":{\"type\":\"object\"},"
    "\"object\":{\"$ref\":\"#/components/schemas/HubspotObject\"},"
    "\"inputFields\":{\"type\":\"object\"},"
    "\"objectId\":{\"type\":\"integer\"},"
    "\"properties\":{\"type\":\"object\"}}},"
    "\"HubspotObject\":{\"type\":\"object\",\"properties\":{"
    "\"objectId\":{\"type\":\"integer\"},\"objectType\":{\"type\":\"string\"},"
    "\"properties\":{\"type\":\"object\"}}},"
    "\"HubspotResponse\":{\"type\":\"object\",\"properties\":{"
    "\"outputFields\":{\"$ref\":\"#/components/schemas/HubspotOutputFields\"},"
    "\"allowed\":{\"type\":\"boolean\"},"
    "\"outcome\":{\"type\":\"string\"},"
    "\"message\":{\"type\":\"string\"},"
    "\"revertTo\":{\"type\":\"string\"},"
    "\"decisionId\":{\"type\":\"string\"},"
    "\"reasonCode\":{\"type\":\"string\"}}},"
    "\"HubspotOutputFields\":{\"type\":\"object\",\"properties\":{"
    "\"allowed\":{\"type\":\"string\",\"description\":\"true or false\"},"
    "\"outcome\":{\"type\":\"string\"},"
    "\"message\":{\"type\":\"string\"},"
    "\"revertTo\":{\"type\":\"string\"},"
    "\"decisionId\":{\"type\":\"string\"},"
    "\"reasonCode\":{\"type\":\"string\"}}},"

    "\"Event\":{\"type\":\"object\",\"required\":[\"opportunity\",\"to_stage\"],"
    "\"properties\":{"
    "\"event_id\":{\"type\":\"string\"},"
    "\"opportunity\":{\"$ref\":\"#/components/schemas/Opportunity\"},"
    "\"from_stage\":{\"type\":\"string\"},"
    "\"to_stage\":{\"type\":\"string\"}}},"
    "\"Opportunity\":{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"account\":{\"type\":\"string\"},\"owner\":{\"type\":\"string\"},"
    "\"pipeline\":{\"type\":\"string\"},"
    "\"amount\":{\"type\":\"string\",\"description\":\"decimal string (or an exact number)\"},"
    "\"currency\":{\"type\":\"string\"},"
    "\"source\":{\"type\":\"string\",\"description\":\"partner or cloud\"},"
    "\"clouds\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"registrations\":{\"type\":\"object\",\"description\":\"cloud key to registration id\","
    "\"additionalProperties\":{\"type\":\"string\"}}}},"

    "\"Reason\":{\"type\":\"object\",\"properties\":{"
    "\"rule\":{\"type\":\"string\"},\"code\":{\"type\":\"string\"},"
    "\"cloud\":{\"type\":\"string\",\"nullable\":true},\"message\":{\"type\":\"string\"}}},"
    "\"Registration\":{\"type\":\"object\",\"properties\":{"
    "\"cloud\":{\"type\":\"string\"},\"id\":{\"type\":\"string\",\"nullable\":true},"
    "\"status\":{\"type\":\"string\",\"nullable\":true},\"verified\":{\"type\":\"boolean\"},"
    "\"source\":{\"type\":\"string\",\"nullable\":true},"
    "\"created_at\":{\"type\":\"string\",\"nullable\":true},"
    "\"origin\":{\"type\":\"string\",\"nullable\":true},"
    "\"lookup\":{\"type\":\"string\"},\"error\":{\"type\":\"string\"}}},"
    "\"Writeback\":{\"type\":\"object\",\"properties\":{"
    "\"crm\":{\"type\":\"string\"},"
    "\"state\":{\"type\":\"string\",\"description\":\"pending, done, superseded or failed\"},"
    "\"attempts\":{\"type\":\"integer\"},"
    "\"stage_value\":{\"type\":\"string\"},"
    "\"next_attempt_at\":{\"type\":\"string\",\"nullable\":true},"
    "\"error\":{\"type\":\"string\",\"nullable\":true},"
    "\"detail\":{\"type\":\"string\",\"nullable\":true},"
    "\"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"}}},"
    "\"WritebackRetry\":{\"type\":\"object\",\"properties\":{"
    "\"decision_id\":{\"type\":\"string\"},"
    "\"writeback\":{\"$ref\":\"#/components/schemas/Writeback\"}}},"
    "\"Decision\":{\"type\":\"object\",\"properties\":{"
    "\"decision_id\":{\"type\":\"string\"},\"allowed\":{\"type\":\"boolean\"},"
    "\"outcome\":{\"type\":\"string\",\"description\":\"allow or block\"},"
    "\"mode\":{\"type\":\"string\",\"description\":\"enforce or report\"},"
    "\"message\":{\"type\":\"string\"},"
    "\"reasons\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Reason\"}},"
    "\"warnings\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Reason\"}},"
    "\"registrations\":{\"type\":\"array\",\"items\":{\"$ref\":"
    "\"#/components/schemas/Registration\"}},"
    "\"revert_to\":{\"type\":\"string\",\"nullable\":true},"
    "\"revert_to_value\":{\"type\":\"string\",\"nullable\":true},"
    "\"opportunity_id\":{\"type\":\"string\"},"
    "\"pipeline\":{\"type\":\"string\",\"nullable\":true},"
    "\"from_stage\":{\"type\":\"string\",\"nullable\":true},"
    "\"to_stage\":{\"type\":\"string\",\"nullable\":true},"
    "\"from_value\":{\"type\":\"string\",\"nullable\":true},"
    "\"to_value\":{\"type\":\"string\",\"nullable\":true},"
    "\"gated\":{\"type\":\"boolean\"},"
    "\"owner\":{\"type\":\"string\",\"nullable\":true},"
    "\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"adapter\":{\"type\":\"string\"},"
    "\"event_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"time\":{\"type\":\"string\"},\"config_version\":{\"type\":\"string\"},"
    "\"latency_ms\":{\"type\":\"integer\"},"
    "\"writeback\":{\"$ref\":\"#/components/schemas/Writeback\"}}},"
    "\"DecisionPage\":{\"type\":\"object\",\"properties\":{"
    "\"decisions\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Decision\"}},"
    "\"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
    "\"OverrideRequest\":{\"type\":\"object\",\"required\":[\"opportunity_id\",\"rule\","
    "\"reason\",\"approved_by\",\"expires_at\"],\"properties\":{"
    "\"opportunity_id\":{\"type\":\"string\"},\"rule\":{\"type\":\"string\"},"
    "\"reason\":{\"type\":\"string\"},\"approved_by\":{\"type\":\"string\"},"
    "\"expires_at\":{\"type\":\"string\",\"description\":\"RFC 3339\"}}},"
    "\"Error\":{\"type\":\"object\",\"properties\":{\"error\":{\"$ref\":"
    "\"#/components/schemas/ErrorBody\"}}},"
    "\"ErrorBody\":{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\"},"
    "\"message\":{\"type\":\"string\"}}}"
    "}}}";

/* Copies a header value fit for a URL authority/scheme (no spaces, quotes or controls). */
static int clean_header(const char *v, char *out, size_t cap)
{
    size_t n = v ? strcspn(v, ",") : 0;
    if (n == 0 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '/' || ch == '?' ||
            ch == '#' || ch == '@')
            return 0;
    }
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

/* Keeps only the Salesforce path and the schemas and responses it needs. */
static void only_salesforce(cJSON *doc)
{
    cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    cJSON *sf = cJSON_DetachItemFromObjectCaseSensitive(paths, "/v1/gate/salesforce");
    cJSON *fresh = cJSON_CreateObject();
    if (sf) cJSON_AddItemToObject(fresh, "/v1/gate/salesforce", sf);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "paths", fresh);
    cJSON *comp = cJSON_GetObjectItemCaseSensitive(doc, "components");
    cJSON *schemas = cJSON_GetObjectItemCaseSensitive(comp, "schemas");
    static const char *const keep[] = {"SalesforceRequest", "SalesforceResponse", "Error",
                                       "ErrorBody"};
    cJSON *kept = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        cJSON *s = cJSON_DetachItemFromObjectCaseSensitive(schemas, keep[i]);
        if (s) cJSON_AddItemToObject(kept, keep[i], s);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(comp, "schemas", kept);
    cJSON_DeleteItemFromObjectCaseSensitive(comp, "parameters");
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(comp, "securitySchemes");
    cJSON_DeleteItemFromObjectCaseSensitive(sec, "hubspotSignature");
}

int gate_h_openapi(gate_req *r)
{
    char only[32];
    int n = gate_query(r, "only", only, sizeof only);
    if (n < 0 || (n > 0 && strcmp(only, "salesforce") != 0))
        return gate_reply_error(r, 422, "invalid_field", "query parameter only must be salesforce");
    cJSON *doc = cJSON_Parse(openapi_doc);
    if (!doc) return gate_reply_error(r, 503, "overloaded", "out of memory");
    if (n > 0) only_salesforce(doc);
    /* The server URL as the caller reached us: through the proxy, X-Forwarded-*. */
    char host[256], proto[16], url[300];
    const char *fh = mg_get_header(r->conn, "X-Forwarded-Host");
    const char *fp = mg_get_header(r->conn, "X-Forwarded-Proto");
    if (clean_header(fh ? fh : mg_get_header(r->conn, "Host"), host, sizeof host)) {
        int https =
            fp ? (clean_header(fp, proto, sizeof proto) && strcasecmp(proto, "https") == 0) : 0;
        snprintf(url, sizeof url, "%s://%s", https ? "https" : "http", host);
        cJSON *servers = cJSON_CreateArray();
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "url", url);
        cJSON_AddItemToArray(servers, s);
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "servers", servers);
    }
    return gate_reply_json(r, 200, doc, "");
}
