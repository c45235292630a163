/*
 * args: the one argument parser of every command. A command describes its options in a table
 * (long name, whether it takes a value, an id for its callback, or the configuration key the
 * value sets, e.g. --symbols -> symbols.max_symbols) and args_parse does the rest the same way
 * for all of them: the --config FILE pass first (so flags override the file wherever they
 * appear; a directory or an unreadable file is refused, naming the path and the errno text),
 * then --set section.key=value and the table's options in order, --help, --print-config,
 * config_check, and the positional arguments. Errors are one line on stderr of the shape
 * "tickcore: CMD: WHAT (see tickcore CMD --help)" and exit status 2; nothing goes to stdout.
 *
 * Ownership: nothing is allocated; values handed to callbacks and positional arguments point
 * into argv (positional arguments are moved to the front of argv, after argv[0]). Start-up only;
 * not thread-safe (stderr), but keeps no global state, so it may run any number of times.
 */
#ifndef TICKCORE_CLI_ARGS_H
#define TICKCORE_CLI_ARGS_H

#include "config/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define ARGS_RUN (-1) /* args_parse: go on and run the command */

/* An option of a command. Exactly one of id (> 0: the callback gets it) and key (the config key
 * its value sets through config_set) is used. */
typedef struct args_opt {
    const char *name; /* without the leading "--" */
    bool value;       /* takes a value: "--name VALUE" or "--name=VALUE" */
    int id;
    const char *key;
} args_opt_t;

/* One option of the table, in the order given; val is NULL for an option without a value.
 * 0 to go on, or non-zero after reporting the error with args_bad or args_error (exit 2). */
typedef int args_opt_fn(void *ctx, int id, const char *val);

typedef struct args_spec {
    const char *command;    /* "replay": used in every message */
    const args_opt_t *opts; /* the command's own options, ended by {NULL} */
    args_opt_fn *on_opt;
    void *ctx;
    void (*usage)(FILE *f); /* the --help text */
    config_t *cfg;    /* NULL: the command has no settings (no --config, --set, --print-config) */
    const char *what; /* what a positional argument is, for messages ("input file") */
    int min_pos, max_pos; /* positional arguments accepted */
} args_spec_t;

/* Parse argv[1..argc) (argv[0] is the command's name). Returns ARGS_RUN with *npos positional
 * arguments in argv[1..npos], or the exit status to return at once: 0 after --help or
 * --print-config (printed on stdout), 2 after a usage or config error (said on stderr). */
int args_parse(const args_spec_t *spec, int argc, char **argv, int *npos);

/* "tickcore: CMD: MESSAGE (see tickcore CMD --help)" on stderr. Returns 2. */
int args_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "tickcore: CMD: --OPT wants WANT, got 'VAL' (see tickcore CMD --help)". Returns 2. */
int args_bad(const char *command, const char *opt, const char *val, const char *want);

/* The input file is readable and not a directory: opened and closed again, before any start-up.
 * 0, or -errno after one line on stderr "tickcore: CMD: PATH: ERRNO TEXT" (exit 1). */
int args_check_input(const char *command, const char *path);

/* A count: "1000000", "1e6", "2.5e6", "10M", "10m", "500k", "1G" (k, M, G = 1e3, 1e6, 1e9).
 * 0, or -EINVAL for anything else (not a whole number, negative, above 2^53, hex, inf, nan). */
int args_parse_count(const char *s, uint64_t *out);
/* An option's count in [lo, hi] into *out: 0, or 2 after args_bad(command, opt, val, want). */
int args_count(const char *command, const char *opt, const char *val, uint64_t lo, uint64_t hi,
               const char *want, uint64_t *out);
/* An unsigned 64-bit integer, decimal or 0x hex, nothing around it. 0 or -EINVAL. */
int args_parse_u64(const char *s, uint64_t *out);

#endif
