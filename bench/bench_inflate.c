/*
 * bench_inflate: the peer for gzip replay. A bare ISA-L inflate loop on one thread: read() the
 * compressed file in 256 KiB chunks, isal_inflate into a 1 MiB buffer that is thrown away, member
 * after member (isal_inflate_reset at each member's end), nothing else. Its compressed MB/s is
 * the speed a single-threaded reader could at best reach; `tickcore replay --decode-only` of the
 * same file is compared with it in the same rounds by bench/gzip_ab.sh. A fair peer: what a user
 * would write, with the CRC checked as replay does; its output buffer staying in L2 is no edge
 * (rotating it over 8 MiB of buffers changed its CPU time by less than the 2-3% between runs).
 *   bench_inflate FILE.gz [runs]     (default: $TICKCORE_BENCH_GZ, 5 runs; median printed)
 * It allocates with malloc: it is a measurement, not part of tickcore.
 */
#include "base/clock.h"
#include "bench/bench_util.h"

#include <isa-l.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN_SIZE  (256u << 10)
#define OUT_SIZE (1u << 20)

/* One pass: compressed bytes read, inflated bytes out, members; -1 on a bad file. */
static int inflate_file(const char *path, uint64_t *in_bytes, uint64_t *out_bytes,
                        uint64_t *members)
{
    static uint8_t in[IN_SIZE], out[OUT_SIZE];
    static struct inflate_state st;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    *in_bytes = *out_bytes = *members = 0;
    ssize_t n;
    while ((n = read(fd, in, sizeof in)) > 0) {
        *in_bytes += (uint64_t)n;
        st.next_in = in;
        st.avail_in = (uint32_t)n;
        while (st.avail_in > 0) {
            st.next_out = out;
            st.avail_out = sizeof out;
            if (isal_inflate(&st) < 0) {
                close(fd);
                return -1;
            }
            *out_bytes += sizeof out - st.avail_out;
            if (st.block_state == ISAL_BLOCK_FINISH) {
                ++*members;
                isal_inflate_reset(&st);
                st.crc_flag = ISAL_GZIP;
            }
        }
    }
    /* the last member's tail may still be inside ISA-L */
    while (st.block_state != ISAL_BLOCK_FINISH && st.block_state != ISAL_BLOCK_NEW_HDR) {
        st.next_out = out;
        st.avail_out = sizeof out;
        if (isal_inflate(&st) < 0 || st.avail_out == sizeof out)
            break;
        *out_bytes += sizeof out - st.avail_out;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("TICKCORE_BENCH_GZ");
    int runs = argc > 2 ? atoi(argv[2]) : bench_runs(5);
    if (!path) {
        printf("bench_inflate: no file (pass FILE.gz or set TICKCORE_BENCH_GZ); skipped\n");
        return 0;
    }
    if (runs < 1 || runs > 100)
        runs = 5;
    double secs[100];
    uint64_t in = 0, out = 0, members = 0;
    if (inflate_file(path, &in, &out, &members) < 0) { /* warm-up: the page cache */
        fprintf(stderr, "bench_inflate: %s: cannot inflate\n", path);
        return 1;
    }
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s();
        inflate_file(path, &in, &out, &members);
        secs[i] = clock_mono_s() - t0;
    }
    double med = bench_median(secs, (size_t)runs);
    printf("bare ISA-L inflate (1 thread): %s: %.1f MB compressed -> %.1f MB, %llu members, "
           "median of %d: %.3f s, %.1f MB/s compressed\n",
           path, in / 1e6, out / 1e6, (unsigned long long)members, runs, med, in / 1e6 / med);
    return 0;
}
