/* fakeproc.h — start, drive and stop a loopback fake upstream (tests/fakes/NAME.py) from a
 * cmocka test.
 *
 * fake_start() fork/execs /usr/bin/python3 -B $DG_SOURCE_DIR/tests/fakes/<script> with the
 * given arguments, reads the port from the fake's first stdout line (5 s at most) and
 * arranges for the fake to die with the test process (PR_SET_PDEATHSIG). fake_stop() sends
 * SIGTERM and reaps it. fake_ctl() talks to the fake's /__ control surface with plain libcurl,
 * fake_count() reads one counter of GET /__calls.
 */
#ifndef DG_TEST_FAKEPROC_H
#define DG_TEST_FAKEPROC_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

typedef struct {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
} fake_server;

static inline const char *fake_source_dir(void)
{
    const char *d = getenv("DG_SOURCE_DIR");
    return d && *d ? d : DG_SOURCE_DIR;
}

/* Starts tests/fakes/<script> with args (NULL-terminated, may be NULL). Returns 0 or -1. */
static inline int fake_start(fake_server *f, const char *script, const char *const *args)
{
    char path[1024];
    const char *argv[32];
    int n = 0, fds[2];
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s/tests/fakes/%s", fake_source_dir(), script);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = "-B";
    argv[n++] = path;
    for (const char *const *a = args; a && *a && n < 31; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32];
    size_t got = 0;
    while (got < sizeof line - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t r = read(fds[0], line + got, 1);
        if (r <= 0) break;
        if (line[got] == '\n') break;
        got++;
    }
    line[got] = '\0';
    close(fds[0]);
    char *end = NULL;
    long port = strtol(line, &end, 10);
    if (end == line || port <= 0 || port > 65535) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    f->pid = pid;
    f->port = (int)port;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    return 0;
}

static inline void fake_stop(fake_server *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

typedef struct {
    char *buf;
    size_t len;
} fake_buf;

static inline size_t fake_write(char *d, size_t s, size_t n, void *ud)
{
    fake_buf *b = ud;
    char *g = realloc(b->buf, b->len + s * n + 1);
    if (g == NULL) return 0;
    memcpy(g + b->len, d, s * n);
    b->len += s * n;
    g[b->len] = '\0';
    b->buf = g;
    return s * n;
}

/* method "GET" or "POST" (body JSON) on a control path. Returns the malloc'd response body
 * (caller frees) or NULL. */
static inline char *fake_ctl(const fake_server *f, const char *method, const char *path,
                             const char *body)
{
    char url[256];
    fake_buf b = {0};
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *h = curl_easy_init();
    if (h == NULL) return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fake_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "POST") == 0) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "{}");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        free(b.buf);
        return NULL;
    }
    return b.buf ? b.buf : strdup("");
}

/* Posts body to path and discards the answer. Returns 0 or -1. */
static inline int fake_post(const fake_server *f, const char *path, const char *body)
{
    char *r = fake_ctl(f, "POST", path, body);
    free(r);
    return r ? 0 : -1;
}

/* Counter `key` of GET /__calls (0 when absent), -1 on failure. */
static inline long fake_count(const fake_server *f, const char *key)
{
    char *r = fake_ctl(f, "GET", "/__calls", NULL);
    if (r == NULL) return -1;
    cJSON *j = cJSON_Parse(r);
    free(r);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : (j ? 0 : -1);
    cJSON_Delete(j);
    return n;
}

#endif
