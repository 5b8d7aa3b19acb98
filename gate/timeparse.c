/* timeparse.c — RFC 3339 (strict) and CRM-export (lenient) times; see timeparse.h. */
#include "gate/timeparse.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

int gate_time_parse(const char *s, int lenient, int64_t *ms)
{
    if (s == NULL) return 0;
    size_t len = strlen(s);
    if (lenient && len >= 10 && len <= 13 && strspn(s, "0123456789") == len) {
        int64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (s[i] - '0');
        *ms = len == 10 ? v * 1000 : v;
        return 1;
    }
    if (len < 10 || s[4] != '-' || s[7] != '-') return 0;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400;
    int64_t frac_ms = 0;
    const char *p = s + 10;
    if (*p == '\0') {
        if (!lenient) return 0;
        *ms = secs * 1000;
        return 1;
    }
    if (!(*p == 'T' || *p == 't' || (lenient && *p == ' '))) return 0;
    p++;
    if (strlen(p) < 5 || p[2] != ':') return 0;
    int h = digits(p, 2), mi = digits(p + 3, 2), se = 0;
    p += 5;
    if (*p == ':') {
        se = digits(p + 1, 2);
        p += 3;
        if (se < 0) return 0;
    } else if (!lenient) {
        return 0;
    }
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se > 60) return 0;
    secs += h * 3600 + mi * 60 + se;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3) frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0) return 0;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = -1, om = -1;
        if (strlen(p) == 6 && p[3] == ':') {
            oh = digits(p + 1, 2);
            om = digits(p + 4, 2);
        } else if (lenient && strlen(p) == 5) {
            oh = digits(p + 1, 2);
            om = digits(p + 3, 2);
        }
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return 0;
        int off = (oh * 60 + om) * 60;
        secs -= *p == '+' ? off : -off;
        p += strlen(p);
    } else if (!(lenient && *p == '\0')) {
        return 0;
    }
    if (*p != '\0' || secs < 0) return 0;
    *ms = secs * 1000 + frac_ms;
    return 1;
}

void gate_time_format(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00Z");
        return;
    }
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
}
