/*
 * graph: the correlation graph of a cross-section: Mantegna distances, the minimum spanning tree
 * (Prim on the dense matrix, O(N^2)), single-linkage clusters cut from the tree, and per-node
 * degree and tree betweenness. graph_init() sizes every array for max_n nodes in one block
 * charged to MEM_TAG_ANALYTICS; graph_mst() and the cuts only write into that block, so after
 * the seal they allocate nothing (no qsort: the tree edges are heap-sorted in place). The input
 * matrix stays the caller's and is only read. Edge order (documented because it decides ties):
 * edge {u,v} (u < v) comes before edge {u',v'} when its clamped correlation is larger (hence its
 * distance, a non-increasing function of rho, is not larger), then when (u,v) is
 * lexicographically smaller. This is a strict total order, so the tree is the unique minimum
 * spanning tree under it and does not depend on the algorithm: a Kruskal that sorts by (d, u, v)
 * finds the same edges whenever equal distances come from equal correlations (always, except
 * when sqrt rounding maps two different rho to the same double). The k-cut drops the k-1 last
 * edges of that order; the threshold cut drops the edges with d > threshold. Cluster labels are
 * numbered by first appearance in node order. Centrality is tree betweenness: for node v, the
 * number of unordered pairs {s,t} of other nodes whose tree path passes through v, computed in
 * O(N) from subtree sizes (the tree is rooted at node 0). One thread owns a graph_t; nothing
 * here is thread-safe.
 */
#ifndef TICKCORE_ANALYTICS_GRAPH_H
#define TICKCORE_ANALYTICS_GRAPH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define GRAPH_MAX_N (1u << 20) /* largest max_n accepted by graph_init */

/* One tree edge: u < v, rho clamped to [-1, 1], d = sqrt(2 (1 - rho)). */
typedef struct graph_edge {
    uint32_t u, v;
    double rho;
    double d;
} graph_edge_t;

typedef struct graph {
    /* Results of the last graph_mst(), valid until the next one (read-only for callers). */
    size_t n;            /* nodes of the current tree; 0 before graph_mst or after a refusal */
    size_t nedges;       /* n - 1 (0 when n <= 1) */
    double total;        /* sum of the edges' d, added lightest first */
    graph_edge_t *edges; /* nedges edges in edge order: lightest first */
    uint32_t *degree;    /* [n] edges at each node */
    uint64_t *between;   /* [n] tree betweenness: pairs {s,t}, s,t != v, routed through v */
    uint32_t *parent;    /* [n] parent in the tree rooted at node 0; UINT32_MAX for node 0 */
    uint32_t *order;     /* [n] nodes in breadth-first order from node 0 */
    /* Results of the last cut, valid until the next cut or graph_mst(). */
    size_t nclusters;       /* 0 until a cut succeeds */
    uint32_t *label;        /* [n] cluster of each node, 0..nclusters-1, by first appearance */
    uint32_t *cluster_size; /* [nclusters] nodes in each cluster */
    /* Refusals (bad arguments or input), counted. After a non-finite entry, its position. */
    uint64_t refused;
    size_t bad_row, bad_col;
    /* Private: sizes and scratch. */
    size_t max_n;
    void *block;
    size_t block_bytes;
    double *key;       /* Prim: best clamped rho to the tree, by remaining slot */
    uint32_t *key_to;  /* Prim: tree end of that edge, by remaining slot */
    uint32_t *rem;     /* Prim: nodes not yet in the tree */
    uint32_t *adj_off; /* [n+1] tree adjacency, CSR */
    uint32_t *adj;     /* [2(n-1)] */
    uint32_t *sub;     /* subtree sizes */
    uint64_t *sumsq;   /* sum of the squared sizes of the components around each node */
    uint32_t *uf;      /* union-find parent */
    uint32_t *uf_size;
    uint32_t *root_label;
} graph_t;

/* Mantegna distance of a correlation: rho is clamped to [-1, 1] (NaN is not handled here). */
static inline double graph_distance(double rho)
{
    if (rho > 1.0)
        rho = 1.0;
    else if (rho < -1.0)
        rho = -1.0;
    return sqrt(2.0 * (1.0 - rho));
}

/* Size every array for up to max_n nodes (one allocation, MEM_TAG_ANALYTICS). Returns 0,
 * -EINVAL (max_n 0 or > GRAPH_MAX_N) or -ENOMEM. Start-up; g is the caller's memory. */
int graph_init(graph_t *g, size_t max_n);
/* Free the block. A zeroed, never-initialised graph_t is accepted (no-op). */
void graph_fini(graph_t *g);

/* Minimum spanning tree of the n x n row-major correlation matrix corr (symmetric; the
 * diagonal is ignored), its degrees, betweenness and BFS order. Allocates nothing. Returns 0;
 * -EINVAL (counted in g->refused, g->n = 0) if corr is NULL with n > 0, n > max_n, or any entry
 * is NaN or infinite: then g->bad_row/bad_col name the first such entry found (rows are scanned
 * in the order nodes join the tree). n = 0 gives an empty tree. Symmetry is not checked here
 * (graph_check does): for each pair the tree reads the entry in the row of the node that joined
 * first. Invalidates the last cut. Owner thread. */
int graph_mst(graph_t *g, const double *corr, size_t n);

/* Clusters: drop the k-1 last tree edges in edge order (single linkage, k clusters). Allocates
 * nothing. Returns the number of clusters (k), or -EINVAL (counted; the last cut is kept) unless
 * min(1, n) <= k <= n for the current tree. */
int graph_cut_k(graph_t *g, size_t k);
/* Clusters: drop the tree edges with d > max_d (single linkage at a distance threshold; a
 * negative max_d leaves every node alone). Allocates nothing. Returns the number of clusters,
 * or -EINVAL (counted; the last cut is kept) if max_d is NaN. */
/* Like graph_cut_k, but an edge is cut (heaviest first) only if both sides keep at least
 * min_size nodes: single linkage that does not spend its cuts on outliers. Stops at k clusters
 * or when no edge qualifies (then fewer clusters). min_size 1 is graph_cut_k. Returns the number
 * of clusters, or -EINVAL. O(n^2); allocates nothing. */
int graph_cut_k_min(graph_t *g, size_t k, size_t min_size);
int graph_cut_threshold(graph_t *g, double max_d);

/* Betweenness of node v as a fraction of the (n-1)(n-2)/2 pairs that could pass through it. */
static inline double graph_between_norm(const graph_t *g, size_t v)
{
    if (g->n < 3)
        return 0.0;
    double pairs = (double)(g->n - 1) * (double)(g->n - 2) / 2.0;
    return (double)g->between[v] / pairs;
}

/* Validate a correlation matrix before use (control path or tests: one strided pass, O(N^2)).
 * Returns 0, or -EINVAL if corr is NULL with n > 0, tol is negative or NaN, an entry is NaN or
 * infinite, or |corr[i][j] - corr[j][i]| > tol; for a bad entry *row, *col (if not NULL) name
 * the first one in row-major order. Any thread. */
int graph_check(const double *corr, size_t n, double tol, size_t *row, size_t *col);

#endif
