/* dlog_counts.c — per-batch aggregation of the decision log's per-day counters (`daily`).
 *
 * Every decision adds to a handful of `daily` rows (decisions, outcome, reasons, the k_*
 * KPI counters). Written one upsert at a time, that was ten or more statements per row, all
 * on the same few rows. The writer instead adds each increment to this table in memory and
 * writes the sums once per batch, just before COMMIT (dlog_counts_flush): one upsert per
 * distinct (day, metric, key) of the batch. An undo log lets a request that is rolled back to
 * its savepoint take its increments back out (dlog_counts_mark / dlog_counts_undo), so the
 * counters still move exactly with the rows that commit. Keys are open-addressed by FNV-1a;
 * the table is emptied by every flush or reset, so it holds one batch at most.
 */
#include "gate/dlog_sqlite.h"

#include <stdlib.h>
#include <string.h>

#define COUNTS_SLOTS_MIN 64 /* power of two */

typedef struct {
    char *day, *metric, *key; /* one allocation, owned by the entry */
    int64_t n;
} centry;

struct dlog_counts {
    centry *v; /* entries in first-added order */
    size_t n, cap;
    size_t *slot; /* open addressing: index into v plus one, 0 = empty */
    size_t nslot; /* power of two, at least twice n */
    struct {
        size_t entry;
        int64_t n;
    } * undo;
    size_t nundo, capundo;
};

dlog_counts *dlog_counts_new(void)
{
    return calloc(1, sizeof(dlog_counts));
}

static void entries_free(dlog_counts *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].day);
    c->n = 0;
    c->nundo = 0;
    if (c->slot) memset(c->slot, 0, c->nslot * sizeof *c->slot);
}

void dlog_counts_free(dlog_counts *c)
{
    if (c == NULL) return;
    entries_free(c);
    free(c->v);
    free(c->slot);
    free(c->undo);
    free(c);
}

void dlog_counts_reset(dlog_counts *c)
{
    if (c != NULL) entries_free(c);
}

static uint64_t hash3(const char *a, const char *b, const char *k)
{
    uint64_t h = 1469598103934665603u;
    const char *parts[3] = {a, b, k};
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211u;
        h = (h ^ 0xff) * 1099511628211u;
    }
    return h;
}

static int grow_slots(dlog_counts *c)
{
    size_t ns = c->nslot ? c->nslot * 2 : COUNTS_SLOTS_MIN;
    size_t *s = calloc(ns, sizeof *s);
    if (s == NULL) return -1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = (size_t)hash3(c->v[i].day, c->v[i].metric, c->v[i].key) & (ns - 1);
        while (s[j] != 0)
            j = (j + 1) & (ns - 1);
        s[j] = i + 1;
    }
    free(c->slot);
    c->slot = s;
    c->nslot = ns;
    return 0;
}

int dlog_counts_add(dlog_counts *c, const char *day, const char *metric, const char *key, int64_t n)
{
    if (key == NULL) key = "";
    if ((c->n + 1) * 2 > c->nslot && grow_slots(c) != 0) return -1;
    if (c->nundo == c->capundo) {
        size_t cap = c->capundo ? c->capundo * 2 : 64;
        void *u = realloc(c->undo, cap * sizeof *c->undo);
        if (u == NULL) return -1;
        c->undo = u;
        c->capundo = cap;
    }
    size_t j = (size_t)hash3(day, metric, key) & (c->nslot - 1);
    while (c->slot[j] != 0) {
        centry *e = &c->v[c->slot[j] - 1];
        if (strcmp(e->day, day) == 0 && strcmp(e->metric, metric) == 0 && strcmp(e->key, key) == 0)
            break;
        j = (j + 1) & (c->nslot - 1);
    }
    if (c->slot[j] == 0) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            centry *v = realloc(c->v, cap * sizeof *v);
            if (v == NULL) return -1;
            c->v = v;
            c->cap = cap;
        }
        size_t ld = strlen(day) + 1, lm = strlen(metric) + 1, lk = strlen(key) + 1;
        char *mem = malloc(ld + lm + lk);
        if (mem == NULL) return -1;
        centry *e = &c->v[c->n];
        e->day = memcpy(mem, day, ld);
        e->metric = memcpy(mem + ld, metric, lm);
        e->key = memcpy(mem + ld + lm, key, lk);
        e->n = 0;
        c->slot[j] = ++c->n;
    }
    size_t idx = c->slot[j] - 1;
    c->v[idx].n += n;
    c->undo[c->nundo].entry = idx;
    c->undo[c->nundo].n = n;
    c->nundo++;
    return 0;
}

size_t dlog_counts_mark(const dlog_counts *c)
{
    return c->nundo;
}

void dlog_counts_undo(dlog_counts *c, size_t mark)
{
    while (c->nundo > mark) {
        c->nundo--;
        c->v[c->undo[c->nundo].entry].n -= c->undo[c->nundo].n;
    }
}

dg_err dlog_counts_flush(dlog_counts *c, sqlite3_stmt *add, char *err, size_t errlen)
{
    dg_err rc = DG_OK;
    for (size_t i = 0; i < c->n && rc == DG_OK; i++) {
        const centry *e = &c->v[i];
        if (e->n == 0) continue; /* e.g. a deal's KPI contribution moved and moved back */
        sqlite3_bind_text(add, 1, e->day, -1, SQLITE_STATIC);
        sqlite3_bind_text(add, 2, e->metric, -1, SQLITE_STATIC);
        sqlite3_bind_text(add, 3, e->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(add, 4, e->n);
        if (sqlite3_step(add) != SQLITE_DONE)
            rc = dg_errf(err, errlen, DG_EDB, "decision log: daily counters: %s",
                         sqlite3_errmsg(sqlite3_db_handle(add)));
        sqlite3_reset(add);
        sqlite3_clear_bindings(add);
    }
    entries_free(c);
    return rc;
}
