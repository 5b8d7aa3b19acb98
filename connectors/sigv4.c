/* sigv4.c — configures libcurl's built-in AWS SigV4 signer (see sigv4.h for why curl's).
 *
 * The parameter string is "aws:amz:REGION:SERVICE": provider "aws" gives the algorithm name
 * AWS4-HMAC-SHA256 and the "aws4_request" scope terminator, "amz" the X-Amz-* header prefix.
 * Key id and secret go through CURLOPT_USERNAME / CURLOPT_PASSWORD (not USERPWD, so a secret
 * may contain ':'). The session token is an ordinary header, which curl signs with the rest.
 */
#include "connectors/sigv4.h"

#include <stdio.h>
#include <string.h>

static int scope_part_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) return 0;
    return 1;
}

/* A credential: present, at most 4096 bytes, printable ASCII without spaces. */
static int credential_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 4096) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return 0;
    return 1;
}

static int amz_date_ok(const char *d)
{
    if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z') return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9')) return 0;
    return 1;
}

dg_err conn_sigv4_check(const conn_sigv4 *s, char *err, size_t errlen)
{
    if (!credential_ok(s->access_key_id))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: access_key_id missing or malformed");
    if (!credential_ok(s->secret_access_key))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: secret_access_key missing or malformed");
    if (s->session_token && *s->session_token && !credential_ok(s->session_token))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: session_token malformed");
    if (!scope_part_ok(s->region))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: region must be [a-z0-9-]{1,64}");
    if (!scope_part_ok(s->service))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: service must be [a-z0-9-]{1,64}");
    if (s->amz_date && !amz_date_ok(s->amz_date))
        return dg_errf(err, errlen, DG_EINVAL, "sigv4: amz_date must be YYYYMMDDTHHMMSSZ");
    return DG_OK;
}

static dg_err append_header(struct curl_slist **headers, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char line[4200];
    if (n > sizeof line) return DG_EINVAL;
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*headers, line);
    memset(line, 0, sizeof line); /* the token is a secret: leave no copy on the stack */
    if (l == NULL) return DG_ENOMEM;
    *headers = l;
    return DG_OK;
}

dg_err conn_sigv4_apply(CURL *h, struct curl_slist **headers, const conn_sigv4 *s, char *err,
                        size_t errlen)
{
    dg_err rc = conn_sigv4_check(s, err, errlen);
    if (rc != DG_OK) return rc;

    char param[160];
    snprintf(param, sizeof param, "aws:amz:%s:%s", s->region, s->service);
    if (curl_easy_setopt(h, CURLOPT_AWS_SIGV4, param) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERNAME, s->access_key_id) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret_access_key) != CURLE_OK)
        return dg_errf(err, errlen, DG_ENOMEM, "sigv4: cannot configure the signer");
    if (s->session_token && *s->session_token) {
        rc = append_header(headers, "X-Amz-Security-Token", s->session_token);
        if (rc != DG_OK) return dg_errf(err, errlen, rc, "sigv4: cannot add the session token");
    }
    if (s->amz_date) {
        rc = append_header(headers, "X-Amz-Date", s->amz_date);
        if (rc != DG_OK) return dg_errf(err, errlen, rc, "sigv4: cannot add X-Amz-Date");
    }
    return DG_OK;
}
