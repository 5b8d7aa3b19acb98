/* comp_cli.h — `dealgate comp-check`: audit a comp tool's statement export offline.
 *
 *   dealgate comp-check [-c FILE] STATEMENT.csv [--format text|json|csv] [--all]
 *
 * The statement (or "-" for standard input) is streamed: a reader thread reads it in 64 KiB
 * blocks and cuts records with libcsv (gate_comp_csv_new_records) into a few bounded
 * batches; the calling thread checks each record and reports it, in file order, as soon as
 * it arrives. Memory stays constant whatever the file size (the per-rep summary is capped at
 * GATE_COMP_CLI_MAX_REPS reps; the rest are summed as "other reps"). Output goes to standard
 * output: text (a report of the lines that are not clean, or every line with --all, and a
 * summary: lines checked, violations by code, total shortfall by currency and by rep); json
 * (the same object as POST /v1/commission/check, results[] first so it can stream); csv (one
 * row per reported line, cells starting with = + - @ tab or CR prefixed with a single quote
 * so a spreadsheet runs no formula; the text summary goes to standard error).
 *
 * Exit status: 0 every line clean (warnings allowed), 1 violations found, 2 unusable input
 * (the message names the file, line and column), a config error (every error printed),
 * or a usage error.
 */
#ifndef DG_COMP_CLI_H
#define DG_COMP_CLI_H

#define GATE_COMP_CLI_MAX_REPS 10000 /* reps (per currency) listed in the summary */

/* Runs comp-check. argv[0] is the command name ("comp-check"); the options follow.
 * Returns the exit status (0, 1, 2). */
int gate_comp_check_main(int argc, char **argv);

#endif
