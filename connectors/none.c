/* none.c — the presence-only connector: a registration id in the CRM counts as registered.
 *
 * `connector = none` verifies nothing (DESIGN: what HubSpot's required properties and
 * Salesforce validation rules can already do). by_id answers FOUND for any id of valid
 * syntax, with status NULL: the system state is unknown, so rules treat a FOUND fact from
 * source "none" as registered whatever the rule's accept.* list says. by_crm_id answers
 * NOT_FOUND: no id in the CRM means not registered. No state, no I/O, never fails.
 */
#include <stdio.h>

#include "connectors/backends.h"

static dg_err none_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                        size_t errlen)
{
    (void)cc;
    (void)state_dir;
    (void)err;
    (void)errlen;
    *state = NULL;
    return DG_OK;
}

static void none_close(void *state)
{
    (void)state;
}

static dg_err none_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    (void)state;
    (void)timeout_ms;
    out->lookup = conn_printable_id(id) ? DG_LOOKUP_FOUND : DG_LOOKUP_NOT_FOUND;
    return DG_OK;
}

static dg_err none_by_crm_id(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out)
{
    (void)state;
    (void)crm_id;
    (void)timeout_ms;
    out->lookup = DG_LOOKUP_NOT_FOUND;
    return DG_OK;
}

static void none_health(void *state, char *buf, size_t n)
{
    (void)state;
    if (n > 0) snprintf(buf, n, "%s", "presence only: no co-sell system is asked");
}

const conn_backend conn_none_backend = {
    .name = "none",
    .valid_id = conn_printable_id,
    .open = none_open,
    .close = none_close,
    .by_id = none_by_id,
    .by_crm_id = none_by_crm_id,
    .health = none_health,
};
