/* fuzz_partner_center.c — Microsoft Partner Center answers (connectors/parse.h): the first
 * byte picks a referral, a $filter list page (with @odata.nextLink checked against the
 * endpoint's origin), or an Azure AD token answer. */
#include <strings.h>

#include <curl/curl.h>

#include "connectors/parse.h"
#include "fuzz/fuzz_common.h"

#define ORIGIN "https://api.partner.microsoft.com:443"

/* The link the connector would follow must lead to the same place for libcurl, which
 * makes the call, as for our origin check: same scheme, host and port, or a URL curl
 * refuses outright (then no call is made). */
static void curl_agrees(const char *url)
{
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (h == NULL) return;
    if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK) {
        if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            strcmp(scheme, "https") != 0 || strcasecmp(host, "api.partner.microsoft.com") != 0 ||
            strcmp(port, "443") != 0)
            fuzz_fail("curl reads the next link elsewhere", url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256] = "";
    dg_reg_fact f;
    memset(&f, 0, sizeof f);
    switch (mode % 3) {
    case 0: {
        dg_err rc = conn_pc_parse_referral(body, len, "ref-1234", &f, err, sizeof err);
        fuzz_check_fact(&f);
        if (rc == DG_OK && f.lookup != DG_LOOKUP_FOUND) fuzz_fail("pc", "OK but not FOUND");
        if (rc != DG_OK) fuzz_check_msg("pc error", err);
        break;
    }
    case 1: {
        char *url = NULL;
        dg_err rc = conn_pc_parse_list_page(body, len, "006Dn00000AbCdE", ORIGIN, &f, &url, err,
                                            sizeof err);
        fuzz_check_fact(&f);
        if (rc == DG_OK && f.lookup == DG_LOOKUP_FOUND &&
            (f.crm_id == NULL || strcmp(f.crm_id, "006Dn00000AbCdE") != 0 || f.id == NULL))
            fuzz_fail("pc list", "found a referral of another deal");
        if (url) curl_agrees(url); /* where the call would really go */
        if (rc != DG_OK && url) fuzz_fail("pc list", "a next link on error");
        free(url);
        break;
    }
    default: {
        char *access = NULL, *rotated = NULL;
        long long exp = -1;
        dg_err rc = conn_pc_parse_token(body, len, &access, &exp, &rotated, err, sizeof err);
        if (rc == DG_OK && (access == NULL || exp < 0)) fuzz_fail("pc token", "OK without token");
        if (rc != DG_OK && (access || rotated)) fuzz_fail("pc token", "tokens on error");
        free(access);
        free(rotated);
        break;
    }
    }
    dg_reg_fact_free(&f);
    return 0;
}
