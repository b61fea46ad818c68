/* latency.h - a fixed-memory recorder of per-token latencies for build/bench.
 *
 * A soak run of 10 minutes at 10k tokens/s yields millions of samples; storing
 * them would make the benchmark's own memory grow and hide (or fake) growth in
 * the runtime it measures. The recorder therefore allocates everything when it
 * is created and never again:
 *   - exact count, mean, sd and max;
 *   - percentiles from a log-spaced histogram (1% wide buckets from 1 us, so a
 *     reported percentile is within 0.5% of the true sample);
 *   - the same histogram for a first and a last time window (latency drift);
 *   - up to LAT_POINTS (time, latency, stream) points for plots, decimated
 *     evenly when the run is longer (every 2nd, then every 4th, ... sample). */
#ifndef BN_BENCH_LATENCY_H
#define BN_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#define LAT_BUCKETS 1400 /* 1 us * 1.01^1400 ~ 1100 s */
#define LAT_POINTS 8192

typedef struct {
    uint32_t count[LAT_BUCKETS];
    size_t n;
    double sum, sumsq, max;
} lat_hist;

typedef struct {
    double t_s, ms;
    int stream;
} lat_point;

typedef struct {
    lat_hist all, first, last;
    double first_end_s, last_start_s; /* window bounds, seconds since start */
    lat_point *pts;                   /* [LAT_POINTS]                       */
    size_t n_pts, stride, seen;
} lat_recorder;

typedef struct {
    double avg, sd, p50, p95, p99, max;
    size_t n;
} lat_stats;

/* Allocates and touches all memory now. Samples with t < first_end_s also go
 * to the `first` window, those with t >= last_start_s to `last`. */
int lat_init(lat_recorder *r, double first_end_s, double last_start_s);
void lat_free(lat_recorder *r);
void lat_add(lat_recorder *r, double t_s, double ms, int stream);
/* Adds everything src recorded into dst (same windows). */
void lat_merge(lat_recorder *dst, const lat_recorder *src);
lat_stats lat_hist_stats(const lat_hist *h);
double lat_hist_percentile(const lat_hist *h, double p);
/* Writes the recorded points as an SVG chart (timeline + histogram, y axis up
 * to 1.5 x st->p99) titled TITLE; returns 0 after reporting on stderr. */
int lat_write_svg(const char *path, const lat_recorder *s, const lat_stats *st, const char *title);

#endif
