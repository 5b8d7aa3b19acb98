/* test_file_connector.c — the file connector against temporary CSV files, and the none
 * connector's contract. Calls the backends' ops directly (connectors/backends.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/cfg.h"
#include "connectors/backends.h"
#include "connectors/conn.h"

typedef struct {
    char dir[64];
    char path[128];
    cfg_cloud cc;
} fx;

static void write_file(const char *path, const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0); /* atomic, as an export job should do it */
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    if (x == NULL) return -1;
    snprintf(x->dir, sizeof x->dir, "/tmp/dg_file_XXXXXX");
    if (mkdtemp(x->dir) == NULL) return -1;
    snprintf(x->path, sizeof x->path, "%s/registrations.csv", x->dir);
    x->cc.key = "gcp";
    x->cc.name = "Google Cloud Partner Advantage";
    x->cc.connector = CFG_CONN_FILE;
    x->cc.path = x->path;
    x->cc.timeout_ms = 2000;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    unlink(x->path);
    rmdir(x->dir);
    free(x);
    return 0;
}

static void *open_ok(fx *x)
{
    void *st = NULL;
    char err[256] = "";
    dg_err rc = conn_file_backend.open(&x->cc, NULL, &st, err, sizeof err);
    if (rc != DG_OK) fail_msg("open: %s", err);
    assert_non_null(st);
    return st;
}

static dg_err open_err(fx *x, char *err, size_t n)
{
    void *st = NULL;
    dg_err rc = conn_file_backend.open(&x->cc, NULL, &st, err, n);
    assert_null(st);
    return rc;
}

static void by_id(void *st, const char *id, dg_reg_fact *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(conn_file_backend.by_id(st, id, 1000, r), DG_OK);
}

static void by_crm(void *st, const char *crm, dg_reg_fact *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(conn_file_backend.by_crm_id(st, crm, 1000, r), DG_OK);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void test_parse_and_lookup(void **state)
{
    fx *x = *state;
    /* BOM, CRLF, columns in another order and case, an extra column, quoted fields with a
     * comma, a doubled quote and a line break, rows for other clouds, a blank line. */
    write_file(x->path,
               "\xEF\xBB\xBF"
               "Status,Registration_ID,notes,CLOUD,crm_opportunity_id,created_at,origin\r\n"
               "Approved,P-100,\"big, \"\"strategic\"\" deal\",gcp,006A,2026-10-01,Partner\r\n"
               "Rejected,P-200,\"two\r\nlines\",GCP,,2026-09-01T10:00:00z,\r\n"
               "\r\n"
               "Approved,O1234567,,aws,006A,2026-10-02T00:00:00Z,partner\r\n"
               "\"In review\",\"P-300\",,gcp,006B,2026-10-03T08:30:00.5+02:00,cloud\r\n");
    void *st = open_ok(x);
    dg_reg_fact r;

    by_id(st, "P-100", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r.status, "Approved");
    assert_string_equal(r.crm_id, "006A");
    assert_string_equal(r.created_at, "2026-10-01T00:00:00Z");
    assert_string_equal(r.origin, "partner");
    dg_reg_fact_free(&r);

    by_id(st, "P-200", &r); /* cloud matched case-insensitively; empty crm id is NULL */
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r.status, "Rejected");
    assert_null(r.crm_id);
    assert_null(r.origin);
    assert_string_equal(r.created_at, "2026-09-01T10:00:00Z");
    dg_reg_fact_free(&r);

    by_id(st, "P-300", &r);
    assert_string_equal(r.status, "In review");
    assert_string_equal(r.created_at, "2026-10-03T08:30:00.5+02:00");
    assert_string_equal(r.origin, "cloud");
    dg_reg_fact_free(&r);

    by_id(st, "O1234567", &r); /* an aws row: not this cloud's */
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(r.status);
    dg_reg_fact_free(&r);

    by_crm(st, "006B", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r.id, "P-300");
    assert_string_equal(r.crm_id, "006B");
    dg_reg_fact_free(&r);

    by_crm(st, "006Z", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(r.id);
    dg_reg_fact_free(&r);

    char health[256];
    conn_file_backend.health(st, health, sizeof health);
    assert_non_null(strstr(health, "ok: 3 registrations"));
    conn_file_backend.close(st);
}

static void test_duplicates(void **state)
{
    fx *x = *state;
    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,P-1,006A,Rejected,2026-01-01,\n"
                        "gcp,P-2,006A,Approved,2026-03-01,\n"
                        "gcp,P-3,006A,Submitted,2026-02-01,\n"
                        "gcp,P-1,006A,Submitted,2026-01-01,\n");
    void *st = open_ok(x);
    dg_reg_fact r;
    by_id(st, "P-1", &r); /* the later row for an id wins */
    assert_string_equal(r.status, "Submitted");
    dg_reg_fact_free(&r);
    by_crm(st, "006A", &r); /* the newest registration of a deal */
    assert_string_equal(r.id, "P-2");
    assert_string_equal(r.status, "Approved");
    dg_reg_fact_free(&r);
    conn_file_backend.close(st);
}

static void test_open_errors(void **state)
{
    fx *x = *state;
    char err[256];

    /* missing file */
    assert_int_equal(open_err(x, err, sizeof err), DG_ENOTFOUND);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, x->path));

    write_file(x->path, "cloud,registration_id,status,created_at\ngcp,P-1,Approved,\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":1: missing column(s) crm_opportunity_id, origin"));

    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "aws,O1,,Approved,,whatever\n" /* other clouds are not checked */
                        "gcp,P-1,006A,Approved,,partner\n"
                        "gcp,P-2,006A,Approved,,reseller\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":4: origin must be partner, cloud or empty, not 'reseller'"));

    /* Line numbers count the lines of a quoted multi-line field. */
    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin,n\n"
                        "gcp,P-1,,Approved,,,\"a\nb\r\nc\"\n"
                        "gcp,P-2,,Approved,,bad,\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, "registrations.csv:5: origin must be"));

    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,,006A,Approved,,\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":2: registration_id is empty"));

    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,P-1,006A,Approved,01/10/2026,\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":2: created_at '01/10/2026' is not a date"));

    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,P-1,006A,Approved,,,extra\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":2: 7 fields, the header has 6"));

    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,P-1,006A,\"Appr\"oved,,\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, ":2: malformed CSV"));

    write_file(x->path, "cloud,cloud,registration_id,crm_opportunity_id,status,created_at,"
                        "origin\n");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, "duplicate column 'cloud'"));

    write_file(x->path, "");
    assert_int_equal(open_err(x, err, sizeof err), DG_EPARSE);
    assert_non_null(strstr(err, "no header row"));

    x->cc.path = NULL;
    assert_int_equal(open_err(x, err, sizeof err), DG_ECONFIG);
    assert_string_equal(err, "connector file needs path");
    x->cc.path = x->path;
}

static void test_header_only_and_short_rows(void **state)
{
    fx *x = *state;
    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin");
    void *st = open_ok(x);
    dg_reg_fact r;
    by_id(st, "P-1", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    conn_file_backend.close(st);

    /* A row without its trailing empty columns, and no newline at the end. */
    write_file(x->path, "cloud,registration_id,status,crm_opportunity_id,created_at,origin\n"
                        "gcp,P-1,Approved");
    st = open_ok(x);
    by_id(st, "P-1", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r.status, "Approved");
    assert_null(r.crm_id);
    dg_reg_fact_free(&r);
    assert_int_equal(conn_file_backend.by_crm_id(st, NULL, 1000, &r), DG_OK);
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    conn_file_backend.close(st);
}

static void test_reload(void **state)
{
    fx *x = *state;
    const char *head = "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n";
    char text[512];
    snprintf(text, sizeof text, "%sgcp,P-1,006A,Submitted,,\n", head);
    write_file(x->path, text);
    void *st = open_ok(x);
    dg_reg_fact r;
    by_id(st, "P-1", &r);
    assert_string_equal(r.status, "Submitted");
    dg_reg_fact_free(&r);

    /* The same file through a conn_set, whose cache must not hide a change. */
    x->cc.cache_ttl_s = 300;
    x->cc.negative_cache_ttl_s = 300;
    struct cfg c = {.clouds = &x->cc, .nclouds = 1};
    conn_set *set = NULL;
    char err[256] = "";
    assert_int_equal(conn_set_new(&c, &set, err, sizeof err), DG_OK);
    dg_event ev = {.opp_id = "006B"};
    const char *clouds[] = {"gcp"};
    dg_facts f = {0};
    assert_int_equal(conn_lookup(set, &ev, clouds, 1, 1000, &f), DG_OK);
    assert_int_equal(f.regs[0].lookup, DG_LOOKUP_NOT_FOUND);
    assert_int_equal(f.regs[0].by_crm_id, 1);
    assert_string_equal(f.regs[0].source, "file");

    /* The deal desk's export changes: seen within a second or so, no restart. */
    snprintf(text, sizeof text, "%sgcp,P-1,006A,Approved,,\ngcp,P-2,006B,Submitted,,\n", head);
    write_file(x->path, text);
    sleep_ms(1100);
    by_id(st, "P-1", &r);
    assert_string_equal(r.status, "Approved");
    dg_reg_fact_free(&r);
    assert_int_equal(conn_lookup(set, &ev, clouds, 1, 1000, &f), DG_OK);
    assert_int_equal(f.nregs, 2);
    assert_int_equal(f.regs[1].lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.regs[1].id, "P-2");
    assert_string_equal(f.regs[1].status, "Submitted");
    char json[1024];
    assert_true(conn_health_json(set, json, sizeof json) < sizeof json);
    assert_non_null(strstr(json, "\"connector\":\"file\""));
    assert_non_null(strstr(json, "\"detail\":\"ok: 2 registrations"));
    dg_facts_free(&f);
    conn_set_free(set);
    by_crm(st, "006B", &r);
    assert_string_equal(r.id, "P-2");
    dg_reg_fact_free(&r);

    /* A broken file keeps the old data serving, and health says so. */
    write_file(x->path, "cloud,registration_id\ngcp,P-1\n");
    sleep_ms(1100);
    by_id(st, "P-1", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r.status, "Approved");
    dg_reg_fact_free(&r);
    char health[256];
    conn_file_backend.health(st, health, sizeof health);
    assert_non_null(strstr(health, "error: reload failed"));
    assert_non_null(strstr(health, "missing column(s)"));
    assert_non_null(strstr(health, "serving 2 registrations"));

    /* A deleted file too; a good file again recovers. */
    unlink(x->path);
    sleep_ms(1100);
    by_id(st, "P-2", &r);
    assert_string_equal(r.status, "Submitted");
    dg_reg_fact_free(&r);
    conn_file_backend.health(st, health, sizeof health);
    assert_non_null(strstr(health, "cannot stat"));

    snprintf(text, sizeof text, "%sgcp,P-1,006A,Rejected,,\n", head);
    write_file(x->path, text);
    sleep_ms(1100);
    by_id(st, "P-1", &r);
    assert_string_equal(r.status, "Rejected");
    dg_reg_fact_free(&r);
    by_id(st, "P-2", &r);
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    dg_reg_fact_free(&r);
    conn_file_backend.health(st, health, sizeof health);
    assert_non_null(strstr(health, "ok: 1 registrations"));
    conn_file_backend.close(st);
}

/* The real path: an INI text through cfg_load_string, then conn_set_new and conn_lookup. */
static void test_from_config(void **state)
{
    fx *x = *state;
    write_file(x->path, "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
                        "gcp,GCP-1,006A,Approved,2026-10-03T09:30:00Z,partner\n");
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[server]\nlisten = 127.0.0.1:8080\n"
             "[auth]\nopen = yes\n"
             "[pipeline]\nstages = Qualification, Demo\n"
             "[cloud:gcp]\nname = Google Cloud\nconnector = file\npath = %s\n"
             "[cloud:aws]\nname = AWS ACE\nconnector = none\n",
             x->path);
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    dg_err rc = cfg_load_string("test.ini", ini, &c, &errs);
    if (rc != DG_OK) fail_msg("config: %s", errs.lines.n ? errs.lines.v[0] : "?");
    conn_set *set = NULL;
    char err[256] = "";
    assert_int_equal(conn_set_new(c, &set, err, sizeof err), DG_OK);
    dg_reg_ref regs[] = {{"aws", "O1234567"}};
    dg_event ev = {.opp_id = "006A", .regs = regs, .nregs = 1};
    const char *clouds[] = {"gcp", "aws"};
    dg_facts f = {0};
    assert_int_equal(conn_lookup(set, &ev, clouds, 2, 1000, &f), DG_OK);
    assert_int_equal(f.nregs, 2);
    assert_string_equal(f.regs[0].cloud, "gcp");
    assert_int_equal(f.regs[0].lookup, DG_LOOKUP_FOUND);
    assert_int_equal(f.regs[0].by_crm_id, 1);
    assert_string_equal(f.regs[0].id, "GCP-1");
    assert_string_equal(f.regs[0].status, "Approved");
    assert_string_equal(f.regs[0].origin, "partner");
    assert_string_equal(f.regs[0].source, "file");
    assert_string_equal(f.regs[1].cloud, "aws");
    assert_int_equal(f.regs[1].lookup, DG_LOOKUP_FOUND);
    assert_null(f.regs[1].status);
    assert_string_equal(f.regs[1].source, "none");
    dg_facts_free(&f);
    conn_set_free(set);

    /* A file that is gone at start is an open error naming the cloud. */
    unlink(x->path);
    assert_int_not_equal(conn_set_new(c, &set, err, sizeof err), DG_OK);
    assert_non_null(strstr(err, "cloud:gcp: "));
    assert_non_null(strstr(err, "cannot open"));
    cfg_free(c);
    cfg_errors_free(&errs);
}

static void test_valid_id(void **state)
{
    (void)state;
    char long_id[DG_REG_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(conn_file_backend.valid_id(long_id));
    long_id[DG_REG_ID_MAX] = '\0';
    assert_true(conn_file_backend.valid_id(long_id));
    assert_true(conn_file_backend.valid_id("P-1"));
    assert_true(conn_file_backend.valid_id("Réf 12"));
    assert_false(conn_file_backend.valid_id(""));
    assert_false(conn_file_backend.valid_id(" P-1"));
    assert_false(conn_file_backend.valid_id("P\n1"));
    assert_false(conn_file_backend.valid_id("P\x7f"));
    assert_true(conn_none_backend.valid_id("anything at all"));
    assert_false(conn_none_backend.valid_id("tab\there"));
}

static void test_none_backend(void **state)
{
    (void)state;
    cfg_cloud cc = {.key = "aws", .connector = CFG_CONN_NONE};
    void *st = (void *)1;
    char err[64];
    assert_int_equal(conn_none_backend.open(&cc, NULL, &st, err, sizeof err), DG_OK);
    dg_reg_fact r = {0};
    assert_int_equal(conn_none_backend.by_id(st, "O1", 100, &r), DG_OK);
    assert_int_equal(r.lookup, DG_LOOKUP_FOUND);
    assert_null(r.status); /* presence only: no state known */
    assert_int_equal(conn_none_backend.by_crm_id(st, "006A", 100, &r), DG_OK);
    assert_int_equal(r.lookup, DG_LOOKUP_NOT_FOUND);
    conn_none_backend.close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_only_and_short_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_config, setup, teardown),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_none_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
