/*
 * xrow: the wire format of one shard's part of one closed bar row, what a cluster shard publishes
 * and the cross-section node joins (engine/xjoin). The single-process pipeline hands the
 * cross-section thread, per closed bar k, one row of matrix.symbols values (column c = stock
 * locate c + 1: the bar's return, NaN where the symbol has none) and one flag (did a tracked
 * symbol trade in the bar); xsection_push decides idle, partial and complete rows from those
 * alone, and xsection_compute names the columns from the symbol table. A part carries exactly
 * that for the columns its shard owns, so joining the parts of every shard rebuilds the row bit
 * for bit: the values as IEEE-754 bit patterns (NaN included), the traded flag (the row's is the
 * OR of the parts'), and the names of the owned locates (so the cross-section node, which sees
 * no stock directory, names the columns as the shards' symbol tables do).
 *
 * Which columns a shard owns is a locate -> shard table (owner[65536], the cluster's shard
 * function; the caller builds it): the owned columns of shard s are c in 0..m-1 with
 * owner[c + 1] == s, ascending. The layout (xrow_layout_t) is computed once from that table, so
 * every part of a shard has the same size: 64 + 16 x ncols bytes.
 *
 *   offset  size  field (all integers big-endian, network order)
 *        0     4  magic "TKXR"
 *        4     2  version (XROW_VERSION)
 *        6     2  header bytes (64)
 *        8     2  shard (0..nshards-1)
 *       10     2  nshards
 *       12     4  m: matrix columns of the full row (matrix.symbols)
 *       16     4  ncols: columns owned by this shard
 *       20     4  flags: bit 0 = a symbol of this part traded in the bar; other bits 0
 *       24     8  session: the shard's trading session number (bars restart each day)
 *       32     8  bar k
 *       40     8  colset: XXH3-64 of the owned column numbers (uint32, big-endian, ascending),
 *                 so a node with another shard function or matrix.symbols is refused by name
 *       48     8  seq: the shard's part number (0, 1, 2, ...; diagnostics)
 *       56     8  closed_ns: wall clock (ns since the epoch) when the shard had the row (the
 *                 join's latency is measured from it; it never decides anything)
 *       64     4  total bytes of the part (72 + 16 x ncols)
 *       68     4  CRC32C (ISA-L crc32_iscsi) of the whole part with these 4 bytes zero
 *       72  8 x ncols  values: the IEEE-754 binary64 bits of each owned column, big-endian
 *   72 + 8 x ncols  8 x ncols  names: each owned locate's symbol, NUL-padded to 8 bytes
 *
 * Encoding writes into the caller's buffer (xrow_bytes), decoding points into the caller's
 * buffer; neither allocates. Layout init allocates the column list (tag ENGINE), before the
 * seal. Any thread (pure functions over the caller's memory).
 */
#ifndef TICKCORE_ENGINE_XROW_H
#define TICKCORE_ENGINE_XROW_H

#include "event/symtab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XROW_MAGIC      "TKXR"
#define XROW_VERSION    1
#define XROW_HEADER     72
#define XROW_MAX_SHARDS 64 /* the join keeps a 64-bit mask of the parts it has */

enum { XROW_TRADED = 1u << 0 };

/* The columns one shard owns. */
typedef struct xrow_layout {
    uint16_t shard, nshards;
    uint32_t m;      /* matrix columns */
    uint32_t ncols;  /* owned */
    uint32_t *cols;  /* [ncols] owned column numbers, ascending */
    uint64_t colset; /* XXH3 of cols (see above) */
    size_t bytes;    /* 72 + 16 x ncols */
} xrow_layout_t;

/* Shard `shard` of nshards (1..XROW_MAX_SHARDS), m columns, owner[65536] the locate -> shard
 * table (owner[c + 1] for column c). 0, -EINVAL (shard out of range), -ENOMEM. Start-up. */
int xrow_layout_init(xrow_layout_t *l, unsigned shard, unsigned nshards, uint32_t m,
                     const uint8_t *owner);
void xrow_layout_fini(xrow_layout_t *l);

/* Encode the part of row (m values, column c = locate c + 1) for bar k of session: the owned
 * columns' values (bits as they are, NaN included), traded, and the owned locates' names from
 * names (NULL: empty names). out has l->bytes. Returns l->bytes. Allocates nothing. */
size_t xrow_encode(const xrow_layout_t *l, uint64_t session, uint64_t k, uint64_t seq,
                   uint64_t closed_ns, const double *row, bool traded, const symtab_t *names,
                   void *out);

/* A decoded part: header fields, and pointers into the caller's buffer. */
typedef struct xrow_part {
    uint16_t version, shard, nshards;
    uint32_t m, ncols, flags;
    uint64_t session, k, colset, seq, closed_ns;
    const uint8_t *values; /* ncols big-endian binary64 */
    const uint8_t *names;  /* ncols x 8 bytes */
} xrow_part_t;

/* Check and decode len bytes at buf (any alignment). 0, or -EBADMSG with a message in err naming
 * the byte offset, the field, what was expected and what came (a short or long part, a bad
 * magic, version, header size, shard >= nshards, ncols > m, a total that is not 72 + 16 x ncols,
 * a CRC mismatch, unknown flag bits). Allocates nothing. */
int xrow_decode(const void *buf, size_t len, xrow_part_t *out, char *err, size_t errlen);

/* Value i (0..ncols-1) of a decoded part, and name i (up to 8 bytes, NUL-padded; *len its length).
 */
double xrow_value(const xrow_part_t *p, uint32_t i);
const char *xrow_name(const xrow_part_t *p, uint32_t i, size_t *len);

#endif
