/*
 * plots: see plots.h. Data files are written with stdio from what the cross-section and the
 * report hold; the order of the heatmap is a sort of the tracked symbols by (MST cluster, position
 * in the MST's breadth-first order), so a cluster is one contiguous block and neighbours in the
 * tree sit next to each other inside it. The scripts are plain text written beside the data
 * (paths relative to DIR) and the tools run with DIR as their working directory, their output on
 * our stderr (stdout stays clean for --json).
 */
#include "engine/plots.h"

#include "engine/truth.h"
#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Twelve distinguishable colours (Tableau + ColorBrewer): clusters and sectors, by number. */
static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                     "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                     "#bcbd22", "#17becf", "#393b79", "#e7ba52"};
#define NCOLORS (sizeof COLORS / sizeof COLORS[0])

/* dir/name opened for writing; NULL with the path and reason in err. */
static FILE *open_in(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(ENAMETOOLONG));
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

/* Close f; -EIO with the name in err if anything failed on the way. */
static int close_in(FILE *f, const char *dir, const char *name, char *err, size_t errlen)
{
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "%s/%s: write failed", dir, name);
        return -EIO;
    }
    return 0;
}

static int make_dir(const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 0;
    if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create the plots folder: %s", dir, strerror(e));
        return -e;
    }
    return 0;
}

typedef struct order_key {
    const uint32_t *label, *bfs;
} order_key_t;

static int by_cluster(const void *a, const void *b, void *ctx)
{
    const order_key_t *k = ctx;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (k->label[i] != k->label[j])
        return k->label[i] < k->label[j] ? -1 : 1;
    return k->bfs[i] < k->bfs[j] ? -1 : k->bfs[i] > k->bfs[j];
}

/* A symbol in a graphviz id: quoted, with " and \ escaped. */
static void dot_id(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void gp_colors(FILE *f)
{
    for (size_t i = 0; i < NCOLORS; i++)
        fprintf(f, "set linetype %zu lc rgb '%s'\n", i + 1, COLORS[i]);
}

/* The heatmap script: one panel (estimated) or two side by side (estimated, true). Cluster runs
 * of the order are outlined on the estimated panel, sector runs on the true one; the strips at
 * the left and the top are the sector (when known, else the cluster) and the cluster of each
 * row and column. */
static void heatmap_gp(FILE *f, size_t n, const uint32_t *lab, const uint32_t *sec, bool sectors,
                       bool truth)
{
    unsigned w = truth ? 1700 : 900, obj = 1;
    fprintf(f,
            "# tickcore replay --plots: the correlation heatmap (data: corr.dat%s, bands.dat)\n"
            "set terminal pngcairo size %u,860 noenhanced font ',11'\n"
            "set output 'heatmap.png'\n",
            truth ? ", truth.dat" : "", w);
    gp_colors(f);
    fprintf(f,
            "set palette defined (-1 '#2166ac', -0.5 '#92c5de', 0 '#f7f7f7', 0.5 '#f4a582', "
            "1 '#b2182b')\n"
            "set cbrange [-1:1]\nset size ratio -1\n"
            "set xrange [-5.5:%zu.5]\nset yrange [%zu.5:-5.5]\n"
            "set xtics out nomirror\nset ytics out nomirror\nset tics scale 0.5\n"
            "set xlabel 'symbol position (cluster order)'\n",
            n - 1, n - 1);
    if (truth)
        fputs("set multiplot layout 1,2 title 'correlation of bar returns: estimated (left) and "
              "the true matrix of the generator (right); strips: left = true sector, top = MST "
              "cluster'\n",
              f);
    const char *strips = sectors ? "'bands.dat' using (-3):1:(2):(0.5):(int($3) % 12 + 1)"
                                   " with boxxyerror fs solid 1 noborder lc variable notitle, "
                                   "'bands.dat' using 1:(-3):(0.5):(2):(int($2) % 12 + 1)"
                                   " with boxxyerror fs solid 1 noborder lc variable notitle"
                                 : "'bands.dat' using (-3):1:(2):(0.5):(int($2) % 12 + 1)"
                                   " with boxxyerror fs solid 1 noborder lc variable notitle, "
                                   "'bands.dat' using 1:(-3):(0.5):(2):(int($2) % 12 + 1)"
                                   " with boxxyerror fs solid 1 noborder lc variable notitle";
    /* runs of equal labels on the diagonal */
    for (int panel = 0; panel < (truth ? 2 : 1); panel++) {
        const uint32_t *l = panel == 0 ? lab : sec;
        for (size_t a = 0; a < n;) {
            size_t b = a;
            while (b + 1 < n && l[b + 1] == l[a])
                b++;
            fprintf(f,
                    "set object %u rect from %zu.5-1,%zu.5-1 to %zu.5,%zu.5 front "
                    "fs empty border rgb '%s' lw 1.5%s\n",
                    obj++, a, a, b, b, panel ? "#333333" : "black", panel ? " dt 2" : "");
            a = b + 1;
        }
        fprintf(f,
                "set title '%s (%zu symbols, %s outlined)'\n"
                "plot '%s' matrix with image notitle, %s\n",
                panel ? "true correlation" : "estimated correlation", n,
                panel ? "true sectors" : "MST clusters", panel ? "truth.dat" : "corr.dat", strips);
        fputs("unset object\n", f);
    }
    if (truth)
        fputs("unset multiplot\n", f);
}

static void pca_gp(FILE *f, size_t k, size_t n, double lim[2][2])
{
    fprintf(f, "# tickcore replay --plots: PCA scree and the first two loadings (pca.dat, "
               "loadings.dat)\n"
               "set terminal pngcairo size 1500,480 noenhanced font ',11'\n"
               "set output 'pca.png'\n");
    gp_colors(f);
    fprintf(f,
            "set multiplot layout 1,3\n"
            "set title 'scree: explained variance by component'\n"
            "set xlabel 'component'\nset ylabel 'share of the trace'\n"
            "set xrange [0.4:%zu.6]\nset yrange [0:1]\nset xtics 1\nset grid ytics\n"
            "set style fill solid 0.8 noborder\nset boxwidth 0.6\nset key top left\n"
            "plot 'pca.dat' using 1:2 with boxes lc rgb '#1f77b4' title 'component', "
            "'' using 1:3 with linespoints pt 7 lc rgb '#d62728' title 'cumulative'\n"
            "set xrange [-0.5:%zu.5]\nset xtics auto\nset boxwidth 1\nset xzeroaxis\n"
            "set xlabel 'symbol position (cluster order), colour = MST cluster'\n"
            "set ylabel 'loading'\nunset key\n"
            "set title 'PC1 loadings (the market factor)'\nset yrange [%.4g:%.4g]\n"
            "plot 'loadings.dat' using 1:4:(int($3) %% 12 + 1) with boxes lc variable\n"
            "set title 'PC2 loadings'\nset yrange [%.4g:%.4g]\n"
            "plot 'loadings.dat' using 1:5:(int($3) %% 12 + 1) with boxes lc variable\n"
            "unset multiplot\n",
            k, n - 1, lim[0][0], lim[0][1], lim[1][0], lim[1][1]);
}

int plots_write_xsection(const char *dir, const xsection_t *x, const char *truth, char *err,
                         size_t errlen)
{
    if (!x->have_result || x->n < 2) {
        snprintf(err, errlen, "no correlation to plot");
        return -EAGAIN;
    }
    int rc = make_dir(dir, err, errlen);
    if (rc < 0)
        return rc;
    const size_t n = x->n, N = x->max_n;
    const graph_t *g = &x->graph;
    const bool tree = x->graph_rc == 0 && g->n == n;
    mem_control_enter();
    uint32_t *perm = mem_alloc(MEM_TAG_ANALYTICS, n * sizeof *perm);
    uint32_t *lab = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof *lab); /* by position */
    uint32_t *sec = mem_alloc(MEM_TAG_ANALYTICS, n * sizeof *sec); /* by position */
    uint32_t *bfs = mem_alloc(MEM_TAG_ANALYTICS, n * sizeof *bfs);
    uint32_t *tsec = truth ? mem_alloc(MEM_TAG_ANALYTICS, n * sizeof *tsec) : NULL;
    double *trho = truth ? mem_alloc(MEM_TAG_ANALYTICS, n * n * sizeof *trho) : NULL;
    static const uint32_t zero_label = 0;
    FILE *f = NULL;
    const char *fname = "";
    rc = -ENOMEM;
    if (!perm || !lab || !sec || !bfs || (truth && (!tsec || !trho))) {
        snprintf(err, errlen, "plots: out of memory");
        goto out;
    }
    bool sectors = false, matrix = false; /* known from the truth file */
    if (truth) {
        char terr[256];
        if (truth_load(truth, x, trho, tsec, terr, sizeof terr) < 0) {
            fprintf(stderr, "tickcore replay: --plots: no truth: %s\n", terr);
        } else {
            sectors = matrix = true;
            for (size_t i = 0; i < n; i++)
                sectors = sectors && tsec[i] != TRUTH_NO_SECTOR;
            for (size_t i = 0; i < n * n && matrix; i++)
                matrix = isfinite(trho[i]); /* no matrix columns past GEN_TRUTH_MATRIX_MAX */
        }
    }
    /* the cluster order */
    const uint32_t *label = tree && x->nclusters ? g->label : NULL;
    for (size_t i = 0; i < n; i++) {
        perm[i] = (uint32_t)i;
        bfs[i] = (uint32_t)i;
    }
    if (tree)
        for (size_t i = 0; i < n; i++)
            bfs[g->order[i]] = (uint32_t)i;
    order_key_t key = {.label = label ? label : lab, .bfs = bfs};
    qsort_r(perm, n, sizeof *perm, by_cluster, &key);
    for (size_t p = 0; p < n; p++) {
        lab[p] = label ? label[perm[p]] : zero_label;
        sec[p] = sectors ? tsec[perm[p]] : lab[p];
    }

    fname = "order.csv";
    if (!(f = open_in(dir, fname, err, errlen)))
        goto fail;
    fputs("pos,symbol,cluster,sector,degree,betweenness\n", f);
    for (size_t p = 0; p < n; p++) {
        uint32_t i = perm[p];
        fprintf(f, "%zu,%s,%u,", p, symtab_name(x->symbols, x->locs[i]), lab[p]);
        if (sectors)
            fprintf(f, "%u", sec[p]);
        fprintf(f, ",%u,%.6g\n", tree ? g->degree[i] : 0, tree ? graph_between_norm(g, i) : 0.0);
    }
    if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
        goto out;
    fname = "bands.dat";
    if (!(f = open_in(dir, fname, err, errlen)))
        goto fail;
    fputs("# pos cluster sector (sector = cluster when the truth is not known)\n", f);
    for (size_t p = 0; p < n; p++)
        fprintf(f, "%zu %u %u\n", p, lab[p], sec[p]);
    if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
        goto out;
    /* the matrices in that order, the values --corr-out writes */
    for (int m = 0; m < (matrix ? 2 : 1); m++) {
        const double *a = m ? trho : x->compact;
        fname = m ? "truth.dat" : "corr.dat";
        if (!(f = open_in(dir, fname, err, errlen)))
            goto fail;
        for (size_t p = 0; p < n; p++) {
            for (size_t q = 0; q < n; q++)
                fprintf(f, q ? " %.17g" : "%.17g", a[(size_t)perm[p] * n + perm[q]]);
            fputc('\n', f);
        }
        if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
            goto out;
    }
    fname = "heatmap.gp";
    if (!(f = open_in(dir, fname, err, errlen)))
        goto fail;
    heatmap_gp(f, n, lab, sec, sectors, matrix);
    if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
        goto out;

    /* the MST: nodes coloured by cluster, each cluster's hub (highest betweenness) labelled */
    if (tree) {
        fname = "mst.dot";
        if (!(f = open_in(dir, fname, err, errlen)))
            goto fail;
        fprintf(f,
                "graph mst {\n"
                "  graph [overlap=prism, outputorder=edgesfirst, splines=false, bgcolor=white,"
                " fontsize=22, labelloc=t, label=\"correlation MST: %zu symbols, %zu clusters "
                "(colour); hubs labelled (highest betweenness of each cluster)\"];\n"
                "  node [shape=circle, style=filled, label=\"\", width=0.14, fixedsize=true,"
                " penwidth=0.4, color=\"#333333\"];\n"
                "  edge [color=\"#555555\"];\n",
                n, x->nclusters);
        size_t nc = x->nclusters ? x->nclusters : 1;
        for (size_t c = 0; c < nc; c++) {
            size_t hub = SIZE_MAX;
            for (size_t i = 0; i < n; i++)
                if ((label ? label[i] : 0) == c &&
                    (hub == SIZE_MAX || g->between[i] > g->between[hub]))
                    hub = i;
            for (size_t i = 0; i < n; i++) {
                if ((label ? label[i] : 0) != c)
                    continue;
                fputs("  ", f);
                dot_id(f, symtab_name(x->symbols, x->locs[i]));
                fprintf(f, " [fillcolor=\"%s\"", COLORS[c % NCOLORS]);
                if (i == hub) {
                    fputs(", shape=box, fixedsize=false, width=0, height=0, fontsize=18, "
                          "penwidth=1.5, label=",
                          f);
                    dot_id(f, symtab_name(x->symbols, x->locs[i]));
                }
                fputs("];\n", f);
            }
        }
        for (size_t e = 0; e < g->nedges; e++) {
            const graph_edge_t *ed = &g->edges[e];
            fputs("  ", f);
            dot_id(f, symtab_name(x->symbols, x->locs[ed->u]));
            fputs(" -- ", f);
            dot_id(f, symtab_name(x->symbols, x->locs[ed->v]));
            fprintf(f, " [penwidth=%.2f];\n", 0.5 + 2.5 * fabs(ed->rho));
        }
        fputs("}\n", f);
        if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
            goto out;
    }

    /* PCA: the scree (every component kept) and the first two loadings in the heatmap's order */
    if (x->pca_rc == 0 && x->pca.k >= 1) {
        const pca_t *pc = &x->pca;
        fname = "pca.dat";
        if (!(f = open_in(dir, fname, err, errlen)))
            goto fail;
        fputs("# component explained_share cumulative_share eigenvalue\n", f);
        double cum = 0;
        for (size_t i = 0; i < pc->k; i++) {
            cum += pc->ratio[i];
            fprintf(f, "%zu %.10g %.10g %.10g\n", i + 1, pc->ratio[i], cum, pc->values[i]);
        }
        if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
            goto out;
        fname = "loadings.dat";
        if (!(f = open_in(dir, fname, err, errlen)))
            goto fail;
        fputs("# pos symbol cluster pc1 pc2\n", f);
        double lim[2][2] = {{0, 0}, {0, 0}}; /* y ranges that hold 0 and every loading */
        for (size_t p = 0; p < n; p++) {
            size_t col = x->locs[perm[p]] - 1u;
            for (size_t c = 0; c < 2 && c < pc->k; c++) {
                double v = pc->vectors[c * N + col] * 1.1;
                lim[c][0] = v < lim[c][0] ? v : lim[c][0];
                lim[c][1] = v > lim[c][1] ? v : lim[c][1];
            }
            fprintf(f, "%zu %s %u %.10g %.10g\n", p, symtab_name(x->symbols, x->locs[perm[p]]),
                    lab[p], pc->vectors[col], pc->k > 1 ? pc->vectors[N + col] : 0.0);
        }
        if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
            goto out;
        for (int c = 0; c < 2; c++)
            if (!(lim[c][1] > lim[c][0]))
                lim[c][1] = lim[c][0] + 1; /* gnuplot refuses an empty range */
        fname = "pca.gp";
        if (!(f = open_in(dir, fname, err, errlen)))
            goto fail;
        pca_gp(f, pc->k, n, lim);
        if ((rc = close_in(f, dir, fname, err, errlen)) < 0)
            goto out;
    }
    rc = 0;
    goto out;
fail:
    rc = -EIO;
out:
    if (perm)
        mem_free(MEM_TAG_ANALYTICS, perm, n * sizeof *perm);
    if (lab)
        mem_free(MEM_TAG_ANALYTICS, lab, n * sizeof *lab);
    if (sec)
        mem_free(MEM_TAG_ANALYTICS, sec, n * sizeof *sec);
    if (bfs)
        mem_free(MEM_TAG_ANALYTICS, bfs, n * sizeof *bfs);
    if (tsec)
        mem_free(MEM_TAG_ANALYTICS, tsec, n * sizeof *tsec);
    if (trho)
        mem_free(MEM_TAG_ANALYTICS, trho, n * n * sizeof *trho);
    mem_control_leave();
    return rc;
}

/* ---- after the teardown: latency, stages, memory, and the tools ---------------------------- */

static int write_latency(const char *dir, const report_t *r, char *err, size_t errlen)
{
    FILE *f = open_in(dir, "latency.dat", err, errlen);
    if (!f)
        return -EIO;
    fprintf(f,
            "# batch latency, published -> applied, one sample per event: low_ns high_ns count"
            " (n %" PRIu64 ", p50 %" PRIu64 ", p99 %" PRIu64 ", p99.9 %" PRIu64 ")\n",
            r->lat_n, r->lat_p50, r->lat_p99, r->lat_p999);
    const histo_t *h = &r->lat_scratch;
    for (unsigned i = 0; i < HISTO_BUCKETS; i++)
        if (h->count[i])
            fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", histo_bucket_low(i),
                    i + 1 < HISTO_BUCKETS ? histo_bucket_low(i + 1) : UINT64_MAX, h->count[i]);
    if (close_in(f, dir, "latency.dat", err, errlen) < 0)
        return -EIO;
    if (!(f = open_in(dir, "latency.gp", err, errlen)))
        return -EIO;
    fprintf(f,
            "# tickcore replay --plots: batch latency histogram (latency.dat)\n"
            "set terminal pngcairo size 1000,520 noenhanced font ',11'\n"
            "set output 'latency.png'\n"
            "set title 'batch latency, published -> applied (%" PRIu64 " events): p50 %.3f ms, "
            "p99 %.3f ms, p99.9 %.3f ms'\n"
            "set logscale x\nset xlabel 'latency (ms)'\nset ylabel 'events'\n"
            "set logscale y\nset yrange [0.8:*]\nset grid\nset style fill solid 0.7 border "
            "rgb '#1f77b4'\n"
            "set arrow 1 from %g, graph 0 to %g, graph 1 nohead front dt 2 lw 2 lc rgb '#d62728'\n"
            "set arrow 2 from %g, graph 0 to %g, graph 1 nohead front dt 2 lw 2 lc rgb '#ff7f0e'\n"
            "plot 'latency.dat' using (sqrt(($1 > 0 ? $1 : 0.5) * $2) / 1e6):3:"
            "(($1 > 0 ? $1 : 0.5) / 1e6):($2 / 1e6):(0.8):3 with boxxyerror lc rgb '#1f77b4' "
            "notitle\n",
            r->lat_n, (double)r->lat_p50 / 1e6, (double)r->lat_p99 / 1e6, (double)r->lat_p999 / 1e6,
            (double)r->lat_p50 / 1e6, (double)r->lat_p50 / 1e6, (double)r->lat_p99 / 1e6,
            (double)r->lat_p99 / 1e6);
    return close_in(f, dir, "latency.gp", err, errlen);
}

static int write_stages(const char *dir, const report_t *r, char *err, size_t errlen)
{
    FILE *f = open_in(dir, "stages.dat", err, errlen);
    if (!f)
        return -EIO;
    double wall = r->wall;
    fputs("# stage busy_s waiting_s (waiting = the stage's wall time minus busy)\n", f);
    fprintf(f, "reader %.6f %.6f\n", r->reader_busy,
            wall > r->reader_busy ? wall - r->reader_busy : 0.0);
    for (unsigned w = 0; w < r->workers; w++)
        fprintf(f, "worker%u %.6f %.6f\n", w, r->worker_busy[w],
                r->worker_wall[w] > r->worker_busy[w] ? r->worker_wall[w] - r->worker_busy[w]
                                                      : 0.0);
    fprintf(f, "xsection %.6f %.6f\n", r->xs_busy, wall > r->xs_busy ? wall - r->xs_busy : 0.0);
    if (close_in(f, dir, "stages.dat", err, errlen) < 0)
        return -EIO;
    if (!(f = open_in(dir, "stages.gp", err, errlen)))
        return -EIO;
    fprintf(f,
            "# tickcore replay --plots: per-stage busy and waiting time (stages.dat)\n"
            "set terminal pngcairo size 900,480 noenhanced font ',11'\n"
            "set output 'stages.png'\n"
            "set title 'pipeline stages: busy and waiting (wall %.3f s; the reader waited %.3f s "
            "for free batches)'\n"
            "set style data histograms\nset style histogram rowstacked\n"
            "set style fill solid 0.8 border -1\nset boxwidth 0.6\n"
            "set ylabel 'seconds'\nset yrange [0:*]\nset grid ytics\nset key outside top right\n"
            "plot 'stages.dat' using 2:xtic(1) lc rgb '#1f77b4' title 'busy', "
            "'' using 3 lc rgb '#cccccc' title 'waiting'\n",
            wall, r->acquire_wait_s);
    return close_in(f, dir, "stages.gp", err, errlen);
}

/* The --rss-log samples copied beside the script (seconds rss_bytes messages churn_allocs). */
static int write_memory(const char *dir, const char *rss_log, char *err, size_t errlen)
{
    FILE *in = fopen(rss_log, "r");
    if (!in) {
        snprintf(err, errlen, "%s: cannot read: %s", rss_log, strerror(errno));
        return -EIO;
    }
    FILE *f = open_in(dir, "rss.dat", err, errlen);
    if (!f) {
        fclose(in);
        return -EIO;
    }
    fputs("# seconds rss_bytes messages allocations_after_seal (from --rss-log)\n", f);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, k, f);
    fclose(in);
    if (close_in(f, dir, "rss.dat", err, errlen) < 0)
        return -EIO;
    if (!(f = open_in(dir, "memory.gp", err, errlen)))
        return -EIO;
    fputs("# tickcore replay --plots: RSS and allocations after the seal over time (rss.dat)\n"
          "set terminal pngcairo size 1000,640 noenhanced font ',11'\n"
          "set output 'memory.png'\n"
          "set multiplot layout 2,1 title 'memory while replaying (sampled every 0.1 s)'\n"
          "set grid\nset xlabel 'seconds since the seal'\nunset key\n"
          "set ylabel 'RSS (MiB)'\nset yrange [0:*]\n"
          "plot 'rss.dat' using 1:($2 / 1048576) with lines lw 2 lc rgb '#1f77b4'\n"
          "set ylabel 'allocations after the seal'\nset yrange [-0.5:*]\n"
          "stats 'rss.dat' using 4 nooutput\n"
          "if (STATS_max < 1) set yrange [-0.5:5]\n"
          "plot 'rss.dat' using 1:4 with steps lw 2 lc rgb '#d62728'\n"
          "unset multiplot\n",
          f);
    return close_in(f, dir, "memory.gp", err, errlen);
}

/* Run argv in dir, its stdout onto our stderr. 0, -ENOENT when the program is not on PATH, or
 * 1 when it failed (said on msg). */
static int run_tool(const char *dir, char *const argv[], FILE *msg)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == ENOENT)
        return -ENOENT;
    if (rc != 0) {
        fprintf(msg, "tickcore replay: --plots: cannot run %s: %s\n", argv[0], strerror(rc));
        return 1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(msg, "tickcore replay: --plots: %s %s failed (in %s)\n", argv[0],
                argv[1] ? argv[1] : "", dir);
        return 1;
    }
    return 0;
}

static bool exists_in(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

int plots_render(const char *dir, const replay_result_t *res, const char *rss_log, FILE *msg)
{
    char err[4200];
    int failed = 0;
    if (make_dir(dir, err, sizeof err) < 0) {
        fprintf(msg, "tickcore replay: --plots: %s\n", err);
        return 1;
    }
    const report_t *r = &res->report;
    if (r->analytics &&
        (write_latency(dir, r, err, sizeof err) < 0 || write_stages(dir, r, err, sizeof err) < 0)) {
        fprintf(msg, "tickcore replay: --plots: %s\n", err);
        failed = 1;
    }
    if (rss_log && write_memory(dir, rss_log, err, sizeof err) < 0) {
        fprintf(msg, "tickcore replay: --plots: %s\n", err);
        failed = 1;
    }
    /* the scripts this run wrote, in the order of the README */
    static const char *const SCRIPTS[][2] = {
        {"heatmap.gp", "heatmap.png"}, {"pca.gp", "pca.png"},       {"latency.gp", "latency.png"},
        {"stages.gp", "stages.png"},   {"memory.gp", "memory.png"},
    };
    char made[512] = "";
    size_t len = 0;
    bool gnuplot_missing = false;
    for (size_t i = 0; i < sizeof SCRIPTS / sizeof SCRIPTS[0]; i++) {
        if (!exists_in(dir, SCRIPTS[i][0]) || gnuplot_missing)
            continue;
        if (!rss_log && strcmp(SCRIPTS[i][0], "memory.gp") == 0)
            continue; /* an older run's */
        char *argv[] = {"gnuplot", (char *)SCRIPTS[i][0], NULL};
        int rc = run_tool(dir, argv, msg);
        if (rc == -ENOENT) {
            fprintf(msg,
                    "tickcore replay: --plots: gnuplot not found on PATH: install the Debian "
                    "package " PLOTS_GNUPLOT_PKG " (apt-get install " PLOTS_GNUPLOT_PKG
                    "); the data files and scripts are in %s\n",
                    dir);
            gnuplot_missing = true;
        } else if (rc == 0) {
            len += (size_t)snprintf(made + len, sizeof made - len, " %s", SCRIPTS[i][1]);
        } else {
            failed = 1;
        }
    }
    if (exists_in(dir, "mst.dot")) {
        char *argv[] = {"sfdp", "-Tpng",   "-Gdpi=100", "-Gsize=14,10!",
                        "-o",   "mst.png", "mst.dot",   NULL};
        int rc = run_tool(dir, argv, msg);
        if (rc == -ENOENT)
            fprintf(msg,
                    "tickcore replay: --plots: sfdp not found on PATH: install the Debian "
                    "package " PLOTS_GRAPHVIZ_PKG " (apt-get install " PLOTS_GRAPHVIZ_PKG
                    "); the graph is in %s/mst.dot\n",
                    dir);
        else if (rc == 0)
            len += (size_t)snprintf(made + len, sizeof made - len, " %s", "mst.png");
        else
            failed = 1;
    }
    if (len)
        fprintf(msg, "tickcore replay: plots in %s:%s\n", dir, made);
    return failed;
}
