/*
 * prom: see prom.h. Every sample line is written by one function (line()) so names, label sets
 * and values are formatted in one place.
 */
#include "server/prom.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *s, bool colon)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A float as Go's strconv.ParseFloat reads it: NaN, +Inf, -Inf, or the shortest %g form that
 * round-trips. */
static void put_value(jbuf_t *jb, double v)
{
    if (isnan(v)) {
        jbuf_puts(jb, "NaN");
        return;
    }
    if (isinf(v)) {
        jbuf_puts(jb, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    jbuf_puts(jb, tmp);
}

static void put_escaped(jbuf_t *jb, const char *s, bool quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t run = 0; /* bytes at p that need no escaping, not yet written */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const char *esc = NULL;
        size_t k = 1;
        if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (quote && c == '"')
            esc = "\\\"";
        else if (c >= 0x80) {
            k = jbuf_utf8_seq(p + i, n - i);
            if (k == 0) {
                esc = "\xef\xbf\xbd"; /* U+FFFD */
                k = 1;
            }
        }
        if (esc) {
            jbuf_putn(jb, (const char *)p + i - run, run);
            jbuf_puts(jb, esc);
            run = 0;
        } else
            run += k;
        i += k;
    }
    jbuf_putn(jb, (const char *)p + n - run, run);
}

int prom_family(jbuf_t *jb, const char *name, const char *type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    bool known = false;
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        known = known || strcmp(type, types[i]) == 0;
    if (!known || !name_ok(name, true) ||
        (strcmp(type, "counter") == 0 && !ends_with(name, "_total")))
        return -EINVAL;
    jbuf_puts(jb, "# HELP ");
    jbuf_puts(jb, name);
    jbuf_putc(jb, ' ');
    put_escaped(jb, help ? help : "", false);
    jbuf_puts(jb, "\n# TYPE ");
    jbuf_puts(jb, name);
    jbuf_putc(jb, ' ');
    jbuf_puts(jb, type);
    jbuf_putc(jb, '\n');
    return 0;
}

/* name suffix{labels,xname="xval"} value\n; the value as a double, or as v64 if !is_double. */
static int line(jbuf_t *jb, const char *name, const char *suffix, const char *labels,
                const char *xname, const char *xval, bool is_double, double v, uint64_t v64)
{
    if (!name_ok(name, true))
        return -EINVAL;
    bool has_labels = labels && *labels;
    jbuf_puts(jb, name);
    if (suffix)
        jbuf_puts(jb, suffix);
    if (has_labels || xname) {
        jbuf_putc(jb, '{');
        if (has_labels)
            jbuf_puts(jb, labels);
        if (xname) {
            if (has_labels)
                jbuf_putc(jb, ',');
            jbuf_puts(jb, xname);
            jbuf_puts(jb, "=\"");
            jbuf_puts(jb, xval);
            jbuf_putc(jb, '"');
        }
        jbuf_putc(jb, '}');
    }
    jbuf_putc(jb, ' ');
    if (is_double)
        put_value(jb, v);
    else
        jbuf_u64(jb, v64);
    jbuf_putc(jb, '\n');
    return 0;
}

int prom_sample(jbuf_t *jb, const char *name, const char *labels, double v)
{
    return line(jb, name, NULL, labels, NULL, NULL, true, v, 0);
}

int prom_sample_u64(jbuf_t *jb, const char *name, const char *labels, uint64_t v)
{
    return line(jb, name, NULL, labels, NULL, NULL, false, 0, v);
}

int prom_label(jbuf_t *jb, const char *name, const char *value)
{
    if (!name_ok(name, false) || strncmp(name, "__", 2) == 0)
        return -EINVAL;
    if (jbuf_len(jb) > 0)
        jbuf_putc(jb, ',');
    jbuf_puts(jb, name);
    jbuf_puts(jb, "=\"");
    put_escaped(jb, value ? value : "", true);
    jbuf_putc(jb, '"');
    return 0;
}

int prom_summary_histo(jbuf_t *jb, const char *name, const char *labels, const histo_t *h,
                       double scale)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    static const char *const qnames[] = {"0.5", "0.9", "0.99", "0.999"};
    if (!name_ok(name, true))
        return -EINVAL;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double v = h->n ? (double)histo_quantile(h, qs[i]) * scale : NAN;
        line(jb, name, NULL, labels, "quantile", qnames[i], true, v, 0);
    }
    line(jb, name, "_sum", labels, NULL, NULL, true, (double)h->sum * scale, 0);
    line(jb, name, "_count", labels, NULL, NULL, false, 0, h->n);
    return 0;
}
