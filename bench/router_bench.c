/* Router micro-benchmark (not a test): compile time and per-match latency for route sets of
 * 100 / 1,000 / 10,000 routes spread over hosts (10 routes per host: 7 prefix, 3 regex), then
 * host-less regex-only sets. Each scenario matches a pre-generated mix of requests (hits on
 * various hosts, misses, unknown hosts); the median is the median of 31 batch means, p99 comes
 * from timing every call of one extra pass. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/router.h"

#define NREQ 4096
#define NBATCH 31

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct gw_strv one(struct gw_arena *a, char *s)
{
    struct gw_strv v = {gw_arena_alloc(a, sizeof(struct gw_str)), 1};

    v.v[0] = gw_str_c(s);
    return v;
}

static const char *const prefix_tpl[7] = {
    "/api/v1/users", "/api/v1/orders", "/api/v2/users", "/static", "/login", "/api", "/",
};
static const char *const regex_tpl[3] = {
    "~/api/v1/users/(?<id>\\d+)/items/(\\d+)$",
    "~/orders/(?<order>[a-f0-9]{8})",
    "~/files/.+\\.(png|jpg)$",
};

struct scenario {
    struct gw_arena *a;
    struct gw_route *routes;
    size_t n;
    struct gw_router_req *reqs;
};

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

static void measure(const char *label, struct scenario *s)
{
    struct gw_err err;
    struct gw_router *r;
    struct gw_router_match m;
    uint64_t t0, t1, batch[NBATCH], *each = malloc(NREQ * sizeof(uint64_t));
    size_t hits = 0;
    volatile size_t sink = 0;

    gw_err_init(&err, "bench");
    t0 = now_ns();
    r = gw_router_compile(s->routes, s->n, s->a, &err);
    t1 = now_ns();
    if (r == NULL) {
        gw_err_print(&err, stderr);
        exit(1);
    }
    for (size_t i = 0; i < NREQ; i++) /* warm-up, hit count */
        hits += gw_router_match(r, &s->reqs[i], &m);
    for (int b = 0; b < NBATCH; b++) {
        uint64_t b0 = now_ns();

        for (size_t i = 0; i < NREQ; i++)
            sink += gw_router_match(r, &s->reqs[i], &m);
        batch[b] = (now_ns() - b0) / NREQ;
    }
    for (size_t i = 0; i < NREQ; i++) {
        uint64_t c0 = now_ns();

        sink += gw_router_match(r, &s->reqs[i], &m);
        each[i] = now_ns() - c0;
    }
    qsort(batch, NBATCH, sizeof(batch[0]), cmp_u64);
    qsort(each, NREQ, sizeof(each[0]), cmp_u64);
    printf("%s  subroutes=%zu hit_rate=%.2f  compile_ms=%.2f  match_median_ns=%llu  p99_ns=%llu\n",
           label, gw_router_size(r), (double)hits / NREQ, (double)(t1 - t0) / 1e6,
           (unsigned long long)batch[NBATCH / 2], (unsigned long long)each[NREQ * 99 / 100]);
    (void)sink;
    free(each);
    gw_err_dispose(&err);
}

static void set_req(struct gw_arena *a, struct gw_router_req *q, const char *method, char *host,
                    char *path)
{
    q->method = gw_str_c(method);
    q->host = gw_str_c(host);
    q->path = gw_str_c(path);
    q->port = 80;
    (void)a;
}

/* Routes over hosts: host h has 7 prefix and 3 regex routes; 1% of hosts are wildcards and
 * two host-less routes exist, so the shared list is never empty. */
static void bench_hosts(size_t nroutes)
{
    struct scenario s = {gw_arena_new(), NULL, nroutes + 2, NULL};
    size_t nhosts = nroutes / 10;
    char label[128];

    s.routes = gw_arena_calloc(s.a, s.n, sizeof(*s.routes));
    for (size_t i = 0; i < nroutes; i++) {
        struct gw_route *rt = &s.routes[i];
        size_t h = i / 10, k = i % 10;

        rt->index = (unsigned)i;
        rt->name = gw_str_c(gw_arena_printf(s.a, "r%zu", i));
        rt->protocols = GW_PROTO_HTTP | GW_PROTO_HTTPS;
        rt->strip_path = true;
        rt->hosts = one(s.a, h % 100 == 99 ? gw_arena_printf(s.a, "*.wild%zu.example.net", h)
                                           : gw_arena_printf(s.a, "svc%zu.example.com", h));
        rt->paths = one(s.a, (char *)(k < 7 ? prefix_tpl[k] : regex_tpl[k - 7]));
        if (k == 1)
            rt->methods = one(s.a, "POST");
    }
    for (size_t i = nroutes; i < s.n; i++) {
        struct gw_route *rt = &s.routes[i];

        rt->index = (unsigned)i;
        rt->name = gw_str_c(i == nroutes ? "health" : "status");
        rt->protocols = GW_PROTO_HTTP | GW_PROTO_HTTPS;
        rt->paths = one(s.a, i == nroutes ? "/health" : "/status");
    }

    static const char *const hit_paths[] = {
        "/api/v1/users/42",
        "/api/v1/orders/1",
        "/api/v2/users/x",
        "/static/app.js",
        "/login",
        "/api/other",
        "/index.html",
        "/api/v1/users/7/items/9",
        "/orders/deadbeef/lines",
        "/files/a/b.png",
    };
    s.reqs = gw_arena_calloc(s.a, NREQ, sizeof(*s.reqs));
    for (size_t i = 0; i < NREQ; i++) {
        size_t h = rnd((uint32_t)nhosts);
        uint32_t kind = rnd(100);
        char *host = h % 100 == 99 ? gw_arena_printf(s.a, "api.wild%zu.example.net", h)
                                   : gw_arena_printf(s.a, "svc%zu.example.com", h);
        const char *path = hit_paths[rnd(10)];

        if (kind < 10) /* unknown host: only the host-less routes can match */
            host = gw_arena_printf(s.a, "nope%zu.example.org", h);
        else if (kind < 15)
            path = "/health";
        else if (kind < 20) /* regex-shaped miss: every regex is tried */
            path = "/files/a/b.gif";
        set_req(s.a, &s.reqs[i], kind % 3 == 0 ? "POST" : "GET", host, (char *)path);
    }
    snprintf(label, sizeof(label), "routes=%-6zu hosts=%-5zu regex_per_host<=3 ", nroutes, nhosts);
    measure(label, &s);
    gw_arena_free(s.a);
}

/* Host-less, regex-only routes: `literal` says whether each regex starts with a distinct
 * literal (the router's pre-filter applies) or with a character class (every regex runs). */
static void bench_regex(size_t nroutes, int literal)
{
    struct scenario s = {gw_arena_new(), NULL, nroutes, NULL};
    char label[128];

    s.routes = gw_arena_calloc(s.a, s.n, sizeof(*s.routes));
    for (size_t i = 0; i < nroutes; i++) {
        struct gw_route *rt = &s.routes[i];

        rt->index = (unsigned)i;
        rt->name = gw_str_c(gw_arena_printf(s.a, "re%zu", i));
        rt->protocols = GW_PROTO_HTTP | GW_PROTO_HTTPS;
        rt->regex_priority = (int64_t)(i % 5);
        rt->paths = one(s.a, literal ? gw_arena_printf(s.a, "~/svc%zu/(?<id>\\d+)/?$", i)
                                     : gw_arena_printf(s.a, "~/[a-z]+%zu/(?<id>\\d+)/?$", i));
    }
    s.reqs = gw_arena_calloc(s.a, NREQ, sizeof(*s.reqs));
    for (size_t i = 0; i < NREQ; i++) {
        size_t k = rnd((uint32_t)nroutes);
        char *path =
            rnd(10) < 8 ? gw_arena_printf(s.a, "/%s%zu/%u", literal ? "svc" : "abc", k, rnd(100000))
                        : gw_arena_printf(s.a, "/miss/%zu", k);

        set_req(s.a, &s.reqs[i], "GET", "", path);
    }
    snprintf(label, sizeof(label), "routes=%-6zu hosts=0     regex=all %-12s", nroutes,
             literal ? "literal-head" : "class-head");
    measure(label, &s);
    gw_arena_free(s.a);
}

int main(void)
{
    bench_hosts(100);
    bench_hosts(1000);
    bench_hosts(10000);
    bench_regex(1000, 1);
    bench_regex(1000, 0);
    return 0;
}
