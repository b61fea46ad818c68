/* latency_svg.c - build/bench --svg: per-token latency over time and a
 * latency histogram, as one self-contained SVG file (no plotting library). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "latency.h"

#define SVG_W 820
#define SVG_PLOT_W 700
#define SVG_PLOT_H 220
#define SVG_LEFT 80

static const char *svg_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void svg_axes(FILE *f, int top, const char *xlabel, const char *ylabel, double xmax, double ymax) {
    int bottom = top + SVG_PLOT_H;
    fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", SVG_LEFT, bottom, SVG_LEFT + SVG_PLOT_W, bottom);
    fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", SVG_LEFT, top, SVG_LEFT, bottom);
    for (int i = 0; i <= 5; i++) {
        int x = SVG_LEFT + SVG_PLOT_W * i / 5, y = bottom - SVG_PLOT_H * i / 5;
        fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%.3g</text>\n", x, bottom + 16, xmax * i / 5);
        fprintf(f, "<text x='%d' y='%d' text-anchor='end'>%.3g</text>\n", SVG_LEFT - 6, y + 4, ymax * i / 5);
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#ddd'/>\n", SVG_LEFT + 1, y, SVG_LEFT + SVG_PLOT_W, y);
    }
    fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%s</text>\n", SVG_LEFT + SVG_PLOT_W / 2, bottom + 34, xlabel);
    fprintf(f, "<text x='18' y='%d' text-anchor='middle' transform='rotate(-90 18 %d)'>%s</text>\n",
            top + SVG_PLOT_H / 2, top + SVG_PLOT_H / 2, ylabel);
}

/* Latency (ms) of every token against time, one colour per stream. */
static void svg_timeline(FILE *f, const lat_recorder *s, double ymax, int top) {
    double tmax = 0;
    for (size_t i = 0; i < s->n_pts; i++) if (s->pts[i].t_s > tmax) tmax = s->pts[i].t_s;
    if (tmax <= 0) tmax = 1;
    fprintf(f, "<text x='%d' y='%d' font-weight='bold'>Per-token latency over time</text>\n", SVG_LEFT, top - 10);
    svg_axes(f, top, "time since start (s)", "latency (ms)", tmax, ymax);
    for (size_t i = 0; i < s->n_pts; i++) { /* at most LAT_POINTS, evenly decimated */
        double x = SVG_LEFT + s->pts[i].t_s / tmax * SVG_PLOT_W;
        double y = top + SVG_PLOT_H - fmin(s->pts[i].ms / ymax, 1.0) * SVG_PLOT_H;
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='1.2' fill='%s'/>\n", x, y, svg_colors[s->pts[i].stream % 8]);
    }
}

/* Histogram of latencies in 40 bins over [0, xmax]; the last bin holds the overflow. */
static void svg_histogram(FILE *f, const lat_recorder *s, double xmax, int top) {
    enum { BINS = 40 };
    size_t count[BINS] = {0}, cmax = 1;
    for (size_t i = 0; i < s->n_pts; i++) {
        int b = (int)(s->pts[i].ms / xmax * BINS);
        count[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
    }
    for (int b = 0; b < BINS; b++) if (count[b] > cmax) cmax = count[b];
    fprintf(f, "<text x='%d' y='%d' font-weight='bold'>Latency histogram (%zu of %zu tokens, evenly sampled; last bar includes all &gt;= %.3g ms)</text>\n",
            SVG_LEFT, top - 10, s->n_pts, s->all.n, xmax * (BINS - 1) / BINS);
    svg_axes(f, top, "latency (ms)", "tokens", xmax, (double)cmax);
    for (int b = 0; b < BINS; b++) {
        double h = (double)count[b] / (double)cmax * SVG_PLOT_H;
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#1f77b4' stroke='white'/>\n",
                SVG_LEFT + (double)b * SVG_PLOT_W / BINS, top + SVG_PLOT_H - h, (double)SVG_PLOT_W / BINS, h);
    }
}

int lat_write_svg(const char *path, const lat_recorder *s, const lat_stats *st, const char *title) {
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno)); return 0; }
    double ymax = st->p99 > 0 ? st->p99 * 1.5 : 1.0;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='680' font-family='sans-serif' font-size='12'>\n", SVG_W);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='%d' y='22' font-size='15' font-weight='bold'>%s</text>\n", SVG_LEFT, title);
    fprintf(f, "<text x='%d' y='40'>p50 %.3f ms, p95 %.3f ms, p99 %.3f ms, max %.3f ms (y axis clipped at 1.5 x p99)</text>\n",
            SVG_LEFT, st->p50, st->p95, st->p99, st->max);
    svg_timeline(f, s, ymax, 80);
    svg_histogram(f, s, ymax, 400);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}
