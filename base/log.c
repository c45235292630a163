/*
 * log: see log.h. The descriptor is an atomic int so that a reopen on the serve thread and a
 * line written by another thread never see a half-changed state; a line written during the swap
 * goes to the old or the new file.
 */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_fd = 2;
static char g_path[256];

int log_open(const char *path)
{
    g_path[0] = '\0';
    if (path && *path) {
        if (strlen(path) >= sizeof g_path)
            return -ENAMETOOLONG;
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        snprintf(g_path, sizeof g_path, "%s", path);
        int old = atomic_exchange(&g_fd, fd);
        if (old > 2)
            close(old);
        return 0;
    }
    int old = atomic_exchange(&g_fd, 2);
    if (old > 2)
        close(old);
    return 0;
}

int log_reopen(void)
{
    if (!g_path[0])
        return 0;
    int fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int old = atomic_exchange(&g_fd, fd);
    if (old > 2)
        close(old);
    return 0;
}

void log_close(void)
{
    int old = atomic_exchange(&g_fd, 2);
    if (old > 2)
        close(old);
    g_path[0] = '\0';
}

void log_vmsg(const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len =
        (size_t)n +
        ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
    line[len++] = '\n';
    ssize_t w = write(atomic_load(&g_fd), line, len);
    (void)w;
}

void log_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(fmt, ap);
    va_end(ap);
}
