/*
 * gen: a synthetic NASDAQ TotalView-ITCH 5.0 market, written as a BinaryFILE (2-byte big-endian
 * length, then the message), plain or gzip, with the true correlation of its returns written
 * next to it. It has its own encoder (big-endian writes of the ITCH 5.0 layouts, checked
 * against NASDAQ's sample files); it never uses the decoder, so a decode of its output is an
 * independent check of both.
 *
 * The day: system event O (start of messages), the stock directory (R, locates 1..N, unique
 * 3-4 letter symbols), a trading action (H, state T) per symbol, system events S (start of
 * system hours) and Q (start of market hours, 09:30), then order flow up to 16:00, then M, E, C.
 * Order flow is a mix of adds (A, and F with an MPID), deletes (D), replaces (U), partial
 * cancels (X), executions (E, and C with its own price) and non-displayed trades (P, order
 * reference 0 as in NASDAQ's feed), in bursts of 1-4 messages of one symbol picked by lognormal
 * activity weights; each message draws its action from gen_mix_t. The generator keeps each
 * symbol's live orders in a preallocated array of max_live slots: E/C/X/D/U always name a live
 * order of that symbol and never take more shares than it has left; an action that needs a live
 * order on an empty book becomes an add, and an add on a full book becomes a delete of a stale
 * order (both counted in gen_stats_t). Order references and match numbers start at 1 and only
 * increase; timestamps (ns since midnight) never decrease; the book is never crossed (every
 * bid below every ask).
 *
 * Prices follow a factor model. Over each factor step of dt = step_ns the log mid of symbol i
 * moves by sqrt(dt/T) * (beta_i*m + gamma_i*s_k + sigma_i*eps_i), T the session (23,400 s),
 * k = sector(i), and m, s_k, eps_i i.i.d. N(0,1) drawn per step; so over any horizon made of
 * whole steps the returns have covariance proportional to
 *     cov_ij = beta_i*beta_j + [sector_i == sector_j]*gamma_i*gamma_j + [i == j]*sigma_i^2
 * (beta, gamma, sigma in units of one session's log return: daily vol 1.5-3%, of which the
 * market explains 30-40% of the variance and the sector 20-30%). Start prices are log-uniform
 * in $20-$300, tick $0.01. The mid sets a quote (bid = mid rounded down to the tick, ask = bid
 * + 1 tick); adds rest at it or a few ticks behind. When the mid has moved through a resting
 * order (a bid above the quote's bid, an ask below its ask), the symbol's next message removes
 * it first: an E (the order traded) or a D (it was pulled), in the mix's E:D ratio; a later
 * drawn E or D then gives way to another action, so the realised mix stays close to the one
 * asked for. E and C take the best order of a side. So trade prices follow the mid, and
 * 1-minute bar returns from trades correlate close to the truth (test_gen checks it).
 *
 * The truth file, FILE.truth.csv (the data path with ".truth.csv" appended):
 *     lines starting with '#': comments (seed, sizes, the model and formula above)
 *     symbol,locate,sector,beta,gamma,sigma,SYM1,SYM2,...,SYMN     (header)
 *     SYM1,1,3,0.0101...,0.0087...,0.0112...,1,0.4213...,...      (one row per symbol)
 * sector is 0..K-1; beta, gamma, sigma are printed with 17 significant digits (exact doubles);
 * the N columns after sigma hold row i of the true correlation matrix
 * corr_ij = cov_ij / sqrt(cov_ii * cov_jj) (12 significant digits, diagonal exactly 1,
 * symmetric bit for bit). Above GEN_TRUTH_MATRIX_MAX symbols the matrix columns are omitted
 * (a comment says so) and the correlation follows from the parameters.
 * python: pandas.read_csv(path, comment='#', index_col=0); C: skip '#' lines, split on ','.
 *
 * The floor file, FILE.floor.csv (written by gen_generate with the truth matrix, at most
 * GEN_TRUTH_MATRIX_MAX symbols), has the same format; its matrix is the sample correlation of the
 * latent one-minute returns of the day (T = 390): the model's log mid at each minute's end, before
 * any tick rounding, book or staleness. It is the error that even noise-free one-minute returns
 * leave against the true correlation (the "floor" an estimator is measured against; the
 * statistics are in gen_stats_t). A symbol's own noise is drawn only when it is touched, so its
 * path at the minute ends between two touches is a Brownian bridge between those two draws (and a
 * random walk after its last touch), drawn from a stream of its own: the data file is the same
 * bytes with or without the floor.
 *
 * The latent file, FILE.latent.csv (gen_cfg_t.latent, with the floor; a diagnostic for the
 * estimators' oracle, bench/estimator_oracle.py): for each symbol two rows, `SYM,latent,x0..x390`
 * (the latent log mid of the floor, in log dollars, at the end of minute m = 0..390 of the session)
 * and `SYM,quote,q0..q390` (the log of the generator's own quote mid, (bid + ask) / 2 in dollars,
 * standing at those minute ends: the latent price at the symbol's last touch, rounded to the tick,
 * before any book). 17 significant digits. The data bytes are the same with or without it.
 *
 * Which is the truth: the truth file is the population correlation of the process simulated (the
 * loadings written are the ones the path uses; test_gen checks that over 96 independent days the
 * floor scatters around it with no shift beyond the small-sample bias of r, about
 * -rho(1-rho^2)/(2T) = -0.0004). On one day the floor's mean error over pairs is not that small
 * bias: all pairs share the day's 1 + K factor draws, so a day whose market factor happens to
 * vary less over its 390 minutes than its expectation pulls every pair down together. Over days
 * that mean error has a spread of about 0.017-0.019 (500 symbols, 10 sectors: 0.0186 over seeds
 * 1-30, mean -0.003); the demo day (seed 1) draws -0.018. An estimator measured against the truth
 * on one day carries the same shared draw, so its bias is best read beside the floor's.
 *
 * Determinism: the same configuration and seed give the same bytes (own PRNG, xoshiro256**,
 * own ziggurat normals and exp, no libm call on the price path). Symbols and their parameters
 * depend only on seed, symbols and sectors.
 *
 * Memory: gen_create allocates everything (tag MEM_TAG_INGEST): symbol tables, live-order
 * arrays, the output buffer (1 MiB by default, reused: filled, then written with write(2)),
 * the ISA-L deflate state, its level buffer and output buffer. gen_generate allocates nothing.
 * One thread owns a gen_t.
 */
#ifndef TICKCORE_SIM_GEN_H
#define TICKCORE_SIM_GEN_H

#include "event/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MAX_SYMBOLS      65535u /* stock locates 1..65535 */
#define GEN_TRUTH_MATRIX_MAX 2048u  /* above this many symbols the truth has no matrix columns */
#define GEN_SESSION_OPEN_NS  (34200ull * 1000000000ull) /* 09:30:00 */
#define GEN_SESSION_CLOSE_NS (57600ull * 1000000000ull) /* 16:00:00 */
#define GEN_PRICE_TICK       100                        /* $0.01 in 1/10,000 dollars */

/* Messages before and after the order flow: 6 system events, plus R and H per symbol. */
static inline uint64_t gen_min_messages(uint32_t symbols)
{
    return 6 + 2 * (uint64_t)symbols;
}

/* Relative weights of the order-flow actions (need not sum to 1; at least one > 0). */
typedef struct gen_mix {
    double add;        /* A, or F with probability f_share */
    double del;        /* D */
    double replace;    /* U */
    double cancel;     /* X (partial: at least one share stays) */
    double exec;       /* E */
    double exec_price; /* C */
    double trade;      /* P */
} gen_mix_t;

/* Called with each message the generator writes, described from the generator's own state
 * (fields as in event/event.h; raw = NULL, raw_len = the message's length, tracking = 0). */
typedef void gen_event_fn(void *ctx, const ev_t *e);

typedef struct gen_cfg {
    const char *out;   /* data file; NULL: generate without writing anything (no truth) */
    uint64_t messages; /* total messages, the gen_min_messages() ones included */
    uint32_t symbols;  /* 1..GEN_MAX_SYMBOLS */
    uint32_t sectors;  /* 1..symbols */
    uint64_t seed;
    bool gzip;              /* gzip the data file (ISA-L, level 1) */
    bool truth;             /* write out + ".truth.csv" */
    bool latent;            /* with the floor: also write out + ".latent.csv" (diagnostic) */
    uint32_t max_live;      /* live orders per symbol, 1..65536 */
    uint64_t step_ns;       /* factor step dt, 1 ms..session; 0: gen_auto_step() */
    double f_share;         /* share of adds sent as F (with an MPID), 0..1 */
    gen_mix_t mix;          /* order-flow actions */
    size_t buf_size;        /* output buffer bytes, >= 4096 */
    gen_event_fn *on_event; /* optional test hook, NULL in production */
    void *ctx;
} gen_cfg_t;

/* Defaults: 1,000,000 messages, 500 symbols, 10 sectors, seed 1, plain, truth on,
 * max_live 128, step auto, F 3% of adds, mix A+F 45 D 40 U 6 X 3 E 4 C 0.5 P 1.5, 1 MiB buffer. */
void gen_cfg_default(gen_cfg_t *cfg);

/* The factor step used when step_ns is 0: about 4 messages of each symbol per step (a symbol's
 * mid is recomputed at most once per step), rounded down to 10, 6, 5, 4, 3 or 2 s (all divide
 * a minute, so 1-minute bars hold whole steps), at least 1 s. */
uint64_t gen_auto_step(uint64_t messages, uint32_t symbols);

typedef struct gen_stats {
    uint64_t messages;
    uint64_t by_type[256];  /* messages written, by type byte */
    uint64_t bytes;         /* ITCH bytes, length prefixes included (before compression) */
    uint64_t bytes_written; /* bytes of the data file (compressed size with gzip) */
    uint64_t truth_bytes;   /* bytes of the truth file */
    uint64_t add_on_full;   /* adds drawn on a full book: sent as D of its stalest order */
    uint64_t empty_book;    /* D/U/X/E/C drawn on an empty book: sent as an add */
    uint64_t swept;         /* orders the mid moved through: executed (E) or pulled (D) */
    uint64_t live_at_end;   /* live orders left at the close */
    uint32_t max_live_seen; /* most live orders one symbol had */
    uint64_t last_ref;      /* highest order reference number used */
    uint64_t last_match;    /* highest match number used */
    double seconds;         /* gen_generate's wall time */
    /* the floor (FILE.floor.csv, with the truth matrix): latent one-minute sample correlation
       against the truth, over every pair */
    uint32_t floor_minutes; /* T: one-minute returns (0: no floor written) */
    double floor_mae;       /* mean |sample - true| */
    double floor_bias;      /* mean (sample - true) */
    double floor_max;       /* largest |sample - true| */
    char error[192];        /* gen_run: what went wrong, when it returns < 0 */
} gen_stats_t;

/* One symbol's model parameters (see the header comment). */
typedef struct gen_symbol {
    char name[9];    /* NUL-terminated, 3-4 letters */
    uint32_t sector; /* 0..sectors-1 */
    double beta, gamma, sigma;
    double price0; /* mid at the open, dollars */
} gen_symbol_t;

typedef struct gen gen_t;

/* Check cfg, allocate everything, draw the symbols and their parameters, open the data file
 * and write the truth file. 0, or -errno with a message in err[0..errlen) (-EINVAL: a bad
 * option, -ENOMEM, or the error of open/write). On failure *out is NULL and nothing is left
 * behind except files already written. */
int gen_create(gen_t **out, const gen_cfg_t *cfg, char *err, size_t errlen);
/* Write the whole day. Allocates nothing. Call once per gen_t. 0 or -errno (write failed;
 * st->error says where). st is filled either way. */
int gen_generate(gen_t *g, gen_stats_t *st);
/* Close the files and free everything. NULL is a no-op. */
void gen_destroy(gen_t *g);

/* gen_create + gen_generate + gen_destroy. 0 or -errno; st->error holds the message. */
int gen_run(const gen_cfg_t *cfg, gen_stats_t *st);

/* The model, valid between gen_create and gen_destroy. locate is 1..symbols. */
const gen_symbol_t *gen_symbol(const gen_t *g, uint16_t locate);
/* The true correlation of the returns of locates a and b (1..symbols). */
double gen_truth_corr(const gen_t *g, uint16_t a, uint16_t b);

/* dst = out + ".truth.csv". 0 or -ENAMETOOLONG. */
int gen_truth_path(char *dst, size_t cap, const char *out);

#endif
