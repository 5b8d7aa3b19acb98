/* cli.c — the dealgate command line: serve, check-config, eval, comp-check, --version.
 *
 * Exit statuses: serve 0 on a clean shutdown, 1 when it cannot start; check-config 0/1;
 * eval 0 allowed, 1 blocked, 2 unusable input or config; comp-check 0/1/2 (see comp_cli.h);
 * test 0 all passed, 1 a case failed, 2 unusable; import-history 0/1/2; backup 0/1/2.
 */
#include "gate/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "gate/backup.h"
#include "gate/comp_cli.h"
#include "gate/decide.h"
#include "gate/event.h"
#include "gate/gate.h"
#include "gate/http.h"
#include "gate/import_history.h"
#include "gate/json.h"
#include "gate/metrics.h"
#include "gate/reverify.h"
#include "gate/rule_tests.h"
#include "gate/writeback.h"

#define CLI_DEFAULT_CONFIG "config/dealgate.ini"
#define CLI_MAX_EVENT (1 << 20)

static const char usage[] =
    "usage: dealgate COMMAND [options]\n"
    "\n"
    "  serve [-c FILE]          run the service (default config/dealgate.ini)\n"
    "  check-config [-c FILE]   \"configuration OK\", or every error as path:line: message\n"
    "  eval [-c FILE] [EVENT]   one decision from a JSON event (file or stdin), nothing logged\n"
    "  comp-check [-c FILE] CSV audit commission lines; --format text|json|csv; --all\n"
    "  test [-c FILE] CASES...  run declarative rule test cases (files or directories)\n"
    "  import-history [-c FILE] CSV  load a CRM stage-history export into the log\n"
    "  backup [-c FILE] FILE    a consistent copy of the decision log (service may run)\n"
    "  --version | --help\n";

const char *gate_cli_config_arg(int argc, char **argv, char **rest, int *nrest)
{
    const char *path = CLI_DEFAULT_CONFIG;
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dealgate: %s needs a file\n", argv[i]);
                return NULL;
            }
            path = argv[++i];
        } else {
            rest[(*nrest)++] = argv[i];
        }
    }
    return path;
}

struct cfg *gate_cli_load(const char *path, int print_warnings)
{
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    if (cfg_load(path, &c, &errs) != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        cfg_errors_free(&errs);
        return NULL;
    }
    if (print_warnings)
        for (size_t i = 0; i < c->warnings.n; i++)
            fprintf(stderr, "%s\n", c->warnings.v[i]);
    return c;
}

static int cmd_check_config(int argc, char **argv)
{
    char *rest[argc + 1];
    int nrest;
    const char *path = gate_cli_config_arg(argc, argv, rest, &nrest);
    if (!path || nrest > 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct cfg *c = gate_cli_load(path, 1);
    if (!c) return 1;
    printf("configuration OK\n");
    cfg_free(c);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    char *rest[argc + 1];
    int nrest, status = 1;
    const char *path = gate_cli_config_arg(argc, argv, rest, &nrest);
    if (!path || nrest > 0) {
        fputs(usage, stderr);
        return 2;
    }
    /* Signals are taken synchronously by this thread; every other thread blocks them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit fails the log's writes (503), not the process */

    gate_ctx g = {.started_ms = gate_now_ms()};
    pthread_mutex_init(&g.rt_lock, NULL);
    gate_metrics_new(&g.metrics); /* NULL when out of memory: /metrics then has no counters */
    struct mg_context *mg = NULL;
    gate_writeback *wb = NULL;
    gate_reverify *rv = NULL;
    char err[512], listen[128] = "";
    struct cfg *c = gate_cli_load(path, 1);
    if (!c) goto done;
    if (dlog_open(c->server.data_dir, &g.log, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dealgate: decision log in %s: %s\n", c->server.data_dir, err);
        cfg_free(c);
        goto done;
    }
    snprintf(listen, sizeof listen, "%s", c->server.listen);
    gate_rt *rt = NULL;
    if (gate_rt_new(c, &rt, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dealgate: %s\n", err);
        goto done;
    }
    gate_rt_install(&g, rt);
    if (gate_writeback_start(&g, &wb, err, sizeof err) != DG_OK) { /* resumes queued jobs */
        fprintf(stderr, "dealgate: %s\n", err);
        goto done;
    }
    if (gate_reverify_start(&g, &rv, err, sizeof err) != DG_OK) { /* re-checks, retention */
        fprintf(stderr, "dealgate: %s\n", err);
        goto done;
    }
    mg_init_library(0);
    mg = gate_http_start(&g, err, sizeof err);
    if (!mg) {
        fprintf(stderr, "dealgate: %s\n", err);
        goto done;
    }
    fprintf(stderr, "{\"event\":\"listening\",\"listen\":\"%s\",\"version\":\"%s\"}\n", listen,
            DG_VERSION);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            gate_reload(&g, path);
            continue;
        }
        break;
    }
    fprintf(stderr, "{\"event\":\"shutdown\",\"note\":\"finishing in-flight requests\"}\n");
    status = 0;
done:
    gate_http_stop(mg, listen); /* waits for in-flight requests */
    gate_reverify_stop(rv);     /* after the deal in hand; before the log closes */
    gate_writeback_stop(wb);    /* before the log closes; unfinished jobs stay queued */
    dlog_close(g.log);          /* commits everything queued */
    gate_rt_install(&g, NULL);
    gate_metrics_free(g.metrics); /* after mg_stop: no request is recording */
    pthread_mutex_destroy(&g.rt_lock);
    if (status == 0) fprintf(stderr, "{\"event\":\"stopped\"}\n");
    return status;
}

/* Reads all of f up to max bytes into a NUL-terminated buffer (caller frees). */
static char *read_all(FILE *f, size_t max, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (got == 0) break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmd_eval(int argc, char **argv)
{
    char *rest[argc + 1];
    int nrest, status = 2;
    const char *path = gate_cli_config_arg(argc, argv, rest, &nrest);
    if (!path || nrest > 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *evpath = nrest == 1 ? rest[0] : "-";
    gate_ctx g = {0};
    pthread_mutex_init(&g.rt_lock, NULL);
    char err[512], *body = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    dg_event ev = {0};
    gate_result res = {0};
    struct cfg *c = gate_cli_load(path, 0);
    if (!c) goto done;
    gate_rt *rt = NULL;
    if (gate_rt_new(c, &rt, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dealgate: %s\n", err);
        goto done;
    }
    gate_rt_install(&g, rt);
    FILE *f = strcmp(evpath, "-") == 0 ? stdin : fopen(evpath, "rb");
    if (!f) {
        fprintf(stderr, "dealgate: %s: %s\n", evpath, strerror(errno));
        goto done;
    }
    body = read_all(f, CLI_MAX_EVENT, &len);
    if (f != stdin) fclose(f);
    if (!body) {
        fprintf(stderr, "dealgate: %s: %s\n", evpath, strerror(errno));
        goto done;
    }
    if (gate_json_parse(body, len, &root, err, sizeof err) != DG_OK ||
        gate_event_from_json(rt->cfg, root, &ev, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dealgate: %s: %s\n", evpath, err);
        goto done;
    }
    gate_decide(&g, rt, &ev, "stage", "", 0, &res);
    if (res.status != 200) {
        fprintf(stderr, "dealgate: %s: %s\n", res.err_code, res.message);
        goto done;
    }
    char *out = cJSON_Print(gate_result_tree(&res));
    if (out) {
        printf("%s\n", out);
        free(out);
    }
    status = cJSON_IsTrue(cJSON_GetObjectItem(res.decision, "allowed")) ? 0 : 1;
done:
    gate_result_free(&res);
    dg_event_free(&ev);
    cJSON_Delete(root);
    free(body);
    gate_rt_install(&g, NULL);
    pthread_mutex_destroy(&g.rt_lock);
    return status;
}

int gate_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("dealgate %s\n", DG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check-config") == 0) return cmd_check_config(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "comp-check") == 0) return gate_comp_check_main(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0) return gate_rule_tests_main(argc - 2, argv + 2);
    if (strcmp(cmd, "import-history") == 0) return gate_import_history_main(argc - 2, argv + 2);
    if (strcmp(cmd, "backup") == 0) return gate_backup_main(argc - 2, argv + 2);
    fprintf(stderr, "dealgate: unknown command \"%s\"\n", cmd);
    fputs(usage, stderr);
    return 2;
}
