/*
 * err: the one formatter for the caller-supplied error buffer of the start-up and control paths
 * (`char *err, size_t errlen` arguments: a message with its context, file, line, byte offset or
 * key). err == NULL or errlen == 0 means the caller wants no message; otherwise the message is
 * truncated to errlen - 1 bytes and always NUL-terminated. No allocation, any thread (each call
 * writes only the caller's buffer).
 */
#ifndef TICKCORE_BASE_ERR_H
#define TICKCORE_BASE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* Write the message into err (if any). */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* err_set, then return rc: `return err_fail(err, errlen, -EINVAL, "...", ...);`. */
int err_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
