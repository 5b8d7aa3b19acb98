/* event.h — the canonical event: JSON intake and the building blocks CRM adapters share.
 *
 * Every adapter (canonical, Salesforce, HubSpot) ends in one dg_event built with these
 * helpers, so validation (id syntax, known clouds, exact amounts, stage values) is written
 * once. Errors are DG_EINVAL with a message naming the field: an HTTP 422.
 */
#ifndef DG_EVENT_H
#define DG_EVENT_H

#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "rules/model.h"

/* Parses the canonical event (DESIGN.md "Canonical event and decision") from root into ev
 * (zeroed first; caller frees with dg_event_free even on error). */
dg_err gate_event_from_json(const struct cfg *c, const cJSON *root, dg_event *ev, char *err,
                            size_t errlen);

/* Validates an opportunity id (1-128 bytes, no control characters). field names it. */
dg_err gate_event_check_id(const char *id, const char *field, char *err, size_t errlen);

/* Sets a string field (copy) after checking it has no control characters and at most
 * max_len bytes. An empty or NULL value leaves *dst NULL. */
dg_err gate_event_set_str(char **dst, const char *val, size_t max_len, const char *field,
                          char *err, size_t errlen);

/* Adds cloud `key` (matched case-insensitively against [cloud:*] keys, stored as
 * configured; duplicates ignored). Unknown → DG_EINVAL naming field and the value. */
dg_err gate_event_add_cloud(const struct cfg *c, dg_event *ev, const char *key, const char *field,
                            char *err, size_t errlen);

/* Records the CRM's registration id for cloud key (must be a configured cloud; also adds
 * the cloud to the deal). Empty id is ignored. */
dg_err gate_event_add_reg(const struct cfg *c, dg_event *ev, const char *cloud, const char *id,
                          const char *field, char *err, size_t errlen);

/* Sets ev->amount/currency from a decimal text or JSON item and a currency code (NULL:
 * [server] currency). Either amount_text or amount_item is used. */
dg_err gate_event_set_amount(const struct cfg *c, dg_event *ev, const char *amount_text,
                             const cJSON *amount_item, const char *currency, const char *field,
                             char *err, size_t errlen);

#endif
