/* cli.h — the dealgate command line: serve, check-config, eval, comp-check, --version. */
#ifndef DG_CLI_H
#define DG_CLI_H

/* Runs the command line; returns the process exit status. */
int gate_cli_main(int argc, char **argv);

#endif
