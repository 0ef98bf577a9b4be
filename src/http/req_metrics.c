#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/metrics.h"
#include "gw/worker.h"
#include "http_int.h"

/* The request series of Kong's prometheus plugin, renamed gatehouse_*: counted when a request
 * ends, on its worker, into the worker's shard. The series handles of each route are cached
 * per worker for the snapshot generation the worker runs, so a request costs an array index
 * and a few relaxed stores; a request that started on an older snapshot (a reload in between)
 * looks its series up by labels instead. */

static struct gw_metric *m_requests, *m_latency, *m_upstream, *m_gateway, *m_bandwidth;

/* distinct (status, source) pairs cached per route; more are looked up by labels */
#define CODES_CACHED 8

struct route_series {
    struct gw_series *latency, *upstream, *gateway, *bytes_in, *bytes_out;
    struct {
        int status;
        bool local;
        struct gw_series *s;
    } codes[CODES_CACHED];
    unsigned ncodes;
};

struct gw_req_metrics {
    uint64_t generation;
    size_t nroutes;
    struct route_series **by_route; /* by gw_route.index; NULL until the route's first request */
    struct route_series *unrouted;  /* requests that matched no route */
};

void gw_req_metrics_register(void)
{
    static const char *const sr[] = {"service", "route", NULL};
    static const char *const src[] = {"service", "route", "code", "source", NULL};
    static const char *const srd[] = {"service", "route", "direction", NULL};

    m_requests = gw_metric_register(GW_METRIC_COUNTER, "gatehouse_http_requests_total",
                                    "HTTP status codes per service/route", src, NULL, 0);
    m_latency = gw_metric_register(
        GW_METRIC_HISTOGRAM, "gatehouse_request_latency_ms",
        "Total latency incurred during requests for each service/route, in milliseconds", sr,
        gw_metric_buckets_upstream_ms, 13);
    m_upstream =
        gw_metric_register(GW_METRIC_HISTOGRAM, "gatehouse_upstream_latency_ms",
                           "Latency added by the upstream for each service/route, in milliseconds",
                           sr, gw_metric_buckets_upstream_ms, 13);
    m_gateway = gw_metric_register(GW_METRIC_HISTOGRAM, "gatehouse_gateway_latency_ms",
                                   "Latency added by the gateway and its plugins for each "
                                   "service/route, in milliseconds",
                                   sr, gw_metric_buckets_gateway_ms, 17);
    m_bandwidth =
        gw_metric_register(GW_METRIC_COUNTER, "gatehouse_bandwidth_bytes",
                           "Total bandwidth (ingress/egress) throughput in bytes", srd, NULL, 0);
}

/* Kong's labels: the service's name, else its host; the route's name, else its id. */
static void route_labels(const struct gw_req *r, const char **service, const char **route)
{
    *service = "";
    *route = "";
    if (r->service != NULL)
        *service = r->service->name.len > 0 ? r->service->name.p : r->service->host.p;
    if (r->route != NULL)
        *route = r->route->name.len > 0 ? r->route->name.p : r->route->id;
}

static void route_series_fill(struct route_series *rs, const char *service, const char *route)
{
    const char *const sr[] = {service, route, NULL};
    const char *const in[] = {service, route, "ingress", NULL};
    const char *const out[] = {service, route, "egress", NULL};

    rs->latency = gw_metric_series(m_latency, sr);
    rs->upstream = gw_metric_series(m_upstream, sr);
    rs->gateway = gw_metric_series(m_gateway, sr);
    rs->bytes_in = gw_metric_series(m_bandwidth, in);
    rs->bytes_out = gw_metric_series(m_bandwidth, out);
}

static struct gw_series *code_series(const char *service, const char *route, int status, bool local)
{
    char code[16];
    const char *const v[] = {service, route, code, local ? "kong" : "service", NULL};

    snprintf(code, sizeof(code), "%d", status);
    return gw_metric_series(m_requests, v);
}

static void cache_reset(struct gw_req_metrics *c, uint64_t generation, size_t nroutes)
{
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->by_route[i]);
    free(c->by_route);
    c->generation = generation;
    c->nroutes = nroutes;
    c->by_route = gw_xcalloc(nroutes != 0 ? nroutes : 1, sizeof(*c->by_route));
}

static double ms_between(uint64_t from, uint64_t to)
{
    return (double)(to - from) / 1e6;
}

void gw_req_metrics_record(struct gw_worker *w, const struct gw_req *r)
{
    struct gw_req_metrics *c = w->req_metrics;
    struct route_series *rs = NULL, tmp;
    const char *service, *route;
    bool local = r->local_response || !r->resp_started;
    int status = r->status != 0 ? r->status : 499;

    route_labels(r, &service, &route);
    if (c == NULL) {
        c = w->req_metrics = gw_xcalloc(1, sizeof(*c));
        cache_reset(c, r->snap->generation, r->snap->nroutes);
    }
    if (r->snap->generation == w->generation && c->generation != w->generation)
        cache_reset(c, w->generation, r->snap->nroutes);
    if (r->route == NULL) {
        if (c->unrouted == NULL) {
            c->unrouted = gw_xcalloc(1, sizeof(*c->unrouted));
            route_series_fill(c->unrouted, "", "");
        }
        rs = c->unrouted;
    } else if (r->snap->generation == c->generation && r->route->index < c->nroutes) {
        struct route_series **slot = &c->by_route[r->route->index];
        if (*slot == NULL) {
            *slot = gw_xcalloc(1, sizeof(**slot));
            route_series_fill(*slot, service, route);
        }
        rs = *slot;
    } else { /* started before a reload: no cache for its snapshot */
        memset(&tmp, 0, sizeof(tmp));
        route_series_fill(&tmp, service, route);
        rs = &tmp;
    }

    {
        struct gw_series *s = NULL;
        for (unsigned i = 0; i < rs->ncodes && s == NULL; i++)
            if (rs->codes[i].status == status && rs->codes[i].local == local)
                s = rs->codes[i].s;
        if (s == NULL) {
            s = code_series(service, route, status, local);
            if (rs->ncodes < CODES_CACHED) {
                rs->codes[rs->ncodes].status = status;
                rs->codes[rs->ncodes].local = local;
                rs->codes[rs->ncodes].s = s;
                rs->ncodes++;
            }
        }
        gw_series_add(s, 1);
    }
    if (r->t_start != 0 && r->t_done >= r->t_start) {
        uint64_t gw_end = r->t_peer != 0 ? r->t_peer : r->t_done;
        gw_series_observe(rs->latency, ms_between(r->t_start, r->t_done));
        if (gw_end >= r->t_start)
            gw_series_observe(rs->gateway, ms_between(r->t_start, gw_end));
    }
    if (r->t_upstream_sent != 0 && r->t_first_byte >= r->t_upstream_sent)
        gw_series_observe(rs->upstream, ms_between(r->t_upstream_sent, r->t_first_byte));
    if (r->head_bytes + r->bytes_in > 0) /* Kong's request size: head and body */
        gw_series_add(rs->bytes_in, (double)(r->head_bytes + r->bytes_in));
    if (r->bytes_out > 0)
        gw_series_add(rs->bytes_out, (double)r->bytes_out);
}

void gw_req_metrics_free(struct gw_worker *w)
{
    struct gw_req_metrics *c = w->req_metrics;

    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->by_route[i]);
    free(c->by_route);
    free(c->unrouted);
    free(c);
    w->req_metrics = NULL;
}
