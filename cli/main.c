/*
 * main: the tickcore command line. One binary, one sub-command per job; each sub-command
 * parses its own options and returns the process exit status (0 ok, 1 runtime error, 2 usage
 * or config error, 3 leak or churn in strict mode). Sub-commands appear here as the issues
 * that build them land; the list below is exactly what this build can do.
 */
#include "cli/cmd_feed.h"
#include "cli/cmd_gen.h"
#include "cli/cmd_replay.h"
#include "cli/cmd_selfcheck.h"
#include "cli/cmd_serve.h"

#include <stdio.h>
#include <string.h>

#define TICKCORE_VERSION "0.2.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tickcore <command> [options]\n"
            "\n"
            "commands:\n"
            "  gen         write a synthetic ITCH 5.0 trading day with known correlations\n"
            "              (tickcore gen --help)\n"
            "  replay      replay ITCH 5.0 (plain or gzip) and CSV files, report\n"
            "              (tickcore replay --help)\n"
            "  serve       run as a server: live SoupBinTCP and MoldUDP64 feeds, a journal that\n"
            "              survives crashes, HTTP queries and Prometheus metrics\n"
            "              (tickcore serve --help)\n"
            "  feed        publish an ITCH 5.0 file as a live feed to a server, over\n"
            "              SoupBinTCP or MoldUDP64 (tickcore feed --help)\n"
            "  selfcheck   memory self-check: ring, arena and pool under load after the seal,\n"
            "              then the churn count and the leak check (tickcore selfcheck --help)\n"
            "  version     print the version\n"
            "  help        this text\n"
            "\n"
            "exit status: 0 ok, 1 runtime error, 2 usage error, 3 leak or churn (--strict)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "gen") == 0)
        return cmd_gen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return replay_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "feed") == 0)
        return feed_main(argc - 1, argv + 1);
    if (strcmp(cmd, "selfcheck") == 0)
        return selfcheck_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tickcore %s\n", TICKCORE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tickcore: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
