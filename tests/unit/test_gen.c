/*
 * test_gen: the synthetic ITCH generator against oracles written here. A naive ITCH walker and
 * field parser (offsets from the TotalView-ITCH 5.0 specification, first checked on NASDAQ's own
 * sample file against its published message counts) reads what the generator wrote and must
 * agree, field by field, with what the generator says it wrote (the on_event hook) and with its
 * statistics. A naive order model (arrays indexed by order reference) checks referential
 * integrity, share arithmetic, monotone timestamps, references and match numbers, and that the
 * book is never crossed. The truth file is parsed and checked against the factor-model formula
 * recomputed here; 1-minute bar returns from trade prices must correlate close to it. The gzip
 * output is inflated with ISA-L and compared with the plain file byte for byte; a process-wide
 * malloc count proves that generating allocates nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "mem/mem.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"
#include "tests/support/testdata.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

static char tmpdir[64];

static bool small_run(void)
{
    return RUNNING_ON_VALGRIND || getenv("TICKCORE_TEST_SMALL") != NULL;
}

static void path_in_tmp(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", tmpdir, name);
}

/* ---- file helpers ------------------------------------------------------------------------- */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob_t;

static blob_t read_file(const char *path)
{
    blob_t b = {NULL, 0};
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    b.n = (size_t)sb.st_size;
    b.p = mem_alloc(MEM_TAG_TEST, b.n + 1);
    assert_non_null(b.p);
    size_t got = 0;
    while (got < b.n) {
        ssize_t r = read(fd, b.p + got, b.n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    b.p[b.n] = 0;
    close(fd);
    return b;
}

static void free_blob(blob_t *b)
{
    mem_free(MEM_TAG_TEST, b->p, b->n + 1);
    b->p = NULL;
}

static void remove_data(const char *path)
{
    char t[512];
    unlink(path);
    snprintf(t, sizeof t, "%s.truth.csv", path);
    unlink(t);
    snprintf(t, sizeof t, "%s.floor.csv", path);
    unlink(t);
    snprintf(t, sizeof t, "%s.latent.csv", path);
    unlink(t);
}

/* ---- the naive ITCH parser (TotalView-ITCH 5.0, section 1.3 and 4) ------------------------ */

static unsigned spec_len(uint8_t type)
{
    switch (type) {
    case 'S':
        return 12;
    case 'R':
        return 39;
    case 'H':
        return 25;
    case 'Y':
        return 20;
    case 'L':
        return 26;
    case 'A':
        return 36;
    case 'F':
        return 40;
    case 'E':
        return 31;
    case 'C':
        return 36;
    case 'X':
        return 23;
    case 'D':
        return 19;
    case 'U':
        return 35;
    case 'P':
        return 44;
    default:
        return 0;
    }
}

static uint64_t rd(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Fields of one message body m (type byte first) as event.h lays them out. */
static void parse_msg(const uint8_t *m, unsigned len, ev_t *e)
{
    memset(e, 0, sizeof *e);
    e->type = m[0];
    e->locate = (uint16_t)rd(m + 1, 2);
    e->tracking = (uint16_t)rd(m + 3, 2);
    e->ts = rd(m + 5, 6);
    e->raw_len = (uint8_t)len;
    switch (m[0]) {
    case 'S':
        e->aux = m[11];
        break;
    case 'R':
        e->aux = m[19];
        e->shares = rd(m + 21, 4);
        break;
    case 'H':
        e->aux = m[19];
        break;
    case 'A':
    case 'F':
        e->ref = rd(m + 11, 8);
        e->side = m[19];
        e->shares = rd(m + 20, 4);
        e->price = (int64_t)rd(m + 32, 4);
        break;
    case 'E':
        e->ref = rd(m + 11, 8);
        e->shares = rd(m + 19, 4);
        e->match = rd(m + 23, 8);
        break;
    case 'C':
        e->ref = rd(m + 11, 8);
        e->shares = rd(m + 19, 4);
        e->match = rd(m + 23, 8);
        e->aux = m[31];
        e->price = (int64_t)rd(m + 32, 4);
        break;
    case 'X':
        e->ref = rd(m + 11, 8);
        e->shares = rd(m + 19, 4);
        break;
    case 'D':
        e->ref = rd(m + 11, 8);
        break;
    case 'U':
        e->ref = rd(m + 11, 8);
        e->new_ref = rd(m + 19, 8);
        e->shares = rd(m + 27, 4);
        e->price = (int64_t)rd(m + 31, 4);
        break;
    case 'P':
        e->ref = rd(m + 11, 8);
        e->side = m[19];
        e->shares = rd(m + 20, 4);
        e->price = (int64_t)rd(m + 32, 4);
        e->match = rd(m + 36, 8);
        break;
    default:
        break;
    }
}

/* Walk the length prefixes: count by type; every length must match the type's size and the
 * file must end on a frame boundary. Returns the number of messages. */
static uint64_t walk(const blob_t *b, uint64_t by_type[256])
{
    uint64_t n = 0;
    size_t off = 0;
    memset(by_type, 0, 256 * sizeof by_type[0]);
    while (off < b->n) {
        assert_true(off + 2 <= b->n);
        unsigned len = (unsigned)rd(b->p + off, 2);
        assert_true(len > 0);
        assert_true(off + 2 + len <= b->n);
        uint8_t type = b->p[off + 2];
        assert_int_equal(len, spec_len(type));
        by_type[type]++;
        n++;
        off += 2 + len;
    }
    assert_int_equal(off, b->n);
    return n;
}

/* ---- a recorder for the hook ---------------------------------------------------------------- */

typedef struct rec {
    ev_t *ev;
    size_t n, cap;
    uint64_t by_type[256];
} rec_t;

static void rec_fn(void *ctx, const ev_t *e)
{
    rec_t *r = ctx;
    r->by_type[e->type]++;
    if (r->n < r->cap)
        r->ev[r->n] = *e;
    r->n++;
}

static void rec_init(rec_t *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->ev = mem_alloc(MEM_TAG_TEST, cap * sizeof(ev_t));
    assert_non_null(r->ev);
}

static void rec_fini(rec_t *r)
{
    mem_free(MEM_TAG_TEST, r->ev, r->cap * sizeof(ev_t));
}

static void small_cfg(gen_cfg_t *c, const char *out, uint64_t messages)
{
    gen_cfg_default(c);
    c->out = out;
    c->messages = messages;
    c->symbols = 40;
    c->sectors = 5;
    c->seed = 7;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

/* The oracle's own offsets, checked on NASDAQ's sample against its published counts. */
static void test_gen_parser_reads_nasdaq_sample(void **state)
{
    (void)state;
    char path[4096];
    if (!testdata_path(path, sizeof path, "nasdaq-20200130-aapl-10k.itch"))
        skip();
    blob_t b = read_file(path);
    uint64_t by[256];
    assert_int_equal(walk(&b, by), 10000);
    assert_int_equal(by['A'], 4758);
    assert_int_equal(by['D'], 4083);
    assert_int_equal(by['E'], 849);
    assert_int_equal(by['P'], 240);
    assert_int_equal(by['L'], 52);
    assert_int_equal(by['U'], 7);
    assert_int_equal(by['X'], 6);
    assert_int_equal(by['F'], 2);
    assert_int_equal(by['R'], 1);
    assert_int_equal(by['H'], 1);
    assert_int_equal(by['Y'], 1);
    /* First message: AAPL's directory entry, locate 13, round lot 100. */
    ev_t e;
    parse_msg(b.p + 2, (unsigned)rd(b.p, 2), &e);
    assert_int_equal(e.type, 'R');
    assert_int_equal(e.locate, 13);
    assert_memory_equal(b.p + 2 + 11, "AAPL    ", 8);
    assert_int_equal(e.shares, 100);
    /* Every add: a known side, a positive price, shares > 0; timestamps never decrease. */
    uint64_t last_ts = 0;
    for (size_t off = 0; off < b.n;) {
        unsigned len = (unsigned)rd(b.p + off, 2);
        parse_msg(b.p + off + 2, len, &e);
        assert_true(e.ts >= last_ts);
        last_ts = e.ts;
        if (e.type == 'A' || e.type == 'F') {
            assert_true(e.side == 'B' || e.side == 'S');
            assert_true(e.price > 0);
            assert_true(e.shares > 0);
        }
        off += 2 + len;
    }
    free_blob(&b);
}

static void test_gen_deterministic(void **state)
{
    (void)state;
    char a[256], b2[256], c[256], ta[512], tb[512];
    path_in_tmp(a, sizeof a, "det-a.itch");
    path_in_tmp(b2, sizeof b2, "det-b.itch");
    path_in_tmp(c, sizeof c, "det-c.itch");
    gen_cfg_t cfg;
    gen_stats_t st;
    small_cfg(&cfg, a, 100000);
    assert_int_equal(gen_run(&cfg, &st), 0);
    cfg.out = b2;
    assert_int_equal(gen_run(&cfg, &st), 0);
    cfg.out = c;
    cfg.seed = 8;
    assert_int_equal(gen_run(&cfg, &st), 0);
    blob_t fa = read_file(a), fb = read_file(b2), fc = read_file(c);
    assert_int_equal(fa.n, fb.n);
    assert_memory_equal(fa.p, fb.p, fa.n);
    assert_true(fa.n != fc.n || memcmp(fa.p, fc.p, fa.n) != 0);
    assert_int_equal(gen_truth_path(ta, sizeof ta, a), 0);
    assert_int_equal(gen_truth_path(tb, sizeof tb, b2), 0);
    blob_t ra = read_file(ta), rb = read_file(tb);
    /* Same model; only the first comment line (the data file's name) differs. */
    const char *la = strchr((char *)ra.p, '\n'), *lb = strchr((char *)rb.p, '\n');
    assert_non_null(la);
    assert_non_null(lb);
    assert_string_equal(la, lb);
    free_blob(&fa);
    free_blob(&fb);
    free_blob(&fc);
    free_blob(&ra);
    free_blob(&rb);
    remove_data(a);
    remove_data(b2);
    remove_data(c);
}

/* Counts from the hook, from the file's length prefixes and from gen_stats agree; the parsed
 * file equals the hook's events field by field; the mix is the one asked for. */
static void test_gen_counts_mix_and_fields(void **state)
{
    (void)state;
    char p[256];
    path_in_tmp(p, sizeof p, "mix.itch");
    uint64_t n = small_run() ? 100000 : 400000;
    gen_cfg_t cfg;
    small_cfg(&cfg, p, n);
    rec_t r;
    rec_init(&r, n);
    cfg.on_event = rec_fn;
    cfg.ctx = &r;
    gen_stats_t st;
    assert_int_equal(gen_run(&cfg, &st), 0);
    assert_int_equal(st.messages, n);
    assert_int_equal(r.n, n);

    blob_t b = read_file(p);
    uint64_t by[256];
    assert_int_equal(walk(&b, by), n);
    assert_int_equal(st.bytes, b.n);
    assert_int_equal(st.bytes_written, b.n);
    for (int t = 0; t < 256; t++) {
        assert_int_equal(by[t], st.by_type[t]);
        assert_int_equal(r.by_type[t], st.by_type[t]);
    }
    assert_int_equal(by['S'], 6);
    assert_int_equal(by['R'], cfg.symbols);
    assert_int_equal(by['H'], cfg.symbols);

    /* Field by field. */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned len = (unsigned)rd(b.p + off, 2);
        ev_t e;
        parse_msg(b.p + off + 2, len, &e);
        const ev_t *h = &r.ev[i];
        assert_int_equal(e.type, h->type);
        assert_int_equal(e.locate, h->locate);
        assert_int_equal(e.tracking, h->tracking);
        assert_int_equal(e.ts, h->ts);
        assert_int_equal(e.ref, h->ref);
        assert_int_equal(e.new_ref, h->new_ref);
        assert_int_equal(e.match, h->match);
        assert_int_equal(e.price, h->price);
        assert_int_equal(e.shares, h->shares);
        assert_int_equal(e.side, h->side);
        assert_int_equal(e.aux, h->aux);
        assert_int_equal(e.raw_len, h->raw_len);
        assert_null(h->raw);
        off += 2 + len;
    }

    /* The mix of order-flow messages, against the defaults (A+F 45 D 40 U 6 X 3 E 4 C 0.5
     * P 1.5): the realised mix may drift by the counted empty/full-book substitutions. */
    double flow = (double)(n - gen_min_messages(cfg.symbols));
    double add = (double)(by['A'] + by['F']) / flow, del = (double)by['D'] / flow;
    assert_true(add > 0.40 && add < 0.48);
    assert_true(del > 0.37 && del < 0.46);
    assert_true(fabs((double)by['U'] / flow - 0.06) < 0.01);
    assert_true(fabs((double)by['X'] / flow - 0.03) < 0.008);
    assert_true(fabs((double)by['E'] / flow - 0.04) < 0.015);
    assert_true(fabs((double)by['C'] / flow - 0.005) < 0.003);
    assert_true(fabs((double)by['P'] / flow - 0.015) < 0.005);
    double f_share = (double)by['F'] / (double)(by['A'] + by['F']);
    assert_true(f_share > 0.02 && f_share < 0.04);
    /* Bytes: prefixes plus the specification's sizes. */
    uint64_t bytes = 0;
    for (int t = 0; t < 256; t++)
        bytes += by[t] * (2 + spec_len((uint8_t)t));
    assert_int_equal(bytes, b.n);
    free_blob(&b);
    rec_fini(&r);
    remove_data(p);
}

/* ---- referential integrity against a naive order model ----------------------------------- */

typedef struct live_order {
    uint16_t locate;
    uint8_t side;
    bool live;
    int64_t price;
    uint64_t shares;
} live_order_t;

typedef struct model {
    live_order_t *o; /* indexed by reference */
    size_t cap;
    uint64_t *book; /* [symbols + 1][max_live]: the live references of each locate */
    uint32_t *nlive;
    uint32_t max_live, symbols;
    uint64_t last_ts, last_ref, last_match, live, errors;
    uint64_t crossed_checks;
    bool seen_q, seen_m;
} model_t;

static void model_add(model_t *m, uint16_t loc, uint64_t ref, uint8_t side, int64_t price,
                      uint64_t shares)
{
    assert_true(ref > m->last_ref); /* unique and increasing */
    m->last_ref = ref;
    assert_true(ref < m->cap);
    assert_true(loc >= 1 && loc <= m->symbols);
    assert_true(side == 'B' || side == 'S');
    assert_true(price > 0 && price % GEN_PRICE_TICK == 0);
    assert_true(shares > 0);
    /* Never crossed: a bid below every ask of the locate and an ask above every bid. */
    uint64_t *bk = m->book + (size_t)loc * m->max_live;
    for (uint32_t i = 0; i < m->nlive[loc]; i++) {
        const live_order_t *q = &m->o[bk[i]];
        if (q->side != side) {
            if (side == 'B')
                assert_true(price < q->price);
            else
                assert_true(price > q->price);
        }
    }
    m->crossed_checks++;
    assert_true(m->nlive[loc] < m->max_live);
    bk[m->nlive[loc]++] = ref;
    m->o[ref] = (live_order_t){loc, side, true, price, shares};
    m->live++;
}

static live_order_t *model_get(model_t *m, uint16_t loc, uint64_t ref)
{
    assert_true(ref > 0 && ref < m->cap);
    live_order_t *o = &m->o[ref];
    assert_true(o->live);
    assert_int_equal(o->locate, loc);
    return o;
}

static void model_remove(model_t *m, uint16_t loc, uint64_t ref)
{
    uint64_t *bk = m->book + (size_t)loc * m->max_live;
    uint32_t i = 0;
    while (i < m->nlive[loc] && bk[i] != ref)
        i++;
    assert_true(i < m->nlive[loc]);
    bk[i] = bk[--m->nlive[loc]];
    m->o[ref].live = false;
    m->live--;
}

static void model_apply(model_t *m, const ev_t *e)
{
    assert_true(e->ts >= m->last_ts);
    m->last_ts = e->ts;
    bool flow = strchr("AFECXDUP", e->type) != NULL;
    if (flow) {
        assert_true(m->seen_q && !m->seen_m); /* order flow only in market hours */
        assert_true(e->ts >= GEN_SESSION_OPEN_NS && e->ts < GEN_SESSION_CLOSE_NS);
    }
    if (e->match) {
        assert_true(e->match > m->last_match);
        m->last_match = e->match;
    }
    live_order_t *o;
    switch (e->type) {
    case 'S':
        if (e->aux == 'Q')
            m->seen_q = true;
        if (e->aux == 'M')
            m->seen_m = true;
        break;
    case 'A':
    case 'F':
        model_add(m, e->locate, e->ref, e->side, e->price, e->shares);
        break;
    case 'E':
    case 'C':
        assert_true(e->match > 0);
        o = model_get(m, e->locate, e->ref);
        assert_true(e->shares > 0 && e->shares <= o->shares);
        if (e->type == 'C') {
            assert_true(e->price > 0);
            assert_true(e->aux == 'Y' || e->aux == 'N');
        }
        o->shares -= e->shares;
        if (o->shares == 0)
            model_remove(m, e->locate, e->ref);
        break;
    case 'X':
        o = model_get(m, e->locate, e->ref);
        assert_true(e->shares > 0 && e->shares < o->shares); /* partial */
        o->shares -= e->shares;
        break;
    case 'D':
        model_get(m, e->locate, e->ref);
        model_remove(m, e->locate, e->ref);
        break;
    case 'U': {
        o = model_get(m, e->locate, e->ref);
        uint8_t side = o->side;
        model_remove(m, e->locate, e->ref);
        model_add(m, e->locate, e->new_ref, side, e->price, e->shares);
        break;
    }
    case 'P':
        assert_int_equal(e->ref, 0);
        assert_true(e->match > 0);
        assert_true(e->side == 'B' || e->side == 'S');
        assert_true(e->price > 0 && e->price % (GEN_PRICE_TICK / 2) == 0);
        assert_true(e->shares > 0);
        break;
    case 'R':
        assert_int_equal(e->shares, 100);
        break;
    case 'H':
        assert_int_equal(e->aux, 'T');
        break;
    default:
        fail_msg("unexpected type %c", e->type);
    }
}

static void model_init(model_t *m, uint64_t messages, uint32_t symbols, uint32_t max_live)
{
    memset(m, 0, sizeof *m);
    m->cap = messages + 2;
    m->o = mem_zalloc(MEM_TAG_TEST, m->cap * sizeof(live_order_t));
    m->symbols = symbols;
    m->max_live = max_live;
    m->book = mem_zalloc(MEM_TAG_TEST, (size_t)(symbols + 1) * max_live * sizeof(uint64_t));
    m->nlive = mem_zalloc(MEM_TAG_TEST, (symbols + 1) * sizeof(uint32_t));
    assert_non_null(m->o);
    assert_non_null(m->book);
    assert_non_null(m->nlive);
}

static void model_fini(model_t *m)
{
    mem_free(MEM_TAG_TEST, m->o, m->cap * sizeof(live_order_t));
    mem_free(MEM_TAG_TEST, m->book, (size_t)(m->symbols + 1) * m->max_live * sizeof(uint64_t));
    mem_free(MEM_TAG_TEST, m->nlive, (m->symbols + 1) * sizeof(uint32_t));
}

static void check_integrity(uint64_t n, uint32_t symbols, uint32_t max_live, uint64_t seed,
                            uint64_t *add_on_full, uint64_t *empty)
{
    char p[256];
    path_in_tmp(p, sizeof p, "integrity.itch");
    gen_cfg_t cfg;
    small_cfg(&cfg, p, n);
    cfg.symbols = symbols;
    cfg.sectors = symbols < 5 ? 1 : 5;
    cfg.max_live = max_live;
    cfg.seed = seed;
    gen_stats_t st;
    assert_int_equal(gen_run(&cfg, &st), 0);
    blob_t b = read_file(p);
    model_t m;
    model_init(&m, n, symbols, max_live);
    for (size_t off = 0; off < b.n;) {
        unsigned len = (unsigned)rd(b.p + off, 2);
        ev_t e;
        parse_msg(b.p + off + 2, len, &e);
        model_apply(&m, &e);
        off += 2 + len;
    }
    assert_true(m.seen_m);
    assert_int_equal(m.live, st.live_at_end);
    assert_int_equal(m.last_ref, st.last_ref);
    assert_int_equal(m.last_match, st.last_match);
    *add_on_full = st.add_on_full;
    *empty = st.empty_book;
    model_fini(&m);
    free_blob(&b);
    remove_data(p);
}

static void test_gen_referential_integrity(void **state)
{
    (void)state;
    uint64_t full, empty;
    check_integrity(small_run() ? 100000 : 500000, 40, 128, 11, &full, &empty);
    /* Tiny books: the capacity policy (adds on a full book become deletes) is exercised. */
    check_integrity(50000, 3, 2, 12, &full, &empty);
    assert_true(full > 0);
    /* One symbol, one sector. */
    check_integrity(20000, 1, 16, 13, &full, &empty);
}

/* ---- the truth file ------------------------------------------------------------------------- */

typedef struct truth {
    uint32_t n;
    char (*name)[9];
    uint32_t *sector;
    double *beta, *gamma, *sigma, *corr; /* corr: n * n */
} truth_t;

static void truth_parse(const char *path, uint32_t n, truth_t *t)
{
    blob_t b = read_file(path);
    t->n = n;
    t->name = mem_zalloc(MEM_TAG_TEST, n * sizeof *t->name);
    t->sector = mem_zalloc(MEM_TAG_TEST, n * sizeof *t->sector);
    t->beta = mem_zalloc(MEM_TAG_TEST, n * sizeof(double));
    t->gamma = mem_zalloc(MEM_TAG_TEST, n * sizeof(double));
    t->sigma = mem_zalloc(MEM_TAG_TEST, n * sizeof(double));
    t->corr = mem_zalloc(MEM_TAG_TEST, (size_t)n * n * sizeof(double));
    char *save = NULL;
    uint32_t row = 0;
    bool header = false;
    for (char *line = strtok_r((char *)b.p, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *fs = NULL;
        char *f = strtok_r(line, ",", &fs);
        if (!header) {
            assert_string_equal(f, "symbol");
            const char *want[] = {"locate", "sector", "beta", "gamma", "sigma"};
            for (int i = 0; i < 5; i++)
                assert_string_equal(strtok_r(NULL, ",", &fs), want[i]);
            uint32_t cols = 0;
            while (strtok_r(NULL, ",", &fs))
                cols++;
            assert_int_equal(cols, n);
            header = true;
            continue;
        }
        assert_true(row < n);
        assert_true(strlen(f) >= 3 && strlen(f) <= 4);
        strcpy(t->name[row], f);
        assert_int_equal(strtoul(strtok_r(NULL, ",", &fs), NULL, 10), row + 1);
        t->sector[row] = (uint32_t)strtoul(strtok_r(NULL, ",", &fs), NULL, 10);
        t->beta[row] = strtod(strtok_r(NULL, ",", &fs), NULL);
        t->gamma[row] = strtod(strtok_r(NULL, ",", &fs), NULL);
        t->sigma[row] = strtod(strtok_r(NULL, ",", &fs), NULL);
        for (uint32_t j = 0; j < n; j++) {
            char *v = strtok_r(NULL, ",", &fs);
            assert_non_null(v);
            t->corr[(size_t)row * n + j] = strtod(v, NULL);
        }
        assert_null(strtok_r(NULL, ",", &fs));
        row++;
    }
    assert_true(header);
    assert_int_equal(row, n);
    free_blob(&b);
}

static void truth_fini(truth_t *t)
{
    uint32_t n = t->n;
    mem_free(MEM_TAG_TEST, t->name, n * sizeof *t->name);
    mem_free(MEM_TAG_TEST, t->sector, n * sizeof *t->sector);
    mem_free(MEM_TAG_TEST, t->beta, n * sizeof(double));
    mem_free(MEM_TAG_TEST, t->gamma, n * sizeof(double));
    mem_free(MEM_TAG_TEST, t->sigma, n * sizeof(double));
    mem_free(MEM_TAG_TEST, t->corr, (size_t)n * n * sizeof(double));
}

/* The formula of the header comment, written out again here. */
static double formula(const truth_t *t, uint32_t i, uint32_t j)
{
    double cij = t->beta[i] * t->beta[j] +
                 (t->sector[i] == t->sector[j] ? t->gamma[i] * t->gamma[j] : 0) +
                 (i == j ? t->sigma[i] * t->sigma[i] : 0);
    double cii = t->beta[i] * t->beta[i] + t->gamma[i] * t->gamma[i] + t->sigma[i] * t->sigma[i];
    double cjj = t->beta[j] * t->beta[j] + t->gamma[j] * t->gamma[j] + t->sigma[j] * t->sigma[j];
    return cij / sqrt(cii * cjj);
}

static void test_gen_truth_file(void **state)
{
    (void)state;
    char p[256], tp[512];
    path_in_tmp(p, sizeof p, "truth.itch");
    gen_cfg_t cfg;
    small_cfg(&cfg, p, 20000);
    cfg.symbols = 60;
    cfg.sectors = 7;
    rec_t r;
    rec_init(&r, 20000);
    cfg.on_event = rec_fn;
    cfg.ctx = &r;
    gen_t *g;
    char err[200];
    assert_int_equal(gen_create(&g, &cfg, err, sizeof err), 0);
    assert_int_equal(gen_truth_path(tp, sizeof tp, p), 0);
    truth_t t;
    truth_parse(tp, cfg.symbols, &t);
    uint32_t members[7] = {0};
    for (uint32_t i = 0; i < t.n; i++) {
        assert_true(t.sector[i] < cfg.sectors);
        members[t.sector[i]]++;
        /* Daily vol 1.5-3%, market 30-40% and sector 20-30% of the variance. */
        double v = t.beta[i] * t.beta[i] + t.gamma[i] * t.gamma[i] + t.sigma[i] * t.sigma[i];
        assert_true(sqrt(v) >= 0.015 - 1e-12 && sqrt(v) <= 0.03 + 1e-12);
        assert_true(t.beta[i] * t.beta[i] / v >= 0.3 - 1e-9 &&
                    t.beta[i] * t.beta[i] / v <= 0.4 + 1e-9);
        assert_true(t.gamma[i] * t.gamma[i] / v >= 0.2 - 1e-9 &&
                    t.gamma[i] * t.gamma[i] / v <= 0.3 + 1e-9);
        for (uint32_t j = 0; j < i; j++)
            assert_string_not_equal(t.name[i], t.name[j]);
        for (uint32_t j = 0; j < t.n; j++) {
            double c = t.corr[(size_t)i * t.n + j];
            assert_true(c == t.corr[(size_t)j * t.n + i]); /* symmetric, bit for bit */
            if (i == j)
                assert_true(c == 1.0);
            assert_true(fabs(c - formula(&t, i, j)) < 1e-10);
            assert_true(fabs(c - gen_truth_corr(g, (uint16_t)(i + 1), (uint16_t)(j + 1))) < 1e-10);
        }
        const gen_symbol_t *s = gen_symbol(g, (uint16_t)(i + 1));
        assert_string_equal(s->name, t.name[i]);
        assert_true(s->beta == t.beta[i] && s->gamma == t.gamma[i] && s->sigma == t.sigma[i]);
        assert_true(s->price0 >= 20 && s->price0 <= 300);
    }
    for (uint32_t k = 0; k < cfg.sectors; k++)
        assert_true(members[k] > 0);
    assert_null(gen_symbol(g, 0));
    assert_null(gen_symbol(g, (uint16_t)(cfg.symbols + 1)));
    /* The directory names the same symbols in the same locates. */
    gen_stats_t st;
    assert_int_equal(gen_generate(g, &st), 0);
    gen_destroy(g);
    blob_t b = read_file(p);
    size_t off = 0;
    for (uint32_t i = 0; off < b.n;) {
        unsigned len = (unsigned)rd(b.p + off, 2);
        const uint8_t *m = b.p + off + 2;
        if (m[0] == 'R') {
            char name[9];
            memcpy(name, m + 11, 8);
            name[8] = 0;
            for (int c = 7; c >= 0 && name[c] == ' '; c--)
                name[c] = 0;
            assert_int_equal(rd(m + 1, 2), i + 1);
            assert_string_equal(name, t.name[i]);
            i++;
        }
        off += 2 + len;
    }
    free_blob(&b);
    truth_fini(&t);
    rec_fini(&r);
    remove_data(p);
}

/* Bars of trade prices: last trade of each minute, log returns over minutes where both ends have
 * a price; their sample correlation must be close to the truth. */
typedef struct bars {
    uint32_t n;
    int64_t *price; /* by reference: order prices, to price E */
    size_t cap;
    double *last; /* [n][390]: last trade price in each minute, 0 = none */
} bars_t;

static void bars_fn(void *ctx, const ev_t *e)
{
    bars_t *b = ctx;
    int64_t px = 0;
    switch (e->type) {
    case 'A':
    case 'F':
        b->price[e->ref] = e->price;
        return;
    case 'U':
        b->price[e->new_ref] = e->price;
        return;
    case 'E':
        px = b->price[e->ref];
        break;
    case 'C':
        if (e->aux != 'Y')
            return;
        px = e->price;
        break;
    case 'P':
        px = e->price;
        break;
    default:
        return;
    }
    uint64_t minute = (e->ts - GEN_SESSION_OPEN_NS) / 60000000000ull;
    if (minute < 390)
        b->last[(size_t)(e->locate - 1) * 390 + minute] = (double)px;
}

static void test_gen_trade_bar_correlation_near_truth(void **state)
{
    (void)state;
    char p[256], tp[512];
    path_in_tmp(p, sizeof p, "corr.itch");
    uint64_t n = 1000000;
    gen_cfg_t cfg;
    small_cfg(&cfg, p, n);
    cfg.symbols = 12;
    cfg.sectors = 3;
    cfg.seed = 2024;
    bars_t bb = {.n = cfg.symbols, .cap = n + 2};
    bb.price = mem_zalloc(MEM_TAG_TEST, bb.cap * sizeof(int64_t));
    bb.last = mem_zalloc(MEM_TAG_TEST, (size_t)cfg.symbols * 390 * sizeof(double));
    cfg.on_event = bars_fn;
    cfg.ctx = &bb;
    gen_stats_t st;
    assert_int_equal(gen_run(&cfg, &st), 0);
    assert_int_equal(gen_truth_path(tp, sizeof tp, p), 0);
    truth_t t;
    truth_parse(tp, cfg.symbols, &t);

    /* Carry the last price forward, then 389 one-minute log returns per symbol. */
    uint32_t N = cfg.symbols;
    static double ret[12][389];
    for (uint32_t i = 0; i < N; i++) {
        double *l = bb.last + (size_t)i * 390;
        uint32_t empty = 0;
        for (int k = 0; k < 390; k++)
            if (l[k] == 0) {
                empty++;
                l[k] = k ? l[k - 1] : 0;
            }
        assert_true(empty < 20); /* trades in almost every minute */
        int first = 0;
        while (l[first] == 0)
            first++;
        for (int k = 0; k < first; k++)
            l[k] = l[first];
        for (int k = 0; k < 389; k++)
            ret[i][k] = log(l[k + 1] / l[k]);
    }
    double err_sum = 0, err_max = 0, in_sec = 0, across = 0;
    unsigned n_in = 0, n_across = 0;
    for (uint32_t i = 0; i < N; i++)
        for (uint32_t j = i + 1; j < N; j++) {
            double mi = 0, mj = 0;
            for (int k = 0; k < 389; k++) {
                mi += ret[i][k];
                mj += ret[j][k];
            }
            mi /= 389;
            mj /= 389;
            double sij = 0, sii = 0, sjj = 0;
            for (int k = 0; k < 389; k++) {
                sij += (ret[i][k] - mi) * (ret[j][k] - mj);
                sii += (ret[i][k] - mi) * (ret[i][k] - mi);
                sjj += (ret[j][k] - mj) * (ret[j][k] - mj);
            }
            double c = sij / sqrt(sii * sjj);
            double truth = t.corr[(size_t)i * N + j];
            double e = fabs(c - truth);
            err_sum += e;
            if (e > err_max)
                err_max = e;
            if (t.sector[i] == t.sector[j]) {
                in_sec += c;
                n_in++;
            } else {
                across += c;
                n_across++;
            }
        }
    double mean_err = err_sum / (N * (N - 1) / 2);
    print_message("trade-bar correlation vs truth: mean |error| %.3f, max %.3f; mean within "
                  "sector %.3f, across %.3f\n",
                  mean_err, err_max, in_sec / n_in, across / n_across);
    /* 389 returns: a sample correlation's standard error is about (1 - rho^2) / sqrt(389), 0.03
     * to 0.05 here; independent series would miss by 0.35-0.6 on average. */
    assert_true(mean_err < 0.1);
    assert_true(err_max < 0.3);
    assert_true(in_sec / n_in > across / n_across + 0.1);
    truth_fini(&t);
    mem_free(MEM_TAG_TEST, bb.price, bb.cap * sizeof(int64_t));
    mem_free(MEM_TAG_TEST, bb.last, (size_t)cfg.symbols * 390 * sizeof(double));
    remove_data(p);
}

/* ---- gzip ------------------------------------------------------------------------------------ */

static void test_gen_gzip_inflates_to_plain(void **state)
{
    (void)state;
    char a[256], z[256];
    path_in_tmp(a, sizeof a, "gz.itch");
    path_in_tmp(z, sizeof z, "gz.itch.gz");
    uint64_t n = small_run() ? 100000 : 300000;
    gen_cfg_t cfg;
    gen_stats_t st, sz;
    small_cfg(&cfg, a, n);
    cfg.buf_size = 65536; /* many buffers: exercise the streaming */
    assert_int_equal(gen_run(&cfg, &st), 0);
    cfg.out = z;
    cfg.gzip = true;
    assert_int_equal(gen_run(&cfg, &sz), 0);
    assert_int_equal(st.bytes, sz.bytes);
    blob_t plain = read_file(a), gz = read_file(z);
    assert_int_equal(sz.bytes_written, gz.n);
    assert_true(gz.n < plain.n);
    assert_int_equal(gz.p[0], 0x1f);
    assert_int_equal(gz.p[1], 0x8b);

    struct inflate_state *s = mem_zalloc(MEM_TAG_TEST, sizeof *s);
    assert_non_null(s);
    size_t cap = plain.n + 4096;
    uint8_t *out = mem_alloc(MEM_TAG_TEST, cap);
    /* gen writes independent members (4 MiB of input each): inflate them one after the other,
     * as gzip -dc does, and count them. */
    size_t in_off = 0, out_off = 0, members = 0;
    while (in_off < gz.n) {
        isal_inflate_init(s);
        s->crc_flag = ISAL_GZIP;
        s->next_in = gz.p + in_off;
        s->avail_in = (uint32_t)(gz.n - in_off);
        s->next_out = out + out_off;
        s->avail_out = (uint32_t)(cap - out_off);
        assert_int_equal(isal_inflate(s), ISAL_DECOMP_OK);
        assert_int_equal(s->block_state, ISAL_BLOCK_FINISH);
        in_off = gz.n - s->avail_in;
        out_off += s->total_out;
        members++;
    }
    assert_int_equal(out_off, plain.n);
    assert_memory_equal(out, plain.p, plain.n);
    assert_int_equal(members, (plain.n + (4u << 20) - 1) / (4u << 20));
    mem_free(MEM_TAG_TEST, out, cap);
    mem_free(MEM_TAG_TEST, s, sizeof *s);
    free_blob(&plain);
    free_blob(&gz);
    remove_data(a);
    remove_data(z);
}

/* ---- memory ------------------------------------------------------------------------------- */

static void test_gen_generating_allocates_nothing(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        char p[256];
        path_in_tmp(p, sizeof p, gz ? "noalloc.itch.gz" : "noalloc.itch");
        gen_cfg_t cfg;
        small_cfg(&cfg, p, small_run() ? 50000 : 200000);
        cfg.gzip = gz;
        cfg.buf_size = 8192;
        gen_t *g;
        char err[200];
        assert_int_equal(gen_create(&g, &cfg, err, sizeof err), 0);
        static gen_stats_t st;
        mem_seal();
        malloc_count_t before;
        malloc_count_get(&before);
        assert_int_equal(gen_generate(g, &st), 0);
        assert_int_equal(malloc_count_allocs_since(&before), 0);
        mem_snapshot_t s;
        mem_snapshot(&s);
        assert_int_equal(s.total.churn_allocs, 0);
        gen_destroy(g);
        mem_unseal();
        mem_snapshot(&s);
        assert_int_equal(s.tag[MEM_TAG_INGEST].live, 0);
        assert_int_equal(s.tag[MEM_TAG_INGEST].live_blocks, 0);
        remove_data(p);
    }
    /* A second gen_generate on the same generator is refused. */
    gen_cfg_t cfg;
    small_cfg(&cfg, NULL, 20000);
    gen_t *g;
    char err[200];
    gen_stats_t st;
    assert_int_equal(gen_create(&g, &cfg, err, sizeof err), 0);
    assert_int_equal(gen_generate(g, &st), 0);
    assert_int_equal(st.messages, 20000);
    assert_int_equal(st.bytes_written, 0); /* out = NULL: nothing written */
    assert_int_equal(gen_generate(g, &st), -EINVAL);
    gen_destroy(g);
    gen_destroy(NULL);
}

static void test_gen_bad_config(void **state)
{
    (void)state;
    gen_cfg_t c;
    gen_stats_t st;
    char p[256];
    path_in_tmp(p, sizeof p, "bad.itch");
    small_cfg(&c, p, 1000);
    c.symbols = 0;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    assert_non_null(strstr(st.error, "symbols"));
    small_cfg(&c, p, 1000);
    c.sectors = 41;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    assert_non_null(strstr(st.error, "sectors"));
    small_cfg(&c, p, 85); /* 6 + 2 * 40 = 86 needed */
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    assert_non_null(strstr(st.error, "at least 86"));
    small_cfg(&c, p, 1000);
    c.max_live = 0;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, p, 1000);
    c.step_ns = 5;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, p, 1000);
    c.mix = (gen_mix_t){0};
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, p, 1000);
    c.mix.del = -1;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, p, 1000);
    c.f_share = NAN;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, p, 1000);
    c.buf_size = 100;
    assert_int_equal(gen_run(&c, &st), -EINVAL);
    small_cfg(&c, "/nonexistent-dir/x.itch", 1000);
    assert_int_equal(gen_run(&c, &st), -ENOENT);
    assert_non_null(strstr(st.error, "/nonexistent-dir/x.itch"));
    /* Exactly the minimum: a day with no order flow. */
    small_cfg(&c, p, 86);
    assert_int_equal(gen_run(&c, &st), 0);
    assert_int_equal(st.messages, 86);
    assert_int_equal(st.by_type['A'], 0);
    /* A mix of adds only: every book fills, then adds become deletes. */
    small_cfg(&c, p, 20000);
    c.mix = (gen_mix_t){.add = 1};
    c.max_live = 8;
    assert_int_equal(gen_run(&c, &st), 0);
    assert_true(st.add_on_full > 0);
    assert_int_equal(st.by_type['A'] + st.by_type['F'] + st.by_type['D'],
                     20000 - gen_min_messages(40)); /* swept orders go as D: no E in the mix */
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, 0);
    remove_data(p);
}

static void test_gen_auto_step(void **state)
{
    (void)state;
    assert_int_equal(gen_auto_step(1000000, 500), 10000000000ull);
    assert_int_equal(gen_auto_step(10000000, 500), 4000000000ull);
    assert_int_equal(gen_auto_step(100000000, 500), 1000000000ull);
    assert_int_equal(gen_auto_step(1006, 500), 10000000000ull); /* no order flow */
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tickcore-test-gen-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* The floor file: the truth file's format, a correlation matrix (unit diagonal, symmetric, in
 * [-1, 1]) whose mean |error| against the truth (recomputed here from the two files) is the one
 * gen_stats_t reports and is of the size sampling error gives 389 one-minute returns; and the
 * bridge draws come from a stream of their own: the data is the same bytes without the floor. */
static void test_gen_floor_file(void **state)
{
    (void)state;
    char p[256], q[256], tp[512], fp[512];
    path_in_tmp(p, sizeof p, "floor.itch");
    path_in_tmp(q, sizeof q, "floor-nt.itch");
    gen_cfg_t cfg;
    gen_stats_t st;
    small_cfg(&cfg, p, 300000);
    cfg.symbols = 12;
    cfg.sectors = 3;
    assert_int_equal(gen_run(&cfg, &st), 0);
    assert_int_equal(st.floor_minutes, 390);
    assert_int_equal(gen_truth_path(tp, sizeof tp, p), 0);
    snprintf(fp, sizeof fp, "%s.floor.csv", p);
    truth_t t, f;
    truth_parse(tp, cfg.symbols, &t);
    truth_parse(fp, cfg.symbols, &f);
    uint32_t n = cfg.symbols;
    double sum = 0, expect = 0;
    size_t pairs = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_string_equal(f.name[i], t.name[i]);
        assert_int_equal(f.sector[i], t.sector[i]);
        assert_true(f.corr[(size_t)i * n + i] == 1.0);
        for (uint32_t j = i + 1; j < n; j++) {
            double r = f.corr[(size_t)i * n + j], tr = t.corr[(size_t)i * n + j];
            assert_true(fabs(r - f.corr[(size_t)j * n + i]) < 1e-12);
            assert_true(r >= -1 && r <= 1);
            sum += fabs(r - tr);
            /* E|r - rho| of a sample correlation of T normal pairs: sqrt(2/pi)(1-rho^2)/sqrt(T) */
            expect += sqrt(2 / M_PI) * (1 - tr * tr) / sqrt(389.0);
            pairs++;
        }
    }
    sum /= (double)pairs;
    expect /= (double)pairs;
    print_message("floor: mean |latent one-minute rho - true| %.4f (stats %.4f), sampling "
                  "error alone %.4f\n",
                  sum, st.floor_mae, expect);
    assert_true(fabs(sum - st.floor_mae) < 1e-9);
    assert_true(sum > 0.2 * expect && sum < 4 * expect);
    truth_fini(&t);
    truth_fini(&f);
    /* the same model without the truth (so without the floor): the same data bytes */
    cfg.out = q;
    cfg.truth = false;
    gen_stats_t st2;
    assert_int_equal(gen_run(&cfg, &st2), 0);
    assert_int_equal(st2.floor_minutes, 0);
    blob_t a = read_file(p), b = read_file(q);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.p, b.p, a.n);
    free_blob(&a);
    free_blob(&b);
    remove_data(p);
    remove_data(q);
}

/* The latent file (gen_cfg_t.latent): two rows per symbol in the truth's order, 391 minute ends
 * each. Its latent rows are the floor's path: their one-minute returns' sample correlation,
 * recomputed here, is the floor file's matrix. Its quote rows are a quote: a whole-cent bid plus
 * half a cent, at minute 0 the tick below the open's latent price, and afterwards the latent price
 * of a recent touch (the quote minus the latent price varies far less than a minute's return; a
 * quote one minute off would vary as much). The data bytes are the same without it. */
static void test_gen_latent_file(void **state)
{
    (void)state;
    char p[256], q[256], tp[512], fp[512], lp[512];
    path_in_tmp(p, sizeof p, "latent.itch");
    path_in_tmp(q, sizeof q, "latent-off.itch");
    gen_cfg_t cfg;
    gen_stats_t st;
    small_cfg(&cfg, p, 300000);
    cfg.symbols = 12;
    cfg.sectors = 3;
    cfg.latent = true;
    assert_int_equal(gen_run(&cfg, &st), 0);
    uint32_t n = cfg.symbols, W = 391;
    assert_int_equal(gen_truth_path(tp, sizeof tp, p), 0);
    snprintf(fp, sizeof fp, "%s.floor.csv", p);
    snprintf(lp, sizeof lp, "%s.latent.csv", p);
    truth_t t, f;
    truth_parse(tp, n, &t);
    truth_parse(fp, n, &f);
    double *x = mem_alloc(MEM_TAG_TEST, 2 * (size_t)n * W * sizeof(double)); /* latent, quote */
    assert_non_null(x);
    blob_t b = read_file(lp);
    char *save = NULL;
    uint32_t row = 0;
    for (char *line = strtok_r((char *)b.p, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *fs = NULL;
        assert_true(row < 2 * n);
        assert_string_equal(strtok_r(line, ",", &fs), t.name[row / 2]);
        assert_string_equal(strtok_r(NULL, ",", &fs), row % 2 ? "quote" : "latent");
        for (uint32_t m = 0; m < W; m++) {
            char *v = strtok_r(NULL, ",", &fs);
            assert_non_null(v);
            x[(size_t)row * W + m] = strtod(v, NULL);
        }
        assert_null(strtok_r(NULL, ",", &fs));
        row++;
    }
    assert_int_equal(row, 2 * n);
    free_blob(&b);
    double ratio = 0;
    for (uint32_t i = 0; i < n; i++) {
        const double *a = x + (size_t)2 * i * W, *qa = a + W;
        for (uint32_t j = i + 1; j < n; j++) {
            const double *c = x + (size_t)2 * j * W;
            double ma = (a[390] - a[0]) / 390, mc = (c[390] - c[0]) / 390, sab = 0, saa = 0,
                   scc = 0;
            for (uint32_t m = 0; m < 390; m++) {
                double ra = a[m + 1] - a[m] - ma, rc = c[m + 1] - c[m] - mc;
                sab += ra * rc;
                saa += ra * ra;
                scc += rc * rc;
            }
            assert_true(fabs(sab / sqrt(saa * scc) - f.corr[(size_t)i * n + j]) < 1e-9);
        }
        double p0 = exp(a[0]), bid0 = exp(qa[0]) - 0.005;
        assert_true(bid0 <= p0 + 1e-6 && p0 < bid0 + 0.01 + 1e-6);
        double mu = 0, vu = 0, vr = 0, mr = (a[390] - a[0]) / 390;
        for (uint32_t m = 0; m < W; m++) {
            double cents = (exp(qa[m]) - 0.005) * 100;
            assert_true(fabs(cents - round(cents)) < 1e-6);
            mu += qa[m] - a[m];
        }
        mu /= W;
        for (uint32_t m = 0; m < W; m++) {
            vu += (qa[m] - a[m] - mu) * (qa[m] - a[m] - mu);
            if (m < 390)
                vr += (a[m + 1] - a[m] - mr) * (a[m + 1] - a[m] - mr);
        }
        ratio += vu / W / (vr / 390) / n;
    }
    print_message("latent: var(quote - latent) / var(one-minute return), mean over symbols %.4f\n",
                  ratio);
    assert_true(ratio > 0 && ratio < 0.5);
    mem_free(MEM_TAG_TEST, x, 2 * (size_t)n * W * sizeof(double));
    truth_fini(&t);
    truth_fini(&f);
    cfg.out = q;
    cfg.latent = false;
    gen_stats_t st2;
    assert_int_equal(gen_run(&cfg, &st2), 0);
    blob_t da = read_file(p), db = read_file(q);
    assert_int_equal(da.n, db.n);
    assert_memory_equal(da.p, db.p, da.n);
    free_blob(&da);
    free_blob(&db);
    snprintf(lp, sizeof lp, "%s.latent.csv", q);
    assert_int_equal(access(lp, F_OK), -1); /* not asked: not written */
    remove_data(p);
    remove_data(q);
}

/* The truth is the correlation of the process gen simulates: over many independent days the
 * latent one-minute sample correlations (FILE.floor.csv) scatter around the truth file's matrix
 * with no shift. One day cannot show it: every pair shares the day's draws of the market and
 * sector factors, so the mean over pairs of (r - rho) moves as one (the demo day's -0.018 is one
 * such draw; its spread over days is about 0.017). So: DAYS days (seeds), each day's mean error
 * over same-sector pairs and over cross-sector pairs, and each across-day mean must lie within
 * 4 standard errors (from the spread across days) of the small-sample bias of a correlation,
 * E r - rho = -rho(1 - rho^2) / (2T) (T = 389 after centring), computed from the truth. 96 days
 * are 37,344 one-minute latent returns: a truth off by 0.01 in either group of pairs fails. */
static void test_gen_floor_unbiased_over_days(void **state)
{
    (void)state;
    enum { DAYS = 96, NSYM = 16 };
    char p[256], tp[512], fp[512];
    path_in_tmp(p, sizeof p, "days.itch");
    assert_int_equal(gen_truth_path(tp, sizeof tp, p), 0);
    snprintf(fp, sizeof fp, "%s.floor.csv", p);
    double sum[2] = {0, 0}, sq[2] = {0, 0}, expect[2] = {0, 0};
    for (uint32_t d = 0; d < DAYS; d++) {
        gen_cfg_t cfg;
        gen_stats_t st;
        small_cfg(&cfg, p, 20000);
        cfg.symbols = NSYM;
        cfg.sectors = 4;
        cfg.seed = 1000 + d;
        assert_int_equal(gen_run(&cfg, &st), 0);
        assert_int_equal(st.floor_minutes, 390);
        truth_t t, f;
        truth_parse(tp, NSYM, &t);
        truth_parse(fp, NSYM, &f);
        double day[2] = {0, 0}, exp_day[2] = {0, 0};
        uint32_t np[2] = {0, 0};
        for (uint32_t i = 0; i < NSYM; i++)
            for (uint32_t j = i + 1; j < NSYM; j++) {
                int same = t.sector[i] == t.sector[j];
                double rho = formula(&t, i, j);
                assert_true(fabs(rho - t.corr[(size_t)i * NSYM + j]) < 1e-11);
                day[same] += f.corr[(size_t)i * NSYM + j] - rho;
                exp_day[same] += -rho * (1 - rho * rho) / (2 * 389.0);
                np[same]++;
            }
        for (int k = 0; k < 2; k++) {
            assert_true(np[k] > 0);
            sum[k] += day[k] / np[k];
            sq[k] += (day[k] / np[k]) * (day[k] / np[k]);
            expect[k] += exp_day[k] / np[k];
        }
        truth_fini(&t);
        truth_fini(&f);
    }
    for (int k = 0; k < 2; k++) {
        double mean = sum[k] / DAYS, sd = sqrt((sq[k] - DAYS * mean * mean) / (DAYS - 1));
        double se = sd / sqrt((double)DAYS), want = expect[k] / DAYS;
        print_message("%s-sector pairs over %d days: mean (latent r - true rho) %+.5f, expected "
                      "%+.5f, day-to-day sd %.4f, se %.4f\n",
                      k ? "same" : "cross", DAYS, mean, want, sd, se);
        assert_true(sd > 0.002 && sd < 0.05); /* the days' factor draws do differ */
        assert_true(fabs(mean - want) < 4 * se);
    }
    remove_data(p);
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir); /* every test removed its files: fails if one was left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_gen_parser_reads_nasdaq_sample, reset_counters),
        cmocka_unit_test_setup(test_gen_deterministic, reset_counters),
        cmocka_unit_test_setup(test_gen_counts_mix_and_fields, reset_counters),
        cmocka_unit_test_setup(test_gen_referential_integrity, reset_counters),
        cmocka_unit_test_setup(test_gen_truth_file, reset_counters),
        cmocka_unit_test_setup(test_gen_floor_file, reset_counters),
        cmocka_unit_test_setup(test_gen_latent_file, reset_counters),
        cmocka_unit_test_setup(test_gen_floor_unbiased_over_days, reset_counters),
        cmocka_unit_test_setup(test_gen_trade_bar_correlation_near_truth, reset_counters),
        cmocka_unit_test_setup(test_gen_gzip_inflates_to_plain, reset_counters),
        cmocka_unit_test_setup(test_gen_generating_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_gen_bad_config, reset_counters),
        cmocka_unit_test_setup(test_gen_auto_step, reset_counters),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
