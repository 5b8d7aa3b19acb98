/* backup.h — `dealgate backup [-c FILE] BACKUP`: a consistent copy of the decision log.
 *
 * Runs beside a live service: SQLite's online backup API copies data_dir/dealgate.db from
 * a connection of its own inside one read transaction (WAL mode: the service's writer is
 * never blocked, and the copy is the log as of one commit). The copy is written to a
 * temporary file next to BACKUP, checked (PRAGMA quick_check), synced and renamed into
 * place, mode 0600, so BACKUP is either the old file or a complete new copy. Restore:
 * docs/operations.md.
 */
#ifndef DG_BACKUP_H
#define DG_BACKUP_H

/* Runs the command; argv holds the arguments after "backup". Prints one summary line on
 * stdout. Returns 0 on success, 1 when the copy failed, 2 on a usage or config error. */
int gate_backup_main(int argc, char **argv);

#endif
