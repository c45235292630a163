/*
 * test_graph: the correlation MST against a brute-force Kruskal written here (every edge,
 * qsort by (d, u, v), a naive union-find), on sample correlations of random data for several n
 * and on matrices full of ties; the k-cut against components left after removing the heaviest
 * Kruskal edges and against a naive agglomerative single linkage on the full matrix; the
 * threshold cut against the components of the full threshold graph; betweenness against an
 * all-pairs count of tree paths; sector recovery on a simulated factor model (adjusted Rand
 * index from the contingency table); bad input; memory accounting; and 0 allocations in
 * graph_mst and the cuts (process-wide witness).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/graph.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

/* ---- reference helpers (independent of analytics/graph.c) ------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(uint64_t *s)
{
    double a = rng_unit(s), b = rng_unit(s);
    return sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b);
}

static double *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    assert_non_null(p);
    return p;
}

/* Sample correlation of the n series x[i*t .. i*t+t), computed the textbook way. */
static void naive_corr(const double *x, size_t n, size_t t, double *corr)
{
    double *mean = xcalloc(n, sizeof *mean), *ss = xcalloc(n, sizeof *ss);
    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < t; s++)
            mean[i] += x[i * t + s];
        mean[i] /= (double)t;
        for (size_t s = 0; s < t; s++)
            ss[i] += (x[i * t + s] - mean[i]) * (x[i * t + s] - mean[i]);
    }
    for (size_t i = 0; i < n; i++) {
        corr[i * n + i] = 1.0;
        for (size_t j = i + 1; j < n; j++) {
            double c = 0;
            for (size_t s = 0; s < t; s++)
                c += (x[i * t + s] - mean[i]) * (x[j * t + s] - mean[j]);
            corr[i * n + j] = corr[j * n + i] = c / sqrt(ss[i] * ss[j]);
        }
    }
    free(mean);
    free(ss);
}

/* Correlation of n random series of length t with a common factor of random strength, so the
 * correlations spread over (-1, 1). Caller frees. */
static double *random_corr(size_t n, size_t t, uint64_t seed)
{
    uint64_t s = seed;
    double *x = xcalloc(n * t, sizeof *x), *f = xcalloc(t, sizeof *f);
    double *corr = xcalloc(n * n > 0 ? n * n : 1, sizeof *corr);
    for (size_t k = 0; k < t; k++)
        f[k] = rng_gauss(&s);
    for (size_t i = 0; i < n; i++) {
        double beta = 2.0 * rng_unit(&s) - 1.0;
        for (size_t k = 0; k < t; k++)
            x[i * t + k] = beta * f[k] + rng_gauss(&s);
    }
    naive_corr(x, n, t, corr);
    free(x);
    free(f);
    return corr;
}

static double ref_dist(double rho)
{
    if (rho > 1)
        rho = 1;
    if (rho < -1)
        rho = -1;
    return sqrt(2.0 * (1.0 - rho));
}

typedef struct ref_edge {
    size_t u, v; /* u < v */
    double d;
} ref_edge_t;

static int ref_edge_cmp(const void *a, const void *b)
{
    const ref_edge_t *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return 0;
}

static size_t naive_root(const size_t *parent, size_t x)
{
    while (parent[x] != x)
        x = parent[x];
    return x;
}

/* Kruskal over all n(n-1)/2 edges sorted by (d, u, v). Fills tree[0..n-1), returns the total. */
static double ref_kruskal(const double *corr, size_t n, ref_edge_t *tree)
{
    size_t m = n * (n - 1) / 2, k = 0;
    ref_edge_t *all = calloc(m ? m : 1, sizeof *all);
    size_t *parent = calloc(n ? n : 1, sizeof *parent);
    assert_non_null(all);
    assert_non_null(parent);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            all[k++] = (ref_edge_t){i, j, ref_dist(corr[i * n + j])};
    qsort(all, m, sizeof *all, ref_edge_cmp);
    for (size_t i = 0; i < n; i++)
        parent[i] = i;
    double total = 0;
    size_t got = 0;
    for (size_t i = 0; i < m && got + 1 < n; i++) {
        size_t a = naive_root(parent, all[i].u), b = naive_root(parent, all[i].v);
        if (a != b) {
            parent[a] = b;
            tree[got++] = all[i];
            total += all[i].d;
        }
    }
    assert_int_equal(got, n ? n - 1 : 0);
    free(all);
    free(parent);
    return total;
}

/* Components of the graph on n nodes with the given edges (flood fill over an adjacency matrix),
 * numbered by first appearance in node order. Returns the number of components. */
static size_t naive_components(size_t n, const unsigned char *adjm, size_t *label)
{
    size_t *stack = calloc(n ? n : 1, sizeof *stack);
    assert_non_null(stack);
    size_t nc = 0;
    for (size_t v = 0; v < n; v++)
        label[v] = SIZE_MAX;
    for (size_t v = 0; v < n; v++) {
        if (label[v] != SIZE_MAX)
            continue;
        size_t top = 0;
        label[v] = nc;
        stack[top++] = v;
        while (top) {
            size_t x = stack[--top];
            for (size_t w = 0; w < n; w++)
                if (adjm[x * n + w] && label[w] == SIZE_MAX) {
                    label[w] = nc;
                    stack[top++] = w;
                }
        }
        nc++;
    }
    free(stack);
    return nc;
}

/* Renumber a labelling by first appearance in node order. */
static void normalize_labels(size_t n, size_t *label)
{
    size_t *map = malloc((n ? n : 1) * sizeof *map);
    assert_non_null(map);
    for (size_t i = 0; i < n; i++)
        map[i] = SIZE_MAX;
    size_t next = 0;
    for (size_t v = 0; v < n; v++) {
        if (map[label[v]] == SIZE_MAX)
            map[label[v]] = next++;
        label[v] = map[label[v]];
    }
    free(map);
}

static void expect_clusters(const graph_t *g, const size_t *label, size_t nc)
{
    assert_int_equal(g->nclusters, nc);
    for (size_t v = 0; v < g->n; v++)
        assert_int_equal(g->label[v], label[v]);
    for (size_t c = 0; c < nc; c++) {
        size_t size = 0;
        for (size_t v = 0; v < g->n; v++)
            size += label[v] == c;
        assert_int_equal(g->cluster_size[c], size);
    }
}

static void expect_same_tree(const graph_t *g, const double *corr, size_t n)
{
    ref_edge_t *tree = calloc(n ? n : 1, sizeof *tree);
    assert_non_null(tree);
    double total = ref_kruskal(corr, n, tree);
    assert_int_equal(g->n, n);
    assert_int_equal(g->nedges, n ? n - 1 : 0);
    assert_true(fabs(g->total - total) <= 1e-12 * (double)(n + 1));
    for (size_t i = 0; i + 1 < n; i++) {
        assert_int_equal(g->edges[i].u, tree[i].u);
        assert_int_equal(g->edges[i].v, tree[i].v);
        assert_true(fabs(g->edges[i].d - tree[i].d) <= 1e-15);
        assert_true(g->edges[i].rho >= -1.0 && g->edges[i].rho <= 1.0);
    }
    free(tree);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_graph_distance_values(void **state)
{
    (void)state;
    assert_true(graph_distance(1.0) == 0.0);
    assert_true(fabs(graph_distance(0.0) - sqrt(2.0)) < 1e-15);
    assert_true(graph_distance(-1.0) == 2.0);
    assert_true(fabs(graph_distance(0.5) - 1.0) < 1e-15);
    assert_true(graph_distance(1.25) == 0.0); /* clamped */
    assert_true(graph_distance(-3.0) == 2.0);
}

static void test_graph_mst_matches_kruskal(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 3, 7, 50, 300};
    graph_t g;
    assert_int_equal(graph_init(&g, 300), 0);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            size_t n = ns[a], t = n < 100 ? 60 : 40; /* t < n too: rank-deficient matrices */
            double *corr = random_corr(n, t, seed * 1000 + n);
            assert_int_equal(graph_mst(&g, corr, n), 0);
            expect_same_tree(&g, corr, n);
            free(corr);
        }
    }
    graph_fini(&g);
}

/* Correlations drawn from three values: many exact ties, decided by the (u, v) order. */
static void test_graph_mst_ties_follow_edge_order(void **state)
{
    (void)state;
    enum { N = 40 };
    static double corr[N * N];
    graph_t g;
    assert_int_equal(graph_init(&g, N), 0);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        uint64_t s = seed;
        for (size_t i = 0; i < N; i++) {
            corr[i * N + i] = 1.0;
            for (size_t j = i + 1; j < N; j++)
                corr[i * N + j] = corr[j * N + i] = 0.1 * (double)(1 + rng_next(&s) % 3);
        }
        assert_int_equal(graph_mst(&g, corr, N), 0);
        expect_same_tree(&g, corr, N);
        graph_edge_t first[N];
        memcpy(first, g.edges, sizeof first[0] * (N - 1));
        assert_int_equal(graph_mst(&g, corr, N), 0); /* deterministic */
        assert_memory_equal(first, g.edges, sizeof first[0] * (N - 1));
    }
    /* All equal: the smallest pairs win, a star around node 0. */
    for (size_t i = 0; i < N * N; i++)
        corr[i] = 0.3;
    assert_int_equal(graph_mst(&g, corr, N), 0);
    for (size_t i = 0; i < N - 1; i++) {
        assert_int_equal(g.edges[i].u, 0);
        assert_int_equal(g.edges[i].v, i + 1);
    }
    assert_int_equal(g.degree[0], N - 1);
    assert_int_equal(g.between[0], (N - 1) * (N - 2) / 2);
    assert_true(graph_between_norm(&g, 0) == 1.0);
    assert_int_equal(g.between[5], 0);
    graph_fini(&g);
}

static void test_graph_mst_clamps_out_of_range(void **state)
{
    (void)state;
    /* 0-1 at rho 1.7 (clamped to 1: d 0), 1-2 at -0.2, 0-2 at -4 (clamped to -1: d 2). */
    double corr[9] = {1, 1.7, -4, 1.7, 1, -0.2, -4, -0.2, 1};
    graph_t g;
    assert_int_equal(graph_init(&g, 3), 0);
    assert_int_equal(graph_mst(&g, corr, 3), 0);
    expect_same_tree(&g, corr, 3);
    assert_true(g.edges[0].d == 0.0 && g.edges[0].rho == 1.0);
    assert_true(fabs(g.edges[1].d - sqrt(2.4)) < 1e-15);
    assert_true(fabs(g.total - sqrt(2.4)) < 1e-15);
    /* 1-2 at -1.5 clamps to -1, a tie with 0-2 at -1 (both d 2): the smaller pair wins. */
    corr[5] = corr[7] = -1.5;
    corr[2] = corr[6] = -1.0;
    assert_int_equal(graph_mst(&g, corr, 3), 0);
    expect_same_tree(&g, corr, 3);
    assert_int_equal(g.edges[1].u, 0);
    assert_int_equal(g.edges[1].v, 2);
    assert_true(g.edges[1].d == 2.0);
    graph_fini(&g);
}

/* k clusters: the components left after removing the k-1 heaviest Kruskal edges. */
static void check_cut_k(graph_t *g, const double *corr, size_t n, size_t k)
{
    ref_edge_t *tree = calloc(n, sizeof *tree);
    unsigned char *adjm = calloc(n * n, 1);
    size_t *label = calloc(n, sizeof *label);
    assert_true(tree && adjm && label);
    ref_kruskal(corr, n, tree);
    for (size_t i = 0; i + k < n; i++) /* keep the n-k lightest */
        adjm[tree[i].u * n + tree[i].v] = adjm[tree[i].v * n + tree[i].u] = 1;
    size_t nc = naive_components(n, adjm, label);
    assert_int_equal(nc, k);
    assert_int_equal(graph_cut_k(g, k), (int)k);
    expect_clusters(g, label, nc);
    free(tree);
    free(adjm);
    free(label);
}

static void test_graph_cut_k_matches_naive(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 3, 10, 50, 300};
    graph_t g;
    assert_int_equal(graph_init(&g, 300), 0);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        double *corr = random_corr(n, 50, 77 + n);
        assert_int_equal(graph_mst(&g, corr, n), 0);
        if (n <= 50) {
            for (size_t k = 1; k <= n; k++)
                check_cut_k(&g, corr, n, k);
        } else {
            static const size_t ks[] = {1, 2, 3, 5, 10, 50, 150, 299, 300};
            for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
                check_cut_k(&g, corr, n, ks[i]);
        }
        free(corr);
    }
    graph_fini(&g);
}

/* graph_cut_k_min the naive way: the Kruskal tree, then its edges heaviest first; an edge is cut
 * when, with every edge cut so far and this one removed, the flood fill gives both of its ends
 * components of at least m nodes. Stops at k components. */
static void check_cut_k_min(graph_t *g, const double *corr, size_t n, size_t k, size_t m)
{
    ref_edge_t *tree = calloc(n, sizeof *tree);
    unsigned char *adjm = calloc(n * n, 1);
    size_t *label = calloc(n, sizeof *label), *size = calloc(n, sizeof *size);
    assert_true(tree && adjm && label && size);
    ref_kruskal(corr, n, tree);
    for (size_t i = 0; i + 1 < n; i++)
        adjm[tree[i].u * n + tree[i].v] = adjm[tree[i].v * n + tree[i].u] = 1;
    size_t comps = 1;
    for (size_t i = n - 1; i-- > 0 && comps < k;) {
        size_t u = tree[i].u, v = tree[i].v;
        adjm[u * n + v] = adjm[v * n + u] = 0;
        size_t nc = naive_components(n, adjm, label);
        for (size_t c = 0; c < nc; c++)
            size[c] = 0;
        for (size_t x = 0; x < n; x++)
            size[label[x]]++;
        if (size[label[u]] >= m && size[label[v]] >= m)
            comps = nc;
        else
            adjm[u * n + v] = adjm[v * n + u] = 1;
    }
    size_t nc = naive_components(n, adjm, label);
    assert_int_equal(graph_cut_k_min(g, k, m), (int)nc);
    expect_clusters(g, label, nc);
    for (size_t c = 0; c < nc && nc > 1; c++)
        assert_true(g->cluster_size[c] >= m);
    free(tree);
    free(adjm);
    free(label);
    free(size);
}

static void test_graph_cut_k_min_matches_naive(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 7, 40, 120};
    graph_t g;
    assert_int_equal(graph_init(&g, 120), 0);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        double *corr = random_corr(n, 30, 555 + n);
        assert_int_equal(graph_mst(&g, corr, n), 0);
        static const size_t ks[] = {1, 2, 3, 5, 10};
        static const size_t ms[] = {1, 2, 3, 5, 20};
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
            for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
                if (ks[i] <= n)
                    check_cut_k_min(&g, corr, n, ks[i], ms[j]);
        /* min 1 is the plain cut */
        if (n >= 3) {
            assert_int_equal(graph_cut_k_min(&g, 3, 1), 3);
            uint32_t lab[120];
            memcpy(lab, g.label, n * sizeof *lab);
            assert_int_equal(graph_cut_k(&g, 3), 3);
            assert_memory_equal(lab, g.label, n * sizeof *lab);
        }
        free(corr);
    }
    assert_int_equal(graph_cut_k_min(&g, 1, 0), -EINVAL);
    graph_fini(&g);
}

/* Single linkage the textbook way, on the full matrix: merge the two clusters at the smallest
 * distance between any of their members until k clusters are left. O(n^3) per merge at worst. */
static void naive_single_linkage(const double *corr, size_t n, size_t k, size_t *label)
{
    for (size_t v = 0; v < n; v++)
        label[v] = v;
    for (size_t left = n; left > k; left--) {
        double best = INFINITY;
        size_t la = 0, lb = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (label[i] != label[j] && ref_dist(corr[i * n + j]) < best) {
                    best = ref_dist(corr[i * n + j]);
                    la = label[i];
                    lb = label[j];
                }
        for (size_t v = 0; v < n; v++)
            if (label[v] == lb)
                label[v] = la;
    }
    normalize_labels(n, label);
}

static void test_graph_cut_k_is_single_linkage(void **state)
{
    (void)state;
    enum { N = 30 };
    graph_t g;
    assert_int_equal(graph_init(&g, N), 0);
    double *corr = random_corr(N, 80, 4242);
    assert_int_equal(graph_mst(&g, corr, N), 0);
    size_t label[N];
    for (size_t k = 1; k <= N; k++) {
        naive_single_linkage(corr, N, k, label);
        assert_int_equal(graph_cut_k(&g, k), (int)k);
        expect_clusters(&g, label, k);
    }
    free(corr);
    graph_fini(&g);
}

/* Threshold cut of the tree = components of the full graph of pairs with d <= t. */
static void check_cut_threshold(graph_t *g, const double *corr, size_t n, double t)
{
    unsigned char *adjm = calloc(n * n, 1);
    size_t *label = calloc(n, sizeof *label);
    assert_true(adjm && label);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            adjm[i * n + j] = i != j && ref_dist(corr[i * n + j]) <= t;
    size_t nc = naive_components(n, adjm, label);
    assert_int_equal(graph_cut_threshold(g, t), (int)nc);
    expect_clusters(g, label, nc);
    free(adjm);
    free(label);
}

static void test_graph_cut_threshold_matches_threshold_graph(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 5, 50, 120};
    graph_t g;
    assert_int_equal(graph_init(&g, 120), 0);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        double *corr = random_corr(n, 50, 991 + n);
        assert_int_equal(graph_mst(&g, corr, n), 0);
        check_cut_threshold(&g, corr, n, -1.0);
        check_cut_threshold(&g, corr, n, 0.0);
        check_cut_threshold(&g, corr, n, INFINITY);
        for (size_t i = 0; i < g.nedges; i += 1 + n / 20) {
            double d = g.edges[i].d;
            check_cut_threshold(&g, corr, n, d); /* exactly at an edge: kept */
            check_cut_threshold(&g, corr, n, nextafter(d, 0.0));
            if (i + 1 < g.nedges)
                check_cut_threshold(&g, corr, n, 0.5 * (d + g.edges[i + 1].d));
        }
        free(corr);
    }
    graph_fini(&g);
}

/* Betweenness by brute force: for every pair, walk the tree path and count its inner nodes. */
static void check_betweenness(const graph_t *g, const double *corr, size_t n)
{
    ref_edge_t *tree = calloc(n, sizeof *tree);
    unsigned char *adjm = calloc(n * n, 1);
    size_t *prev = calloc(n, sizeof *prev), *queue = calloc(n, sizeof *queue);
    uint64_t *count = calloc(n, sizeof *count);
    size_t *deg = calloc(n, sizeof *deg);
    assert_true(tree && adjm && prev && queue && count && deg);
    ref_kruskal(corr, n, tree);
    for (size_t i = 0; i + 1 < n; i++) {
        adjm[tree[i].u * n + tree[i].v] = adjm[tree[i].v * n + tree[i].u] = 1;
        deg[tree[i].u]++;
        deg[tree[i].v]++;
    }
    for (size_t s = 0; s < n; s++) {
        for (size_t v = 0; v < n; v++)
            prev[v] = SIZE_MAX;
        size_t head = 0, tail = 0;
        queue[tail++] = s;
        prev[s] = s;
        while (head < tail) {
            size_t x = queue[head++];
            for (size_t w = 0; w < n; w++)
                if (adjm[x * n + w] && prev[w] == SIZE_MAX) {
                    prev[w] = x;
                    queue[tail++] = w;
                }
        }
        assert_int_equal(tail, n); /* a spanning tree reaches every node */
        for (size_t t = s + 1; t < n; t++)
            for (size_t x = prev[t]; x != s; x = prev[x])
                count[x]++;
    }
    for (size_t v = 0; v < n; v++) {
        assert_int_equal(g->between[v], count[v]);
        assert_int_equal(g->degree[v], deg[v]);
    }
    /* parent/order: a BFS of the same tree from node 0. */
    if (n > 0) {
        assert_int_equal(g->order[0], 0);
        assert_int_equal(g->parent[0], UINT32_MAX);
    }
    size_t *pos = calloc(n ? n : 1, sizeof *pos);
    assert_non_null(pos);
    for (size_t i = 0; i < n; i++)
        pos[g->order[i]] = i + 1;
    for (size_t v = 0; v < n; v++)
        assert_true(pos[v] > 0); /* a permutation */
    for (size_t v = 1; v < n; v++) {
        assert_true(adjm[v * n + g->parent[v]]);
        assert_true(pos[g->parent[v]] < pos[v]);
    }
    free(pos);
    free(tree);
    free(adjm);
    free(prev);
    free(queue);
    free(count);
    free(deg);
}

static void test_graph_betweenness_matches_path_count(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 3, 4, 10, 40, 90};
    graph_t g;
    assert_int_equal(graph_init(&g, 90), 0);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (uint64_t seed = 1; seed <= 2; seed++) {
            size_t n = ns[a];
            double *corr = random_corr(n, 30, seed * 31 + n);
            assert_int_equal(graph_mst(&g, corr, n), 0);
            check_betweenness(&g, corr, n);
            free(corr);
        }
    }
    /* By hand: a path 0-1-2-3-4 (neighbours at rho 0.9, the rest at 0). */
    double corr[25] = {0};
    for (size_t i = 0; i < 5; i++) {
        corr[i * 5 + i] = 1;
        if (i + 1 < 5)
            corr[i * 5 + i + 1] = corr[(i + 1) * 5 + i] = 0.9;
    }
    assert_int_equal(graph_mst(&g, corr, 5), 0);
    static const uint64_t want[5] = {0, 3, 4, 3, 0}; /* 1*3, 2*2, 3*1 pairs split */
    static const uint32_t want_deg[5] = {1, 2, 2, 2, 1};
    for (size_t v = 0; v < 5; v++) {
        assert_int_equal(g.between[v], want[v]);
        assert_int_equal(g.degree[v], want_deg[v]);
    }
    assert_true(fabs(graph_between_norm(&g, 2) - 4.0 / 6.0) < 1e-15);
    assert_true(fabs(g.total - 4.0 * sqrt(0.2)) < 1e-14);
    graph_fini(&g);
}

/* Adjusted Rand index from the contingency table (Hubert and Arabie 1985). */
static double ari(const size_t *a, const size_t *b, size_t n)
{
    size_t ka = 0, kb = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] + 1 > ka)
            ka = a[i] + 1;
        if (b[i] + 1 > kb)
            kb = b[i] + 1;
    }
    double *tab = xcalloc(ka * kb, sizeof *tab), *ra = xcalloc(ka, sizeof *ra);
    double *rb = xcalloc(kb, sizeof *rb);
    for (size_t i = 0; i < n; i++) {
        tab[a[i] * kb + b[i]] += 1;
        ra[a[i]] += 1;
        rb[b[i]] += 1;
    }
#define C2(x) ((x) * ((x)-1) / 2)
    double idx = 0, sa = 0, sb = 0;
    for (size_t i = 0; i < ka * kb; i++)
        idx += C2(tab[i]);
    for (size_t i = 0; i < ka; i++)
        sa += C2(ra[i]);
    for (size_t j = 0; j < kb; j++)
        sb += C2(rb[j]);
    double expected = sa * sb / C2((double)n);
    double max = 0.5 * (sa + sb);
#undef C2
    free(tab);
    free(ra);
    free(rb);
    return (idx - expected) / (max - expected);
}

static void test_graph_ari_reference_values(void **state)
{
    (void)state;
    size_t a[4] = {0, 0, 1, 1}, b[4] = {0, 0, 1, 2}, c[4] = {1, 1, 0, 0};
    /* By hand: sum C(n_ij,2) = 1, rows 2, columns 1, C(4,2) = 6: (1-1/3)/(3/2-1/3) = 4/7. */
    assert_true(fabs(ari(a, b, 4) - 4.0 / 7.0) < 1e-15);
    assert_true(fabs(ari(a, c, 4) - 1.0) < 1e-15); /* same partition, other names */
    size_t d[4] = {0, 1, 0, 1}; /* crosses a: index 0, expected 2*2/6: (0-2/3)/(2-2/3) = -1/2 */
    assert_true(fabs(ari(a, d, 4) + 0.5) < 1e-15);
}

/* Returns of N stocks in K sectors: market + sector + idiosyncratic noise, T periods. */
static void test_graph_factor_model_recovers_sectors(void **state)
{
    (void)state;
    enum { N = 100, T = 500, K = 5 };
    uint64_t s = 20240601;
    double *x = xcalloc((size_t)N * T, sizeof *x), *corr = xcalloc((size_t)N * N, sizeof *corr);
    double *mkt = xcalloc(T, sizeof *mkt), *sec = xcalloc((size_t)K * T, sizeof *sec);
    size_t sector[N];
    for (size_t i = 0; i < N; i++)
        sector[i] = i % K;
    for (size_t i = N - 1; i > 0; i--) { /* shuffle, so sectors are not node blocks */
        size_t j = rng_next(&s) % (i + 1), tmp = sector[i];
        sector[i] = sector[j];
        sector[j] = tmp;
    }
    for (size_t t = 0; t < T; t++) {
        mkt[t] = 0.01 * rng_gauss(&s);
        for (size_t k = 0; k < K; k++)
            sec[k * T + t] = 0.01 * rng_gauss(&s);
    }
    for (size_t i = 0; i < N; i++) {
        double bm = 0.4 + 0.4 * rng_unit(&s), bs = 0.6 + 0.4 * rng_unit(&s);
        for (size_t t = 0; t < T; t++)
            x[i * T + t] = bm * mkt[t] + bs * sec[sector[i] * T + t] + 0.008 * rng_gauss(&s);
    }
    naive_corr(x, N, T, corr);
    graph_t g;
    assert_int_equal(graph_init(&g, N), 0);
    assert_int_equal(graph_mst(&g, corr, N), 0);
    assert_int_equal(graph_cut_k(&g, K), K);
    size_t label[N];
    for (size_t i = 0; i < N; i++)
        label[i] = g.label[i];
    double score = ari(sector, label, N);
    print_message("factor model N=%d T=%d K=%d: ARI %.4f\n", N, T, K, score);
    assert_true(score >= 0.9);
    graph_fini(&g);
    free(x);
    free(corr);
    free(mkt);
    free(sec);
}

static void test_graph_hot_path_allocates_nothing(void **state)
{
    (void)state;
    size_t n = RUNNING_ON_VALGRIND ? 60 : 300;
    int rounds = RUNNING_ON_VALGRIND ? 3 : 20;
    double *corr = random_corr(n, 40, 5);
    graph_t g;
    assert_int_equal(graph_init(&g, n), 0);
    assert_int_equal(graph_mst(&g, corr, n), 0); /* warm-up: first touch of the block */
    mem_seal();
    mem_snapshot_t s0, s1;
    mem_snapshot(&s0);
    malloc_count_t before;
    malloc_count_get(&before);
    uint64_t sum = 0;
    for (int r = 0; r < rounds; r++) {
        assert_int_equal(graph_mst(&g, corr, n), 0);
        assert_int_equal(graph_cut_k(&g, 7), 7);
        assert_true(graph_cut_k_min(&g, 7, 3) >= 1);
        sum += g.label[n - 1];
        assert_true(graph_cut_threshold(&g, g.edges[n / 2].d) > 0);
        sum += g.nclusters;
        assert_int_equal(graph_cut_k(&g, 0), -EINVAL); /* refusals allocate nothing either */
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_snapshot(&s1);
    assert_int_equal(s1.total.allocs, s0.total.allocs);
    assert_int_equal(s1.total.churn_allocs, 0);
    assert_true(sum > 0);
    mem_unseal();
    graph_fini(&g);
    free(corr);
}

static void test_graph_bad_input_refused(void **state)
{
    (void)state;
    graph_t g;
    assert_int_equal(graph_init(&g, 0), -EINVAL);
    assert_null(g.block);
    assert_int_equal(graph_init(&g, (size_t)GRAPH_MAX_N + 1), -EINVAL);
    graph_fini(&g); /* zeroed: no-op */
    enum { N = 12 };
    double *corr = random_corr(N, 30, 9);
    assert_int_equal(graph_init(&g, N), 0);
    assert_int_equal(graph_mst(&g, corr, N + 1), -EINVAL);
    assert_int_equal(graph_mst(&g, NULL, 3), -EINVAL);
    assert_int_equal(g.refused, 2);
    assert_int_equal(graph_mst(&g, NULL, 0), 0); /* empty universe: empty tree */
    assert_int_equal(g.n, 0);
    assert_int_equal(graph_cut_k(&g, 0), 0);
    assert_int_equal(graph_cut_threshold(&g, 1.0), 0);
    assert_int_equal(graph_cut_k(&g, 1), -EINVAL);

    assert_int_equal(graph_mst(&g, corr, N), 0);
    assert_int_equal(graph_cut_k(&g, 3), 3);
    uint64_t refused = g.refused;
    assert_int_equal(graph_cut_k(&g, 0), -EINVAL);
    assert_int_equal(graph_cut_k(&g, N + 1), -EINVAL);
    assert_int_equal(graph_cut_threshold(&g, NAN), -EINVAL);
    assert_int_equal(g.refused, refused + 3);
    assert_int_equal(g.nclusters, 3); /* the last cut is kept */

    /* Non-finite entries: refused, the position is reported, no tree is left behind. */
    double keep = corr[3 * N + 7];
    corr[3 * N + 7] = corr[7 * N + 3] = NAN;
    assert_int_equal(graph_mst(&g, corr, N), -EINVAL);
    assert_true((g.bad_row == 3 && g.bad_col == 7) || (g.bad_row == 7 && g.bad_col == 3));
    assert_int_equal(g.n, 0);
    assert_int_equal(g.nclusters, 0);
    corr[7 * N + 3] = keep; /* only one of the pair is bad: still found */
    assert_int_equal(graph_mst(&g, corr, N), -EINVAL);
    assert_int_equal(g.bad_row, 3);
    assert_int_equal(g.bad_col, 7);
    corr[3 * N + 7] = keep;
    corr[5 * N + 5] = -INFINITY; /* even on the diagonal */
    assert_int_equal(graph_mst(&g, corr, N), -EINVAL);
    assert_int_equal(g.bad_row, 5);
    assert_int_equal(g.bad_col, 5);
    corr[5 * N + 5] = 1.0;
    assert_int_equal(graph_mst(&g, corr, N), 0);

    /* graph_check: symmetry, finiteness, arguments. */
    size_t r = 99, c = 99;
    assert_int_equal(graph_check(corr, N, 0.0, &r, &c), 0);
    assert_int_equal(graph_check(NULL, 0, 0.0, NULL, NULL), 0);
    assert_int_equal(graph_check(NULL, 2, 0.0, NULL, NULL), -EINVAL);
    assert_int_equal(graph_check(corr, N, -1.0, NULL, NULL), -EINVAL);
    assert_int_equal(graph_check(corr, N, NAN, NULL, NULL), -EINVAL);
    corr[9 * N + 2] += 1e-3;
    assert_int_equal(graph_check(corr, N, 1e-6, &r, &c), -EINVAL);
    assert_int_equal(r, 2); /* (2, 9) comes first in row-major order */
    assert_int_equal(c, 9);
    assert_int_equal(graph_check(corr, N, 1e-2, &r, &c), 0);
    corr[9 * N + 2] -= 1e-3;
    corr[4 * N + 1] = INFINITY;
    assert_int_equal(graph_check(corr, N, 1e-6, &r, &c), -EINVAL);
    assert_int_equal(r, 4);
    assert_int_equal(c, 1);
    graph_fini(&g);
    free(corr);
}

static void test_graph_memory_is_accounted(void **state)
{
    (void)state;
    mem_snapshot_t s;
    graph_t g;
    assert_int_equal(graph_init(&g, 1000), 0);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live, (int64_t)g.block_bytes);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live_blocks, 1);
    /* every per-node array fits: 1000 nodes of edges alone is 24 kB */
    assert_true(g.block_bytes >= 1000 * sizeof(graph_edge_t) + 1000 * 16 * sizeof(uint32_t));
    graph_fini(&g);
    graph_fini(&g); /* twice: no-op */
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live, 0);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live_blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_graph_distance_values, reset_counters),
        cmocka_unit_test_setup(test_graph_mst_matches_kruskal, reset_counters),
        cmocka_unit_test_setup(test_graph_mst_ties_follow_edge_order, reset_counters),
        cmocka_unit_test_setup(test_graph_mst_clamps_out_of_range, reset_counters),
        cmocka_unit_test_setup(test_graph_cut_k_matches_naive, reset_counters),
        cmocka_unit_test_setup(test_graph_cut_k_min_matches_naive, reset_counters),
        cmocka_unit_test_setup(test_graph_cut_k_is_single_linkage, reset_counters),
        cmocka_unit_test_setup(test_graph_cut_threshold_matches_threshold_graph, reset_counters),
        cmocka_unit_test_setup(test_graph_betweenness_matches_path_count, reset_counters),
        cmocka_unit_test_setup(test_graph_ari_reference_values, reset_counters),
        cmocka_unit_test_setup(test_graph_factor_model_recovers_sectors, reset_counters),
        cmocka_unit_test_setup(test_graph_hot_path_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_graph_bad_input_refused, reset_counters),
        cmocka_unit_test_setup(test_graph_memory_is_accounted, reset_counters),
    };
    return cmocka_run_group_tests_name("graph", tests, NULL, NULL);
}
