/*
 * fuzz_journal: libFuzzer target for journal recovery (server/journal.c's open: the checksum
 * sidecar check, the record scan, the torn-tail and bad-block cuts). The input is split into a
 * journal file and its .crc sidecar: byte 0 says how (0: no sidecar; else the sidecar is the last
 * (byte0 * 8 + 16) bytes, capped at the input), byte 1's low bit picks pwrite or io_uring; both
 * files are written to a private directory under TMPDIR (or /tmp; tests/fuzz/run.sh points it at
 * /dev/shm, where the fsyncs cost nothing: 880 runs/s there, 18 on a busy disk) and journal_open
 * runs on them,
 * with 4 KiB checksum blocks so that short inputs span several. Invariants, checked with abort():
 *   - the open returns 0 or -EBADMSG; a refusal names the journal and leaves its bytes as they
 *     were;
 *   - an open journal is a prefix of the input, made of whole ITCH 5.0 frames, as many as it
 *     counts; a bad block cut saves exactly the bytes it cut to PATH.cut-OFFSET and says so;
 *   - its sidecar then has our header and one entry per whole block, each the CRC32C of that
 *     block (a bit-by-bit CRC32C here, not ISA-L's);
 *   - after appending messages and closing, the next open finds nothing to cut, warns of nothing,
 *     and counts the messages before plus those appended (the running CRC of the last, partial
 *     block was carried over right).
 * Build: make fuzz (clang, ASan and UBSan, against build/fuzz/libtickcore-fuzz.a).
 */
#include "ingest/itch.h"
#include "mem/mem.h"
#include "server/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_journal: check failed at line %d: %s\n", __LINE__, #c);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define BLOCK 4096u

static char g_dir[256], g_path[300], g_cpath[320], g_gpath[320];

static uint32_t naive_crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
    close(fd);
}

/* The whole file, in a malloc'd buffer (*n bytes); NULL if it does not exist. */
static uint8_t *get_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    CHECK(p != NULL);
    CHECK(read(fd, p, (size_t)st.st_size) == st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return p;
}

/* The journal's frames: how many, and every one whole and of its type's length. */
static uint64_t count_frames(const uint8_t *p, size_t n)
{
    uint64_t k = 0;
    size_t off = 0;
    while (off < n) {
        CHECK(n - off >= 3);
        unsigned len = (unsigned)p[off] << 8 | p[off + 1];
        CHECK(len > 0 && itch_msg_len[p[off + 2]] == len && n - off >= 2 + len);
        off += 2 + len;
        k++;
    }
    return k;
}

/* The block size a sidecar's header gives, if the header is ours (else 0). */
static uint32_t header_block(const uint8_t *c, size_t cn)
{
    if (cn < 16 || memcmp(c, "TKJCRC1\n", 8) != 0 || le32(c + 12) != naive_crc32c(c, 12))
        return 0;
    uint32_t b = le32(c + 8);
    return b >= JOURNAL_MIN_CRC_BLOCK && b <= JOURNAL_MAX_CRC_BLOCK && (b & (b - 1)) == 0 ? b : 0;
}

/* The sidecar: our header with the block size blk (an existing sidecar's own size wins), one
 * entry per whole block of the journal, each its CRC32C; and at most one more for the last
 * partial block (after a close: exactly that one). */
static void check_sidecar(const uint8_t *j, size_t n, bool closed, uint32_t blk)
{
    size_t cn;
    uint8_t *c = get_file(g_cpath, &cn);
    CHECK(c != NULL && header_block(c, cn) == blk);
    size_t whole = n / blk, entries = (cn - 16) / 8;
    CHECK((cn - 16) % 8 == 0);
    if (closed)
        CHECK(entries == (n + blk - 1) / blk);
    else
        CHECK(entries == whole);
    for (size_t i = 0; i < entries; i++) {
        size_t len = n - i * blk < blk ? n - i * blk : blk;
        CHECK(le32(c + 16 + 8 * i) == len);
        CHECK(le32(c + 20 + 8 * i) == naive_crc32c(j + i * blk, len));
    }
    free(c);
}

/* The private directory goes at exit (libFuzzer ends with exit()). */
static void cleanup(void)
{
    unlink(g_path);
    unlink(g_cpath);
    unlink(g_gpath);
    rmdir(g_dir);
}

static void init_once(void)
{
    if (g_dir[0])
        return;
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_journal.XXXXXX", t && t[0] ? t : "/tmp");
    CHECK(mkdtemp(g_dir) != NULL);
    snprintf(g_path, sizeof g_path, "%s/j.itch", g_dir);
    snprintf(g_cpath, sizeof g_cpath, "%s.crc", g_path);
    snprintf(g_gpath, sizeof g_gpath, "%s.gaps", g_path);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20))
        return 0;
    init_once();
    size_t side = data[0] ? (size_t)data[0] * 8 + 16 : 0;
    bool pw = data[1] & 1;
    const uint8_t *in = data + 2;
    size_t n = size - 2;
    if (side > n)
        side = n;
    size_t jn = n - side;
    uint32_t block = data[0] ? header_block(in + jn, side) : 0;
    if (block == 0)
        block = BLOCK; /* no sidecar, or not ours: written again with the configured size */
    unlink(g_gpath);
    put_file(g_path, in, jn);
    if (data[0])
        put_file(g_cpath, in + jn, side);
    else
        unlink(g_cpath);

    journal_cfg_t cfg;
    journal_cfg_default(&cfg);
    cfg.path = g_path;
    cfg.buffer_size = 4096;
    cfg.buffers = 2;
    cfg.fsync = JOURNAL_FSYNC_OFF;
    cfg.force_pwrite = pw;
    cfg.crc_block = BLOCK;
    cfg.lock_wait_ms = JOURNAL_LOCK_NO_WAIT;
    journal_t j;
    char err[1024];
    int rc = journal_open(&j, &cfg, err, sizeof err);
    size_t got_n;
    uint8_t *got = get_file(g_path, &got_n);
    CHECK(got != NULL);
    if (rc < 0) {
        CHECK(rc == -EBADMSG);
        CHECK(strstr(err, g_path) != NULL);
        CHECK(got_n == jn && memcmp(got, in, jn) == 0); /* refused: untouched */
        free(got);
        return 0;
    }
    journal_stats_t st;
    journal_stats(&j, &st);
    /* a prefix of the input, whole frames, as many as counted */
    CHECK(got_n <= jn && memcmp(got, in, got_n) == 0);
    CHECK(st.bytes == got_n);
    CHECK(count_frames(got, got_n) == st.messages);
    if (st.crc_cut_offset != UINT64_MAX) {
        CHECK(st.crc_cut_offset == got_n && st.crc_cut_bytes == jn - got_n);
        CHECK(strstr(journal_note(&j), "bad block") != NULL);
        char saved[400];
        snprintf(saved, sizeof saved, "%s.cut-%zu", g_path, got_n);
        size_t sn;
        uint8_t *sb = get_file(saved, &sn);
        CHECK(sb != NULL && sn == jn - got_n && memcmp(sb, in + got_n, sn) == 0);
        free(sb);
        unlink(saved);
    } else {
        CHECK(st.torn_bytes == jn - got_n);
    }
    check_sidecar(got, got_n, false, block);

    /* go on: a few messages, close, and the next open finds nothing wrong */
    uint64_t before = st.messages;
    static const uint8_t add[36] = {'A', 0,   1,   0,   0,   0,   0,   0,   0,   0, 1, 0,
                                    0,   0,   0,   0,   0,   0,   0,   1,   'B', 0, 0, 0,
                                    100, 'A', 'A', 'P', 'L', ' ', ' ', ' ', ' ', 0, 0, 1};
    unsigned extra = 1 + (jn % 150);
    for (unsigned i = 0; i < extra; i++)
        CHECK(journal_append(&j, add, sizeof add) == 0);
    CHECK(journal_close(&j) == 0);
    free(got);
    got = get_file(g_path, &got_n);
    CHECK(got != NULL);
    check_sidecar(got, got_n, true, block);
    rc = journal_open(&j, &cfg, err, sizeof err);
    CHECK(rc == 0);
    journal_stats(&j, &st);
    CHECK(st.messages == before + extra);
    CHECK(st.crc_cut_offset == UINT64_MAX && st.torn_bytes == 0 && st.crc_unchecked_bytes == 0);
    CHECK(journal_note(&j)[0] == '\0');
    CHECK(journal_close(&j) == 0);
    free(got);
    return 0;
}
