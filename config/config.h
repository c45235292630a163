/*
 * config: every capacity and policy of the engine in one place, read from an INI file
 * (config/tickcore.ini, parsed with libinih) and overridden by command-line flags.
 *
 * The keys live in one table (config.c): section, name, type, bounds, default and the comment
 * that --print-config writes above each key, so the default file, the parser, the validation
 * and the documentation cannot drift apart (a test parses config/tickcore.ini and checks that it
 * equals the built-in defaults). Unknown sections or keys, values that do not parse, and values
 * out of bounds are errors that name the file, the line and the key; the caller exits 2.
 * Sizes take K/M/G suffixes (powers of 1024), durations ns/us/ms/s/m/h/d. Parsing happens at
 * start-up, before the seal; nothing here allocates afterwards.
 */
#ifndef TICKCORE_CONFIG_CONFIG_H
#define TICKCORE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cfg_bad_input { CFG_BAD_STOP = 0, CFG_BAD_SKIP } cfg_bad_input_t;
typedef enum cfg_returns { CFG_RETURNS_MID = 0, CFG_RETURNS_TRADE } cfg_returns_t;
typedef enum cfg_role { CFG_ROLE_SHARD = 0, CFG_ROLE_XSECTION } cfg_role_t;
typedef enum cfg_estimator {
    CFG_EST_CLOSE = 0,
    CFG_EST_REFRESH,
    CFG_EST_SUBSAMPLE,
    CFG_EST_TWOSCALE,
    CFG_EST_AUTO /* resolved by config_estimator */
} cfg_estimator_t;
typedef enum cfg_shrinkage {
    CFG_SHRINK_NONE = 0,
    CFG_SHRINK_LW,
    CFG_SHRINK_LW_BLOCK,
    CFG_SHRINK_AUTO /* resolved by config_estimator */
} cfg_shrinkage_t;
typedef enum cfg_overflow { CFG_OVERFLOW_BLOCK = 0, CFG_OVERFLOW_DROP } cfg_overflow_t;
typedef enum cfg_fsync { CFG_FSYNC_BATCH = 0, CFG_FSYNC_INTERVAL, CFG_FSYNC_OFF } cfg_fsync_t;

typedef struct config {
    /* [input] */
    uint32_t io_buffers;
    uint64_t io_buffer_size;
    uint32_t io_queue_depth;
    uint32_t gz_buffers;
    uint64_t gz_buffer_size;
    uint32_t inflate_threads;
    uint32_t batch_events;
    uint64_t max_line;
    uint32_t on_bad_input; /* cfg_bad_input_t */
    bool csv_require_order;
    /* [symbols] */
    uint32_t max_symbols;
    /* [book] */
    uint32_t max_orders;
    uint32_t max_levels;
    /* [stats] */
    uint64_t bar_interval_ns;
    uint32_t bar_history;
    uint32_t break_window;
    uint32_t day_bars; /* 0: no day store */
    uint32_t day_symbols;
    /* [matrix] */
    uint32_t matrix_symbols;
    uint32_t matrix_returns;   /* cfg_returns_t */
    uint32_t matrix_estimator; /* cfg_estimator_t */
    uint32_t subsample_grids;  /* 0: auto */
    uint32_t matrix_shrinkage; /* cfg_shrinkage_t */
    uint32_t window;
    uint32_t update_batch;
    uint32_t recompute_every;
    double ewma_lambda;
    uint32_t blas_threads;
    uint32_t pca_components;
    /* [graph] */
    uint32_t clusters;
    uint32_t min_cluster;
    double cluster_distance;
    /* [pipeline] */
    uint32_t workers;
    uint32_t batches;
    uint32_t ring_slots;
    bool pin_cpus;
    uint32_t live_overflow; /* cfg_overflow_t */
    /* [live]: `tickcore serve` feeds */
    char tcp_addr[16];
    uint32_t tcp_port;
    char udp_addr[16];
    uint32_t udp_port;
    char udp_allow[19]; /* CIDR: see config_cidr */
    char session[11];
    char username[7];
    char password[11];
    uint32_t max_clients;
    uint32_t max_pending;
    uint64_t recv_buffer;
    uint64_t max_packet;
    uint64_t login_timeout_ns;
    uint64_t idle_timeout_ns;
    uint64_t heartbeat_ns;
    uint32_t udp_buffers;
    uint64_t udp_buffer_size;
    uint64_t reorder_store;
    uint64_t gap_timeout_ns;
    uint64_t rerequest_ns;
    /* [journal] */
    char journal_path[256];
    uint32_t journal_fsync; /* cfg_fsync_t */
    uint64_t journal_fsync_interval_ns;
    uint64_t journal_buffer_size;
    uint32_t journal_buffers;
    /* [cluster]: NATS JetStream (feed --to nats://, serve as a shard) */
    char cluster_nats[256]; /* nats://host:port; empty: serve takes no NATS input */
    char cluster_stream[33];
    char cluster_subject[33]; /* subject prefix: <prefix>.<shard> */
    uint32_t cluster_shards;
    uint32_t cluster_shard;
    uint64_t cluster_packet_bytes;
    uint64_t cluster_flush_ns;
    uint32_t cluster_max_pending;
    uint32_t cluster_fetch_batch;
    uint32_t cluster_role;  /* CFG_ROLE_*: a shard, or the cross-section node */
    bool cluster_rows_only; /* a shard publishes its bar rows and computes no cross-section */
    char cluster_rows_stream[33];
    char cluster_rows_subject[33];
    uint32_t cluster_join_window;
    uint64_t cluster_join_deadline_ns;
    /* [http] */
    bool http_boost; /* http.boost: HTTP thread ahead of ingest in the scheduler */
    char http_addr[16];
    uint32_t http_port;
    char http_token[128];
    uint32_t http_max_connections;
    uint64_t http_max_request;
    uint64_t http_response_buffer;
    bool http_correlation_csv; /* /v1/correlation?format=csv and its two buffers */
    uint64_t http_timeout_ns;
    uint64_t http_header_timeout_ns;
    uint32_t http_per_ip;
    uint32_t http_response_buffers;
    /* [server] */
    uint64_t snapshot_interval_ns;
    uint64_t analytics_interval_ns;
    uint32_t snapshot_depth;
    char log_path[256];
    /* [report] */
    uint32_t top_symbols;
} config_t;

void config_default(config_t *c);

/* Parse an INI file over *c (keys not in the file keep their value). 0, or -1 with a message
 * "FILE:LINE: ..." in err. */
int config_load(config_t *c, const char *path, char *err, size_t errlen);

/* Set one key from the command line, "section.key=value" or ("section.key", "value").
 * 0 or -1 with a message in err. Rules between keys (matrix.symbols <= symbols.max_symbols, ...)
 * are checked by config_check once every flag is in, so the order of --set flags does not
 * matter. */
int config_set(config_t *c, const char *key, const char *value, char *err, size_t errlen);

/* The rules between keys. 0, or -1 with a message naming the keys. */
int config_check(const config_t *c, char *err, size_t errlen);
/* The estimator that matrix.estimator, matrix.subsample_grids and matrix.shrinkage stand for
 * once `auto` (and K = 0) are resolved against stats.bar_interval, matrix.window and
 * matrix.ewma_lambda; a key set to anything else is taken as it is. auto: intraday bars (shorter
 * than CFG_AUTO_NOISY_BAR_NS) get twoscale over returns of about CFG_AUTO_HORIZON_NS (K = the
 * bars in it, at least 2, at most a window's CFG_AUTO_GRID_ROWS-th) with ledoit-wolf-block
 * shrinkage; daily and other long bars, an EWMA window, or a window too short for K = 2 get close
 * without shrinkage, the textbook computation. Why these: README, estimators. */
#define CFG_AUTO_NOISY_BAR_NS (5ull * 60 * 1000000000)
#define CFG_AUTO_HORIZON_NS   (2ull * 60 * 1000000000)
#define CFG_AUTO_GRID_ROWS    30u
typedef struct cfg_estimator_choice {
    uint32_t estimator; /* cfg_estimator_t, never CFG_EST_AUTO */
    uint32_t grids;     /* K (subsample, twoscale; 1 otherwise) */
    uint32_t shrinkage; /* cfg_shrinkage_t, never CFG_SHRINK_AUTO */
    bool automatic;     /* matrix.estimator was auto */
} cfg_estimator_choice_t;
void config_estimator(const config_t *c, cfg_estimator_choice_t *out);

/* An IPv4 network "a.b.c.d/bits" (a bare address is /32) as *net and *mask in host byte order;
 * 0, or -1 with err naming what is wrong (not an address, bits past 32, host bits set). */
int config_cidr(const char *s, uint32_t *net, uint32_t *mask, char *err, size_t errlen);

/* The effective configuration as an INI file, every key with its comment. */
void config_print(FILE *f, const config_t *c);

#endif
