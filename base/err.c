/*
 * err: see err.h. vsnprintf does the truncation and the terminating NUL; the only policy here is
 * that a NULL or empty buffer is a valid "no message wanted".
 */
#include "base/err.h"

#include <stdio.h>

void err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return;
    if (vsnprintf(err, errlen, fmt, ap) < 0)
        err[0] = '\0';
}

void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, errlen, fmt, ap);
    va_end(ap);
}

int err_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}
