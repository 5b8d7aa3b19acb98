/* json.c — strict JSON intake on top of cJSON.
 *
 * Before cJSON sees a body, one linear pass checks what cJSON would let through silently:
 * NUL characters (raw or as \u0000, which cJSON cuts strings at), invalid UTF-8 in
 * strings, nesting deeper than JSON_MAX_DEPTH, raw control characters in strings and
 * numbers outside the JSON grammar (the last two are malformed JSON: 400). After parsing,
 * a walk over the tree refuses duplicate keys, sorting the keys of large objects.
 * Malformed JSON is reported with the byte offset cJSON stopped at.
 */
#include "gate/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/money.h"
#include "config/sha256.h"
#include "config/utf8.h"
#include "gate/gate.h"
#include <stdio.h>

#define JSON_MAX_DEPTH 64

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the JSON number (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) at
 * s, or 0 when what starts there is not one. cJSON hands the text to strtod and so takes
 * "0123", "-.5", "1." and "1.e5" as numbers. */
static size_t json_number(const unsigned char *s, size_t n)
{
    size_t i = 0, d;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') {
        i++;
    } else {
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == d) return 0;
    }
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == d) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == d) return 0;
    }
    if (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                  s[i] == '+' || s[i] == '-'))
        return 0; /* "0123", "1.2.3", "1e5e5" */
    return i;
}

/* The pre-pass: NULs, UTF-8, depth, and two things cJSON lets through that JSON forbids:
 * raw control characters in strings and numbers outside the JSON grammar. Other syntax
 * errors are left to cJSON. */
static dg_err json_prescan(const char *body, size_t len, char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)body;
    int in_str = 0, depth = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == 0)
            return dg_errf(err, errlen, DG_EINVAL, "NUL character at byte %zu is not allowed", i);
        if (in_str) {
            if (c == '"') {
                in_str = 0;
            } else if (c < 0x20) {
                return dg_errf(err, errlen, DG_EPARSE,
                               "malformed JSON at byte %zu: control character in a string "
                               "(write it as an escape)",
                               i);
            } else if (c == '\\' && i + 1 < len) {
                if (s[i + 1] == 'u' && i + 5 < len) {
                    int v = 0, ok = 1;
                    for (size_t k = 2; k < 6; k++) {
                        int h = hexval(s[i + k]);
                        if (h < 0) ok = 0;
                        v = (v << 4) | (h < 0 ? 0 : h);
                    }
                    if (ok && v == 0)
                        return dg_errf(err, errlen, DG_EINVAL,
                                       "\\u0000 at byte %zu is not allowed in a string", i);
                }
                i++;
            } else if (c >= 0x80) {
                size_t n = dg_utf8_seq(s + i, len - i);
                if (n == 0) return dg_errf(err, errlen, DG_EINVAL, "invalid UTF-8 at byte %zu", i);
                i += n - 1;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = json_number(s + i, len - i);
            if (n == 0)
                return dg_errf(err, errlen, DG_EPARSE, "malformed JSON at byte %zu: invalid number",
                               i);
            i += n - 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return dg_errf(err, errlen, DG_EINVAL, "JSON nested deeper than %d at byte %zu",
                               JSON_MAX_DEPTH, i);
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return DG_OK;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key of object node that appears twice, or NULL. Pairwise for a few keys; for more, by
 * sorting (O(n log n): pairwise, a 1 MiB body of 90k keys took 29 s of CPU), or pairwise
 * again when the sort array cannot be allocated. */
static const char *dup_key(const cJSON *node)
{
    size_t n = 0;
    for (const cJSON *a = node->child; a; a = a->next)
        n++;
    const char **keys = n > 16 ? malloc(n * sizeof *keys) : NULL;
    if (keys == NULL) {
        for (const cJSON *a = node->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && strcmp(a->string, b->string) == 0) return a->string;
        return NULL;
    }
    size_t k = 0;
    for (const cJSON *a = node->child; a; a = a->next)
        if (a->string) keys[k++] = a->string;
    qsort(keys, k, sizeof *keys, key_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < k && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

/* Refuses duplicate keys anywhere in the tree; path names the object in messages. */
static dg_err json_no_dups(const cJSON *node, char *path, size_t pathcap, char *err, size_t errlen)
{
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) return DG_OK;
    size_t plen = strlen(path);
    int idx = 0;
    if (cJSON_IsObject(node)) {
        const char *dup = dup_key(node);
        if (dup)
            return dg_errf(err, errlen, DG_EINVAL, "duplicate key \"%s\" in %s", dup,
                           plen ? path : "the body");
    }
    for (const cJSON *a = node->child; a; a = a->next, idx++) {
        if (cJSON_IsObject(node)) {
            snprintf(path + plen, pathcap - plen, "%s%s", plen ? "." : "",
                     a->string ? a->string : "");
        } else {
            snprintf(path + plen, pathcap - plen, "[%d]", idx);
        }
        dg_err rc = json_no_dups(a, path, pathcap, err, errlen);
        path[plen] = '\0';
        if (rc != DG_OK) return rc;
    }
    return DG_OK;
}

dg_err gate_json_parse(const char *body, size_t len, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    dg_err rc = json_prescan(body, len, err, errlen);
    if (rc != DG_OK) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        if (off > len) off = len;
        return dg_errf(err, errlen, DG_EPARSE, "malformed JSON at byte %zu", off);
    }
    /* Trailing content after the value (other than white space) is malformed too. */
    size_t off = (size_t)(end - body);
    while (off < len &&
           (body[off] == ' ' || body[off] == '\t' || body[off] == '\n' || body[off] == '\r'))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        return dg_errf(err, errlen, DG_EPARSE, "malformed JSON at byte %zu: trailing data", off);
    }
    char path[256] = "";
    rc = json_no_dups(root, path, sizeof path, err, errlen);
    if (rc != DG_OK) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return DG_OK;
}

dg_err gate_json_str(const cJSON *obj, const char *path, const char *key, size_t max_len,
                     const char **val, char *err, size_t errlen)
{
    *val = NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it == NULL || cJSON_IsNull(it)) return DG_OK;
    const char *dot = (path && *path) ? "." : "";
    if (!cJSON_IsString(it))
        return dg_errf(err, errlen, DG_EINVAL, "field %s%s%s must be a string", path ? path : "",
                       dot, key);
    if (max_len && strlen(it->valuestring) > max_len)
        return dg_errf(err, errlen, DG_EINVAL, "field %s%s%s is longer than %zu characters",
                       path ? path : "", dot, key, max_len);
    *val = it->valuestring;
    return DG_OK;
}

dg_err gate_json_amount(const cJSON *item, const char *field, int exponent, int64_t *minor,
                        char *err, size_t errlen)
{
    char msg[160];
    dg_err rc;
    if (cJSON_IsString(item)) {
        rc = dg_amount_parse(item->valuestring, strlen(item->valuestring), exponent, 0, minor, msg,
                             sizeof msg);
    } else if (cJSON_IsNumber(item)) {
        rc = dg_amount_from_double(item->valuedouble, exponent, minor, msg, sizeof msg);
    } else {
        return dg_errf(err, errlen, DG_EINVAL, "field %s must be a decimal string", field);
    }
    if (rc != DG_OK) return dg_errf(err, errlen, DG_EINVAL, "field %s: %s", field, msg);
    return DG_OK;
}

dg_err gate_json_hash(const cJSON *root, char hex[65])
{
    char *canon = cJSON_PrintUnformatted(root);
    if (!canon) return DG_ENOMEM;
    dg_sha256_hex(canon, strlen(canon), hex);
    free(canon);
    return DG_OK;
}
