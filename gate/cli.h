/* cli.h — the dealgate command line: serve, check-config, eval, comp-check, --version. */
#ifndef DG_CLI_H
#define DG_CLI_H

struct cfg;

/* Takes "-c FILE" / "--config FILE" out of argv[0..argc): returns the config path (default
 * config/dealgate.ini) and puts the other arguments, in order, in rest[0..*nrest) (rest has
 * room for argc entries; borrowed from argv). Returns NULL after printing a usage error. */
const char *gate_cli_config_arg(int argc, char **argv, char **rest, int *nrest);

/* Loads the config at path, printing every error (and, with print_warnings, every warning)
 * to stderr. Returns the snapshot (caller frees with cfg_free) or NULL. */
struct cfg *gate_cli_load(const char *path, int print_warnings);

/* Runs the command line; returns the process exit status. */
int gate_cli_main(int argc, char **argv);

#endif
