/* test_sigv4.c — SigV4 against the public vectors (testdata/sigv4, header variants).
 *
 * dealgate signs with libcurl's CURLOPT_AWS_SIGV4 (connectors/sigv4.c). These tests send
 * each vector's request through conn_http_do() — the production path — to a capture
 * listener on loopback, with the vector's time pinned, and compare the Authorization header
 * curl produced with the vector's header-signed-request.txt byte for byte. They also check
 * that every signed header was actually sent (curl 7.88 signs an empty "Expect:" it never
 * sends), and run the fake ACE's verifier self-test, which checks its canonical request,
 * string to sign and signature against the vector files byte for byte: the fake is what
 * decides 403 in test_ace.c, so it must itself be right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <mbedtls/sha256.h>

#include "connectors/http.h"
#include "connectors/sigv4.h"
#include "fakeproc.h"

/* ---- capture listener ------------------------------------------------------------------ */

typedef struct {
    int fd;
    int port;
    char req[16384];
    size_t len;
    pthread_t thr;
} capture;

static void *capture_run(void *arg)
{
    capture *c = arg;
    int s = accept(c->fd, NULL, NULL);
    if (s < 0) return NULL;
    size_t want = 0;
    for (;;) {
        ssize_t r = read(s, c->req + c->len, sizeof c->req - 1 - c->len);
        if (r <= 0) break;
        c->len += (size_t)r;
        c->req[c->len] = '\0';
        char *end = strstr(c->req, "\r\n\r\n");
        if (end && want == 0) {
            size_t body = 0;
            char *cl = strcasestr(c->req, "\r\nContent-Length:");
            if (cl && cl < end) body = strtoul(cl + 17, NULL, 10);
            want = (size_t)(end + 4 - c->req) + body;
        }
        if (want && c->len >= want) break;
    }
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    ssize_t w = write(s, resp, strlen(resp));
    (void)w;
    close(s);
    return NULL;
}

static int capture_start(capture *c)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(c->fd, 4) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    c->port = ntohs(a.sin_port);
    return pthread_create(&c->thr, NULL, capture_run, c);
}

static void capture_join(capture *c)
{
    pthread_join(c->thr, NULL);
    close(c->fd);
}

/* The value of header `name` (case-insensitive) in a captured request, copied into out. */
static int captured_header(const char *req, const char *name, char *out, size_t n)
{
    size_t k = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, k) == 0 && line[k] == ':') {
            const char *v = line + k + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r");
            if (l >= n) l = n - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Cuts the next delim-separated token off *p (NULL at the end). */
static char *next_tok(char **p, char delim)
{
    if (*p == NULL || **p == '\0') return NULL;
    char *t = *p, *e = strchr(t, delim);
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = NULL;
    }
    return t;
}

/* ---- vector files ---------------------------------------------------------------------- */

static char *read_file(const char *dir, const char *name)
{
    char path[1024];
    const char *td = getenv("DG_TESTDATA");
    snprintf(path, sizeof path, "%s/sigv4/%s/%s", td ? td : "../shared/testdata", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static void hex_sha256(const char *s, char out[65])
{
    unsigned char h[32];
    mbedtls_sha256_ret((const unsigned char *)s, strlen(s), h, 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Sends vector `name` through conn_http_do with curl's signer and returns the captured
 * request (static buffer of the capture). */
static void run_vector(const char *name, const char *session_token, capture *cap)
{
    char *ctxs = read_file(name, "context.json");
    char *reqs = read_file(name, "request.txt");
    assert_non_null(ctxs);
    assert_non_null(reqs);
    cJSON *ctx = cJSON_Parse(ctxs);
    assert_non_null(ctx);
    const cJSON *cred = cJSON_GetObjectItem(ctx, "credentials");
    const char *akid = cJSON_GetObjectItem(cred, "access_key_id")->valuestring;
    const char *secret = cJSON_GetObjectItem(cred, "secret_access_key")->valuestring;
    const char *ts = cJSON_GetObjectItem(ctx, "timestamp")->valuestring; /* 2015-08-30T12:36:00Z */
    char amz_date[17];
    /* YYYY-MM-DDTHH:MM:SSZ -> YYYYMMDDTHHMMSSZ */
    snprintf(amz_date, sizeof amz_date, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8, ts + 11,
             ts + 14, ts + 17);

    /* request.txt: request line, "Name:value" lines, blank line, body */
    char method[8] = "";
    char *body = strstr(reqs, "\n\n");
    if (body) {
        *body = '\0';
        body += 2;
    } else {
        body = reqs + strlen(reqs);
    }
    const char *headers[16];
    int nh = 0;
    char *cur = reqs;
    char *line = next_tok(&cur, '\n');
    assert_non_null(line);
    snprintf(method, sizeof method, "%.*s", (int)strcspn(line, " "), line);
    while ((line = next_tok(&cur, '\n')) != NULL && nh < 14)
        if (*line) headers[nh++] = line;
    char sha_line[128];
    if (cJSON_IsTrue(cJSON_GetObjectItem(ctx, "sign_body"))) {
        char h[65];
        hex_sha256(body, h);
        snprintf(sha_line, sizeof sha_line, "x-amz-content-sha256:%s", h);
        headers[nh++] = sha_line;
    }
    headers[nh] = NULL;

    assert_int_equal(capture_start(cap), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", cap->port);
    conn_sigv4 sig = {.access_key_id = akid,
                      .secret_access_key = secret,
                      .session_token = session_token,
                      .region = cJSON_GetObjectItem(ctx, "region")->valuestring,
                      .service = cJSON_GetObjectItem(ctx, "service")->valuestring,
                      .amz_date = amz_date};
    conn_http_req rq = {.method = method,
                        .url = url,
                        .headers = headers,
                        .body = body,
                        .body_len = strlen(body),
                        .timeout_ms = 3000,
                        .sigv4 = &sig};
    conn_http_client *c = NULL;
    char err[256];
    assert_int_equal(conn_http_client_new(&c, err, sizeof err), DG_OK);
    conn_http_resp rs;
    dg_err rc = conn_http_do(c, &rq, &rs, err, sizeof err);
    capture_join(cap);
    assert_int_equal(rc, DG_OK);
    assert_int_equal(rs.status, 200);
    conn_http_resp_free(&rs);
    conn_http_client_free(c);
    cJSON_Delete(ctx);
    free(ctxs);
    free(reqs);
}

/* Every header named in SignedHeaders of the captured request was sent. */
static void assert_signed_headers_sent(const char *req)
{
    char auth[1024], signed_h[512], tmp[1024];
    assert_true(captured_header(req, "Authorization", auth, sizeof auth));
    const char *sh = strstr(auth, "SignedHeaders=");
    assert_non_null(sh);
    snprintf(signed_h, sizeof signed_h, "%.*s", (int)strcspn(sh + 14, ","), sh + 14);
    char *cur = signed_h;
    for (char *h = next_tok(&cur, ';'); h; h = next_tok(&cur, ';')) {
        if (!captured_header(req, h, tmp, sizeof tmp)) fail_msg("signed header %s not sent", h);
    }
}

static void check_vector(const char *name)
{
    capture cap;
    run_vector(name, NULL, &cap);
    char *expected = read_file(name, "header-signed-request.txt");
    assert_non_null(expected);
    const char *want = strstr(expected, "\nAuthorization:");
    assert_non_null(want);
    want += strlen("\nAuthorization:");
    char wantv[512];
    snprintf(wantv, sizeof wantv, "%.*s", (int)strcspn(want, "\n"), want);
    char got[512];
    assert_true(captured_header(cap.req, "Authorization", got, sizeof got));
    assert_string_equal(got, wantv);
    char *sig = read_file(name, "header-signature.txt");
    assert_non_null(strstr(got, sig));
    assert_signed_headers_sent(cap.req);
    free(sig);
    free(expected);
}

static void test_get_vanilla(void **s)
{
    (void)s;
    check_vector("get-vanilla");
}

static void test_post_vanilla(void **s)
{
    (void)s;
    check_vector("post-vanilla");
}

static void test_post_form(void **s)
{
    (void)s;
    check_vector("post-x-www-form-urlencoded");
}

/* With a session token, X-Amz-Security-Token is sent and signed (and the signature changes). */
static void test_session_token_signed(void **s)
{
    (void)s;
    capture cap;
    run_vector("get-vanilla", "FQoGZXIvYXdzEXAMPLETOKEN", &cap);
    char v[1024], auth[1024];
    assert_true(captured_header(cap.req, "X-Amz-Security-Token", v, sizeof v));
    assert_string_equal(v, "FQoGZXIvYXdzEXAMPLETOKEN");
    assert_true(captured_header(cap.req, "Authorization", auth, sizeof auth));
    assert_non_null(strstr(auth, "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    assert_null(strstr(auth, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
    assert_signed_headers_sent(cap.req);
}

/* The fake ACE's verifier reproduces canonical request, string to sign and signature of
 * every vector byte for byte. */
static void test_fake_verifier_selftest(void **s)
{
    (void)s;
    char script[1024], dir[1024];
    const char *td = getenv("DG_TESTDATA");
    snprintf(script, sizeof script, "%s/tests/fakes/fake_ace.py", fake_source_dir());
    snprintf(dir, sizeof dir, "%s/sigv4", td ? td : "../shared/testdata");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1);
        execl("/usr/bin/python3", "/usr/bin/python3", "-B", script, "--selftest", dir,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_check_rejects(void **s)
{
    (void)s;
    char err[256];
    conn_sigv4 ok = {.access_key_id = "AKID",
                     .secret_access_key = "sec/ret+KEY",
                     .region = "eu-west-1",
                     .service = "partnercentral-selling"};
    assert_int_equal(conn_sigv4_check(&ok, err, sizeof err), DG_OK);

    conn_sigv4 b = ok;
    b.region = "eu:west";
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "region"));
    b = ok;
    b.service = "Partner Central";
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
    b = ok;
    b.secret_access_key = "has space SECRETVALUE";
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
    assert_null(strstr(err, "SECRETVALUE"));
    b = ok;
    b.secret_access_key = NULL;
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
    b = ok;
    b.session_token = "bad\ntoken";
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
    b = ok;
    b.amz_date = "2015-08-30T12:36:00Z";
    assert_int_equal(conn_sigv4_check(&b, err, sizeof err), DG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_post_vanilla),
        cmocka_unit_test(test_post_form),
        cmocka_unit_test(test_session_token_signed),
        cmocka_unit_test(test_fake_verifier_selftest),
        cmocka_unit_test(test_check_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
