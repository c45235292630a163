/*
 * graph: Prim's algorithm on the dense correlation matrix, then everything else in O(N) or
 * O(N log N) on the tree. Prim works in correlation space: the distance is a non-increasing
 * function of the clamped rho, so "nearest" is "most correlated" and no square root is taken in
 * the O(N^2) loop (only for the N-1 tree edges). The nodes not yet in the tree live in a compact
 * array (rem, with their best key and its tree end in parallel arrays), removed by swapping with
 * the last, so step j scans N-j slots; the row of the node that just joined is read once, and
 * first checked for NaN and infinities as a whole, so every entry of the matrix is checked.
 * Ties are resolved by the edge order of graph.h in both the key update and the selection, so
 * the swap order of rem cannot change the result. The tree edges are then heap-sorted (in place,
 * no allocation) into edge order, the adjacency is built as CSR, a breadth-first pass from node 0
 * gives parents and subtree sizes, and the betweenness of v is the number of pairs split by v:
 * ((n-1)^2 - sum of the squared sizes of the components of T - v) / 2. Cuts run a union-find
 * (union by size, path halving) over the kept edges. Every array is carved from the one block
 * that graph_init allocates; graph_fini returns it.
 */
#include "analytics/graph.h"

#include "base/hints.h"
#include "mem/mem.h"

#include <errno.h>
#include <float.h>
#include <stdbool.h>
#include <string.h>

#define GRAPH_NONE UINT32_MAX

/* Carve the arrays for max_n nodes out of base (or only measure when base is NULL). */
static size_t graph_layout(graph_t *g, char *base, size_t max_n)
{
    size_t off = 0;
#define GRAPH_CARVE(field, count)                                                                  \
    do {                                                                                           \
        off = (off + MEM_CACHE_LINE - 1) & ~(size_t)(MEM_CACHE_LINE - 1);                          \
        if (base)                                                                                  \
            g->field = (void *)(base + off);                                                       \
        off += sizeof(*g->field) * (count);                                                        \
    } while (0)
    GRAPH_CARVE(edges, max_n);
    GRAPH_CARVE(degree, max_n);
    GRAPH_CARVE(between, max_n);
    GRAPH_CARVE(parent, max_n);
    GRAPH_CARVE(order, max_n);
    GRAPH_CARVE(label, max_n);
    GRAPH_CARVE(cluster_size, max_n);
    GRAPH_CARVE(key, max_n);
    GRAPH_CARVE(key_to, max_n);
    GRAPH_CARVE(rem, max_n);
    GRAPH_CARVE(adj_off, max_n + 1);
    GRAPH_CARVE(adj, 2 * max_n);
    GRAPH_CARVE(sub, max_n);
    GRAPH_CARVE(sumsq, max_n);
    GRAPH_CARVE(uf, max_n);
    GRAPH_CARVE(uf_size, max_n);
    GRAPH_CARVE(root_label, max_n);
#undef GRAPH_CARVE
    return off;
}

int graph_init(graph_t *g, size_t max_n)
{
    memset(g, 0, sizeof *g);
    if (max_n == 0 || max_n > GRAPH_MAX_N)
        return -EINVAL;
    size_t bytes = graph_layout(g, NULL, max_n);
    char *base = mem_zalloc_aligned(MEM_TAG_ANALYTICS, bytes, MEM_CACHE_LINE);
    if (!base)
        return -ENOMEM;
    graph_layout(g, base, max_n);
    g->block = base;
    g->block_bytes = bytes;
    g->max_n = max_n;
    return 0;
}

void graph_fini(graph_t *g)
{
    if (g->block)
        mem_free(MEM_TAG_ANALYTICS, g->block, g->block_bytes);
    memset(g, 0, sizeof *g);
}

/* Is pair {a,b} before pair {c,d}, both as (min, max) in lexicographic order? */
static inline bool pair_less(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    uint32_t lo1 = a < b ? a : b, hi1 = a < b ? b : a;
    uint32_t lo2 = c < d ? c : d, hi2 = c < d ? d : c;
    return lo1 < lo2 || (lo1 == lo2 && hi1 < hi2);
}

/* The edge order of graph.h: larger rho first, then the smaller pair. */
static inline bool edge_before(const graph_edge_t *x, const graph_edge_t *y)
{
    return x->rho > y->rho || (x->rho == y->rho && pair_less(x->u, x->v, y->u, y->v));
}

static inline double clamp_rho(double x)
{
    return x > 1.0 ? 1.0 : (x < -1.0 ? -1.0 : x);
}

/* Index of the first NaN or infinite entry of row[0..n), or n if there is none. */
static size_t row_first_bad(const double *row, size_t n)
{
    int bad = 0;
    for (size_t j = 0; j < n; j++)
        bad |= !(fabs(row[j]) <= DBL_MAX);
    if (likely(!bad))
        return n;
    for (size_t j = 0; j < n; j++)
        if (!(fabs(row[j]) <= DBL_MAX))
            return j;
    return n;
}

static void sift_down(graph_edge_t *e, size_t root, size_t len)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= len)
            return;
        /* Max-heap of "later in edge order", so the sort ends lightest first. */
        if (c + 1 < len && edge_before(&e[c], &e[c + 1]))
            c++;
        if (!edge_before(&e[root], &e[c]))
            return;
        graph_edge_t t = e[root];
        e[root] = e[c];
        e[c] = t;
        root = c;
    }
}

static void edges_heap_sort(graph_edge_t *e, size_t len)
{
    if (len < 2)
        return;
    for (size_t i = len / 2; i-- > 0;)
        sift_down(e, i, len);
    for (size_t end = len - 1; end > 0; end--) {
        graph_edge_t t = e[0];
        e[0] = e[end];
        e[end] = t;
        sift_down(e, 0, end);
    }
}

/* Degrees, CSR adjacency, BFS order and parents from node 0, subtree sizes, betweenness. */
static void tree_measure(graph_t *g)
{
    size_t n = g->n;
    memset(g->degree, 0, n * sizeof *g->degree);
    for (size_t i = 0; i < g->nedges; i++) {
        g->degree[g->edges[i].u]++;
        g->degree[g->edges[i].v]++;
    }
    g->adj_off[0] = 0;
    for (size_t v = 0; v < n; v++) {
        g->adj_off[v + 1] = g->adj_off[v] + g->degree[v];
        g->sub[v] = g->adj_off[v]; /* fill cursor */
    }
    for (size_t i = 0; i < g->nedges; i++) {
        uint32_t u = g->edges[i].u, v = g->edges[i].v;
        g->adj[g->sub[u]++] = v;
        g->adj[g->sub[v]++] = u;
    }
    g->order[0] = 0;
    g->parent[0] = GRAPH_NONE;
    size_t tail = 1;
    for (size_t head = 0; head < tail; head++) {
        uint32_t x = g->order[head];
        for (uint32_t a = g->adj_off[x]; a < g->adj_off[x + 1]; a++) {
            uint32_t w = g->adj[a];
            if (w != g->parent[x]) {
                g->parent[w] = x;
                g->order[tail++] = w;
            }
        }
    }
    for (size_t v = 0; v < n; v++) {
        g->sub[v] = 1;
        g->sumsq[v] = 0;
    }
    for (size_t i = n; i-- > 1;) {
        uint32_t v = g->order[i];
        g->sub[g->parent[v]] += g->sub[v];
        g->sumsq[g->parent[v]] += (uint64_t)g->sub[v] * g->sub[v];
    }
    uint64_t all = (uint64_t)(n - 1) * (n - 1);
    for (size_t v = 0; v < n; v++) {
        uint64_t up = n - g->sub[v]; /* the component holding the parent side */
        g->between[v] = (all - g->sumsq[v] - up * up) / 2;
    }
}

int graph_mst(graph_t *g, const double *corr, size_t n)
{
    g->n = 0;
    g->nedges = 0;
    g->total = 0.0;
    g->nclusters = 0;
    if (n > g->max_n || (n > 0 && !corr)) {
        g->refused++;
        return -EINVAL;
    }
    if (n == 0)
        return 0;
    double *key = g->key;
    uint32_t *key_to = g->key_to, *rem = g->rem;
    size_t m = n - 1;
    for (size_t i = 0; i < m; i++) {
        rem[i] = (uint32_t)(i + 1);
        key[i] = -INFINITY;
        key_to[i] = GRAPH_NONE;
    }
    size_t ne = 0;
    uint32_t u = 0;
    for (;;) {
        const double *row = corr + (size_t)u * n;
        size_t bad = row_first_bad(row, n);
        if (unlikely(bad < n)) {
            g->bad_row = u;
            g->bad_col = bad;
            g->refused++;
            return -EINVAL;
        }
        if (m == 0)
            break;
        /* Branch-free in the common case (the compiler turns both ifs into selects); an exact
         * tie in rho takes the rare path that compares pairs. */
        size_t best = 0;
        double best_key = -INFINITY;
        for (size_t i = 0; i < m; i++) {
            uint32_t v = rem[i];
            double r = clamp_rho(row[v]), k = key[i];
            if (unlikely(r == k) && pair_less(u, v, key_to[i], v))
                key_to[i] = u;
            key_to[i] = r > k ? u : key_to[i];
            k = r > k ? r : k;
            key[i] = k;
            if (unlikely(k == best_key) && pair_less(key_to[i], v, key_to[best], rem[best]))
                best = i;
            best = k > best_key ? i : best;
            best_key = k > best_key ? k : best_key;
        }
        uint32_t v = rem[best], p = key_to[best];
        graph_edge_t *e = &g->edges[ne++];
        e->u = p < v ? p : v;
        e->v = p < v ? v : p;
        e->rho = key[best];
        e->d = graph_distance(key[best]);
        m--;
        rem[best] = rem[m];
        key[best] = key[m];
        key_to[best] = key_to[m];
        u = v;
    }
    edges_heap_sort(g->edges, ne);
    double total = 0.0;
    for (size_t i = 0; i < ne; i++)
        total += g->edges[i].d;
    g->n = n;
    g->nedges = ne;
    g->total = total;
    tree_measure(g);
    return 0;
}

static uint32_t uf_find(uint32_t *uf, uint32_t x)
{
    while (uf[x] != x) {
        uf[x] = uf[uf[x]];
        x = uf[x];
    }
    return x;
}

static void uf_union(graph_t *g, uint32_t a, uint32_t b)
{
    a = uf_find(g->uf, a);
    b = uf_find(g->uf, b);
    if (a == b)
        return;
    if (g->uf_size[a] < g->uf_size[b] || (g->uf_size[a] == g->uf_size[b] && b < a)) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    g->uf[b] = a;
    g->uf_size[a] += g->uf_size[b];
}

/* Every node its own set of one. */
static void uf_reset(graph_t *g)
{
    for (size_t v = 0; v < g->n; v++) {
        g->uf[v] = (uint32_t)v;
        g->uf_size[v] = 1;
    }
}

/* Union the edges whose cut flag is 0. */
static void uf_union_uncut(graph_t *g, const uint32_t *cut)
{
    for (size_t j = 0; j < g->nedges; j++)
        if (!cut[j])
            uf_union(g, g->edges[j].u, g->edges[j].v);
}

/* Label the union-find sets as clusters, by first appearance. Returns the number of clusters. */
static int label_clusters(graph_t *g)
{
    size_t n = g->n;
    for (size_t v = 0; v < n; v++)
        g->root_label[v] = GRAPH_NONE;
    uint32_t nc = 0;
    for (size_t v = 0; v < n; v++) {
        uint32_t r = uf_find(g->uf, (uint32_t)v);
        if (g->root_label[r] == GRAPH_NONE) {
            g->root_label[r] = nc;
            g->cluster_size[nc++] = 0;
        }
        g->label[v] = g->root_label[r];
        g->cluster_size[g->label[v]]++;
    }
    g->nclusters = nc;
    return (int)nc;
}

/* Union the first keep edges of the edge order, or (keep == SIZE_MAX) those with d <= max_d;
 * then label the components by first appearance. Returns the number of clusters. */
static int cut_apply(graph_t *g, size_t keep, double max_d)
{
    uf_reset(g);
    for (size_t i = 0; i < g->nedges; i++) {
        const graph_edge_t *e = &g->edges[i];
        if (keep == SIZE_MAX ? e->d <= max_d : i < keep)
            uf_union(g, e->u, e->v);
    }
    return label_clusters(g);
}

int graph_cut_k(graph_t *g, size_t k)
{
    size_t lo = g->n ? 1 : 0;
    if (k < lo || k > g->n) {
        g->refused++;
        return -EINVAL;
    }
    return cut_apply(g, g->n - k, 0.0);
}

int graph_cut_k_min(graph_t *g, size_t k, size_t min_size)
{
    size_t lo = g->n ? 1 : 0;
    if (k < lo || k > g->n || min_size < 1) {
        g->refused++;
        return -EINVAL;
    }
    if (min_size == 1)
        return cut_apply(g, g->n - k, 0.0);
    /* Heaviest edge first, cut it only if both sides keep min_size nodes; the flags live in
     * sub[] (scratch once tree_measure is done): 1 = cut. O(n) per candidate, O(n^2) in all. */
    uint32_t *cut = g->sub;
    size_t cuts = 0;
    for (size_t i = 0; i < g->nedges; i++)
        cut[i] = 0;
    for (size_t i = g->nedges; i-- > 0 && cuts + 1 < k;) {
        cut[i] = 1;
        uf_reset(g);
        uf_union_uncut(g, cut);
        const graph_edge_t *e = &g->edges[i];
        if (g->uf_size[uf_find(g->uf, e->u)] >= min_size &&
            g->uf_size[uf_find(g->uf, e->v)] >= min_size)
            cuts++;
        else /* it would split off fewer than min_size nodes: an outlier, not a cluster */
            cut[i] = 0;
    }
    uf_reset(g);
    uf_union_uncut(g, cut);
    return label_clusters(g);
}

int graph_cut_threshold(graph_t *g, double max_d)
{
    if (isnan(max_d)) {
        g->refused++;
        return -EINVAL;
    }
    return cut_apply(g, SIZE_MAX, max_d);
}

int graph_check(const double *corr, size_t n, double tol, size_t *row, size_t *col)
{
    if ((n > 0 && !corr) || !(tol >= 0.0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            double x = corr[i * n + j];
            bool bad = !(fabs(x) <= DBL_MAX);
            if (!bad && j != i) {
                double y = corr[j * n + i];
                bad = fabs(y) <= DBL_MAX && !(fabs(x - y) <= tol);
            }
            if (bad) {
                if (row)
                    *row = i;
                if (col)
                    *col = j;
                return -EINVAL;
            }
        }
    }
    return 0;
}
