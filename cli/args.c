/*
 * args: see args.h. Two passes over argv, both with the same walker (walk): the first only
 * loads every --config FILE in order, the second applies the rest in order, so a flag overrides
 * the file wherever it stands. A hand-written walker rather than getopt_long: it keeps no global
 * state (feed runs many times inside one test process), takes only exact option names (an
 * abbreviation never changes meaning when an option is added), and words its own errors.
 */
#include "cli/args.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { ID_CONFIG = -100, ID_SET, ID_PRINT_CONFIG, ID_HELP };

/* The options every command has (the settings ones only when it has a config). */
static const args_opt_t COMMON[] = {
    {"config", true, ID_CONFIG, NULL},
    {"set", true, ID_SET, NULL},
    {"print-config", false, ID_PRINT_CONFIG, NULL},
    {NULL, false, 0, NULL},
};
static const args_opt_t HELP = {"help", false, ID_HELP, NULL};

int args_error(const char *command, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tickcore: %s: %s (see tickcore %s --help)\n", command, msg, command);
    return 2;
}

int args_bad(const char *command, const char *opt, const char *val, const char *want)
{
    return args_error(command, "%s wants %s, got '%s'", opt, want, val);
}

/* The option called name (len bytes), or NULL. */
static const args_opt_t *lookup(const args_spec_t *s, const char *name, size_t len)
{
    for (int pass = 0; pass < 2; pass++) {
        const args_opt_t *t = pass == 0 ? s->opts : s->cfg ? COMMON : NULL;
        for (; t && t->name; t++)
            if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
                return t;
    }
    if (strlen(HELP.name) == len && memcmp(HELP.name, name, len) == 0)
        return &HELP;
    return NULL;
}

/* 0 if path opens for reading and is not a directory, else the errno. */
static int readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int e = fd < 0 ? errno : fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (fd >= 0)
        close(fd);
    return e;
}

/* A config file must be a readable file: say which errno otherwise (config_load would take a
 * directory as an empty file). 0 or 2. */
static int load_config(const args_spec_t *s, const char *path)
{
    int e = readable(path);
    if (e) {
        fprintf(stderr, "tickcore: %s: config %s: %s\n", s->command, path, strerror(e));
        return 2;
    }
    char err[600];
    if (config_load(s->cfg, path, err, sizeof err) < 0) {
        fprintf(stderr, "tickcore: %s: %s\n", s->command, err);
        return 2;
    }
    return 0;
}

typedef struct walk_state {
    bool print_config;
    int npos;
} walk_state_t;

/* One pass. first: only --config. ARGS_RUN or an exit status. */
static int walk(const args_spec_t *s, int argc, char **argv, bool first, walk_state_t *w)
{
    bool options = true;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!options || a[0] != '-' || a[1] == '\0') { /* positional ("-" included) */
            if (!first)
                argv[++w->npos] = a; /* npos < i: compaction never overwrites what is unread */
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        const char *name = a + 2, *eq = NULL;
        const args_opt_t *o = NULL;
        if (strcmp(a, "-h") == 0)
            o = &HELP;
        else if (a[1] == '-') {
            eq = strchr(name, '=');
            o = lookup(s, name, eq ? (size_t)(eq - name) : strlen(name));
        }
        if (!o) {
            if (first)
                continue;
            return args_error(s->command, "unknown option %.*s",
                              eq ? (int)(eq - a) : (int)strlen(a), a);
        }
        const char *val = NULL;
        if (o->value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return first ? ARGS_RUN
                             : args_error(s->command, "option --%s needs a value", o->name);
        } else if (eq) {
            if (first)
                continue;
            return args_error(s->command, "option --%s takes no value", o->name);
        }
        if (first) {
            if (o->id == ID_CONFIG && load_config(s, val))
                return 2;
            continue;
        }
        char err[600];
        switch (o->id) {
        case ID_CONFIG:
            break;
        case ID_HELP:
            s->usage(stdout);
            return 0;
        case ID_PRINT_CONFIG:
            w->print_config = true;
            break;
        case ID_SET:
            if (config_set(s->cfg, val, NULL, err, sizeof err) < 0)
                return args_error(s->command, "--set %s: %s", val, err);
            break;
        default:
            if (o->key) {
                if (config_set(s->cfg, o->key, val, err, sizeof err) < 0)
                    return args_error(s->command, "--%s %s: %s", o->name, val, err);
            } else if (s->on_opt(s->ctx, o->id, val)) {
                return 2;
            }
        }
    }
    return ARGS_RUN;
}

int args_parse(const args_spec_t *s, int argc, char **argv, int *npos)
{
    walk_state_t w = {0};
    int rc;
    if (s->cfg && (rc = walk(s, argc, argv, true, &w)) != ARGS_RUN)
        return rc;
    if ((rc = walk(s, argc, argv, false, &w)) != ARGS_RUN)
        return rc;
    if (s->cfg) {
        char err[600];
        if (config_check(s->cfg, err, sizeof err) < 0) {
            fprintf(stderr, "tickcore: %s: %s\n", s->command, err);
            return 2;
        }
        if (w.print_config) {
            config_print(stdout, s->cfg);
            return 0;
        }
    }
    if (w.npos < s->min_pos)
        return args_error(s->command, "no %s", s->what ? s->what : "argument");
    if (w.npos > s->max_pos)
        return args_error(s->command, "unexpected argument '%s'", argv[s->max_pos + 1]);
    if (w.npos < argc - 1)
        argv[w.npos + 1] = NULL;
    *npos = w.npos;
    return ARGS_RUN;
}

int args_check_input(const char *command, const char *path)
{
    int e = readable(path);
    if (e)
        fprintf(stderr, "tickcore: %s: %s: %s\n", command, path, strerror(e));
    return -e;
}

int args_parse_count(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return -EINVAL;
    double mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1e3;
    else if (*end == 'm' || *end == 'M')
        mult = 1e6;
    else if (*end == 'g' || *end == 'G')
        mult = 1e9;
    if (mult != 1)
        end++;
    if (*end != '\0')
        return -EINVAL;
    /* Only decimal forms: strtod also takes "inf", "nan" and hex floats. */
    for (const char *c = s; c < end; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-' || (c == end - 1 && mult != 1)))
            return -EINVAL;
    v *= mult;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v))
        return -EINVAL;
    if (mult == 1 && strspn(s, "0123456789") == strlen(s)) { /* digits: exact, not rounded */
        unsigned long long u = strtoull(s, NULL, 10);
        if (u > 9007199254740992ull)
            return -EINVAL;
        v = (double)u;
    }
    *out = (uint64_t)v;
    return 0;
}

int args_count(const char *command, const char *opt, const char *val, uint64_t lo, uint64_t hi,
               const char *want, uint64_t *out)
{
    uint64_t v;
    if (args_parse_count(val, &v) || v < lo || v > hi)
        return args_bad(command, opt, val, want);
    *out = v;
    return 0;
}

int args_parse_u64(const char *s, uint64_t *out)
{
    if (s[0] == '-' || s[0] == '+' || s[0] == ' ' || s[0] == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}
