/*
 * gen: see gen.h for the market it writes. Design: gen_create draws the whole model from the
 * seed (independent xoshiro256** streams seeded by splitmix64: names, parameters, activity,
 * factor path, order flow, bursts) and allocates every array; gen_generate is one loop that
 * allocates nothing. Message slot k of the F order-flow messages lies at open + (k + u) * T / F
 * (u in [0, 1) per burst), so timestamps never decrease; crossing a step boundary advances the
 * common factors (K + 1 normals). A symbol's own noise is drawn lazily when it is touched
 * (sqrt(steps since its last touch) * N(0,1): the same law as one draw per step), so a step
 * costs K + 1 normals, not N, and a symbol's quote is recomputed at most once per step. Each
 * symbol's book is one array of max_live orders holding two 4-ary heaps, bids (best = highest)
 * from the front and asks (best = lowest) from the back, so both sides share the capacity, the
 * best order is at a root and any order leaves in O(log n). Burst draws are made a few bursts ahead
 * so the symbol's state and its heap roots are prefetched. The encoder writes each message
 * straight into the output buffer (big-endian, byte by byte); a full buffer goes out with
 * write(2), or through ISA-L's deflate into independent gzip members of 4 MiB input each, each
 * with its compressed length in a header field (gz_feed). Ownership: gen_t owns its
 * arrays, buffers, the ISA-L state and its file descriptors; gen_destroy releases all of them.
 */
#include "sim/gen.h"
#include "base/fdio.h"

#include "base/byteorder.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/hints.h"
#include "ingest/itch.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSION_NS   (GEN_SESSION_CLOSE_NS - GEN_SESSION_OPEN_NS)
#define MAX_FRAME    52 /* the longest message we write (P, 44) fits; ITCH's longest is 50 */
#define ACT_BITS     12
#define PRINTABLE_N  16 /* 1 in 16 C messages is non-printable */
#define LIVE_MAX     65536u
#define STEP_MIN_NS  1000000ull
#define TRUTH_MARGIN 128 /* bytes kept free in the buffer when formatting one truth field */

enum { ACT_ADD, ACT_DEL, ACT_REPL, ACT_CANCEL, ACT_EXEC, ACT_EXECP, ACT_TRADE, ACT_COUNT };

typedef struct rng {
    uint64_t s[4];
} rng_t;

#define HEAP_D 4 /* children per node: a shallow heap, few unpredictable branches */
#define ZIG_R  3.442619855899

typedef struct zig { /* ziggurat tables */
    uint32_t kn[128];
    double wn[128], fn[128];
} zig_t;

typedef struct gen_order {
    uint64_t ref;
    uint32_t price; /* 1/10,000 dollars */
    uint32_t shares;
} gen_order_t;

typedef struct gsym {
    gen_order_t *o; /* max_live slots: bids o[0..nb) as a max-heap, asks o[cap-1-j], j < ns */
    uint32_t nb, ns;
    uint32_t bid, ask; /* the quote implied by the mid at last_step */
    uint32_t last_step;
    uint32_t sector;
    double logp0;      /* log of the open mid in 1/10,000 dollars */
    double b, gm, sg;  /* per-step loadings */
    double ecum;       /* sum of the symbol's own N(0,1) draws so far */
    uint32_t min_done; /* floor: latent minutes 0..min_done-1 of ecum are recorded */
    char stock[8];     /* space padded */
} gsym_t;

struct gen {
    gen_cfg_t cfg;
    uint32_t nsym, nsec, cap;
    gsym_t *sym;         /* [nsym], locate = index + 1 */
    gen_symbol_t *info;  /* [nsym] */
    gen_order_t *orders; /* [nsym * cap] */
    double *scum;        /* [nsec] cumulative sector factors */
    uint16_t *symtab;    /* [1 << symbits]: activity-weighted symbol picks */
    unsigned symbits;
    uint8_t acttab[1u << ACT_BITS];
    uint8_t acttab_alt[1u << ACT_BITS]; /* the same without D and E */
    uint64_t credit_d, credit_e;        /* swept D and E not yet taken from the drawn mix */
    uint32_t f_thresh;                  /* 16-bit threshold for F among adds */
    uint32_t sweep_thresh;
    double mcum;
    uint32_t step;
    uint64_t next_step_ts;
    rng_t fac, flow, slot;
    zig_t zig;
    double sqrt_small[64];
    uint64_t ref, match;
    /* output */
    int fd, truth_fd;
    uint8_t *buf;
    size_t cap_buf, pos;
    struct isal_zstream *z;
    uint8_t *lvlbuf, *zbuf;
    size_t zcap, zpos, zin; /* zbuf holds the open member: zpos bytes, from zin input bytes */
    bool zopen;
    int werr;
    bool generated;
    uint64_t truth_bytes;
    gen_stats_t *st;
    char path[PATH_MAX];
    /* floor (the latent one-minute path, see gen.h): on with the truth matrix */
    bool floor_on;
    uint32_t nmin;      /* minutes in the session */
    uint32_t *mstep;    /* [nmin + 2] the step count at minute m's end; [nmin + 1] = UINT32_MAX */
    double *fmin;       /* [(nmin + 1) * (1 + nsec)] mcum, scum[0..nsec) at minute m */
    uint32_t fmin_done; /* minutes of fmin recorded */
    double *emin;       /* [nsym * (nmin + 1)] ecum of each symbol at minute m */
    double *qmin;       /* latent file: [nsym * (nmin + 1)] log quote mid at minute m */
    rng_t bridge;       /* draws of the latent path between a symbol's touches (own stream: the
                           data bytes do not depend on the floor) */
};

static const char mpids[8][4] = {{'G', 'S', 'C', 'O'}, {'M', 'S', 'C', 'O'}, {'U', 'B', 'S', 'S'},
                                 {'J', 'P', 'M', 'S'}, {'C', 'D', 'R', 'G'}, {'N', 'I', 'T', 'E'},
                                 {'V', 'I', 'R', 'T'}, {'S', 'U', 'S', 'Q'}};

/* ---- PRNG: xoshiro256** seeded through splitmix64 ------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static inline double rng_unit(rng_t *r)
{
    return (double)(int64_t)(rng_next(r) >> 11) * 0x1p-53;
}

/* Uniform in [0, n) from 32 random bits (Lemire's multiply-shift, bias < n / 2^32). */
static inline uint32_t below(uint32_t bits, uint32_t n)
{
    return (uint32_t)(((uint64_t)bits * n) >> 32);
}

/* Uniform in (0, 1]. */
static inline double rng_unit_open(rng_t *r)
{
    return (double)(int64_t)((rng_next(r) >> 11) + 1) * 0x1p-53;
}

/* Uniform in [0, n) from bits 0..23 of bits. */
static inline uint32_t below24(uint64_t bits, uint32_t n)
{
    return (uint32_t)(((bits & 0xffffff) * n) >> 24);
}

/* N(0, 1) by Marsaglia and Tsang's ziggurat (128 layers): the layer index and the 32-bit
 * magnitude come from disjoint bits of one 64-bit draw. */

static void zig_init(zig_t *z)
{
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = ZIG_R, tn = dn;
    double q = vn / exp(-0.5 * dn * dn);
    z->kn[0] = (uint32_t)((dn / q) * m1);
    z->kn[1] = 0;
    z->wn[0] = q / m1;
    z->wn[127] = dn / m1;
    z->fn[0] = 1.0;
    z->fn[127] = exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
        z->kn[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        z->fn[i] = exp(-0.5 * dn * dn);
        z->wn[i] = dn / m1;
    }
}

static double zig_normal(const zig_t *z, rng_t *r)
{
    for (;;) {
        uint64_t u = rng_next(r);
        int32_t hz = (int32_t)(uint32_t)(u >> 32);
        uint32_t iz = (uint32_t)u & 127;
        uint32_t ahz = hz < 0 ? (uint32_t)(-(int64_t)hz) : (uint32_t)hz;
        double x = hz * z->wn[iz];
        if (likely(ahz < z->kn[iz]))
            return x;
        if (iz == 0) { /* the tail beyond R */
            double y;
            do {
                x = -log(rng_unit_open(r)) / ZIG_R;
                y = -log(rng_unit_open(r));
            } while (y + y < x * x);
            return hz > 0 ? ZIG_R + x : -ZIG_R - x;
        }
        if (z->fn[iz] + rng_unit(r) * (z->fn[iz - 1] - z->fn[iz]) < exp(-0.5 * x * x))
            return x;
    }
}

/* e^x for |x| < 700 to about 1e-9 relative: x = k ln 2 + t, |t| <= ln2 / 2, Taylor to t^7.
 * Our own, so the prices do not depend on the libm version. */
static inline double exp_fast(double x)
{
    if (!(x > -700.0))
        x = -700.0;
    if (x > 700.0)
        x = 700.0;
    double y = x * 1.4426950408889634;
    int64_t k = (int64_t)(y + 0.5); /* truncation: floor(y + 0.5) for y >= -0.5 */
    if ((double)k > y + 0.5)
        k--;
    double t = (y - (double)k) * 0.6931471805599453;
    /* Estrin's scheme: a short dependency chain. */
    double t2 = t * t, t4 = t2 * t2;
    double p = ((1.0 + t) + t2 * (1.0 / 2 + t * (1.0 / 6))) +
               t4 * ((1.0 / 24 + t * (1.0 / 120)) + t2 * (1.0 / 720 + t * (1.0 / 5040)));
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

/* ---- output -----------------------------------------------------------------------------------
 */

/* gzip output is a series of independent members of GEN_GZ_MEMBER input bytes each (the last
 * shorter; a member may cut a record: readers carry the tail over). Each member is deflated whole
 * into zbuf behind a header whose 'TK' extra subfield holds the member's compressed length - 1
 * (32-bit little-endian, BGZF's BSIZE convention), so a reader can find the next member without
 * inflating this one and inflate members in parallel; gzip -dc and zcat ignore the field. */
#define GEN_GZ_MEMBER (4u << 20)
#define GEN_GZ_ZCAP   (GEN_GZ_MEMBER + GEN_GZ_MEMBER / 8 + 4096)

static int gz_member_begin(gen_t *g)
{
    struct isal_zstream *z = g->z;
    isal_deflate_reset(z);
    static uint8_t extra[8] = {'T', 'K', 4, 0, 0, 0, 0, 0};
    struct isal_gzip_header h;
    isal_gzip_header_init(&h);
    h.extra = extra;
    h.extra_buf_len = h.extra_len = sizeof extra;
    h.os = 3; /* Unix */
    z->next_out = g->zbuf;
    z->avail_out = (uint32_t)g->zcap;
    z->total_out = 0;
    if (isal_write_gzip_header(z, &h) != 0)
        return -EIO;
    g->zpos = g->zcap - z->avail_out;
    g->zin = 0;
    g->zopen = true;
    return 0;
}

/* Finish the open member: the deflate tail and trailer, the length patched into the header, the
 * member written out. */
static int gz_member_end(gen_t *g)
{
    struct isal_zstream *z = g->z;
    z->next_in = NULL;
    z->avail_in = 0;
    z->end_of_stream = 1;
    while (z->internal_state.state != ZSTATE_END) {
        z->next_out = g->zbuf + g->zpos;
        z->avail_out = (uint32_t)(g->zcap - g->zpos);
        if (isal_deflate(z) != COMP_OK || z->avail_out == 0)
            return -EIO;
        g->zpos = g->zcap - z->avail_out;
    }
    z->end_of_stream = 0;
    uint32_t v = (uint32_t)(g->zpos - 1); /* 'TK' data at byte 16: 10 fixed, XLEN, SI1 SI2 LEN */
    for (int i = 0; i < 4; i++)
        g->zbuf[16 + i] = (uint8_t)(v >> (8 * i));
    int w = fdio_write_all(g->fd, g->zbuf, g->zpos, NULL);
    if (w)
        return w;
    g->st->bytes_written += g->zpos;
    g->zopen = false;
    return 0;
}

/* Feed in[0..n) to the members; end: finish the last one (an empty input still makes one, so the
 * file is a valid gzip). */
static int gz_feed(gen_t *g, uint8_t *in, size_t n, bool end)
{
    struct isal_zstream *z = g->z;
    int rc;
    while (n > 0) {
        if (!g->zopen && (rc = gz_member_begin(g)) != 0)
            return rc;
        size_t k = GEN_GZ_MEMBER - g->zin < n ? GEN_GZ_MEMBER - g->zin : n;
        z->next_in = in;
        z->avail_in = (uint32_t)k;
        z->end_of_stream = 0;
        while (z->avail_in > 0) {
            z->next_out = g->zbuf + g->zpos;
            z->avail_out = (uint32_t)(g->zcap - g->zpos);
            if (isal_deflate(z) != COMP_OK || z->avail_out == 0)
                return -EIO; /* cannot happen: zcap holds a member's worst case */
            g->zpos = g->zcap - z->avail_out;
        }
        in += k;
        n -= k;
        g->zin += k;
        if (g->zin == GEN_GZ_MEMBER && (rc = gz_member_end(g)) != 0)
            return rc;
    }
    if (end) {
        if (!g->zopen && g->st->bytes_written == 0 && (rc = gz_member_begin(g)) != 0)
            return rc;
        if (g->zopen)
            return gz_member_end(g);
    }
    return 0;
}

static HINT_COLD void flush_buf(gen_t *g, bool end)
{
    if (g->fd >= 0 && g->werr == 0) {
        int rc;
        if (g->z) {
            rc = gz_feed(g, g->buf, g->pos, end);
        } else {
            rc = fdio_write_all(g->fd, g->buf, g->pos, NULL);
            if (rc == 0)
                g->st->bytes_written += g->pos;
        }
        if (rc)
            g->werr = rc;
    }
    g->pos = 0;
}

/* Room for one frame of len bytes; returns the message's first byte (the type). */
static inline uint8_t *frame(gen_t *g, uint8_t type, unsigned len, uint16_t locate, uint64_t ts)
{
    if (unlikely(g->pos + 2 + len > g->cap_buf))
        flush_buf(g, false);
    uint8_t *p = g->buf + g->pos;
    g->pos += 2 + len;
    g->st->by_type[type]++;
    be16_put(p, (uint16_t)len);
    p += 2;
    p[0] = type;
    be16_put(p + 1, locate);
    be16_put(p + 3, 0); /* tracking number */
    be48_put(p + 5, ts);
    return p;
}

/* The test hook: the message as the generator knows it. */
static HINT_NOINLINE void hook(gen_t *g, uint8_t type, unsigned len, uint16_t locate, uint64_t ts,
                               uint64_t ref, uint64_t new_ref, uint64_t match, uint32_t price,
                               uint32_t shares, uint8_t side, uint8_t aux)
{
    ev_t e;
    memset(&e, 0, sizeof e);
    e.ts = ts;
    e.ref = ref;
    e.new_ref = new_ref;
    e.match = match;
    e.price = price;
    e.shares = shares;
    e.raw = NULL;
    e.locate = locate;
    e.tracking = 0;
    e.type = type;
    e.side = side;
    e.aux = aux;
    e.raw_len = (uint8_t)len;
    g->cfg.on_event(g->cfg.ctx, &e);
}

#define HOOK(...)                                                                                  \
    do {                                                                                           \
        if (unlikely(g->cfg.on_event != NULL))                                                     \
            hook(g, __VA_ARGS__);                                                                  \
    } while (0)

/* ---- message writers ---------------------------------------------------------------------- */

static void put_system(gen_t *g, uint64_t ts, uint8_t code)
{
    uint8_t *p = frame(g, 'S', 12, 0, ts);
    p[11] = code;
    HOOK('S', 12, 0, ts, 0, 0, 0, 0, 0, 0, code);
}

static void put_directory(gen_t *g, uint16_t loc, uint64_t ts, uint8_t category, uint8_t tier)
{
    uint8_t *p = frame(g, 'R', 39, loc, ts);
    memcpy(p + 11, g->sym[loc - 1].stock, 8);
    p[19] = category;      /* market category */
    p[20] = 'N';           /* financial status: normal */
    be32_put(p + 21, 100); /* round lot size */
    p[25] = 'N';           /* round lots only */
    p[26] = 'C';           /* issue classification: common stock */
    p[27] = 'Z';           /* issue sub-type "Z ": not applicable */
    p[28] = ' ';
    p[29] = 'P';         /* authenticity: production */
    p[30] = 'N';         /* short sale threshold */
    p[31] = 'N';         /* IPO flag */
    p[32] = tier;        /* LULD reference price tier */
    p[33] = 'N';         /* ETP flag */
    be32_put(p + 34, 0); /* ETP leverage factor */
    p[38] = 'N';         /* inverse indicator */
    HOOK('R', 39, loc, ts, 0, 0, 0, 0, 100, 0, category);
}

static void put_trading_action(gen_t *g, uint16_t loc, uint64_t ts)
{
    uint8_t *p = frame(g, 'H', 25, loc, ts);
    memcpy(p + 11, g->sym[loc - 1].stock, 8);
    p[19] = 'T'; /* trading */
    p[20] = ' '; /* reserved */
    memcpy(p + 21, "    ", 4);
    HOOK('H', 25, loc, ts, 0, 0, 0, 0, 0, 0, 'T');
}

static inline void put_add(gen_t *g, const gsym_t *s, uint16_t loc, uint64_t ts, uint64_t ref,
                           uint8_t side, uint32_t shares, uint32_t price, const char *mpid)
{
    unsigned len = mpid ? 40 : 36;
    uint8_t type = mpid ? 'F' : 'A';
    uint8_t *p = frame(g, type, len, loc, ts);
    be64_put(p + 11, ref);
    p[19] = side;
    be32_put(p + 20, shares);
    memcpy(p + 24, s->stock, 8);
    be32_put(p + 32, price);
    if (mpid)
        memcpy(p + 36, mpid, 4);
    HOOK(type, len, loc, ts, ref, 0, 0, price, shares, side, 0);
}

static inline void put_exec(gen_t *g, uint16_t loc, uint64_t ts, uint64_t ref, uint32_t shares,
                            uint64_t match)
{
    uint8_t *p = frame(g, 'E', 31, loc, ts);
    be64_put(p + 11, ref);
    be32_put(p + 19, shares);
    be64_put(p + 23, match);
    HOOK('E', 31, loc, ts, ref, 0, match, 0, shares, 0, 0);
}

static inline void put_exec_price(gen_t *g, uint16_t loc, uint64_t ts, uint64_t ref,
                                  uint32_t shares, uint64_t match, uint8_t printable,
                                  uint32_t price)
{
    uint8_t *p = frame(g, 'C', 36, loc, ts);
    be64_put(p + 11, ref);
    be32_put(p + 19, shares);
    be64_put(p + 23, match);
    p[31] = printable;
    be32_put(p + 32, price);
    HOOK('C', 36, loc, ts, ref, 0, match, price, shares, 0, printable);
}

static inline void put_cancel(gen_t *g, uint16_t loc, uint64_t ts, uint64_t ref, uint32_t shares)
{
    uint8_t *p = frame(g, 'X', 23, loc, ts);
    be64_put(p + 11, ref);
    be32_put(p + 19, shares);
    HOOK('X', 23, loc, ts, ref, 0, 0, 0, shares, 0, 0);
}

static inline void put_delete(gen_t *g, uint16_t loc, uint64_t ts, uint64_t ref)
{
    uint8_t *p = frame(g, 'D', 19, loc, ts);
    be64_put(p + 11, ref);
    HOOK('D', 19, loc, ts, ref, 0, 0, 0, 0, 0, 0);
}

static inline void put_replace(gen_t *g, uint16_t loc, uint64_t ts, uint64_t ref, uint64_t new_ref,
                               uint32_t shares, uint32_t price)
{
    uint8_t *p = frame(g, 'U', 35, loc, ts);
    be64_put(p + 11, ref);
    be64_put(p + 19, new_ref);
    be32_put(p + 27, shares);
    be32_put(p + 31, price);
    HOOK('U', 35, loc, ts, ref, new_ref, 0, price, shares, 0, 0);
}

static inline void put_trade(gen_t *g, const gsym_t *s, uint16_t loc, uint64_t ts, uint8_t side,
                             uint32_t shares, uint32_t price, uint64_t match)
{
    uint8_t *p = frame(g, 'P', 44, loc, ts);
    be64_put(p + 11, 0); /* non-displayed orders have no reference in NASDAQ's feed */
    p[19] = side;
    be32_put(p + 20, shares);
    memcpy(p + 24, s->stock, 8);
    be32_put(p + 32, price);
    be64_put(p + 36, match);
    HOOK('P', 44, loc, ts, 0, 0, match, price, shares, side, 0);
}

/* ---- the book: two heaps in one array ---------------------------------------------------------
 */

/* Order j of side sell (0 bids, 1 asks). */
static inline gen_order_t *slot(const gsym_t *s, uint32_t cap, int sell, uint32_t j)
{
    return sell ? &s->o[cap - 1 - j] : &s->o[j];
}

/* Heap key: larger is better (higher bid, lower ask). */
static inline uint32_t key(uint32_t price, int sell)
{
    return sell ? ~price : price;
}

/* Heaps with a hole: x goes into hole j and moves up (sift_up) or down (sift_down); x is passed
 * by value so that it is never stored and at once reloaded. */
static HINT_INLINE void sift_up_k(gsym_t *s, uint32_t cap, int sell, uint32_t j, gen_order_t x)
{
    uint32_t kx = key(x.price, sell);
    while (j > 0) {
        uint32_t p = (j - 1) / HEAP_D;
        gen_order_t *pp = slot(s, cap, sell, p);
        if (key(pp->price, sell) >= kx)
            break;
        *slot(s, cap, sell, j) = *pp;
        j = p;
    }
    *slot(s, cap, sell, j) = x;
}

/* Bottom-up: move the hole from j down to a leaf along the best children, then let x rise from
 * there (it came from the last leaf, so it rarely rises far). */
static HINT_INLINE void sift_down_k(gsym_t *s, uint32_t cap, int sell, uint32_t n, uint32_t j,
                                    gen_order_t x)
{
    uint32_t c;
    while ((c = HEAP_D * j + 1) < n) {
        uint32_t end = c + HEAP_D < n ? c + HEAP_D : n, best = c;
        uint32_t kb = key(slot(s, cap, sell, c)->price, sell);
        for (uint32_t d = c + 1; d < end; d++) {
            uint32_t kd = key(slot(s, cap, sell, d)->price, sell);
            best = kd > kb ? d : best;
            kb = kd > kb ? kd : kb;
        }
        *slot(s, cap, sell, j) = *slot(s, cap, sell, best);
        j = best;
    }
    sift_up_k(s, cap, sell, j, x);
}

/* Put x into hole j of a heap of n: up if it beats the parent, else down. One copy per side. */
static HINT_INLINE void heap_place_k(gsym_t *s, uint32_t cap, int sell, uint32_t n, uint32_t j,
                                     gen_order_t x)
{
    if (j > 0 && key(x.price, sell) > key(slot(s, cap, sell, (j - 1) / HEAP_D)->price, sell))
        sift_up_k(s, cap, sell, j, x);
    else
        sift_down_k(s, cap, sell, n, j, x);
}

static void heap_place(gsym_t *s, uint32_t cap, int sell, uint32_t n, uint32_t j, gen_order_t x)
{
    if (sell)
        heap_place_k(s, cap, 1, n, j, x);
    else
        heap_place_k(s, cap, 0, n, j, x);
}

static inline uint32_t *side_n(gsym_t *s, int sell)
{
    return sell ? &s->ns : &s->nb;
}

static void book_push(gsym_t *s, uint32_t cap, int sell, uint64_t ref, uint32_t price,
                      uint32_t shares)
{
    uint32_t *n = side_n(s, sell);
    gen_order_t x = {ref, price, shares};
    if (sell)
        sift_up_k(s, cap, 1, (*n)++, x);
    else
        sift_up_k(s, cap, 0, (*n)++, x);
}

static void book_remove(gsym_t *s, uint32_t cap, int sell, uint32_t j)
{
    uint32_t *n = side_n(s, sell);
    uint32_t last = --*n;
    if (j == last)
        return;
    heap_place(s, cap, sell, last, j, *slot(s, cap, sell, last));
}

/* An order's position: side and index in its heap. */
typedef struct pick {
    int sell;
    uint32_t j;
} pick_t;

static inline pick_t pick_at(const gsym_t *s, uint32_t i)
{
    pick_t p = {i >= s->nb, i >= s->nb ? i - s->nb : i};
    return p;
}

/* Ticks behind the quote (larger = staler). */
static inline int64_t behind(const gsym_t *s, uint32_t cap, pick_t p)
{
    uint32_t price = slot(s, cap, p.sell, p.j)->price;
    return p.sell ? (int64_t)price - s->ask : (int64_t)s->bid - price;
}

/* The staler of two random live orders (the book must not be empty). */
static inline pick_t pick_stale(const gsym_t *s, uint32_t cap, uint64_t r)
{
    uint32_t n = s->nb + s->ns;
    pick_t a = pick_at(s, below24(r, n));
    pick_t b = pick_at(s, below24(r >> 24, n));
    return behind(s, cap, b) > behind(s, cap, a) ? b : a;
}

/* ---- the model ------------------------------------------------------------------------------- */

static HINT_COLD void record_factors(gen_t *g)
{
    while (g->mstep[g->fmin_done] <= g->step) {
        double *f = g->fmin + (size_t)g->fmin_done * (1 + g->nsec);
        f[0] = g->mcum;
        memcpy(f + 1, g->scum, g->nsec * sizeof(double));
        g->fmin_done++;
    }
}

static void advance_step(gen_t *g)
{
    g->step++;
    g->next_step_ts += g->cfg.step_ns;
    g->mcum += zig_normal(&g->zig, &g->fac);
    for (uint32_t k = 0; k < g->nsec; k++)
        g->scum[k] += zig_normal(&g->zig, &g->fac);
    if (unlikely(g->floor_on && g->mstep[g->fmin_done] <= g->step))
        record_factors(g);
}

/* The symbol's latent ecum at the minute ends up to step sb, from its last recorded point
 * (sa, ea) to (sb, eb): a Brownian bridge between the two draws the data used (the same law as
 * one draw per step), or, with forward set, a random walk past the last touch. */
static HINT_COLD void fill_minutes(gen_t *g, gsym_t *s, uint32_t sa, double ea, uint32_t sb,
                                   double eb, bool forward)
{
    double *e = g->emin + (size_t)(s - g->sym) * (g->nmin + 1);
    double *q = g->qmin ? g->qmin + (size_t)(s - g->sym) * (g->nmin + 1) : NULL;
    double cs = sa, ce = ea;
    while (s->min_done <= g->nmin && g->mstep[s->min_done] <= sb) {
        if (q) /* the quote has not moved since the last touch (sa): it stands at minute ends */
            q[s->min_done] = log(((double)s->bid + (double)s->ask) * (0.5 / EV_PRICE_SCALE));
        double t = g->mstep[s->min_done], v;
        if (t <= cs)
            v = ce;
        else if (forward)
            v = ce + sqrt(t - cs) * zig_normal(&g->zig, &g->bridge);
        else if (t >= sb)
            v = eb;
        else
            v = ce + (t - cs) / (sb - cs) * (eb - ce) +
                sqrt((t - cs) * (sb - t) / (sb - cs)) * zig_normal(&g->zig, &g->bridge);
        e[s->min_done++] = v;
        cs = t;
        ce = v;
    }
}

static void quote_from_log(gsym_t *s, double x)
{
    double ticks = exp_fast(x) * (1.0 / GEN_PRICE_TICK);
    if (!(ticks >= 1.0)) /* also NaN */
        ticks = 1.0;
    if (ticks > 20000000.0) /* $200,000: far beyond any path the model draws */
        ticks = 20000000.0;
    s->bid = (uint32_t)ticks * GEN_PRICE_TICK; /* truncation = floor for ticks >= 1 */
    s->ask = s->bid + GEN_PRICE_TICK;
}

static inline void refresh(gen_t *g, gsym_t *s)
{
    if (s->last_step == g->step)
        return;
    uint32_t gap = g->step - s->last_step;
    double z = zig_normal(&g->zig, &g->flow);
    if (gap != 1)
        z *= gap < 64 ? g->sqrt_small[gap] : sqrt((double)gap);
    if (unlikely(g->floor_on && g->mstep[s->min_done] <= g->step))
        fill_minutes(g, s, s->last_step, s->ecum, g->step, s->ecum + z, false);
    s->ecum += z;
    s->last_step = g->step;
    quote_from_log(s, s->logp0 + s->b * g->mcum + s->gm * g->scum[s->sector] + s->sg * s->ecum);
}

/* Shares of a new order or a trade, from bits 0..26 of r: 1 in 16 an odd lot (1-99 shares),
 * else 1-8 round lots, 1 in 16 of them times 10. */
static inline uint32_t draw_shares(uint64_t r)
{
    if ((r & 15) == 0)
        return 1 + (uint32_t)((((r >> 11) & 0xffff) * 99) >> 16);
    uint32_t lots = 1 + (uint32_t)((r >> 4) & 7);
    if (((r >> 7) & 15) == 0)
        lots *= 10;
    return lots * 100;
}

/* Ticks behind the quote for a new order: the sum of two geometric(1/2) draws (P(0) = 1/4,
 * P(1) = 1/4, P(2) = 3/16, ...: mean 2), 1 in 8 spread evenly over 0..31 ticks. */
static inline uint32_t draw_depth(uint64_t r)
{
    if ((r & 7) == 0)
        return (uint32_t)((r >> 3) & 31);
    return (uint32_t)(__builtin_ctzll((r >> 3) | (1ull << 16)) +
                      __builtin_ctzll((r >> 20) | (1ull << 16)));
}

static inline uint32_t price_behind(const gsym_t *s, int sell, uint32_t depth)
{
    if (sell)
        return s->ask + depth * GEN_PRICE_TICK;
    uint32_t d = depth * GEN_PRICE_TICK;
    return s->bid > d ? s->bid - d : GEN_PRICE_TICK;
}

static void do_add(gen_t *g, gsym_t *s, uint16_t loc, uint64_t ts, uint64_t r)
{
    int sell = (int)(r & 1);
    uint32_t price = price_behind(s, sell, draw_depth(r >> 1));
    uint64_t r2 = rng_next(&g->flow);
    uint32_t shares = draw_shares(r2);
    uint64_t ref = ++g->ref;
    book_push(s, g->cap, sell, ref, price, shares);
    const char *mpid = ((r2 >> 48) & 0xffff) < g->f_thresh ? mpids[(r2 >> 40) & 7] : NULL;
    put_add(g, s, loc, ts, ref, sell ? 'S' : 'B', shares, price, mpid);
    uint32_t live = s->nb + s->ns;
    if (live > g->st->max_live_seen)
        g->st->max_live_seen = live;
}

static void do_delete(gen_t *g, gsym_t *s, uint16_t loc, uint64_t ts, pick_t p)
{
    put_delete(g, loc, ts, slot(s, g->cap, p.sell, p.j)->ref);
    book_remove(s, g->cap, p.sell, p.j);
}

/* E or C of order p: all of it, or part. */
static void do_exec(gen_t *g, gsym_t *s, uint16_t loc, uint64_t ts, pick_t p, uint64_t r,
                    bool with_price)
{
    gen_order_t *o = slot(s, g->cap, p.sell, p.j);
    uint32_t x = o->shares;
    if ((r & 7) >= 5 && x >= 2) /* 3 in 8 partial */
        x = 1 + below((uint32_t)(r >> 32), x - 1);
    uint64_t match = ++g->match;
    if (with_price)
        put_exec_price(g, loc, ts, o->ref, x, match, ((r >> 3) & (PRINTABLE_N - 1)) ? 'Y' : 'N',
                       o->price);
    else
        put_exec(g, loc, ts, o->ref, x, match);
    if (x == o->shares)
        book_remove(s, g->cap, p.sell, p.j);
    else
        o->shares -= x;
}

/* One order-flow message for a touched symbol. The action comes from bits 52..63 of one draw,
 * its details from bits 0..51. */
static inline void step_symbol(gen_t *g, gsym_t *s, uint16_t loc, uint64_t ts)
{
    uint32_t cap = g->cap;
    uint64_t r = rng_next(&g->flow);
    unsigned act = g->acttab[r >> (64 - ACT_BITS)];
    /* The mid moved through a resting order: it trades or is pulled first, and a later drawn
     * E or D gives way to another action, so the mix stays what was asked for. */
    int crossed = s->nb && s->o[0].price > s->bid         ? 0
                  : s->ns && s->o[cap - 1].price < s->ask ? 1
                                                          : -1;
    if (unlikely(crossed >= 0)) {
        g->st->swept++;
        pick_t p = {crossed, 0};
        if ((uint32_t)r < g->sweep_thresh) {
            do_exec(g, s, loc, ts, p, 0, false);
            g->credit_e++;
        } else {
            do_delete(g, s, loc, ts, p);
            g->credit_d++;
        }
        return;
    }
    if ((act == ACT_DEL && g->credit_d) || (act == ACT_EXEC && g->credit_e)) {
        if (act == ACT_DEL)
            g->credit_d--;
        else
            g->credit_e--;
        act = g->acttab_alt[rng_next(&g->flow) & ((1u << ACT_BITS) - 1)];
    }
    uint32_t n = s->nb + s->ns;
    if (act == ACT_TRADE) {
        uint32_t price = (r & 3) == 0   ? s->bid
                         : (r & 3) == 1 ? s->ask
                                        : s->bid + GEN_PRICE_TICK / 2;
        put_trade(g, s, loc, ts, (r >> 2) & 1 ? 'S' : 'B', draw_shares(r >> 8), price, ++g->match);
        return;
    }
    if (act == ACT_ADD) {
        if (likely(n < cap)) {
            do_add(g, s, loc, ts, r);
            return;
        }
        g->st->add_on_full++;
        act = ACT_DEL;
    } else if (unlikely(n == 0)) {
        g->st->empty_book++;
        do_add(g, s, loc, ts, r);
        return;
    }
    switch (act) {
    case ACT_DEL:
        do_delete(g, s, loc, ts, pick_stale(s, cap, r));
        break;
    case ACT_REPL: {
        pick_t p = pick_stale(s, cap, r);
        uint64_t r2 = rng_next(&g->flow);
        uint64_t old = slot(s, cap, p.sell, p.j)->ref;
        gen_order_t x = {++g->ref, price_behind(s, p.sell, draw_depth(r2)), draw_shares(r2 >> 37)};
        put_replace(g, loc, ts, old, x.ref, x.shares, x.price);
        heap_place(s, cap, p.sell, *side_n(s, p.sell), p.j, x);
        break;
    }
    case ACT_CANCEL: {
        pick_t p = pick_at(s, below24(r, n));
        gen_order_t *o = slot(s, cap, p.sell, p.j);
        if (o->shares < 2) {
            do_delete(g, s, loc, ts, p);
            break;
        }
        uint32_t x = 1 + below24(r >> 24, o->shares - 1);
        put_cancel(g, loc, ts, o->ref, x);
        o->shares -= x;
        break;
    }
    case ACT_EXEC:
    case ACT_EXECP: {
        int sell = (int)((r >> 48) & 1);
        if (*side_n(s, sell) == 0)
            sell = !sell;
        pick_t p = {sell, 0};
        do_exec(g, s, loc, ts, p, rng_next(&g->flow), act == ACT_EXECP);
        break;
    }
    default:
        break;
    }
}

/* ---- set-up -----------------------------------------------------------------------------------
 */

void gen_cfg_default(gen_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->messages = 1000000;
    cfg->symbols = 500;
    cfg->sectors = 10;
    cfg->seed = 1;
    cfg->truth = true;
    cfg->max_live = 128;
    cfg->step_ns = 0;
    cfg->f_share = 0.03;
    cfg->mix = (gen_mix_t){.add = 45,
                           .del = 40,
                           .replace = 6,
                           .cancel = 3,
                           .exec = 4,
                           .exec_price = 0.5,
                           .trade = 1.5};
    cfg->buf_size = 1u << 20;
}

uint64_t gen_auto_step(uint64_t messages, uint32_t symbols)
{
    static const unsigned secs[] = {10, 6, 5, 4, 3, 2};
    uint64_t flow = messages > gen_min_messages(symbols) ? messages - gen_min_messages(symbols) : 1;
    double raw = 4.0 * symbols * (double)(SESSION_NS / 1000000000ull) / (double)flow;
    for (unsigned i = 0; i < sizeof secs / sizeof secs[0]; i++)
        if (raw >= secs[i])
            return secs[i] * 1000000000ull;
    return 1000000000ull;
}

int gen_truth_path(char *dst, size_t cap, const char *out)
{
    int n = snprintf(dst, cap, "%s.truth.csv", out);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int check_cfg(const gen_cfg_t *c, char *err, size_t errlen)
{
    if (c->symbols < 1 || c->symbols > GEN_MAX_SYMBOLS) {
        err_set(err, errlen, "symbols must be 1..%u, got %u", GEN_MAX_SYMBOLS, c->symbols);
        return -EINVAL;
    }
    if (c->sectors < 1 || c->sectors > c->symbols) {
        err_set(err, errlen, "sectors must be 1..symbols (%u), got %u", c->symbols, c->sectors);
        return -EINVAL;
    }
    if (c->messages < gen_min_messages(c->symbols)) {
        err_set(err, errlen,
                "messages must be at least %llu for %u symbols (6 system events, R and H per "
                "symbol), got %llu",
                (unsigned long long)gen_min_messages(c->symbols), c->symbols,
                (unsigned long long)c->messages);
        return -EINVAL;
    }
    if (c->messages > (1ull << 53)) {
        err_set(err, errlen, "messages must be at most 2^53");
        return -EINVAL;
    }
    if (c->max_live < 1 || c->max_live > LIVE_MAX) {
        err_set(err, errlen, "max_live must be 1..%u, got %u", LIVE_MAX, c->max_live);
        return -EINVAL;
    }
    if (c->step_ns != 0 && (c->step_ns < STEP_MIN_NS || c->step_ns > SESSION_NS)) {
        err_set(err, errlen, "factor step must be 1 ms..6.5 h, got %llu ns",
                (unsigned long long)c->step_ns);
        return -EINVAL;
    }
    if (!(c->f_share >= 0 && c->f_share <= 1)) {
        err_set(err, errlen, "f_share must be in [0, 1]");
        return -EINVAL;
    }
    const double *w = &c->mix.add;
    double sum = 0;
    for (int i = 0; i < ACT_COUNT; i++) {
        if (!(w[i] >= 0 && w[i] <= 1e9)) {
            err_set(err, errlen, "mix weights must be finite and >= 0");
            return -EINVAL;
        }
        sum += w[i];
    }
    if (!(sum > 0)) {
        err_set(err, errlen, "mix weights must not all be 0");
        return -EINVAL;
    }
    if (c->buf_size < 4096 || c->buf_size > (1u << 30)) {
        err_set(err, errlen, "buffer size must be 4 KiB..1 GiB, got %zu", c->buf_size);
        return -EINVAL;
    }
    if (c->out != NULL && strlen(c->out) + sizeof ".truth.csv" > PATH_MAX) {
        err_set(err, errlen, "output path too long");
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Unique 3-4 letter names; seen is a bitmap over base-27 codes of up to 4 letters. */
static void draw_names(gen_t *g, rng_t *r, uint8_t *seen)
{
    for (uint32_t i = 0; i < g->nsym; i++) {
        char name[5];
        unsigned len, code;
        do {
            len = (rng_next(r) & 3) == 0 ? 3 : 4;
            code = 0;
            for (unsigned c = 0; c < len; c++) {
                unsigned l = below((uint32_t)(rng_next(r) >> 32), 26);
                name[c] = (char)('A' + l);
                code = code * 27 + l + 1;
            }
        } while (seen[code >> 3] & (1u << (code & 7)));
        seen[code >> 3] |= (uint8_t)(1u << (code & 7));
        memset(g->sym[i].stock, ' ', 8);
        memcpy(g->sym[i].stock, name, len);
        memcpy(g->info[i].name, name, len);
        g->info[i].name[len] = '\0';
    }
}

static void draw_model(gen_t *g)
{
    rng_t r;
    rng_seed(&r, g->cfg.seed, 1);
    /* Sectors: i mod K, shuffled, so every sector has members. */
    for (uint32_t i = 0; i < g->nsym; i++)
        g->info[i].sector = i % g->nsec;
    for (uint32_t i = g->nsym - 1; i > 0; i--) {
        uint32_t j = below((uint32_t)(rng_next(&r) >> 32), i + 1);
        uint32_t t = g->info[i].sector;
        g->info[i].sector = g->info[j].sector;
        g->info[j].sector = t;
    }
    double scale = sqrt((double)g->cfg.step_ns / (double)SESSION_NS);
    for (uint32_t i = 0; i < g->nsym; i++) {
        gen_symbol_t *in = &g->info[i];
        gsym_t *s = &g->sym[i];
        double vol = 0.015 + 0.015 * rng_unit(&r);
        double fm = 0.30 + 0.10 * rng_unit(&r);
        double fs = 0.20 + 0.10 * rng_unit(&r);
        in->beta = vol * sqrt(fm);
        in->gamma = vol * sqrt(fs);
        in->sigma = vol * sqrt(1.0 - fm - fs);
        double p0 = exp(log(20.0) + (log(300.0) - log(20.0)) * rng_unit(&r));
        in->price0 = floor(p0 * 100.0 + 0.5) / 100.0;
        s->sector = in->sector;
        s->b = in->beta * scale;
        s->gm = in->gamma * scale;
        s->sg = in->sigma * scale;
        s->logp0 = log(in->price0 * EV_PRICE_SCALE);
        s->o = g->orders + (size_t)i * g->cap;
        quote_from_log(s, s->logp0);
    }
}

/* Activity: lognormal weights; each symbol gets at least one slot of the pick table. */
static void build_symtab(gen_t *g, double *w)
{
    rng_t r;
    rng_seed(&r, g->cfg.seed, 4);
    uint32_t size = 1u << g->symbits;
    double sum = 0;
    for (uint32_t i = 0; i < g->nsym; i++) {
        w[i] = exp(0.5 * zig_normal(&g->zig, &r));
        sum += w[i];
    }
    uint32_t spare = size - g->nsym, t = 0;
    double acc = 0;
    for (uint32_t i = 0; i < g->nsym; i++) {
        acc += w[i];
        uint32_t upto = g->nsym - 1 == i ? size : i + 1 + (uint32_t)(acc / sum * spare);
        if (upto > size)
            upto = size;
        do
            g->symtab[t++] = (uint16_t)i;
        while (t < upto);
    }
}

static void fill_acttab(uint8_t *tab, const double *w)
{
    double sum = 0;
    for (int i = 0; i < ACT_COUNT; i++)
        sum += w[i];
    if (!(sum > 0)) {
        memset(tab, ACT_ADD, 1u << ACT_BITS);
        return;
    }
    unsigned a = 0;
    double acc = w[0];
    for (unsigned t = 0; t < (1u << ACT_BITS); t++) {
        double x = (t + 0.5) / (1u << ACT_BITS) * sum;
        while (a + 1 < ACT_COUNT && (x >= acc || w[a] == 0))
            acc += w[++a];
        tab[t] = (uint8_t)a;
    }
}

static void build_acttab(gen_t *g)
{
    const gen_mix_t *m = &g->cfg.mix;
    double w[ACT_COUNT] = {m->add, m->del, m->replace, m->cancel, m->exec, m->exec_price, m->trade};
    fill_acttab(g->acttab, w);
    w[ACT_DEL] = w[ACT_EXEC] = 0;
    fill_acttab(g->acttab_alt, w);
    g->f_thresh = (uint32_t)(g->cfg.f_share * 65536.0);
    double pe = m->exec + m->del > 0 ? m->exec / (m->exec + m->del) : 0;
    g->sweep_thresh = pe >= 1 ? UINT32_MAX : (uint32_t)(pe * 4294967296.0);
}

/* Append to the buffer, writing it to fd when nearly full. */
static int truth_put(gen_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int truth_put(gen_t *g, const char *fmt, ...)
{
    if (g->cap_buf - g->pos < TRUTH_MARGIN) {
        int rc = fdio_write_all(g->truth_fd, g->buf, g->pos, NULL);
        if (rc)
            return rc;
        g->pos = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)g->buf + g->pos, g->cap_buf - g->pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= g->cap_buf - g->pos)
        return -EOVERFLOW;
    g->pos += (size_t)n;
    return 0;
}

static int write_truth(gen_t *g, uint64_t *bytes)
{
    const gen_cfg_t *c = &g->cfg;
    bool matrix = g->nsym <= GEN_TRUTH_MATRIX_MAX;
    int rc = 0;
    g->pos = 0;
    rc = truth_put(g, "# tickcore gen truth for %s\n", c->out);
    if (!rc)
        rc = truth_put(g,
                       "# seed=%llu symbols=%u sectors=%u messages=%llu step_ns=%llu "
                       "session=09:30-16:00\n",
                       (unsigned long long)c->seed, g->nsym, g->nsec,
                       (unsigned long long)c->messages, (unsigned long long)c->step_ns);
    if (!rc)
        rc = truth_put(g, "# model: per step dt, dlog(mid_i) = sqrt(dt/T) * (beta_i*m + "
                          "gamma_i*s[sector_i] + sigma_i*eps_i), m, s_k, eps_i iid N(0,1), "
                          "T = 23400 s\n");
    if (!rc)
        rc = truth_put(g, "# cov_ij = beta_i*beta_j + [sector_i==sector_j]*gamma_i*gamma_j + "
                          "[i==j]*sigma_i^2; corr_ij = cov_ij/sqrt(cov_ii*cov_jj)\n");
    if (!rc && !matrix)
        rc = truth_put(g, "# correlation columns omitted: more than %u symbols\n",
                       GEN_TRUTH_MATRIX_MAX);
    if (!rc)
        rc = truth_put(g, "symbol,locate,sector,beta,gamma,sigma");
    for (uint32_t i = 0; matrix && !rc && i < g->nsym; i++)
        rc = truth_put(g, ",%s", g->info[i].name);
    if (!rc)
        rc = truth_put(g, "\n");
    for (uint32_t i = 0; !rc && i < g->nsym; i++) {
        const gen_symbol_t *s = &g->info[i];
        rc = truth_put(g, "%s,%u,%u,%.17g,%.17g,%.17g", s->name, i + 1, s->sector, s->beta,
                       s->gamma, s->sigma);
        for (uint32_t j = 0; matrix && !rc && j < g->nsym; j++) {
            if (i == j)
                rc = truth_put(g, ",1");
            else
                rc =
                    truth_put(g, ",%.12g", gen_truth_corr(g, (uint16_t)(i + 1), (uint16_t)(j + 1)));
        }
        if (!rc)
            rc = truth_put(g, "\n");
    }
    if (!rc)
        rc = fdio_write_all(g->truth_fd, g->buf, g->pos, NULL);
    if (rc == 0) {
        off_t end = lseek(g->truth_fd, 0, SEEK_CUR);
        *bytes = end > 0 ? (uint64_t)end : 0;
    }
    g->pos = 0;
    return rc;
}

const gen_symbol_t *gen_symbol(const gen_t *g, uint16_t locate)
{
    if (locate < 1 || locate > g->nsym)
        return NULL;
    return &g->info[locate - 1];
}

double gen_truth_corr(const gen_t *g, uint16_t a, uint16_t b)
{
    if (a < 1 || a > g->nsym || b < 1 || b > g->nsym)
        return NAN;
    if (a == b)
        return 1.0;
    const gen_symbol_t *x = &g->info[a - 1], *y = &g->info[b - 1];
    double vx = x->beta * x->beta + x->gamma * x->gamma + x->sigma * x->sigma;
    double vy = y->beta * y->beta + y->gamma * y->gamma + y->sigma * y->sigma;
    double c = x->beta * y->beta + (x->sector == y->sector ? x->gamma * y->gamma : 0.0);
    return c / sqrt(vx * vy);
}

void gen_destroy(gen_t *g)
{
    if (g == NULL)
        return;
    if (g->fd >= 0)
        close(g->fd);
    if (g->truth_fd >= 0)
        close(g->truth_fd);
    mem_free(MEM_TAG_INGEST, g->sym, sizeof(gsym_t) * g->nsym);
    mem_free(MEM_TAG_INGEST, g->info, sizeof(gen_symbol_t) * g->nsym);
    mem_free(MEM_TAG_INGEST, g->orders, sizeof(gen_order_t) * g->nsym * g->cap);
    mem_free(MEM_TAG_INGEST, g->scum, sizeof(double) * g->nsec);
    mem_free(MEM_TAG_INGEST, g->symtab, sizeof(uint16_t) << g->symbits);
    mem_free(MEM_TAG_INGEST, g->buf, g->cap_buf);
    mem_free(MEM_TAG_INGEST, g->z, sizeof *g->z);
    mem_free(MEM_TAG_INGEST, g->lvlbuf, ISAL_DEF_LVL1_DEFAULT);
    mem_free(MEM_TAG_INGEST, g->zbuf, g->zcap);
    mem_free(MEM_TAG_INGEST, g->mstep, sizeof(uint32_t) * (g->nmin + 2));
    mem_free(MEM_TAG_INGEST, g->fmin, sizeof(double) * (g->nmin + 1) * (1 + g->nsec));
    mem_free(MEM_TAG_INGEST, g->emin, sizeof(double) * (g->nmin + 1) * g->nsym);
    mem_free(MEM_TAG_INGEST, g->qmin, sizeof(double) * (g->nmin + 1) * g->nsym);
    mem_free(MEM_TAG_INGEST, g, sizeof *g);
}

static int open_out(const char *path, int *fd, char *err, size_t errlen)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0) {
        int e = errno;
        err_set(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int gen_create(gen_t **out, const gen_cfg_t *cfg, char *err, size_t errlen)
{
    *out = NULL;
    int rc = check_cfg(cfg, err, errlen);
    if (rc)
        return rc;
    gen_t *g = mem_zalloc(MEM_TAG_INGEST, sizeof *g);
    if (g == NULL) {
        err_set(err, errlen, "out of memory");
        return -ENOMEM;
    }
    g->cfg = *cfg;
    if (g->cfg.step_ns == 0)
        g->cfg.step_ns = gen_auto_step(cfg->messages, cfg->symbols);
    g->fd = g->truth_fd = -1;
    g->nsym = cfg->symbols;
    g->nsec = cfg->sectors;
    g->cap = cfg->max_live;
    g->symbits = 10;
    while ((1u << g->symbits) < 16 * g->nsym)
        g->symbits++;
    g->cap_buf = cfg->buf_size;
    g->sym = mem_zalloc(MEM_TAG_INGEST, sizeof(gsym_t) * g->nsym);
    g->info = mem_zalloc(MEM_TAG_INGEST, sizeof(gen_symbol_t) * g->nsym);
    g->orders = mem_alloc_prefault(MEM_TAG_INGEST, sizeof(gen_order_t) * g->nsym * g->cap, 64);
    g->scum = mem_zalloc(MEM_TAG_INGEST, sizeof(double) * g->nsec);
    g->symtab = mem_alloc(MEM_TAG_INGEST, sizeof(uint16_t) << g->symbits);
    g->buf = mem_alloc_prefault(MEM_TAG_INGEST, g->cap_buf, 64);
    size_t seen_size = (27 * 27 * 27 * 27) / 8 + 1;
    uint8_t *seen = mem_zalloc(MEM_TAG_INGEST, seen_size);
    double *w = mem_alloc(MEM_TAG_INGEST, sizeof(double) * g->nsym);
    if (cfg->gzip && cfg->out) {
        g->zcap = GEN_GZ_ZCAP;
        g->z = mem_zalloc(MEM_TAG_INGEST, sizeof *g->z);
        g->lvlbuf = mem_alloc(MEM_TAG_INGEST, ISAL_DEF_LVL1_DEFAULT);
        g->zbuf = mem_alloc_prefault(MEM_TAG_INGEST, g->zcap, 64);
    }
    g->floor_on = cfg->out && cfg->truth && g->nsym <= GEN_TRUTH_MATRIX_MAX;
    if (g->floor_on) {
        g->nmin = (uint32_t)(SESSION_NS / (60 * 1000000000ull));
        g->mstep = mem_alloc(MEM_TAG_INGEST, sizeof(uint32_t) * (g->nmin + 2));
        g->fmin = mem_zalloc(MEM_TAG_INGEST, sizeof(double) * (g->nmin + 1) * (1 + g->nsec));
        g->emin = mem_zalloc(MEM_TAG_INGEST, sizeof(double) * (g->nmin + 1) * g->nsym);
        if (cfg->latent)
            g->qmin = mem_zalloc(MEM_TAG_INGEST, sizeof(double) * (g->nmin + 1) * g->nsym);
    }
    if (!g->sym || !g->info || !g->orders || !g->scum || !g->symtab || !g->buf || !seen || !w ||
        (g->zcap && (!g->z || !g->lvlbuf || !g->zbuf)) ||
        (g->floor_on && (!g->mstep || !g->fmin || !g->emin || (cfg->latent && !g->qmin)))) {
        err_set(err, errlen, "out of memory (%u symbols x %u live orders)", g->nsym, g->cap);
        rc = -ENOMEM;
        goto out;
    }
    {
        rng_t r; /* names have their own stream */
        rng_seed(&r, cfg->seed, 2);
        draw_names(g, &r, seen);
    }
    zig_init(&g->zig);
    for (int q = 0; q < 64; q++)
        g->sqrt_small[q] = sqrt((double)q);
    draw_model(g);
    build_symtab(g, w);
    build_acttab(g);
    rng_seed(&g->fac, cfg->seed, 3);
    rng_seed(&g->flow, cfg->seed, 5);
    rng_seed(&g->slot, cfg->seed, 6);
    rng_seed(&g->bridge, cfg->seed, 7);
    if (g->floor_on) {
        for (uint32_t m = 0; m <= g->nmin; m++)
            g->mstep[m] = (uint32_t)((uint64_t)m * 60000000000ull / g->cfg.step_ns);
        g->mstep[g->nmin + 1] = UINT32_MAX;
        record_factors(g); /* minute 0 (and any other at step 0): all zero */
    }
    g->next_step_ts = GEN_SESSION_OPEN_NS + cfg->step_ns;
    if (g->z) {
        isal_deflate_init(g->z);
        g->z->level = 1;
        g->z->level_buf = g->lvlbuf;
        g->z->level_buf_size = ISAL_DEF_LVL1_DEFAULT;
        g->z->gzip_flag = IGZIP_GZIP_NO_HDR; /* gz_member_begin writes the header */
        g->z->flush = NO_FLUSH;
    }
    if (cfg->out) {
        rc = open_out(cfg->out, &g->fd, err, errlen);
        if (rc)
            goto out;
        if (cfg->truth) {
            rc = gen_truth_path(g->path, sizeof g->path, cfg->out);
            if (rc == 0)
                rc = open_out(g->path, &g->truth_fd, err, errlen);
            if (rc)
                goto out;
            uint64_t tb = 0;
            rc = write_truth(g, &tb);
            if (rc) {
                err_set(err, errlen, "cannot write %s: %s", g->path, strerror(-rc));
                goto out;
            }
            close(g->truth_fd);
            g->truth_fd = -1;
            g->truth_bytes = tb;
        }
    }
out:
    mem_free(MEM_TAG_INGEST, seen, seen_size);
    mem_free(MEM_TAG_INGEST, w, sizeof(double) * g->nsym);
    if (rc) {
        gen_destroy(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* FILE.latent.csv (gen.h): rows of g->emin, which hold the latent log mid (less the open's) at
 * the minute ends, and of g->qmin. 0 or -errno (a message in g->st->error). */
static int write_latent(gen_t *g)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s.latent.csv", g->cfg.out);
    int rc = open_out(path, &g->truth_fd, g->st->error, sizeof g->st->error);
    uint32_t W = g->nmin + 1;
    g->pos = 0;
    if (!rc)
        rc = truth_put(g,
                       "# tickcore gen latent path for %s: log mid in dollars at minute ends "
                       "0..%u (latent: the floor's path; quote: the generator's quote)\n",
                       g->cfg.out, g->nmin);
    for (uint32_t i = 0; !rc && i < g->nsym; i++) {
        const gsym_t *s = &g->sym[i];
        double base = s->logp0 - log((double)EV_PRICE_SCALE);
        for (int kind = 0; !rc && kind < 2; kind++) {
            const double *x = (kind ? g->qmin : g->emin) + (size_t)i * W;
            rc = truth_put(g, "%s,%s", g->info[i].name, kind ? "quote" : "latent");
            for (uint32_t m = 0; !rc && m < W; m++)
                rc = truth_put(g, ",%.17g", kind ? x[m] : base + x[m]);
            if (!rc)
                rc = truth_put(g, "\n");
        }
    }
    if (!rc)
        rc = fdio_write_all(g->truth_fd, g->buf, g->pos, NULL);
    g->pos = 0;
    if (rc && !g->st->error[0])
        snprintf(g->st->error, sizeof g->st->error, "cannot write %.120s: %s", path, strerror(-rc));
    if (g->truth_fd >= 0) {
        close(g->truth_fd);
        g->truth_fd = -1;
    }
    return rc;
}

/* The latent path to the close (the steps no message reached, the minutes after each symbol's
 * last touch), then the sample correlation of the latent one-minute returns: the statistics in
 * g->st and the matrix in FILE.floor.csv (the truth file's format). Uses the order buffer for
 * formatting (the data is flushed). */
static void finish_floor(gen_t *g)
{
    gen_stats_t *st = g->st;
    while (g->fmin_done <= g->nmin)
        advance_step(g);
    uint32_t T = g->nmin, W = T + 1, send = g->mstep[T];
    for (uint32_t i = 0; i < g->nsym; i++) {
        gsym_t *s = &g->sym[i];
        fill_minutes(g, s, s->last_step, s->ecum, send, 0.0, true);
        /* row i: latent log mid (less its open) at the minute ends, then the returns, centred;
         * the last slot keeps 1 / sqrt(sum of squares) */
        double *e = g->emin + (size_t)i * W;
        for (uint32_t m = 0; m <= T; m++) {
            const double *f = g->fmin + (size_t)m * (1 + g->nsec);
            e[m] = s->b * f[0] + s->gm * f[1 + s->sector] + s->sg * e[m];
        }
    }
    if (g->qmin && write_latent(g) != 0) {
        g->werr = -EIO;
        return;
    }
    for (uint32_t i = 0; i < g->nsym; i++) {
        double *e = g->emin + (size_t)i * W;
        double mean = 0, ss = 0;
        for (uint32_t m = 0; m < T; m++) {
            e[m] = e[m + 1] - e[m];
            mean += e[m];
        }
        mean /= T;
        for (uint32_t m = 0; m < T; m++) {
            e[m] -= mean;
            ss += e[m] * e[m];
        }
        e[T] = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s.floor.csv", g->cfg.out);
    g->st->error[0] = '\0';
    int rc = open_out(path, &g->truth_fd, st->error, sizeof st->error);
    double sum = 0, bias = 0, mx = 0;
    uint64_t pairs = 0;
    g->pos = 0;
    if (!rc)
        rc = truth_put(g,
                       "# tickcore gen floor for %s: the sample correlation of the latent "
                       "one-minute log-mid returns (%u minutes, the model's path before any "
                       "quote, tick or staleness), in the truth file's format\n",
                       g->cfg.out, T);
    if (!rc)
        rc = truth_put(g, "symbol,locate,sector,beta,gamma,sigma");
    for (uint32_t i = 0; !rc && i < g->nsym; i++)
        rc = truth_put(g, ",%s", g->info[i].name);
    if (!rc)
        rc = truth_put(g, "\n");
    for (uint32_t i = 0; !rc && i < g->nsym; i++) {
        const gen_symbol_t *in = &g->info[i];
        const double *a = g->emin + (size_t)i * W;
        rc = truth_put(g, "%s,%u,%u,%.17g,%.17g,%.17g", in->name, i + 1, in->sector, in->beta,
                       in->gamma, in->sigma);
        for (uint32_t j = 0; !rc && j < g->nsym; j++) {
            if (i == j) {
                rc = truth_put(g, ",1");
                continue;
            }
            const double *b = g->emin + (size_t)j * W;
            double d = 0;
            for (uint32_t m = 0; m < T; m++)
                d += a[m] * b[m];
            double r = d * a[T] * b[T];
            rc = truth_put(g, ",%.12g", r);
            if (j > i) {
                double t = gen_truth_corr(g, (uint16_t)(i + 1), (uint16_t)(j + 1));
                double err = fabs(r - t);
                sum += err;
                bias += r - t;
                mx = err > mx ? err : mx;
                pairs++;
            }
        }
        if (!rc)
            rc = truth_put(g, "\n");
    }
    if (!rc)
        rc = fdio_write_all(g->truth_fd, g->buf, g->pos, NULL);
    g->pos = 0;
    if (rc && !st->error[0])
        snprintf(st->error, sizeof st->error, "cannot write %.120s: %s", path, strerror(-rc));
    if (rc)
        g->werr = rc;
    if (g->truth_fd >= 0) {
        close(g->truth_fd);
        g->truth_fd = -1;
    }
    st->floor_minutes = T;
    st->floor_mae = pairs ? sum / (double)pairs : NAN;
    st->floor_bias = pairs ? bias / (double)pairs : NAN;
    st->floor_max = mx;
}

static inline void prefetch_symbol(const gen_t *g, uint32_t i)
{
    const gsym_t *s = &g->sym[i];
    const gen_order_t *o = g->orders + (size_t)i * g->cap;
    prefetch_write(s);
    prefetch_write((const char *)s + sizeof *s - 1);
    prefetch_write(o); /* the top levels of both heaps */
    prefetch_write(o + 4);
    prefetch_write(o + g->cap - 1);
    prefetch_write(o + g->cap - 5);
}

int gen_generate(gen_t *g, gen_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (g->generated) {
        snprintf(st->error, sizeof st->error, "gen_generate: already called for this generator");
        return -EINVAL;
    }
    g->generated = true;
    g->st = st;
    st->truth_bytes = g->truth_bytes;
    const uint64_t t0 = clock_mono_ns();
    const uint64_t hms = 1000000000ull;
    uint32_t n = g->nsym;

    /* Before the open: start of messages, the directory, trading actions, start of system hours,
     * start of market hours. */
    put_system(g, 3 * 3600 * hms + 5 * 60 * hms, 'O');
    for (uint32_t i = 0; i < n; i++) {
        static const uint8_t cat[4] = {'Q', 'Q', 'G', 'S'};
        put_directory(g, (uint16_t)(i + 1), 3 * 3600 * hms + 6 * 60 * hms + i * 10000ull,
                      cat[i & 3], g->info[i].price0 >= 3.0 ? '1' : '2');
    }
    for (uint32_t i = 0; i < n; i++)
        put_trading_action(g, (uint16_t)(i + 1), 3 * 3600 * hms + 30 * 60 * hms + i * 10000ull);
    put_system(g, 4 * 3600 * hms, 'S');
    put_system(g, GEN_SESSION_OPEN_NS, 'Q');

    /* The session. */
    uint64_t flow = g->cfg.messages - gen_min_messages(n);
    double spacing = (double)SESSION_NS / (double)(flow ? flow : 1);
    unsigned shift = 64 - g->symbits;
    /* Order flow comes in bursts of 1-4 messages of one symbol (mean 2.5; real feeds are
     * bursty too). Burst draws (symbol, length, time jitter) come from their own stream, PREFETCH
     * bursts ahead, so the symbol's state and the roots of its book are in cache in time. */
    enum { PREFETCH = 4 };
    uint64_t ahead[PREFETCH];
    for (int a = 0; a < PREFETCH; a++) {
        ahead[a] = rng_next(&g->slot);
        prefetch_symbol(g, g->symtab[ahead[a] >> shift]);
    }
    uint64_t k = 0;
    for (unsigned b = 0; k < flow && g->werr == 0; b = (b + 1) % PREFETCH) {
        uint64_t r = ahead[b];
        uint64_t rn = rng_next(&g->slot);
        ahead[b] = rn;
        prefetch_symbol(g, g->symtab[rn >> shift]);
        uint32_t i = g->symtab[r >> shift];
        gsym_t *s = &g->sym[i];
        unsigned burst = 1 + (unsigned)((r >> 32) & 3);
        double u = (double)(uint32_t)r * 0x1p-32;
        for (unsigned m = 0; m < burst && k < flow; m++, k++) {
            /* Signed conversions: one instruction each (k < 2^53, the product < 2^45). */
            uint64_t ts =
                GEN_SESSION_OPEN_NS + (uint64_t)(int64_t)(((double)(int64_t)k + u) * spacing);
            if (unlikely(ts >= GEN_SESSION_CLOSE_NS))
                ts = GEN_SESSION_CLOSE_NS - 1;
            while (unlikely(ts >= g->next_step_ts))
                advance_step(g);
            refresh(g, s);
            step_symbol(g, s, (uint16_t)(i + 1), ts);
        }
    }

    /* After the close: end of market hours, end of system hours, end of messages. */
    put_system(g, GEN_SESSION_CLOSE_NS, 'M');
    put_system(g, 20 * 3600 * hms, 'E');
    put_system(g, 20 * 3600 * hms + 5 * 60 * hms, 'C');
    flush_buf(g, true);
    if (g->floor_on && g->werr == 0)
        finish_floor(g); /* after the flush: it formats in the order buffer */

    st->seconds = (double)(clock_mono_ns() - t0) * 1e-9;
    for (int t = 0; t < 256; t++) {
        st->messages += st->by_type[t];
        st->bytes += st->by_type[t] * (2 + itch_msg_len[t]);
    }
    for (uint32_t i = 0; i < n; i++)
        st->live_at_end += g->sym[i].nb + g->sym[i].ns;
    st->last_ref = g->ref;
    st->last_match = g->match;
    g->st = NULL;
    if (g->werr) {
        snprintf(st->error, sizeof st->error, "cannot write %s: %s", g->cfg.out,
                 strerror(-g->werr));
        return g->werr;
    }
    return 0;
}

int gen_run(const gen_cfg_t *cfg, gen_stats_t *st)
{
    gen_t *g;
    char err[sizeof st->error];
    int rc = gen_create(&g, cfg, err, sizeof err);
    if (rc) {
        memset(st, 0, sizeof *st);
        snprintf(st->error, sizeof st->error, "%s", err);
        return rc;
    }
    rc = gen_generate(g, st);
    gen_destroy(g);
    return rc;
}
