/*
 * plots: the pictures of a replay (`tickcore replay --plots DIR`). The engine writes plain data
 * files into DIR, gnuplot scripts and a graphviz graph beside them, and then runs gnuplot and
 * sfdp as external programs (posix_spawnp, in DIR) to turn them into PNGs; the data files stay
 * next to the PNGs, so every picture can be redrawn with `cd DIR && gnuplot heatmap.gp`.
 *
 * Two steps, because the matrices live only until the engine's teardown and the tools must run
 * after the memory check: plots_write_xsection runs inside replay_run after the cross-section is
 * computed (the correlation in cluster order, the true matrix when the generator's truth file is
 * known, the MST as a graphviz file, the PCA scree and loadings); plots_render runs after
 * replay_end on what the result holds (batch-latency histogram, stage busy/wait, the --rss-log
 * samples), writes the scripts and runs the tools. A missing tool is a message naming its Debian
 * package, never a failure: the data files are written either way.
 *
 * Files in DIR: order.csv (pos,symbol,cluster,sector,degree,betweenness: the heatmap's axis, each
 * cluster contiguous, MST breadth-first order inside a cluster), corr.dat (the correlation matrix
 * in that order, one row per line, the --corr-out values), truth.dat (the true matrix, same
 * order), mst.dot, pca.dat, loadings.dat, latency.dat, stages.dat, rss.dat, *.gp; PNGs
 * heatmap.png, mst.png, pca.png, latency.png, stages.png, memory.png (with --rss-log).
 *
 * Ownership: nothing is kept; scratch comes from mem/ inside a control scope (it runs after the
 * seal, as a control command) and goes back before the function returns. Threads: the caller's
 * (the replay's reader thread, with the pipeline drained); stdio and fork/exec, never the hot path.
 */
#ifndef TICKCORE_ENGINE_PLOTS_H
#define TICKCORE_ENGINE_PLOTS_H

#include "engine/replay.h"
#include "engine/xsection.h"

#include <stdio.h>

/* Debian packages of the external tools, for the messages. */
#define PLOTS_GNUPLOT_PKG  "gnuplot-nox"
#define PLOTS_GRAPHVIZ_PKG "graphviz"

/* After xsection_compute: the data of the heatmap, the MST and the PCA into dir (created if
 * missing). truth: the generator's truth file, or NULL. 0, or -errno with the path and reason in
 * err. */
int plots_write_xsection(const char *dir, const xsection_t *x, const char *truth, char *err,
                         size_t errlen);

/* After replay_end: latency, stages and (rss_log non-NULL) memory data, every script, and the
 * PNGs drawn by gnuplot and sfdp. Progress and a missing tool are said on msg. Returns 0, or 1
 * when a file could not be written or a tool failed (said on msg); a missing tool returns 0. */
int plots_render(const char *dir, const replay_result_t *res, const char *rss_log, FILE *msg);

#endif
