/*
 * log: the server's log, one line per event, "2026-11-26T08:00:00.123Z serve: text". Lines are
 * formatted into a stack buffer and written with one write(2) to a file opened O_APPEND (or to
 * standard error), so lines from different threads do not interleave and nothing is allocated.
 * log_reopen() (on SIGHUP, from the serve loop, not the handler) reopens the path, for log
 * rotation. A process-wide module: one log at a time.
 */
#ifndef TICKCORE_BASE_LOG_H
#define TICKCORE_BASE_LOG_H

#include <stdarg.h>

/* path NULL or "" = standard error. 0 or -errno. */
int log_open(const char *path);
int log_reopen(void);
void log_close(void);
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);

#endif
