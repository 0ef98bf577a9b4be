/* Router unit tests: path normalisation, Kong's priority rules, host/header/SNI matching,
 * regex captures, path splitting, upstream path joins and path validation. Most cases are
 * restated from Kong's spec/01-unit/08-router_spec.lua and
 * spec/fixtures/router_path_handling_tests.lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h> /* cmocka 1.1 needs the four headers above first */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/router.h"
#include "../../../src/router/router_int.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- building routes ---- */

struct spec {
    const char *name;
    const char *const *methods, *const *hosts, *const *paths, *const *snis;
    const char *const *headers; /* "name=value"; repeated names add values */
    unsigned protocols;         /* 0: http + https */
    bool nostrip;               /* strip_path = false (Kong's default is true) */
    int64_t regex_priority;
    bool v1;
    const char *service_path; /* NULL: service without path */
    bool no_service;
};

static struct gw_strv strv(struct gw_arena *a, const char *const *l)
{
    struct gw_strv v = {NULL, 0};

    while (l != NULL && l[v.n] != NULL)
        v.n++;
    if (v.n == 0)
        return v;
    v.v = gw_arena_calloc(a, v.n, sizeof(*v.v));
    for (size_t i = 0; i < v.n; i++)
        v.v[i] = gw_str_c(l[i]);
    return v;
}

static void set_headers(struct gw_arena *a, struct gw_route *r, const char *const *l)
{
    size_t n = 0;

    while (l != NULL && l[n] != NULL)
        n++;
    if (n == 0)
        return;
    r->headers = gw_arena_calloc(a, n, sizeof(*r->headers));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(l[i], '=');
        struct gw_str name = {l[i], (size_t)(eq - l[i])};
        struct gw_route_header *h = NULL;

        for (size_t k = 0; k < r->nheaders; k++)
            if (gw_str_eq(r->headers[k].name, name))
                h = &r->headers[k];
        if (h == NULL) {
            h = &r->headers[r->nheaders++];
            h->name = name;
            h->values.v = gw_arena_calloc(a, n, sizeof(struct gw_str));
        }
        h->values.v[h->values.n++] = gw_str_c(eq + 1);
    }
}

static struct gw_route *build(struct gw_arena *a, const struct spec *sp, size_t n)
{
    struct gw_route *routes = gw_arena_calloc(a, n > 0 ? n : 1, sizeof(*routes));

    for (size_t i = 0; i < n; i++) {
        struct gw_route *r = &routes[i];
        struct gw_service *svc;

        r->name = gw_str_c(sp[i].name);
        r->index = (unsigned)i;
        r->pos.line = (unsigned)i + 10;
        r->pos.col = 7;
        r->protocols = sp[i].protocols != 0 ? sp[i].protocols : GW_PROTO_HTTP | GW_PROTO_HTTPS;
        r->methods = strv(a, sp[i].methods);
        r->hosts = strv(a, sp[i].hosts);
        r->paths = strv(a, sp[i].paths);
        r->snis = strv(a, sp[i].snis);
        set_headers(a, r, sp[i].headers);
        r->strip_path = !sp[i].nostrip;
        r->regex_priority = sp[i].regex_priority;
        r->path_handling = sp[i].v1 ? GW_PATH_V1 : GW_PATH_V0;
        if (!sp[i].no_service) {
            svc = gw_arena_zalloc(a, sizeof(*svc));
            svc->protocol = GW_PROTO_HTTP;
            svc->path = gw_str_c(sp[i].service_path);
            r->service = svc;
        }
    }
    return routes;
}

/* ---- requests ---- */

struct rq {
    const char *method; /* NULL: GET */
    const char *host;
    const char *path;           /* raw: normalised before matching */
    const char *const *headers; /* "Name: value" */
    const char *sni;
    bool tls;
    uint16_t port;      /* 0: 80 or 443 */
    const char *expect; /* route name; NULL: no match */
};

struct fx {
    struct gw_arena *a;
    struct gw_route *routes;
    struct gw_router *r;
    struct gw_err err;
    char path[512];
    struct gw_router_header hdrs[16];
    struct gw_router_req req;
    struct gw_router_match m;
};

static struct fx *fx_new(const struct spec *sp, size_t n)
{
    struct fx *f = gw_xcalloc(1, sizeof(*f));

    f->a = gw_arena_new();
    gw_err_init(&f->err, "test.yaml");
    f->routes = build(f->a, sp, n);
    f->r = gw_router_compile(f->routes, n, f->a, &f->err);
    if (f->r == NULL)
        gw_err_print(&f->err, stderr);
    assert_non_null(f->r);
    return f;
}

static void fx_free(struct fx *f)
{
    gw_arena_free(f->a);
    gw_err_dispose(&f->err);
    free(f);
}

static bool fx_match(struct fx *f, const struct rq *q)
{
    long len;
    size_t nh = 0;

    memset(&f->req, 0, sizeof(f->req));
    memset(&f->m, 0, sizeof(f->m));
    f->req.method = gw_str_c(q->method != NULL ? q->method : "GET");
    f->req.host = gw_str_c(q->host);
    len = gw_path_normalize(q->path, strlen(q->path), f->path);
    assert_true(len >= 0);
    f->req.path = (struct gw_str){f->path, (size_t)len};
    for (; q->headers != NULL && q->headers[nh] != NULL; nh++) {
        const char *c = strchr(q->headers[nh], ':');

        f->hdrs[nh].name = (struct gw_str){q->headers[nh], (size_t)(c - q->headers[nh])};
        f->hdrs[nh].value = gw_str_c(c + 2);
    }
    f->req.headers = f->hdrs;
    f->req.nheaders = nh;
    f->req.sni = gw_str_c(q->sni);
    f->req.tls = q->tls;
    f->req.port = q->port != 0 ? q->port : (q->tls ? 443 : 80);
    return gw_router_match(f->r, &f->req, &f->m);
}

static void check_requests(struct fx *f, const struct rq *rq, size_t nrq)
{
    for (size_t i = 0; i < nrq; i++) {
        bool hit = fx_match(f, &rq[i]);
        const char *got = hit ? f->m.route->name.p : "(none)";
        const char *want = rq[i].expect != NULL ? rq[i].expect : "(none)";

        if (strcmp(got, want) != 0) {
            print_error("request %zu (%s %s %s): want %s, got %s\n", i,
                        rq[i].method ? rq[i].method : "GET", rq[i].host ? rq[i].host : "-",
                        rq[i].path, want, got);
            fail();
        }
    }
}

static void run(const struct spec *sp, size_t n, const struct rq *rq, size_t nrq)
{
    struct fx *f = fx_new(sp, n);

    check_requests(f, rq, nrq);
    fx_free(f);
}

#define RUN(sp, rq) run(sp, COUNT(sp), rq, COUNT(rq))

/* ---- normalisation ---- */

struct norm_row {
    const char *in;
    const char *out; /* NULL: rejected */
};

static void run_norm(const struct norm_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        size_t len = strlen(rows[i].in);
        long r;

        memset(buf, 'Z', sizeof(buf));
        r = gw_path_normalize(rows[i].in, len, buf);
        if (rows[i].out == NULL) {
            if (r != -1) {
                print_error("'%s' should be rejected, got '%.*s'\n", rows[i].in, (int)r, buf);
                fail();
            }
            continue;
        }
        if (r < 0 || (size_t)r != strlen(rows[i].out) || memcmp(buf, rows[i].out, (size_t)r)) {
            print_error("'%s': want '%s', got '%.*s' (%ld)\n", rows[i].in, rows[i].out,
                        r < 0 ? 0 : (int)r, buf, r);
            fail();
        }
        assert_true((size_t)r <= len);
        assert_int_equal(buf[len], 'Z'); /* nothing written past the input length */
    }
}

static void test_normalize_uppercases_escapes(void **state)
{
    static const struct norm_row rows[] = {
        {"/a%2fb", "/a%2Fb"},     {"/a%2Fb", "/a%2Fb"}, {"/%3a%3F%23", "/%3A%3F%23"},
        {"/x%c3%a9", "/x%C3%A9"}, {"/%20", "/%20"},
    };
    run_norm(rows, COUNT(rows));
}

static void test_normalize_decodes_unreserved(void **state)
{
    static const struct norm_row rows[] = {
        {"/%41%62%7e", "/Ab~"},
        {"/users/%6aohn", "/users/john"},
        {"/a%2D%5f%2e%30", "/a-_.0"},
        {"/plain/a.b%58c", "/plain/a.bXc"},
    };
    run_norm(rows, COUNT(rows));
}

static void test_normalize_removes_dot_segments(void **state)
{
    static const struct norm_row rows[] = {
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/..", "/"},
        {"/../../x", "/x"},
        {"/a/%2e%2E/b", "/b"},
        {"/a/%2e/b", "/a/b"},
        {"/route./req", "/route./req"},
        {"/route../req", "/route../req"},
        {"/a/.b/..c", "/a/.b/..c"},
        {"/", "/"},
    };
    run_norm(rows, COUNT(rows));
}

static void test_normalize_merges_slashes(void **state)
{
    static const struct norm_row rows[] = {
        {"//a", "/a"},
        {"/a//b///c", "/a/b/c"},
        {"/a//../b", "/b"},
        {"/a/b//", "/a/b/"},
    };
    run_norm(rows, COUNT(rows));
}

static void test_normalize_rejects_invalid_escape_and_relative(void **state)
{
    static const struct norm_row rows[] = {
        {"/a%", NULL}, {"/a%4", NULL}, {"/a%zz", NULL}, {"/%g1", NULL},
        {"a/b", NULL}, {"", NULL},     {"%2Fa", NULL},
    };
    run_norm(rows, COUNT(rows));
}

static void test_normalize_in_place(void **state)
{
    char buf[] = "/a/%62/../c//d";
    long n = gw_path_normalize(buf, strlen(buf), buf);

    assert_int_equal(n, 6);
    assert_memory_equal(buf, "/a/c/d", 6);
}

/* ---- priority rules ---- */

static void test_priority_methods_beat_none(void **state)
{
    const struct spec sp[] = {
        {.name = "any", .hosts = L("example.com")},
        {.name = "post", .hosts = L("example.com"), .methods = L("POST")},
    };
    const struct rq rq[] = {
        {.method = "POST", .host = "example.com", .path = "/", .expect = "post"},
        {.method = "GET", .host = "example.com", .path = "/", .expect = "any"},
    };
    RUN(sp, rq);
}

static void test_priority_plain_host_beats_wildcard(void **state)
{
    const struct spec sp[] = {
        {.name = "wild", .hosts = L("*.route.com")},
        {.name = "plain", .hosts = L("plain.route.com")},
    };
    const struct rq rq[] = {
        {.host = "plain.route.com", .path = "/", .expect = "plain"},
        {.host = "other.route.com", .path = "/", .expect = "wild"},
    };
    RUN(sp, rq);
}

static void test_priority_wildcard_host_and_path_beat_plain_host(void **state)
{
    /* Kong: more fields (weight) outrank the plain-host bit */
    const struct spec sp[] = {
        {.name = "plain", .hosts = L("plain.route.com")},
        {.name = "wildpath", .hosts = L("*.route.com"), .paths = L("/path")},
    };
    const struct rq rq[] = {
        {.host = "plain.route.com", .path = "/path", .expect = "wildpath"},
        {.host = "plain.route.com", .path = "/", .expect = "plain"},
    };
    RUN(sp, rq);
}

static void test_priority_more_headers_win(void **state)
{
    const struct spec sp[] = {
        {.name = "one", .headers = L("version=v1")},
        {.name = "two", .headers = L("version=v1", "location=here")},
    };
    const struct rq rq[] = {
        {.path = "/", .headers = L("version: v1", "location: here"), .expect = "two"},
        {.path = "/", .headers = L("version: v1"), .expect = "one"},
        {.path = "/", .headers = L("location: here"), .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_priority_more_headers_beat_longer_path(void **state)
{
    const struct spec sp[] = {
        {.name = "long", .paths = L("/my-route/hello"), .headers = L("version=v1")},
        {.name = "hdrs", .paths = L("/my-route"), .headers = L("version=v1", "location=l1")},
    };
    const struct rq rq[] = {
        {.path = "/my-route/hello", .headers = L("version: v1", "location: l1"), .expect = "hdrs"},
        {.path = "/my-route/hello", .headers = L("version: v1"), .expect = "long"},
    };
    RUN(sp, rq);
}

static void test_priority_regex_beats_longer_prefix(void **state)
{
    const struct spec sp[] = {
        {.name = "prefix", .paths = L("/api/account/settings")},
        {.name = "regex", .paths = L("~/api/.*")},
    };
    const struct rq rq[] = {
        {.path = "/api/account/settings/x", .expect = "regex"},
        {.path = "/other", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_priority_regex_priority_orders_regexes(void **state)
{
    const struct spec sp[] = {
        {.name = "low", .paths = L("~/users/\\d+"), .regex_priority = 1},
        {.name = "high", .paths = L("~/users/[0-9]+/profile"), .regex_priority = 5},
        {.name = "neg", .paths = L("~/users/"), .regex_priority = -3},
        {.name = "zero", .paths = L("~/users/1"), .regex_priority = 0},
    };
    const struct rq rq[] = {
        {.path = "/users/12/profile", .expect = "high"},
        {.path = "/users/12", .expect = "low"},
        {.path = "/users/abc", .expect = "neg"},
    };
    RUN(sp, rq);
}

static void test_priority_regex_priority_ignored_for_prefix(void **state)
{
    /* Kong "[prefix matching ignore regex_priority]" */
    const struct spec sp[] = {
        {.name = "short", .paths = L("/a"), .regex_priority = 100},
        {.name = "long", .paths = L("/a/b")},
    };
    const struct rq rq[] = {{.path = "/a/b/c", .expect = "long"}};
    RUN(sp, rq);
}

static void test_priority_longer_prefix_wins(void **state)
{
    const struct spec sp[] = {
        {.name = "service", .paths = L("/service")},
        {.name = "resource", .paths = L("/service/resource")},
    };
    const struct rq rq[] = {
        {.path = "/service/resource/1", .expect = "resource"},
        {.path = "/service/other", .expect = "service"},
    };
    RUN(sp, rq);
}

static void test_priority_file_order_breaks_ties(void **state)
{
    const struct spec sp[] = {
        {.name = "first", .paths = L("/same")},
        {.name = "second", .paths = L("/same")},
        {.name = "third", .paths = L("/sam2")},
    };
    const struct rq rq[] = {
        {.path = "/same", .expect = "first"},
        {.path = "/sam2", .expect = "third"},
    };
    RUN(sp, rq);
}

static void test_priority_host_and_uri_beat_method(void **state)
{
    /* Kong edge case "[host] and [uri] have higher priority than [method]" */
    const struct spec sp[] = {
        {.name = "host", .hosts = L("domain-1.org")},
        {.name = "method", .methods = L("POST")},
        {.name = "uri", .paths = L("/root")},
    };
    const struct rq rq[] = {
        {.method = "POST", .host = "domain-1.org", .path = "/x", .expect = "host"},
        {.method = "POST", .host = "other.org", .path = "/root", .expect = "uri"},
        {.method = "POST", .host = "other.org", .path = "/x", .expect = "method"},
    };
    RUN(sp, rq);
}

static void test_priority_bit_layout(void **state)
{
    struct gw_arena *a = gw_arena_new();
    const struct spec sp[] = {
        {.name = "full",
         .methods = L("GET"),
         .hosts = L("a.com"),
         .paths = L("/abc"),
         .headers = L("x=1", "y=2")},
        {.name = "re", .hosts = L("*.a.com"), .paths = L("~/x"), .regex_priority = 3},
        {.name = "none", .snis = L("a.com")},
    };
    struct gw_route *r = build(a, sp, COUNT(sp));
    uint64_t p0 = gw_rt_priority(&r[0], r[0].paths.v, r[0].paths.n);
    uint64_t p1 = gw_rt_priority(&r[1], r[1].paths.v, r[1].paths.n);
    uint64_t p2 = gw_rt_priority(&r[2], NULL, 0);

    assert_true(p0 == ((4ull << 61) | (1ull << 60) | (2ull << 52) | 4u));
    assert_true(p1 == ((2ull << 61) | (1ull << 51) | ((3ull + 0x80000000ull) << 19)));
    assert_true(p2 == (1ull << 61));
    gw_arena_free(a);
}

/* ---- hosts ---- */

static void test_host_exact_case_insensitive_any_port(void **state)
{
    const struct spec sp[] = {{.name = "d1", .hosts = L("Domain-1.org")}};
    const struct rq rq[] = {
        {.host = "domain-1.org", .path = "/", .expect = "d1"},
        {.host = "DOMAIN-1.ORG:80", .path = "/", .expect = "d1"},
        {.host = "domain-1.org:123", .path = "/", .expect = "d1"},
        {.host = "domain-1.org.evil", .path = "/", .expect = NULL},
        {.host = "", .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_host_suffix_wildcard_skips_apex(void **state)
{
    const struct spec sp[] = {{.name = "w", .hosts = L("*.route.com")}};
    const struct rq rq[] = {
        {.host = "foo.route.com", .path = "/", .expect = "w"},
        {.host = "a.b.route.com:123", .path = "/", .expect = "w"},
        {.host = "route.com", .path = "/", .expect = NULL},
        {.host = "fooroute.com", .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_host_prefix_wildcard(void **state)
{
    const struct spec sp[] = {{.name = "w", .hosts = L("route.*")}};
    const struct rq rq[] = {
        {.host = "route.org", .path = "/", .expect = "w"},
        {.host = "route.com:123", .path = "/", .expect = "w"},
        {.host = "route", .path = "/", .expect = NULL},
        {.host = "xroute.org", .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_host_with_port_requires_port(void **state)
{
    /* Kong: the Host header's port wins over the local port (net.dst.port) */
    const struct spec sp[] = {
        {.name = "any", .hosts = L("domain-1.org")},
        {.name = "p321", .hosts = L("domain-1.org:321")},
        {.name = "only", .hosts = L("domain-3.org:321")},
    };
    const struct rq rq[] = {
        {.host = "domain-1.org:321", .path = "/", .expect = "any"}, /* tie: file order */
        {.host = "domain-3.org:321", .path = "/", .expect = "only"},
        {.host = "domain-3.org:123", .path = "/", .expect = NULL},
        {.host = "domain-3.org", .port = 321, .path = "/", .expect = "only"},
        {.host = "domain-3.org", .port = 8000, .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_host_port_specific_route_wins_with_more_fields(void **state)
{
    const struct spec sp[] = {
        {.name = "any", .hosts = L("route.*")},
        {.name = "p123", .hosts = L("*.route.net:123", "route.*:123"), .methods = L("GET")},
    };
    const struct rq rq[] = {
        {.host = "foo.route.net:123", .path = "/", .expect = "p123"},
        {.host = "foo.route.net:456", .path = "/", .expect = NULL},
        {.host = "route.org:123", .path = "/", .expect = "p123"},
        {.host = "route.org:456", .path = "/", .expect = "any"},
    };
    RUN(sp, rq);
}

static void test_host_ipv6_literal(void **state)
{
    const struct spec sp[] = {
        {.name = "v6", .hosts = L("[::11]")},
        {.name = "v6port", .hosts = L("[::21]:321")},
    };
    const struct rq rq[] = {
        {.host = "[::11]", .path = "/", .expect = "v6"},
        {.host = "[::11]:654", .path = "/", .expect = "v6"},
        {.host = "[::21]:321", .path = "/", .expect = "v6port"},
        {.host = "[::21]:654", .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_host_bucket_merges_with_hostless_by_priority(void **state)
{
    const struct spec sp[] = {
        {.name = "hostonly", .hosts = L("a.com")},
        {.name = "pathonly", .paths = L("/p")},
        {.name = "hostpath", .hosts = L("a.com", "*.b.com"), .paths = L("/p")},
        {.name = "catchall", .paths = L("/")},
    };
    const struct rq rq[] = {
        {.host = "a.com", .path = "/p", .expect = "hostpath"},
        {.host = "x.b.com", .path = "/p", .expect = "hostpath"},
        {.host = "a.com", .path = "/q", .expect = "hostonly"},
        {.host = "c.com", .path = "/p", .expect = "pathonly"},
        {.host = "c.com", .path = "/q", .expect = "catchall"},
        {.path = "/q", .expect = "catchall"},
    };
    RUN(sp, rq);
}

static void test_host_same_host_twice_listed_once(void **state)
{
    const struct spec sp[] = {
        {.name = "twice", .hosts = L("a.com", "A.com:8080"), .paths = L("/x")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));
    const struct rq rq[] = {
        {.host = "a.com:8080", .path = "/x", .expect = "twice"},
        {.host = "a.com", .path = "/y", .expect = NULL},
    };

    check_requests(f, rq, COUNT(rq));
    assert_int_equal(gw_router_size(f->r), 1);
    fx_free(f);
}

/* ---- methods, headers, snis, protocols ---- */

static void test_method_is_exact(void **state)
{
    const struct spec sp[] = {{.name = "m", .methods = L("GET", "PUT")}};
    const struct rq rq[] = {
        {.method = "GET", .path = "/", .expect = "m"},
        {.method = "PUT", .path = "/", .expect = "m"},
        {.method = "get", .path = "/", .expect = NULL},
        {.method = "POST", .path = "/", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_header_names_and_values_case_insensitive(void **state)
{
    const struct spec sp[] = {{.name = "h", .headers = L("x-version=V1")}};
    const struct rq rq[] = {
        {.path = "/", .headers = L("X-Version: v1"), .expect = "h"},
        {.path = "/", .headers = L("x-VERSION: V1"), .expect = "h"},
        {.path = "/", .headers = L("x-version: v2"), .expect = NULL},
        {.path = "/", .headers = L("x-versions: v1"), .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_header_values_or_names_and(void **state)
{
    const struct spec sp[] = {
        {.name = "h", .headers = L("version=v1", "version=v2", "location=l1")},
    };
    const struct rq rq[] = {
        {.path = "/", .headers = L("version: v2", "location: l1"), .expect = "h"},
        {.path = "/", .headers = L("version: v1", "location: l1"), .expect = "h"},
        {.path = "/", .headers = L("version: v2"), .expect = NULL},
        {.path = "/", .headers = L("location: l1"), .expect = NULL},
        /* any of the request's values may match */
        {.path = "/", .headers = L("version: v9", "Version: v1", "location: l1"), .expect = "h"},
    };
    RUN(sp, rq);
}

static void test_header_regex_case_insensitive_unanchored(void **state)
{
    const struct spec sp[] = {
        {.name = "re", .headers = L("x-agent=~*curl/[0-9]+")},
        {.name = "plain", .headers = L("x-agent=~curl")}, /* a single `~` is a plain value */
    };
    const struct rq rq[] = {
        {.path = "/", .headers = L("X-Agent: CURL/7"), .expect = "re"},
        {.path = "/", .headers = L("x-agent: my curl/8 build"), .expect = "re"},
        {.path = "/", .headers = L("x-agent: curl/x"), .expect = NULL},
        {.path = "/", .headers = L("x-agent: ~CURL"), .expect = "plain"},
    };
    RUN(sp, rq);
}

static void test_sni_ignored_on_plain_http(void **state)
{
    const struct spec sp[] = {{.name = "s", .snis = L("www.example.org")}};
    const struct rq rq[] = {
        {.path = "/", .expect = "s"},
        {.path = "/", .sni = "other.org", .tls = false, .expect = "s"},
    };
    RUN(sp, rq);
}

static void test_sni_checked_on_tls(void **state)
{
    const struct spec sp[] = {
        {.name = "s", .snis = L("www.example.org.")},
        {.name = "left", .snis = L("*.wild.org")},
        {.name = "right", .snis = L("wild.*")},
    };
    const struct rq rq[] = {
        {.path = "/", .sni = "www.example.org", .tls = true, .expect = "s"},
        {.path = "/", .sni = "WWW.EXAMPLE.ORG", .tls = true, .expect = "s"},
        {.path = "/", .sni = "a.wild.org", .tls = true, .expect = "left"},
        {.path = "/", .sni = "wild.com", .tls = true, .expect = "right"},
        {.path = "/", .sni = "other.org", .tls = true, .expect = NULL},
        {.path = "/", .tls = true, .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_protocol_https_only_over_http_not_ok(void **state)
{
    const struct spec sp[] = {
        {.name = "https", .paths = L("/secure"), .protocols = GW_PROTO_HTTPS},
        {.name = "http", .paths = L("/plain"), .protocols = GW_PROTO_HTTP},
        {.name = "both", .paths = L("/both")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/secure"}));
    assert_false(f->m.protocol_ok);
    assert_true(fx_match(f, &(struct rq){.path = "/secure", .tls = true}));
    assert_true(f->m.protocol_ok);
    /* Kong does not refuse http-only routes reached over https */
    assert_true(fx_match(f, &(struct rq){.path = "/plain", .tls = true}));
    assert_true(f->m.protocol_ok);
    assert_true(fx_match(f, &(struct rq){.path = "/both"}));
    assert_true(f->m.protocol_ok);
    fx_free(f);
}

/* ---- paths ---- */

static void test_prefix_is_plain_string_prefix(void **state)
{
    const struct spec sp[] = {{.name = "foo", .paths = L("/foo")}};
    const struct rq rq[] = {
        {.path = "/foo", .expect = "foo"},
        {.path = "/foobar", .expect = "foo"},
        {.path = "/foo/bar", .expect = "foo"},
        {.path = "/fo", .expect = NULL},
        {.path = "/x/foo", .expect = NULL},
        {.path = "/bar/../foo/x", .expect = "foo"}, /* normalised before matching */
    };
    RUN(sp, rq);
}

static void test_prefix_root_is_catch_all(void **state)
{
    /* Kong "root / [uri]": "/" catches everything, yet any better rule outranks it */
    const struct spec sp[] = {
        {.name = "root", .paths = L("/")},
        {.name = "host", .hosts = L("a.com")},
        {.name = "postroot", .methods = L("POST"), .paths = L("/")},
    };
    const struct rq rq[] = {
        {.host = "a.com", .path = "/x", .expect = "host"},
        {.method = "POST", .host = "b.com", .path = "/x", .expect = "postroot"},
        {.host = "b.com", .path = "/x", .expect = "root"},
        {.path = "/", .expect = "root"},
    };
    RUN(sp, rq);
}

static void test_prefix_encoded_reserved_chars(void **state)
{
    const struct spec sp[] = {{.name = "e", .paths = L("/endel%2Fst")}};
    const struct rq rq[] = {
        {.path = "/endel%2fst", .expect = "e"},
        {.path = "/endel/st", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_regex_anchored_at_start_only(void **state)
{
    const struct spec sp[] = {{.name = "re", .paths = L("~/users/\\d+/profile")}};
    const struct rq rq[] = {
        {.path = "/users/1984/profile", .expect = "re"},
        {.path = "/users/1984/profile/extra", .expect = "re"},
        {.path = "/api/users/1984/profile", .expect = NULL},
        {.path = "/users/abc/profile", .expect = NULL},
    };
    RUN(sp, rq);
}

static void test_regex_named_captures(void **state)
{
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/users/(?P<user_id>\\d+)/profile/?(?<scope>[a-z]*)")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/users/1984/profile/email"}));
    assert_true(f->m.regex);
    assert_int_equal(f->m.ncaptures, 3);
    assert_null(f->m.capture_names[0]);
    assert_string_equal(f->m.capture_names[1], "user_id");
    assert_string_equal(f->m.capture_names[2], "scope");
    assert_true(gw_str_eqc(f->m.captures[0], "/users/1984/profile/email"));
    assert_true(gw_str_eqc(f->m.captures[1], "1984"));
    assert_true(gw_str_eqc(f->m.captures[2], "email"));
    assert_true(gw_str_eqc(f->m.matched, "/users/1984/profile/email"));

    assert_true(fx_match(f, &(struct rq){.path = "/users/1984/profile"}));
    assert_non_null(f->m.captures[2].p); /* matched, empty */
    assert_int_equal(f->m.captures[2].len, 0);
    fx_free(f);
}

static void test_regex_unset_optional_group_is_null(void **state)
{
    /* Kong #13014 */
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/(users/)?1984/(?<subpath>profile)$")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/1984/profile"}));
    assert_int_equal(f->m.ncaptures, 3);
    assert_null(f->m.captures[1].p);
    assert_true(gw_str_eqc(f->m.captures[2], "profile"));
    assert_null(f->m.capture_names[1]);
    assert_string_equal(f->m.capture_names[2], "subpath");
    fx_free(f);
}

static void test_regex_captures_see_normalised_path(void **state)
{
    /* Kong #7913 (our normaliser decodes unreserved escapes only) */
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/users/(?P<fullname>[a-zA-Z\\s\\d%]+)/profile")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/users/%6aohn%20doe/profile"}));
    assert_true(gw_str_eqc(f->m.captures[1], "john%20doe"));
    fx_free(f);
}

static void test_regex_without_groups_and_prefix_captures(void **state)
{
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/users/\\d+/profile")},
        {.name = "prefix", .paths = L("/hello")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/users/1/profile"}));
    assert_int_equal(f->m.ncaptures, 1);
    assert_true(gw_str_eqc(f->m.captures[0], "/users/1/profile"));
    assert_true(fx_match(f, &(struct rq){.path = "/hello/world"}));
    assert_false(f->m.regex);
    assert_int_equal(f->m.ncaptures, 0);
    assert_true(gw_str_eqc(f->m.matched, "/hello"));
    fx_free(f);
}

static void test_regex_more_groups_than_max(void **state)
{
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)(m)(n)(o)(p)(q)(r)(s)")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/abcdefghijklmnopqrs"}));
    assert_int_equal(f->m.ncaptures, GW_ROUTER_MAX_CAPTURES);
    assert_true(gw_str_eqc(f->m.captures[15], "o"));
    fx_free(f);
}

static void test_regex_literal_prefix(void **state)
{
    static const struct {
        const char *re, *lit;
    } rows[] = {
        {"/api/v1/\\d+", "/api/v1/"}, {"/a|/b", ""},    {"/ab?c", "/a"},
        {"/a\\.b(x)", "/a.b"},        {"/(?i)x", "/"},  {"/x{2}", "/"},
        {"/users\\/\\d", "/users/"},  {"/a[bc]", "/a"}, {"/ab*", "/a"},
        {"/plain", "/plain"},         {"/a\\", "/a"},   {"/a.b", "/a"},
    };
    for (size_t i = 0; i < COUNT(rows); i++) {
        char buf[64];
        size_t n = gw_rt_regex_literal_prefix(gw_str_c(rows[i].re), buf, sizeof(buf));

        if (n != strlen(rows[i].lit) || memcmp(buf, rows[i].lit, n) != 0) {
            print_error("%s: want '%s', got '%.*s'\n", rows[i].re, rows[i].lit, (int)n, buf);
            fail();
        }
    }
}

static void test_regex_literal_prefix_does_not_hide_matches(void **state)
{
    const struct spec sp[] = {
        {.name = "alt", .paths = L("~/a|/b")},
        {.name = "opt", .paths = L("~/xy?z")},
    };
    const struct rq rq[] = {
        {.path = "/b", .expect = "alt"},
        {.path = "/xz", .expect = "opt"},
        {.path = "/xyz", .expect = "opt"},
        {.path = "/x", .expect = NULL},
    };
    RUN(sp, rq);
}

/* ---- split of mixed paths ---- */

static void test_split_counts_subroutes(void **state)
{
    const struct spec sp[] = {
        {.name = "mixed", .paths = L("~/regex.*$", "/long-path", "/one", "/two", "/three", "~/.*")},
        {.name = "single", .paths = L("/a", "/b")},
        {.name = "none", .hosts = L("x.com")},
    };
    struct fx *f = fx_new(sp, COUNT(sp));

    /* {regexes}, {/long-path}, {/one, /two}, {/three} + 1 + 1 */
    assert_int_equal(gw_router_size(f->r), 6);
    fx_free(f);
}

static void test_split_each_path_competes_with_own_priority(void **state)
{
    /* Kong "[both regex and prefix]" and "[overlapping prefixes]" */
    const struct spec sp[] = {
        {.name = "mixed", .paths = L("/foo", "~/foo/bar/\\d+")},
        {.name = "long", .paths = L("/foo/bar")},
        {.name = "overlap", .paths = L("/a", "/a/b/c/d")},
        {.name = "mid", .paths = L("/a/b")},
    };
    const struct rq rq[] = {
        {.path = "/foo/bar/1", .expect = "mixed"}, /* regex part beats the longer prefix */
        {.path = "/foo/bar/x", .expect = "long"},  /* prefix part /foo loses to /foo/bar */
        {.path = "/foo/x", .expect = "mixed"},     {.path = "/a/b/c/d/e", .expect = "overlap"},
        {.path = "/a/b/c", .expect = "mid"},       {.path = "/a/x", .expect = "overlap"},
    };
    RUN(sp, rq);
}

static void test_split_regex_priority_only_on_regex_part(void **state)
{
    /* Kong "[both regex and prefix with regex_priority]" */
    const struct spec sp[] = {
        {.name = "a", .paths = L("/prefix/path", "~/regex/path"), .regex_priority = 200},
        {.name = "b", .paths = L("~/regex/path"), .regex_priority = 100},
        {.name = "c", .paths = L("/prefix/path/longer")},
    };
    const struct rq rq[] = {
        {.path = "/regex/path", .expect = "a"},
        {.path = "/prefix/path/longer", .expect = "c"},
        {.path = "/prefix/path", .expect = "a"},
    };
    RUN(sp, rq);
}

static void test_split_matched_reports_group_path(void **state)
{
    const struct spec sp[] = {{.name = "m", .paths = L("/my-route", "/xx-route", "/r")}};
    struct fx *f = fx_new(sp, COUNT(sp));

    assert_true(fx_match(f, &(struct rq){.path = "/xx-route/a"}));
    assert_true(gw_str_eqc(f->m.matched, "/xx-route"));
    assert_true(fx_match(f, &(struct rq){.path = "/rx"}));
    assert_true(gw_str_eqc(f->m.matched, "/r"));
    assert_int_equal(gw_router_size(f->r), 2);
    fx_free(f);
}

/* ---- compile errors, misses ---- */

static void test_compile_reports_bad_regex_with_position(void **state)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_err err;
    const struct spec sp[] = {
        {.name = "ok", .paths = L("/ok")},
        {.name = "bad", .paths = L("/fine", "~/(a")},
        {.name = "badhdr", .headers = L("x=~*[z")},
    };
    struct gw_route *r = build(a, sp, COUNT(sp));

    gw_err_init(&err, "t.yaml");
    assert_null(gw_router_compile(r, COUNT(sp), a, &err));
    assert_int_equal(err.nerr, 2);
    assert_int_equal(err.head->line, 11);
    assert_int_equal(err.head->col, 7);
    assert_string_equal(err.head->path, "routes[1].paths[1]");
    assert_string_equal(err.head->msg,
                        "invalid regex: '/(a' (PCRE returned: missing closing parenthesis)");
    assert_string_equal(err.head->next->path, "routes[2].headers.x[0]");
    gw_err_dispose(&err);
    gw_arena_free(a);
}

static void test_compile_empty_router_matches_nothing(void **state)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_err err;
    struct gw_router *r;
    struct gw_router_req req = {.method = GW_STR_LIT("GET"), .path = GW_STR_LIT("/")};
    struct gw_router_match m;

    gw_err_init(&err, "t.yaml");
    r = gw_router_compile(NULL, 0, a, &err);
    assert_non_null(r);
    assert_int_equal(gw_router_size(r), 0);
    assert_false(gw_router_match(r, &req, &m));
    gw_err_dispose(&err);
    gw_arena_free(a);
}

static void test_misses(void **state)
{
    /* Kong "misses" */
    const struct spec sp[] = {
        {.name = "h", .hosts = L("domain-1.org")},
        {.name = "hu", .hosts = L("domain-2.org"), .paths = L("/my-route")},
        {.name = "hm", .hosts = L("domain-3.org"), .methods = L("POST")},
        {.name = "hum", .hosts = L("domain-4.org"), .paths = L("/r"), .methods = L("PUT")},
        {.name = "hd", .headers = L("location=my-location-1")},
    };
    const struct rq rq[] = {
        {.host = "domain-9.org", .path = "/", .expect = NULL},
        {.host = "domain-2.org", .path = "/x", .expect = NULL},
        {.host = "domain-3.org", .path = "/", .expect = NULL},
        {.method = "GET", .host = "domain-4.org", .path = "/r", .expect = NULL},
        {.method = "PUT", .host = "domain-4.org", .path = "/x", .expect = NULL},
        {.path = "/", .headers = L("location: my-location-2"), .expect = NULL},
        {.path = "/", .headers = L("location: my-location-1"), .expect = "hd"},
    };
    RUN(sp, rq);
}

/* ---- upstream path ---- */

static void upstream_case(const char *svc, bool has_svc, const char *route_path, bool regex,
                          bool strip, bool v1, const char *req_path, const char *want)
{
    char rp[128];
    const char *host = route_path == NULL ? "localbin.com" : NULL;
    struct spec sp = {.name = "r",
                      .nostrip = !strip,
                      .v1 = v1,
                      .service_path = svc,
                      .no_service = !has_svc,
                      .hosts = host != NULL ? L("localbin.com") : NULL};
    const char *paths[2] = {rp, NULL};
    struct fx *f;
    char out[256];
    size_t n;

    if (route_path != NULL) {
        /* Kong's regex variant: "~/[0]?" + path without its slash */
        snprintf(rp, sizeof(rp), "%s%s", regex ? "~/[0]?" : "",
                 regex ? route_path + 1 : route_path);
        sp.paths = paths;
    }
    f = fx_new(&sp, 1);
    if (!fx_match(f, &(struct rq){.host = "localbin.com", .path = req_path})) {
        print_error("no match: svc %s route %s req %s\n", svc, rp, req_path);
        fail();
    }
    n = gw_router_upstream_path(&f->m, f->req.path, out, sizeof(out));
    if (n != strlen(want) || memcmp(out, want, n) != 0) {
        print_error("svc %s route %s strip %d %s req %s: want %s got %.*s\n", svc ? svc : "-",
                    route_path ? rp : "-", strip, v1 ? "v1" : "v0", req_path, want, (int)n, out);
        fail();
    }
    fx_free(f);
}

/* spec/fixtures/router_path_handling_tests.lua; -1 in strip/v1 means "both" */
static const struct ph_row {
    const char *svc, *route;
    int strip, v1;
    const char *req, *want;
} ph_rows[] = {
    {"/", "/", -1, -1, "/", "/"},
    {"/", "/", -1, -1, "/route", "/route"},
    {"/", "/", -1, -1, "/route/", "/route/"},
    {"/", "/", -1, -1, "/routereq", "/routereq"},
    {"/", "/", -1, -1, "/route/req", "/route/req"},
    {"/", "/route", 0, -1, "/route", "/route"},
    {"/", "/route", 0, -1, "/route/", "/route/"},
    {"/", "/route", 0, -1, "/routereq", "/routereq"},
    {"/", "/route", 1, -1, "/route", "/"},
    {"/", "/route", 1, -1, "/route/", "/"},
    {"/", "/route", 1, -1, "/routereq", "/req"},
    {"/", "/route/", 0, -1, "/route/", "/route/"},
    {"/", "/route/", 0, -1, "/route/req", "/route/req"},
    {"/", "/route/", 1, -1, "/route/", "/"},
    {"/", "/route/", 1, -1, "/route/req", "/req"},
    {"/srv", "/rou", 0, 0, "/roureq", "/srv/roureq"},
    {"/srv", "/rou", 0, 1, "/roureq", "/srvroureq"},
    {"/srv", "/rou", 1, 0, "/roureq", "/srv/req"},
    {"/srv", "/rou", 1, 1, "/roureq", "/srvreq"},
    {"/srv/", "/rou", 0, -1, "/rou", "/srv/rou"},
    {"/srv/", "/rou", 1, 0, "/rou", "/srv"},
    {"/srv/", "/rou", 1, 1, "/rou", "/srv/"},
    {"/service", "/", -1, -1, "/", "/service"},
    {"/service", "/", -1, 0, "/route", "/service/route"},
    {"/service", "/", -1, 1, "/route", "/serviceroute"},
    {"/service", "/", -1, 0, "/route/", "/service/route/"},
    {"/service", "/", -1, 1, "/route/", "/serviceroute/"},
    {"/service", "/", -1, 0, "/routereq", "/service/routereq"},
    {"/service", "/", -1, 1, "/routereq", "/serviceroutereq"},
    {"/service", "/", -1, 0, "/route/req", "/service/route/req"},
    {"/service", "/", -1, 1, "/route/req", "/serviceroute/req"},
    {"/service", "/route", 0, 0, "/route", "/service/route"},
    {"/service", "/route", 0, 1, "/route", "/serviceroute"},
    {"/service", "/route", 0, 0, "/route/", "/service/route/"},
    {"/service", "/route", 0, 1, "/route/", "/serviceroute/"},
    {"/service", "/route", 0, 0, "/routereq", "/service/routereq"},
    {"/service", "/route", 0, 1, "/routereq", "/serviceroutereq"},
    {"/service", "/route", 1, -1, "/route", "/service"},
    {"/service", "/route", 1, -1, "/route/", "/service/"},
    {"/service", "/route", 1, 0, "/routereq", "/service/req"},
    {"/service", "/route", 1, 1, "/routereq", "/servicereq"},
    {"/service", "/route/", 0, 0, "/route/", "/service/route/"},
    {"/service", "/route/", 0, 1, "/route/", "/serviceroute/"},
    {"/service", "/route/", 0, 0, "/route/req", "/service/route/req"},
    {"/service", "/route/", 0, 1, "/route/req", "/serviceroute/req"},
    {"/service", "/route/", 1, 0, "/route/", "/service/"},
    {"/service", "/route/", 1, 1, "/route/", "/service"},
    {"/service", "/route/", 1, 0, "/route/req", "/service/req"},
    {"/service", "/route/", 1, 1, "/route/req", "/servicereq"},
    {"/service/", "/", -1, 0, "/route/", "/service/route/"},
    {"/service/", "/", -1, 1, "/route/", "/service/route/"},
    {"/service/", "/", -1, -1, "/", "/service/"},
    {"/service/", "/", -1, -1, "/route", "/service/route"},
    {"/service/", "/", -1, -1, "/routereq", "/service/routereq"},
    {"/service/", "/", -1, -1, "/route/req", "/service/route/req"},
    {"/service/", "/route", 0, -1, "/route", "/service/route"},
    {"/service/", "/route", 0, -1, "/route/", "/service/route/"},
    {"/service/", "/route", 0, -1, "/routereq", "/service/routereq"},
    {"/service/", "/route", 1, 0, "/route", "/service"},
    {"/service/", "/route", 1, 1, "/route", "/service/"},
    {"/service/", "/route", 1, -1, "/route/", "/service/"},
    {"/service/", "/route", 1, -1, "/routereq", "/service/req"},
    {"/service/", "/route/", 0, -1, "/route/", "/service/route/"},
    {"/service/", "/route/", 0, -1, "/route/req", "/service/route/req"},
    {"/service/", "/route/", 1, -1, "/route/", "/service/"},
    {"/service/", "/route/", 1, -1, "/route/req", "/service/req"},
    {"/", NULL, -1, -1, "/", "/"},
    {"/", NULL, -1, -1, "/route", "/route"},
    {"/", NULL, -1, -1, "/route/", "/route/"},
    {"/service", NULL, -1, -1, "/", "/service"},
    {"/service", NULL, -1, 0, "/route", "/service/route"},
    {"/service", NULL, -1, 1, "/route", "/serviceroute"},
    {"/service", NULL, -1, 0, "/route/", "/service/route/"},
    {"/service", NULL, -1, 1, "/route/", "/serviceroute/"},
    {"/service/", NULL, -1, -1, "/", "/service/"},
    {"/service/", NULL, -1, -1, "/route", "/service/route"},
    {"/service/", NULL, -1, -1, "/route/", "/service/route/"},
    {"/service", "/route", 1, 0, "/route./req", "/service/req"},
    {"/service", "/route", 1, 1, "/route./req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route./req", "/service/req"},
    {"/service", "/route", 1, 0, "/route%2E/req", "/service/req"},
    {"/service", "/route", 1, 1, "/route%2E/req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route%2E/req", "/service/req"},
    {"/service", "/route", 1, 0, "/route%2e/req", "/service/req"},
    {"/service", "/route", 1, 1, "/route%2e/req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route%2e/req", "/service/req"},
    {"/service", "/route", 1, 0, "/route../req", "/service/req"},
    {"/service", "/route", 1, 1, "/route../req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route../req", "/service/req"},
    {"/service", "/route", 1, 0, "/route%2E%2E/req", "/service/req"},
    {"/service", "/route", 1, 1, "/route%2E%2E/req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route%2E%2E/req", "/service/req"},
    {"/service", "/route", 1, 0, "/route%2e%2E/req", "/service/req"},
    {"/service", "/route", 1, 1, "/route%2e%2E/req", "/servicereq"},
    {"/service/", "/route", 1, -1, "/route%2e%2E/req", "/service/req"},
    {"/service", "/route", 0, 0, "/route./req", "/service/route./req"},
    {"/service", "/route", 0, 1, "/route./req", "/serviceroute./req"},
    {"/service/", "/route", 0, -1, "/route./req", "/service/route./req"},
    {"/service", "/route", 0, 0, "/route%2E/req", "/service/route./req"},
    {"/service", "/route", 0, 1, "/route%2E/req", "/serviceroute./req"},
    {"/service/", "/route", 0, -1, "/route%2E/req", "/service/route./req"},
    {"/service", "/route", 0, 0, "/route%2e/req", "/service/route./req"},
    {"/service", "/route", 0, 1, "/route%2e/req", "/serviceroute./req"},
    {"/service/", "/route", 0, -1, "/route%2e/req", "/service/route./req"},
    {"/service", "/route", 0, 0, "/route../req", "/service/route../req"},
    {"/service", "/route", 0, 1, "/route../req", "/serviceroute../req"},
    {"/service/", "/route", 0, -1, "/route../req", "/service/route../req"},
    {"/service", "/route", 0, 0, "/route%2E%2E/req", "/service/route../req"},
    {"/service", "/route", 0, 1, "/route%2E%2E/req", "/serviceroute../req"},
    {"/service/", "/route", 0, -1, "/route%2E%2E/req", "/service/route../req"},
    {"/service", "/route", 0, 0, "/route%2e%2E/req", "/service/route../req"},
    {"/service", "/route", 0, 1, "/route%2e%2E/req", "/serviceroute../req"},
    {"/service/", "/route", 0, -1, "/route%2e%2E/req", "/service/route../req"},
};

static void run_path_handling(bool regex)
{
    size_t ncases = 0;

    for (size_t i = 0; i < COUNT(ph_rows); i++) {
        const struct ph_row *t = &ph_rows[i];

        if (regex && t->route == NULL)
            continue;
        for (int s = 0; s < 2; s++) {
            for (int v = 0; v < 2; v++) {
                if ((t->strip >= 0 && t->strip != s) || (t->v1 >= 0 && t->v1 != v))
                    continue;
                upstream_case(t->svc, true, t->route, regex, s, v, t->req, t->want);
                ncases++;
            }
        }
    }
    assert_true(ncases > 150);
}

static void test_upstream_kong_path_handling_table_prefix(void **state)
{
    run_path_handling(false);
}

static void test_upstream_kong_path_handling_table_regex(void **state)
{
    run_path_handling(true);
}

static void test_upstream_docs_examples(void **state)
{
    upstream_case("/s", true, "/tv0", false, true, false, "/tv0/req", "/s/req");
    upstream_case("/s", true, "/tv0", false, true, false, "/tv0", "/s");
    upstream_case("/s", true, "/fv0", false, false, false, "/fv0/req", "/s/fv0/req");
    upstream_case("/s", true, "/tv1", false, true, true, "/tv1/req", "/s/req");
    upstream_case("/s", true, "/fv1", false, false, true, "/fv1/req", "/sfv1/req");
}

static void test_upstream_without_service_uses_root(void **state)
{
    upstream_case(NULL, false, "/hello", false, true, false, "/hello/world", "/world");
    upstream_case(NULL, false, "/hello", false, false, false, "/hello/world", "/hello/world");
    upstream_case(NULL, true, "/", false, true, false, "/my-route/hello", "/my-route/hello");
}

static void test_upstream_strips_regex_match(void **state)
{
    const struct spec sp[] = {
        {.name = "re", .paths = L("~/users/(\\d+)/profile"), .service_path = "/"},
    };
    struct fx *f = fx_new(sp, COUNT(sp));
    char out[64];
    size_t n;

    assert_true(fx_match(f, &(struct rq){.path = "/users/123/profile/hello/world"}));
    assert_true(gw_str_eqc(f->m.matched, "/users/123/profile"));
    n = gw_router_upstream_path(&f->m, f->req.path, out, sizeof(out));
    assert_int_equal(n, 12);
    assert_memory_equal(out, "/hello/world", 12);
    fx_free(f);
}

static void test_upstream_small_buffer_reports_length(void **state)
{
    const struct spec sp[] = {
        {.name = "r", .paths = L("/a"), .nostrip = true, .service_path = "/service/"},
    };
    struct fx *f = fx_new(sp, COUNT(sp));
    char out[8];
    size_t n;

    memset(out, 'Z', sizeof(out));
    assert_true(fx_match(f, &(struct rq){.path = "/a/bcdef"}));
    n = gw_router_upstream_path(&f->m, f->req.path, out, 4);
    assert_int_equal(n, strlen("/service/a/bcdef"));
    assert_memory_equal(out, "/ser", 4);
    assert_int_equal(out[4], 'Z');
    fx_free(f);
}

/* ---- check_path ---- */

struct cp_row {
    const char *path, *msg; /* msg NULL: valid */
};

static void run_check_path(const struct cp_row *rows, size_t n)
{
    struct gw_arena *a = gw_arena_new();

    for (size_t i = 0; i < n; i++) {
        const char *msg = gw_router_check_path(gw_str_c(rows[i].path), a);

        if ((msg == NULL) != (rows[i].msg == NULL) ||
            (msg != NULL && strcmp(msg, rows[i].msg) != 0)) {
            print_error("%s: want %s, got %s\n", rows[i].path,
                        rows[i].msg ? rows[i].msg : "(valid)", msg ? msg : "(valid)");
            fail();
        }
    }
    gw_arena_free(a);
}

static void test_check_path_accepts_valid(void **state)
{
    static const struct cp_row rows[] = {
        {"/", NULL},
        {"/foo/bar", NULL},
        {"/endel%2Fst", NULL},
        {"/a.b/c", NULL},
        {"~/version/\\d+/status$", NULL},
        {"~/users/(?<id>\\d+)", NULL},
        {"/route./x", NULL},
    };
    run_check_path(rows, COUNT(rows));
}

static void test_check_path_bad_regex_message(void **state)
{
    static const struct cp_row rows[] = {
        {"~/(a", "invalid regex: '/(a' (PCRE returned: missing closing parenthesis)"},
        {"~/[z", "invalid regex: '/[z' (PCRE returned: missing terminating ] for character "
                 "class)"},
    };
    run_check_path(rows, COUNT(rows));
}

static void test_check_path_must_start_with_slash(void **state)
{
    static const struct cp_row rows[] = {
        {"foo", "should start with: / (fixed path) or ~/ (regex path)"},
        {"~foo", "should start with: / (fixed path) or ~/ (regex path)"},
        {"", "should start with: / (fixed path) or ~/ (regex path)"},
        {"~", "should start with: / (fixed path) or ~/ (regex path)"},
    };
    run_check_path(rows, COUNT(rows));
}

static void test_check_path_non_normalized(void **state)
{
    static const struct cp_row rows[] = {
        {"/a/../b", "non-normalized path, consider use '/b' instead"},
        {"/plain/a.b%58c", "non-normalized path, consider use '/plain/a.bXc' instead"},
        {"/a%2fb", "non-normalized path, consider use '/a%2Fb' instead"},
        {"/a/.", "non-normalized path, consider use '/a/' instead"},
    };
    run_check_path(rows, COUNT(rows));
}

static void test_check_path_empty_segments_and_bad_escapes(void **state)
{
    static const struct cp_row rows[] = {
        {"/a//b", "must not have empty segments"},
        {"~/a//b", "must not have empty segments"},
        {"/a%zz", "invalid url-encoded value: '%zz'"},
        {"/a%4", "invalid url-encoded value: '%4'"},
        {"/a%", "invalid url-encoded value: '%'"},
        {"/a%%41", "invalid url-encoded value: '%__'"},
        {"~/\\d+%", "invalid url-encoded value: '%'"},
    };
    run_check_path(rows, COUNT(rows));
}

/* ---- scale and threads ---- */

static void test_many_hosts_each_routes_to_its_own(void **state)
{
    enum { NH = 300, PER = 4 };
    struct gw_arena *a = gw_arena_new();
    struct spec *sp = gw_arena_calloc(a, NH * PER + 1, sizeof(*sp));
    struct fx *f;

    for (int h = 0; h < NH; h++) {
        for (int k = 0; k < PER; k++) {
            struct spec *s = &sp[h * PER + k];
            char **hosts = gw_arena_calloc(a, 2, sizeof(char *));
            char **paths = gw_arena_calloc(a, 2, sizeof(char *));

            hosts[0] = gw_arena_printf(a, "h%d.example.com", h);
            paths[0] = k == 3 ? gw_arena_printf(a, "~/re%d/(\\d+)", k)
                              : gw_arena_printf(a, "/p%d%s", k, k == 1 ? "/deeper" : "");
            s->name = gw_arena_printf(a, "h%d-%d", h, k);
            s->hosts = (const char *const *)hosts;
            s->paths = (const char *const *)paths;
        }
    }
    sp[NH * PER].name = "fallback";
    sp[NH * PER].paths = L("/");
    f = fx_new(sp, NH * PER + 1);
    for (int h = 0; h < NH; h += 7) {
        char host[64], want[32];
        struct rq q = {.host = host, .path = "/p1/deeper/x", .expect = want};

        snprintf(host, sizeof(host), "H%d.example.com:8080", h);
        snprintf(want, sizeof(want), "h%d-1", h);
        check_requests(f, &q, 1);
        q.path = "/re3/42";
        snprintf(want, sizeof(want), "h%d-3", h);
        check_requests(f, &q, 1);
        q.path = "/nothing";
        q.expect = "fallback";
        check_requests(f, &q, 1);
    }
    fx_free(f);
    gw_arena_free(a);
}

static void test_segment_index_keeps_priority_order(void **state)
{
    /* lists of 16+ sub-routes are indexed by first path segment; the merge of indexed,
     * generic and host streams must still give the highest-priority match */
    enum { NP = 20, NB = 20 };
    struct gw_arena *a = gw_arena_new();
    struct spec *sp = gw_arena_calloc(a, NP + NB + 6, sizeof(*sp));
    size_t n = 0;
    struct fx *f;
    static const char *const bighost[] = {"big.com", NULL};

    for (int i = 0; i < NP; i++) {
        char **paths = gw_arena_calloc(a, 2, sizeof(char *));

        paths[0] = gw_arena_printf(a, "/api/v%d", i);
        sp[n].name = gw_arena_printf(a, "p%d", i);
        sp[n++].paths = (const char *const *)paths;
    }
    for (int i = 0; i < NB; i++) {
        char **paths = gw_arena_calloc(a, 2, sizeof(char *));

        paths[0] = gw_arena_printf(a, "/b%d/x", i);
        sp[n].name = gw_arena_printf(a, "b%d", i);
        sp[n].hosts = bighost;
        sp[n++].paths = (const char *const *)paths;
    }
    sp[n++] = (struct spec){.name = "ap", .paths = (const char *const[]){"/ap", NULL}};
    sp[n++] = (struct spec){.name = "re-api", .paths = (const char *const[]){"~/api/(\\d+)", NULL}};
    sp[n++] =
        (struct spec){.name = "re-generic", .paths = (const char *const[]){"~/[a-z]+/z$", NULL}};
    sp[n++] = (struct spec){.name = "root", .paths = (const char *const[]){"/", NULL}};
    sp[n++] = (struct spec){.name = "other", .paths = (const char *const[]){"/other/thing", NULL}};
    sp[n++] = (struct spec){.name = "bigroot",
                            .hosts = (const char *const[]){"big.com", NULL},
                            .paths = (const char *const[]){"/", NULL}};
    f = fx_new(sp, n);
    const struct rq rq[] = {
        {.path = "/api/v3/x", .expect = "p3"},
        {.path = "/api/v12/x", .expect = "p12"},
        {.path = "/api/77", .expect = "re-api"},
        {.path = "/apix", .expect = "ap"},
        {.path = "/api", .expect = "ap"},
        {.path = "/abc/z", .expect = "re-generic"},
        {.path = "/other/thing/1", .expect = "other"},
        {.path = "/zzz", .expect = "root"},
        {.path = "/", .expect = "root"},
        {.host = "big.com", .path = "/b5/x/y", .expect = "b5"},
        {.host = "big.com", .path = "/api/77", .expect = "bigroot"},
        {.host = "big.com", .path = "/b5", .expect = "bigroot"},
        {.host = "small.com", .path = "/b5/x", .expect = "root"},
    };
    check_requests(f, rq, COUNT(rq));
    fx_free(f);
    gw_arena_free(a);
}

struct thr_arg {
    const struct gw_router *r;
    int ok;
};

static void *thr_main(void *p)
{
    struct thr_arg *t = p;
    struct gw_router_req req = {.method = GW_STR_LIT("GET"), .path = GW_STR_LIT("/t/77/x")};
    struct gw_router_match m;

    t->ok = 1;
    for (int i = 0; i < 2000; i++)
        if (!gw_router_match(t->r, &req, &m) || !gw_str_eqc(m.captures[1], "77"))
            t->ok = 0;
    return NULL;
}

static void test_concurrent_regex_matches(void **state)
{
    const struct spec sp[] = {{.name = "t", .paths = L("~/t/(\\d+)")}};
    struct fx *f = fx_new(sp, COUNT(sp));
    pthread_t th[4];
    struct thr_arg args[4];

    for (int i = 0; i < 4; i++) {
        args[i].r = f->r;
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 1);
    }
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_normalize_uppercases_escapes),
        cmocka_unit_test(test_normalize_decodes_unreserved),
        cmocka_unit_test(test_normalize_removes_dot_segments),
        cmocka_unit_test(test_normalize_merges_slashes),
        cmocka_unit_test(test_normalize_rejects_invalid_escape_and_relative),
        cmocka_unit_test(test_normalize_in_place),
        cmocka_unit_test(test_priority_methods_beat_none),
        cmocka_unit_test(test_priority_plain_host_beats_wildcard),
        cmocka_unit_test(test_priority_wildcard_host_and_path_beat_plain_host),
        cmocka_unit_test(test_priority_more_headers_win),
        cmocka_unit_test(test_priority_more_headers_beat_longer_path),
        cmocka_unit_test(test_priority_regex_beats_longer_prefix),
        cmocka_unit_test(test_priority_regex_priority_orders_regexes),
        cmocka_unit_test(test_priority_regex_priority_ignored_for_prefix),
        cmocka_unit_test(test_priority_longer_prefix_wins),
        cmocka_unit_test(test_priority_file_order_breaks_ties),
        cmocka_unit_test(test_priority_host_and_uri_beat_method),
        cmocka_unit_test(test_priority_bit_layout),
        cmocka_unit_test(test_host_exact_case_insensitive_any_port),
        cmocka_unit_test(test_host_suffix_wildcard_skips_apex),
        cmocka_unit_test(test_host_prefix_wildcard),
        cmocka_unit_test(test_host_with_port_requires_port),
        cmocka_unit_test(test_host_port_specific_route_wins_with_more_fields),
        cmocka_unit_test(test_host_ipv6_literal),
        cmocka_unit_test(test_host_bucket_merges_with_hostless_by_priority),
        cmocka_unit_test(test_host_same_host_twice_listed_once),
        cmocka_unit_test(test_method_is_exact),
        cmocka_unit_test(test_header_names_and_values_case_insensitive),
        cmocka_unit_test(test_header_values_or_names_and),
        cmocka_unit_test(test_header_regex_case_insensitive_unanchored),
        cmocka_unit_test(test_sni_ignored_on_plain_http),
        cmocka_unit_test(test_sni_checked_on_tls),
        cmocka_unit_test(test_protocol_https_only_over_http_not_ok),
        cmocka_unit_test(test_prefix_is_plain_string_prefix),
        cmocka_unit_test(test_prefix_root_is_catch_all),
        cmocka_unit_test(test_prefix_encoded_reserved_chars),
        cmocka_unit_test(test_regex_anchored_at_start_only),
        cmocka_unit_test(test_regex_named_captures),
        cmocka_unit_test(test_regex_unset_optional_group_is_null),
        cmocka_unit_test(test_regex_captures_see_normalised_path),
        cmocka_unit_test(test_regex_without_groups_and_prefix_captures),
        cmocka_unit_test(test_regex_more_groups_than_max),
        cmocka_unit_test(test_regex_literal_prefix),
        cmocka_unit_test(test_regex_literal_prefix_does_not_hide_matches),
        cmocka_unit_test(test_split_counts_subroutes),
        cmocka_unit_test(test_split_each_path_competes_with_own_priority),
        cmocka_unit_test(test_split_regex_priority_only_on_regex_part),
        cmocka_unit_test(test_split_matched_reports_group_path),
        cmocka_unit_test(test_compile_reports_bad_regex_with_position),
        cmocka_unit_test(test_compile_empty_router_matches_nothing),
        cmocka_unit_test(test_misses),
        cmocka_unit_test(test_upstream_kong_path_handling_table_prefix),
        cmocka_unit_test(test_upstream_kong_path_handling_table_regex),
        cmocka_unit_test(test_upstream_docs_examples),
        cmocka_unit_test(test_upstream_without_service_uses_root),
        cmocka_unit_test(test_upstream_strips_regex_match),
        cmocka_unit_test(test_upstream_small_buffer_reports_length),
        cmocka_unit_test(test_check_path_accepts_valid),
        cmocka_unit_test(test_check_path_bad_regex_message),
        cmocka_unit_test(test_check_path_must_start_with_slash),
        cmocka_unit_test(test_check_path_non_normalized),
        cmocka_unit_test(test_check_path_empty_segments_and_bad_escapes),
        cmocka_unit_test(test_many_hosts_each_routes_to_its_own),
        cmocka_unit_test(test_segment_index_keeps_priority_order),
        cmocka_unit_test(test_concurrent_regex_matches),
    };
    return cmocka_run_group_tests_name("router", t, NULL, NULL);
}
