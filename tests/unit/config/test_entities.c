#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gw/config.h"
#include "gw/log.h"
#include "gw/router.h"
#include "support/fixtures.h"

/* Kong's declarative entities and the `gateway:` section, as gw_snapshot_load_buf() builds
 * them: defaults, ids, references, and every error at once with path and position. */

#define FV "_format_version: \"3.0\"\n"

static void test_service_defaults_and_url(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "services:\n"
                                           "  - name: a\n    url: https://api.example.com/v1\n"
                                           "  - name: b\n    host: b.internal\n");
    assert_non_null(s);
    assert_int_equal(s->nservices, 2);
    assert_int_equal(s->services[0].protocol, GW_PROTO_HTTPS);
    assert_int_equal(s->services[0].port, 443);
    assert_string_equal(s->services[0].host.p, "api.example.com");
    assert_string_equal(s->services[0].path.p, "/v1");
    assert_int_equal(s->services[1].protocol, GW_PROTO_HTTP);
    assert_int_equal(s->services[1].port, 80);
    assert_int_equal(s->services[1].path.len, 0);
    assert_int_equal(s->services[1].retries, 5);
    assert_int_equal(s->services[1].connect_timeout, 60000);
    assert_int_equal(s->services[1].read_timeout, 60000);
    assert_int_equal(s->services[1].write_timeout, 60000);
    assert_int_equal(s->services[1].tls_verify, -1);
    assert_true(s->services[1].enabled);
    gw_snapshot_release(s);
}

static void test_route_defaults(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "services:\n  - name: a\n    url: http://x\n"
                                           "    routes:\n      - paths: [/a]\n");
    const struct gw_route *r;

    assert_non_null(s);
    r = &s->routes[0];
    assert_ptr_equal(r->service, &s->services[0]);
    assert_int_equal(r->protocols, GW_PROTO_HTTP | GW_PROTO_HTTPS);
    assert_true(r->strip_path);
    assert_false(r->preserve_host);
    assert_int_equal(r->regex_priority, 0);
    assert_int_equal(r->path_handling, GW_PATH_V0);
    assert_int_equal(r->https_redirect_status_code, 426);
    assert_true(r->request_buffering);
    assert_true(r->response_buffering);
    gw_snapshot_release(s);
}

static void test_kong_deterministic_ids(void **state)
{
    /* Ids hard-coded in Kong's own tests for these names. */
    struct gw_snapshot *s = fx_snapshot(FV "services:\n  - name: my-service\n    url: http://x\n"
                                           "    routes:\n      - name: my-route\n"
                                           "        paths: [/]\n"
                                           "consumers:\n  - username: my-user\n");
    assert_non_null(s);
    assert_string_equal(s->services[0].id, "0855b320-0dd2-547d-891d-601e9b38647f");
    assert_string_equal(s->routes[0].id, "481a9539-f49c-51b6-b2e2-fe99ee68866c");
    assert_string_equal(s->consumers[0].id, "4b1b701d-de2b-5588-9aa2-3b97061d9f52");
    gw_snapshot_release(s);
}

static void test_explicit_ids_are_kept_lower_case(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "consumers:\n"
                                           "  - id: 7820F383-7B77-4FCC-AF7F-14FF3E256693\n"
                                           "    username: u\n");
    assert_non_null(s);
    assert_string_equal(s->consumers[0].id, "7820f383-7b77-4fcc-af7f-14ff3e256693");
    gw_snapshot_release(s);
}

static void test_references_by_name_id_and_object(void **state)
{
    struct gw_snapshot *s;
    const char *out = fx_errors(
        FV "services:\n  - name: svc\n    url: http://x\n"
           "routes:\n"
           "  - {name: r1, service: svc, paths: [/1]}\n"
           "  - {name: r2, service: {name: svc}, paths: [/2]}\n"
           "  - {name: r3, service: {id: 0855b320-0dd2-547d-891d-601e9b38647f}, paths: [/3]}\n"
           "  - {name: r4, service: null, paths: [/4]}\n"
           "consumers:\n  - username: alice\n"
           "keyauth_credentials:\n  - {consumer: alice, key: k1}\n"
           "acls:\n  - {consumer: {username: alice}, group: g}\n"
           "upstreams:\n  - name: up.internal\n"
           "targets:\n  - {upstream: up.internal, target: 10.0.0.1}\n");
    assert_non_null(out); /* r3 refers to a service id that does not exist */
    assert_non_null(strstr(out, "routes[2].service: invalid reference 'service: "
                                "{\"id\":\"0855b320-0dd2-547d-891d-601e9b38647f\"}' "
                                "(no such entry in 'services')"));
    s = fx_snapshot(FV "services:\n  - name: my-service\n    url: http://x\n"
                       "routes:\n"
                       "  - {name: r1, service: my-service, paths: [/1]}\n"
                       "  - {name: r2, service: {name: my-service}, paths: [/2]}\n"
                       "  - {name: r3, service: {id: 0855b320-0dd2-547d-891d-601e9b38647f}, "
                       "paths: [/3]}\n"
                       "  - {name: r4, service: null, paths: [/4]}\n"
                       "consumers:\n  - username: alice\n"
                       "keyauth_credentials:\n  - {consumer: alice, key: k1}\n"
                       "acls:\n  - {consumer: {username: alice}, group: g}\n"
                       "upstreams:\n  - name: up.internal\n"
                       "targets:\n  - {upstream: up.internal, target: 10.0.0.1}\n");
    assert_non_null(s);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(s->routes[i].service, &s->services[0]);
    assert_null(s->routes[3].service);
    assert_ptr_equal(s->keyauth_credentials[0].consumer, &s->consumers[0]);
    assert_ptr_equal(s->acls[0].consumer, &s->consumers[0]);
    assert_int_equal(s->upstreams[0].ntargets, 1);
    assert_string_equal(s->upstreams[0].targets[0].target.p, "10.0.0.1:8000");
    assert_int_equal(s->upstreams[0].targets[0].weight, 100);
    gw_snapshot_release(s);
}

static void test_service_host_names_an_upstream(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "upstreams:\n  - name: orders.internal\n"
                                           "    targets:\n      - target: \"[::1]:8080\"\n"
                                           "        weight: 50\n"
                                           "services:\n  - name: o\n    host: orders.internal\n"
                                           "  - name: p\n    host: other\n");
    assert_non_null(s);
    assert_ptr_equal(s->services[0].upstream, &s->upstreams[0]);
    assert_null(s->services[1].upstream);
    assert_string_equal(s->upstreams[0].targets[0].target.p, "[::1]:8080");
    assert_string_equal(s->upstreams[0].targets[0].host.p, "::1");
    assert_int_equal(s->upstreams[0].targets[0].weight, 50);
    assert_int_equal(s->upstreams[0].slots, 10000);
    assert_int_equal(s->upstreams[0].algorithm, GW_LB_ROUND_ROBIN);
    assert_int_equal(s->upstreams[0].healthchecks.active.concurrency, 10);
    assert_int_equal(s->upstreams[0].healthchecks.passive.unhealthy.nhttp_statuses, 3);
    gw_snapshot_release(s);
}

static void test_every_error_reported_with_position(void **state)
{
    const char *out = fx_errors(FV "services:\n"
                                   "  - name: a\n"
                                   "    url: http://x\n"
                                   "    retries: -1\n"
                                   "    colour: blue\n"
                                   "    routes:\n"
                                   "      - paths: [/ok, /(a, \"~/(b\"]\n"
                                   "        methods: [get]\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "t.yaml:5:14: services[0].retries: value should be between 0 "
                                "and 32767"));
    assert_non_null(strstr(out, "t.yaml:6:5: services[0].colour: unknown field"));
    assert_non_null(strstr(out, "t.yaml:8:27: services[0].routes[0].paths[2]: invalid regex: "
                                "'/(b' (PCRE returned: missing closing parenthesis)"));
    assert_non_null(strstr(out, "t.yaml:9:19: services[0].routes[0].methods[0]: invalid value: "
                                "get"));
}

static void test_url_conflicts_with_host(void **state)
{
    const char *out = fx_errors(FV "services:\n  - name: a\n    url: http://x\n    host: y\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "services[0].host: cannot be set together with 'url'"));
}

static void test_duplicates_are_errors(void **state)
{
    const char *out = fx_errors(FV "services:\n  - {name: a, host: x}\n  - {name: a, host: y}\n"
                                   "consumers:\n  - username: u\n  - username: u\n"
                                   "  - {custom_id: c}\n  - {custom_id: c}\n"
                                   "  - {username: v, keyauth_credentials: [{key: secret-1}, "
                                   "{key: secret-1}]}\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "services[1].name: uniqueness violation: 'services' entity with "
                                "name set to 'a' already declared"));
    assert_non_null(strstr(out, "consumers[1].username: uniqueness violation"));
    assert_non_null(strstr(out, "consumers[3].custom_id: uniqueness violation: 'consumers' "
                                "entity with custom_id set to 'c' already declared"));
    assert_non_null(strstr(out, "keyauth_credentials[1].key: uniqueness violation"));
    assert_null(strstr(out, "secret-1")); /* a key is a secret: never printed */
}

static void test_known_but_unused_field_warns(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "upstreams:\n  - name: u\n    use_srv_name: true\n");

    assert_non_null(s);
    assert_non_null(strstr(fx_last_output(), "warning: upstreams[0].use_srv_name: accepted but "
                                             "not used by gatehouse"));
    gw_snapshot_release(s);
}

static void test_format_version_rules(void **state)
{
    const char *out = fx_errors("services: []\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "_format_version: required field missing"));
    out = fx_errors("_format_version: 3.0\n");
    assert_non_null(strstr(out, "_format_version: expected a string"));
    out = fx_errors("_format_version: \"4.0\"\n");
    assert_non_null(strstr(out, "unsupported format version '4.0'"));
}

static void test_old_format_paths_are_migrated(void **state)
{
    const char *doc = "services:\n  - name: a\n    url: http://x\n    routes:\n"
                      "      - paths: [/prefix, /regex.+]\n";
    char buf[512];
    struct gw_snapshot *s;

    snprintf(buf, sizeof(buf), "_format_version: \"1.1\"\n%s", doc);
    s = fx_snapshot(buf);
    assert_non_null(s);
    assert_string_equal(s->routes[0].paths.v[0].p, "/prefix");
    assert_string_equal(s->routes[0].paths.v[1].p, "~/regex.+");
    gw_snapshot_release(s);
    snprintf(buf, sizeof(buf), "_format_version: \"3.0\"\n%s", doc);
    s = fx_snapshot(buf);
    assert_non_null(s);
    assert_string_equal(s->routes[0].paths.v[1].p, "/regex.+"); /* a literal prefix in 3.0 */
    gw_snapshot_release(s);
}

static void test_vault_env_reference(void **state)
{
    struct gw_snapshot *s;
    const char *out;

    setenv("GW_TEST_API_KEY", "s3cr3t-from-env", 1);
    s = fx_snapshot(FV "consumers:\n  - username: u\n    keyauth_credentials:\n"
                       "      - key: \"{vault://env/gw-test-api-key}\"\n");
    assert_non_null(s);
    assert_string_equal(s->keyauth_credentials[0].key.p, "s3cr3t-from-env");
    gw_snapshot_release(s);
    unsetenv("GW_TEST_MISSING");
    out = fx_errors(FV "consumers:\n  - username: u\n    keyauth_credentials:\n"
                       "      - key: \"{vault://env/gw_test_missing}\"\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "consumers[0].keyauth_credentials[0].key: vault reference "
                                "{vault://env/gw_test_missing}: environment variable "
                                "GW_TEST_MISSING is not set"));
}

static void test_nested_plugin_cannot_name_second_scope(void **state)
{
    const char *out = fx_errors(FV "consumers:\n  - username: c\n"
                                   "services:\n  - name: s\n    url: http://x\n"
                                   "    plugins:\n      - name: rate-limiting\n"
                                   "        consumer: c\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "services[0].plugins[0].consumer: value must be null"));
    assert_non_null(strstr(out, "services[0].plugins[0].name: plugin 'rate-limiting' not enabled"));
}

static void test_route_checks(void **state)
{
    const char *out = fx_errors(FV "routes:\n"
                                   "  - {name: a, hosts: [\"*.example.*\"]}\n"
                                   "  - {name: b, hosts: [\"ex*ample.com\"]}\n"
                                   "  - {name: c, headers: {Host: [x]}}\n"
                                   "  - {name: d, protocols: [http], snis: [a.example]}\n"
                                   "  - {name: e, protocols: [http, tcp], paths: [/]}\n"
                                   "  - {name: f, paths: [/], https_redirect_status_code: 303}\n"
                                   "  - {name: g, paths: [\"/a/../b\"]}\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "routes[0].hosts[0]: invalid hostname"));
    assert_non_null(strstr(out, "routes[1].hosts[0]: invalid wildcard"));
    assert_non_null(strstr(out, "routes[2].headers.Host: cannot contain 'host' header"));
    assert_non_null(strstr(out, "routes[3].snis: 'snis' can only be set"));
    assert_non_null(strstr(out, "routes[4].protocols: these sets are mutually exclusive"));
    assert_non_null(strstr(out, "routes[5].https_redirect_status_code: expected one of"));
    assert_non_null(strstr(out, "routes[6].paths[0]: non-normalized path"));
}

static void test_route_matchers_parsed(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "routes:\n"
                                           "  - name: a\n"
                                           "    hosts: [\"*.example.com\", \"api.test:8443\"]\n"
                                           "    headers: {X-Version: [\"1\", \"~*^v2\"], "
                                           "X-Tenant: acme}\n"
                                           "    methods: [GET, POST]\n"
                                           "    regex_priority: 9007199254740992\n");
    const struct gw_route *r;

    assert_non_null(s);
    r = &s->routes[0];
    assert_int_equal(r->hosts.n, 2);
    assert_int_equal(r->nheaders, 2);
    assert_string_equal(r->headers[0].name.p, "x-version");
    assert_int_equal(r->headers[0].values.n, 2);
    assert_string_equal(r->headers[1].values.v[0].p, "acme");
    assert_int_equal(r->methods.n, 2);
    assert_int_equal(r->regex_priority, 9007199254740992LL);
    gw_snapshot_release(s);
}

static void test_gateway_section(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "gateway:\n"
                                           "  listen: [\"127.0.0.1:8000\", \"[::1]:8443\",\n"
                                           "           {address: \"::\", port: 9000, ssl: true}]\n"
                                           "  status_listen: off\n"
                                           "  workers: 3\n"
                                           "  limits: {max_header_size: 64k, max_body_size: 8m}\n"
                                           "  timeouts: {shutdown: 30, shutdown_grace: 5}\n"
                                           "  metrics: off\n"
                                           "  access_log: off\n"
                                           "  log_level: debug\n");
    const struct gw_gateway *g;

    assert_non_null(s);
    g = &s->gateway;
    assert_int_equal(g->nlisten, 3);
    assert_string_equal(g->listen[1].address.p, "::1");
    assert_int_equal(g->listen[1].port, 8443);
    assert_string_equal(g->listen[2].address.p, "::");
    assert_true(g->listen[2].ssl);
    assert_int_equal(g->nstatus_listen, 0);
    assert_int_equal(g->workers, 3);
    assert_int_equal(g->limits.max_header_size, 64 * 1024);
    assert_int_equal(g->limits.max_headers, 100);
    assert_int_equal(g->limits.max_body_size, 8 * 1024 * 1024);
    assert_int_equal(g->timeouts.shutdown, 30);
    assert_int_equal(g->timeouts.shutdown_grace, 5);
    assert_false(g->metrics);
    assert_int_equal(g->timeouts.client_header, 60);
    assert_int_equal(g->access_log.len, 0);
    assert_int_equal(g->log_level, GW_LOG_DEBUG);
    gw_snapshot_release(s);
}

static void test_gateway_defaults_and_errors(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV);
    const char *out;

    assert_non_null(s);
    assert_string_equal(s->gateway.listen[0].address.p, "0.0.0.0");
    assert_int_equal(s->gateway.listen[0].port, 8000);
    assert_string_equal(s->gateway.status_listen[0].address.p, "127.0.0.1");
    assert_int_equal(s->gateway.status_listen[0].port, 8100);
    assert_int_equal(s->gateway.limits.max_header_size, 32 * 1024);
    assert_int_equal(s->gateway.timeouts.keepalive, 60);
    assert_int_equal(s->gateway.timeouts.shutdown, 10);
    assert_int_equal(s->gateway.timeouts.shutdown_grace, 0);
    assert_true(s->gateway.metrics);
    assert_true(s->gateway.workers >= 1);
    gw_snapshot_release(s);
    out = fx_errors(FV "gateway:\n  listen: [\"nope\"]\n  workerz: 2\n"
                       "  limits: {max_body_size: 12q}\n  metrics: maybe\n"
                       "  timeouts: {shutdown_grace: 3601}\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "gateway.listen[0]: invalid listen address 'nope'"));
    assert_non_null(strstr(out, "gateway.workerz: unknown field"));
    assert_non_null(strstr(out, "gateway.limits.max_body_size: invalid size '12q'"));
    assert_non_null(strstr(out, "gateway.metrics: expected on or off"));
    assert_non_null(strstr(out, "gateway.timeouts.shutdown_grace: "));
}

static void test_json_document_positions(void **state)
{
    const char *out = fx_errors_json("{\"_format_version\": \"3.0\",\n"
                                     " \"services\": [{\"name\": \"a\", \"host\": 5}]}");
    assert_non_null(out);
    assert_non_null(strstr(out, "t.json:2:37: services[0].host: expected a string"));
}

static void test_unknown_top_level_key(void **state)
{
    const char *out = fx_errors(FV "service:\n  - name: a\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "t.yaml:2:1: service: unknown field"));
}

static void test_routes_keep_file_order_for_ties(void **state)
{
    /* The top-level route is written first: it wins the tie with the nested one. */
    struct gw_snapshot *s = fx_snapshot(FV "routes:\n  - {name: top, paths: [/same], "
                                           "service: svc}\n"
                                           "services:\n  - name: svc\n    url: http://x\n"
                                           "    routes:\n      - {name: nested, paths: [/same]}\n");
    struct gw_router_req req = {.method = GW_STR_LIT("GET"),
                                .host = GW_STR_LIT("example.com"),
                                .path = GW_STR_LIT("/same/x")};
    struct gw_router_match m;

    assert_non_null(s);
    assert_string_equal(s->routes[0].name.p, "top");
    assert_int_equal(s->routes[0].index, 0);
    assert_string_equal(s->routes[1].name.p, "nested");
    assert_int_equal(s->routes[1].index, 1);
    assert_true(gw_router_match(s->router, &req, &m));
    assert_string_equal(m.route->name.p, "top");
    gw_snapshot_release(s);
}

static void test_router_from_config_kong_docs_examples(void **state)
{
    struct gw_snapshot *s =
        fx_snapshot(FV "services:\n  - name: s\n    url: http://x/s\n    routes:\n"
                       "      - {name: host-post, hosts: [example.com], methods: [POST]}\n"
                       "      - {name: host, hosts: [example.com]}\n"
                       "      - {name: tv0, paths: [/tv0]}\n"
                       "      - {name: fv0, paths: [/fv0], strip_path: false}\n"
                       "      - {name: re, paths: [\"~/users/(?<id>\\\\d+)$\"]}\n");
    struct gw_router_req req = {
        .method = GW_STR_LIT("POST"), .host = GW_STR_LIT("example.com"), .path = GW_STR_LIT("/")};
    struct gw_router_match m;
    char out[64];
    size_t n;

    assert_non_null(s);
    assert_true(gw_router_match(s->router, &req, &m));
    assert_string_equal(m.route->name.p, "host-post");
    req.method = GW_STR_LIT("GET");
    assert_true(gw_router_match(s->router, &req, &m));
    assert_string_equal(m.route->name.p, "host");
    req.host = GW_STR_LIT("other.test");
    req.path = GW_STR_LIT("/tv0/req");
    assert_true(gw_router_match(s->router, &req, &m));
    n = gw_router_upstream_path(&m, req.path, out, sizeof(out));
    assert_int_equal(n, 6);
    assert_memory_equal(out, "/s/req", 6);
    req.path = GW_STR_LIT("/fv0/req");
    assert_true(gw_router_match(s->router, &req, &m));
    n = gw_router_upstream_path(&m, req.path, out, sizeof(out));
    assert_int_equal(n, 10);
    assert_memory_equal(out, "/s/fv0/req", 10);
    req.path = GW_STR_LIT("/users/42");
    assert_true(gw_router_match(s->router, &req, &m));
    assert_string_equal(m.route->name.p, "re");
    assert_true(m.regex);
    assert_true(m.ncaptures >= 2);
    assert_string_equal(m.capture_names[1], "id");
    assert_int_equal(m.captures[1].len, 2);
    assert_memory_equal(m.captures[1].p, "42", 2);
    req.path = GW_STR_LIT("/nothing");
    assert_false(gw_router_match(s->router, &req, &m));
    gw_snapshot_release(s);
}

static void test_upstream_rules(void **state)
{
    struct gw_snapshot *s;
    const char *out = fx_errors(FV "upstreams:\n  - name: 10.0.0.1\n  - name: \"up:80\"\n"
                                   "  - {name: h, hash_on: header}\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "upstreams[0].name: Invalid name ('10.0.0.1'); no ip addresses"));
    assert_non_null(strstr(out, "upstreams[1].name: Invalid name; no port allowed"));
    assert_non_null(strstr(out, "upstreams[2].hash_on_header: required field missing"));
    s = fx_snapshot(FV "upstreams:\n"
                       "  - {name: a, hash_on: ip}\n"
                       "  - {name: b, algorithm: consistent-hashing, hash_on: none}\n"
                       "  - {name: c, algorithm: least-connections, hash_on: ip}\n");
    assert_non_null(s);
    assert_int_equal(s->upstreams[0].algorithm, GW_LB_CONSISTENT_HASHING);
    assert_int_equal(s->upstreams[1].algorithm, GW_LB_ROUND_ROBIN); /* Kong's shorthand */
    assert_int_equal(s->upstreams[2].algorithm, GW_LB_LEAST_CONNECTIONS);
    assert_int_equal(s->upstreams[2].hash_on, GW_HASH_NONE);
    gw_snapshot_release(s);
}

static void test_routes_left_out_of_the_router(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "services:\n"
                                           "  - name: off\n    url: http://x\n    enabled: false\n"
                                           "    routes: [{name: r-off, paths: [/off]}]\n"
                                           "  - name: tcp\n    url: tcp://x:9\n"
                                           "    routes: [{name: r-tcp, protocols: [tcp], "
                                           "destinations: [{port: 9}]}]\n");
    struct gw_router_req req = {.method = GW_STR_LIT("GET"), .path = GW_STR_LIT("/off")};
    struct gw_router_match m;

    assert_non_null(s);
    assert_true(s->routes[0].ignored);
    assert_true(s->routes[1].ignored);
    assert_false(gw_router_match(s->router, &req, &m));
    assert_non_null(strstr(fx_last_output(), "warning: services[1]: protocol 'tcp' is not "
                                             "proxied"));
    gw_snapshot_release(s);
    assert_non_null(strstr(fx_errors(FV "routes:\n  - {paths: [/], sources: [{ip: 10.0.0.1}]}\n"),
                           "routes[0].sources: cannot set 'sources' when 'protocols' is"));
}

static void test_listen_port_forms(void **state)
{
    struct gw_snapshot *s = fx_snapshot(FV "gateway:\n  listen: [\"8001\", 8002]\n"
                                           "  status_listen: \"[::1]:8101\"\n");

    assert_non_null(s);
    assert_string_equal(s->gateway.listen[0].address.p, "0.0.0.0");
    assert_int_equal(s->gateway.listen[0].port, 8001);
    assert_int_equal(s->gateway.listen[1].port, 8002);
    assert_int_equal(s->gateway.nstatus_listen, 1);
    assert_string_equal(s->gateway.status_listen[0].address.p, "::1");
    gw_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_service_defaults_and_url),
        cmocka_unit_test(test_route_defaults),
        cmocka_unit_test(test_kong_deterministic_ids),
        cmocka_unit_test(test_explicit_ids_are_kept_lower_case),
        cmocka_unit_test(test_references_by_name_id_and_object),
        cmocka_unit_test(test_service_host_names_an_upstream),
        cmocka_unit_test(test_every_error_reported_with_position),
        cmocka_unit_test(test_url_conflicts_with_host),
        cmocka_unit_test(test_duplicates_are_errors),
        cmocka_unit_test(test_known_but_unused_field_warns),
        cmocka_unit_test(test_format_version_rules),
        cmocka_unit_test(test_old_format_paths_are_migrated),
        cmocka_unit_test(test_vault_env_reference),
        cmocka_unit_test(test_nested_plugin_cannot_name_second_scope),
        cmocka_unit_test(test_route_checks),
        cmocka_unit_test(test_route_matchers_parsed),
        cmocka_unit_test(test_gateway_section),
        cmocka_unit_test(test_gateway_defaults_and_errors),
        cmocka_unit_test(test_json_document_positions),
        cmocka_unit_test(test_unknown_top_level_key),
        cmocka_unit_test(test_routes_keep_file_order_for_ties),
        cmocka_unit_test(test_router_from_config_kong_docs_examples),
        cmocka_unit_test(test_upstream_rules),
        cmocka_unit_test(test_routes_left_out_of_the_router),
        cmocka_unit_test(test_listen_port_forms),
    };
    return cmocka_run_group_tests_name("entities", t, NULL, NULL);
}
