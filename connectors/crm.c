/* crm.c — what the CRM write-back backends share: finding one by name, cutting a reason. */
#include "connectors/crm.h"

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
