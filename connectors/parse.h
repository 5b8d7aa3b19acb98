/* parse.h — the pure halves of the live connectors: upstream bytes in, facts out.
 *
 * Every connector that talks to a co-sell system reads answers the network handed it. The
 * functions here are the parsing steps of those backends (ace.c, partner_center.c, gcp.c,
 * file.c), cut out of their I/O so that they can be unit-tested and fuzzed (fuzz/) on raw
 * bytes: no socket, no clock, no thread, no global state. The backends call the same code
 * on what conn_http_do() returned, so what is fuzzed is what runs.
 *
 * Conventions: `body` is `len` bytes, need not be NUL-terminated, may hold anything. Facts
 * are filled the way a backend fills them (out->lookup FOUND / NOT_FOUND, or FAILED with
 * out->error and out->retryable); `out` must be zeroed or hold a previous fact (its record
 * fields are replaced) and the caller frees it with dg_reg_fact_free(). Errors carry a
 * one-line message in err that never quotes more than a cleaned excerpt of the input.
 */
#ifndef DG_CONN_PARSE_H
#define DG_CONN_PARSE_H

#include <stddef.h>

#include "config/err.h"
#include "rules/model.h"

/* ---- AWS ACE (ace.c) ------------------------------------------------------------------- */

/* A GetOpportunity answer (HTTP 2xx) for opportunity `id`. Returns DG_OK with out FOUND;
 * DG_EPARSE (malformed JSON, unexpected shape) or DG_EUPSTREAM (the answer names another
 * opportunity) with out FAILED; DG_ENOMEM. */
dg_err conn_ace_parse_opportunity(const char *body, size_t len, const char *id, dg_reg_fact *out,
                                  char *err, size_t errlen);

/* An error answer: the exception type from the x-amzn-ErrorType header value `hdr_type` (may
 * be NULL or "") else __type of the body, cut to its name, into type (at most n-1 bytes,
 * "" when none). Returns how the backend treats it: DG_ENOTFOUND (ResourceNotFoundException),
 * DG_ETHROTTLED, DG_EUPSTREAM with *retryable = 1 (server errors, unknown types with a 5xx
 * status), DG_EAUTH (access, signature, token), or DG_EUPSTREAM with *retryable = 0. */
dg_err conn_ace_parse_error(long status, const char *hdr_type, const char *body, size_t len,
                            char *type, size_t n, int *retryable);

/* A ListOpportunities page, merged into a fresh CRM-id index the way the background refresh
 * merges pages (unreadable summaries are skipped). Then each indexed CRM id is looked up.
 * Returns DG_OK with *nindexed (summaries kept) and *next_token (malloc'd, NULL on the last
 * page; caller frees), DG_EPARSE for another shape, DG_ENOMEM. */
dg_err conn_ace_parse_list_page(const char *body, size_t len, size_t *nindexed, char **next_token,
                                char *err, size_t errlen);

/* ---- Microsoft Partner Center (partner_center.c) ---------------------------------------- */

/* A referral (GET .../referrals/{id}, HTTP 200) for referral `id`. Same returns as
 * conn_ace_parse_opportunity. */
dg_err conn_pc_parse_referral(const char *body, size_t len, const char *id, dg_reg_fact *out,
                              char *err, size_t errlen);

/* One page of a $filter=externalReferenceId list for CRM id `crm_id`, on the endpoint whose
 * origin is `origin` ("scheme://host:port"). Picks the best referral of the page for crm_id
 * (out FOUND with out->id, or NOT_FOUND) and the next page's URL into *next_url (malloc'd,
 * NULL on the last page; a link to another origin is refused). Returns DG_OK, DG_EPARSE,
 * DG_EUPSTREAM (a link off the origin, out FAILED), DG_ENOMEM. */
dg_err conn_pc_parse_list_page(const char *body, size_t len, const char *crm_id, const char *origin,
                               dg_reg_fact *out, char **next_url, char *err, size_t errlen);

/* An Azure AD token answer (HTTP 200). Returns DG_OK with *access (malloc'd), *expires_in (s)
 * and *rotated (malloc'd or NULL): caller wipes and frees both; DG_EPARSE otherwise. */
dg_err conn_pc_parse_token(const char *body, size_t len, char **access, long long *expires_in,
                           char **rotated, char *err, size_t errlen);

/* ---- Google Cloud (gcp.c) --------------------------------------------------------------- */

/* An opportunity (GET .../opportunities/{id}, HTTP 200) for opportunity `id`. Same returns
 * as conn_ace_parse_opportunity. */
dg_err conn_gcp_parse_opportunity(const char *body, size_t len, const char *id, dg_reg_fact *out,
                                  char *err, size_t errlen);

/* An error answer: Google's error.status into gstatus and error.message into detail (clean
 * excerpts, "" when absent). Returns how the backend treats it, as conn_ace_parse_error
 * (DG_ENOTFOUND, DG_ETHROTTLED, DG_EAUTH, DG_EUPSTREAM with *retryable). */
dg_err conn_gcp_parse_error(long status, const char *body, size_t len, char *gstatus, size_t gn,
                            char *detail, size_t dn, int *retryable);

/* ---- file connector (file.c) ------------------------------------------------------------ */

/* A registrations CSV held in memory, read for cloud key `cloud` exactly as the file
 * connector reads its file (`name` stands for the path in messages), then indexed, and
 * every kept row looked up by registration id and CRM id. Returns DG_OK with *nrows (rows
 * of this cloud) and *nregs (distinct registration ids), or the load error ("name:line:
 * ...": DG_EPARSE, DG_ETOOBIG, DG_ENOMEM). */
dg_err conn_file_parse(const char *name, const char *cloud, const char *buf, size_t len,
                       size_t *nrows, size_t *nregs, char *err, size_t errlen);

#endif
