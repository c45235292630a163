/*
 * test_stream: files through reader + decoder as replay sees them. Oracles: the published
 * message counts of the real AAPL sample (tests/data/README.md), the same file decoded in one
 * piece by the decoder alone (to show the buffering changes nothing), gzip made by the system's
 * gzip, and hand-made damage whose offsets are known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "ingest/itch.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"
#include "tests/support/testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[64];
static uint8_t *g_aapl;
static size_t g_aapl_len;
static char g_aapl_path[256];

static int setup_all(void **state)
{
    (void)state;
    testdata_path(g_aapl_path, sizeof g_aapl_path, "nasdaq-20200130-aapl-10k.itch");
    FILE *f = fopen(g_aapl_path, "rb");
    if (f) {
        g_aapl = malloc(1 << 20);
        g_aapl_len = fread(g_aapl, 1, 1 << 20, f);
        fclose(f);
    }
    strcpy(g_dir, "/tmp/tickcore-test-stream-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    free(g_aapl);
    return system(cmd) == 0 ? 0 : -1;
}

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

typedef struct run {
    uint64_t messages, by_type[256], checksum;
    int rc; /* stream_next's last return */
    char err[512];
    uint64_t skipped_bytes, bad_frames;
    uint32_t symbols;
} run_t;

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3ull;
}

static uint64_t ev_hash(uint64_t h, const ev_t *e)
{
    h = mix(h, e->type);
    h = mix(h, e->locate);
    h = mix(h, e->ts);
    h = mix(h, e->ref);
    h = mix(h, e->new_ref);
    h = mix(h, e->match);
    h = mix(h, (uint64_t)e->price);
    h = mix(h, e->shares);
    return mix(h, e->side);
}

static void run_file(const char *path, const stream_cfg_t *cfg, run_t *out)
{
    memset(out, 0, sizeof *out);
    symtab_t sy;
    stream_t s;
    assert_int_equal(symtab_init(&sy, 1000), 0);
    assert_int_equal(stream_init(&s, cfg, &sy), 0);
    assert_int_equal(stream_open(&s, path), 0);
    ev_t *ev;
    size_t n;
    uint64_t h = 0xcbf29ce484222325ull;
    while ((out->rc = stream_next(&s, &ev, &n)) > 0) {
        assert_true(n >= 1 && n <= s.cfg.batch_events);
        for (size_t i = 0; i < n; i++) {
            h = ev_hash(h, &ev[i]);
            out->by_type[ev[i].type]++;
        }
        out->messages += n;
    }
    out->checksum = h;
    assert_int_equal(out->messages, s.messages);
    strcpy(out->err, s.err);
    out->skipped_bytes = s.skipped_bytes;
    out->bad_frames = s.bad_frames;
    out->symbols = symtab_count(&sy);
    stream_fini(&s);
    symtab_fini(&sy);
}

/* The decoder alone, on the whole file in memory: the reference for every buffering. */
static uint64_t whole_file_checksum(const uint8_t *buf, size_t len, uint64_t *msgs)
{
    static ev_t out[16384];
    itch_result_t r;
    itch_decode_block(buf, len, out, 16384, &r);
    assert_int_equal(r.status, ITCH_OK);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < r.n; i++)
        h = ev_hash(h, &out[i]);
    *msgs = r.n;
    return h;
}

#define NEED_DATA()                                                                                \
    do {                                                                                           \
        if (!g_aapl)                                                                               \
            skip();                                                                                \
    } while (0)

static void test_stream_aapl_published_counts_every_buffer_size(void **state)
{
    (void)state;
    NEED_DATA();
    uint64_t want_msgs;
    uint64_t want = whole_file_checksum(g_aapl, g_aapl_len, &want_msgs);
    assert_int_equal(want_msgs, 10000);
    static const uint32_t sizes[] = {64, 65, 100, 127, 1000, 4096, 65536, 1u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        stream_cfg_t cfg;
        stream_cfg_default(&cfg);
        cfg.reader.buf_size = sizes[k];
        cfg.batch_events = k % 2 ? 7 : 4096;
        run_t r;
        run_file(g_aapl_path, &cfg, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.messages, 10000);
        assert_int_equal(r.by_type['A'], 4758);
        assert_int_equal(r.by_type['D'], 4083);
        assert_int_equal(r.by_type['E'], 849);
        assert_int_equal(r.by_type['P'], 240);
        assert_int_equal(r.by_type['L'], 52);
        assert_int_equal(r.by_type['U'], 7);
        assert_int_equal(r.by_type['X'], 6);
        assert_int_equal(r.by_type['F'], 2);
        assert_int_equal(r.by_type['R'], 1);
        assert_int_equal(r.by_type['H'], 1);
        assert_int_equal(r.by_type['Y'], 1);
        assert_int_equal(r.checksum, want);
        assert_int_equal(r.symbols, 1);
    }
}

static void test_stream_aapl_gzip_same_events(void **state)
{
    (void)state;
    NEED_DATA();
    uint64_t want_msgs;
    uint64_t want = whole_file_checksum(g_aapl, g_aapl_len, &want_msgs);
    char cmd[2048], path[128];
    /* one member, and a file cut in three members by the system's gzip */
    snprintf(cmd, sizeof cmd,
             "gzip -c %s > %s/a.gz && head -c 100000 %s | gzip -c > %s/b.gz && "
             "head -c 200000 %s | tail -c +100001 | gzip -9 -c >> %s/b.gz && "
             "tail -c +200001 %s | gzip -1 -c >> %s/b.gz",
             g_aapl_path, g_dir, g_aapl_path, g_dir, g_aapl_path, g_dir, g_aapl_path, g_dir);
    assert_int_equal(system(cmd), 0);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, k ? "b.gz" : "a.gz");
        for (uint32_t bs = 100; bs <= (1u << 20); bs *= 37) {
            stream_cfg_t cfg;
            stream_cfg_default(&cfg);
            cfg.reader.buf_size = bs;
            run_t r;
            run_file(path, &cfg, &r);
            assert_int_equal(r.rc, 0);
            assert_int_equal(r.messages, 10000);
            assert_int_equal(r.checksum, want);
        }
    }
}

/* Offset of message k (0-based) in the AAPL file. */
static size_t frame_offset(size_t k)
{
    size_t off = 0;
    for (size_t i = 0; i < k; i++)
        off += 2u + ((size_t)g_aapl[off] << 8 | g_aapl[off + 1]);
    return off;
}

static void test_stream_truncated_tail_keeps_prefix(void **state)
{
    (void)state;
    NEED_DATA();
    size_t cut = frame_offset(9000) + 5; /* 5 bytes into message 9001 */
    char path[128];
    snprintf(path, sizeof path, "%s/trunc.itch", g_dir);
    write_file(path, g_aapl, cut);
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    cfg.reader.buf_size = 4096;
    run_t r;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.messages, 9000);
    char want[128];
    snprintf(want, sizeof want, "byte %zu (message 9001): truncated final message",
             frame_offset(9000));
    assert_non_null(strstr(r.err, want));
    assert_non_null(strstr(r.err, "the file ends 5 bytes into a frame of"));
}

static void test_stream_bad_length_stops_then_skip_bad_resyncs(void **state)
{
    (void)state;
    NEED_DATA();
    uint8_t *bad = malloc(g_aapl_len);
    memcpy(bad, g_aapl, g_aapl_len);
    size_t off = frame_offset(5000);
    uint8_t type = bad[off + 2];
    bad[off + 1] ^= 0x10; /* the length prefix of message 5001 */
    char path[128];
    snprintf(path, sizeof path, "%s/badlen.itch", g_dir);
    write_file(path, bad, g_aapl_len);
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    cfg.reader.buf_size = 8192;
    run_t r;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.messages, 5000);
    char want[160];
    snprintf(want, sizeof want, "byte %zu (message 5001): message type '%c' has length prefix", off,
             type);
    assert_non_null(strstr(r.err, want));

    /* --skip-bad: only the damaged message is lost */
    cfg.skip_bad = true;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.messages, 9999);
    assert_int_equal(r.bad_frames, 1);
    assert_int_equal(r.skipped_bytes, 2u + ((size_t)g_aapl[off] << 8 | g_aapl[off + 1]));
    assert_non_null(strstr(r.err, want));

    /* an unknown type byte */
    memcpy(bad, g_aapl, g_aapl_len);
    off = frame_offset(777);
    bad[off + 2] = 'z';
    write_file(path, bad, g_aapl_len);
    cfg.skip_bad = false;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.messages, 777);
    snprintf(want, sizeof want, "byte %zu (message 778): unknown message type 0x7a", off);
    assert_non_null(strstr(r.err, want));
    free(bad);
}

static void test_stream_zero_length_file_and_ritch_sample(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/empty", g_dir);
    write_file(path, "", 0);
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    run_t r;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "empty file (0 bytes)"));

    /* every length prefix of this file is 0: refused at byte 0, nothing decoded, no loop */
    if (!testdata_path(path, sizeof path, "ritch-obfuscated-zero-length.itch"))
        skip();
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.messages, 0);
    assert_non_null(strstr(r.err, "byte 0 (message 1): zero-length message"));
    cfg.skip_bad = true; /* skipping cannot find a frame either: it ends, having skipped it all */
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.messages, 0);
    assert_int_equal(r.skipped_bytes, 465048);
}

static void test_stream_csv_by_content(void **state)
{
    (void)state;
    static const char csv[] = "timestamp,symbol,price,size,side\n"
                              "2020-01-30T14:30:00Z,AAPL,320.5,100,B\n"
                              "2020-01-30T14:30:01.5Z,MSFT,170.25,200,S\n"
                              "1580394602000000000,AAPL,320.75,50,\n";
    char path[128];
    snprintf(path, sizeof path, "%s/trades.txt", g_dir); /* the name says nothing */
    write_file(path, csv, sizeof csv - 1);
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    run_t r;
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.messages, 3);
    assert_int_equal(r.by_type[EV_CSV_TRADE], 3);
    assert_int_equal(r.symbols, 2);

    /* the last line without its newline, and through gzip */
    char cmd[300];
    write_file(path, csv, sizeof csv - 2);
    snprintf(cmd, sizeof cmd, "gzip -c %s > %s/trades.gz", path, g_dir);
    assert_int_equal(system(cmd), 0);
    run_file(path, &cfg, &r);
    assert_int_equal(r.messages, 3);
    snprintf(path, sizeof path, "%s/trades.gz", g_dir);
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.messages, 3);

    /* garbage text: the header error, naming the file */
    snprintf(path, sizeof path, "%s/garbage.csv", g_dir);
    write_file(path, "hello,world\n1,2\n", 16);
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "garbage.csv: line 1: expected header"));

    /* a header and nothing else: a clean, empty replay */
    snprintf(path, sizeof path, "%s/header-only.csv", g_dir);
    write_file(path, "timestamp,symbol,bid,bid_size,ask,ask_size\n", 43);
    run_file(path, &cfg, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.messages, 0);
}

static void test_stream_allocates_nothing(void **state)
{
    (void)state;
    NEED_DATA();
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    cfg.reader.buf_size = 4096;
    symtab_t sy;
    stream_t s;
    assert_int_equal(symtab_init(&sy, 1000), 0);
    assert_int_equal(stream_init(&s, &cfg, &sy), 0);
    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    for (int pass = 0; pass < 3; pass++) {
        assert_int_equal(stream_open(&s, g_aapl_path), 0);
        ev_t *ev;
        size_t n;
        uint64_t total = 0;
        while (stream_next(&s, &ev, &n) > 0)
            total += n;
        assert_int_equal(total, 10000);
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_unseal();
    stream_fini(&s);
    symtab_fini(&sy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_stream_aapl_published_counts_every_buffer_size, reset_counters),
        cmocka_unit_test_setup(test_stream_aapl_gzip_same_events, reset_counters),
        cmocka_unit_test_setup(test_stream_truncated_tail_keeps_prefix, reset_counters),
        cmocka_unit_test_setup(test_stream_bad_length_stops_then_skip_bad_resyncs, reset_counters),
        cmocka_unit_test_setup(test_stream_zero_length_file_and_ritch_sample, reset_counters),
        cmocka_unit_test_setup(test_stream_csv_by_content, reset_counters),
        cmocka_unit_test_setup(test_stream_allocates_nothing, reset_counters),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
