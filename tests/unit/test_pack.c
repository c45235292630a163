/*
 * test_pack: net/pack, the framing of many ITCH messages in one NATS message. The oracle is the
 * list of messages the test put in (random lengths, indices and bytes from a fixed seed): they
 * come out exactly, in order, with their file and shard-local indices; every single-byte change
 * anywhere in a packet, and every truncation, is refused with a message naming a byte offset;
 * packing allocates nothing.
 */
#include "net/pack.h"

#include "mem/mem.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define NMSG 400

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    return xorshift64_next(&rng);
}

typedef struct item {
    uint64_t index;
    uint16_t len;
    uint8_t b[PACK_MAX_MSG];
} item_t;

static item_t items[NMSG];
static uint8_t buf[1 << 16];

/* Fill items and pack as many as fit in cap bytes; returns how many. */
static int build(pack_builder_t *b, size_t cap, uint64_t first_local)
{
    uint64_t index = 1000;
    pack_begin(b, buf, cap, first_local);
    for (int i = 0; i < NMSG; i++) {
        index += 1 + next_rand() % 5;
        items[i].index = index;
        items[i].len = (uint16_t)(1 + next_rand() % 50);
        for (int k = 0; k < items[i].len; k++)
            items[i].b[k] = (uint8_t)next_rand();
        if (!pack_add(b, index, items[i].b, items[i].len)) {
            pack_finish(b);
            return i;
        }
    }
    pack_finish(b);
    return NMSG;
}

static void test_pack_roundtrip(void **state)
{
    (void)state;
    pack_builder_t b;
    int n = build(&b, sizeof buf, 77);
    assert_int_equal(n, NMSG);
    pack_view_t v;
    char err[200];
    assert_int_equal(pack_check(buf, b.len, &v, err, sizeof err), 0);
    assert_int_equal(v.count, NMSG);
    assert_int_equal(v.first_index, items[0].index);
    assert_int_equal(v.last_index, items[NMSG - 1].index);
    assert_int_equal(v.first_local, 77);
    uint64_t index, local;
    const uint8_t *m;
    uint16_t len;
    for (int i = 0; i < NMSG; i++) {
        assert_true(pack_next(&v, &index, &local, &m, &len));
        assert_int_equal(index, items[i].index);
        assert_int_equal(local, 77 + (uint64_t)i);
        assert_int_equal(len, items[i].len);
        assert_memory_equal(m, items[i].b, len);
    }
    assert_false(pack_next(&v, &index, &local, &m, &len));
    pack_view_t p;
    assert_int_equal(pack_peek(buf, PACK_HEADER, &p), 0);
    assert_int_equal(p.count, NMSG);
    assert_int_equal(p.first_local, 77);
}

static void test_pack_full_and_order(void **state)
{
    (void)state;
    pack_builder_t b;
    int n = build(&b, 1024, 1);
    assert_true(n > 0 && n < NMSG);
    assert_true(b.len <= 1024);
    assert_false(pack_add(&b, items[n - 1].index, items[0].b, 1)); /* index must grow */
    assert_false(pack_add(&b, items[n - 1].index + 1, items[0].b, 0));
    pack_view_t v;
    char err[200];
    assert_int_equal(pack_check(buf, b.len, &v, err, sizeof err), 0);
    assert_int_equal(v.count, (uint32_t)n);
    /* empty packet */
    pack_begin(&b, buf, sizeof buf, 5);
    pack_finish(&b);
    assert_int_equal(pack_check(buf, b.len, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 0);
}

static void test_pack_every_corruption_refused(void **state)
{
    (void)state;
    pack_builder_t b;
    build(&b, 2048, 9);
    size_t len = b.len;
    static uint8_t copy[2048];
    pack_view_t v;
    char err[200];
    for (size_t off = 0; off < len; off++) {
        memcpy(copy, buf, len);
        copy[off] ^= (uint8_t)(1u << (off % 8));
        err[0] = '\0';
        assert_int_equal(pack_check(copy, len, &v, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "byte"));
    }
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(pack_check(buf, cut, &v, err, sizeof err), -EBADMSG);
}

/* Index deltas at every LEB128 length boundary, up to UINT32_MAX (the largest a record holds):
 * each message back with its file index, each bit flip and each cut refused, and a delta past
 * UINT32_MAX refused by pack_add. */
static void test_pack_varint_deltas(void **state)
{
    (void)state;
    static const uint32_t deltas[] = {1,         127,        128,     16383,
                                      16384,     2097151,    2097152, 268435455,
                                      268435456, UINT32_MAX, 1,       UINT32_MAX - 1};
    enum { ND = sizeof deltas / sizeof deltas[0] };
    pack_builder_t b;
    pack_begin(&b, buf, sizeof buf, 3);
    uint64_t index = 5, want[ND + 1];
    uint8_t msg[3] = {'A', 0, 0};
    assert_true(pack_add(&b, index, msg, 3));
    want[0] = index;
    for (int i = 0; i < ND; i++) {
        index += deltas[i];
        msg[1] = (uint8_t)i;
        assert_true(pack_add(&b, index, msg, (size_t)1 + (size_t)i % 3));
        want[i + 1] = index;
    }
    assert_false(pack_add(&b, index + (uint64_t)UINT32_MAX + 1, msg, 1));
    size_t len = pack_finish(&b);
    /* 40-byte header, records of 2..6 bytes + the message */
    assert_true(len <= PACK_HEADER + (ND + 1) * (PACK_RECORD + 3));
    pack_view_t v;
    char err[200];
    assert_int_equal(pack_check(buf, len, &v, err, sizeof err), 0);
    assert_int_equal(v.count, ND + 1);
    assert_int_equal(v.last_index, index);
    uint64_t ix, local;
    const uint8_t *m;
    uint16_t l;
    for (int i = 0; i <= ND; i++) {
        assert_true(pack_next(&v, &ix, &local, &m, &l));
        assert_int_equal(ix, want[i]);
        assert_int_equal(local, 3 + (uint64_t)i);
        assert_int_equal(l, i ? 1 + (i - 1) % 3 : 3);
        if (i)
            assert_int_equal(m[0], 'A');
    }
    assert_false(pack_next(&v, &ix, &local, &m, &l));
    static uint8_t copy[1024];
    for (size_t off = 0; off < len; off++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, buf, len);
            copy[off] ^= (uint8_t)(1u << bit);
            assert_int_equal(pack_check(copy, len, &v, err, sizeof err), -EBADMSG);
        }
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(pack_check(buf, cut, &v, err, sizeof err), -EBADMSG);
}

static void test_pack_allocates_nothing(void **state)
{
    (void)state;
    malloc_count_t before;
    malloc_count_get(&before);
    mem_snapshot_t a, z;
    mem_snapshot_counters(&a);
    pack_builder_t b;
    build(&b, sizeof buf, 1);
    pack_view_t v;
    char err[200];
    assert_int_equal(pack_check(buf, b.len, &v, err, sizeof err), 0);
    mem_snapshot_counters(&z);
    assert_int_equal(z.total.allocs, a.total.allocs);
    if (malloc_count_libc_seen())
        assert_int_equal(malloc_count_allocs_since(&before), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_pack_full_and_order),
        cmocka_unit_test(test_pack_every_corruption_refused),
        cmocka_unit_test(test_pack_varint_deltas),
        cmocka_unit_test(test_pack_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
