/* Snapshot build benchmark (not a test): generates a declarative file with N routes (over
 * N/10 services, each with 10 routes on its own host: 7 prefix, 3 regex) and N consumers (each
 * with a key-auth credential), then times gw_snapshot_load_buf() on it: YAML parsing,
 * validation, ids, indexes and router compilation. Prints the median of 7 runs, the
 * document size and the arena size of one snapshot. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/router.h"

#define RUNS 7

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len)
            break;
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = gw_xrealloc(b->p, b->cap);
    }
    b->len += (size_t)n;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void generate(struct buf *b, unsigned nroutes, unsigned nconsumers)
{
    static const char *const prefix[7] = {
        "/api/v1/users", "/api/v1/orders", "/api/v2/users", "/static", "/login", "/api", "/"};
    static const char *const regex[3] = {"~/api/v1/users/(?<id>\\\\d+)/items/(\\\\d+)$",
                                         "~/orders/(?<order>[a-f0-9]{8})",
                                         "~/files/.+\\\\.(png|jpg)$"};

    put(b, "_format_version: \"3.0\"\nservices:\n");
    for (unsigned s = 0; s < nroutes / 10; s++) {
        put(b, "  - name: svc-%u\n    url: http://10.%u.%u.1:8080/base\n    routes:\n", s,
            s / 256 % 256, s % 256);
        for (unsigned r = 0; r < 10; r++)
            put(b,
                "      - name: route-%u-%u\n        hosts: [\"host-%u.example.com\"]\n"
                "        paths: [\"%s\"]\n",
                s, r, s, r < 7 ? prefix[r] : regex[r - 7]);
    }
    put(b, "consumers:\n");
    for (unsigned c = 0; c < nconsumers; c++)
        put(b,
            "  - username: user-%u\n    custom_id: cid-%u\n    keyauth_credentials:\n"
            "      - key: key-%u-%08x\n",
            c, c, c, c * 2654435761u);
}

static void run(unsigned nroutes, unsigned nconsumers)
{
    struct buf b = {gw_xmalloc(1 << 20), 0, 1 << 20};
    double t[RUNS];
    size_t arena = 0;

    generate(&b, nroutes, nconsumers);
    for (int i = 0; i < RUNS; i++) {
        struct gw_err err;
        struct gw_snapshot *s;
        double t0;

        gw_err_init(&err, "bench.yaml");
        t0 = now_ms();
        s = gw_snapshot_load_buf(b.p, b.len, false, "bench.yaml", &err);
        t[i] = now_ms() - t0;
        if (s == NULL) {
            gw_err_print(&err, stderr);
            exit(1);
        }
        arena = gw_arena_used(s->arena);
        gw_snapshot_release(s);
        gw_err_dispose(&err);
    }
    qsort(t, RUNS, sizeof(t[0]), cmp_double);
    printf("routes=%u consumers=%u yaml_bytes=%zu build_median_ms=%.1f min_ms=%.1f max_ms=%.1f "
           "arena_mib=%.1f\n",
           nroutes, nconsumers, b.len, t[RUNS / 2], t[0], t[RUNS - 1],
           (double)arena / (1024.0 * 1024.0));
    free(b.p);
}

int main(void)
{
    run(1000, 1000);
    run(10000, 10000);
    return 0;
}
