/*
 * config: see config.h. One table of keys drives parsing, validation and printing. libinih
 * reads the file through ini_parse_stream with a line-counting reader, so every error names the
 * line it came from (Debian's libinih is built without INI_HANDLER_LINENO).
 */
#include "config/config.h"

#include "base/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum key_type { K_U32, K_U64, K_SIZE, K_DUR, K_DBL, K_BOOL, K_ENUM, K_STR } key_type_t;

typedef struct key {
    const char *section, *name;
    key_type_t type;
    size_t off;
    double min, max;
    const char *def;     /* default, as written in the file */
    const char *choices; /* K_ENUM: "a|b|c", index = value; K_STR: "addr", "name" or NULL */
    const char *help;
} key_t_;

#define OFF(f) offsetof(config_t, f)

static const key_t_ KEYS[] = {
    {"input", "io_buffers", K_U32, OFF(io_buffers), 2, 1024, "8", NULL,
     "I/O buffers per input file, registered with io_uring and reused for every read"},
    {"input", "io_buffer_size", K_SIZE, OFF(io_buffer_size), 4096, 1 << 30, "1M", NULL,
     "bytes per I/O buffer (one buffer is one batch of messages)"},
    {"input", "io_queue_depth", K_U32, OFF(io_queue_depth), 1, 1023, "4", NULL,
     "reads in flight at once (at most io_buffers - 1)"},
    {"input", "gz_buffers", K_U32, OFF(gz_buffers), 2, 1024, "4", NULL,
     "unused since gzip is inflated on inflate threads (one input buffer each); kept so old "
     "files load"},
    {"input", "gz_buffer_size", K_SIZE, OFF(gz_buffer_size), 4096, 1 << 30, "256K", NULL,
     "bytes per compressed-input read, one buffer per inflate thread"},
    {"input", "inflate_threads", K_U32, OFF(inflate_threads), 0, 64, "0", NULL,
     "threads that inflate gzip input while the reader decodes (0: min(2, CPUs)); members with "
     "a size field (tickcore gen --gzip, BGZF) are inflated in parallel, other gzip on one"},
    {"input", "batch_events", K_U32, OFF(batch_events), 16, 1 << 20, "4096", NULL,
     "decoded events handed on at once"},
    {"input", "max_line", K_SIZE, OFF(max_line), 16, 1 << 24, "4096", NULL,
     "longest CSV line; longer lines are counted errors (also the carry-over headroom)"},
    {"input", "on_bad_input", K_ENUM, OFF(on_bad_input), 0, 0, "stop", "stop|skip",
     "stop: the first ITCH framing error ends the file (exit 1) after every valid message before "
     "it; skip: resynchronise, count what was skipped, go on (CSV rows are always skipped and "
     "counted unless --strict)"},
    {"input", "csv_require_order", K_BOOL, OFF(csv_require_order), 0, 0, "false", NULL,
     "a CSV timestamp below an earlier row's is an error (otherwise counted only)"},

    {"symbols", "max_symbols", K_U32, OFF(max_symbols), 1, 65535, "10000", NULL,
     "symbols at once (NASDAQ lists about 8,400): symbol table, per-symbol stats and bars; past "
     "it, counted errors"},

    {"book", "max_orders", K_U32, OFF(max_orders), 16, 1u << 30, "2M", NULL,
     "live orders at once, all symbols (NASDAQ peak: 1.65 M); an add past it is dropped and "
     "counted"},
    {"book", "max_levels", K_U32, OFF(max_levels), 16, 1u << 30, "1M", NULL,
     "price levels at once, all symbols and both sides; an add at a new level past it is "
     "dropped and counted"},

    {"stats", "bar_interval", K_DUR, OFF(bar_interval_ns), 1e9, 86400e9, "1m", NULL,
     "OHLCV bar interval, 1s .. 1d; bars are aligned to multiples of it"},
    {"stats", "bar_history", K_U32, OFF(bar_history), 1, 1 << 20, "64", NULL,
     "closed bars kept per symbol (64 bytes each, times symbols.max_symbols)"},
    {"stats", "break_window", K_U32, OFF(break_window), 0, 1 << 26, "65536", NULL,
     "recent trades remembered (by match number) so that broken trades (B) can be reversed"},
    {"stats", "day_bars", K_U32, OFF(day_bars), 0, 1 << 20, "0", NULL,
     "the day store for the library (tickcore_bars, Python bars()): every bar of the session "
     "with a price, up to this many per symbol (80 bytes each, times stats.day_symbols); 0: off "
     "(the library then reads the last bar_history bars)"},
    {"stats", "day_symbols", K_U32, OFF(day_symbols), 1, 65535, "1000", NULL,
     "symbols the day store keeps (the first ones to close a priced bar); the bars of the others "
     "are counted as dropped"},

    {"matrix", "symbols", K_U32, OFF(matrix_symbols), 2, 16384, "512", NULL,
     "symbols in the cross-section (the first ones by stock locate)"},
    {"matrix", "returns", K_ENUM, OFF(matrix_returns), 0, 0, "mid", "mid|trade",
     "bar returns for the matrix: mid = mid-quote at the bar's end (no bid-ask bounce; falls back "
     "to trades for symbols without quotes, e.g. trades-only CSV), trade = last trade price"},
    {"matrix", "estimator", K_ENUM, OFF(matrix_estimator), 0, 0, "auto",
     "close|refresh|subsample|twoscale|auto",
     "covariance estimator: close = returns of consecutive bar closes (the textbook "
     "computation); refresh = refresh-time sampling at bar resolution (a row when every "
     "symbol's price has moved since the last row, returns summed since then); subsample = "
     "average of the covariances of matrix.subsample_grids offset grids of returns over that "
     "many bars (noise- and staleness-robust); twoscale = (subsample - close) / (K - 1), the "
     "two-scales correction (less attenuation); auto = twoscale over 2-minute returns with "
     "shrinkage = ledoit-wolf-block for bars under 5 minutes (the least error over generated "
     "days, clusters kept), close for longer bars such as daily closes (README, estimators)"},
    {"matrix", "subsample_grids", K_U32, OFF(subsample_grids), 0, 64, "0", NULL,
     "subsample and twoscale: K, the grids (returns over K bars, one grid per offset of one bar); "
     "0 = auto: the bars in 2 minutes (2 at 1-minute bars, 4 at 30 s), at least 2, at most "
     "matrix.window / 30"},
    {"matrix", "shrinkage", K_ENUM, OFF(matrix_shrinkage), 0, 0, "auto",
     "none|ledoit-wolf|ledoit-wolf-block|auto",
     "shrink the covariance toward constant correlation with the Ledoit-Wolf optimal intensity "
     "(reported), toward block-constant correlation over graph.clusters clusters of the bar "
     "returns' correlation (ledoit-wolf-block), or not; auto = ledoit-wolf-block for subsample "
     "and twoscale, none for close and refresh; off with matrix.ewma_lambda > 0 (no window to "
     "estimate it from)"},
    {"matrix", "window", K_U32, OFF(window), 2, 1 << 20, "390", NULL,
     "bars of returns in the rolling covariance window (390 one-minute bars = one session)"},
    {"matrix", "update_batch", K_U32, OFF(update_batch), 1, 4096, "16", NULL,
     "bar rows buffered before a rank-k update of the covariance (dsyrk)"},
    {"matrix", "recompute_every", K_U32, OFF(recompute_every), 0, 1 << 20, "64", NULL,
     "full recompute from the window every this many updates, to bound rounding drift "
     "(0 = never)"},
    {"matrix", "ewma_lambda", K_DBL, OFF(ewma_lambda), 0, 0.999999, "0", NULL,
     "exponentially weighted covariance decay per bar; 0 = plain rolling window"},
    {"matrix", "blas_threads", K_U32, OFF(blas_threads), 1, 256, "1", NULL,
     "threads OpenBLAS may use (pinned, so it does not fight the pipeline)"},
    {"matrix", "pca_components", K_U32, OFF(pca_components), 1, 64, "5", NULL,
     "principal components computed (LAPACKE dsyevr)"},

    {"graph", "clusters", K_U32, OFF(clusters), 1, 16384, "10", NULL,
     "clusters cut from the correlation MST (single linkage)"},
    {"graph", "min_cluster", K_U32, OFF(min_cluster), 1, 65535, "3", NULL,
     "an MST edge is cut only if both sides keep at least this many symbols, so the k cuts are "
     "not spent on single outliers (1 = plain single linkage)"},
    {"graph", "cluster_distance", K_DBL, OFF(cluster_distance), 0, 2, "0", NULL,
     "if > 0, cut the MST at this distance sqrt(2(1-rho)) instead of into `clusters` clusters"},

    {"pipeline", "workers", K_U32, OFF(workers), 0, 64, "0", NULL,
     "shard worker threads (each owns the books and stats of locate % workers); 0 = one per "
     "spare core (at least 1); results do not depend on it"},
    {"pipeline", "batches", K_U32, OFF(batches), 2, 1 << 16, "32", NULL,
     "event batches in flight between the reader and the workers (input.batch_events events "
     "each); when all are in use the reader waits: backpressure, nothing dropped"},
    {"pipeline", "ring_slots", K_U32, OFF(ring_slots), 2, 1 << 20, "1024", NULL,
     "slots per inter-thread ring (a power of two)"},
    {"pipeline", "pin_cpus", K_BOOL, OFF(pin_cpus), 0, 0, "false", NULL,
     "pin each thread to its own CPU"},
    {"pipeline", "live_overflow", K_ENUM, OFF(live_overflow), 0, 0, "block", "block|drop",
     "live input when a ring is full: block the feed, or drop and count (replay always blocks)"},

    {"live", "tcp_addr", K_STR, OFF(tcp_addr), 0, sizeof(((config_t *)0)->tcp_addr), "127.0.0.1",
     "addr",
     "IPv4 address `serve` listens on for SoupBinTCP 3.0 publishers (127.0.0.1: this host only)"},
    {"live", "tcp_port", K_U32, OFF(tcp_port), 0, 65535, "7001", NULL,
     "SoupBinTCP port; 0 = no TCP feed"},
    {"live", "udp_addr", K_STR, OFF(udp_addr), 0, sizeof(((config_t *)0)->udp_addr), "127.0.0.1",
     "addr", "IPv4 address `serve` receives MoldUDP64 datagrams on"},
    {"live", "udp_port", K_U32, OFF(udp_port), 0, 65535, "7002", NULL,
     "MoldUDP64 port; 0 = no UDP feed"},
    {"live", "udp_allow", K_STR, OFF(udp_allow), 1, sizeof(((config_t *)0)->udp_allow),
     "127.0.0.0/8", "cidr",
     "IPv4 network (CIDR, like 10.1.2.0/24; a bare address is /32; 0.0.0.0/0 = anyone) MoldUDP64 "
     "datagrams are taken from: others are dropped unparsed, counted "
     "(tickcore_udp_foreign_total) and logged; re-requests go only to an allowed sender"},
    {"live", "session", K_STR, OFF(session), 1, 11, "TICKCORE", "name",
     "session name (1-10 letters or digits) of the one sequenced stream both feeds carry: "
     "SoupBinTCP "
     "logins for another session and MoldUDP64 packets of another session are refused and counted"},
    {"live", "username", K_STR, OFF(username), 1, 7, "tick", "name",
     "SoupBinTCP login username (1-6 letters or digits); `feed` sends it"},
    {"live", "password", K_STR, OFF(password), 1, 11, "core", "name",
     "SoupBinTCP login password (1-10 letters or digits); a login with another is rejected"},
    {"live", "max_clients", K_U32, OFF(max_clients), 1, 1024, "8", NULL,
     "SoupBinTCP sessions logged in at once (each gets a receive and a send buffer at start-up); a "
     "login past them is rejected and counted"},
    {"live", "recv_buffer", K_SIZE, OFF(recv_buffer), 4096, 64 << 20, "256K", NULL,
     "receive buffer per TCP connection (registered with io_uring, reused)"},
    {"live", "max_packet", K_SIZE, OFF(max_packet), 64, 65537, "1K", NULL,
     "largest SoupBinTCP packet accepted (an ITCH message is at most 50 bytes); a larger length "
     "prefix drops the client"},
    {"live", "max_pending", K_U32, OFF(max_pending), 1, 65536, "256", NULL,
     "TCP connections not yet logged in, held apart from the sessions (64 bytes each way); when "
     "all are taken, the one waiting longest is closed for the newcomer"},
    {"live", "login_timeout", K_DUR, OFF(login_timeout_ns), 1e6, 3600e9, "1s", NULL,
     "a TCP client that has not logged in by then is dropped"},
    {"live", "idle_timeout", K_DUR, OFF(idle_timeout_ns), 1e6, 3600e9, "15s", NULL,
     "a TCP client that sends nothing (not even a heartbeat) for this long, or stalls in the "
     "middle "
     "of a packet for this long, is dropped"},
    {"live", "heartbeat", K_DUR, OFF(heartbeat_ns), 1e6, 3600e9, "1s", NULL,
     "server heartbeat interval on an idle TCP session"},
    {"live", "udp_buffers", K_U32, OFF(udp_buffers), 1, 4096, "64", NULL,
     "datagram buffers receiving at once"},
    {"live", "udp_buffer_size", K_SIZE, OFF(udp_buffer_size), 512, 65536, "64K", NULL,
     "bytes per datagram buffer (a larger datagram is truncated, counted and dropped)"},
    {"live", "reorder_store", K_SIZE, OFF(reorder_store), 4096, 1 << 30, "16M", NULL,
     "MoldUDP64 messages held past a gap while it is re-requested (about 2.1 bytes of memory "
     "per byte, prefaulted at start-up); when it is full the oldest gap is declared lost"},
    {"live", "gap_timeout", K_DUR, OFF(gap_timeout_ns), 1e6, 3600e9, "500ms", NULL,
     "a MoldUDP64 gap not filled by a retransmission within this time is declared lost (logged, "
     "counted in /metrics, recorded in the journal's .gaps file) and ingest goes on"},
    {"live", "rerequest", K_DUR, OFF(rerequest_ns), 1e6, 3600e9, "50ms", NULL,
     "interval between MoldUDP64 re-requests for the same gap"},

    {"journal", "path", K_STR, OFF(journal_path), 0, sizeof(((config_t *)0)->journal_path),
     "tickcore.journal", NULL,
     "every message accepted from a live feed is appended here (an ITCH BinaryFILE: `tickcore "
     "replay` reads it); `serve` replays it at start and resumes after its last message; empty = "
     "no journal (a restart starts from nothing)"},
    {"journal", "fsync", K_ENUM, OFF(journal_fsync), 0, 0, "interval", "batch|interval|off",
     "batch: fsync before each batch is applied (survives power loss; costs a disk flush per "
     "batch); interval: fsync every journal.fsync_interval (a power loss may lose that much, a "
     "crash of the process loses nothing written); off: the kernel decides"},
    {"journal", "fsync_interval", K_DUR, OFF(journal_fsync_interval_ns), 1e6, 3600e9, "100ms", NULL,
     "fsync interval for fsync = interval"},
    {"journal", "buffer_size", K_SIZE, OFF(journal_buffer_size), 4096, 1 << 30, "1M", NULL,
     "bytes per journal write buffer"},
    {"journal", "buffers", K_U32, OFF(journal_buffers), 2, 64, "4", NULL,
     "journal write buffers (one fills while the others are written)"},

    {"cluster", "nats", K_STR, OFF(cluster_nats), 0, sizeof(((config_t *)0)->cluster_nats), "",
     NULL,
     "NATS server URL (nats://host:port) of the cluster; `serve` with it set consumes shard "
     "cluster.shard of cluster.shards from the stream (live.tcp_port=0 live.udp_port=0 turn the "
     "live listeners off); empty = no NATS input"},
    {"cluster", "stream", K_STR, OFF(cluster_stream), 1, sizeof(((config_t *)0)->cluster_stream),
     "ITCH", "name",
     "JetStream stream (letters or digits) `feed --to nats://` publishes into (created if absent: "
     "file storage, limits retention) and shards consume"},
    {"cluster", "subject", K_STR, OFF(cluster_subject), 1, sizeof(((config_t *)0)->cluster_subject),
     "itch", "name",
     "subject prefix: shard I's packets go on <prefix>.<I>; the stream holds <prefix>.>"},
    {"cluster", "shards", K_U32, OFF(cluster_shards), 1, 1024, "1", NULL,
     "number of shards N: a message with stock locate L goes to shard L % N; system, stock "
     "directory and locate-0 messages go to every shard"},
    {"cluster", "shard", K_U32, OFF(cluster_shard), 0, 1023, "0", NULL,
     "the shard this `serve` consumes (0 .. cluster.shards - 1), through the durable consumer "
     "<stream>_<shard>"},
    {"cluster", "packet_bytes", K_SIZE, OFF(cluster_packet_bytes), 1024, 1 << 20, "1020K", NULL,
     "largest NATS message of packed ITCH messages (a 40-byte header, then per message 2-6 bytes "
     "(its index delta and length) + the message); at most the server's max_payload (1M by "
     "default) less room for the NATS "
     "headers. 1020K against 64K: shards' CPU per message 0.45-0.65x, nats-server's 0.7-0.9x "
     "(bench/cluster.sh)"},
    {"cluster", "flush_interval", K_DUR, OFF(cluster_flush_ns), 1e5, 10e9, "5ms", NULL,
     "a shard's packet is published at the latest this long after its first message (paced "
     "feeds)"},
    {"cluster", "max_pending", K_U32, OFF(cluster_max_pending), 1, 65536, "16", NULL,
     "packets published and not yet acknowledged by the server at most (the publisher blocks "
     "beyond: bounded memory, each kept in a cluster.packet_bytes slot until acknowledged)"},
    {"cluster", "fetch_batch", K_U32, OFF(cluster_fetch_batch), 1, 4096, "16", NULL,
     "packets a shard fetches at once (pull consumer), acknowledged after they are applied and "
     "journalled"},
    /* the cross-section of the cluster (server/xsnode, engine/xjoin; docs/cluster.md) */
    {"cluster", "role", K_ENUM, OFF(cluster_role), 0, 0, "shard", "shard|xsection",
     "with cluster.nats: shard = consume shard cluster.shard and publish its bar rows; xsection "
     "= join the bar rows of all cluster.shards shards and serve the global correlation, PCA, "
     "MST and clusters (no ITCH input: set live.tcp_port=0 live.udp_port=0)"},
    {"cluster", "rows_only", K_BOOL, OFF(cluster_rows_only), 0, 0, "true", NULL,
     "with cluster.nats and role shard: the shard publishes its bar rows and runs no covariance, "
     "PCA or MST of its own (the cross-section node computes the cluster's; a shard's own was 40% "
     "of its CPU): its /v1/correlation, /v1/pca, /v1/mst and /v1/clusters answer 421 naming the "
     "node to ask. false = it also computes the cross-section of its own symbols"},
    {"cluster", "rows_stream", K_STR, OFF(cluster_rows_stream), 1,
     sizeof(((config_t *)0)->cluster_rows_stream), "XROWS", "name",
     "JetStream stream of the shards' bar rows (created if absent: file storage, limits "
     "retention; the cross-section node reads it from its start, so it must keep matrix.window "
     "bars)"},
    {"cluster", "rows_subject", K_STR, OFF(cluster_rows_subject), 1,
     sizeof(((config_t *)0)->cluster_rows_subject), "xrow", "name",
     "subject prefix of the bar rows: shard I publishes on <prefix>.<I>"},
    {"cluster", "join_window", K_U32, OFF(cluster_join_window), 1, 65536, "256", NULL,
     "bars the cross-section node holds in flight while it waits for every shard's part (a "
     "shard further ahead waits: its rows stay in the stream)"},
    {"cluster", "join_deadline", K_DUR, OFF(cluster_join_deadline_ns), 1e6, 86400e9, "30s", NULL,
     "a bar still missing a shard's part this long after its first part is dropped and counted "
     "(tickcore_xjoin_incomplete_total)"},

    {"http", "boost", K_BOOL, OFF(http_boost), 0, 0, "true", NULL,
     "run the HTTP thread ahead of the ingest threads (SCHED_FIFO 1 while the feed keeps up, else "
     "nice -10 and a 100 us slice, where permitted). On the loaded 2-core test machine: query p99 "
     "at maximum rate 4.5 ms instead of 40, a good client's p99 beside 1,000 slow clients 3 ms "
     "instead of 88; but maximum-rate ingest 27-46% slower (paced 1 M msg/s unchanged): false "
     "puts throughput first (README, Queries)"},
    {"http", "addr", K_STR, OFF(http_addr), 0, sizeof(((config_t *)0)->http_addr), "127.0.0.1",
     "addr", "IPv4 address of the query server (127.0.0.1: this host only)"},
    {"http", "port", K_U32, OFF(http_port), 0, 65535, "8080", NULL, "HTTP port; 0 = no HTTP"},
    {"http", "token", K_STR, OFF(http_token), 0, sizeof(((config_t *)0)->http_token), "", NULL,
     "if set, every endpoint but /healthz wants `Authorization: Bearer <token>`"},
    {"http", "max_connections", K_U32, OFF(http_max_connections), 1, 65536, "4096", NULL,
     "HTTP connections at once (each costs a descriptor and http.max_request + 2K of "
     "libmicrohttpd's memory, not a response buffer); more are closed at once and counted"},
    {"http", "per_ip_connections", K_U32, OFF(http_per_ip), 0, 65536, "64", NULL,
     "HTTP connections at once from one address (0 = no limit); more are closed at once"},
    {"http", "response_buffers", K_U32, OFF(http_response_buffers), 1, 4096, "16", NULL,
     "responses being sent at once from preallocated buffers (http.response_buffer each); with "
     "none free a response is copied (counted), never refused"},
    {"http", "max_request", K_SIZE, OFF(http_max_request), 1024, 1 << 20, "16K", NULL,
     "largest HTTP request (line and headers); larger ones are refused"},
    {"http", "response_buffer", K_SIZE, OFF(http_response_buffer), 4096, 1 << 30, "1M", NULL,
     "bytes per response buffer; a larger answer is a 500 asking for a narrower query"},
    {"http", "correlation_csv", K_BOOL, OFF(http_correlation_csv), 0, 0, "true", NULL,
     "serve /v1/correlation?format=csv (the whole matrix): two buffers of ~24 x matrix.symbols^2 "
     "bytes each (512 symbols: 6.3 MB each; 8,000: 1.5 GB each, so off on such a node)"},
    {"http", "timeout", K_DUR, OFF(http_timeout_ns), 1e9, 3600e9, "10s", NULL,
     "a kept-alive HTTP connection idle this long between requests is closed"},
    {"http", "header_timeout", K_DUR, OFF(http_header_timeout_ns), 1e9, 3600e9, "2s", NULL,
     "a new HTTP connection silent this long before its request headers are complete is closed "
     "(slow-loris clients; whole seconds)"},

    {"server", "snapshot_interval", K_DUR, OFF(snapshot_interval_ns), 0, 60e9, "10ms", NULL,
     "how often the shard workers publish the symbols they changed for queries (0 = every batch)"},
    {"server", "analytics_interval", K_DUR, OFF(analytics_interval_ns), 1e6, 3600e9, "1s", NULL,
     "how often the cross-section thread recomputes correlation, PCA, MST and clusters for queries "
     "(when new bars came)"},
    {"server", "depth", K_U32, OFF(snapshot_depth), 1, 64, "10", NULL,
     "book levels per side published for /v1/symbols/{SYM}"},
    {"server", "log", K_STR, OFF(log_path), 0, sizeof(((config_t *)0)->log_path), "", NULL,
     "log file (SIGHUP reopens it, for log rotation); empty = standard error"},

    {"report", "top_symbols", K_U32, OFF(top_symbols), 0, 1000, "10", NULL,
     "symbols listed in the report, by volume"},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static int enum_index(const char *choices, const char *v)
{
    int i = 0;
    size_t vl = strlen(v);
    for (const char *p = choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncasecmp(p, v, l) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

/* A string key: printable ASCII, shorter than its field (k->max); "addr" an IPv4 address, "name"
 * letters and digits only, at least k->min characters. Trailing spaces are dropped. */
static int parse_string(const key_t_ *k, const char *v, char *dst, char *why, size_t wn)
{
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n + 1 > (size_t)k->max) {
        err_set(why, wn, "'%.*s' is longer than %zu characters", (int)n, v, (size_t)k->max - 1);
        return -1;
    }
    if (n < (size_t)k->min) {
        err_set(why, wn, "empty value");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch > 0x7e || (k->choices && !strcmp(k->choices, "name") && !isalnum(ch))) {
            err_set(why, wn, "'%.*s': character %zu (0x%02x) is not %s", (int)n, v, i + 1, ch,
                    k->choices && !strcmp(k->choices, "name") ? "a letter or digit"
                                                              : "printable ASCII");
            return -1;
        }
    }
    char tmp[512];
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    if (k->choices && !strcmp(k->choices, "addr")) {
        struct in_addr a;
        if (inet_pton(AF_INET, tmp, &a) != 1) {
            err_set(why, wn, "'%s' is not an IPv4 address (like 127.0.0.1)", tmp);
            return -1;
        }
    }
    if (k->choices && !strcmp(k->choices, "cidr")) {
        uint32_t net, mask;
        if (config_cidr(tmp, &net, &mask, why, wn) < 0)
            return -1;
    }
    memcpy(dst, tmp, n + 1);
    return 0;
}

/* Parse value v for key k; 0 or -1 with a reason in why. */
static int parse_value(const key_t_ *k, const char *v, config_t *c, char *why, size_t wn)
{
    char *end;
    void *dst = (char *)c + k->off;
    while (isspace((unsigned char)*v))
        v++;
    if (k->type == K_STR)
        return parse_string(k, v, (char *)dst, why, wn);
    if (!*v) {
        err_set(why, wn, "empty value");
        return -1;
    }
    switch (k->type) {
    case K_BOOL:
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
            !strcmp(v, "1"))
            *(bool *)dst = true;
        else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
                 !strcmp(v, "0"))
            *(bool *)dst = false;
        else {
            err_set(why, wn, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", v);
            return -1;
        }
        return 0;
    case K_ENUM: {
        int i = enum_index(k->choices, v);
        if (i < 0) {
            err_set(why, wn, "'%s' is not one of %s", v, k->choices);
            return -1;
        }
        *(uint32_t *)dst = (uint32_t)i;
        return 0;
    }
    default:
        break;
    }
    if (*v == '-') {
        err_set(why, wn, "'%s' is negative", v);
        return -1;
    }
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || !isfinite(x)) {
        err_set(why, wn, "'%s' is not a number", v);
        return -1;
    }
    double mult = 1;
    if (k->type == K_SIZE || k->type == K_U32 || k->type == K_U64) {
        if (*end == 'K' || *end == 'k')
            mult = k->type == K_SIZE ? 1024.0 : 1e3, end++;
        else if (*end == 'M')
            mult = k->type == K_SIZE ? 1048576.0 : 1e6, end++;
        else if (*end == 'G')
            mult = k->type == K_SIZE ? 1073741824.0 : 1e9, end++;
    } else if (k->type == K_DUR) {
        if (!strcmp(end, "ns"))
            mult = 1, end += 2;
        else if (!strcmp(end, "us"))
            mult = 1e3, end += 2;
        else if (!strcmp(end, "ms"))
            mult = 1e6, end += 2;
        else if (!strcmp(end, "s"))
            mult = 1e9, end += 1;
        else if (!strcmp(end, "m"))
            mult = 60e9, end += 1;
        else if (!strcmp(end, "h"))
            mult = 3600e9, end += 1;
        else if (!strcmp(end, "d"))
            mult = 86400e9, end += 1;
        else {
            err_set(why, wn, "'%s' needs a unit: ns, us, ms, s, m, h or d", v);
            return -1;
        }
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end) {
        err_set(why, wn, "'%s' has trailing characters '%s'", v, end);
        return -1;
    }
    x *= mult;
    if (k->type != K_DBL && x != floor(x)) {
        err_set(why, wn, "'%s' is not a whole number", v);
        return -1;
    }
    if (x < k->min || x > k->max) {
        err_set(why, wn, "'%s' is out of range [%.17g, %.17g]", v, k->min, k->max);
        return -1;
    }
    switch (k->type) {
    case K_U32:
        *(uint32_t *)dst = (uint32_t)x;
        break;
    case K_DBL:
        *(double *)dst = x;
        break;
    default:
        *(uint64_t *)dst = (uint64_t)x;
        break;
    }
    return 0;
}

static const key_t_ *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].name, name))
            return &KEYS[i];
    return NULL;
}

static bool known_section(const char *section)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].section, section))
            return true;
    return false;
}

void config_estimator(const config_t *c, cfg_estimator_choice_t *out)
{
    bool ewma = c->ewma_lambda > 0;
    uint64_t bar = c->bar_interval_ns ? c->bar_interval_ns : 1;
    uint64_t k = (CFG_AUTO_HORIZON_NS + bar / 2) / bar; /* the bars in the horizon, rounded */
    uint32_t kmax = c->window / CFG_AUTO_GRID_ROWS;
    if (kmax > 64)
        kmax = 64;
    if (k > kmax)
        k = kmax;
    if (k < 2)
        k = 2;
    out->automatic = c->matrix_estimator == CFG_EST_AUTO;
    out->estimator = c->matrix_estimator;
    if (out->automatic)
        out->estimator = c->bar_interval_ns < CFG_AUTO_NOISY_BAR_NS && !ewma && kmax >= 2
                             ? CFG_EST_TWOSCALE
                             : CFG_EST_CLOSE;
    bool grids = out->estimator == CFG_EST_SUBSAMPLE || out->estimator == CFG_EST_TWOSCALE;
    out->grids = !grids ? 1 : c->subsample_grids ? c->subsample_grids : (uint32_t)k;
    out->shrinkage = c->matrix_shrinkage;
    if (out->shrinkage == CFG_SHRINK_AUTO)
        out->shrinkage = grids && !ewma ? CFG_SHRINK_LW_BLOCK : CFG_SHRINK_NONE;
}

static int check(const config_t *c, char *err, size_t n)
{
    if (c->cluster_shard >= c->cluster_shards) {
        err_set(err, n, "cluster.shard must be below cluster.shards (%u), got %u",
                c->cluster_shards, c->cluster_shard);
        return -1;
    }
    if (c->cluster_nats[0] && strncmp(c->cluster_nats, "nats://", 7) != 0) {
        err_set(err, n, "cluster.nats must be a nats://host:port URL, got \"%s\"", c->cluster_nats);
        return -1;
    }
    if (c->ring_slots & (c->ring_slots - 1)) {
        err_set(err, n, "pipeline.ring_slots must be a power of two, got %u", c->ring_slots);
        return -1;
    }
    if (c->io_queue_depth >= c->io_buffers) {
        err_set(err, n, "input.io_queue_depth (%u) must be below input.io_buffers (%u)",
                c->io_queue_depth, c->io_buffers);
        return -1;
    }
    if (c->matrix_symbols > c->max_symbols) {
        err_set(err, n, "matrix.symbols (%u) exceeds symbols.max_symbols (%u)", c->matrix_symbols,
                c->max_symbols);
        return -1;
    }
    cfg_estimator_choice_t ec;
    config_estimator(c, &ec);
    if (ec.estimator == CFG_EST_TWOSCALE && ec.grids < 2) {
        err_set(err, n, "matrix.estimator = twoscale needs matrix.subsample_grids >= 2, got %u",
                ec.grids);
        return -1;
    }
    if (ec.estimator >= CFG_EST_SUBSAMPLE && c->ewma_lambda <= 0 && c->window < 2 * ec.grids) {
        err_set(err, n,
                "matrix.window (%u) must hold at least 2 rows per grid: 2 * matrix.subsample_grids "
                "(%u)",
                c->window, 2 * ec.grids);
        return -1;
    }
    if (c->clusters > c->matrix_symbols) {
        err_set(err, n, "graph.clusters (%u) exceeds matrix.symbols (%u)", c->clusters,
                c->matrix_symbols);
        return -1;
    }
    if (c->pca_components > c->matrix_symbols) {
        err_set(err, n, "matrix.pca_components (%u) exceeds matrix.symbols (%u)", c->pca_components,
                c->matrix_symbols);
        return -1;
    }
    return 0;
}

void config_default(config_t *c)
{
    memset(c, 0, sizeof *c);
    char why[160];
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = parse_value(&KEYS[i], KEYS[i].def, c, why, sizeof why);
        (void)rc; /* defaults are checked by test_config */
    }
}

typedef struct parse_ctx {
    config_t *c;
    const char *path;
    FILE *f;
    int line;
    int failed;
    char *err;
    size_t errlen;
} parse_ctx_t;

static char *count_lines(char *str, int num, void *stream)
{
    parse_ctx_t *p = stream;
    char *r = fgets(str, num, p->f);
    if (r)
        p->line++;
    return r;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx_t *p = user;
    if (p->failed)
        return 0;
    if (!known_section(section)) {
        err_set(p->err, p->errlen, "%s:%d: unknown section [%s] (key '%s')", p->path, p->line,
                section, name);
        p->failed = 1;
        return 0;
    }
    const key_t_ *k = find_key(section, name);
    if (!k) {
        err_set(p->err, p->errlen, "%s:%d: unknown key '%s' in section [%s]", p->path, p->line,
                name, section);
        p->failed = 1;
        return 0;
    }
    char why[200];
    if (parse_value(k, value, p->c, why, sizeof why) < 0) {
        err_set(p->err, p->errlen, "%s:%d: %s.%s: %s", p->path, p->line, section, name, why);
        p->failed = 1;
        return 0;
    }
    return 1;
}

int config_load(config_t *c, const char *path, char *err, size_t errlen)
{
    parse_ctx_t p = {.c = c, .path = path, .err = err, .errlen = errlen};
    p.f = fopen(path, "r");
    if (!p.f) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(count_lines, &p, on_key, &p);
    fclose(p.f);
    if (p.failed)
        return -1;
    if (rc != 0) {
        err_set(err, errlen,
                "%s:%d: not an INI line (expected [section], key = value or a comment)", path,
                rc > 0 ? rc : p.line);
        return -1;
    }
    char why[300];
    if (check(c, why, sizeof why) < 0) {
        err_set(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

int config_set(config_t *c, const char *key, const char *value, char *err, size_t errlen)
{
    char sec[32], name[64];
    const char *dot = strchr(key, '.');
    const char *eq = strchr(key, '=');
    if (!value && eq)
        value = eq + 1;
    size_t kl = eq && value == eq + 1 ? (size_t)(eq - key) : strlen(key);
    if (!dot || (size_t)(dot - key) >= sizeof sec || kl - (size_t)(dot - key) - 1 >= sizeof name ||
        !value) {
        err_set(err, errlen, "--set wants section.key=value, got '%s'", key);
        return -1;
    }
    memcpy(sec, key, (size_t)(dot - key));
    sec[dot - key] = '\0';
    memcpy(name, dot + 1, kl - (size_t)(dot - key) - 1);
    name[kl - (size_t)(dot - key) - 1] = '\0';
    const key_t_ *k = find_key(sec, name);
    if (!k) {
        err_set(err, errlen, "unknown key '%s.%s'", sec, name);
        return -1;
    }
    char why[200];
    if (parse_value(k, value, c, why, sizeof why) < 0) {
        err_set(err, errlen, "%s.%s: %s", sec, name, why);
        return -1;
    }
    return 0;
}

int config_cidr(const char *s, uint32_t *net, uint32_t *mask, char *err, size_t errlen)
{
    char addr[16];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long bits = 32;
    struct in_addr a;
    if (alen >= sizeof addr)
        goto bad;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, &a) != 1)
        goto bad;
    if (slash) {
        char *end;
        if (!isdigit((unsigned char)slash[1]))
            goto bad;
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (errno || *end || bits > 32)
            goto bad;
    }
    *mask = bits ? ~0u << (32 - bits) : 0;
    *net = ntohl(a.s_addr);
    if (*net & ~*mask) {
        struct in_addr n = {htonl(*net & *mask)};
        char nb[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &n, nb, sizeof nb);
        err_set(err, errlen, "'%s' has host bits set past /%lu (the network is %s/%lu)", s, bits,
                nb, bits);
        return -1;
    }
    return 0;
bad:
    err_set(err, errlen, "'%s' is not an IPv4 network (like 127.0.0.0/8 or 10.1.2.3)", s);
    return -1;
}

int config_check(const config_t *c, char *err, size_t errlen)
{
    return check(c, err, errlen);
}

static void print_value(FILE *f, const key_t_ *k, const config_t *c)
{
    const void *src = (const char *)c + k->off;
    switch (k->type) {
    case K_STR:
        fputs((const char *)src, f);
        break;
    case K_BOOL:
        fputs(*(const bool *)src ? "true" : "false", f);
        break;
    case K_ENUM: {
        uint32_t v = *(const uint32_t *)src;
        const char *p = k->choices;
        for (uint32_t i = 0; i < v && p; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        const char *bar = p ? strchr(p, '|') : NULL;
        fprintf(f, "%.*s", p ? (int)(bar ? bar - p : (ptrdiff_t)strlen(p)) : 1, p ? p : "?");
        break;
    }
    case K_U32:
        fprintf(f, "%u", *(const uint32_t *)src);
        break;
    case K_DBL:
        fprintf(f, "%.17g", *(const double *)src);
        break;
    case K_SIZE: {
        uint64_t v = *(const uint64_t *)src;
        if (v && v % (1u << 30) == 0)
            fprintf(f, "%lluG", (unsigned long long)(v >> 30));
        else if (v && v % (1u << 20) == 0)
            fprintf(f, "%lluM", (unsigned long long)(v >> 20));
        else if (v && v % 1024 == 0)
            fprintf(f, "%lluK", (unsigned long long)(v >> 10));
        else
            fprintf(f, "%llu", (unsigned long long)v);
        break;
    }
    case K_DUR: {
        uint64_t v = *(const uint64_t *)src;
        static const struct {
            uint64_t ns;
            const char *u;
        } units[] = {{86400000000000ull, "d"}, {3600000000000ull, "h"}, {60000000000ull, "m"},
                     {1000000000ull, "s"},     {1000000ull, "ms"},      {1000ull, "us"}};
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (v && v % units[i].ns == 0) {
                fprintf(f, "%llu%s", (unsigned long long)(v / units[i].ns), units[i].u);
                return;
            }
        fprintf(f, "%lluns", (unsigned long long)v);
        break;
    }
    default:
        fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)src);
        break;
    }
}

/* Write a comment wrapped at about 96 columns. */
static void print_comment(FILE *f, const char *s)
{
    while (*s) {
        size_t n = strlen(s);
        if (n > 94) {
            n = 94;
            while (n > 20 && s[n] != ' ')
                n--;
        }
        fprintf(f, "; %.*s\n", (int)n, s);
        s += n;
        while (*s == ' ')
            s++;
    }
}

void config_print(FILE *f, const config_t *c)
{
    fprintf(f, "; tickcore configuration. Every capacity and policy of the engine, with its "
               "default.\n; Sizes take K/M/G (powers of 1024); durations ns/us/ms/s/m/h/d. "
               "Command-line flags\n; override these values; `tickcore replay --print-config` "
               "prints the effective set.\n");
    const char *section = "";
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(section, KEYS[i].section)) {
            section = KEYS[i].section;
            fprintf(f, "\n[%s]\n", section);
        }
        print_comment(f, KEYS[i].help);
        fprintf(f, "%s = ", KEYS[i].name);
        print_value(f, &KEYS[i], c);
        fputc('\n', f);
    }
}
