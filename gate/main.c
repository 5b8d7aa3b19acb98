/* main.c — the thin dealgate executable: everything lives in dealgate_core. */
#include "gate/cli.h"

int main(int argc, char **argv)
{
    return gate_cli_main(argc, argv);
}
