/* cli.c — command dispatch (filled in as commands land). */
#include "gate/cli.h"

#include <stdio.h>
#include <string.h>

int gate_cli_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("dealgate %s\n", DG_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: dealgate serve|check-config|eval|comp-check [-c FILE]\n");
    return 2;
}
