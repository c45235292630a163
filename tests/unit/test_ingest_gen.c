/*
 * test_ingest_gen: the generator and the decoder check each other. The generator describes
 * every message it writes from its own state (its on_event hook) and encodes it with its own
 * encoder; the file is then read back through the whole ingest path (io_uring reader, gzip,
 * framing, ITCH decoder), and every field of every event must equal the generator's record.
 * The same replay, after the seal, performs no allocation at all in the process (malloc_count
 * interposes every malloc and wraps every mimalloc call).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

static char g_dir[64];

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-ingest-gen-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

typedef struct record {
    ev_t *ev;
    size_t n, cap;
} record_t;

static void on_event(void *ctx, const ev_t *e)
{
    record_t *r = ctx;
    if (r->n < r->cap)
        r->ev[r->n] = *e;
    r->n++;
}

static uint64_t messages(void)
{
    return RUNNING_ON_VALGRIND ? 100000 : 1000000;
}

static void generate(const char *path, bool gzip, record_t *rec)
{
    gen_cfg_t cfg;
    gen_cfg_default(&cfg);
    cfg.out = path;
    cfg.messages = messages();
    cfg.symbols = 200;
    cfg.sectors = 5;
    cfg.seed = 42;
    cfg.gzip = gzip;
    cfg.truth = false;
    cfg.on_event = rec ? on_event : NULL;
    cfg.ctx = rec;
    gen_stats_t st;
    int rc = gen_run(&cfg, &st);
    if (rc != 0)
        fail_msg("gen_run: %s", st.error);
    assert_int_equal(st.messages, cfg.messages);
}

static void compare(const ev_t *want, const ev_t *got, uint64_t i)
{
    if (want->type != got->type || want->locate != got->locate || want->ts != got->ts ||
        want->ref != got->ref || want->new_ref != got->new_ref || want->match != got->match ||
        want->price != got->price || want->shares != got->shares || want->side != got->side)
        fail_msg("message %llu: type %c/%c locate %u/%u ts %llu/%llu ref %llu/%llu new_ref "
                 "%llu/%llu match %llu/%llu price %lld/%lld shares %llu/%llu side %u/%u",
                 (unsigned long long)i + 1, want->type, got->type, want->locate, got->locate,
                 (unsigned long long)want->ts, (unsigned long long)got->ts,
                 (unsigned long long)want->ref, (unsigned long long)got->ref,
                 (unsigned long long)want->new_ref, (unsigned long long)got->new_ref,
                 (unsigned long long)want->match, (unsigned long long)got->match,
                 (long long)want->price, (long long)got->price, (unsigned long long)want->shares,
                 (unsigned long long)got->shares, want->side, got->side);
}

static void roundtrip(bool gzip, uint32_t buf_size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/day%s.itch", g_dir, gzip ? "-gz" : "");
    record_t rec = {.cap = messages()};
    rec.ev = malloc(rec.cap * sizeof *rec.ev);
    generate(path, gzip, &rec);
    assert_int_equal(rec.n, messages());

    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    cfg.reader.buf_size = buf_size;
    symtab_t sy;
    stream_t s;
    assert_int_equal(symtab_init(&sy, 1000), 0);
    assert_int_equal(stream_init(&s, &cfg, &sy), 0);
    assert_int_equal(stream_open(&s, path), 0);
    assert_int_equal(reader_is_gzip(&s.reader), gzip);
    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    ev_t *ev;
    size_t n;
    uint64_t i = 0;
    int rc;
    while ((rc = stream_next(&s, &ev, &n)) > 0)
        for (size_t k = 0; k < n; k++, i++)
            compare(&rec.ev[i], &ev[k], i);
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    if (rc != 0)
        fail_msg("%s", s.err);
    assert_int_equal(i, rec.n);
    assert_int_equal(allocs, 0); /* process-wide, after the seal */
    assert_int_equal(symtab_count(&sy), 200);
    stream_fini(&s);
    symtab_fini(&sy);
    free(rec.ev);
}

static void test_gen_decode_round_trip_plain(void **state)
{
    (void)state;
    roundtrip(false, 1u << 20);
}

static void test_gen_decode_round_trip_small_buffers(void **state)
{
    (void)state;
    roundtrip(false, 4099);
}

static void test_gen_decode_round_trip_gzip(void **state)
{
    (void)state;
    roundtrip(true, 65536);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_gen_decode_round_trip_plain, reset_counters),
        cmocka_unit_test_setup(test_gen_decode_round_trip_small_buffers, reset_counters),
        cmocka_unit_test_setup(test_gen_decode_round_trip_gzip, reset_counters),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
