/* test_dlog.c — the decision log: appends, idempotency, reads, deal state, counters, queries
 * with cursors, commission checks, concurrent batching, a real write fault, close flushing.
 *
 * Every test gets its own data dir (mkdtemp under /tmp). The write fault is real: the
 * process's RLIMIT_FSIZE is dropped to 0, so SQLite's WAL writes fail with EFBIG (this
 * works as root, where chmod would not stop a write), then restored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "gate/dlog.h"
#include "dlog_fixture.h"

#define DAY0_MS INT64_C(1790812800000) /* 2026-10-01T00:00:00Z */

/* ---- helpers ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    return dlog_fixture_open(state, "/tmp/dlog_test_XXXXXX");
}

/* A decision with test defaults; the caller overrides fields. Strings live in `buf`. */
typedef struct {
    dlog_decision d;
    char id[40];
    char json[256];
} tdec;

static void tdec_init(tdec *t, int n, const char *opp, const char *outcome, int64_t time_ms)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "dg_%026d", n);
    snprintf(t->json, sizeof t->json, "{\"decision_id\":\"%s\",\"outcome\":\"%s\"}", t->id,
             outcome);
    t->d.id = t->id;
    t->d.time_ms = time_ms;
    t->d.adapter = "stage";
    t->d.opp_id = opp;
    t->d.pipeline = "default";
    t->d.name = "Acme - Data Platform";
    t->d.account = "Acme Corp";
    t->d.owner = "jane@example.com";
    t->d.has_amount = 1;
    t->d.amount = 12000000;
    t->d.currency = "USD";
    t->d.clouds_json = "[\"aws\"]";
    t->d.from_stage = "Qualification";
    t->d.from_raw = "qualifiedtobuy";
    t->d.to_stage = "Demo";
    t->d.to_raw = "presentationscheduled";
    t->d.outcome = outcome;
    t->d.mode = "enforce";
    t->d.message = strcmp(outcome, "block") == 0 ? "Register this deal in AWS ACE." : "";
    t->d.reasons_json =
        strcmp(outcome, "block") == 0
            ? "[{\"rule\":\"r\",\"code\":\"registration_missing\",\"cloud\":\"aws\"},"
              "{\"rule\":\"r\",\"code\":\"registration_missing\",\"cloud\":\"azure\"}]"
            : "[]";
    t->d.warnings_json = "[]";
    t->d.registrations_json = "[]";
    t->d.config_version = "cfg1";
    t->d.latency_us = 1234;
    t->d.gated = 1;
    t->d.decision_json = t->json;
}

static dg_err append(dlog *l, const tdec *t)
{
    char err[256] = "";
    dg_err rc = dlog_append(l, &t->d, err, sizeof err);
    if (rc != DG_OK && rc != DG_EEXISTS) print_message("append %s: %s\n", t->id, err);
    return rc;
}

/* Runs a one-value integer SQL query against the log's file; -1 if no row. */
static int64_t sql_int(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/dealgate.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Decision ids of a query page, in order, into ids (up to max); returns the count and sets
 * *next to the next cursor (malloc'd) or NULL. */
static int page_ids(const char *json, const char *key, const char *idkey, char ids[][40], int max,
                    char **next)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsArray(arr));
    int n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, idkey);
        assert_true(cJSON_IsString(id));
        assert_true(n < max);
        snprintf(ids[n++], 40, "%s", id->valuestring);
    }
    cJSON *nc = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
    assert_non_null(nc);
    *next = NULL;
    if (cJSON_IsString(nc)) {
        *next = strdup(nc->valuestring);
    } else {
        assert_true(cJSON_IsNull(nc));
    }
    cJSON_Delete(j);
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_open_creates_dir_and_schema(void **state)
{
    (void)state;
    char base[64] = "/tmp/dlog_test_XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/var/log", base);
    dlog *l = NULL;
    char err[256] = "";
    assert_int_equal(dlog_open(dir, &l, err, sizeof err), DG_OK);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    char path[192];
    snprintf(path, sizeof path, "%s/dealgate.db", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);
    assert_int_equal(dlog_healthy(l), 1);
    dlog_close(l);

    assert_int_equal(sql_int(dir, "PRAGMA user_version"), 5); /* 5: unused indexes dropped */
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                                  " name IN ('decisions', 'deals', 'deal_stage_raw', 'daily',"
                                  " 'comp_checks', 'writebacks')"),
                     6);
    /* reopening an existing log migrates nothing and works */
    assert_int_equal(dlog_open(dir, &l, err, sizeof err), DG_OK);
    dlog_close(l);
    assert_int_equal(sql_int(dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    rm_dir(dir);
    snprintf(dir, sizeof dir, "%s/var", base);
    rmdir(dir);
    rmdir(base);
}

static void test_open_errors(void **state)
{
    (void)state;
    char base[64] = "/tmp/dlog_test_XXXXXX";
    assert_non_null(mkdtemp(base));
    char file[128];
    snprintf(file, sizeof file, "%s/plainfile", base);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    dlog *l = (dlog *)1;
    char err[256] = "";
    assert_int_equal(dlog_open(file, &l, err, sizeof err), DG_EIO);
    assert_null(l);
    assert_non_null(strstr(err, "not a directory"));

    /* a schema from a newer build is refused, not clobbered */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/newer", base);
    assert_int_equal(dlog_open(dir, &l, err, sizeof err), DG_OK);
    dlog_close(l);
    char path[192];
    snprintf(path, sizeof path, "%s/dealgate.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dlog_open(dir, &l, err, sizeof err), DG_EDB);
    assert_non_null(strstr(err, "newer"));

    assert_int_equal(dlog_open("", &l, err, sizeof err), DG_EINVAL);
    rm_dir(dir);
    unlink(file);
    rmdir(base);
}

static void test_append_get(void **state)
{
    fixture *f = *state;
    tdec t;
    tdec_init(&t, 1, "006A", "block", DAY0_MS + 1000);
    assert_int_equal(append(f->l, &t), DG_OK);
    char *json = NULL;
    assert_int_equal(dlog_get(f->l, t.id, &json), DG_OK);
    assert_string_equal(json, t.json);
    free(json);
    assert_int_equal(dlog_get(f->l, "dg_nope", &json), DG_ENOTFOUND);
    assert_null(json);
    assert_int_equal(dlog_healthy(f->l), 1);
    uint64_t batches = 0, rows = 0;
    dlog_stats(f->l, &batches, &rows);
    assert_int_equal(batches, 1);
    assert_int_equal(rows, 1);
    /* every column made it */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions WHERE adapter = 'stage'"
                                     " AND amount = 12000000 AND currency = 'USD' AND"
                                     " to_raw = 'presentationscheduled' AND latency_us = 1234"
                                     " AND gated = 1 AND config_version = 'cfg1'"
                                     " AND clouds = '[\"aws\"]' AND outcome = 'block'"),
                     1);
}

static void test_append_invalid(void **state)
{
    fixture *f = *state;
    tdec t;
    char err[256] = "";
    tdec_init(&t, 1, "006A", "allow", DAY0_MS);
    t.d.id = NULL;
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    tdec_init(&t, 1, "006A", "allow", DAY0_MS);
    t.d.decision_json = "{\"broken\":";
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "decision_json"));
    tdec_init(&t, 1, "006A", "maybe", DAY0_MS);
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    tdec_init(&t, 1, "006A", "allow", DAY0_MS);
    t.d.reasons_json = "{}";
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    /* the JSON columns are checked against the grammar, not just their first character */
    static const char *const bad[] = {"{\"a\":}",
                                      "{\"a\" 1}",
                                      "{\"a\":1,}",
                                      "{\"a\":1} x",
                                      "{\"a\":\"\x01\"}",
                                      "{\"a\":\"\\x\"}",
                                      "{\"a\":\"\\u12g4\"}",
                                      "{\"a\":01}",
                                      "{\"a\":1.}",
                                      "{\"a\":-}",
                                      "{\"a\":tru}",
                                      "{a:1}",
                                      "{\"a\":[1,2}",
                                      "{\"a\":\"x}",
                                      "{} {}",
                                      "{\"a\":1e}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tdec_init(&t, 1, "006A", "allow", DAY0_MS);
        t.d.decision_json = bad[i];
        assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    }
    char deep[1300];
    for (int i = 0; i < 600; i++) {
        deep[i] = '[';
        deep[1199 - i] = ']';
    }
    deep[1200] = '\0';
    tdec_init(&t, 1, "006A", "allow", DAY0_MS);
    t.d.clouds_json = deep;
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_EINVAL);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 0);
    /* and what the grammar allows is accepted */
    tdec_init(&t, 1, "006A", "allow", DAY0_MS);
    t.d.decision_json =
        " { \"decision_id\" : \"x\\u00e9\\n\\\"\" , \"n\":[-0.5e+3, 0, 12, true, false,"
        " null, {}, []], \"o\": {\"k\": \"\u00e9\"} } ";
    assert_int_equal(dlog_append(f->l, &t.d, err, sizeof err), DG_OK);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 1);
}

static void test_unique_event(void **state)
{
    fixture *f = *state;
    tdec a, b, c, n1, n2;
    tdec_init(&a, 1, "006A", "allow", DAY0_MS);
    a.d.event_id = "evt-1";
    a.d.body_hash = "aaaa";
    assert_int_equal(append(f->l, &a), DG_OK);

    tdec_init(&b, 2, "006A", "allow", DAY0_MS + 5);
    b.d.event_id = "evt-1";
    b.d.body_hash = "bbbb";
    char err[256] = "";
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EEXISTS);
    assert_non_null(strstr(err, "evt-1"));
    char *json = NULL;
    assert_int_equal(dlog_get(f->l, b.id, &json), DG_ENOTFOUND);
    /* nothing of the refused row reached the counters or the deal */
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE metric = 'decisions'"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT decisions FROM deals WHERE opp_id = '006A'"), 1);

    /* the same event id under another adapter is another event */
    tdec_init(&c, 3, "006A", "allow", DAY0_MS + 6);
    c.d.adapter = "hubspot";
    c.d.event_id = "evt-1";
    assert_int_equal(append(f->l, &c), DG_OK);

    /* no event id: never a conflict */
    tdec_init(&n1, 4, "006A", "allow", DAY0_MS + 7);
    tdec_init(&n2, 5, "006A", "allow", DAY0_MS + 8);
    assert_int_equal(append(f->l, &n1), DG_OK);
    assert_int_equal(append(f->l, &n2), DG_OK);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 4);
    assert_int_equal(dlog_healthy(f->l), 1);
}

/* A write-back job rides with its decision: queued in the same transaction, once; a replay
 * (the event id logged already) queues nothing; half a job is refused. */
static void test_writeback_with_decision(void **state)
{
    fixture *f = *state;
    static const char payload[] = "{\"opportunity_id\":\"006W\",\"stage_value\":\"q\","
                                  "\"blocked_value\":\"d\",\"reason\":\"Register it.\"}";
    tdec a, b, c;
    tdec_init(&a, 1, "006W", "block", DAY0_MS);
    a.d.adapter = "salesforce";
    a.d.event_id = "evt-w";
    a.d.writeback_crm = "salesforce";
    a.d.writeback_payload_json = payload;
    assert_int_equal(append(f->l, &a), DG_OK);
    char *json = NULL;
    assert_int_equal(dlog_wb_get(f->l, a.id, &json), DG_OK);
    cJSON *wb = cJSON_Parse(json);
    free(json);
    assert_non_null(wb);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(wb, "state")->valuestring, "pending");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(wb, "crm")->valuestring, "salesforce");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(wb, "stage_value")->valuestring, "q");
    cJSON_Delete(wb);
    assert_int_equal(dlog_wb_due(f->l, DAY0_MS), 1);

    /* the same event again (a CRM retry racing the first answer): refused, no second job */
    tdec_init(&b, 2, "006W", "block", DAY0_MS + 1);
    b.d.adapter = "salesforce";
    b.d.event_id = "evt-w";
    b.d.writeback_crm = "salesforce";
    b.d.writeback_payload_json = payload;
    char err[256] = "";
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EEXISTS);
    assert_int_equal(dlog_wb_get(f->l, b.id, &json), DG_ENOTFOUND);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM writebacks"), 1);

    /* a decision without one queues none */
    tdec_init(&c, 3, "006W", "allow", DAY0_MS + 2);
    assert_int_equal(append(f->l, &c), DG_OK);
    assert_int_equal(dlog_wb_get(f->l, c.id, &json), DG_ENOTFOUND);

    /* half a job, an unknown CRM, or a payload that is not an object: refused, nothing logged */
    tdec_init(&b, 4, "006W", "block", DAY0_MS + 3);
    b.d.writeback_crm = "salesforce";
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EINVAL);
    b.d.writeback_crm = NULL;
    b.d.writeback_payload_json = payload;
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EINVAL);
    b.d.writeback_crm = "pipedrive";
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EINVAL);
    b.d.writeback_crm = "hubspot";
    b.d.writeback_payload_json = "[1]";
    assert_int_equal(dlog_append(f->l, &b.d, err, sizeof err), DG_EINVAL);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 2);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM writebacks"), 1);
}

static void test_find_event(void **state)
{
    fixture *f = *state;
    tdec a;
    tdec_init(&a, 1, "006A", "block", DAY0_MS);
    a.d.adapter = "salesforce";
    a.d.event_id = "sf-42";
    a.d.body_hash = "0123abcd";
    assert_int_equal(append(f->l, &a), DG_OK);
    char *json = NULL, *hash = NULL;
    assert_int_equal(dlog_find_event(f->l, "salesforce", "sf-42", &json, &hash), DG_OK);
    assert_string_equal(json, a.json);
    assert_string_equal(hash, "0123abcd");
    free(json);
    free(hash);
    assert_int_equal(dlog_find_event(f->l, "stage", "sf-42", &json, &hash), DG_ENOTFOUND);
    assert_null(json);
    assert_null(hash);
    assert_int_equal(dlog_find_event(f->l, "salesforce", "sf-43", &json, NULL), DG_ENOTFOUND);
}

/* The in-memory filters that let reads skip keys never logged are rebuilt at open: after a
 * reopen, events, deals and their raw stage values are found again, unknown ones not. */
static void test_reopen_finds_keys(void **state)
{
    fixture *f = *state;
    tdec a;
    tdec_init(&a, 1, "006K", "allow", DAY0_MS);
    a.d.adapter = "hubspot";
    a.d.event_id = "cb-7";
    a.d.body_hash = "beef";
    assert_int_equal(append(f->l, &a), DG_OK);
    assert_int_equal(dlog_note_retry(f->l, "006RETRY", 1790812800), DG_OK);
    dlog_close(f->l);
    char err[256] = "";
    assert_int_equal(dlog_open(f->dir, &f->l, err, sizeof err), DG_OK);
    char *json = NULL, *hash = NULL, *stage = NULL, *raw = NULL;
    assert_int_equal(dlog_find_event(f->l, "hubspot", "cb-7", &json, &hash), DG_OK);
    assert_string_equal(json, a.json);
    assert_string_equal(hash, "beef");
    free(json);
    free(hash);
    assert_int_equal(dlog_find_event(f->l, "hubspot", "cb-8", &json, NULL), DG_ENOTFOUND);
    assert_int_equal(dlog_deal_state(f->l, "006K", &stage, &raw, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    assert_string_equal(raw, "presentationscheduled");
    free(stage);
    free(raw);
    assert_int_equal(dlog_stage_raw(f->l, "006K", "Demo", &raw), DG_OK);
    assert_string_equal(raw, "presentationscheduled");
    free(raw);
    int64_t retry = 0;
    assert_int_equal(dlog_deal_state(f->l, "006RETRY", &stage, &raw, &retry), DG_OK);
    assert_null(stage);
    assert_int_equal(retry, 1790812800);
    assert_int_equal(dlog_deal_state(f->l, "006NONE", &stage, &raw, &retry), DG_ENOTFOUND);
    /* a deal first seen after the reopen is found at once */
    tdec_init(&a, 2, "006NEW", "allow", DAY0_MS + 1);
    assert_int_equal(append(f->l, &a), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006NEW", &stage, NULL, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    free(stage);
}

static void test_find_recent_body(void **state)
{
    fixture *f = *state;
    tdec a, b, other;
    tdec_init(&a, 1, "006H", "block", DAY0_MS);
    a.d.adapter = "hubspot";
    a.d.body_hash = "h1";
    tdec_init(&b, 2, "006H", "allow", DAY0_MS + 60000);
    b.d.adapter = "hubspot";
    b.d.body_hash = "h1";
    tdec_init(&other, 3, "006X", "allow", DAY0_MS + 120000);
    other.d.body_hash = "h1";
    assert_int_equal(append(f->l, &a), DG_OK);
    assert_int_equal(append(f->l, &b), DG_OK);
    assert_int_equal(append(f->l, &other), DG_OK);

    char *json = NULL;
    /* the newest match in the window */
    assert_int_equal(dlog_find_recent_body(f->l, "006H", "h1", DAY0_MS - 600000, &json), DG_OK);
    assert_string_equal(json, b.json);
    free(json);
    /* the window bound is inclusive */
    assert_int_equal(dlog_find_recent_body(f->l, "006H", "h1", DAY0_MS + 60000, &json), DG_OK);
    assert_string_equal(json, b.json);
    free(json);
    /* outside the window */
    assert_int_equal(dlog_find_recent_body(f->l, "006H", "h1", DAY0_MS + 60001, &json),
                     DG_ENOTFOUND);
    assert_null(json);
    /* another body, another deal */
    assert_int_equal(dlog_find_recent_body(f->l, "006H", "h2", 0, &json), DG_ENOTFOUND);
    assert_int_equal(dlog_find_recent_body(f->l, "006Y", "h1", 0, &json), DG_ENOTFOUND);
}

/* The checkpointer copies the WAL back and starts it over: however much is written, the WAL
 * stays near DLOG_CKPT_FRAMES frames (16,000 of 4 KiB, about 66 MB). Without checkpoints this
 * test's writes would leave a WAL of well over 100 MB. */
static void test_wal_is_checkpointed_and_started_over(void **state)
{
    fixture *f = *state;
    static char json[3000];
    char wal[128];
    snprintf(wal, sizeof wal, "%s/dealgate.db-wal", f->dir);
    off_t peak = 0;
    for (int n = 1; n <= 6000; n++) {
        tdec t;
        char opp[32], id[40];
        snprintf(opp, sizeof opp, "006C%08d", n * 7919 % 100003); /* deals all over the tree */
        tdec_init(&t, n, opp, n % 3 ? "allow" : "block", DAY0_MS + n);
        snprintf(id, sizeof id, "%s", t.id);
        int k = snprintf(json, sizeof json, "{\"decision_id\":\"%s\",\"pad\":\"", id);
        memset(json + k, 'x', sizeof json - (size_t)k - 3);
        memcpy(json + sizeof json - 3, "\"}", 3);
        t.d.decision_json = json;
        assert_int_equal(append(f->l, &t), DG_OK);
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > peak) peak = sb.st_size;
    }
    print_message("6000 decisions: WAL peak %lld bytes\n", (long long)peak);
    assert_true(peak > 0);
    assert_true(peak < 90LL * 1024 * 1024);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 6000);
}

static void test_deal_state_and_stage_raw(void **state)
{
    fixture *f = *state;
    char *stage = NULL, *raw = NULL;
    int64_t retry = -1;
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, &raw, &retry), DG_ENOTFOUND);
    assert_null(stage);
    assert_int_equal(retry, 0);

    tdec t1, t2, t3, old;
    tdec_init(&t1, 1, "006D", "allow", DAY0_MS); /* Qualification -> Demo, allowed */
    assert_int_equal(append(f->l, &t1), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, &raw, &retry), DG_OK);
    assert_string_equal(stage, "Demo");
    assert_string_equal(raw, "presentationscheduled");
    assert_int_equal(retry, 0);
    free(stage);
    free(raw);

    /* a blocked move keeps the deal where it came from */
    tdec_init(&t2, 2, "006D", "block", DAY0_MS + 1000);
    t2.d.from_stage = "Demo";
    t2.d.from_raw = "presentationscheduled";
    t2.d.to_stage = "Proposal";
    t2.d.to_raw = "decisionmakerboughtin";
    assert_int_equal(append(f->l, &t2), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, NULL, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    free(stage);
    assert_int_equal(sql_int(f->dir, "SELECT blocked FROM deals WHERE opp_id = '006D'"), 1);

    /* a blocked move with no from_stage leaves the stage as it was */
    tdec_init(&t3, 3, "006D", "block", DAY0_MS + 2000);
    t3.d.from_stage = NULL;
    t3.d.from_raw = NULL;
    t3.d.to_stage = "Negotiation";
    t3.d.to_raw = "Contract Sent";
    assert_int_equal(append(f->l, &t3), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, &raw, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    assert_string_equal(raw, "presentationscheduled");
    free(stage);
    free(raw);

    /* from_stage taken from the log (the CRM sent none): the raw value is kept */
    tdec t3b;
    tdec_init(&t3b, 6, "006D", "block", DAY0_MS + 2500);
    t3b.d.from_stage = "Demo";
    t3b.d.from_raw = NULL;
    t3b.d.to_stage = "Proposal";
    assert_int_equal(append(f->l, &t3b), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, &raw, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    assert_string_equal(raw, "presentationscheduled");
    free(stage);
    free(raw);

    /* an older decision arriving late does not move the current state */
    tdec_init(&old, 4, "006D", "allow", DAY0_MS - 5000);
    old.d.to_stage = "Prospecting";
    old.d.to_raw = "appointmentscheduled";
    old.d.owner = "late@example.com";
    assert_int_equal(append(f->l, &old), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006D", &stage, NULL, NULL), DG_OK);
    assert_string_equal(stage, "Demo");
    free(stage);
    assert_int_equal(sql_int(f->dir, "SELECT blocked FROM deals WHERE opp_id = '006D'"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM deals WHERE owner = 'jane@example.com'"),
                     1);
    /* ... but it is the first gated move */
    assert_int_equal(sql_int(f->dir, "SELECT first_gated_ms FROM deals"), DAY0_MS - 5000);
    assert_int_equal(sql_int(f->dir, "SELECT first_gated_outcome = 'allow' FROM deals"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT first_allowed_ms FROM deals"), DAY0_MS - 5000);
    assert_int_equal(sql_int(f->dir, "SELECT decisions FROM deals"), 5);
    assert_int_equal(sql_int(f->dir, "SELECT last_time_ms FROM deals"), DAY0_MS + 2500);

    /* raw values per stage: the last one each stage arrived with, from either side */
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Demo", &raw), DG_OK);
    assert_string_equal(raw, "presentationscheduled");
    free(raw);
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Qualification", &raw), DG_OK);
    assert_string_equal(raw, "qualifiedtobuy");
    free(raw);
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Negotiation", &raw), DG_OK);
    assert_string_equal(raw, "Contract Sent");
    free(raw);
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Closed Won", &raw), DG_ENOTFOUND);
    assert_null(raw);
    assert_int_equal(dlog_stage_raw(f->l, "006Z", "Demo", &raw), DG_ENOTFOUND);

    tdec t5;
    tdec_init(&t5, 5, "006D", "allow", DAY0_MS + 3000);
    t5.d.to_stage = "Demo";
    t5.d.to_raw = "demo_custom_id";
    assert_int_equal(append(f->l, &t5), DG_OK);
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Demo", &raw), DG_OK);
    assert_string_equal(raw, "demo_custom_id");
    free(raw);
    assert_int_equal(sql_int(f->dir, "SELECT blocked FROM deals WHERE opp_id = '006D'"), 0);

    /* one stage on both sides with two raw values (a pipeline change in the CRM): the value
     * the move arrived with wins; both sides in one decision write one value per stage */
    tdec t6;
    tdec_init(&t6, 60, "006D", "allow", DAY0_MS + 4000);
    t6.d.from_stage = "Demo";
    t6.d.from_raw = "demo_custom_id";
    t6.d.to_stage = "Demo";
    t6.d.to_raw = "presentationscheduled_2";
    assert_int_equal(append(f->l, &t6), DG_OK);
    assert_int_equal(dlog_stage_raw(f->l, "006D", "Demo", &raw), DG_OK);
    assert_string_equal(raw, "presentationscheduled_2");
    free(raw);
    /* Demo, Qualification, Proposal, Negotiation, Prospecting */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM deal_stage_raw WHERE opp_id = '006D'"),
                     5);
}

static void test_won_lost_and_daily(void **state)
{
    fixture *f = *state;
    tdec a, b, w, x;
    tdec_init(&a, 1, "006W", "block", DAY0_MS + 10);
    tdec_init(&b, 2, "006W", "allow", DAY0_MS + 20);
    b.d.warnings_json =
        "[{\"code\":\"registration_unlinked\"},{\"code\":\"registration_unlinked\"}]";
    tdec_init(&w, 3, "006W", "allow", DAY0_MS + 86400000 + 5);
    w.d.from_stage = "Negotiation";
    w.d.to_stage = "Closed Won";
    w.d.to_raw = "closedwon";
    w.d.won = 1;
    w.d.gated = 0;
    assert_int_equal(append(f->l, &a), DG_OK);
    assert_int_equal(append(f->l, &b), DG_OK);
    assert_int_equal(append(f->l, &w), DG_OK);

    assert_int_equal(sql_int(f->dir, "SELECT won_ms FROM deals"), DAY0_MS + 86400000 + 5);
    assert_int_equal(sql_int(f->dir, "SELECT first_gated_outcome = 'block' FROM deals"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT first_gated_ms FROM deals"), DAY0_MS + 10);
    assert_int_equal(sql_int(f->dir, "SELECT first_allowed_ms FROM deals"), DAY0_MS + 20);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE day = '2026-10-01' AND"
                                     " metric = 'decisions'"),
                     2);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE day = '2026-10-01' AND"
                                     " metric = 'outcome' AND key = 'block'"),
                     1);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE day = '2026-10-01' AND"
                                     " metric = 'gated' AND key = 'allow'"),
                     1);
    /* two registration_missing reasons in one decision count once */
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE day = '2026-10-01' AND"
                                     " metric = 'reason' AND key = 'registration_missing'"),
                     1);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE metric = 'warning' AND"
                                     " key = 'registration_unlinked'"),
                     1);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE day = '2026-10-02' AND"
                                     " metric = 'won'"),
                     1);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM daily WHERE day = '2026-10-02' AND"
                                     " metric = 'gated'"),
                     0);

    /* reopened and lost: won time cleared, lost time set */
    tdec_init(&x, 4, "006W", "allow", DAY0_MS + 2 * 86400000);
    x.d.from_stage = "Closed Won";
    x.d.to_stage = "Closed Lost";
    x.d.lost = 1;
    x.d.gated = 0;
    assert_int_equal(append(f->l, &x), DG_OK);
    assert_int_equal(sql_int(f->dir, "SELECT won_ms FROM deals"), -2);
    assert_int_equal(sql_int(f->dir, "SELECT lost_ms FROM deals"), DAY0_MS + 2 * 86400000);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE metric = 'lost'"), 1);
}

static void test_retry_since(void **state)
{
    fixture *f = *state;
    int64_t retry = -1;
    char *stage = (char *)"x";
    /* a deal known only by a retry answer */
    assert_int_equal(dlog_note_retry(f->l, "006R", 1000), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006R", &stage, NULL, &retry), DG_OK);
    assert_null(stage);
    assert_int_equal(retry, 1000);
    /* the first retry since the last decision is kept */
    assert_int_equal(dlog_note_retry(f->l, "006R", 1500), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006R", NULL, NULL, &retry), DG_OK);
    assert_int_equal(retry, 1000);
    /* a logged decision clears it */
    tdec t;
    tdec_init(&t, 1, "006R", "block", DAY0_MS);
    assert_int_equal(append(f->l, &t), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006R", NULL, NULL, &retry), DG_OK);
    assert_int_equal(retry, 0);
    assert_int_equal(dlog_note_retry(f->l, "006R", 2000), DG_OK);
    assert_int_equal(dlog_deal_state(f->l, "006R", &stage, NULL, &retry), DG_OK);
    assert_int_equal(retry, 2000);
    assert_string_equal(stage, "Qualification");
    free(stage);
    uint64_t rows = 0;
    dlog_stats(f->l, NULL, &rows);
    assert_int_equal(rows, 1); /* retry notes are not rows */
    assert_int_equal(dlog_note_retry(f->l, "", 5), DG_EINVAL);
}

static void test_query(void **state)
{
    fixture *f = *state;
    /* 9 decisions: times 100..900 s; #4 and #5 share a time (id breaks the tie) */
    static const struct {
        const char *opp, *owner, *outcome;
        int64_t t;
    } rows[] = {
        {"006Q1", "ann@x.com", "allow", 100}, {"006Q2", "bob@x.com", "block", 200},
        {"006Q1", "ann@x.com", "block", 300}, {"006Q3", "bob@x.com", "allow", 400},
        {"006Q2", "ann@x.com", "block", 400}, {"006Q3", "cid@x.com", "allow", 600},
        {"006Q1", "bob@x.com", "block", 700}, {"006Q2", "ann@x.com", "allow", 800},
        {"006Q3", "bob@x.com", "block", 900},
    };
    tdec t[9];
    for (int i = 0; i < 9; i++) {
        tdec_init(&t[i], i + 1, rows[i].opp, rows[i].outcome, DAY0_MS + rows[i].t * 1000);
        t[i].d.owner = rows[i].owner;
        assert_int_equal(append(f->l, &t[i]), DG_OK);
    }
    char *json = NULL, *next = NULL, err[256] = "";
    char ids[16][40];

    /* everything, newest first; the tie at 400 s goes to the larger id */
    assert_int_equal(dlog_query(f->l, NULL, &json, err, sizeof err), DG_OK);
    int n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 9);
    assert_null(next);
    const int order[9] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    for (int i = 0; i < 9; i++)
        assert_string_equal(ids[i], t[order[i] - 1].id);

    /* pages of 2 across the tie, following the cursor */
    dlog_filter q = {.limit = 2};
    int seen = 0, pages = 0;
    char *cur = NULL;
    do {
        q.cursor = cur;
        assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
        n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
        free(json);
        free(cur);
        cur = next;
        for (int i = 0; i < n; i++)
            assert_string_equal(ids[i], t[order[seen + i] - 1].id);
        seen += n;
        pages++;
    } while (cur != NULL);
    assert_int_equal(seen, 9);
    assert_int_equal(pages, 5);

    /* exactly full last page: no next cursor */
    q = (dlog_filter){.limit = 3, .outcome = "allow"}; /* 4 allows: 3 + 1 */
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 3);
    assert_non_null(next);
    q.cursor = next;
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    free(next);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], t[0].id);
    assert_null(next);
    q = (dlog_filter){.limit = 4, .outcome = "allow"};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 4);
    assert_null(next);

    /* filters combine */
    q = (dlog_filter){.outcome = "block", .owner = "bob@x.com"};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], t[8].id);
    assert_string_equal(ids[1], t[6].id);
    assert_string_equal(ids[2], t[1].id);

    q = (dlog_filter){.opportunity = "006Q1", .since_ms = DAY0_MS + 300000};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], t[6].id);
    assert_string_equal(ids[1], t[2].id);

    q = (dlog_filter){.opportunity = "006Q2", .outcome = "allow", .owner = "ann@x.com"};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, 16, &next);
    free(json);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], t[7].id);

    q = (dlog_filter){.owner = "nobody@x.com"};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    assert_string_equal(json, "{\"decisions\":[],\"next_cursor\":null}");
    free(json);

    /* malformed cursors */
    static const char *const bad[] = {"!!!",        "A", "", "bm9jb2xvbg", /* "nocolon" */
                                      "LTE6ZGdfMQ",                        /* "-1:dg_1" */
                                      "MTIzOg",                            /* "123:" */
                                      "eHl6OmRnXzE"};                      /* "xyz:dg_1" */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q = (dlog_filter){.cursor = bad[i]};
        json = (char *)"x";
        err[0] = '\0';
        assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_EINVAL);
        assert_null(json);
        assert_string_equal(err, "invalid cursor");
    }
    char longcur[300];
    memset(longcur, 'A', sizeof longcur - 1);
    longcur[sizeof longcur - 1] = '\0';
    q = (dlog_filter){.cursor = longcur};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_EINVAL);
}

static void test_query_limits(void **state)
{
    fixture *f = *state;
    enum { N = 520 };
    /* one batch of appends from one thread is slow-ish; use several ids on one time */
    for (int i = 0; i < N; i++) {
        tdec t;
        tdec_init(&t, i + 1, "006L", "allow", DAY0_MS + i);
        assert_int_equal(append(f->l, &t), DG_OK);
    }
    char *json = NULL, *next = NULL, err[256];
    static char ids[N][40];
    dlog_filter q = {0};
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    int n = page_ids(json, "decisions", "decision_id", ids, N, &next);
    free(json);
    assert_int_equal(n, 50);
    assert_non_null(next);
    free(next);
    q.limit = 100000;
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "decisions", "decision_id", ids, N, &next);
    free(json);
    assert_int_equal(n, 500);
    assert_non_null(next);
    q.cursor = next;
    assert_int_equal(dlog_query(f->l, &q, &json, err, sizeof err), DG_OK);
    free(next);
    n = page_ids(json, "decisions", "decision_id", ids, N, &next);
    free(json);
    assert_int_equal(n, 20);
    assert_null(next);
}

static void test_comp(void **state)
{
    fixture *f = *state;
    dlog_comp_line lines[3] = {
        {.id = "cc_1",
         .time_ms = DAY0_MS + 1,
         .batch_id = "b1",
         .deal_id = "D1",
         .rep = "ann",
         .channel = "marketplace",
         .cloud = "aws",
         .currency = "USD",
         .violation = 1,
         .codes_json = "[\"fee_deducted_from_base\"]",
         .shortfall = "300.00",
         .result_json = "{\"deal_id\":\"D1\",\"shortfall\":\"300.00\"}"},
        {.id = "cc_2",
         .time_ms = DAY0_MS + 2,
         .batch_id = "b1",
         .deal_id = "D2",
         .rep = "bob",
         .channel = "direct",
         .violation = 0,
         .codes_json = "[]",
         .shortfall = "0.00",
         .result_json = "{\"deal_id\":\"D2\",\"id\":\"stale\"}"},
        {.id = "cc_3",
         .time_ms = DAY0_MS + 3,
         .batch_id = "b1",
         .deal_id = "D3",
         .rep = "ann",
         .channel = "direct",
         .violation = 0,
         .codes_json = "[]",
         .shortfall = "0.00",
         .result_json = "{\"deal_id\":\"D3\"}"},
    };
    char err[256] = "";
    assert_int_equal(dlog_append_comp(f->l, lines, 3, err, sizeof err), DG_OK);
    assert_int_equal(dlog_append_comp(f->l, lines, 0, err, sizeof err), DG_OK);
    /* a duplicate id fails the whole request, nothing of it is written */
    dlog_comp_line dup[2] = {lines[0], lines[0]};
    dup[0].id = "cc_4";
    assert_int_equal(dlog_append_comp(f->l, dup, 2, err, sizeof err), DG_EDB);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM comp_checks"), 3);
    assert_int_equal(dlog_healthy(f->l), 1);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE metric = 'comp_lines'"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT count FROM daily WHERE metric = 'comp_violations'"),
                     1);

    char *json = NULL, *next = NULL;
    char ids[8][40];
    assert_int_equal(dlog_query_comp(f->l, NULL, &json, err, sizeof err), DG_OK);
    int n = page_ids(json, "checks", "id", ids, 8, &next);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "cc_3");
    assert_string_equal(ids[1], "cc_2"); /* the stored "id" is replaced */
    assert_string_equal(ids[2], "cc_1");
    assert_null(next);
    cJSON *j = cJSON_Parse(json);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "checks"), 2);
    assert_string_equal(cJSON_GetObjectItem(first, "time")->valuestring,
                        "2026-10-01T00:00:00.001Z");
    assert_string_equal(cJSON_GetObjectItem(first, "shortfall")->valuestring, "300.00");
    cJSON_Delete(j);
    free(json);

    dlog_comp_filter q = {.rep = "ann"};
    assert_int_equal(dlog_query_comp(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "checks", "id", ids, 8, &next);
    free(json);
    assert_int_equal(n, 2);
    q = (dlog_comp_filter){.violations_only = 1};
    assert_int_equal(dlog_query_comp(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "checks", "id", ids, 8, &next);
    free(json);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "cc_1");
    q = (dlog_comp_filter){.since_ms = DAY0_MS + 2, .limit = 1};
    assert_int_equal(dlog_query_comp(f->l, &q, &json, err, sizeof err), DG_OK);
    n = page_ids(json, "checks", "id", ids, 8, &next);
    free(json);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "cc_3");
    assert_non_null(next);
    q.cursor = next;
    assert_int_equal(dlog_query_comp(f->l, &q, &json, err, sizeof err), DG_OK);
    free(next);
    n = page_ids(json, "checks", "id", ids, 8, &next);
    free(json);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "cc_2");
    assert_null(next);
    q = (dlog_comp_filter){.cursor = "%%%"};
    assert_int_equal(dlog_query_comp(f->l, &q, &json, err, sizeof err), DG_EINVAL);
    assert_string_equal(err, "invalid cursor");
}

/* ---- concurrency ------------------------------------------------------------------------ */

enum { THREADS = 8, PER_THREAD = 200 };

typedef struct {
    dlog *l;
    int t;
    int failures;
} worker;

static void *append_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        tdec t;
        int n = w->t * PER_THREAD + i + 1;
        char opp[32], ev[32];
        snprintf(opp, sizeof opp, "006T%d", n % 37);
        snprintf(ev, sizeof ev, "ev-%d", n);
        tdec_init(&t, n, opp, i % 3 ? "allow" : "block", DAY0_MS + n);
        if (i % 2) t.d.event_id = ev;
        char err[256];
        if (dlog_append(w->l, &t.d, err, sizeof err) != DG_OK) {
            w->failures++;
            continue;
        }
        char *json = NULL;
        if (dlog_get(w->l, t.id, &json) != DG_OK || strcmp(json, t.json) != 0) w->failures++;
        free(json);
    }
    return NULL;
}

static void test_concurrent_batches(void **state)
{
    fixture *f = *state;
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){f->l, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, append_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    uint64_t batches = 0, rows = 0;
    dlog_stats(f->l, &batches, &rows);
    print_message("%d appends in %" PRIu64 " batches\n", THREADS * PER_THREAD, batches);
    assert_int_equal(rows, THREADS * PER_THREAD);
    assert_true(batches > 0);
    assert_true(batches < rows);
    assert_int_equal(dlog_queue_depth(f->l), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), THREADS * PER_THREAD);
    assert_int_equal(sql_int(f->dir, "SELECT sum(decisions) FROM deals"), THREADS * PER_THREAD);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM deals"), 37);
    assert_int_equal(sql_int(f->dir, "SELECT sum(count) FROM daily WHERE metric = 'outcome'"),
                     THREADS * PER_THREAD);
}

/* ---- a real write fault ----------------------------------------------------------------- */

static void test_write_fault_and_recovery(void **state)
{
    fixture *f = *state;
    tdec a, b, c;
    tdec_init(&a, 1, "006F", "allow", DAY0_MS);
    assert_int_equal(append(f->l, &a), DG_OK);

    /* No file of this process may grow past 0 bytes: every WAL write fails with EFBIG
     * (SIGXFSZ ignored), as it would on a full or read-only disk. */
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 0;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    tdec_init(&b, 2, "006F", "block", DAY0_MS + 1);
    char err[256] = "";
    dg_err rc = dlog_append(f->l, &b.d, err, sizeof err);
    int healthy = dlog_healthy(f->l);
    dg_err rc_retry = dlog_note_retry(f->l, "006F", 77);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, DG_EDB);
    assert_non_null(strstr(err, "decision log"));
    assert_int_equal(healthy, 0);
    assert_int_equal(rc_retry, DG_EDB);
    assert_int_equal(dlog_healthy(f->l), 0);
    char *json = NULL;
    assert_int_equal(dlog_get(f->l, b.id, &json), DG_ENOTFOUND);
    /* reads keep working while writes fail */
    assert_int_equal(dlog_get(f->l, a.id, &json), DG_OK);
    free(json);

    /* the disk is back: the next write succeeds by itself */
    tdec_init(&c, 3, "006F", "allow", DAY0_MS + 2);
    assert_int_equal(append(f->l, &c), DG_OK);
    assert_int_equal(dlog_healthy(f->l), 1);
    assert_int_equal(dlog_get(f->l, c.id, &json), DG_OK);
    free(json);
    assert_int_equal(append(f->l, &b), DG_OK); /* the failed one can be written again */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT decisions FROM deals"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT retry_since FROM deals"), 0);
}

/* ---- close flushes ---------------------------------------------------------------------- */

typedef struct {
    dlog *l;
    int n;
    atomic_int started;
    dg_err rc;
} closer_arg;

static void *one_append(void *arg)
{
    closer_arg *c = arg;
    tdec t;
    tdec_init(&t, c->n, "006C", "allow", DAY0_MS + c->n);
    atomic_store(&c->started, 1);
    char err[256];
    c->rc = dlog_append(c->l, &t.d, err, sizeof err);
    return NULL;
}

static void *do_close(void *arg)
{
    dlog_close(arg);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int wait_depth(dlog *l, size_t want)
{
    for (int i = 0; i < 400; i++) {
        if (dlog_queue_depth(l) == want) return 1;
        sleep_ms(5);
    }
    return 0;
}

static void test_close_flushes(void **state)
{
    fixture *f = *state;
    /* Hold SQLite's write lock from another connection: the writer takes the first request
     * and waits in BEGIN IMMEDIATE (busy_timeout), so the next ones stay queued. */
    char path[128];
    snprintf(path, sizeof path, "%s/dealgate.db", f->dir);
    sqlite3 *blk = NULL;
    assert_int_equal(sqlite3_open(path, &blk), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blk, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    enum { N = 8 };
    static closer_arg args[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        args[i].l = f->l;
        args[i].n = i + 1;
        atomic_init(&args[i].started, 0);
        args[i].rc = DG_EINTERNAL;
    }
    assert_int_equal(pthread_create(&th[0], NULL, one_append, &args[0]), 0);
    while (!atomic_load(&args[0].started))
        sleep_ms(1);
    sleep_ms(50);
    assert_true(wait_depth(f->l, 0)); /* the writer holds it, blocked on the lock */
    for (int i = 1; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, one_append, &args[i]), 0);
    assert_true(wait_depth(f->l, N - 1));

    pthread_t closer;
    assert_int_equal(pthread_create(&closer, NULL, do_close, f->l), 0);
    sleep_ms(50);
    assert_int_equal(sqlite3_exec(blk, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blk);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, DG_OK);
    }
    pthread_join(closer, NULL);
    f->l = NULL; /* closed */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), N);
    assert_int_equal(sql_int(f->dir, "SELECT decisions FROM deals"), N);
}

/* A decision that fails after its row was written (here a trigger refuses its raw stage
 * values) sends its batch round again with a savepoint per request: it alone is undone,
 * counters included, and the others of its batch commit. */
typedef struct {
    dlog *l;
    int n;
    const char *opp;
    atomic_int started;
    dg_err rc;
} opp_arg;

static void *opp_append(void *arg)
{
    opp_arg *c = arg;
    tdec t;
    tdec_init(&t, c->n, c->opp, "allow", DAY0_MS + c->n);
    atomic_store(&c->started, 1);
    char err[256];
    c->rc = dlog_append(c->l, &t.d, err, sizeof err);
    return NULL;
}

static void test_late_failure_redo(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/dealgate.db", f->dir);
    sqlite3 *blk = NULL;
    assert_int_equal(sqlite3_open(path, &blk), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blk,
                                  "CREATE TRIGGER boom BEFORE INSERT ON deal_stage_raw"
                                  " WHEN NEW.opp_id = '006BOOM' BEGIN SELECT RAISE(ABORT, 'boom');"
                                  " END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    /* hold the write lock: the first request waits in BEGIN, the next three form one batch */
    assert_int_equal(sqlite3_exec(blk, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    static opp_arg args[4] = {{.n = 1, .opp = "006R1"},
                              {.n = 2, .opp = "006R2"},
                              {.n = 3, .opp = "006BOOM"},
                              {.n = 4, .opp = "006R3"}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i].l = f->l;
        atomic_init(&args[i].started, 0);
        args[i].rc = DG_EINTERNAL;
    }
    assert_int_equal(pthread_create(&th[0], NULL, opp_append, &args[0]), 0);
    while (!atomic_load(&args[0].started))
        sleep_ms(1);
    sleep_ms(50);
    assert_true(wait_depth(f->l, 0));
    for (int i = 1; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, opp_append, &args[i]), 0);
    assert_true(wait_depth(f->l, 3));
    uint64_t b0 = 0;
    dlog_stats(f->l, &b0, NULL);
    assert_int_equal(sqlite3_exec(blk, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blk);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(args[0].rc, DG_OK);
    assert_int_equal(args[1].rc, DG_OK);
    assert_int_equal(args[2].rc, DG_EDB);
    assert_int_equal(args[3].rc, DG_OK);
    uint64_t b1 = 0, rows = 0;
    dlog_stats(f->l, &b1, &rows);
    assert_int_equal(b1 - b0, 2); /* the lone first request, then the three together */
    assert_int_equal(rows, 3);
    assert_int_equal(dlog_healthy(f->l), 1);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM decisions WHERE opp_id = '006BOOM'"), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM deals WHERE opp_id = '006BOOM'"), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM deal_kpi WHERE opp_id = '006BOOM'"), 0);
    assert_int_equal(sql_int(f->dir, "SELECT sum(count) FROM daily WHERE metric = 'decisions'"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT sum(count) FROM daily WHERE metric = 'outcome'"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT sum(count) FROM daily WHERE metric = 'gated'"), 3);
    char *json = NULL;
    assert_int_equal(dlog_get(f->l, "dg_00000000000000000000000004", &json), DG_OK);
    free(json);
}

static void test_null_safety(void **state)
{
    (void)state;
    dlog_close(NULL);
    assert_int_equal(dlog_healthy(NULL), 0);
    uint64_t b = 9, r = 9;
    dlog_stats(NULL, &b, &r);
    assert_int_equal(b, 0);
    assert_int_equal(r, 0);
    assert_int_equal(dlog_queue_depth(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_dir_and_schema),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test_setup_teardown(test_append_get, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_append_invalid, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_unique_event, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_writeback_with_decision, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_find_event, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_reopen_finds_keys, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_find_recent_body, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_deal_state_and_stage_raw, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_wal_is_checkpointed_and_started_over, setup,
                                        dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_won_lost_and_daily, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_retry_since, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_query, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_query_limits, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_comp, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_concurrent_batches, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_write_fault_and_recovery, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_late_failure_redo, setup, dlog_fixture_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
