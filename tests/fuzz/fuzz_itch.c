/*
 * fuzz_itch: libFuzzer target for the ITCH decoder. The input is decoded the way replay
 * --skip-bad does it: itch_decode_block into a small event array, again after ITCH_FULL,
 * itch_resync after a bad frame, until the end of the input. The first input byte picks the
 * event array size (1..16) so that ITCH_FULL lands anywhere. Invariants, checked with
 * abort(): consumed <= len, n <= max, events are exactly the whole frames consumed (each
 * event's raw message lies inside the input and its prefix matches its type's length), an
 * error status names a frame that really is bad, resync moves forward by 1..len bytes, and
 * the loop ends. Every event also goes through itch_decode again as a single message, which
 * must agree. Build (ASan and UBSan included):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE tests/fuzz/fuzz_itch.c
 *     ingest/itch.c event/symtab.c mem/[a-z]*.c -lxxhash -lmimalloc -lm -lpthread -o fuzz_itch
 */
#include "ingest/itch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static unsigned prefix(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const size_t max = 1 + (data[0] & 15u);
    const uint8_t *buf = data + 1;
    const size_t len = size - 1;
    ev_t ev[16];
    size_t off = 0, rounds = 0;
    while (off < len) {
        CHECK(++rounds <= 2 * len + 2);
        itch_result_t r;
        itch_decode_block(buf + off, len - off, ev, max, &r);
        CHECK(r.consumed <= len - off);
        CHECK(r.n <= max);
        /* The events are the consumed frames, in order. */
        size_t pos = off;
        for (size_t i = 0; i < r.n; i++) {
            CHECK(pos + 3 <= off + r.consumed);
            const unsigned ml = prefix(buf + pos);
            CHECK(ml != 0 && ml == itch_msg_len[buf[pos + 2]]);
            CHECK(ev[i].raw == buf + pos + 2 && ev[i].raw_len == ml);
            CHECK(ev[i].type == buf[pos + 2]);
            ev_t again;
            CHECK(itch_decode(ev[i].raw, ml, &again) == ITCH_OK);
            CHECK(memcmp(&again, &ev[i], sizeof again) == 0);
            pos += 2 + ml;
        }
        CHECK(pos == off + r.consumed);
        off += r.consumed;
        const size_t rem = len - off;
        switch (r.status) {
        case ITCH_FULL:
            CHECK(r.n == max && rem >= 2);
            continue;
        case ITCH_OK:
            /* Only an incomplete, plausible tail may remain. */
            CHECK(rem < ITCH_MAX_FRAME);
            if (rem >= 3)
                CHECK(prefix(buf + off) == itch_msg_len[buf[off + 2]] &&
                      prefix(buf + off) > rem - 2);
            return 0;
        case ITCH_ERR_ZERO_LENGTH:
        case ITCH_ERR_UNKNOWN_TYPE:
        case ITCH_ERR_BAD_LENGTH: {
            CHECK(rem >= 2);
            const unsigned ml = prefix(buf + off);
            CHECK(r.err_len == ml);
            if (rem >= 3) {
                CHECK(r.err_type == buf[off + 2]);
                CHECK(r.err_expected == itch_msg_len[buf[off + 2]]);
                CHECK(ml == 0 || ml != itch_msg_len[buf[off + 2]]);
            } else {
                CHECK(ml == 0 || ml > ITCH_MAX_MSG);
            }
            CHECK((r.status == ITCH_ERR_ZERO_LENGTH) == (ml == 0));
            CHECK(itch_status_str(r.status) != NULL);
            const size_t skip = itch_resync(buf + off, rem, true);
            CHECK(skip >= 1 && skip <= rem);
            const size_t skip2 = itch_resync(buf + off, rem, false);
            CHECK(skip2 >= 1 && skip2 <= rem);
            off += skip;
            break;
        }
        default:
            abort();
        }
    }
    return 0;
}
