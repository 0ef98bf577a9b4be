#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "gw/arena.h"
#include "gw/config_json.h"
#include "gw/log.h"
#include "gw/metrics.h"
#include "gw/version.h"

/* The status listener (gateway.status_listen): health, readiness, metrics and the running
 * configuration for operators and Kubernetes probes. It runs on the main thread's loop with
 * libevent's evhttp, so a scrape or a probe never takes a worker's time; what it reports
 * about the workers it reads from their atomics, without locks. Read only: nothing here
 * changes the gateway. */

/* A worker whose loop has not ticked for this long is reported dead by /status/live. */
#define LIVE_STALE_S 10

struct status_sock {
    struct gw_listen conf; /* address owned */
    uint16_t port;         /* bound */
    int fd;                /* until served */
    struct evhttp_bound_socket *h;
};

struct gw_status {
    struct daemon *d;
    struct evhttp *http;
    struct status_sock *socks; /* served */
    size_t nsocks;
    struct status_sock *pending; /* bound by prepare, served by commit */
    size_t npending;
    bool *keep; /* by socks index: still configured */
    /* GET /config text, kept for the generation it was made from */
    uint64_t config_generation;
    char *config_json;
    size_t config_len;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Server", "gatehouse/" GW_VERSION);
    if (b != NULL)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

/* Sends `j` (stolen) as the JSON body. */
static void reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(j);
    if (text == NULL) {
        static const char oom[] = "{\"message\":\"An unexpected error occurred\"}\n";
        reply(req, 500, "Internal Server Error", "application/json; charset=utf-8", oom,
              sizeof(oom) - 1);
        return;
    }
    {
        size_t n = strlen(text);
        char *nl = gw_xmalloc(n + 2);
        memcpy(nl, text, n);
        nl[n] = '\n';
        nl[n + 1] = '\0';
        reply(req, code, reason, "application/json; charset=utf-8", nl, n + 1);
        free(nl);
    }
    free(text);
}

static void reply_message(struct evhttp_request *req, int code, const char *reason,
                          const char *message)
{
    reply_json(req, code, reason, json_pack("{s:s}", "message", message));
}

struct worker_totals {
    uint64_t accepted, handled, requests, active, reading, writing;
};

static void sum_workers(const struct daemon *d, struct worker_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < d->nworkers; i++) {
        const struct gw_worker_stats *s = &d->workers[i].stats;
        t->accepted += atomic_load_explicit(&s->accepted, memory_order_relaxed);
        t->handled += atomic_load_explicit(&s->handled, memory_order_relaxed);
        t->requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
        t->active += atomic_load_explicit(&s->active, memory_order_relaxed);
        t->reading += atomic_load_explicit(&s->reading, memory_order_relaxed);
        t->writing += atomic_load_explicit(&s->writing, memory_order_relaxed);
    }
    /* read one after the other while the workers move: keep the parts within the whole */
    if (t->reading + t->writing > t->active)
        t->active = t->reading + t->writing;
}

/* A target's health for the API and the metric (Kong's names). Health checks are not run yet:
 * every target is HEALTHCHECKS_OFF. */
static const char *target_health(const struct gw_upstream *u, const struct gw_target *t)
{
    return "HEALTHCHECKS_OFF";
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static void get_status(struct gw_status *st, struct evhttp_request *req)
{
    const struct daemon *d = st->d;
    const struct gw_snapshot *s = gw_daemon_snapshot(d);
    struct worker_totals t;
    char loaded[32], at[32];
    json_t *j, *reload = json_null();

    sum_workers(d, &t);
    iso_time(d->last_load_ok, loaded);
    if (d->last_reload.done) {
        json_t *errs = json_array();
        for (size_t i = 0; i < d->last_reload.nerrors; i++)
            json_array_append_new(errs, json_string(d->last_reload.errors[i]));
        iso_time(d->last_reload.at, at);
        reload = json_pack("{s:s, s:s, s:o, s:I}", "at", at, "result",
                           d->last_reload.ok ? "success" : "failure", "errors", errs,
                           "errors_total", (json_int_t)d->last_reload.nerrors_all);
    }
    j = json_pack(
        "{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:s, s:s, s:I, s:I, s:I, s:b, "
        "s:{s:I, s:s, s:s}, s:o, s:{s:I, s:I}}",
        "server", "connections_active", (json_int_t)t.active, "connections_reading",
        (json_int_t)t.reading, "connections_writing", (json_int_t)t.writing, "connections_waiting",
        (json_int_t)(t.active - t.reading - t.writing), "connections_accepted",
        (json_int_t)t.accepted, "connections_handled", (json_int_t)t.handled, "total_requests",
        (json_int_t)t.requests, "configuration_hash", s->config_hash, "version", GW_VERSION, "pid",
        (json_int_t)getpid(), "uptime_seconds", (json_int_t)(mono_s() - d->started_mono_s),
        "workers", (json_int_t)d->nworkers, "ready", !d->shutting_down, "configuration",
        "generation", (json_int_t)d->generation, "loaded_at", loaded, "path", d->conf_path,
        "last_reload", reload, "reloads", "success", (json_int_t)d->reloads_ok, "failure",
        (json_int_t)d->reloads_failed);
    reply_json(req, 200, "OK", j);
}

static void get_ready(struct gw_status *st, struct evhttp_request *req)
{
    if (st->d->shutting_down)
        reply_message(req, 503, "Service Unavailable", "shutting down");
    else
        reply_message(req, 200, "OK", "ready");
}

static void get_live(struct gw_status *st, struct evhttp_request *req)
{
    const struct daemon *d = st->d;
    uint64_t now = mono_s();

    for (unsigned i = 0; i < d->nworkers; i++) {
        const struct gw_worker_stats *s = &d->workers[i].stats;
        uint64_t beat = atomic_load_explicit(&s->heartbeat, memory_order_relaxed);
        if (!atomic_load(&s->exited) && now > beat + LIVE_STALE_S) {
            char msg[96];
            snprintf(msg, sizeof(msg), "worker %u has not turned its event loop for %llu s", i,
                     (unsigned long long)(now - beat));
            reply_message(req, 503, "Service Unavailable", msg);
            return;
        }
    }
    reply_message(req, 200, "OK", "live");
}

static void get_metrics(struct gw_status *st, struct evhttp_request *req)
{
    struct evbuffer *b;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (!gw_daemon_snapshot(st->d)->gateway.metrics) {
        reply_message(req, 404, "Not Found", "metrics are off (gateway.metrics)");
        return;
    }
    b = evbuffer_new();
    if (b == NULL) {
        reply_message(req, 500, "Internal Server Error", "An unexpected error occurred");
        return;
    }
    gw_metrics_scrape(b);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Server", "gatehouse/" GW_VERSION);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void get_config(struct gw_status *st, struct evhttp_request *req)
{
    const struct gw_snapshot *s = gw_daemon_snapshot(st->d);

    if (st->config_json == NULL || st->config_generation != s->generation) {
        free(st->config_json);
        st->config_json = gw_config_json(s->doc, &st->config_len);
        st->config_generation = s->generation;
    }
    reply(req, 200, "OK", "application/json; charset=utf-8", st->config_json, st->config_len);
}

static const struct gw_upstream *find_upstream(const struct gw_snapshot *s, const char *key)
{
    for (size_t i = 0; i < s->nupstreams; i++)
        if (strcmp(s->upstreams[i].id, key) == 0 || strcmp(s->upstreams[i].name.p, key) == 0)
            return &s->upstreams[i];
    return NULL;
}

/* GET /upstreams/{name or id}/health: Kong's shape. `?balancer_health=1` gives the
 * upstream's own health instead of its targets'. */
static void get_upstream_health(struct gw_status *st, struct evhttp_request *req, const char *key,
                                const char *query)
{
    const struct gw_upstream *u = find_upstream(gw_daemon_snapshot(st->d), key);
    json_t *data;
    struct evkeyvalq q;
    const char *bh = NULL;

    if (u == NULL) {
        reply_message(req, 404, "Not Found", "Not found");
        return;
    }
    TAILQ_INIT(&q);
    if (query != NULL && evhttp_parse_query_str(query, &q) == 0)
        bh = evhttp_find_header(&q, "balancer_health");
    if (bh != NULL && (strcmp(bh, "1") == 0 || strcmp(bh, "true") == 0)) {
        reply_json(req, 200, "OK",
                   json_pack("{s:{s:s, s:s}}", "data", "id", u->id, "health", "HEALTHCHECKS_OFF"));
        evhttp_clear_headers(&q);
        return;
    }
    evhttp_clear_headers(&q);
    data = json_array();
    for (size_t i = 0; i < u->ntargets; i++) {
        const struct gw_target *t = &u->targets[i];
        json_array_append_new(data,
                              json_pack("{s:s, s:s, s:I, s:s, s:{s:s}}", "id", t->id, "target",
                                        t->target.p, "weight", (json_int_t)t->weight, "health",
                                        target_health(u, t), "upstream", "id", u->id));
    }
    reply_json(req, 200, "OK",
               json_pack("{s:I, s:o}", "total", (json_int_t)u->ntargets, "data", data));
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct gw_status *st = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (path == NULL || path[0] == '\0')
        path = "/";
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_message(req, 405, "Method Not Allowed", "Method not allowed");
        return;
    }
    if (strcmp(path, "/status") == 0)
        get_status(st, req);
    else if (strcmp(path, "/status/ready") == 0)
        get_ready(st, req);
    else if (strcmp(path, "/status/live") == 0)
        get_live(st, req);
    else if (strcmp(path, "/metrics") == 0)
        get_metrics(st, req);
    else if (strcmp(path, "/config") == 0)
        get_config(st, req);
    else if (strncmp(path, "/upstreams/", 11) == 0) {
        const char *name = path + 11, *slash = strchr(name, '/');
        if (slash != NULL && slash > name && strcmp(slash, "/health") == 0) {
            char raw[512];
            char *key;
            if ((size_t)(slash - name) >= sizeof(raw)) {
                reply_message(req, 404, "Not Found", "Not found");
                return;
            }
            memcpy(raw, name, (size_t)(slash - name));
            raw[slash - name] = '\0';
            key = evhttp_uridecode(raw, 0, NULL);
            if (key != NULL)
                get_upstream_health(st, req, key, query);
            else
                reply_message(req, 500, "Internal Server Error", "An unexpected error occurred");
            free(key);
            return;
        }
        reply_message(req, 404, "Not Found", "Not found");
    } else
        reply_message(req, 404, "Not Found", "Not found");
}

/* ---- metric families about the daemon -------------------------------------------------------- */

static void collect_connections(struct gw_metric_out *out, void *arg)
{
    static const char *const states[] = {"accepted", "active",  "handled", "reading",
                                         "total",    "waiting", "writing"};
    const struct daemon *d = arg;
    struct worker_totals t;
    uint64_t v[7];

    sum_workers(d, &t);
    v[0] = t.accepted;
    v[1] = t.active;
    v[2] = t.handled;
    v[3] = t.reading;
    v[4] = t.requests;
    v[5] = t.active - t.reading - t.writing;
    v[6] = t.writing;
    for (size_t i = 0; i < 7; i++) {
        const char *const labels[] = {states[i], NULL};
        gw_metric_emit(out, labels, (double)v[i]);
    }
}

static void collect_reloads(struct gw_metric_out *out, void *arg)
{
    const struct daemon *d = arg;
    const char *const ok[] = {"success", NULL}, *const failed[] = {"failure", NULL};

    gw_metric_emit(out, failed, d->reloads_failed);
    gw_metric_emit(out, ok, d->reloads_ok);
}

static void collect_generation(struct gw_metric_out *out, void *arg)
{
    const struct daemon *d = arg;

    gw_metric_emit(out, NULL, (double)d->generation);
}

static void collect_last_ok(struct gw_metric_out *out, void *arg)
{
    const struct daemon *d = arg;

    gw_metric_emit(out, NULL, (double)d->last_load_ok);
}

static void collect_info(struct gw_metric_out *out, void *arg)
{
    const char *const v[] = {GW_VERSION, NULL};

    gw_metric_emit(out, v, 1);
}

/* Kong's upstream_target_health: one series per state, 1 for the current one. */
static void collect_target_health(struct gw_metric_out *out, void *arg)
{
    static const char *const states[] = {"healthchecks_off", "healthy", "unhealthy", "dns_error"};
    const struct gw_snapshot *s = gw_daemon_snapshot(arg);

    for (size_t i = 0; i < s->nupstreams; i++) {
        const struct gw_upstream *u = &s->upstreams[i];
        for (size_t k = 0; k < u->ntargets; k++) {
            const struct gw_target *t = &u->targets[k];
            const char *h = target_health(u, t);
            /* the address a request goes to: known here for IP targets only */
            unsigned char tmp[sizeof(struct in6_addr)];
            bool ip =
                inet_pton(AF_INET, t->host.p, tmp) == 1 || inet_pton(AF_INET6, t->host.p, tmp) == 1;
            for (size_t j = 0; j < 4; j++) {
                const char *const v[] = {u->name.p, t->target.p, ip ? t->target.p : "", states[j],
                                         NULL};
                gw_metric_emit(out, v, strcasecmp(h, states[j]) == 0 ? 1 : 0);
            }
        }
    }
}

static void register_families(struct daemon *d)
{
    static const char *const state[] = {"state", NULL};
    static const char *const result[] = {"result", NULL};
    static const char *const version[] = {"version", NULL};
    static const char *const health[] = {"upstream", "target", "address", "state", NULL};

    gw_metric_register_collector(GW_METRIC_GAUGE, "gatehouse_info", "gatehouse version information",
                                 version, collect_info, d);
    gw_metric_register_collector(GW_METRIC_GAUGE, "gatehouse_connections",
                                 "Client connections by state, and the accepted, handled and "
                                 "total requests counts (nginx's stub_status)",
                                 state, collect_connections, d);
    gw_metric_register_collector(GW_METRIC_COUNTER, "gatehouse_config_reloads_total",
                                 "Configuration reloads (SIGHUP) by result", result,
                                 collect_reloads, d);
    gw_metric_register_collector(GW_METRIC_GAUGE, "gatehouse_config_generation",
                                 "Generation of the running configuration (1 at start, +1 per "
                                 "successful reload)",
                                 NULL, collect_generation, d);
    gw_metric_register_collector(
        GW_METRIC_GAUGE, "gatehouse_config_last_reload_success_timestamp_seconds",
        "Unix time at which the running configuration was loaded", NULL, collect_last_ok, d);
    gw_metric_register_collector(
        GW_METRIC_GAUGE, "gatehouse_upstream_target_health",
        "Health of the targets of each upstream: 1 for the current state of "
        "healthchecks_off, healthy, unhealthy, dns_error",
        health, collect_target_health, d);
}

/* ---- lifetime -------------------------------------------------------------------------------- */

struct gw_status *gw_status_new(struct daemon *d)
{
    struct gw_status *st = gw_xcalloc(1, sizeof(*st));

    st->d = d;
    st->http = evhttp_new(d->base);
    if (st->http == NULL) {
        free(st);
        return NULL;
    }
    /* probes and scrapes are small; anything else is refused early */
    evhttp_set_max_headers_size(st->http, 16 * 1024);
    evhttp_set_max_body_size(st->http, 4096);
    evhttp_set_timeout(st->http, 10);
    evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                             EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(st->http, on_request, st);
    register_families(d);
    return st;
}

static bool same_addr(const struct gw_listen *a, const struct gw_listen *b)
{
    return gw_str_eq(a->address, b->address) && a->port == b->port;
}

int gw_status_prepare(struct gw_status *st, const struct gw_gateway *g)
{
    char err[256];

    gw_status_abort(st);
    st->keep = gw_xcalloc(st->nsocks + 1, sizeof(*st->keep));
    st->pending = gw_xcalloc(g->nstatus_listen + 1, sizeof(*st->pending));
    for (size_t i = 0; i < g->nstatus_listen; i++) {
        const struct gw_listen *l = &g->status_listen[i];
        bool found = false;
        for (size_t k = 0; k < st->nsocks && !found; k++)
            if (!st->keep[k] && same_addr(&st->socks[k].conf, l))
                found = st->keep[k] = true;
        if (found)
            continue;
        {
            struct status_sock *p = &st->pending[st->npending];
            p->fd = gw_daemon_socket(l, l->port, err, sizeof(err));
            if (p->fd < 0) {
                gw_log(GW_LOG_ERROR, "cannot open the status listener: %s", err);
                gw_status_abort(st);
                return -1;
            }
            p->conf = *l;
            p->conf.address = gw_str_c(gw_xstrdup(l->address.p));
            p->port = l->port;
            if (p->port == 0) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                getsockname(p->fd, (struct sockaddr *)&ss, &len);
                p->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                         : ((struct sockaddr_in *)&ss)->sin_port);
            }
            st->npending++;
        }
    }
    return 0;
}

void gw_status_commit(struct gw_status *st)
{
    struct status_sock *next = gw_xcalloc(st->nsocks + st->npending + 1, sizeof(*next));
    size_t n = 0;

    for (size_t k = 0; k < st->nsocks; k++) {
        if (st->keep != NULL && st->keep[k]) {
            next[n++] = st->socks[k];
            continue;
        }
        gw_log(GW_LOG_NOTICE, "status listener: no longer listening on %s:%u",
               st->socks[k].conf.address.p, st->socks[k].port);
        evhttp_del_accept_socket(st->http, st->socks[k].h); /* closes it */
        free((char *)st->socks[k].conf.address.p);
    }
    for (size_t i = 0; i < st->npending; i++) {
        struct status_sock *p = &st->pending[i];
        p->h = evhttp_accept_socket_with_handle(st->http, p->fd);
        if (p->h == NULL) {
            gw_log(GW_LOG_ERROR, "status listener: cannot serve %s:%u", p->conf.address.p, p->port);
            close(p->fd);
            free((char *)p->conf.address.p);
            continue;
        }
        gw_log(GW_LOG_NOTICE, "status listener on %s:%u", p->conf.address.p, p->port);
        next[n++] = *p;
    }
    free(st->socks);
    st->socks = next;
    st->nsocks = n;
    free(st->pending);
    st->pending = NULL;
    st->npending = 0;
    free(st->keep);
    st->keep = NULL;
}

void gw_status_abort(struct gw_status *st)
{
    for (size_t i = 0; i < st->npending; i++) {
        close(st->pending[i].fd);
        free((char *)st->pending[i].conf.address.p);
    }
    free(st->pending);
    st->pending = NULL;
    st->npending = 0;
    free(st->keep);
    st->keep = NULL;
}

size_t gw_status_addresses(const struct gw_status *st, char *buf, size_t size)
{
    size_t off = 0;

    for (size_t i = 0; st != NULL && i < st->nsocks && off < size; i++) {
        bool v6 = strchr(st->socks[i].conf.address.p, ':') != NULL;
        int n = snprintf(buf + off, size - off, v6 ? "%s\"[%s]:%u\"" : "%s\"%s:%u\"", i ? ", " : "",
                         st->socks[i].conf.address.p, st->socks[i].port);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return off < size ? off : size;
}

void gw_status_free(struct gw_status *st)
{
    if (st == NULL)
        return;
    gw_status_abort(st);
    evhttp_free(st->http); /* closes the bound sockets and the connections */
    for (size_t k = 0; k < st->nsocks; k++)
        free((char *)st->socks[k].conf.address.p);
    free(st->socks);
    free(st->config_json);
    free(st);
}
