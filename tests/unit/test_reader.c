/*
 * test_reader: the io_uring reader against the file itself. A random file is read back with
 * buffer sizes from 64 bytes to 1 MiB, with and without carry-over, through io_uring and the
 * pread fallback; gzip single and multi-member files (made by the system's gzip, an independent
 * encoder) inflate to the original bytes; corrupt and truncated gzip give their errors after
 * delivering the valid prefix; reading allocates nothing after init.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "ingest/reader.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];
static uint8_t *g_data;
static size_t g_size;

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-reader-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    g_size = (3u << 20) + 12345;
    g_data = malloc(g_size);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < g_size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* compressible but not trivial: small alphabet runs */
        g_data[i] = (uint8_t)((x >> 29) % 23 + ((i / 4096) % 3) * 50);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/plain.bin", g_dir);
    write_file(path, g_data, g_size);
    snprintf(path, sizeof path, "%s/empty.bin", g_dir);
    write_file(path, g_data, 0);
    char cmd[512];
    /* one member; two members (the halves compressed separately, concatenated) */
    snprintf(cmd, sizeof cmd,
             "cd %s && gzip -c plain.bin > one.gz && gzip -1 -c plain.bin > one1.gz"
             " && head -c 1000000 plain.bin | gzip -c > two.gz"
             " && tail -c +1000001 plain.bin | gzip -1 -c >> two.gz",
             g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    free(g_data);
    return system(cmd) == 0 ? 0 : -1;
}

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

/* Read a whole file; the consumer carries over `carry` bytes of each chunk (fewer if the chunk is
 * shorter) as if they were a record split at the boundary. Returns the reassembled length, or a
 * negative error from reader_next. */
static size_t g_delivered; /* bytes read_all delivered before an error */

static long read_all(reader_t *r, const char *path, uint8_t *out, size_t cap, size_t carry)
{
    g_delivered = 0;
    int rc = reader_open(r, path);
    if (rc < 0)
        return rc;
    size_t n = 0, tail = 0;
    const uint8_t *tailp = NULL;
    int held = -1;
    reader_chunk_t c;
    for (;;) {
        rc = reader_next(r, &c, tailp, tail);
        if (held >= 0)
            reader_release(r, (uint32_t)held);
        held = -1;
        if (rc <= 0)
            break;
        /* the chunk starts with the carried tail, at its stream offset */
        assert_int_equal(c.offset, n);
        size_t keep = c.len > carry ? carry : c.len;
        size_t take = c.len - keep;
        assert_true(n + take <= cap);
        memcpy(out + n, c.data, take);
        n += take;
        tailp = c.data + take;
        tail = keep;
        held = (int)c.buf;
    }
    g_delivered = n + tail;
    if (tail)
        memcpy(out + n, tailp, tail);
    if (rc < 0)
        return rc;
    /* end of stream: the tail is the caller's */
    memcpy(out + n, tailp, tail);
    return (long)(n + tail);
}

static void check_plain(uint32_t buf_size, uint32_t nbufs, size_t carry, bool pread)
{
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = buf_size;
    cfg.nbufs = nbufs;
    cfg.headroom = 256;
    cfg.force_pread = pread;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    uint8_t *out = malloc(g_size + 64);
    char path[128];
    snprintf(path, sizeof path, "%s/plain.bin", g_dir);
    long n = read_all(&r, path, out, g_size + 64, carry);
    assert_int_equal(n, (long)g_size);
    assert_memory_equal(out, g_data, g_size);
    assert_false(reader_is_gzip(&r));
    reader_fini(&r);
    free(out);
}

static void test_reader_plain_every_buffer_size(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {64, 100, 4096, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        check_plain(sizes[i], 4, 0, false);
        check_plain(sizes[i], 3, 37, false);
        check_plain(sizes[i], 8, sizes[i] < 200 ? sizes[i] / 2 : 200, false);
    }
}

static void test_reader_pread_fallback_identical(void **state)
{
    (void)state;
    check_plain(4096, 4, 13, true);
    check_plain(1u << 20, 8, 0, true);
}

static void check_gz(const char *name, uint32_t buf_size, size_t carry)
{
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = buf_size;
    cfg.gz_buf_size = buf_size < 4096 ? 4096 : buf_size;
    cfg.headroom = 256;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    uint8_t *out = malloc(g_size + 64);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    long n = read_all(&r, path, out, g_size + 64, carry);
    assert_true(reader_is_gzip(&r));
    if (n != (long)g_size)
        fprintf(stderr, "%s: %s\n", name, r.err);
    assert_int_equal(n, (long)g_size);
    assert_memory_equal(out, g_data, g_size);
    reader_fini(&r);
    free(out);
}

static void test_reader_gzip_single_and_multi_member(void **state)
{
    (void)state;
    check_gz("one.gz", 1u << 20, 0);
    check_gz("one.gz", 4096, 50);
    check_gz("two.gz", 65536, 0);
    check_gz("two.gz", 777, 100);
    check_gz("one1.gz", 65536, 0); /* gzip -1: one member, sequential */
}

static void test_reader_gzip_corrupt_and_truncated(void **state)
{
    (void)state;
    char src[128], path[128];
    snprintf(src, sizeof src, "%s/one.gz", g_dir);
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    static uint8_t gz[4u << 20];
    size_t gzn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(gzn > 1000);

    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = 65536;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    uint8_t *out = malloc(2 * g_size);

    /* truncated: the first half of the compressed file */
    snprintf(path, sizeof path, "%s/trunc.gz", g_dir);
    write_file(path, gz, gzn / 2);
    long n = read_all(&r, path, out, g_size, 0);
    assert_int_equal(n, -EPROTO);
    assert_non_null(strstr(r.err, "truncated gzip stream"));

    /* corrupt: bytes in the middle overwritten; an error, never a crash or a hang */
    memset(gz + gzn / 2, 0xff, 64);
    snprintf(path, sizeof path, "%s/corrupt.gz", g_dir);
    write_file(path, gz, gzn);
    n = read_all(&r, path, out, 2 * g_size, 0);
    assert_true(n < 0);
    assert_non_null(strstr(r.err, "gzip"));

    /* trailing garbage after a valid member */
    f = fopen(src, "rb");
    gzn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    memcpy(gz + gzn, "garbage!", 8);
    snprintf(path, sizeof path, "%s/trailing.gz", g_dir);
    write_file(path, gz, gzn + 8);
    n = read_all(&r, path, out, g_size, 0);
    assert_true(n < 0);
    assert_non_null(strstr(r.err, "not a gzip member header"));
    reader_fini(&r);
    free(out);
}

/* ---- members with a size field ('TK', as tickcore gen writes) ------------------------------ */

/* Member k of the split below holds g_data[cut[k], cut[k+1]): 1-byte and empty members, members
 * that cut anything anywhere, small ones that a claim groups, big ones of several buffers. */
static const size_t g_cut[] = {0,       1,       1,       2,       70001,   70002,  700000,
                               1300000, 1300001, 1900000, 2500000, 2600000, 3000000};
#define NCUT (sizeof g_cut / sizeof *g_cut)
static size_t g_mstart[NCUT + 1]; /* compressed offset of each member, then the file size */

/* One gzip member of g_data[a, b) made by the system's gzip (no name: FLG 0), rewritten with an
 * FEXTRA 'TK' subfield holding its new length - 1 + lie (RFC 1952 layout: 10 fixed bytes, XLEN,
 * SI1 SI2 LEN data). Appended to f; returns its length. */
static size_t put_member(FILE *f, size_t a, size_t b, long lie)
{
    char src[128], cmd[300];
    snprintf(src, sizeof src, "%s/piece.bin", g_dir);
    write_file(src, g_data + a, b - a);
    snprintf(cmd, sizeof cmd, "gzip -n -1 -c < %s > %s/piece.gz", src, g_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(src, sizeof src, "%s/piece.gz", g_dir);
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    static uint8_t m[4u << 20];
    size_t n = fread(m, 1, sizeof m, in);
    fclose(in);
    assert_true(n > 18 && m[3] == 0);
    uint32_t v = (uint32_t)((long)(n + 10 - 1) + lie);
    uint8_t hdr[20];
    memcpy(hdr, m, 10);
    hdr[3] = 4; /* FEXTRA */
    uint8_t x[10] = {8,
                     0,
                     'T',
                     'K',
                     4,
                     0,
                     (uint8_t)v,
                     (uint8_t)(v >> 8),
                     (uint8_t)(v >> 16),
                     (uint8_t)(v >> 24)};
    memcpy(hdr + 10, x, 10);
    fwrite(hdr, 1, 20, f);
    fwrite(m + 10, 1, n - 10, f);
    return n + 10;
}

/* The split file; lie_member >= 0: that member's size field is off by lie bytes. */
static void make_sized(const char *name, int lie_member, long lie)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t off = 0;
    for (size_t k = 0; k + 1 < NCUT; k++) {
        g_mstart[k] = off;
        off += put_member(f, g_cut[k], g_cut[k + 1], (int)k == lie_member ? lie : 0);
    }
    g_mstart[NCUT - 1] = off;
    size_t k = NCUT - 1; /* the rest of the data */
    off += put_member(f, g_cut[k], g_size, 0);
    g_mstart[NCUT] = off;
    fclose(f);
}

static void check_sized(const char *name, uint32_t threads, uint32_t buf_size, uint32_t nbufs,
                        size_t carry, uint64_t mismatches)
{
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = buf_size;
    cfg.nbufs = nbufs;
    cfg.headroom = 256;
    cfg.gz_buf_size = 4096 + buf_size % 4096;
    cfg.inflate_threads = threads;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    assert_int_equal(reader_inflate_threads(&r), threads);
    uint8_t *out = malloc(g_size + 64);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    long n = read_all(&r, path, out, g_size + 64, carry);
    assert_true(reader_is_gzip(&r));
    assert_int_equal(n, (long)g_size);
    assert_memory_equal(out, g_data, g_size);
    assert_int_equal(r.gz_bsize_mismatches, mismatches);
    if (!mismatches)
        assert_int_equal(r.gz_members, NCUT);
    reader_fini(&r);
    free(out);
}

static void test_reader_sized_members_in_order(void **state)
{
    (void)state;
    make_sized("sized.gz", -1, 0);
    static const uint32_t threads[] = {1, 2, 3};
    for (size_t t = 0; t < 3; t++) {
        check_sized("sized.gz", threads[t], 65536, 8, 0, 0);
        check_sized("sized.gz", threads[t], 777, 4, 100, 0);
        check_sized("sized.gz", threads[t], 1u << 20, 3, 37, 0);
        check_sized("sized.gz", threads[t], 4096, 2, 13, 0); /* one buffer each side: serial */
    }
}

/* A size field that lies (too long, too short): the output is still gzip -dc's, counted. */
static void test_reader_sized_member_that_lies(void **state)
{
    (void)state;
    static const long lies[] = {100, -10, 1}; /* sizes that stay inside the file */
    static const int who[] = {4, 7, 11};
    for (int i = 0; i < 3; i++) {
        make_sized("lie.gz", who[i], lies[i]);
        check_sized("lie.gz", 2, 65536, 8, 0, 1);
        check_sized("lie.gz", 3, 4096, 6, 21, 1);
    }
}

static void read_file(const char *name, uint8_t *buf, size_t cap, size_t *n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *n = fread(buf, 1, cap, f);
    fclose(f);
}

/* Corrupt member in the middle, truncated last member, trailing garbage: the error names the
 * compressed byte and the member; every byte before the bad member is delivered first. */
static void test_reader_sized_errors(void **state)
{
    (void)state;
    make_sized("sized.gz", -1, 0);
    static uint8_t gz[8u << 20];
    size_t gzn;
    read_file("sized.gz", gz, sizeof gz, &gzn);
    assert_int_equal(gzn, g_mstart[NCUT]);
    uint8_t *out = malloc(2 * g_size);
    char path[128], want[64];
    for (uint32_t threads = 1; threads <= 2; threads++) {
        reader_cfg_t cfg;
        reader_cfg_default(&cfg);
        cfg.buf_size = 65536;
        cfg.inflate_threads = threads;
        reader_t r;
        assert_int_equal(reader_init(&r, &cfg), 0);

        /* member 10 (index 9: g_data[1900000, 2500000)) gets a bad block type mid-way */
        uint8_t *bad = malloc(gzn);
        memcpy(bad, gz, gzn);
        size_t at = (g_mstart[9] + g_mstart[10]) / 2;
        memset(bad + at, 0xff, 4096);
        snprintf(path, sizeof path, "%s/corrupt-mid.gz", g_dir);
        write_file(path, bad, gzn);
        long n = read_all(&r, path, out, 2 * g_size, 0);
        assert_int_equal(n, -EPROTO);
        snprintf(want, sizeof want, "(member 10)");
        assert_non_null(strstr(r.err, want));
        unsigned long long off = strtoull(strstr(r.err, "compressed byte ") + 16, NULL, 10);
        assert_true(off >= g_mstart[9] && off < g_mstart[10]);
        assert_true(g_delivered >= g_cut[9]);
        assert_memory_equal(out, g_data, g_cut[9]);

        /* truncated inside the last member */
        snprintf(path, sizeof path, "%s/trunc-last.gz", g_dir);
        write_file(path, gz, g_mstart[NCUT - 1] + 1000);
        n = read_all(&r, path, out, 2 * g_size, 0);
        assert_int_equal(n, -EPROTO);
        snprintf(want, sizeof want, "inside member %zu", NCUT);
        assert_non_null(strstr(r.err, "truncated gzip stream"));
        assert_non_null(strstr(r.err, want));
        assert_true(g_delivered >= g_cut[NCUT - 1]);
        assert_memory_equal(out, g_data, g_cut[NCUT - 1]);

        /* trailing garbage after the last member */
        memcpy(bad, gz, gzn);
        bad = realloc(bad, gzn + 9);
        memcpy(bad + gzn, "garbage!!", 9);
        snprintf(path, sizeof path, "%s/trailing-sized.gz", g_dir);
        write_file(path, bad, gzn + 9);
        n = read_all(&r, path, out, 2 * g_size, 0);
        assert_int_equal(n, -EPROTO);
        snprintf(want, sizeof want, "compressed byte %zu after gzip member %zu", gzn, NCUT);
        assert_non_null(strstr(r.err, want));
        assert_int_equal(g_delivered, g_size);
        assert_memory_equal(out, g_data, g_size);
        free(bad);
        reader_fini(&r);
    }
    free(out);
}

/* Stopping mid-file (replay's SIGTERM path: close with the inflate threads busy), then reading
 * another file with the same reader, then fini mid-file: no hang, no leak, right bytes. */
static void test_reader_stop_mid_file(void **state)
{
    (void)state;
    make_sized("sized.gz", -1, 0);
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = 4096;
    cfg.inflate_threads = 2;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/sized.gz", g_dir);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(reader_open(&r, path), 0);
        reader_chunk_t c;
        assert_int_equal(reader_next(&r, &c, NULL, 0), 1);
        assert_memory_equal(c.data, g_data, c.len);
        reader_release(&r, c.buf);
        reader_close(&r);
    }
    uint8_t *out = malloc(g_size + 64);
    assert_int_equal(read_all(&r, path, out, g_size + 64, 5), (long)g_size);
    assert_memory_equal(out, g_data, g_size);
    assert_int_equal(reader_open(&r, path), 0);
    reader_chunk_t c;
    assert_int_equal(reader_next(&r, &c, NULL, 0), 1);
    reader_fini(&r); /* with the chunk held and the threads mid-file */
    free(out);
}

static void test_reader_empty_and_missing_files(void **state)
{
    (void)state;
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/empty.bin", g_dir);
    assert_int_equal(reader_open(&r, path), 0);
    reader_chunk_t c;
    assert_int_equal(reader_next(&r, &c, NULL, 0), 0);
    snprintf(path, sizeof path, "%s/no-such-file", g_dir);
    assert_int_equal(reader_open(&r, path), -ENOENT);
    assert_non_null(strstr(r.err, "no-such-file: cannot open"));
    assert_int_equal(reader_open(&r, g_dir), -EISDIR);
    reader_fini(&r);
}

static void test_reader_carry_longer_than_headroom_refused(void **state)
{
    (void)state;
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.headroom = 64;
    cfg.buf_size = 4096;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/plain.bin", g_dir);
    assert_int_equal(reader_open(&r, path), 0);
    reader_chunk_t c;
    assert_int_equal(reader_next(&r, &c, NULL, 0), 1);
    assert_int_equal(reader_next(&r, &c, c.data, 65), -E2BIG);
    assert_non_null(strstr(r.err, "carry-over headroom"));
    reader_fini(&r);
}

static void test_reader_reads_allocate_nothing(void **state)
{
    (void)state;
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.buf_size = 65536;
    reader_t r;
    assert_int_equal(reader_init(&r, &cfg), 0);
    char path[128];
    make_sized("sized.gz", -1, 0);
    static const char *names[] = {"plain.bin", "one.gz", "two.gz", "sized.gz"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[k]);
        assert_int_equal(reader_open(&r, path), 0);
        malloc_count_t before;
        malloc_count_get(&before);
        mem_seal();
        uint64_t sum = 0, bytes = 0;
        reader_chunk_t c;
        int held = -1, rc;
        while ((rc = reader_next(&r, &c, NULL, 0)) > 0) {
            if (held >= 0)
                reader_release(&r, (uint32_t)held);
            held = (int)c.buf;
            sum += c.data[0];
            bytes += c.len;
        }
        if (held >= 0)
            reader_release(&r, (uint32_t)held);
        assert_int_equal(rc, 0);
        assert_int_equal(bytes, g_size);
        assert_int_equal(malloc_count_allocs_since(&before), 0);
        mem_snapshot_t *snap = malloc(sizeof *snap);
        mem_snapshot(snap);
        assert_int_equal(snap->total.churn_allocs, 0);
        free(snap);
        mem_unseal();
        (void)sum;
    }
    reader_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reader_plain_every_buffer_size, reset_counters),
        cmocka_unit_test_setup(test_reader_pread_fallback_identical, reset_counters),
        cmocka_unit_test_setup(test_reader_gzip_single_and_multi_member, reset_counters),
        cmocka_unit_test_setup(test_reader_gzip_corrupt_and_truncated, reset_counters),
        cmocka_unit_test_setup(test_reader_sized_members_in_order, reset_counters),
        cmocka_unit_test_setup(test_reader_sized_member_that_lies, reset_counters),
        cmocka_unit_test_setup(test_reader_sized_errors, reset_counters),
        cmocka_unit_test_setup(test_reader_stop_mid_file, reset_counters),
        cmocka_unit_test_setup(test_reader_empty_and_missing_files, reset_counters),
        cmocka_unit_test_setup(test_reader_carry_longer_than_headroom_refused, reset_counters),
        cmocka_unit_test_setup(test_reader_reads_allocate_nothing, reset_counters),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
