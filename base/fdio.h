/*
 * fdio: whole writes to a file descriptor. write(2) may write less than asked (a signal, a full
 * pipe or disk): fdio_write_all loops until every byte is written, retries EINTR, and turns a
 * write that returns 0 into -EIO, so callers (the generator, the CSV writers, the exports) never
 * write a partial record silently. No allocation; any thread, on its own descriptor.
 */
#ifndef TICKCORE_BASE_FDIO_H
#define TICKCORE_BASE_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Write buf[0..n) to fd. 0, or -errno (-EIO if the kernel wrote nothing and said no error).
 * *calls (if not NULL) is increased by the number of write(2) calls that wrote something. */
int fdio_write_all(int fd, const void *buf, size_t n, uint64_t *calls);

#endif
