/*
 * fault: see fault.h. The counters are atomics (any thread); arming is for one thread while no
 * I/O runs elsewhere (start-up, a test's setup). The persistent fault of a site mask is a flag
 * set when the nth call fails and read by every later call of those sites.
 */
#include "base/fault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Atomic bool fault_armed_flag;

static _Atomic uint64_t g_calls[FAULT_NSITES];
static _Atomic uint64_t g_counted, g_injected;
static _Atomic int g_first_site = -1;
static _Atomic bool g_tripped; /* the nth call happened (persistent: all later ones fail) */
static unsigned g_mask;
static uint64_t g_nth;
static fault_kind_t g_kind;
static bool g_persistent;

static const char *const site_names[FAULT_NSITES] = {
    "journal_write", "journal_fsync", "journal_read", "crc_write", "gaps_write",
    "export_write",  "tcp_accept",    "http_accept",  "tcp_recv",  "tcp_send"};
static const char *const kind_names[FAULT_NKINDS] = {"none",  "eio",   "enospc",
                                                     "eintr", "short", "econnreset"};

const char *fault_site_name(fault_site_t site)
{
    return (unsigned)site < FAULT_NSITES ? site_names[site] : "?";
}

const char *fault_kind_name(fault_kind_t kind)
{
    return (unsigned)kind < FAULT_NKINDS ? kind_names[kind] : "?";
}

int fault_errno(fault_kind_t kind)
{
    switch (kind) {
    case FAULT_EIO:
        return -EIO;
    case FAULT_ENOSPC:
        return -ENOSPC;
    case FAULT_EINTR:
        return -EINTR;
    case FAULT_ECONNRESET:
        return -ECONNRESET;
    default:
        return 0;
    }
}

int fault_arm(unsigned mask, uint64_t nth, fault_kind_t kind, bool persistent)
{
    if ((unsigned)kind >= FAULT_NKINDS || (mask & ~FAULT_ALL_SITES) || mask == 0 ||
        (kind != FAULT_NONE && nth == 0) ||
        (persistent && kind != FAULT_EIO && kind != FAULT_ENOSPC))
        return -EINVAL;
    atomic_store(&fault_armed_flag, false);
    for (int i = 0; i < FAULT_NSITES; i++)
        atomic_store(&g_calls[i], 0);
    atomic_store(&g_counted, 0);
    atomic_store(&g_injected, 0);
    atomic_store(&g_first_site, -1);
    atomic_store(&g_tripped, false);
    g_mask = mask;
    g_nth = nth;
    g_kind = kind;
    g_persistent = persistent;
    atomic_store(&fault_armed_flag, true);
    return 0;
}

void fault_disarm(void)
{
    atomic_store(&fault_armed_flag, false);
}

fault_kind_t fault_hit(fault_site_t site)
{
    if ((unsigned)site >= FAULT_NSITES)
        return FAULT_NONE;
    atomic_fetch_add(&g_calls[site], 1);
    if (!(g_mask & (1u << site)) || g_kind == FAULT_NONE)
        return FAULT_NONE;
    uint64_t k = atomic_fetch_add(&g_counted, 1) + 1;
    if (k < g_nth || (k > g_nth && !(g_persistent && atomic_load(&g_tripped))))
        return FAULT_NONE;
    atomic_store(&g_tripped, true);
    int none = -1;
    atomic_compare_exchange_strong(&g_first_site, &none, (int)site);
    atomic_fetch_add(&g_injected, 1);
    return g_kind;
}

void fault_stats(fault_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < FAULT_NSITES; i++)
        out->calls[i] = atomic_load(&g_calls[i]);
    out->injected = atomic_load(&g_injected);
    out->kind = g_kind;
    out->nth = g_nth;
    out->first_site = atomic_load(&g_first_site);
}

void fault_describe(char *buf, size_t len)
{
    fault_stats_t st;
    fault_stats(&st);
    size_t n = 0;
    int k = snprintf(buf, len, "fault: calls");
    for (int i = 0; i <= FAULT_NSITES && k >= 0 && (n += (size_t)k) < len; i++)
        k = i < FAULT_NSITES
                ? snprintf(buf + n, len - n, " %s=%" PRIu64, site_names[i], st.calls[i])
                : snprintf(buf + n, len - n,
                           "; armed %s at call %" PRIu64 "%s, injected %" PRIu64 " (first at %s)",
                           fault_kind_name(st.kind), st.nth, g_persistent ? " (persistent)" : "",
                           st.injected, st.first_site >= 0 ? site_names[st.first_site] : "-");
}

/* "KIND@N[/SITE[+SITE...]][!]" or "count". */
static int parse(const char *s, unsigned *mask, uint64_t *nth, fault_kind_t *kind, bool *persist)
{
    *mask = FAULT_ALL_SITES;
    *nth = 0;
    *kind = FAULT_NONE;
    *persist = false;
    if (strcmp(s, "count") == 0)
        return 0;
    const char *at = strchr(s, '@');
    if (at == NULL)
        return -EINVAL;
    int ki = -1;
    for (int i = 1; i < FAULT_NKINDS; i++)
        if ((size_t)(at - s) == strlen(kind_names[i]) &&
            memcmp(s, kind_names[i], (size_t)(at - s)) == 0)
            ki = i;
    if (ki < 0)
        return -EINVAL;
    *kind = (fault_kind_t)ki;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(at + 1, &end, 10);
    if (errno || end == at + 1 || v == 0 || at[1] == '-')
        return -EINVAL;
    *nth = v;
    if (*end == '/') {
        *mask = 0;
        const char *p = end + 1;
        for (;;) {
            size_t l = strcspn(p, "+!");
            int si = -1;
            for (int i = 0; i < FAULT_NSITES; i++)
                if (l == strlen(site_names[i]) && memcmp(p, site_names[i], l) == 0)
                    si = i;
            if (si < 0)
                return -EINVAL;
            *mask |= 1u << si;
            p += l;
            if (*p != '+')
                break;
            p++;
        }
        end = (char *)p;
    }
    if (*end == '!') {
        *persist = true;
        end++;
    }
    return *end == '\0' ? 0 : -EINVAL;
}

int fault_from_env(char *err, size_t errlen)
{
    const char *s = getenv("TICKCORE_FAULT");
    if (s == NULL || *s == '\0')
        return 0;
    unsigned mask;
    uint64_t nth;
    fault_kind_t kind;
    bool persist;
    int rc = parse(s, &mask, &nth, &kind, &persist);
    if (rc == 0)
        rc = fault_arm(mask, nth, kind, persist);
    if (rc < 0 && err && errlen)
        snprintf(
            err, errlen,
            "TICKCORE_FAULT=%s: expected \"count\" or KIND@N[/SITE[+SITE...]][!] "
            "(KIND eio|enospc|eintr|short|econnreset, N >= 1, ! = persistent, eio/enospc only)",
            s);
    return rc;
}

static ssize_t fail_with(fault_kind_t k)
{
    errno = -fault_errno(k);
    return -1;
}

ssize_t fault_pwrite(fault_site_t site, int fd, const void *buf, size_t n, off_t off)
{
    fault_kind_t k = fault_check(site);
    if (k == FAULT_SHORT && n > 1)
        n /= 2;
    else if (k != FAULT_NONE && k != FAULT_SHORT)
        return fail_with(k);
    return pwrite(fd, buf, n, off);
}

ssize_t fault_write(fault_site_t site, int fd, const void *buf, size_t n)
{
    fault_kind_t k = fault_check(site);
    if (k == FAULT_SHORT && n > 1)
        n /= 2;
    else if (k != FAULT_NONE && k != FAULT_SHORT)
        return fail_with(k);
    return write(fd, buf, n);
}

ssize_t fault_pread(fault_site_t site, int fd, void *buf, size_t n, off_t off)
{
    fault_kind_t k = fault_check(site);
    if (k == FAULT_SHORT && n > 1)
        n /= 2;
    else if (k != FAULT_NONE && k != FAULT_SHORT)
        return fail_with(k);
    return pread(fd, buf, n, off);
}

int fault_fdatasync(fault_site_t site, int fd)
{
    fault_kind_t k = fault_check(site);
    if (k != FAULT_NONE && k != FAULT_SHORT)
        return (int)fail_with(k);
    return fdatasync(fd);
}

int fault_cqe(fault_site_t site, int res)
{
    fault_kind_t k = fault_check(site);
    if (k == FAULT_NONE)
        return res;
    if (k == FAULT_SHORT)
        return res > 1 ? res / 2 : res;
    return fault_errno(k);
}
