/* backup.c — `dealgate backup`: SQLite online backup of the decision log (backup.h). */
#include "gate/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config/cfg.h"
#include "gate/cli.h"

#define BK_BUSY_MS 5000
#define BK_TRIES 50 /* busy/locked steps before giving up (100 ms apart) */

static long long count_rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* fsyncs path (a file or a directory); 0 or -1. */
static int sync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copies src_path into dst_path (created). Returns 0, or -1 with a message in err. */
static int copy_db(const char *src_path, const char *dst_path, long long *decisions,
                   long long *deals, char *err, size_t errlen)
{
    int rc = -1;
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b = NULL;
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %.300s: %.200s", src_path,
                 src ? sqlite3_errmsg(src) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(src, BK_BUSY_MS);
    sqlite3_exec(src, "PRAGMA query_only=1", NULL, NULL, NULL);
    if (count_rows(src, "SELECT count(*) FROM sqlite_schema WHERE name = 'decisions'") != 1) {
        snprintf(err, errlen, "%.300s is not a dealgate decision log", src_path);
        goto done;
    }
    if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot create %.300s: %.200s", dst_path,
                 dst ? sqlite3_errmsg(dst) : "out of memory");
        goto done;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        snprintf(err, errlen, "backup: %s", sqlite3_errmsg(dst));
        goto done;
    }
    int st = SQLITE_OK, tries = 0;
    /* all pages in one step: one read transaction, so the copy is one commit's state */
    while ((st = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || st == SQLITE_LOCKED) {
        if (++tries > BK_TRIES) break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int fin = sqlite3_backup_finish(b);
    b = NULL;
    if (st != SQLITE_DONE || fin != SQLITE_OK) {
        snprintf(err, errlen, "backup: %s", sqlite3_errstr(st != SQLITE_DONE ? st : fin));
        goto done;
    }
    sqlite3_stmt *q = NULL;
    int ok = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL) == SQLITE_OK &&
             sqlite3_step(q) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0;
    sqlite3_finalize(q);
    if (!ok) {
        snprintf(err, errlen, "the copy fails PRAGMA quick_check");
        goto done;
    }
    *decisions = count_rows(dst, "SELECT count(*) FROM decisions");
    *deals = count_rows(dst, "SELECT count(*) FROM deals");
    rc = 0;
done:
    if (b) sqlite3_backup_finish(b);
    sqlite3_close(dst); /* checkpoints and removes the copy's -wal, if any */
    sqlite3_close(src);
    return rc;
}

int gate_backup_main(int argc, char **argv)
{
    char *rest[argc + 1];
    int nargs = 0;
    const char *cfg_path = gate_cli_config_arg(argc, argv, rest, &nargs);
    if (!cfg_path) return 2;
    const char *out = nargs == 1 ? rest[0] : NULL;
    if (!out || !*out) {
        fprintf(stderr, "usage: dealgate backup [-c FILE] BACKUP_FILE\n");
        return 2;
    }
    struct cfg *c = gate_cli_load(cfg_path, 0);
    if (!c) return 2;
    int status = 1;
    char src[4096], tmp[4096], err[600] = "", dir[4096];
    struct stat sb;
    snprintf(src, sizeof src, "%s/dealgate.db", c->server.data_dir);
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "dealgate backup: %s: path too long\n", out);
        goto done;
    }
    if (stat(src, &sb) != 0) {
        fprintf(stderr, "dealgate backup: %s: %s (is [server] data_dir right?)\n", src,
                strerror(errno));
        goto done;
    }
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dealgate backup: %s is a directory; name the backup file\n", out);
        goto done;
    }
    unlink(tmp);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "dealgate backup: %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    close(fd);
    long long decisions = 0, deals = 0;
    time_t t0 = time(NULL);
    if (copy_db(src, tmp, &decisions, &deals, err, sizeof err) != 0 || sync_path(tmp, 0) != 0 ||
        rename(tmp, out) != 0) {
        fprintf(stderr, "dealgate backup: %s\n", err[0] ? err : strerror(errno));
        unlink(tmp);
        goto done;
    }
    /* the rename is durable once the directory is synced */
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    sync_path(dir, 1);
    chmod(out, 0600);
    stat(out, &sb);
    char when[32];
    struct tm tm;
    gmtime_r(&t0, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("backup %s: %lld decisions, %lld deals, %lld bytes (the log as of %s)\n", out, decisions,
           deals, (long long)sb.st_size, when);
    status = 0;
done:
    cfg_free(c);
    return status;
}
