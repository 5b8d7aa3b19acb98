/* cfg_value.c — one INI value: ${ENV} expansion, @secret files, typed scalars.
 *
 * Expansion happens before any typing, so `${NAME}` works in every value. A raw value that
 * starts with '@' names a secret file; the decision is taken on the raw text, never on an
 * expanded one, so a token that happens to start with '@' in the environment stays a
 * token. Secret files are opened once and checked with fstat on the open descriptor (no
 * race between the check and the read): group/world-writable is refused, world-readable is
 * a warning (container secret mounts are often 0644). Error texts name variables and
 * paths, never a value.
 */
#include "config/cfg_internal.h"
#include "config/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Expands ${...} in s into a new string. Returns 0 and *out, or -1 with err. */
static int expand_env(const char *s, char **out, char *err, size_t errlen)
{
    dg_buf b; /* the value and its NUL fit CFG_VALUE_MAX bytes */
    dg_buf_init(&b, CFG_VALUE_MAX - 1);
    int rc = -1;

    if (dg_buf_add(&b, "", 0) != 0) goto nomem;
    for (const char *p = s; *p;) {
        const char *d = strstr(p, "${");
        if (d == NULL) {
            if (dg_buf_add(&b, p, strlen(p)) != 0) goto nomem;
            break;
        }
        if (dg_buf_add(&b, p, (size_t)(d - p)) != 0) goto nomem;
        const char *name = d + 2, *q = name;
        if (!is_name_start(*q)) {
            dg_errf(err, errlen, DG_ECONFIG,
                    "bad ${...}: expected a variable name (letters, digits, '_')");
            goto done;
        }
        while (is_name_char(*q))
            q++;
        size_t namelen = (size_t)(q - name);
        char vname[128];
        if (namelen >= sizeof vname) {
            dg_errf(err, errlen, DG_ECONFIG, "bad ${...}: variable name too long");
            goto done;
        }
        memcpy(vname, name, namelen);
        vname[namelen] = '\0';
        const char *val = getenv(vname);
        if (*q == '}') {
            if (val == NULL) {
                dg_errf(err, errlen, DG_ECONFIG,
                        "environment variable %s is not set (write ${%s:-} for an intended "
                        "empty value)",
                        vname, vname);
                goto done;
            }
            if (dg_buf_add(&b, val, strlen(val)) != 0) goto nomem;
            p = q + 1;
        } else if (q[0] == ':' && q[1] == '-') {
            const char *def = q + 2, *end = strchr(def, '}');
            if (end == NULL) {
                dg_errf(err, errlen, DG_ECONFIG, "unterminated ${%s:-...} (missing '}')", vname);
                goto done;
            }
            if (val != NULL && *val != '\0') {
                if (dg_buf_add(&b, val, strlen(val)) != 0) goto nomem;
            } else if (dg_buf_add(&b, def, (size_t)(end - def)) != 0) {
                goto nomem;
            }
            p = end + 1;
        } else if (*q == '\0') {
            dg_errf(err, errlen, DG_ECONFIG, "unterminated ${%s (missing '}')", vname);
            goto done;
        } else {
            dg_errf(err, errlen, DG_ECONFIG,
                    "bad ${%s...}: expected '}' or ':-default}' after the name", vname);
            goto done;
        }
    }
    *out = b.p;
    b.p = NULL;
    rc = 0;
    goto done;
nomem:
    dg_errf(err, errlen, DG_ECONFIG, "value too long after expansion (max %d bytes)",
            CFG_VALUE_MAX);
done:
    free(b.p);
    return rc;
}

/* The one check and read of a file holding a secret (config/cfg.h). */
int cfg_read_secret_file(const char *what, const char *path, char **out, char *warn, size_t warnlen,
                         char *err, size_t errlen)
{
    int rc = -1, fd = -1;
    char *buf = NULL;

    if (warn && warnlen) warn[0] = '\0';
    if (*path == '\0') {
        dg_errf(err, errlen, DG_ECONFIG, "empty %s path", what);
        goto done;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        dg_errf(err, errlen, DG_ECONFIG, "cannot open %s %.200s: %s", what, path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        dg_errf(err, errlen, DG_ECONFIG, "cannot stat %s %.200s: %s", what, path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        dg_errf(err, errlen, DG_ECONFIG, "%s %.200s is not a regular file", what, path);
        goto done;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        dg_errf(err, errlen, DG_ECONFIG,
                "%s %.200s is group- or world-writable (mode %03o); run chmod go-w", what, path,
                (unsigned)(st.st_mode & 0777));
        goto done;
    }
    if (st.st_size > CFG_SECRET_MAX) {
        dg_errf(err, errlen, DG_ECONFIG, "%s %.200s is larger than %d bytes", what, path,
                CFG_SECRET_MAX);
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        dg_errf(err, errlen, DG_ECONFIG, "out of memory reading %s %.200s", what, path);
        goto done;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            dg_errf(err, errlen, DG_ECONFIG, "cannot read %s %.200s: %s", what, path,
                    strerror(errno));
            goto done;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        dg_errf(err, errlen, DG_ECONFIG, "%s %.200s contains a NUL byte", what, path);
        goto done;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (st.st_mode & S_IROTH)
        dg_errf(warn, warnlen, DG_ECONFIG,
                "%s %.200s is world-readable (mode %03o); consider chmod o-r", what, path,
                (unsigned)(st.st_mode & 0777));
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    if (fd >= 0) close(fd);
    free(buf);
    return rc;
}

int cfg_expand_value(const char *raw, char **out, int *from_file, char *warn, size_t warnlen,
                     char *err, size_t errlen)
{
    int rc = -1;
    char *exp = NULL;

    if (warn && warnlen) warn[0] = '\0';
    *from_file = 0;
    if (raw[0] == '@') {
        if (expand_env(raw + 1, &exp, err, errlen) != 0) goto done;
        if (*exp == '\0') {
            dg_errf(err, errlen, DG_ECONFIG, "'@' must be followed by a secret file path");
            goto done;
        }
        if (cfg_read_secret_file("secret file", exp, out, warn, warnlen, err, errlen) != 0)
            goto done;
        *from_file = 1;
    } else {
        if (expand_env(raw, out, err, errlen) != 0) goto done;
    }
    rc = 0;
done:
    free(exp);
    return rc;
}

int cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int cfg_parse_int(const char *s, long long min, long long max, long long *out)
{
    const char *p = s;
    if (*p == '-') p++;
    if (*p < '0' || *p > '9') return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0') return -1;
    if (errno == ERANGE || v < min || v > max) return -2;
    *out = v;
    return 0;
}

int cfg_parse_size(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s) return -1;
    if (errno == ERANGE) return -2;
    int64_t mul = 1;
    if (*end == 'k' || *end == 'K') {
        mul = 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mul = 1024 * 1024;
        end++;
    }
    if (*end != '\0') return -1;
    if (v > INT64_MAX / mul) return -2;
    v *= mul;
    if (v < min || v > max) return -2;
    *out = v;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int cfg_strlist_push(cfg_strlist *l, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (nv == NULL) {
        free(copy);
        return -1;
    }
    l->v = nv;
    l->v[l->n++] = copy;
    return 0;
}

void cfg_strlist_clear(cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int cfg_parse_list(const char *s, cfg_strlist *out, char *err, size_t errlen)
{
    cfg_strlist l = {0};
    const char *p = s;
    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        *out = l;
        return 0;
    }
    for (size_t item = 1;; item++) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a == b) {
            dg_errf(err, errlen, DG_ECONFIG, "empty item %zu in a comma list", item);
            cfg_strlist_clear(&l);
            return -1;
        }
        if (cfg_strlist_push(&l, a, (size_t)(b - a)) != 0) {
            dg_errf(err, errlen, DG_ECONFIG, "out of memory");
            cfg_strlist_clear(&l);
            return -1;
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    *out = l;
    return 0;
}

/* Checks a host name or IPv4 literal: letters, digits, '-' and '.', 1..253 chars. */
static int host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Splits "host:port" / "[v6]:port" (port optional when port_optional). Returns 0 with the
 * host (brackets removed) in host and *port (0 if absent), -1 on a malformed form. */
static int split_hostport(const char *s, size_t n, int port_optional, char *host, size_t hostlen,
                          long *port)
{
    const char *hp, *rest;
    size_t hn;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb == NULL) return -1;
        hp = s + 1;
        hn = (size_t)(rb - hp);
        if (hn == 0 || hn >= hostlen) return -1;
        memcpy(host, hp, hn);
        host[hn] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) return -1;
        rest = rb + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hn = colon ? (size_t)(colon - s) : n;
        if (!host_name_ok(s, hn) || hn >= hostlen) return -1;
        memcpy(host, s, hn);
        host[hn] = '\0';
        rest = s + hn;
    }
    size_t rn = n - (size_t)(rest - s);
    *port = 0;
    if (rn == 0) return port_optional ? 0 : -1;
    if (rest[0] != ':' || rn < 2 || rn > 6) return -1;
    long v = 0;
    for (size_t i = 1; i < rn; i++) {
        if (rest[i] < '0' || rest[i] > '9') return -1;
        v = v * 10 + (rest[i] - '0');
    }
    if (v < 1 || v > 65535) return -1;
    *port = v;
    return 0;
}

int cfg_check_listen(const char *s, char *err, size_t errlen)
{
    char host[256];
    long port;
    if (split_hostport(s, strlen(s), 0, host, sizeof host, &port) != 0) {
        dg_errf(err, errlen, DG_ECONFIG,
                "listen must be host:port or [ipv6]:port with a port 1-65535 (e.g. "
                "127.0.0.1:8080)");
        return -1;
    }
    return 0;
}

/* Finds the authority of a URL ("scheme://authority/..."): sets *a and *an. Returns the
 * scheme length, or -1 if s has no "://". */
static long url_authority(const char *s, const char **a, size_t *an)
{
    const char *sep = strstr(s, "://");
    if (sep == NULL) return -1;
    const char *p = sep + 3;
    size_t n = strcspn(p, "/?#");
    *a = p;
    *an = n;
    return (long)(sep - s);
}

/* Writes msg into err and returns -1. */
static int url_fail(char *err, size_t errlen, const char *msg)
{
    dg_errf(err, errlen, DG_ECONFIG, "%s", msg);
    return -1;
}

int cfg_check_url(const char *s, char *err, size_t errlen)
{
    const char *a = NULL;
    size_t an = 0;
    long sl = url_authority(s, &a, &an);
    int https = sl == 5 && strncasecmp(s, "https", 5) == 0;
    int http = sl == 4 && strncasecmp(s, "http", 4) == 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
            return url_fail(err, errlen, "URL contains a space or control character");
    if (!https && !http) return url_fail(err, errlen, "must be an https:// URL");
    if (memchr(a, '@', an) != NULL)
        return url_fail(err, errlen, "URL must not carry credentials (user@host)");
    char host[256];
    long port;
    if (split_hostport(a, an, 1, host, sizeof host, &port) != 0)
        return url_fail(err, errlen, "URL has a malformed host or port");
    if (http && !cfg_is_loopback_host(s))
        return url_fail(err, errlen,
                        "plain http:// is accepted for loopback hosts only; use https://");
    return 0;
}

int cfg_is_loopback_host(const char *hostport)
{
    if (hostport == NULL) return 0;
    const char *a;
    size_t an;
    if (url_authority(hostport, &a, &an) < 0) {
        a = hostport;
        an = strlen(hostport);
    }
    const char *at = NULL;
    for (size_t i = 0; i < an; i++)
        if (a[i] == '@') at = a + i;
    if (at != NULL) {
        an -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    char host[256];
    size_t hn;
    if (an > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', an);
        if (rb == NULL) return 0;
        hn = (size_t)(rb - a - 1);
        if (hn >= sizeof host) return 0;
        memcpy(host, a + 1, hn);
    } else {
        size_t colons = 0;
        for (size_t i = 0; i < an; i++)
            colons += a[i] == ':';
        const char *colon = memchr(a, ':', an);
        hn = (colons == 1 && colon) ? (size_t)(colon - a) : an; /* bare IPv6: whole */
        if (hn >= sizeof host) return 0;
        memcpy(host, a, hn);
    }
    host[hn] = '\0';
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) return 1;
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1) return buf[0] == 127;
    if (inet_pton(AF_INET6, host, buf) == 1) {
        static const unsigned char v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(buf, v6lo, 16) == 0) return 1;
        if (memcmp(buf, v4mapped, 12) == 0 && buf[12] == 127) return 1;
    }
    return 0;
}
