/*
 * fdio: see fdio.h.
 */
#include "base/fdio.h"

#include "base/fault.h"

#include <errno.h>
#include <unistd.h>

int fdio_write_all(int fd, const void *buf, size_t n, uint64_t *calls)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = fault_write(FAULT_EXPORT_WRITE, fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EIO;
        if (calls)
            (*calls)++;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}
