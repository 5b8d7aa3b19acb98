/* cfg.h — the validated, immutable configuration snapshot.
 *
 * cfg_load() parses an INI file (inih, with a line-counting reader) into a struct cfg and
 * validates every key against a table (name, type, bounds, default). Every error is
 * collected as "path:line: message" and reported at once; any error means no snapshot.
 * `${NAME}` expands an environment variable (unset is an error, `${NAME:-default}` gives a
 * default); a value `@path` reads a secret file (refused if group- or world-writable,
 * warned if world-readable). Unknown sections and keys are errors.
 *
 * A snapshot never changes after load. gate/ publishes it (with the connectors built from
 * it) as one reference-counted runtime, swapped atomically on SIGHUP, so in-flight requests
 * finish on the snapshot they started with.
 * All strings in a snapshot are owned by it; all arrays are (ptr, count) pairs.
 */
#ifndef DG_CFG_H
#define DG_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "config/err.h"
#include "config/money.h"

#define CFG_NAME_MAX 64 /* section names, cloud keys, rule names */

typedef struct {
    char **v;
    size_t n;
} cfg_strlist;

typedef struct {
    char *raw;   /* the CRM's value as written in the INI (alias.<raw>) */
    size_t stage; /* index into the pipeline's stages */
} cfg_alias;

typedef struct cfg_pipeline {
    char *name;           /* "" for the default [pipeline], else NAME of [pipeline:NAME] */
    cfg_strlist stages;   /* in order */
    cfg_strlist won;      /* stage names (each also in stages) */
    cfg_strlist lost;     /* stage names: moves into them are never gated */
    int unknown_block;    /* unknown_stage = block (1, default) | allow (0) */
    cfg_alias *aliases;   /* in file order; matched case-insensitively */
    size_t naliases;
} cfg_pipeline;

typedef enum { CFG_LOOKUP_BLOCK = 0, CFG_LOOKUP_ALLOW, CFG_LOOKUP_RETRY } cfg_on_lookup_error;
typedef enum { CFG_MODE_ENFORCE = 0, CFG_MODE_REPORT } cfg_mode;
typedef enum { CFG_RULE_REGISTRATION = 0 } cfg_rule_type;

typedef struct {
    char *cloud;         /* cloud key */
    cfg_strlist states;  /* accepted states, compared case-insensitively */
} cfg_accept;

typedef struct cfg_rule {
    char *name;              /* NAME of [rule:NAME] */
    cfg_rule_type type;
    char *stage;             /* a stage name; must exist in every pipeline the rule covers */
    int all_pipelines;       /* pipelines = * (default) */
    cfg_strlist pipelines;   /* else: pipeline names ("" never appears; "default" names [pipeline]) */
    int clouds_deal;         /* clouds = deal (default) */
    cfg_strlist clouds;      /* else: the cloud keys to check */
    int require_clouds;      /* default 0 */
    int match_all;           /* match = all (1, default) | any (0) */
    cfg_accept *accept;      /* accept.<cloud> lists */
    size_t naccept;
    int require_link;        /* default 0 */
    int has_min_amount;      /* min_amount given */
    dg_money min_amount;     /* min_amount (currency: its own or [server] currency) */
    dg_money *min_amount_ccy; /* min_amount.<CCY> */
    size_t nmin_amount_ccy;
    cfg_on_lookup_error on_lookup_error; /* default block */
    int retry_window_s;      /* default 900 */
    cfg_mode mode;           /* default enforce */
    char *message;           /* template: {cloud}, {cloud_name}, {stage}, {deal}, {id}, {rule} */
} cfg_rule;

typedef enum {
    CFG_CONN_NONE = 0,
    CFG_CONN_FILE,
    CFG_CONN_ACE,
    CFG_CONN_PARTNER_CENTER,
    CFG_CONN_GCP
} cfg_connector;

typedef struct cfg_cloud {
    char *key;               /* KEY of [cloud:KEY] */
    char *name;              /* display name; default: the key */
    cfg_connector connector; /* required */
    char *endpoint;          /* ace, partner_center, gcp */
    char *region;            /* ace (default us-east-1) */
    char *catalog;           /* ace (default AWS) */
    char *access_key_id, *secret_access_key, *session_token; /* ace (secrets) */
    int timeout_ms;          /* default 2000 */
    int cache_ttl_s;         /* default 300 */
    int negative_cache_ttl_s; /* default 30 */
    char *token_url;         /* partner_center (default Azure AD v1); gcp with credentials:
                                overrides the key file's token_uri (NULL: use that) */
    char *client_id, *client_secret, *refresh_token; /* partner_center */
    char *path;              /* file: registrations CSV; relative paths (like data_dir and
                                @secret paths) resolve against the working directory */
    char *partner_id;        /* gcp */
    char *access_token;      /* gcp: a static bearer token (secret), or else */
    char *credentials;       /* gcp: service-account JSON key file (path; relative: working
                                directory); exactly one of access_token and credentials */
} cfg_cloud;

typedef struct {
    char *label; /* picklist label / property value (case-insensitive) */
    char *cloud; /* cloud key */
} cfg_map;

typedef struct {
    char *listen;            /* "127.0.0.1:8080" */
    int threads;             /* default 32 */
    int64_t max_body;        /* bytes, default 1m */
    int request_timeout_ms;  /* default 10000 */
    int decision_budget_ms;  /* default 5000 */
    char *data_dir;          /* default ./var (relative to the working directory) */
    char currency[4];        /* default USD */
    int retain_days;         /* 0 = keep forever */
} cfg_server;

typedef struct {
    cfg_strlist webhook_tokens, reader_tokens, comp_reader_tokens, desk_tokens;
    int open; /* [auth] open = yes (only valid with a loopback listen) */
} cfg_auth;

typedef struct {
    int has_tolerance;
    char *tolerance;          /* decimal string: money in each line's currency (default 0.01) */
    dg_rounding rounding;     /* default half_up */
    dg_rate_bare rate_format; /* default error (bare rates refused) */
    cfg_map *fees;            /* fee.<cloud> = 3%: label = cloud, cloud = rate text */
    size_t nfees;
    dg_rate *fee_rates;       /* parallel to fees */
    cfg_map *plans;           /* plan.<plan> = rate text: label = plan, cloud = rate text */
    size_t nplans;
    dg_rate *plan_rates;      /* parallel to plans; "default" is a plan name */
    int allow_uplift;         /* default 1 */
    cfg_map *columns;         /* column.<field> = <header>: label = field, cloud = header */
    size_t ncolumns;
} cfg_comp;

typedef struct {
    int present;
    cfg_map *clouds; /* cloud.<label> = key */
    size_t nclouds;
    int writeback;
    char *instance_url, *client_id, *client_secret, *api_version, *reason_field;
} cfg_salesforce;

typedef struct {
    int present;
    char *client_secret, *public_url;
    cfg_map *properties; /* property.<field> = <deal property>: label = field, cloud = property;
                            fields: id name account owner amount currency source clouds
                            pipeline stage registration.<cloud> */
    size_t nproperties;
    cfg_map *clouds;     /* cloud.<value> = key */
    size_t nclouds;
    int writeback;
    char *api_base, *token, *reason_property;
} cfg_hubspot;

/* [reverify]: the background re-verification of deals past the gate (gate/reverify.h). */
typedef struct {
    int enabled;    /* default 1 */
    int interval_s; /* a deal is re-checked at most this often; default 3600 */
    int batch;      /* deals re-checked per run (one run per interval_s); default 100 */
    int pause_ms;   /* between two deals of a run, to stay within rate limits; default 200 */
} cfg_reverify;

struct cfg {
    char *path;          /* the INI file as given */
    char version[17];    /* first 16 hex digits of the SHA-256 of the file's bytes */
    cfg_server server;
    cfg_auth auth;
    cfg_pipeline *pipelines; /* [0] is the default [pipeline] (always present) */
    size_t npipelines;
    cfg_rule *rules;
    size_t nrules;
    cfg_cloud *clouds;
    size_t nclouds;
    cfg_comp comp;
    cfg_salesforce salesforce;
    cfg_hubspot hubspot;
    cfg_reverify reverify;
    cfg_strlist warnings; /* "path:line: warning: ..." lines, printed at start */
};

/* Collected errors of one load: each "path:line: message". */
typedef struct {
    cfg_strlist lines;
} cfg_errors;

/* Loads and validates `path`. On success returns DG_OK and *out (caller frees with
 * cfg_free()). On failure returns DG_ECONFIG and fills errs with every error (caller frees
 * with cfg_errors_free()); *out is NULL. A missing file is one error "path: cannot open: ...". */
dg_err cfg_load(const char *path, struct cfg **out, cfg_errors *errs);

/* Same as cfg_load from an in-memory text; `name` is used as the path in messages and
 * relative paths resolve against the working directory. */
dg_err cfg_load_string(const char *name, const char *text, struct cfg **out, cfg_errors *errs);

void cfg_free(struct cfg *c);
void cfg_errors_free(cfg_errors *e);

/* Look-ups on a snapshot. Return NULL when absent. Borrowed pointers. */
const cfg_pipeline *cfg_pipeline_find(const struct cfg *c, const char *name); /* NULL/"" = default */
const cfg_cloud *cfg_cloud_find(const struct cfg *c, const char *key);
/* Index of stage `name` in p matched case-insensitively by stage name or alias; -1 if none. */
int cfg_stage_index(const cfg_pipeline *p, const char *name);

/* Reads a file that holds a secret (an `@file` value, a service-account key file): refused
 * when it is missing, not a regular file, group- or world-writable, larger than 64 KiB or
 * holds a NUL byte; a world-readable file is read with a warning in warn ("" if none).
 * Trailing newlines are stripped. `what` names the file in messages ("secret file"); they
 * name the path, never the contents. Returns 0 and *out (caller wipes and frees), or -1 with
 * the reason in err. */
int cfg_read_secret_file(const char *what, const char *path, char **out, char *warn,
                         size_t warnlen, char *err, size_t errlen);

/* Returns 1 if host of "addr:port" (or a URL's host) is a loopback address/name. */
int cfg_is_loopback_host(const char *hostport);

#endif
