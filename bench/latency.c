/* latency.c - see latency.h. */
#include "latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double LAT_MIN_MS = 1e-3, LAT_GROWTH = 1.01;

static int bucket_of(double ms) {
    if (!(ms > LAT_MIN_MS)) return 0;
    int b = (int)(log(ms / LAT_MIN_MS) / log(LAT_GROWTH));
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

static void hist_add(lat_hist *h, double ms) {
    h->count[bucket_of(ms)]++;
    h->n++;
    h->sum += ms;
    h->sumsq += ms * ms;
    if (ms > h->max) h->max = ms;
}

static void hist_merge(lat_hist *d, const lat_hist *s) {
    for (int b = 0; b < LAT_BUCKETS; b++) d->count[b] += s->count[b];
    d->n += s->n;
    d->sum += s->sum;
    d->sumsq += s->sumsq;
    if (s->max > d->max) d->max = s->max;
}

/* The geometric middle of the bucket holding the sample of rank p% (nearest
 * rank), clamped to the exact maximum. */
double lat_hist_percentile(const lat_hist *h, double p) {
    if (!h->n) return 0.0;
    size_t rank = (size_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1) rank = 1;
    size_t seen = 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= rank) {
            double mid = LAT_MIN_MS * pow(LAT_GROWTH, b + 0.5);
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}

lat_stats lat_hist_stats(const lat_hist *h) {
    lat_stats s = {0};
    s.n = h->n;
    if (!h->n) return s;
    s.avg = h->sum / (double)h->n;
    double var = h->n > 1 ? (h->sumsq - h->sum * s.avg) / (double)(h->n - 1) : 0.0;
    s.sd = var > 0 ? sqrt(var) : 0.0;
    s.p50 = lat_hist_percentile(h, 50);
    s.p95 = lat_hist_percentile(h, 95);
    s.p99 = lat_hist_percentile(h, 99);
    s.max = h->max;
    return s;
}

int lat_init(lat_recorder *r, double first_end_s, double last_start_s) {
    memset(r, 0, sizeof *r);
    r->first_end_s = first_end_s;
    r->last_start_s = last_start_s;
    r->stride = 1;
    r->pts = malloc(LAT_POINTS * sizeof *r->pts);
    if (!r->pts) return 0;
    /* Touch every page now, not during the run. (Not memset to 0: the compiler
     * may turn malloc+memset into calloc, which leaves fresh pages untouched.) */
    for (size_t i = 0; i < LAT_POINTS; i++) r->pts[i] = (lat_point){-1.0, -1.0, -1};
    return 1;
}

void lat_free(lat_recorder *r) {
    free(r->pts);
    r->pts = NULL;
}

static void add_point(lat_recorder *r, lat_point p) {
    if (r->seen++ % r->stride) return;
    if (r->n_pts == LAT_POINTS) { /* full: keep every other point, halve the rate */
        for (size_t i = 0; i < LAT_POINTS / 2; i++) r->pts[i] = r->pts[2 * i];
        r->n_pts = LAT_POINTS / 2;
        r->stride *= 2;
        if ((r->seen - 1) % r->stride) return;
    }
    r->pts[r->n_pts++] = p;
}

void lat_add(lat_recorder *r, double t_s, double ms, int stream) {
    hist_add(&r->all, ms);
    if (t_s < r->first_end_s) hist_add(&r->first, ms);
    if (t_s >= r->last_start_s) hist_add(&r->last, ms);
    add_point(r, (lat_point){t_s, ms, stream});
}

void lat_merge(lat_recorder *dst, const lat_recorder *src) {
    hist_merge(&dst->all, &src->all);
    hist_merge(&dst->first, &src->first);
    hist_merge(&dst->last, &src->last);
    for (size_t i = 0; i < src->n_pts; i++) add_point(dst, src->pts[i]);
}
