#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Metrics for the Prometheus exposition (docs/observability.md).
 *
 * A family (name, help, type, label names, buckets) is registered once; its series are the
 * label value combinations seen. Each recording thread has its own shard of every family: a
 * worker records into its shard with plain relaxed stores (one writer per shard, no lock, no
 * atomic read-modify-write), and the scrape on the main thread sums the shards. Series are
 * never freed before gw_metrics_reset(), so a handle from gw_metric_series() may be kept and
 * reused (hot paths cache them).
 *
 * Families whose value is state rather than events (connections, target health, generation)
 * register a collector instead: it runs on the main thread at each scrape and emits the
 * current values, so a series vanishes when what it describes does. */

enum gw_metric_type {
    GW_METRIC_COUNTER,
    GW_METRIC_GAUGE,
    GW_METRIC_HISTOGRAM,
};

#define GW_METRIC_MAX_LABELS 8
#define GW_METRIC_MAX_BUCKETS 32

struct gw_metric;
struct gw_series;
struct gw_metric_out;
struct evbuffer;

/* Sets the number of recording shards (the workers and the main thread) and makes the calling
 * thread record into the last one. Call once, before any other thread records; without it
 * there is one shard. Main thread. */
void gw_metrics_init(unsigned nshards);
/* The calling thread records into `shard` (< nshards) from now on. Every recording thread but
 * the main one calls it first: two threads must never share a shard. */
void gw_metrics_set_thread(unsigned shard);
/* Frees every family and series (process exit, tests); handles become invalid. */
void gw_metrics_reset(void);

/* Registers a family, or returns the one already registered under `name` (which must have the
 * same type and labels). `labels` is NULL-terminated (at most GW_METRIC_MAX_LABELS, may be
 * NULL); `buckets` are the histogram's upper bounds, ascending, without +Inf (ignored for the
 * other types). Strings are copied. Any thread; takes the registry lock. */
struct gw_metric *gw_metric_register(enum gw_metric_type type, const char *name, const char *help,
                                     const char *const *labels, const double *buckets,
                                     size_t nbuckets);

/* The calling thread's series of `m` for `values` (one per label, NULL-free), created on first
 * use. Costs a hash of the values: keep the handle where a path runs per request. */
struct gw_series *gw_metric_series(struct gw_metric *m, const char *const *values);

/* Recording, on the calling thread's own series only (single writer). */
void gw_series_add(struct gw_series *s, double v);     /* counter, gauge */
void gw_series_set(struct gw_series *s, double v);     /* gauge */
void gw_series_observe(struct gw_series *s, double v); /* histogram */

/* Shorthand for one-off events: gw_series_add(gw_metric_series(m, values), v). */
void gw_metric_add(struct gw_metric *m, const char *const *values, double v);

/* A collector: `fn` runs on the main thread during each scrape and calls gw_metric_emit() for
 * each current series. Counter and gauge families only. The registry is locked while it runs:
 * a collector must not register families. */
typedef void (*gw_metric_collect_fn)(struct gw_metric_out *out, void *arg);
struct gw_metric *gw_metric_register_collector(enum gw_metric_type type, const char *name,
                                               const char *help, const char *const *labels,
                                               gw_metric_collect_fn fn, void *arg);
void gw_metric_emit(struct gw_metric_out *out, const char *const *values, double v);

/* Appends every family with at least one series, in registration order, in the Prometheus
 * text format 0.0.4. Main thread. */
void gw_metrics_scrape(struct evbuffer *out);

/* Kong's histogram buckets (prometheus plugin): milliseconds. */
extern const double gw_metric_buckets_gateway_ms[17];
extern const double gw_metric_buckets_upstream_ms[13];

/* A per-thread statistic read by another thread: one writer, relaxed, no read-modify-write. */
static inline void gw_stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void gw_stat_sub(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

#endif
