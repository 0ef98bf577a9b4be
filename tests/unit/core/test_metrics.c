#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/metrics.h"

/* The metrics registry: series per thread summed at scrape, histograms, collectors, and the
 * exposition text. */

static char *scrape_text(void)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *text;

    gw_metrics_scrape(b);
    n = evbuffer_get_length(b);
    text = malloc(n + 1);
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

static int reset(void **state)
{
    gw_metrics_reset();
    return 0;
}

static void test_counter_exposition(void **state)
{
    static const char *const labels[] = {"service", "code", NULL};
    struct gw_metric *m = gw_metric_register(GW_METRIC_COUNTER, "t_requests_total",
                                             "Requests\nby \\code", labels, NULL, 0);
    const char *const a[] = {"svc", "200", NULL}, *const b[] = {"s\"v\\c\n", "404", NULL};
    struct gw_series *s = gw_metric_series(m, a);
    char *text;

    gw_series_add(s, 2);
    gw_series_add(gw_metric_series(m, a), 1); /* same labels: the same series */
    gw_metric_add(m, b, 1);
    text = scrape_text();
    assert_string_equal(text, "# HELP t_requests_total Requests\\nby \\\\code\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total{service=\"s\\\"v\\\\c\\n\",code=\"404\"} 1\n"
                              "t_requests_total{service=\"svc\",code=\"200\"} 3\n");
    free(text);
}

static void test_registering_twice_returns_the_family(void **state)
{
    struct gw_metric *a = gw_metric_register(GW_METRIC_GAUGE, "t_g", "g", NULL, NULL, 0);
    struct gw_metric *b = gw_metric_register(GW_METRIC_GAUGE, "t_g", "g", NULL, NULL, 0);
    char *text;

    assert_ptr_equal(a, b);
    gw_series_set(gw_metric_series(a, NULL), 2.5);
    gw_series_set(gw_metric_series(b, NULL), -0.125);
    text = scrape_text();
    assert_string_equal(text, "# HELP t_g g\n# TYPE t_g gauge\nt_g -0.125\n");
    free(text);
}

static void test_empty_family_not_exposed(void **state)
{
    char *text;

    gw_metric_register(GW_METRIC_COUNTER, "t_unused_total", "u", NULL, NULL, 0);
    text = scrape_text();
    assert_string_equal(text, "");
    free(text);
}

static void test_histogram_buckets(void **state)
{
    static const double buckets[] = {1, 2.5, 10};
    static const char *const labels[] = {"route", NULL};
    struct gw_metric *m =
        gw_metric_register(GW_METRIC_HISTOGRAM, "t_latency_ms", "lat", labels, buckets, 3);
    const char *const r[] = {"r", NULL};
    struct gw_series *s = gw_metric_series(m, r);
    char *text;

    gw_series_observe(s, 0.5);
    gw_series_observe(s, 1); /* le is inclusive */
    gw_series_observe(s, 2.6);
    gw_series_observe(s, 100);
    text = scrape_text();
    assert_string_equal(text, "# HELP t_latency_ms lat\n"
                              "# TYPE t_latency_ms histogram\n"
                              "t_latency_ms_bucket{route=\"r\",le=\"1\"} 2\n"
                              "t_latency_ms_bucket{route=\"r\",le=\"2.5\"} 2\n"
                              "t_latency_ms_bucket{route=\"r\",le=\"10\"} 3\n"
                              "t_latency_ms_bucket{route=\"r\",le=\"+Inf\"} 4\n"
                              "t_latency_ms_sum{route=\"r\"} 104.1\n"
                              "t_latency_ms_count{route=\"r\"} 4\n");
    free(text);
}

static void test_kong_buckets(void **state)
{
    /* Kong's prometheus plugin: KONG_LATENCY_BUCKETS and UPSTREAM_LATENCY_BUCKETS */
    assert_int_equal(gw_metric_buckets_gateway_ms[0], 1);
    assert_int_equal(gw_metric_buckets_gateway_ms[16], 6000);
    assert_int_equal(gw_metric_buckets_upstream_ms[0], 25);
    assert_int_equal(gw_metric_buckets_upstream_ms[12], 60000);
}

static void collect(struct gw_metric_out *out, void *arg)
{
    const char *const up[] = {"up", NULL}, *const down[] = {"down", NULL};

    gw_metric_emit(out, up, *(int *)arg);
    gw_metric_emit(out, down, 0);
}

static void test_collector(void **state)
{
    static const char *const labels[] = {"state", NULL};
    int v = 7;
    char *text;

    gw_metric_register_collector(GW_METRIC_GAUGE, "t_state", "s", labels, collect, &v);
    text = scrape_text();
    assert_string_equal(text, "# HELP t_state s\n# TYPE t_state gauge\n"
                              "t_state{state=\"up\"} 7\nt_state{state=\"down\"} 0\n");
    free(text);
}

/* Each thread records into its own shard; the scrape sums them. */
struct rec {
    struct gw_metric *m, *h;
    unsigned shard;
};

static void *recorder(void *arg)
{
    struct rec *r = arg;
    const char *const v[] = {"x", NULL};

    gw_metrics_set_thread(r->shard);
    for (int i = 0; i < 100000; i++) {
        gw_series_add(gw_metric_series(r->m, v), 1);
        gw_series_observe(gw_metric_series(r->h, v), (double)(i % 3));
    }
    return NULL;
}

static void test_shards_summed(void **state)
{
    static const char *const labels[] = {"k", NULL};
    static const double b[] = {0, 1};
    struct rec recs[3];
    pthread_t t[3];
    char *text;

    gw_metrics_init(4);
    recs[0].m = gw_metric_register(GW_METRIC_COUNTER, "t_n_total", "n", labels, NULL, 0);
    recs[0].h = gw_metric_register(GW_METRIC_HISTOGRAM, "t_h", "h", labels, b, 2);
    for (unsigned i = 0; i < 3; i++) {
        recs[i] = recs[0];
        recs[i].shard = i;
        pthread_create(&t[i], NULL, recorder, &recs[i]);
    }
    for (unsigned i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    text = scrape_text();
    assert_non_null(strstr(text, "t_n_total{k=\"x\"} 300000\n"));
    /* i % 3: 100000 values 0, 1, 2 in the ratio 1:1:1 per thread */
    assert_non_null(strstr(text, "t_h_bucket{k=\"x\",le=\"0\"} 100002\n"));
    assert_non_null(strstr(text, "t_h_bucket{k=\"x\",le=\"1\"} 200001\n"));
    assert_non_null(strstr(text, "t_h_bucket{k=\"x\",le=\"+Inf\"} 300000\n"));
    assert_non_null(strstr(text, "t_h_count{k=\"x\"} 300000\n"));
    assert_non_null(strstr(text, "t_h_sum{k=\"x\"} 299997\n"));
    free(text);
}

/* Scrapes while a thread keeps creating series: every scrape is well formed. */
static void *creator(void *arg)
{
    struct gw_metric *m = arg;
    char name[32];

    gw_metrics_set_thread(0);
    for (int i = 0; i < 20000; i++) {
        const char *const v[] = {name, NULL};
        snprintf(name, sizeof(name), "s%d", i);
        gw_series_add(gw_metric_series(m, v), 1);
    }
    return NULL;
}

static void test_scrape_while_recording(void **state)
{
    static const char *const labels[] = {"k", NULL};
    struct gw_metric *m;
    pthread_t t;
    size_t last = 0;

    gw_metrics_init(2);
    m = gw_metric_register(GW_METRIC_COUNTER, "t_c_total", "c", labels, NULL, 0);
    pthread_create(&t, NULL, creator, m);
    for (int k = 0; k < 50; k++) {
        char *text = scrape_text();
        size_t lines = 0;
        for (const char *p = text; *p != '\0'; p++)
            lines += *p == '\n';
        assert_true(lines == 0 || lines >= last); /* series are never lost */
        last = lines;
        free(text);
    }
    pthread_join(t, NULL);
    {
        char *text = scrape_text();
        assert_non_null(strstr(text, "t_c_total{k=\"s19999\"} 1\n"));
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_exposition, reset),
        cmocka_unit_test_teardown(test_registering_twice_returns_the_family, reset),
        cmocka_unit_test_teardown(test_empty_family_not_exposed, reset),
        cmocka_unit_test_teardown(test_histogram_buckets, reset),
        cmocka_unit_test_teardown(test_kong_buckets, reset),
        cmocka_unit_test_teardown(test_collector, reset),
        cmocka_unit_test_teardown(test_shards_summed, reset),
        cmocka_unit_test_teardown(test_scrape_while_recording, reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
