/* adapters.h — CRM payloads in, CRM-shaped answers out (Salesforce, HubSpot).
 *
 * Each adapter turns its CRM's payload into the one canonical dg_event (with the helpers of
 * gate/event.h, so validation is written once), runs the same pipeline as
 * POST /v1/gate/stage (gate_decide: idempotency, look-ups, rules, durable log), queues a
 * write-back when the CRM is set up for one, and answers in the flat shape its CRM can act
 * on. The functions here are the pure halves (payload → event, decision → answer), kept
 * apart from the HTTP handlers (routes.h) so they can be tested without a server.
 * Field mapping and the reasoning: docs/salesforce.md, docs/hubspot.md.
 */
#ifndef DG_ADAPTERS_H
#define DG_ADAPTERS_H

#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "rules/model.h"

/* ---- Salesforce ------------------------------------------------------------------------- */

/* Builds ev (zeroed first; caller frees with dg_event_free, also on error) from the flat
 * Flow body: opportunityId, stageName (required), priorStageName, name, accountName,
 * ownerEmail, amount, currencyIsoCode, pipeline, source, cloudPrograms ("AWS;Azure", each
 * label mapped through [salesforce] cloud.<label>, else a cloud key of that name),
 * aceOpportunityId / partnerCenterReferralId / gcpOpportunityId (the registration of the
 * cloud whose connector is ace / partner_center / gcp, else of cloud key aws / azure / gcp),
 * eventId. Returns DG_OK, DG_EINVAL (a 422: the message names the field) or DG_ENOMEM. */
dg_err gate_sf_event(const struct cfg *c, const cJSON *root, dg_event *ev, char *err,
                     size_t errlen);

/* The flat answer for a Flow from a decision object (borrowed): allowed (boolean), outcome,
 * message, revertTo (the CRM's own stage value to go back to, "" when none), decisionId,
 * reasonCode (first reason's code, "" when none). Returns a new object (caller deletes) or
 * NULL when out of memory. */
cJSON *gate_sf_response(const cJSON *decision);

/* ---- HubSpot ---------------------------------------------------------------------------- */

typedef enum {
    GATE_HS_CUSTOM_ACTION = 0, /* custom workflow action: callbackId, object, inputFields */
    GATE_HS_WEBHOOK            /* workflow "Send a webhook": the deal object */
} gate_hs_kind;

/* Builds ev from a HubSpot body. A body with callbackId is a custom action (event id =
 * callbackId; properties from object.properties, then inputFields); else a webhook
 * (properties.<name> plain or {"value": ...}; a body without "properties" is itself the
 * property map). Deal properties map to fields through [hubspot] property.* (defaults: id
 * hs_object_id, name dealname, owner hubspot_owner_id, amount amount, currency
 * deal_currency_code, pipeline pipeline, stage dealstage). *kind tells which shape it was.
 * Returns DG_OK, DG_EINVAL (422, naming the field) or DG_ENOMEM. */
dg_err gate_hs_event(const struct cfg *c, const cJSON *root, dg_event *ev, gate_hs_kind *kind,
                     char *err, size_t errlen);

/* The answer for HubSpot: {"outputFields": {...}} with every value a string for a custom
 * action, the flat object of gate_sf_response for a webhook. New object or NULL. */
cJSON *gate_hs_response(const cJSON *decision, gate_hs_kind kind);

/* The deal property that holds the stage in HubSpot ([hubspot] property.stage, default
 * "dealstage"). Borrowed from c or static. */
const char *gate_hs_stage_property(const struct cfg *c);

#endif
