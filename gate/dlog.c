/* dlog.c — the decision log on SQLite (WAL), one writer thread, a small pool of readers.
 *
 * Writes: dlog_append(), dlog_append_comp() and dlog_note_retry() copy their arguments into
 * a request, put it on a bounded queue and sleep until it is done. The writer thread takes
 * everything queued and commits it in one BEGIN IMMEDIATE ... COMMIT, so concurrent
 * decisions share one fsync (synchronous=FULL: a commit is durable before anyone is told
 * OK). Each request runs inside its own SAVEPOINT, so a row that is refused (an event id
 * already logged) is rolled back alone; if the commit itself fails, every request of the
 * batch gets DG_EDB, dlog_healthy() turns 0, and the next batch simply tries again.
 *
 * Reads run on DLOG_READERS connections of their own (query_only), handed out under a
 * mutex; in WAL mode they never wait for the writer. Schema and the reasoning behind it:
 * docs/internals/decision-log.md.
 */
#include "gate/dlog.h"
#include "config/buf.h"
#include "gate/dlog_internal.h"
#include "gate/dlog_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#define DLOG_FILE "dealgate.db"
#define DLOG_QUEUE_MAX 1024 /* requests waiting for the writer; appenders wait beyond */
#define DLOG_READERS 4      /* read connections */
#define DLOG_BUSY_MS 5000   /* sqlite busy_timeout, every connection */
#define DLOG_LIMIT_DEFAULT 50
#define DLOG_LIMIT_MAX 500
#define DLOG_CURSOR_MAX 128 /* longest cursor accepted (encoded) */
#define DLOG_ID_MAX 64      /* longest id accepted inside a cursor */
#define DLOG_ERRLEN 256
#define DLOG_DAYLEN 48 /* room for any int fields, to please -Wformat */
#define DLOG_TIMELEN 96
#define DLOG_TIME_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define DLOG_CKPT_FRAMES 16000 /* WAL frames that start a checkpoint (64 MiB of 4 KiB pages) */
#define DLOG_CKPT_WAIT_MS 50   /* the RESTART checkpoint waits this long for the WAL's users */
#define DLOG_CKPT_PASSES 4     /* PASSIVE passes before a RESTART, at most ... */
#define DLOG_CKPT_TAIL 256     /* ... while the last found more new frames than this */
#define DLOG_BLOOM_MIN 524288  /* keys a Bloom filter is sized for at least (1 MiB of bits) */
#define DLOG_BLOOM_BITS 10     /* bits per key it is sized for, and ... */
#define DLOG_BLOOM_K 7         /* ... probes per key: about 1 % false "maybe" when full */
#define DLOG_BLOOM_OVERFILL 3  /* past cap x this, a filter turns off */

/* ---- schema ------------------------------------------------------------------------------ */

/* migrations[i] brings the schema from version i to i+1 (PRAGMA user_version). Append new
 * steps at the end; never edit a step that has shipped. */
static const char *const migrations[] = {
    /* 1: decisions, deals, deal_stage_raw, daily, comp_checks, writebacks */
    "CREATE TABLE decisions ("
    " id TEXT NOT NULL PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " adapter TEXT NOT NULL,"
    " event_id TEXT,"
    " body_hash TEXT,"
    " opp_id TEXT NOT NULL,"
    " pipeline TEXT,"
    " name TEXT,"
    " account TEXT,"
    " owner TEXT,"
    " amount INTEGER,"
    " currency TEXT,"
    " clouds TEXT,"
    " from_stage TEXT,"
    " from_raw TEXT,"
    " to_stage TEXT,"
    " to_raw TEXT,"
    " outcome TEXT NOT NULL,"
    " mode TEXT,"
    " message TEXT,"
    " reasons TEXT,"
    " warnings TEXT,"
    " registrations TEXT,"
    " config_version TEXT,"
    " latency_us INTEGER,"
    " gated INTEGER NOT NULL DEFAULT 0,"
    " won INTEGER NOT NULL DEFAULT 0,"
    " lost INTEGER NOT NULL DEFAULT 0,"
    " decision_json TEXT NOT NULL);"
    "CREATE UNIQUE INDEX decisions_event ON decisions(adapter, event_id)"
    " WHERE event_id IS NOT NULL;"
    "CREATE INDEX decisions_time ON decisions(time_ms, id);"
    "CREATE INDEX decisions_opp ON decisions(opp_id, time_ms, id);"
    "CREATE INDEX decisions_owner ON decisions(owner, time_ms, id);"
    "CREATE INDEX decisions_outcome ON decisions(outcome, time_ms, id);"

    "CREATE TABLE deals ("
    " opp_id TEXT NOT NULL PRIMARY KEY,"
    " pipeline TEXT,"
    " name TEXT,"
    " account TEXT,"
    " owner TEXT,"
    " amount INTEGER,"
    " currency TEXT,"
    " clouds TEXT,"
    " last_stage TEXT,"
    " last_raw TEXT,"
    " last_outcome TEXT,"
    " last_decision_id TEXT,"
    " last_time_ms INTEGER,"
    " last_message TEXT,"
    " last_reasons TEXT,"
    " first_gated_ms INTEGER,"
    " first_gated_outcome TEXT,"
    " first_allowed_ms INTEGER,"
    " blocked INTEGER NOT NULL DEFAULT 0,"
    " won_ms INTEGER,"
    " lost_ms INTEGER,"
    " retry_since INTEGER NOT NULL DEFAULT 0,"
    " decisions INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deals_blocked ON deals(last_time_ms) WHERE blocked = 1;"
    "CREATE INDEX deals_owner ON deals(owner);"
    "CREATE INDEX deals_first_gated ON deals(first_gated_ms) WHERE first_gated_ms IS NOT NULL;"
    "CREATE INDEX deals_won ON deals(won_ms) WHERE won_ms IS NOT NULL;"
    "CREATE INDEX deals_lost ON deals(lost_ms) WHERE lost_ms IS NOT NULL;"

    "CREATE TABLE deal_stage_raw ("
    " opp_id TEXT NOT NULL,"
    " stage TEXT NOT NULL,"
    " raw TEXT NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " PRIMARY KEY (opp_id, stage)) WITHOUT ROWID;"

    "CREATE TABLE daily ("
    " day TEXT NOT NULL,"
    " metric TEXT NOT NULL,"
    " key TEXT NOT NULL DEFAULT '',"
    " count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, metric, key)) WITHOUT ROWID;"

    "CREATE TABLE comp_checks ("
    " id TEXT NOT NULL PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " batch_id TEXT,"
    " deal_id TEXT,"
    " rep TEXT,"
    " channel TEXT,"
    " cloud TEXT,"
    " currency TEXT,"
    " violation INTEGER NOT NULL DEFAULT 0,"
    " codes TEXT,"
    " shortfall TEXT,"
    " result_json TEXT NOT NULL);"
    "CREATE INDEX comp_checks_time ON comp_checks(time_ms, id);"
    "CREATE INDEX comp_checks_rep ON comp_checks(rep, time_ms, id);"
    "CREATE INDEX comp_checks_violation ON comp_checks(violation, time_ms, id);"
    "CREATE INDEX comp_checks_batch ON comp_checks(batch_id);"

    "CREATE TABLE writebacks ("
    " id INTEGER PRIMARY KEY,"
    " decision_id TEXT NOT NULL REFERENCES decisions(id),"
    " crm TEXT NOT NULL,"
    " opp_id TEXT NOT NULL,"
    " payload_json TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending'"
    "  CHECK (state IN ('pending', 'done', 'superseded', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX writebacks_once ON writebacks(decision_id, crm);"
    "CREATE INDEX writebacks_due ON writebacks(next_at_ms) WHERE state = 'pending';"
    "CREATE INDEX writebacks_opp ON writebacks(opp_id);",

    /* 2: KPI state kept on write (gate/dlog_kpi.c, docs/kpis.md): per deal, what it
     * contributes to the k_* rows of `daily`, the clouds of its first allowed gated move,
     * its blocked streak and the stage it tried last; its verified registrations. */
    "CREATE TABLE deal_kpi ("
    " opp_id TEXT NOT NULL PRIMARY KEY,"
    " reach_checked TEXT,"
    " reach_verified TEXT,"
    " blocked_since_ms INTEGER,"
    " last_to TEXT,"
    " last_ms INTEGER NOT NULL DEFAULT 0,"
    " last_id TEXT,"
    " accounted TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
    "CREATE TABLE deal_regs ("
    " opp_id TEXT NOT NULL,"
    " cloud TEXT NOT NULL,"
    " reg_id TEXT,"
    " verified_ms INTEGER NOT NULL,"
    " created_ms INTEGER,"
    " origin TEXT,"
    " PRIMARY KEY (opp_id, cloud)) WITHOUT ROWID;",

    /* 3: deal-desk overrides and re-verification lapses (gate/dlog_overrides.c,
     * gate/dlog_reverify.c; docs/internals/decision-log.md) */
    "CREATE TABLE overrides ("
    " id TEXT NOT NULL PRIMARY KEY,"
    " opp_id TEXT NOT NULL,"
    " rule TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " approved_by TEXT NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER);"
    "CREATE INDEX overrides_opp ON overrides(opp_id, expires_ms);"
    "CREATE INDEX overrides_time ON overrides(created_ms, id);"
    "CREATE TABLE deal_lapses ("
    " opp_id TEXT NOT NULL PRIMARY KEY,"
    " checked_ms INTEGER NOT NULL DEFAULT 0,"
    " lapsed_ms INTEGER,"
    " cloud TEXT,"
    " reg_id TEXT,"
    " status TEXT,"
    " code TEXT,"
    " message TEXT,"
    " decision_id TEXT,"
    " restored_ms INTEGER) WITHOUT ROWID;"
    "CREATE INDEX deal_lapses_lapsed ON deal_lapses(lapsed_ms) WHERE lapsed_ms IS NOT NULL;",

    /* 4: blocked deals filtered by owner, cloud or reason (/ui) are tested on this covering
     * index, newest first, without reading the deals' rows (gate/dlog_read.c) */
    "CREATE INDEX deals_blocked_filter ON deals(last_time_ms, opp_id, owner, clouds, last_reasons)"
    " WHERE blocked = 1;",

    /* 5: indexes no query uses, each one more B-tree page dirtied by nearly every decision
     * (deals_owner: one per owner in the batch; decisions_outcome: two runs of the time
     * order). Outcome filters walk decisions_time; blocked deals by owner are tested on the
     * covering index deals_blocked_filter. */
    "DROP INDEX decisions_outcome;"
    "DROP INDEX deals_owner;"
    "DROP INDEX deals_first_gated;"
    "DROP INDEX deals_won;"
    "DROP INDEX deals_lost;",
};

#define DLOG_SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements ---------------------------------------------------------------------------- */

enum {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_SAVEPOINT,
    W_RELEASE,
    W_ROLLBACK_TO,
    W_INS_DECISION,
    W_DEAL_UPSERT,
    W_STAGE_RAW,
    W_STAGE_RAW2,
    W_INS_WRITEBACK,
    W_INS_COMP,
    W_RETRY,
    W_COUNT
};

/* The decision is the deal's newest (by time, then id), inside W_DEAL_UPSERT's DO UPDATE. */
#define DEAL_LATEST                                                                                \
    "(last_time_ms IS NULL OR :time > last_time_ms"                                                \
    " OR (:time = last_time_ms AND (last_decision_id IS NULL OR :id >= last_decision_id)))"

static const char *const wsql[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_SAVEPOINT] = "SAVEPOINT dlog_row",
    [W_RELEASE] = "RELEASE dlog_row",
    [W_ROLLBACK_TO] = "ROLLBACK TO dlog_row",
    [W_INS_DECISION] =
        "INSERT INTO decisions (id, time_ms, adapter, event_id, body_hash, opp_id, pipeline,"
        " name, account, owner, amount, currency, clouds, from_stage, from_raw, to_stage, to_raw,"
        " outcome, mode, message, reasons, warnings, registrations, config_version, latency_us,"
        " gated, won, lost, decision_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
        " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28,"
        " ?29)",
    /* One upsert per decision. The values of a new deal are what the update makes of an
     * empty row. DEAL_LATEST says whether this decision is the deal's newest (by time, then
     * id; a row that only a retry note created has none): only then does it move the
     * deal's current state. Descriptive fields keep their last known value when a call
     * leaves them out. All SET expressions see the row before the update. RETURNING hands
     * the KPI accounting the deal's state after it. */
    [W_DEAL_UPSERT] =
        "INSERT INTO deals (opp_id, pipeline, name, account, owner, amount, currency, clouds,"
        " last_stage, last_raw, last_outcome, last_decision_id, last_time_ms, last_message,"
        " last_reasons, blocked, won_ms, lost_ms, first_gated_ms, first_gated_outcome,"
        " first_allowed_ms, retry_since, decisions)"
        " VALUES (:opp, :pipeline, :name, :account, :owner, :amount, :currency, :clouds, :stage,"
        " CASE WHEN :stage IS NOT NULL THEN :raw END, :outcome, :id, :time, :message, :reasons,"
        " :outcome = 'block',"
        " CASE WHEN :outcome = 'allow' AND :stage IS NOT NULL AND :won THEN :time END,"
        " CASE WHEN :outcome = 'allow' AND :stage IS NOT NULL AND :lost THEN :time END,"
        " CASE WHEN :gated THEN :time END, CASE WHEN :gated THEN :outcome END,"
        " CASE WHEN :gated AND :outcome = 'allow' THEN :time END, 0, 1)"
        " ON CONFLICT (opp_id) DO UPDATE SET"
        " pipeline = CASE WHEN " DEAL_LATEST " THEN coalesce(:pipeline, pipeline)"
        "  ELSE coalesce(pipeline, :pipeline) END,"
        " name = CASE WHEN " DEAL_LATEST " THEN coalesce(:name, name)"
        "  ELSE coalesce(name, :name) END,"
        " account = CASE WHEN " DEAL_LATEST " THEN coalesce(:account, account)"
        "  ELSE coalesce(account, :account) END,"
        " owner = CASE WHEN " DEAL_LATEST " THEN coalesce(:owner, owner)"
        "  ELSE coalesce(owner, :owner) END,"
        " amount = CASE WHEN :amount IS NOT NULL AND (" DEAL_LATEST " OR amount IS NULL)"
        "  THEN :amount ELSE amount END,"
        " currency = CASE WHEN :currency IS NOT NULL AND (" DEAL_LATEST " OR currency IS NULL)"
        "  THEN :currency ELSE currency END,"
        " clouds = CASE WHEN " DEAL_LATEST " THEN coalesce(:clouds, clouds)"
        "  ELSE coalesce(clouds, :clouds) END,"
        " last_stage = CASE WHEN " DEAL_LATEST " AND :stage IS NOT NULL THEN :stage"
        "  ELSE last_stage END,"
        " last_raw = CASE WHEN " DEAL_LATEST " AND :stage IS NOT NULL"
        "  THEN coalesce(:raw, CASE WHEN :stage = last_stage THEN last_raw END)"
        "  ELSE last_raw END,"
        " last_outcome = CASE WHEN " DEAL_LATEST " THEN :outcome ELSE last_outcome END,"
        " last_decision_id = CASE WHEN " DEAL_LATEST " THEN :id ELSE last_decision_id END,"
        " last_time_ms = CASE WHEN " DEAL_LATEST " THEN :time ELSE last_time_ms END,"
        " last_message = CASE WHEN " DEAL_LATEST " THEN :message ELSE last_message END,"
        " last_reasons = CASE WHEN " DEAL_LATEST " THEN :reasons ELSE last_reasons END,"
        " blocked = CASE WHEN " DEAL_LATEST " THEN :outcome = 'block' ELSE blocked END,"
        " won_ms = CASE WHEN " DEAL_LATEST " AND :outcome = 'allow' AND :stage IS NOT NULL"
        "  THEN CASE WHEN :won THEN :time ELSE NULL END ELSE won_ms END,"
        " lost_ms = CASE WHEN " DEAL_LATEST " AND :outcome = 'allow' AND :stage IS NOT NULL"
        "  THEN CASE WHEN :lost THEN :time ELSE NULL END ELSE lost_ms END,"
        " first_gated_ms = CASE WHEN :gated AND (first_gated_ms IS NULL OR :time < first_gated_ms)"
        "  THEN :time ELSE first_gated_ms END,"
        " first_gated_outcome = CASE WHEN :gated"
        "  AND (first_gated_ms IS NULL OR :time < first_gated_ms)"
        "  THEN :outcome ELSE first_gated_outcome END,"
        " first_allowed_ms = CASE WHEN :gated AND :outcome = 'allow'"
        "  AND (first_allowed_ms IS NULL OR :time < first_allowed_ms)"
        "  THEN :time ELSE first_allowed_ms END,"
        " retry_since = 0,"
        " decisions = decisions + 1"
        " RETURNING clouds, amount, currency, first_gated_ms, first_allowed_ms, won_ms, lost_ms,"
        " decisions",
    /* both sides of a move in one statement (rows in order: with one stage on both sides the
     * target's value wins, as two statements would have it) */
    [W_STAGE_RAW2] = "INSERT INTO deal_stage_raw (opp_id, stage, raw, time_ms)"
                     " VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?4) ON CONFLICT (opp_id, stage)"
                     " DO UPDATE SET raw = excluded.raw, time_ms = excluded.time_ms"
                     " WHERE excluded.time_ms >= deal_stage_raw.time_ms",
    [W_STAGE_RAW] = "INSERT INTO deal_stage_raw (opp_id, stage, raw, time_ms)"
                    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (opp_id, stage) DO UPDATE"
                    " SET raw = excluded.raw, time_ms = excluded.time_ms"
                    " WHERE excluded.time_ms >= deal_stage_raw.time_ms",
    /* the write-back job a decision calls for, queued with it (a replay queues nothing:
     * the decision's own INSERT refuses it first) */
    [W_INS_WRITEBACK] = "INSERT INTO writebacks (decision_id, crm, opp_id, payload_json, state,"
                        " attempts, next_at_ms, created_ms, updated_ms)"
                        " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)"
                        " ON CONFLICT (decision_id, crm) DO NOTHING",
    [W_INS_COMP] = "INSERT INTO comp_checks (id, time_ms, batch_id, deal_id, rep, channel, cloud,"
                   " currency, violation, codes, shortfall, result_json)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [W_RETRY] = "INSERT INTO deals (opp_id, retry_since) VALUES (?1, ?2)"
                " ON CONFLICT (opp_id) DO UPDATE SET retry_since = excluded.retry_since"
                " WHERE deals.retry_since = 0",
};

/* The named parameters of W_DEAL_UPSERT (their indexes are resolved once, at open). */
enum {
    DP_OPP,
    DP_PIPELINE,
    DP_NAME,
    DP_ACCOUNT,
    DP_OWNER,
    DP_AMOUNT,
    DP_CURRENCY,
    DP_CLOUDS,
    DP_STAGE,
    DP_RAW,
    DP_OUTCOME,
    DP_ID,
    DP_TIME,
    DP_MESSAGE,
    DP_REASONS,
    DP_WON,
    DP_LOST,
    DP_GATED,
    DP_COUNT
};
static const char *const deal_params[DP_COUNT] = {
    ":opp",      ":pipeline", ":name",    ":account", ":owner",   ":amount",
    ":currency", ":clouds",   ":stage",   ":raw",     ":outcome", ":id",
    ":time",     ":message",  ":reasons", ":won",     ":lost",    ":gated"};

enum { R_FIND_EVENT, R_FIND_BODY, R_GET, R_DEAL_STATE, R_STAGE_RAW, R_COUNT };

static const char *const rsql[R_COUNT] = {
    [R_FIND_EVENT] = "SELECT decision_json, body_hash FROM decisions"
                     " WHERE adapter = ?1 AND event_id = ?2",
    [R_FIND_BODY] = "SELECT decision_json FROM decisions"
                    " WHERE opp_id = ?1 AND body_hash = ?2 AND time_ms >= ?3"
                    " ORDER BY time_ms DESC, id DESC LIMIT 1",
    [R_GET] = "SELECT decision_json FROM decisions WHERE id = ?1",
    [R_DEAL_STATE] = "SELECT last_stage, last_raw, retry_since FROM deals WHERE opp_id = ?1",
    [R_STAGE_RAW] = "SELECT raw FROM deal_stage_raw WHERE opp_id = ?1 AND stage = ?2",
};

/* ---- the log ------------------------------------------------------------------------------ */

/* A Bloom filter of the event ids the log holds: "certainly not there" lets a request skip a
 * read that would find nothing. Only the writer adds, before the COMMIT that makes the key
 * visible, so the filter never misses a key this process committed; a key whose transaction
 * failed, or whose row was pruned, only costs a read. Another process writing the same log
 * (dealgate import-history, while the service runs) logs only adapter "import", which the gate
 * never looks up. Bits are atomic words (readers never lock). Past DLOG_BLOOM_OVERFILL times
 * its capacity the filter turns itself off (every answer "maybe") until the next open sizes
 * it anew. (Deals get no such filter: an import may add history to a deal at any time.) */
struct bloom {
    _Atomic uint64_t *w; /* nbits / 64 words; NULL: off (every key "maybe") */
    uint64_t mask;       /* nbits - 1, nbits a power of two */
    atomic_size_t n;     /* keys added */
    size_t cap;          /* keys it was sized for */
};

typedef enum { RQ_DECISION, RQ_COMP, RQ_RETRY, RQ_CALL } rq_kind;

/* One queued write. Owns mem, which holds copies of every string it points at. */
struct req {
    struct req *next;
    rq_kind kind;
    dlog_decision d;       /* RQ_DECISION */
    dlog_comp_line *lines; /* RQ_COMP: nlines, inside mem */
    size_t nlines;
    const char *opp_id; /* RQ_RETRY */
    dlog_write_fn fn;   /* RQ_CALL: dlog_write_call */
    void *arg;
    int64_t now_s;
    char *mem;
    sem_t done; /* posted once rc/err are final and the write is durable */
    dg_err rc;
    char err[DLOG_ERRLEN];
};

/* A committed (or failed) batch waiting for the syncer: its requests are answered only
 * once an fdatasync of the WAL that started after the commit has returned. */
struct pending {
    struct pending *next;
    struct req *reqs;
    uint64_t seq;  /* the commit's sequence number (l->visible_seq when it committed) */
    int committed; /* 0: the batch failed, nothing to make durable */
};

struct rconn {
    sqlite3 *db;
    sqlite3_stmt *st[R_COUNT]; /* prepared on first use */
    int busy;
};

struct dlog {
    char *path;
    sqlite3 *wdb; /* the writer thread's after dlog_open */
    sqlite3_stmt *wst[W_COUNT];
    int deal_pi[DP_COUNT]; /* parameter indexes of W_DEAL_UPSERT */
    dlog_kpi *kpi;         /* KPI state on write, on wdb (dlog_kpi.c) */

    pthread_mutex_t mu; /* guards everything below up to `rows` */
    pthread_cond_t cv_work, cv_done, cv_space;
    struct req *head, *tail;
    size_t queued;
    size_t inflight; /* callers inside submit() */
    int stopping;
    uint64_t batches, rows;
    uint64_t batch_hist[DLOG_BATCH_BUCKETS + 1]; /* commits by rows written (dlog_batch_sizes) */
    pthread_t writer;
    int writer_started;
    int writer_ran; /* the writer thread ran (and has stopped): optimize at close */

    atomic_int healthy;

    /* Durability (see "Durability" in docs/internals/decision-log.md): the writer commits
     * with synchronous=NORMAL and hands each batch to the syncer thread, which answers it
     * after an fdatasync of the WAL (wal_fd) that began after the commit. */
    int wal_fd;
    atomic_uint_fast64_t visible_seq; /* bumped by the writer just before each COMMIT */
    atomic_uint_fast64_t synced_seq;  /* every commit up to this one is on stable storage */
    pthread_mutex_t smu;              /* guards the pending list, sync_stop, sync_waiters */
    pthread_cond_t scv_work, scv_synced;
    struct pending *phead, *ptail;
    int sync_stop;
    int sync_waiters; /* readers waiting in wait_durable() */
    pthread_t syncer;
    int syncer_started;

    /* Checkpoints run on their own connection and thread, so the writer never stalls on
     * copying the WAL back into the database file. */
    sqlite3 *cdb;
    pthread_mutex_t cmu; /* guards ckpt_want, ckpt_stop */
    pthread_cond_t ccv;
    int ckpt_want, ckpt_stop;
    pthread_t ckpt;
    int ckpt_started;
    atomic_uint_fast64_t checkpoints; /* completed, for tests and /metrics */

    struct bloom events; /* "adapter\x1fevent_id" of every logged decision with an event id */

    /* deals that may have a live override (dlog_ovr_note / dlog_ovr_maybe) */
    pthread_rwlock_t olock;
    char **oset;     /* open addressing, NULL = empty slot */
    size_t on, ocap; /* entries, slots (a power of two, at least twice on) */
    int oall;        /* out of memory once: every deal may have one */

    pthread_mutex_t rmu; /* guards rc[].busy */
    pthread_cond_t rcv;
    struct rconn rc[DLOG_READERS];
#ifdef DG_BENCH_LOG_STAGES
    int stage; /* LOG_STAGE */
#endif
};

/* How much of the log a decision goes through: all of it, except in a build for
 * bench/ceiling.sh (cmake -DDG_BENCH_LOG_STAGES=ON, never a release build), where the
 * environment's DG_BENCH_LOG picks "off" (dlog_append returns once its input is checked:
 * nothing is queued, nothing is durable), "commit" (queued, and committed and synced in
 * batches, but nothing is written) or "row" (its decisions row only: no deal state, KPI state
 * or counters). Read once, in dlog_open. */
enum { LOG_ALL, LOG_OFF, LOG_COMMIT, LOG_ROW };
#ifdef DG_BENCH_LOG_STAGES
static int log_stage_from_env(void)
{
    const char *s = getenv("DG_BENCH_LOG");
    return s == NULL              ? LOG_ALL
           : !strcmp(s, "off")    ? LOG_OFF
           : !strcmp(s, "commit") ? LOG_COMMIT
           : !strcmp(s, "row")    ? LOG_ROW
                                  : -1;
}
#define LOG_STAGE(l) ((l)->stage)
#else
#define LOG_STAGE(l) LOG_ALL
#endif

/* ---- small helpers ------------------------------------------------------------------------ */

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bindn_text(sqlite3_stmt *st, const char *name, const char *s)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i > 0 ? bind_text(st, i, s) : SQLITE_RANGE;
}

static int bindn_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i > 0 ? sqlite3_bind_int64(st, i, v) : SQLITE_RANGE;
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows of interest; resets it. Returns the step code. */
static int run_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE;
    stmt_done(st);
    return rc;
}

/* Returns a malloc'd copy of column i (NULL for SQL NULL or no memory; *oom set then). */
static char *col_dup(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    if (s == NULL) return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(n + 1);
    if (p == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- JSON validation without building a tree (RFC 8259 grammar) ----------------------------
 * dlog_append checks that its JSON columns are JSON of the right type (the read side splices
 * them into replies as they are). Parsing them with cJSON allocated a node per value, five
 * texts per decision; this only scans. It is as strict as the RFC (cJSON accepts a little
 * more, e.g. "1."), and nests at most DLOG_JSON_DEPTH deep (cJSON: 1000). */

#define DLOG_JSON_DEPTH 512

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int js_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Each returns the position after what it scanned, or NULL when it is not valid JSON. */
static const char *js_string(const char *p)
{
    if (*p++ != '"') return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"') return p;
        if (c < 0x20) return NULL; /* also the end of the text */
        if (c != '\\') continue;
        c = (unsigned char)*p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++)
                if (!js_hex(*p++)) return NULL;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return NULL;
        }
    }
}

static const char *js_digits(const char *p)
{
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    return p;
}

static const char *js_number(const char *p)
{
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if ((p = js_digits(p)) == NULL)
        return NULL;
    if (*p == '.' && (p = js_digits(p + 1)) == NULL) return NULL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if ((p = js_digits(p)) == NULL) return NULL;
    }
    return p;
}

static const char *js_value(const char *p, int depth)
{
    p = js_ws(p);
    switch (*p) {
    case '"':
        return js_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        if (depth >= DLOG_JSON_DEPTH) return NULL;
        p = js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                if ((p = js_string(js_ws(p))) == NULL) return NULL;
                p = js_ws(p);
                if (*p++ != ':') return NULL;
            }
            if ((p = js_value(p, depth + 1)) == NULL) return NULL;
            p = js_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    default:
        return js_number(p);
    }
}

/* Returns 1 if s is one JSON value of the given type (cJSON_Object / cJSON_Array). */
static int json_is(const char *s, int type)
{
    const char *p = js_ws(s);
    if (*p != (type == cJSON_Object ? '{' : '[')) return 0;
    p = js_value(p, 0);
    return p != NULL && *js_ws(p) == '\0';
}

/* UTC day "YYYY-MM-DD" of a unix-ms time (times are checked to be in 1970..9999). */
static void day_of(int64_t time_ms, char out[DLOG_DAYLEN])
{
    time_t t = (time_t)(time_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, DLOG_DAYLEN, "0000-00-00");
        return;
    }
    snprintf(out, DLOG_DAYLEN, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* RFC 3339 UTC with milliseconds: "2026-10-01T09:00:00.123Z". */
static void rfc3339_ms(int64_t time_ms, char out[DLOG_TIMELEN])
{
    int64_t ms = time_ms % 1000;
    int64_t s = time_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        s -= 1;
    }
    time_t t = (time_t)s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, DLOG_TIMELEN, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, DLOG_TIMELEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

/* ---- cursors: base64url (no padding) of "time_ms:id" ----------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void cursor_encode(int64_t time_ms, const char *id, char *out, size_t outlen)
{
    char raw[DLOG_ID_MAX + 32];
    int n = snprintf(raw, sizeof raw, "%" PRId64 ":%s", time_ms, id);
    if (n < 0 || (size_t)n >= sizeof raw) n = 0; /* cannot happen: ids are bounded on write */
    size_t o = 0;
    for (int i = 0; i < n && o + 5 < outlen; i += 3) {
        unsigned v = (unsigned char)raw[i] << 16;
        int rem = n - i;
        if (rem > 1) v |= (unsigned char)raw[i + 1] << 8;
        if (rem > 2) v |= (unsigned char)raw[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (rem > 1) out[o++] = b64url[(v >> 6) & 63];
        if (rem > 2) out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes a cursor into *time_ms and id (size idlen). Returns 1, or 0 if malformed. */
static int cursor_decode(const char *cur, int64_t *time_ms, char *id, size_t idlen)
{
    size_t n = strlen(cur);
    if (n == 0 || n > DLOG_CURSOR_MAX || n % 4 == 1) return 0;
    char raw[DLOG_CURSOR_MAX];
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4] = {0, 0, 0, 0};
        size_t k = n - i < 4 ? n - i : 4;
        for (size_t j = 0; j < k; j++)
            if ((v[j] = b64url_val(cur[i + j])) < 0) return 0;
        unsigned w =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        raw[o++] = (char)(w >> 16);
        if (k > 2) raw[o++] = (char)(w >> 8 & 0xFF);
        if (k > 3) raw[o++] = (char)(w & 0xFF);
        /* unused low bits of the last group must be zero (one canonical spelling) */
        if (k == 2 && (w & 0xFFFF)) return 0;
        if (k == 3 && (w & 0xFF)) return 0;
    }
    raw[o] = '\0';
    if (memchr(raw, '\0', o) != NULL) return 0;
    char *colon = memchr(raw, ':', o);
    if (colon == NULL || colon == raw) return 0;
    *colon = '\0';
    errno = 0;
    char *end = NULL;
    long long t = strtoll(raw, &end, 10);
    if (errno != 0 || end != colon || t < 0) return 0;
    const char *idp = colon + 1;
    size_t idn = strlen(idp);
    if (idn == 0 || idn > DLOG_ID_MAX || idn >= idlen) return 0;
    for (size_t i = 0; i < idn; i++) {
        unsigned char c = (unsigned char)idp[i];
        if (c <= 0x20 || c >= 0x7F) return 0;
    }
    memcpy(id, idp, idn + 1);
    *time_ms = t;
    return 1;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Copying borrowed strings into one block: first count, then copy. */
typedef struct {
    size_t need;
    char *p; /* NULL while counting */
} arena;

static void arena_str(arena *a, const char **s)
{
    if (*s == NULL) return;
    size_t n = strlen(*s) + 1;
    if (a->p == NULL) {
        a->need += n;
        return;
    }
    memcpy(a->p, *s, n);
    *s = a->p;
    a->p += n;
}

static void decision_strings(arena *a, dlog_decision *d)
{
    const char **f[] = {&d->id,
                        &d->adapter,
                        &d->event_id,
                        &d->body_hash,
                        &d->opp_id,
                        &d->pipeline,
                        &d->name,
                        &d->account,
                        &d->owner,
                        &d->currency,
                        &d->clouds_json,
                        &d->from_stage,
                        &d->from_raw,
                        &d->to_stage,
                        &d->to_raw,
                        &d->outcome,
                        &d->mode,
                        &d->message,
                        &d->reasons_json,
                        &d->warnings_json,
                        &d->registrations_json,
                        &d->config_version,
                        &d->decision_json,
                        &d->writeback_crm,
                        &d->writeback_payload_json};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        arena_str(a, f[i]);
}

static void comp_strings(arena *a, dlog_comp_line *c)
{
    const char **f[] = {&c->id,    &c->batch_id, &c->deal_id,    &c->rep,       &c->channel,
                        &c->cloud, &c->currency, &c->codes_json, &c->shortfall, &c->result_json};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        arena_str(a, f[i]);
}

static struct req *req_decision(const dlog_decision *d)
{
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->kind = RQ_DECISION;
    r->d = *d;
    arena a = {0, NULL};
    decision_strings(&a, &r->d);
    if ((r->mem = malloc(a.need ? a.need : 1)) == NULL) {
        free(r);
        return NULL;
    }
    a.p = r->mem;
    decision_strings(&a, &r->d);
    return r;
}

static struct req *req_comp(const dlog_comp_line *lines, size_t n)
{
    if (n > SIZE_MAX / sizeof *lines / 2) return NULL;
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->kind = RQ_COMP;
    r->nlines = n;
    size_t head = n * sizeof *lines;
    arena a = {0, NULL};
    for (size_t i = 0; i < n; i++) {
        dlog_comp_line c = lines[i];
        comp_strings(&a, &c);
    }
    if ((r->mem = malloc(head + a.need + 1)) == NULL) {
        free(r);
        return NULL;
    }
    r->lines = (dlog_comp_line *)(void *)r->mem;
    memcpy(r->lines, lines, head);
    a.p = r->mem + head;
    for (size_t i = 0; i < n; i++)
        comp_strings(&a, &r->lines[i]);
    return r;
}

static struct req *req_retry(const char *opp_id, int64_t now_s)
{
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->kind = RQ_RETRY;
    r->now_s = now_s;
    size_t n = strlen(opp_id) + 1;
    if ((r->mem = malloc(n)) == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->mem, opp_id, n);
    r->opp_id = r->mem;
    return r;
}

static void req_free(struct req *r)
{
    if (r == NULL) return;
    free(r->mem);
    free(r);
}

/* Queues r and waits until the writer has handled it and its commit is durable. Takes
 * ownership of r. Each caller sleeps on its own semaphore, so a batch wakes exactly its own
 * callers (no broadcast through the queue's mutex). */
static dg_err submit(dlog *l, struct req *r, char *err, size_t errlen)
{
    dg_err rc;
    int queued = 0;
    sem_init(&r->done, 0, 0);
    pthread_mutex_lock(&l->mu);
    l->inflight++;
    while (!l->stopping && l->queued >= DLOG_QUEUE_MAX)
        pthread_cond_wait(&l->cv_space, &l->mu);
    if (!l->stopping) {
        r->next = NULL;
        if (l->tail)
            l->tail->next = r;
        else
            l->head = r;
        l->tail = r;
        l->queued++;
        queued = 1;
        pthread_cond_signal(&l->cv_work);
    }
    pthread_mutex_unlock(&l->mu);
    if (queued) {
        while (sem_wait(&r->done) != 0 && errno == EINTR) {
        }
        rc = r->rc;
        if (rc != DG_OK) dg_errf(err, errlen, rc, "%s", r->err);
    } else {
        rc = dg_errf(err, errlen, DG_EDB, "decision log is closed");
    }
    sem_destroy(&r->done);
    req_free(r);
    pthread_mutex_lock(&l->mu);
    l->inflight--;
    if (l->stopping && l->inflight == 0) pthread_cond_broadcast(&l->cv_done);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- Bloom filters of logged keys ---------------------------------------------------------- */

/* Two 64-bit hashes of the key a, sep, b (b may be NULL): FNV-1a and a mix of it. */
static void bloom_hash(const char *a, const char *b, uint64_t *h1, uint64_t *h2)
{
    uint64_t h = 1469598103934665603u;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    if (b != NULL) {
        h = (h ^ 0x1f) * 1099511628211u;
        for (const char *p = b; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211u;
    }
    uint64_t x = h ^ (h >> 33); /* splitmix64 finalizer */
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    *h1 = h;
    *h2 = x | 1; /* odd: the probes cover the table */
}

/* Sizes b for keys (at least DLOG_BLOOM_MIN). Out of memory leaves it off. */
static void bloom_init(struct bloom *b, size_t keys)
{
    size_t cap = keys < DLOG_BLOOM_MIN ? DLOG_BLOOM_MIN : keys;
    uint64_t nbits = 64;
    while (nbits < (uint64_t)cap * DLOG_BLOOM_BITS && nbits < (UINT64_C(1) << 40))
        nbits <<= 1;
    b->w = calloc((size_t)(nbits / 64), sizeof *b->w);
    b->mask = nbits - 1;
    b->cap = cap;
    atomic_init(&b->n, 0);
}

static void bloom_add(struct bloom *b, const char *a, const char *k2)
{
    if (b->w == NULL) return;
    uint64_t h1, h2;
    bloom_hash(a, k2, &h1, &h2);
    for (int i = 0; i < DLOG_BLOOM_K; i++) {
        uint64_t bit = (h1 + (uint64_t)i * h2) & b->mask;
        atomic_fetch_or_explicit(&b->w[bit >> 6], UINT64_C(1) << (bit & 63), memory_order_release);
    }
    atomic_fetch_add_explicit(&b->n, 1, memory_order_relaxed); /* too full: bloom_maybe */
}

/* 0 when the key was certainly never added; 1 when it may have been (or the filter is off). */
static int bloom_maybe(const struct bloom *b, const char *a, const char *k2)
{
    if (b->w == NULL ||
        atomic_load_explicit(&b->n, memory_order_relaxed) > b->cap * DLOG_BLOOM_OVERFILL)
        return 1;
    uint64_t h1, h2;
    bloom_hash(a, k2, &h1, &h2);
    for (int i = 0; i < DLOG_BLOOM_K; i++) {
        uint64_t bit = (h1 + (uint64_t)i * h2) & b->mask;
        if (!(atomic_load_explicit(&b->w[bit >> 6], memory_order_acquire) &
              (UINT64_C(1) << (bit & 63))))
            return 0;
    }
    return 1;
}

/* Fills the event filter from the log (at open, before any thread runs): one scan of the
 * event index. */
static dg_err blooms_load(dlog *l, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(l->wdb, "SELECT count(*) FROM decisions WHERE event_id IS NOT NULL", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    /* room to grow: four times what the log holds now */
    bloom_init(&l->events, n > 0 && (uint64_t)n < SIZE_MAX / 8 ? (size_t)n * 4 : 0);
    if (sqlite3_prepare_v2(l->wdb,
                           "SELECT adapter, event_id FROM decisions WHERE event_id IS NOT NULL", -1,
                           &st, NULL) != SQLITE_OK)
        return dg_errf(err, errlen, DG_EDB, "decision log: %s", sqlite3_errmsg(l->wdb));
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *a = (const char *)sqlite3_column_text(st, 0);
        const char *b = (const char *)sqlite3_column_text(st, 1);
        if (a != NULL && b != NULL) bloom_add(&l->events, a, b);
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dg_errf(err, errlen, DG_EDB, "decision log: %s", sqlite3_errmsg(l->wdb));
    return DG_OK;
}

/* ---- the writer -------------------------------------------------------------------------- */

/* Records a failed statement on r: "decision log: what: sqlite message". */
static dg_err req_fail(dlog *l, struct req *r, const char *what)
{
    r->rc = dg_errf(r->err, sizeof r->err, DG_EDB, "decision log: %s: %s", what,
                    sqlite3_errmsg(l->wdb));
    return DG_EDB;
}

/* Adds one to a per-day counter, in the batch's sums (written once, before COMMIT). */
static dg_err count_daily(dlog *l, struct req *r, const char *day, const char *metric,
                          const char *key)
{
    if (dlog_counts_add(dlog_kpi_counts(l->kpi), day, metric, key, 1) != 0) {
        r->rc = dg_errf(r->err, sizeof r->err, DG_ENOMEM, "decision log: out of memory");
        return DG_ENOMEM;
    }
    return DG_OK;
}

/* The "code" string of a reasons/warnings array item, or NULL. */
static const char *item_code(const cJSON *it)
{
    const cJSON *code = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "code") : NULL;
    return cJSON_IsString(code) ? code->valuestring : NULL;
}

/* One count per distinct "code" of a JSON array of objects (reasons, warnings). */
static dg_err count_codes(dlog *l, struct req *r, const char *day, const char *metric,
                          const char *json)
{
    if (json == NULL) return DG_OK;
    cJSON *a = cJSON_Parse(json);
    dg_err rc = DG_OK;
    for (const cJSON *it = a ? a->child : NULL; it && rc == DG_OK; it = it->next) {
        const char *code = item_code(it);
        if (code == NULL) continue;
        int dup = 0;
        for (const cJSON *p = a->child; p != it && !dup; p = p->next) {
            const char *c = item_code(p);
            dup = c != NULL && strcmp(c, code) == 0;
        }
        if (!dup) rc = count_daily(l, r, day, metric, code);
    }
    cJSON_Delete(a);
    return rc;
}

static dg_err note_stage_raw(dlog *l, struct req *r, const char *stage, const char *raw)
{
    if (stage == NULL || raw == NULL) return DG_OK;
    sqlite3_stmt *st = l->wst[W_STAGE_RAW];
    bind_text(st, 1, r->d.opp_id);
    bind_text(st, 2, stage);
    bind_text(st, 3, raw);
    sqlite3_bind_int64(st, 4, r->d.time_ms);
    if (run_stmt(st) != SQLITE_DONE) return req_fail(l, r, "stage values");
    return DG_OK;
}

/* Updates deals for decision d (inside the batch transaction) and fills *deal with the
 * deal's state after it: its strings are copies in *mem (the caller frees it). */
static dg_err update_deal(dlog *l, struct req *r, dlog_kpi_deal *deal, char **mem)
{
    const dlog_decision *d = &r->d;
    /* A blocked move does not take the deal to its target stage (the CRM reverts it, and
     * the gate must keep treating the next move as coming from before the gate): the deal
     * stays at the stage it came from, if known. */
    int allowed = strcmp(d->outcome, "allow") == 0;
    const char *stage = allowed ? d->to_stage : d->from_stage;
    const char *raw = allowed ? d->to_raw : d->from_raw;

    sqlite3_stmt *st = l->wst[W_DEAL_UPSERT];
    const int *p = l->deal_pi;
    bind_text(st, p[DP_OPP], d->opp_id);
    bind_text(st, p[DP_PIPELINE], d->pipeline);
    bind_text(st, p[DP_NAME], d->name);
    bind_text(st, p[DP_ACCOUNT], d->account);
    bind_text(st, p[DP_OWNER], d->owner);
    if (d->has_amount) sqlite3_bind_int64(st, p[DP_AMOUNT], d->amount);
    bind_text(st, p[DP_CURRENCY], d->currency);
    bind_text(st, p[DP_CLOUDS], d->clouds_json);
    bind_text(st, p[DP_STAGE], stage);
    bind_text(st, p[DP_RAW], raw);
    bind_text(st, p[DP_OUTCOME], d->outcome);
    bind_text(st, p[DP_ID], d->id);
    sqlite3_bind_int64(st, p[DP_TIME], d->time_ms);
    bind_text(st, p[DP_MESSAGE], d->message);
    bind_text(st, p[DP_REASONS], d->reasons_json);
    sqlite3_bind_int(st, p[DP_WON], d->won != 0);
    sqlite3_bind_int(st, p[DP_LOST], d->lost != 0);
    sqlite3_bind_int(st, p[DP_GATED], d->gated != 0);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        dg_err e = req_fail(l, r, "deal state");
        stmt_done(st);
        return e;
    }
    memset(deal, 0, sizeof *deal);
    const char *clouds = (const char *)sqlite3_column_text(st, 0);
    const char *ccy = (const char *)sqlite3_column_text(st, 2);
    size_t nc = clouds ? strlen(clouds) + 1 : 0, ny = ccy ? strlen(ccy) + 1 : 0;
    if ((*mem = malloc(nc + ny + 1)) == NULL) {
        stmt_done(st);
        r->rc = dg_errf(r->err, sizeof r->err, DG_ENOMEM, "decision log: out of memory");
        return DG_ENOMEM;
    }
    if (clouds) deal->clouds_json = memcpy(*mem, clouds, nc);
    if (ccy) deal->currency = memcpy(*mem + nc, ccy, ny);
    if ((deal->has_amount = sqlite3_column_type(st, 1) == SQLITE_INTEGER))
        deal->amount = sqlite3_column_int64(st, 1);
    int *has[4] = {&deal->has_first_gated, &deal->has_first_allowed, &deal->has_won,
                   &deal->has_lost};
    int64_t *val[4] = {&deal->first_gated_ms, &deal->first_allowed_ms, &deal->won_ms,
                       &deal->lost_ms};
    for (int i = 0; i < 4; i++)
        if ((*has[i] = sqlite3_column_type(st, 3 + i) != SQLITE_NULL))
            *val[i] = sqlite3_column_int64(st, 3 + i);
    deal->is_new = sqlite3_column_int64(st, 7) == 1;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) { /* one row; run to completion */
    }
    stmt_done(st);
    if (src != SQLITE_DONE) {
        free(*mem);
        *mem = NULL;
        return req_fail(l, r, "deal state");
    }
    return DG_OK;
}

/* Records the raw CRM values of the decision's stages (after the deal's upsert). */
static dg_err update_stage_raw(dlog *l, struct req *r)
{
    const dlog_decision *d = &r->d;
    if (d->from_stage && d->from_raw && d->to_stage && d->to_raw) {
        sqlite3_stmt *st = l->wst[W_STAGE_RAW2];
        bind_text(st, 1, d->opp_id);
        bind_text(st, 2, d->from_stage);
        bind_text(st, 3, d->from_raw);
        sqlite3_bind_int64(st, 4, d->time_ms);
        bind_text(st, 5, d->to_stage);
        bind_text(st, 6, d->to_raw);
        if (run_stmt(st) != SQLITE_DONE) return req_fail(l, r, "stage values");
        return DG_OK;
    }
    if (note_stage_raw(l, r, d->from_stage, d->from_raw) != DG_OK) return DG_EDB;
    return note_stage_raw(l, r, d->to_stage, d->to_raw);
}

/* Writes decision r: its row, the deal's state, the KPI state and the per-day counters.
 * The row's INSERT comes first and is atomic, so when it fails (DG_EEXISTS: the event id is
 * logged already, by an earlier batch or earlier in this one; the UNIQUE index finds it)
 * nothing was written and *wrote stays 0. Once *wrote is 1, a failure leaves partial writes
 * that only a savepoint or the whole transaction can undo. */
static dg_err apply_decision(dlog *l, struct req *r, int *wrote)
{
    const dlog_decision *d = &r->d;
    sqlite3_stmt *st;

    *wrote = 0;
    if (LOG_STAGE(l) == LOG_COMMIT) return DG_OK;
    st = l->wst[W_INS_DECISION];
    const char *txt[] = {d->id,
                         NULL,
                         d->adapter,
                         d->event_id,
                         d->body_hash,
                         d->opp_id,
                         d->pipeline,
                         d->name,
                         d->account,
                         d->owner,
                         NULL,
                         d->currency,
                         d->clouds_json,
                         d->from_stage,
                         d->from_raw,
                         d->to_stage,
                         d->to_raw,
                         d->outcome,
                         d->mode,
                         d->message,
                         d->reasons_json,
                         d->warnings_json,
                         d->registrations_json,
                         d->config_version};
    for (int i = 0; i < (int)(sizeof txt / sizeof txt[0]); i++)
        if (i != 1 && i != 10) bind_text(st, i + 1, txt[i]);
    sqlite3_bind_int64(st, 2, d->time_ms);
    if (d->has_amount) sqlite3_bind_int64(st, 11, d->amount);
    sqlite3_bind_int64(st, 25, d->latency_us);
    sqlite3_bind_int(st, 26, d->gated != 0);
    sqlite3_bind_int(st, 27, d->won != 0);
    sqlite3_bind_int(st, 28, d->lost != 0);
    bind_text(st, 29, d->decision_json);
    int src = run_stmt(st);
    if (src != SQLITE_DONE) {
        /* the UNIQUE index is the backstop for the check above */
        if (sqlite3_extended_errcode(l->wdb) == SQLITE_CONSTRAINT_UNIQUE && d->event_id &&
            strstr(sqlite3_errmsg(l->wdb), "event_id") != NULL) {
            r->rc = dg_errf(r->err, sizeof r->err, DG_EEXISTS,
                            "event %s of adapter %s is already logged", d->event_id, d->adapter);
            return DG_EEXISTS;
        }
        return req_fail(l, r, "insert decision");
    }
    *wrote = 1;
    if (d->event_id != NULL) bloom_add(&l->events, d->adapter, d->event_id);
    if (LOG_STAGE(l) == LOG_ROW) return DG_OK;

    dlog_kpi_deal deal;
    char *deal_mem = NULL;
    if (update_deal(l, r, &deal, &deal_mem) != DG_OK) return DG_EDB;
    dg_err krc = dlog_kpi_decision(l->kpi, d, &deal, r->err, sizeof r->err);
    free(deal_mem);
    if (krc != DG_OK) {
        r->rc = DG_EDB;
        return DG_EDB;
    }
    if (update_stage_raw(l, r) != DG_OK) return DG_EDB;
    if (d->writeback_crm != NULL) {
        st = l->wst[W_INS_WRITEBACK];
        bind_text(st, 1, d->id);
        bind_text(st, 2, d->writeback_crm);
        bind_text(st, 3, d->opp_id);
        bind_text(st, 4, d->writeback_payload_json);
        sqlite3_bind_int64(st, 5, d->time_ms);
        if (run_stmt(st) != SQLITE_DONE) return req_fail(l, r, "queue write-back");
    }

    char day[DLOG_DAYLEN];
    day_of(d->time_ms, day);
    int allowed = strcmp(d->outcome, "allow") == 0;
    if (count_daily(l, r, day, "decisions", "") != DG_OK) return DG_EDB;
    if (count_daily(l, r, day, "outcome", d->outcome) != DG_OK) return DG_EDB;
    if (d->gated && count_daily(l, r, day, "gated", d->outcome) != DG_OK) return DG_EDB;
    if (!allowed && count_codes(l, r, day, "reason", d->reasons_json) != DG_OK) return DG_EDB;
    if (count_codes(l, r, day, "warning", d->warnings_json) != DG_OK) return DG_EDB;
    if (allowed && d->won && count_daily(l, r, day, "won", "") != DG_OK) return DG_EDB;
    if (allowed && d->lost && count_daily(l, r, day, "lost", "") != DG_OK) return DG_EDB;
    return DG_OK;
}

static dg_err apply_comp(dlog *l, struct req *r)
{
    sqlite3_stmt *st = l->wst[W_INS_COMP];
    for (size_t i = 0; i < r->nlines; i++) {
        const dlog_comp_line *c = &r->lines[i];
        bind_text(st, 1, c->id);
        sqlite3_bind_int64(st, 2, c->time_ms);
        bind_text(st, 3, c->batch_id);
        bind_text(st, 4, c->deal_id);
        bind_text(st, 5, c->rep);
        bind_text(st, 6, c->channel);
        bind_text(st, 7, c->cloud);
        bind_text(st, 8, c->currency);
        sqlite3_bind_int(st, 9, c->violation != 0);
        bind_text(st, 10, c->codes_json);
        bind_text(st, 11, c->shortfall);
        bind_text(st, 12, c->result_json);
        if (run_stmt(st) != SQLITE_DONE) return req_fail(l, r, "insert commission check");
        char day[DLOG_DAYLEN];
        day_of(c->time_ms, day);
        if (count_daily(l, r, day, "comp_lines", "") != DG_OK) return DG_EDB;
        if (c->violation && count_daily(l, r, day, "comp_violations", "") != DG_OK) return DG_EDB;
        if (dlog_kpi_comp(l->kpi, c, r->err, sizeof r->err) != DG_OK) {
            r->rc = DG_EDB;
            return DG_EDB;
        }
    }
    return DG_OK;
}

static dg_err apply_retry(dlog *l, struct req *r)
{
    sqlite3_stmt *st = l->wst[W_RETRY];
    bind_text(st, 1, r->opp_id);
    sqlite3_bind_int64(st, 2, r->now_s);
    if (run_stmt(st) != SQLITE_DONE) return req_fail(l, r, "note retry");
    return DG_OK;
}

static uint64_t req_rows(const struct req *r)
{
    return r->kind == RQ_DECISION ? 1 : r->kind == RQ_COMP ? r->nlines : 0;
}

/* Fails every request of the batch with the writer connection's current error. */
static void batch_fail(dlog *l, struct req *batch, const char *what, const char *msg)
{
    for (struct req *r = batch; r; r = r->next)
        r->rc = dg_errf(r->err, sizeof r->err, DG_EDB, "decision log %s failed: %s", what, msg);
    atomic_store(&l->healthy, 0);
}

/* Runs request r inside its own savepoint: if it fails, its writes (and its counter
 * increments) alone are undone and r->rc says why. Returns 0, or -1 when the transaction
 * itself is lost (an error SQLite rolled back, or a savepoint statement failed). */
static int run_in_savepoint(dlog *l, struct req *r)
{
    dlog_counts *cn = dlog_kpi_counts(l->kpi);
    size_t mark = dlog_counts_mark(cn);
    int wrote = 0;
    if (run_stmt(l->wst[W_SAVEPOINT]) != SQLITE_DONE) return -1;
    dg_err e = r->kind == RQ_DECISION ? apply_decision(l, r, &wrote)
               : r->kind == RQ_COMP   ? apply_comp(l, r)
               : r->kind == RQ_CALL   ? r->fn(l->wdb, r->arg, r->err, sizeof r->err)
                                      : apply_retry(l, r);
    if (e == DG_OK) return run_stmt(l->wst[W_RELEASE]) == SQLITE_DONE ? 0 : -1;
    if (sqlite3_get_autocommit(l->wdb)) return -1;
    if (run_stmt(l->wst[W_ROLLBACK_TO]) != SQLITE_DONE ||
        run_stmt(l->wst[W_RELEASE]) != SQLITE_DONE)
        return -1;
    dlog_counts_undo(cn, mark);
    r->rc = e;
    return 0;
}

enum { BATCH_FAILED = 0, BATCH_COMMITTED = 1, BATCH_REDO = 2 };

/* Writes one batch in one transaction; every request's rc/err is set. Runs on the writer
 * thread only.
 *
 * Fast mode (safe = 0): decisions run first and without savepoints. A savepoint costs a
 * copy of every page the request touches (SQLite's statement journal), and a decision
 * either fails at its first, atomic INSERT (a logged event id: nothing written) or not at
 * all short of an I/O error. Should one fail after writing, the transaction is rolled back
 * and BATCH_REDO returned: the caller runs the batch again in safe mode. Every other
 * request (rare) runs in its own savepoint, after the decisions, so a redo never runs a
 * callback twice. Safe mode: every request in its own savepoint, in queue order.
 *
 * Returns BATCH_COMMITTED (*rows: rows written; *seq: the commit's sequence number),
 * BATCH_FAILED, or BATCH_REDO. */
static int run_batch(dlog *l, struct req *batch, int safe, uint64_t *rows, uint64_t *seq)
{
    sqlite3 *db = l->wdb;
    char msg[DLOG_ERRLEN];
    dlog_counts *cn = dlog_kpi_counts(l->kpi);

    *seq = 0;
    dlog_counts_reset(cn);
    if (run_stmt(l->wst[W_BEGIN]) != SQLITE_DONE) {
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db)) run_stmt(l->wst[W_ROLLBACK]);
        batch_fail(l, batch, "begin", msg);
        return BATCH_FAILED;
    }
    for (struct req *r = batch; r; r = r->next) {
        r->rc = DG_OK;
        r->err[0] = '\0';
    }
    for (int pass = safe ? 1 : 0; pass < 2; pass++) {
        for (struct req *r = batch; r; r = r->next) {
            if (pass == 0 && r->kind != RQ_DECISION) continue;
            if (pass == 1 && !safe && r->kind == RQ_DECISION) continue;
            if (pass == 1) {
                if (run_in_savepoint(l, r) != 0) goto abort;
                continue;
            }
            int wrote = 0;
            dg_err e = apply_decision(l, r, &wrote);
            if (e == DG_OK) continue;
            if (sqlite3_get_autocommit(db)) goto abort;
            if (wrote) { /* partial writes: undo the transaction, redo in safe mode */
                run_stmt(l->wst[W_ROLLBACK]);
                dlog_counts_reset(cn);
                return BATCH_REDO;
            }
            r->rc = e; /* refused at its INSERT: nothing of it was written */
        }
    }
    if (dlog_kpi_flush(l->kpi, msg, sizeof msg) != DG_OK) goto abort;
    *seq = atomic_fetch_add(&l->visible_seq, 1) + 1; /* before the commit can be seen */
    if (run_stmt(l->wst[W_COMMIT]) != SQLITE_DONE) {
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db)) run_stmt(l->wst[W_ROLLBACK]);
        dlog_counts_reset(cn);
        batch_fail(l, batch, "commit", msg);
        return BATCH_FAILED;
    }
    atomic_store(&l->healthy, 1);
    *rows = 0;
    for (struct req *r = batch; r; r = r->next)
        if (r->rc == DG_OK) *rows += req_rows(r);
    return BATCH_COMMITTED;

abort:
    snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db)) run_stmt(l->wst[W_ROLLBACK]);
    dlog_counts_reset(cn);
    batch_fail(l, batch, "write", msg);
    return BATCH_FAILED;
}

/* Hands a batch to the syncer, which answers its requests once the commit is durable. */
static void hand_to_syncer(dlog *l, struct req *batch, uint64_t seq, int committed)
{
    struct pending *p = malloc(sizeof *p);
    if (p == NULL) {
        /* cannot queue it: make it durable here, then answer */
        int ok = !committed || fdatasync(l->wal_fd) == 0;
        for (struct req *r = batch, *next; r; r = next) {
            next = r->next; /* r belongs to its caller once posted */
            if (!ok && r->rc == DG_OK)
                r->rc = dg_errf(r->err, sizeof r->err, DG_EDB, "decision log sync failed");
            sem_post(&r->done);
        }
        return;
    }
    p->next = NULL;
    p->reqs = batch;
    p->seq = seq;
    p->committed = committed;
    pthread_mutex_lock(&l->smu);
    if (l->ptail)
        l->ptail->next = p;
    else
        l->phead = p;
    l->ptail = p;
    pthread_cond_signal(&l->scv_work);
    pthread_mutex_unlock(&l->smu);
}

static void *writer_main(void *arg)
{
    dlog *l = arg;
    pthread_setname_np(pthread_self(), "dg-log-writer"); /* top -H, bench/gate.sh */
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->head == NULL && !l->stopping)
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->head == NULL) break; /* stopping, and everything queued is written */
        struct req *batch = l->head;
        l->head = l->tail = NULL;
        l->queued = 0;
        pthread_cond_broadcast(&l->cv_space);
        pthread_mutex_unlock(&l->mu);

        uint64_t rows = 0, seq = 0;
        int res = run_batch(l, batch, 0, &rows, &seq);
        if (res == BATCH_REDO) res = run_batch(l, batch, 1, &rows, &seq);

        pthread_mutex_lock(&l->mu);
        if (res == BATCH_COMMITTED) {
            l->batches++;
            l->rows += rows;
            size_t b = 0;
            while (b < DLOG_BATCH_BUCKETS && rows > dlog_batch_bounds[b])
                b++;
            l->batch_hist[b]++;
        }
        hand_to_syncer(l, batch, seq, res == BATCH_COMMITTED);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* The syncer: one fdatasync of the WAL answers every batch committed before it began (a
 * group commit across batches), while the writer is already writing the next batch. */
static void *syncer_main(void *arg)
{
    dlog *l = arg;
    pthread_setname_np(pthread_self(), "dg-log-syncer"); /* top -H, bench/gate.sh */
    pthread_mutex_lock(&l->smu);
    for (;;) {
        while (l->phead == NULL && !l->sync_stop)
            pthread_cond_wait(&l->scv_work, &l->smu);
        if (l->phead == NULL) break; /* stopping, and every batch is answered */
        struct pending *list = l->phead;
        l->phead = l->ptail = NULL;
        pthread_mutex_unlock(&l->smu);

        uint64_t top = 0;
        int need = 0, ok = 1;
        char msg[DLOG_ERRLEN] = "";
        for (struct pending *p = list; p; p = p->next) {
            if (p->seq > top) top = p->seq;
            need |= p->committed;
        }
        if (need && fdatasync(l->wal_fd) != 0) {
            ok = 0;
            snprintf(msg, sizeof msg, "decision log sync failed: %s", strerror(errno));
            atomic_store(&l->healthy, 0);
        }
        pthread_mutex_lock(&l->smu);
        if (ok && top > atomic_load(&l->synced_seq)) atomic_store(&l->synced_seq, top);
        if (l->sync_waiters > 0) pthread_cond_broadcast(&l->scv_synced);
        pthread_mutex_unlock(&l->smu);

        for (struct pending *p = list, *pn; p; p = pn) {
            pn = p->next;
            for (struct req *r = p->reqs, *next; r; r = next) {
                next = r->next; /* r belongs to its caller once posted */
                if (!ok && p->committed && r->rc == DG_OK)
                    r->rc = dg_errf(r->err, sizeof r->err, DG_EDB, "%s", msg);
                sem_post(&r->done);
            }
            free(p);
        }
        pthread_mutex_lock(&l->smu);
    }
    pthread_mutex_unlock(&l->smu);
    return NULL;
}

/* Waits until every commit a read may have seen is durable, so that nothing is answered
 * from the log (a replay, a decision by id) before it would survive a power loss. Returns
 * DG_OK, or DG_EDB when the syncer cannot make it durable within DLOG_BUSY_MS. */
static dg_err wait_durable(dlog *l)
{
    uint64_t want = atomic_load(&l->visible_seq);
    if (atomic_load(&l->synced_seq) >= want) return DG_OK;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DLOG_BUSY_MS / 1000;
    dg_err rc = DG_OK;
    pthread_mutex_lock(&l->smu);
    l->sync_waiters++;
    while (atomic_load(&l->synced_seq) < want && rc == DG_OK)
        if (pthread_cond_timedwait(&l->scv_synced, &l->smu, &until) == ETIMEDOUT &&
            atomic_load(&l->synced_seq) < want)
            rc = DG_EDB;
    l->sync_waiters--;
    pthread_mutex_unlock(&l->smu);
    return rc;
}

/* Called by SQLite after each commit of the writer with the WAL's size in frames: past
 * DLOG_CKPT_FRAMES, the checkpointer is asked to copy the WAL back into the database. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    dlog *l = arg;
    if (frames >= DLOG_CKPT_FRAMES) {
        pthread_mutex_lock(&l->cmu);
        if (!l->ckpt_want) {
            l->ckpt_want = 1;
            pthread_cond_signal(&l->ccv);
        }
        pthread_mutex_unlock(&l->cmu);
    }
    return SQLITE_OK;
}

/* Flushes what PASSIVE passes wrote into the database file, holding no lock, through the
 * checkpointer connection's own file (an fd of our own would drop SQLite's POSIX locks when
 * closed). */
static void ckpt_presync(dlog *l)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(l->cdb, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f &&
        f->pMethods)
        (void)f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

/* The checkpointer, on its own connection. A PASSIVE checkpoint copies the WAL into the
 * database without blocking the writer or the readers, but while the writer keeps
 * committing it never catches up with the WAL's end, and the WAL only starts over (and is cut
 * back to journal_size_limit) after a checkpoint that copied everything. So PASSIVE passes
 * do the copying (again while a pass still found more than DLOG_CKPT_TAIL new frames, at
 * most DLOG_CKPT_PASSES times), the database file is synced with no lock held, one more
 * PASSIVE pass copies what came during that sync, and a RESTART pass then copies and syncs
 * the little committed since (a batch or two) while holding off the writer, so that the
 * next commit starts the WAL over. The writer waits for it in short steps (busy_wait): that
 * pause is what the log's p99 is made of, so as little as possible happens inside it. */
static void *ckpt_main(void *arg)
{
    dlog *l = arg;
    pthread_setname_np(pthread_self(), "dg-log-ckpt"); /* top -H, bench/gate.sh */
    pthread_mutex_lock(&l->cmu);
    for (;;) {
        while (!l->ckpt_want && !l->ckpt_stop)
            pthread_cond_wait(&l->ccv, &l->cmu);
        if (l->ckpt_stop) break;
        l->ckpt_want = 0;
        pthread_mutex_unlock(&l->cmu);
        int log = 0, copied = 0, before = 0;
        int rc = sqlite3_wal_checkpoint_v2(l->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        for (int pass = 1;
             rc == SQLITE_OK && pass < DLOG_CKPT_PASSES && copied - before > DLOG_CKPT_TAIL;
             pass++) {
            before = copied;
            rc = sqlite3_wal_checkpoint_v2(l->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        }
        /* a long read (a big query) makes RESTART give up rather than stall the writer: the
         * next commit past the threshold tries again */
        if (rc == SQLITE_OK && log >= DLOG_CKPT_FRAMES) {
            ckpt_presync(l);
            /* what was committed during the sync, still without a lock */
            rc = sqlite3_wal_checkpoint_v2(l->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
            if (rc == SQLITE_OK)
                rc = sqlite3_wal_checkpoint_v2(l->cdb, NULL, SQLITE_CHECKPOINT_RESTART, &log,
                                               &copied);
        }
        if (rc == SQLITE_OK) atomic_fetch_add(&l->checkpoints, 1);
        pthread_mutex_lock(&l->cmu);
    }
    pthread_mutex_unlock(&l->cmu);
    return NULL;
}

/* Busy handler of the writer and the checkpointer: waits in steps of 100 us (SQLite's own
 * sleeps 1, 2, 5, 10 ... ms, far longer than the RESTART checkpoint or the commit it waits
 * for), up to *(const int *)arg milliseconds in all. */
static int busy_wait(void *arg, int n)
{
    const int *budget_ms = arg;
    if ((int64_t)n * 100 >= (int64_t)*budget_ms * 1000) return 0;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    return 1;
}

/* ---- open / close ------------------------------------------------------------------------ */

static dg_err oset_load(dlog *l, char *err, size_t errlen);

/* mkdir -p with mode 0700 for the parts it creates; the result must be a directory. */
static dg_err make_dir(const char *dir, char *err, size_t errlen)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (p == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    memcpy(p, dir, n + 1);
    dg_err rc = DG_EIO;
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            dg_errf(err, errlen, DG_EIO, "cannot create data_dir %s: %s", p, strerror(errno));
            goto done;
        }
        p[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        dg_errf(err, errlen, DG_EIO, "data_dir %s: %s", dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(sb.st_mode)) {
        dg_errf(err, errlen, DG_EIO, "data_dir %s is not a directory", dir);
        goto done;
    }
    rc = DG_OK;
done:
    free(p);
    return rc;
}

static dg_err exec_sql(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return DG_OK;
    dg_errf(err, errlen, DG_EDB, "decision log %s: %s", what, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return DG_EDB;
}

/* Brings the schema to DLOG_SCHEMA_VERSION, one transaction per step. */
static dg_err migrate(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return dg_errf(err, errlen, DG_EDB, "decision log: cannot read schema version: %s",
                       sqlite3_errmsg(db));
    }
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > DLOG_SCHEMA_VERSION)
        return dg_errf(err, errlen, DG_EDB,
                       "decision log schema version %d is newer than this build's (%d)", version,
                       DLOG_SCHEMA_VERSION);
    for (int v = version; v < DLOG_SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if (exec_sql(db, "BEGIN IMMEDIATE", "migration", err, errlen) != DG_OK) return DG_EDB;
        if (exec_sql(db, migrations[v], "migration", err, errlen) != DG_OK ||
            exec_sql(db, bump, "migration", err, errlen) != DG_OK ||
            exec_sql(db, "COMMIT", "migration", err, errlen) != DG_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return DG_EDB;
        }
    }
    return DG_OK;
}

static dg_err open_writer(dlog *l, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(l->path, &l->wdb, flags, NULL) != SQLITE_OK)
        return dg_errf(err, errlen, DG_EDB, "cannot open %s: %s", l->path,
                       l->wdb ? sqlite3_errmsg(l->wdb) : "out of memory");
    sqlite3_extended_result_codes(l->wdb, 1);
    static const int writer_budget_ms = DLOG_BUSY_MS;
    sqlite3_busy_handler(l->wdb, busy_wait, (void *)&writer_budget_ms);

    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(l->wdb, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!ok)
        return dg_errf(err, errlen, DG_EDB, "cannot put %s in WAL mode: %s", l->path,
                       sqlite3_errmsg(l->wdb));
    /* NORMAL: the commit writes the WAL without syncing it; the syncer thread fdatasyncs the
     * WAL before any request of the batch is answered, which is what FULL would do inside
     * the commit (docs/internals/decision-log.md, "Durability"). Checkpoints still sync the
     * WAL and the database file as under FULL. temp_store=MEMORY keeps SQLite's statement
     * journals (savepoints) off the disk. */
    if (exec_sql(l->wdb,
                 "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
                 " PRAGMA journal_size_limit=75497472",
                 "setup", err, errlen) != DG_OK)
        return DG_EDB;
    if (migrate(l->wdb, err, errlen) != DG_OK) return DG_EDB;
    for (int i = 0; i < W_COUNT; i++)
        if (sqlite3_prepare_v3(l->wdb, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->wst[i], NULL) !=
            SQLITE_OK)
            return dg_errf(err, errlen, DG_EDB, "decision log: cannot prepare statement %d: %s", i,
                           sqlite3_errmsg(l->wdb));
    for (int i = 0; i < DP_COUNT; i++)
        if ((l->deal_pi[i] = sqlite3_bind_parameter_index(l->wst[W_DEAL_UPSERT], deal_params[i])) ==
            0)
            return dg_errf(err, errlen, DG_EDB, "decision log: no parameter %s", deal_params[i]);
    if (dlog_kpi_open(l->wdb, &l->kpi, err, errlen) != DG_OK) return DG_EDB;
    /* replaces SQLite's automatic checkpoints: they run on the checkpointer's connection */
    sqlite3_wal_hook(l->wdb, wal_hook, l);
    return DG_OK;
}

/* The checkpointer's connection, and a descriptor of the WAL for the syncer. The WAL exists
 * once the writer has opened the log in WAL mode; the directory is synced once so that the
 * WAL's (and a new database file's) directory entry survives a power loss too. */
static dg_err open_durability(dlog *l, char *err, size_t errlen)
{
    if (sqlite3_open_v2(l->path, &l->cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return dg_errf(err, errlen, DG_EDB, "cannot open %s for checkpoints: %s", l->path,
                       l->cdb ? sqlite3_errmsg(l->cdb) : "out of memory");
    static const int ckpt_budget_ms = DLOG_CKPT_WAIT_MS;
    sqlite3_busy_handler(l->cdb, busy_wait, (void *)&ckpt_budget_ms);
    if (exec_sql(l->cdb, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256", "checkpointer setup",
                 err, errlen) != DG_OK)
        return DG_EDB;
    size_t n = strlen(l->path) + sizeof "-wal";
    char *wal = malloc(n);
    if (wal == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    snprintf(wal, n, "%s-wal", l->path);
    l->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
    if (l->wal_fd < 0) {
        dg_errf(err, errlen, DG_EIO, "cannot open %s: %s", wal, strerror(errno));
        free(wal);
        return DG_EIO;
    }
    free(wal);
    char *dir = strdup(l->path);
    if (dir == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash != NULL) *slash = '\0';
    int dfd = open(slash != NULL && *dir ? dir : (slash != NULL ? "/" : "."),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = dfd >= 0 && fsync(dfd) == 0 && fdatasync(l->wal_fd) == 0;
    if (!ok) dg_errf(err, errlen, DG_EIO, "cannot sync %s: %s", dir, strerror(errno));
    if (dfd >= 0) close(dfd);
    free(dir);
    return ok ? DG_OK : DG_EIO;
}

static dg_err open_readers(dlog *l, char *err, size_t errlen)
{
    for (int i = 0; i < DLOG_READERS; i++) {
        struct rconn *c = &l->rc[i];
        if (sqlite3_open_v2(l->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK)
            return dg_errf(err, errlen, DG_EDB, "cannot open %s for reading: %s", l->path,
                           c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_extended_result_codes(c->db, 1);
        sqlite3_busy_timeout(c->db, DLOG_BUSY_MS);
        if (exec_sql(c->db, "PRAGMA query_only=1", "reader setup", err, errlen) != DG_OK)
            return DG_EDB;
    }
    return DG_OK;
}

/* Stops the log's threads: the writer first (it commits everything queued), then the syncer
 * (it answers every batch), then the checkpointer. */
static void stop_threads(dlog *l)
{
    if (l->writer_started) {
        pthread_mutex_lock(&l->mu);
        l->stopping = 1;
        pthread_cond_broadcast(&l->cv_work);
        pthread_cond_broadcast(&l->cv_space);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->writer, NULL); /* it drains the queue first */
        l->writer_started = 0;
        l->writer_ran = 1;
    }
    if (l->syncer_started) {
        pthread_mutex_lock(&l->smu);
        l->sync_stop = 1;
        pthread_cond_broadcast(&l->scv_work);
        pthread_mutex_unlock(&l->smu);
        pthread_join(l->syncer, NULL);
        l->syncer_started = 0;
    }
    if (l->ckpt_started) {
        pthread_mutex_lock(&l->cmu);
        l->ckpt_stop = 1;
        pthread_cond_broadcast(&l->ccv);
        pthread_mutex_unlock(&l->cmu);
        pthread_join(l->ckpt, NULL);
        l->ckpt_started = 0;
    }
}

/* Frees l and everything it owns; its threads must not be running. */
static void dlog_free(dlog *l)
{
    if (l == NULL) return;
    stop_threads(l);
    for (int i = 0; i < DLOG_READERS; i++) {
        for (int j = 0; j < R_COUNT; j++)
            sqlite3_finalize(l->rc[i].st[j]);
        sqlite3_close(l->rc[i].db);
    }
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(l->wst[i]);
    dlog_kpi_close(l->kpi);
    sqlite3_close(l->cdb);
    if (l->wal_fd >= 0) close(l->wal_fd);
    if (l->writer_ran) /* bounded, so a large log does not slow down shutdown */
        sqlite3_exec(l->wdb, "PRAGMA analysis_limit=400; PRAGMA optimize", NULL, NULL, NULL);
    sqlite3_close(l->wdb); /* the last connection checkpoints the WAL */
    pthread_mutex_destroy(&l->smu);
    pthread_cond_destroy(&l->scv_work);
    pthread_cond_destroy(&l->scv_synced);
    pthread_mutex_destroy(&l->cmu);
    pthread_cond_destroy(&l->ccv);
    for (size_t i = 0; i < l->ocap; i++)
        free(l->oset[i]);
    free(l->oset);
    free(l->events.w);
    pthread_rwlock_destroy(&l->olock);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    pthread_cond_destroy(&l->cv_space);
    pthread_mutex_destroy(&l->rmu);
    pthread_cond_destroy(&l->rcv);
    free(l->path);
    free(l);
}

dg_err dlog_open(const char *data_dir, dlog **out, char *err, size_t errlen)
{
    dg_err rc = DG_EDB;
    dlog *l = NULL;
    int fd = -1;

    if (out == NULL || data_dir == NULL || *data_dir == '\0')
        return dg_errf(err, errlen, DG_EINVAL, "data_dir is required");
    *out = NULL;
    if (!sqlite3_threadsafe())
        return dg_errf(err, errlen, DG_EDB, "SQLite is built without thread support");

    if ((l = calloc(1, sizeof *l)) == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto done;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    pthread_cond_init(&l->cv_space, NULL);
    pthread_mutex_init(&l->rmu, NULL);
    pthread_cond_init(&l->rcv, NULL);
    pthread_mutex_init(&l->smu, NULL);
    pthread_cond_init(&l->scv_work, NULL);
    pthread_cond_init(&l->scv_synced, NULL);
    pthread_mutex_init(&l->cmu, NULL);
    pthread_cond_init(&l->ccv, NULL);
    pthread_rwlock_init(&l->olock, NULL);
    atomic_init(&l->healthy, 1);
    atomic_init(&l->visible_seq, 0);
    atomic_init(&l->synced_seq, 0);
    atomic_init(&l->checkpoints, 0);
    l->wal_fd = -1;
#ifdef DG_BENCH_LOG_STAGES
    if ((l->stage = log_stage_from_env()) < 0) {
        rc = dg_errf(err, errlen, DG_EINVAL, "DG_BENCH_LOG must be off, commit or row");
        goto done;
    }
#endif

    if ((rc = make_dir(data_dir, err, errlen)) != DG_OK) goto done;
    size_t n = strlen(data_dir) + sizeof "/" DLOG_FILE;
    if ((l->path = malloc(n)) == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(l->path, n, "%s/%s", data_dir, DLOG_FILE);
    /* create the file ourselves so it (and the -wal/-shm SQLite derives from it) is 0600 */
    if ((fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rc = dg_errf(err, errlen, DG_EIO, "cannot open %s: %s", l->path, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;

    rc = DG_EDB;
    if (open_writer(l, err, errlen) != DG_OK) goto done;
    if (open_readers(l, err, errlen) != DG_OK) goto done;
    if (oset_load(l, err, errlen) != DG_OK) goto done;
    if (blooms_load(l, err, errlen) != DG_OK) goto done;
    if ((rc = open_durability(l, err, errlen)) != DG_OK) goto done;
    rc = DG_EDB;
    if (pthread_create(&l->syncer, NULL, syncer_main, l) != 0) {
        dg_errf(err, errlen, DG_EDB, "cannot start the decision log syncer");
        goto done;
    }
    l->syncer_started = 1;
    if (pthread_create(&l->ckpt, NULL, ckpt_main, l) != 0) {
        dg_errf(err, errlen, DG_EDB, "cannot start the decision log checkpointer");
        goto done;
    }
    l->ckpt_started = 1;
    if (pthread_create(&l->writer, NULL, writer_main, l) != 0) {
        dg_errf(err, errlen, DG_EDB, "cannot start the decision log writer");
        goto done;
    }
    l->writer_started = 1;
    *out = l;
    l = NULL;
    rc = DG_OK;
done:
    if (fd >= 0) close(fd);
    dlog_free(l);
    return rc;
}

void dlog_close(dlog *l)
{
    if (l == NULL) return;
    stop_threads(l); /* everything queued is committed, made durable and answered */
    pthread_mutex_lock(&l->mu);
    while (l->inflight > 0)
        pthread_cond_wait(&l->cv_done, &l->mu);
    pthread_mutex_unlock(&l->mu);
    dlog_free(l);
}

/* ---- writes ------------------------------------------------------------------------------ */

static int valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DLOG_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F || s[i] == ':') return 0;
    return 1;
}

static dg_err check_json(const char *s, int type, const char *field, int required, char *err,
                         size_t errlen)
{
    if (s == NULL) {
        if (!required) return DG_OK;
        return dg_errf(err, errlen, DG_EINVAL, "decision log: %s is required", field);
    }
    if (!json_is(s, type))
        return dg_errf(err, errlen, DG_EINVAL, "decision log: %s is not a JSON %s", field,
                       type == cJSON_Object ? "object" : "array");
    return DG_OK;
}

dg_err dlog_append(dlog *l, const dlog_decision *d, char *err, size_t errlen)
{
    if (l == NULL || d == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (!valid_id(d->id))
        return dg_errf(err, errlen, DG_EINVAL, "decision log: id must be 1-%d printable characters",
                       DLOG_ID_MAX);
    if (d->adapter == NULL || *d->adapter == '\0' || d->opp_id == NULL || *d->opp_id == '\0')
        return dg_errf(err, errlen, DG_EINVAL, "decision log: adapter and opp_id are required");
    if (d->outcome == NULL || (strcmp(d->outcome, "allow") != 0 && strcmp(d->outcome, "block")))
        return dg_errf(err, errlen, DG_EINVAL, "decision log: outcome must be allow or block");
    if (d->time_ms < 0 || d->time_ms > DLOG_TIME_MAX)
        return dg_errf(err, errlen, DG_EINVAL, "decision log: time_ms out of range");
    if (check_json(d->decision_json, cJSON_Object, "decision_json", 1, err, errlen) ||
        check_json(d->clouds_json, cJSON_Array, "clouds_json", 0, err, errlen) ||
        check_json(d->reasons_json, cJSON_Array, "reasons_json", 0, err, errlen) ||
        check_json(d->warnings_json, cJSON_Array, "warnings_json", 0, err, errlen) ||
        check_json(d->registrations_json, cJSON_Array, "registrations_json", 0, err, errlen) ||
        check_json(d->writeback_payload_json, cJSON_Object, "writeback_payload_json", 0, err,
                   errlen))
        return DG_EINVAL;
    if ((d->writeback_crm == NULL) != (d->writeback_payload_json == NULL) ||
        (d->writeback_crm != NULL && strcmp(d->writeback_crm, "salesforce") != 0 &&
         strcmp(d->writeback_crm, "hubspot") != 0))
        return dg_errf(err, errlen, DG_EINVAL,
                       "decision log: a write-back needs a crm (salesforce or hubspot) and a "
                       "payload");
    if (LOG_STAGE(l) == LOG_OFF) return DG_OK;
    struct req *r = req_decision(d);
    if (r == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    return submit(l, r, err, errlen);
}

dg_err dlog_append_comp(dlog *l, const dlog_comp_line *lines, size_t n, char *err, size_t errlen)
{
    if (l == NULL || (lines == NULL && n > 0))
        return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (n == 0) return DG_OK;
    for (size_t i = 0; i < n; i++) {
        if (!valid_id(lines[i].id))
            return dg_errf(err, errlen, DG_EINVAL, "decision log: comp line %zu: bad id", i);
        if (lines[i].time_ms < 0 || lines[i].time_ms > DLOG_TIME_MAX)
            return dg_errf(err, errlen, DG_EINVAL, "decision log: comp line %zu: bad time", i);
        if (check_json(lines[i].result_json, cJSON_Object, "result_json", 1, err, errlen) ||
            check_json(lines[i].codes_json, cJSON_Array, "codes_json", 0, err, errlen))
            return DG_EINVAL;
    }
    struct req *r = req_comp(lines, n);
    if (r == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    return submit(l, r, err, errlen);
}

dg_err dlog_note_retry(dlog *l, const char *opp_id, int64_t now_s)
{
    if (l == NULL || opp_id == NULL || *opp_id == '\0' || now_s <= 0) return DG_EINVAL;
    struct req *r = req_retry(opp_id, now_s);
    if (r == NULL) return DG_ENOMEM;
    return submit(l, r, NULL, 0);
}

int dlog_healthy(dlog *l)
{
    return l != NULL && atomic_load(&l->healthy);
}

void dlog_stats(dlog *l, uint64_t *batches, uint64_t *rows)
{
    uint64_t b = 0, r = 0;
    if (l != NULL) {
        pthread_mutex_lock(&l->mu);
        b = l->batches;
        r = l->rows;
        pthread_mutex_unlock(&l->mu);
    }
    if (batches) *batches = b;
    if (rows) *rows = r;
}

const uint64_t dlog_batch_bounds[DLOG_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

void dlog_batch_sizes(dlog *l, uint64_t counts[DLOG_BATCH_BUCKETS + 1])
{
    if (l == NULL) {
        memset(counts, 0, (DLOG_BATCH_BUCKETS + 1) * sizeof counts[0]);
        return;
    }
    pthread_mutex_lock(&l->mu);
    memcpy(counts, l->batch_hist, (DLOG_BATCH_BUCKETS + 1) * sizeof counts[0]);
    pthread_mutex_unlock(&l->mu);
}

size_t dlog_queue_depth(dlog *l)
{
    size_t n = 0;
    if (l != NULL) {
        pthread_mutex_lock(&l->mu);
        n = l->queued;
        pthread_mutex_unlock(&l->mu);
    }
    return n;
}

/* ---- deals that may have a live override ------------------------------------------------ */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* Inserts a copy of opp into the set (l->olock held for writing). */
static void oset_insert(dlog *l, const char *opp)
{
    if (l->oall) return;
    if ((l->on + 1) * 2 > l->ocap) {
        size_t cap = l->ocap ? l->ocap * 2 : 64;
        char **v = calloc(cap, sizeof *v);
        if (v == NULL) {
            l->oall = 1;
            return;
        }
        for (size_t i = 0; i < l->ocap; i++) {
            if (l->oset[i] == NULL) continue;
            size_t j = (size_t)str_hash(l->oset[i]) & (cap - 1);
            while (v[j] != NULL)
                j = (j + 1) & (cap - 1);
            v[j] = l->oset[i];
        }
        free(l->oset);
        l->oset = v;
        l->ocap = cap;
    }
    size_t j = (size_t)str_hash(opp) & (l->ocap - 1);
    while (l->oset[j] != NULL) {
        if (strcmp(l->oset[j], opp) == 0) return;
        j = (j + 1) & (l->ocap - 1);
    }
    if ((l->oset[j] = strdup(opp)) == NULL) {
        l->oall = 1;
        return;
    }
    l->on++;
}

void dlog_ovr_note(dlog *l, const char *opp_id)
{
    if (l == NULL || opp_id == NULL) return;
    pthread_rwlock_wrlock(&l->olock);
    oset_insert(l, opp_id);
    pthread_rwlock_unlock(&l->olock);
}

int dlog_ovr_maybe(dlog *l, const char *opp_id)
{
    if (l == NULL || opp_id == NULL) return 1;
    int found = 0;
    pthread_rwlock_rdlock(&l->olock);
    if (l->oall) {
        found = 1;
    } else if (l->on > 0) {
        size_t j = (size_t)str_hash(opp_id) & (l->ocap - 1);
        while (l->oset[j] != NULL && !found) {
            found = strcmp(l->oset[j], opp_id) == 0;
            j = (j + 1) & (l->ocap - 1);
        }
    }
    pthread_rwlock_unlock(&l->olock);
    return found;
}

/* Loads the deals of every override not revoked (expired ones too: a caller may judge
 * expiry by a `now` of its own). */
static dg_err oset_load(dlog *l, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->wdb, "SELECT DISTINCT opp_id FROM overrides WHERE revoked_ms IS NULL",
                           -1, &st, NULL) != SQLITE_OK)
        return dg_errf(err, errlen, DG_EDB, "decision log: overrides: %s", sqlite3_errmsg(l->wdb));
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *opp = (const char *)sqlite3_column_text(st, 0);
        if (opp != NULL) oset_insert(l, opp);
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dg_errf(err, errlen, DG_EDB, "decision log: overrides: %s", sqlite3_errmsg(l->wdb));
    return DG_OK;
}

/* ---- reads ------------------------------------------------------------------------------- */

static struct rconn *reader_get(dlog *l)
{
    pthread_mutex_lock(&l->rmu);
    for (;;) {
        for (int i = 0; i < DLOG_READERS; i++) {
            if (!l->rc[i].busy) {
                l->rc[i].busy = 1;
                pthread_mutex_unlock(&l->rmu);
                return &l->rc[i];
            }
        }
        pthread_cond_wait(&l->rcv, &l->rmu);
    }
}

static void reader_put(dlog *l, struct rconn *c)
{
    pthread_mutex_lock(&l->rmu);
    c->busy = 0;
    pthread_cond_signal(&l->rcv);
    pthread_mutex_unlock(&l->rmu);
}

/* The cached statement `which` of c, prepared on first use (NULL on error). */
static sqlite3_stmt *reader_stmt(struct rconn *c, int which)
{
    if (c->st[which] == NULL &&
        sqlite3_prepare_v3(c->db, rsql[which], -1, SQLITE_PREPARE_PERSISTENT, &c->st[which],
                           NULL) != SQLITE_OK)
        return NULL;
    return c->st[which];
}

/* Runs read statement `which` with text parameters p1, p2 (and integer p3 when has_p3), and
 * copies up to three text columns of the first row into out[0..ncols-1]. Returns DG_OK,
 * DG_ENOTFOUND, DG_ENOMEM or DG_EDB. On DG_OK *i64 gets integer column i64_col (if >= 0). */
static dg_err read_row(dlog *l, int which, const char *p1, const char *p2, int has_p3, int64_t p3,
                       char **out[], int ncols, int i64_col, int64_t *i64)
{
    dg_err rc = DG_EDB;
    char *vals[3] = {NULL, NULL, NULL};
    struct rconn *c = reader_get(l);
    sqlite3_stmt *st = reader_stmt(c, which);
    if (st == NULL) goto done;
    bind_text(st, 1, p1);
    if (p2) bind_text(st, 2, p2);
    if (has_p3) sqlite3_bind_int64(st, 3, p3);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = DG_ENOTFOUND;
        goto done;
    }
    if (src != SQLITE_ROW) goto done;
    int oom = 0;
    for (int i = 0; i < ncols; i++)
        if (out[i]) vals[i] = col_dup(st, i, &oom);
    if (oom) {
        rc = DG_ENOMEM;
        goto done;
    }
    if (i64_col >= 0 && i64) *i64 = sqlite3_column_int64(st, i64_col);
    stmt_done(st);
    st = NULL;
    reader_put(l, c);
    c = NULL;
    /* a decision is never answered (replayed, shown) before its commit is durable */
    if (which != R_DEAL_STATE && which != R_STAGE_RAW && wait_durable(l) != DG_OK) goto done;
    for (int i = 0; i < ncols; i++) {
        if (out[i]) *out[i] = vals[i];
        vals[i] = NULL;
    }
    rc = DG_OK;
done:
    if (st) stmt_done(st);
    if (c) reader_put(l, c);
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    return rc;
}

dg_err dlog_find_event(dlog *l, const char *adapter, const char *event_id, char **decision_json,
                       char **body_hash)
{
    if (decision_json) *decision_json = NULL;
    if (body_hash) *body_hash = NULL;
    if (l == NULL || adapter == NULL || event_id == NULL) return DG_EINVAL;
    if (!bloom_maybe(&l->events, adapter, event_id)) return DG_ENOTFOUND; /* never logged */
    char **out[2] = {decision_json, body_hash};
    return read_row(l, R_FIND_EVENT, adapter, event_id, 0, 0, out, 2, -1, NULL);
}

dg_err dlog_find_recent_body(dlog *l, const char *opp_id, const char *body_hash, int64_t since_ms,
                             char **decision_json)
{
    if (decision_json) *decision_json = NULL;
    if (l == NULL || opp_id == NULL || body_hash == NULL) return DG_EINVAL;
    char **out[1] = {decision_json};
    return read_row(l, R_FIND_BODY, opp_id, body_hash, 1, since_ms, out, 1, -1, NULL);
}

dg_err dlog_get(dlog *l, const char *id, char **decision_json)
{
    if (decision_json) *decision_json = NULL;
    if (l == NULL || id == NULL) return DG_EINVAL;
    char **out[1] = {decision_json};
    dg_err rc = read_row(l, R_GET, id, NULL, 0, 0, out, 1, -1, NULL);
    if (rc == DG_OK && decision_json) dlog_wb_attach(l, id, decision_json); /* best effort */
    return rc;
}

/* ---- hooks for the log's feature files (dlog_internal.h) ---------------------------------- */

dg_err dlog_write_call(dlog *l, dlog_write_fn fn, void *arg, char *err, size_t errlen)
{
    if (l == NULL || fn == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    r->kind = RQ_CALL;
    r->fn = fn;
    r->arg = arg;
    return submit(l, r, err, errlen);
}

dg_err dlog_read_call(dlog *l, dlog_read_fn fn, void *arg)
{
    if (l == NULL || fn == NULL) return DG_EINVAL;
    struct rconn *c = reader_get(l);
    dg_err rc = fn(c->db, arg);
    reader_put(l, c);
    return rc;
}

dg_err dlog_deal_state(dlog *l, const char *opp_id, char **last_stage, char **last_raw,
                       int64_t *retry_since)
{
    if (last_stage) *last_stage = NULL;
    if (last_raw) *last_raw = NULL;
    if (retry_since) *retry_since = 0;
    if (l == NULL || opp_id == NULL) return DG_EINVAL;
    char **out[2] = {last_stage, last_raw};
    return read_row(l, R_DEAL_STATE, opp_id, NULL, 0, 0, out, 2, 2, retry_since);
}

dg_err dlog_stage_raw(dlog *l, const char *opp_id, const char *stage, char **raw)
{
    if (raw) *raw = NULL;
    if (l == NULL || opp_id == NULL || stage == NULL) return DG_EINVAL;
    char **out[1] = {raw};
    return read_row(l, R_STAGE_RAW, opp_id, stage, 0, 0, out, 1, -1, NULL);
}

static int clamp_limit(int limit)
{
    if (limit <= 0) return DLOG_LIMIT_DEFAULT;
    return limit > DLOG_LIMIT_MAX ? DLOG_LIMIT_MAX : limit;
}

/* Appends a fixed SQL fragment to buf (size cap); the fragments are constants that fit. */
static void sql_add(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap) return; /* buf is sized for every fragment at once */
    memcpy(buf + *len, s, n + 1);
    *len += n;
}

/* Writes the JSON of the current row of a page query into b. */
typedef void (*row_emit)(dg_buf *b, sqlite3_stmt *st);

/* Runs a prepared page query whose columns are (time_ms, id, json...) and writes
 * {"<key>": [...], "next_cursor": ...} into *json. limit rows at most (the statement fetches
 * limit + 1 to know whether there is a next page). */
static dg_err run_page(sqlite3_stmt *st, const char *key, int limit, row_emit emit, char **json,
                       char *err, size_t errlen)
{
    dg_buf b = {0}; /* unbounded; the caller of a query frees b.p with free() */
    int n = 0, more = 0, src;
    int64_t last_t = 0;
    char last_id[DLOG_ID_MAX + 1] = "";
    dg_buf_str(&b, "{\"");
    dg_buf_str(&b, key);
    dg_buf_str(&b, "\":[");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        if (n > 0) dg_buf_add(&b, ",", 1);
        emit(&b, st);
        last_t = sqlite3_column_int64(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        snprintf(last_id, sizeof last_id, "%s", id ? id : "");
        n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        free(b.p);
        return dg_errf(err, errlen, DG_EDB, "decision log query: %s",
                       sqlite3_errmsg(sqlite3_db_handle(st)));
    }
    dg_buf_str(&b, "],\"next_cursor\":");
    if (more) {
        char cur[DLOG_CURSOR_MAX + 8];
        cursor_encode(last_t, last_id, cur, sizeof cur);
        dg_buf_add(&b, "\"", 1);
        dg_buf_str(&b, cur);
        dg_buf_add(&b, "\"", 1);
    } else {
        dg_buf_str(&b, "null");
    }
    dg_buf_add(&b, "}", 1);
    if (dg_buf_failed(&b)) {
        free(b.p);
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    }
    *json = b.p;
    return DG_OK;
}

static void emit_decision(dg_buf *b, sqlite3_stmt *st)
{
    /* the stored text is a JSON object we validated on append */
    dg_buf_add(b, (const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
}

static void emit_comp(dg_buf *b, sqlite3_stmt *st)
{
    char when[DLOG_TIMELEN];
    rfc3339_ms(sqlite3_column_int64(st, 0), when);
    const char *id = (const char *)sqlite3_column_text(st, 1);
    cJSON *o = cJSON_Parse((const char *)sqlite3_column_text(st, 2));
    if (o != NULL && !cJSON_IsObject(o)) { /* cannot happen: validated on append */
        cJSON_Delete(o);
        o = NULL;
    }
    if (o == NULL) o = cJSON_CreateObject();
    char *s = NULL;
    if (o != NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "id");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "time");
        cJSON *idv = cJSON_CreateString(id ? id : "");
        cJSON *tv = cJSON_CreateString(when);
        if (idv) cJSON_AddItemToObject(o, "id", idv);
        if (tv) cJSON_AddItemToObject(o, "time", tv);
        s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    if (s == NULL) {
        b->oom = 1;
        return;
    }
    dg_buf_str(b, s);
    cJSON_free(s);
}

/* Runs a page query built from sql on a pooled reader; bind() binds its parameters. */
typedef int (*page_bind)(sqlite3_stmt *st, const void *q, int64_t cur_t, const char *cur_id,
                         int limit);

static dg_err query_page(dlog *l, const char *sql, page_bind bind, const void *q,
                         const char *cursor, int limit, const char *key, row_emit emit, char **json,
                         char *err, size_t errlen)
{
    dg_err rc = DG_EDB;
    sqlite3_stmt *st = NULL;
    int64_t cur_t = 0;
    char cur_id[DLOG_ID_MAX + 1] = "";
    if (cursor != NULL && !cursor_decode(cursor, &cur_t, cur_id, sizeof cur_id))
        return dg_errf(err, errlen, DG_EINVAL, "invalid cursor");
    struct rconn *c = reader_get(l);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        dg_errf(err, errlen, DG_EDB, "decision log query: %s", sqlite3_errmsg(c->db));
        goto done;
    }
    if (bind(st, q, cur_t, cursor ? cur_id : NULL, limit) != SQLITE_OK) {
        dg_errf(err, errlen, DG_EDB, "decision log query: %s", sqlite3_errmsg(c->db));
        goto done;
    }
    rc = run_page(st, key, limit, emit, json, err, errlen);
done:
    sqlite3_finalize(st);
    reader_put(l, c);
    return rc;
}

static int bind_cursor_limit(sqlite3_stmt *st, int64_t cur_t, const char *cur_id, int limit)
{
    int rc = SQLITE_OK;
    if (cur_id) {
        if (rc == SQLITE_OK) rc = bindn_int(st, ":ct", cur_t);
        if (rc == SQLITE_OK) rc = bindn_text(st, ":cid", cur_id);
    }
    if (rc == SQLITE_OK) rc = bindn_int(st, ":lim", (int64_t)limit + 1);
    return rc;
}

static int bind_decisions(sqlite3_stmt *st, const void *qv, int64_t cur_t, const char *cur_id,
                          int limit)
{
    const dlog_filter *q = qv;
    int rc = SQLITE_OK;
    if (q->outcome && rc == SQLITE_OK) rc = bindn_text(st, ":outcome", q->outcome);
    if (q->owner && rc == SQLITE_OK) rc = bindn_text(st, ":owner", q->owner);
    if (q->opportunity && rc == SQLITE_OK) rc = bindn_text(st, ":opp", q->opportunity);
    if (q->since_ms > 0 && rc == SQLITE_OK) rc = bindn_int(st, ":since", q->since_ms);
    return rc == SQLITE_OK ? bind_cursor_limit(st, cur_t, cur_id, limit) : rc;
}

dg_err dlog_query(dlog *l, const dlog_filter *q, char **json, char *err, size_t errlen)
{
    static const dlog_filter none = {0};
    if (json) *json = NULL;
    if (l == NULL || json == NULL) return dg_errf(err, errlen, DG_EINVAL, "no log");
    if (q == NULL) q = &none;
    char sql[512];
    size_t len = 0;
    sql[0] = '\0';
    sql_add(sql, sizeof sql, &len, "SELECT time_ms, id, decision_json FROM decisions WHERE 1");
    /* Steer the planner to the most selective index (deal, then owner, then outcome): a
     * unary + keeps a column's index out of consideration. */
    if (q->opportunity) sql_add(sql, sizeof sql, &len, " AND opp_id = :opp");
    if (q->owner)
        sql_add(sql, sizeof sql, &len,
                q->opportunity ? " AND +owner = :owner" : " AND owner = :owner");
    if (q->outcome)
        sql_add(sql, sizeof sql, &len,
                q->opportunity || q->owner ? " AND +outcome = :outcome"
                                           : " AND outcome = :outcome");
    if (q->since_ms > 0) sql_add(sql, sizeof sql, &len, " AND time_ms >= :since");
    if (q->cursor) sql_add(sql, sizeof sql, &len, " AND (time_ms, id) < (:ct, :cid)");
    sql_add(sql, sizeof sql, &len, " ORDER BY time_ms DESC, id DESC LIMIT :lim");
    return query_page(l, sql, bind_decisions, q, q->cursor, clamp_limit(q->limit), "decisions",
                      emit_decision, json, err, errlen);
}

static int bind_comp(sqlite3_stmt *st, const void *qv, int64_t cur_t, const char *cur_id, int limit)
{
    const dlog_comp_filter *q = qv;
    int rc = SQLITE_OK;
    if (q->rep && rc == SQLITE_OK) rc = bindn_text(st, ":rep", q->rep);
    if (q->since_ms > 0 && rc == SQLITE_OK) rc = bindn_int(st, ":since", q->since_ms);
    return rc == SQLITE_OK ? bind_cursor_limit(st, cur_t, cur_id, limit) : rc;
}

dg_err dlog_query_comp(dlog *l, const dlog_comp_filter *q, char **json, char *err, size_t errlen)
{
    static const dlog_comp_filter none = {0};
    if (json) *json = NULL;
    if (l == NULL || json == NULL) return dg_errf(err, errlen, DG_EINVAL, "no log");
    if (q == NULL) q = &none;
    char sql[512];
    size_t len = 0;
    sql[0] = '\0';
    sql_add(sql, sizeof sql, &len, "SELECT time_ms, id, result_json FROM comp_checks WHERE 1");
    if (q->rep) sql_add(sql, sizeof sql, &len, " AND rep = :rep");
    if (q->violations_only)
        sql_add(sql, sizeof sql, &len, q->rep ? " AND +violation = 1" : " AND violation = 1");
    if (q->since_ms > 0) sql_add(sql, sizeof sql, &len, " AND time_ms >= :since");
    if (q->cursor) sql_add(sql, sizeof sql, &len, " AND (time_ms, id) < (:ct, :cid)");
    sql_add(sql, sizeof sql, &len, " ORDER BY time_ms DESC, id DESC LIMIT :lim");
    return query_page(l, sql, bind_comp, q, q->cursor, clamp_limit(q->limit), "checks", emit_comp,
                      json, err, errlen);
}
