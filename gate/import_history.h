/* import_history.h — `dealgate import-history [-c FILE] history.csv`.
 *
 * Loads a CRM stage-history export (deal id, stage, time, and optionally from-stage,
 * amount, currency, clouds, registration ids, name, account, owner, pipeline) into the
 * decision log as decisions of adapter "import" (outcome allow, not gated), so the KPIs
 * see closes and wins from before dealgate. Idempotent: the event id of a row is derived
 * from deal, stage and time. Header names and formats: docs/operations.md.
 */
#ifndef DG_IMPORT_HISTORY_H
#define DG_IMPORT_HISTORY_H

/* Runs the command; argv holds the arguments after "import-history". Prints "line N:
 * message" on stderr for each bad row and one summary line on stdout ("imported N, already
 * imported N, skipped N, failed N (N rows)"). Returns 0 when every row was imported (or
 * already was, or is another field's history), 1 when a row failed, 2 when the config,
 * the file, its header or the decision log is unusable. */
int gate_import_history_main(int argc, char **argv);

#endif
