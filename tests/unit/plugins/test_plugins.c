#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "gw/config.h"
#include "gw/req.h"
#include "support/fake_req.h"
#include "support/fixtures.h"

/* Plugin logic through a fake request (no sockets): the chain's order and Kong's scoping
 * precedence, and each plugin's decisions. */

#define FV "_format_version: \"3.0\"\n"

/* ---- the chain ---- */

static const char *tag_of(const struct gw_plugin_instance *p)
{
    return p != NULL && p->tags.n > 0 ? p->tags.v[0].p : "(none)";
}

static const struct gw_route *route_named(const struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nroutes; i++)
        if (gw_str_eqc(s->routes[i].name, name))
            return &s->routes[i];
    return NULL;
}

static const struct gw_consumer *consumer_named(const struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nconsumers; i++)
        if (gw_str_eqc(s->consumers[i].username, name))
            return &s->consumers[i];
    return NULL;
}

static const char *selected(const struct gw_snapshot *s, const char *route, const char *consumer)
{
    const struct gw_route *rt = route_named(s, route);

    assert_non_null(rt);
    assert_non_null(rt->chain);
    for (size_t i = 0; i < rt->chain->n; i++)
        if (strcmp(rt->chain->e[i].plugin->name, "request-transformer") == 0)
            return tag_of(gw_chain_select(s, rt, &rt->chain->e[i],
                                          consumer != NULL ? consumer_named(s, consumer) : NULL,
                                          false));
    return "(no entry)";
}

static void test_scoping_precedence(void **state)
{
    /* Kong's order: route+service+consumer, route+consumer, service+consumer, route+service,
     * consumer, route, service, global */
    struct gw_snapshot *s = fx_snapshot(
        FV "services:\n"
           "  - name: s\n    url: http://127.0.0.1:9\n"
           "    routes: [{name: r1, paths: [/r1]}, {name: r2, paths: [/r2]},\n"
           "             {name: r3, paths: [/r3]}]\n"
           "  - name: other\n    url: http://127.0.0.1:9\n"
           "    routes: [{name: o1, paths: [/o1]}]\n"
           "consumers: [{username: alice}, {username: bob}, {username: carol},\n"
           "            {username: dave}]\n"
           "plugins:\n"
           "  - {name: request-transformer, tags: [global]}\n"
           "  - {name: request-transformer, service: s, tags: [service]}\n"
           "  - {name: request-transformer, route: r1, tags: [route]}\n"
           "  - {name: request-transformer, consumer: alice, tags: [consumer]}\n"
           "  - {name: request-transformer, route: r1, consumer: bob, tags: [route-consumer]}\n"
           "  - {name: request-transformer, service: s, consumer: carol,\n"
           "     tags: [service-consumer]}\n"
           "  - {name: request-transformer, route: r2, service: s, tags: [route-service]}\n"
           "  - {name: request-transformer, route: r2, service: s, consumer: dave,\n"
           "     tags: [route-service-consumer]}\n"
           "  - {name: request-transformer, route: r3, enabled: false, tags: [disabled]}\n");

    assert_non_null(s);
    assert_string_equal(selected(s, "r1", NULL), "route");
    assert_string_equal(selected(s, "r1", "alice"), "consumer");
    assert_string_equal(selected(s, "r1", "bob"), "route-consumer");
    assert_string_equal(selected(s, "r1", "carol"), "service-consumer");
    assert_string_equal(selected(s, "r2", NULL), "route-service");
    assert_string_equal(selected(s, "r2", "alice"), "route-service"); /* beats consumer */
    assert_string_equal(selected(s, "r2", "carol"), "service-consumer");
    assert_string_equal(selected(s, "r2", "dave"), "route-service-consumer");
    assert_string_equal(selected(s, "r2", "bob"), "route-service"); /* bob's is r1's */
    assert_string_equal(selected(s, "r3", NULL), "service");        /* disabled: falls through */
    assert_string_equal(selected(s, "o1", NULL), "global");
    assert_string_equal(selected(s, "o1", "carol"), "global");
    assert_string_equal(selected(s, "o1", "alice"), "consumer");
    gw_snapshot_release(s);
}

static void test_chain_order(void **state)
{
    struct gw_snapshot *s =
        fx_snapshot(FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n"
                       "    plugins: [{name: acl, config: {allow: [g]}}]\n"
                       "    routes:\n      - name: r\n        paths: [/]\n"
                       "        plugins: [{name: request-transformer}, {name: key-auth},\n"
                       "                  {name: request-transformer-advanced}]\n"
                       "plugins: [{name: cors}]\n");
    const struct gw_chain *ch;
    static const char *const want[] = {"cors", "key-auth", "acl", "request-transformer-advanced",
                                       "request-transformer"};

    assert_non_null(s);
    ch = s->routes[0].chain;
    assert_non_null(ch);
    assert_int_equal(ch->n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(ch->e[i].plugin->name, want[i]);
    assert_true(ch->header_filter); /* cors */
    assert_false(ch->wants_body);
    gw_snapshot_release(s);
}

static void test_chain_protocols_and_body(void **state)
{
    /* an instance for https only does not apply to http requests: the service's does */
    struct gw_snapshot *s = fx_snapshot(
        FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n"
           "    plugins: [{name: request-transformer, tags: [service]}]\n"
           "    routes:\n      - name: r\n        paths: [/]\n"
           "        plugins:\n"
           "          - {name: request-transformer, protocols: [https], tags: [route],\n"
           "             config: {add: {body: ['a:b']}}}\n"
           "          - {name: key-auth, config: {key_in_body: true}}\n");
    const struct gw_chain *ch;

    assert_non_null(s);
    ch = s->routes[0].chain;
    assert_non_null(ch);
    assert_int_equal(ch->n, 2);
    assert_string_equal(ch->e[1].plugin->name, "request-transformer");
    assert_string_equal(tag_of(ch->e[1].base[0]), "service"); /* http */
    assert_string_equal(tag_of(ch->e[1].base[1]), "route");   /* https */
    assert_true(ch->wants_body); /* key_in_body, and a body operation */
    gw_snapshot_release(s);
}

/* ---- key-auth and acl ---- */

static const char *AUTH =
    FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n    routes:\n"
       "      - name: a\n        paths: [/a]\n"
       "        plugins: [{name: key-auth, config: {hide_credentials: true, realm: r}}]\n"
       "      - name: g\n        paths: [/g]\n"
       "        plugins: [{name: key-auth}, {name: acl, config: {allow: [gold]}}]\n"
       "consumers:\n"
       "  - username: bob\n    custom_id: b1\n"
       "    keyauth_credentials: [{key: bob-key}]\n    acls: [{group: gold}, {group: x}]\n"
       "  - username: eve\n    keyauth_credentials: [{key: eve-key}]\n";

static void test_key_auth(void **state)
{
    struct gw_snapshot *s = fx_snapshot(AUTH);
    struct gw_req *r;

    assert_non_null(s);
    r = fr_new(s, "GET", "/a/x?z=1&apikey=bob-key&y=2", NULL, NULL);
    assert_int_equal(fr_access(r), GW_OK);
    assert_non_null(r->consumer);
    assert_string_equal(r->consumer->username.p, "bob");
    assert_false(r->anonymous);
    assert_non_null(r->credential_id);
    assert_true(r->up_query_set); /* hide_credentials */
    assert_true(gw_str_eqc(r->up_query, "z=1&y=2"));
    fr_free(r);

    r = fr_new(s, "GET", "/a/x", (const char *const[]){"APIKEY: eve-key", NULL}, NULL);
    assert_int_equal(fr_access(r), GW_OK);
    assert_string_equal(r->consumer->username.p, "eve");
    assert_int_equal(gw_req_header_count(r, "apikey"), 0); /* hidden */
    fr_free(r);

    r = fr_new(s, "GET", "/a/x?apikey=nope", NULL, NULL);
    assert_int_equal(fr_access(r), GW_DONE);
    assert_int_equal(r->exit_status, 401);
    assert_string_equal(r->exit_message, "Unauthorized");
    assert_string_equal(r->exit_headers, "WWW-Authenticate: Key realm=\"r\"\r\n");
    assert_null(r->consumer);
    fr_free(r);

    r = fr_new(s, "GET", "/a/x?apikey=a&apikey=b", NULL, NULL);
    assert_int_equal(fr_access(r), GW_DONE);
    assert_string_equal(r->exit_message, "Duplicate API key found");
    fr_free(r);

    r = fr_new(s, "GET", "/a/x?apikey", NULL, NULL); /* no value: not a key */
    assert_int_equal(fr_access(r), GW_DONE);
    assert_string_equal(r->exit_message, "No API key found in request");
    fr_free(r);

    /* acl after key-auth */
    r = fr_new(s, "GET", "/g/x?apikey=bob-key", NULL, NULL);
    assert_int_equal(fr_access(r), GW_OK);
    assert_string_equal(fr_up_header(r, "x-consumer-groups", 0), "gold, x");
    fr_free(r);
    r = fr_new(s, "GET", "/g/x?apikey=eve-key", NULL, NULL);
    assert_int_equal(fr_access(r), GW_DONE);
    assert_int_equal(r->exit_status, 403);
    assert_string_equal(r->exit_message, "You cannot consume this service");
    fr_free(r);
    gw_snapshot_release(s);
}

static void test_acl_config_errors(void **state)
{
    const char *out = fx_errors(FV "plugins: [{name: acl, config: {allow: [a], deny: [b]}}]\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "plugins[0].config: only one of these fields must be non-empty"));
    out = fx_errors(FV "plugins: [{name: acl}]\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "at least one of these fields must be non-empty"));
    out = fx_errors(FV "plugins: [{name: key-auth, config: {key_names: [\"a b\"], realm: 5,\n"
                       "  unknown: 1}}]\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "plugins[0].config.key_names[0]: bad header name 'a b'"));
    assert_non_null(strstr(out, "plugins[0].config.realm: expected a string"));
    assert_non_null(strstr(out, "plugins[0].config.unknown: unknown field"));
}

/* ---- cors ---- */

static void test_cors_origins(void **state)
{
    struct gw_snapshot *s =
        fx_snapshot(FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n    routes:\n"
                       "      - name: a\n        paths: [/a]\n        plugins:\n"
                       "          - {name: cors, config: {origins: ['http://foo.test', "
                       "'(.*\\.)?bar\\.test'], credentials: true}}\n");
    static const struct {
        const char *origin, *acao;
    } cases[] = {
        {"http://foo.test", "http://foo.test"},
        {"http://foo.test:80", "http://foo.test"}, /* the scheme's port is dropped */
        {"http://foo.test:81", NULL},
        {"https://foo.test", NULL},
        {"https://a.bar.test:8443", "https://a.bar.test:8443"}, /* by host: no ':' */
        {"http://bar.test", "http://bar.test"},
        {"http://evilbar.test", NULL},
        {"http://bar.test.evil", NULL},
    };

    assert_non_null(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char h[128];
        struct gw_req *r;
        snprintf(h, sizeof(h), "Origin: %s", cases[i].origin);
        r = fr_new(s, "GET", "/a/x", (const char *const[]){h, NULL}, NULL);
        assert_int_equal(fr_access(r), GW_OK);
        fr_header_filter(r, 200);
        if (cases[i].acao == NULL)
            assert_null(fr_resp_header(r, "access-control-allow-origin"));
        else
            assert_string_equal(fr_resp_header(r, "access-control-allow-origin"), cases[i].acao);
        assert_string_equal(fr_resp_header(r, "access-control-allow-credentials"), "true");
        assert_string_equal(fr_resp_header(r, "vary"), "Origin");
        fr_free(r);
    }
    gw_snapshot_release(s);
}

static void test_cors_preflight(void **state)
{
    struct gw_snapshot *s =
        fx_snapshot(FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n"
                       "    routes:\n      - name: a\n        paths: [/a]\n"
                       "        plugins: [{name: cors, config: {max_age: 7}}]\n");
    struct gw_req *r;

    assert_non_null(s);
    r = fr_new(s, "OPTIONS", "/a/x",
               (const char *const[]){"Origin: http://x.test", "Access-Control-Request-Method: PUT",
                                     "Access-Control-Request-Headers: X-A", NULL},
               NULL);
    assert_int_equal(fr_access(r), GW_DONE);
    assert_int_equal(r->exit_status, 200);
    assert_true(r->exit_empty);
    assert_string_equal(fr_resp_header(r, "access-control-allow-origin"), "*");
    assert_string_equal(fr_resp_header(r, "access-control-allow-headers"), "X-A");
    assert_string_equal(fr_resp_header(r, "access-control-max-age"), "7");
    assert_string_equal(fr_resp_header(r, "access-control-allow-methods"),
                        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    fr_free(r);
    gw_snapshot_release(s);
}

/* ---- request-transformer ---- */

static void test_transformer_templates(void **state)
{
    struct gw_snapshot *s = fx_snapshot(
        FV "services:\n  - name: s\n    url: http://127.0.0.1:9\n    routes:\n"
           "      - name: a\n        paths: ['~/u/(?<id>\\d+)/(\\w+)$']\n        plugins:\n"
           "          - name: request-transformer\n            config:\n"
           "              remove: {headers: [x-secret], querystring: [drop]}\n"
           "              add:\n"
           "                headers: [\"x-id:$(uri_captures.id)\", "
           "\"x-two:$(uri_captures[2])-$(headers.x_secret)\", "
           "\"x-none:[$(query_params.nope or headers['nope'] or 'dflt')]\"]\n"
           "                querystring: ['added:a b']\n");
    struct gw_req *r;

    assert_non_null(s);
    r = fr_new(s, "GET", "/u/42/abc?drop=1&keep=2", (const char *const[]){"X-Secret: s3", NULL},
               NULL);
    assert_int_equal(fr_access(r), GW_OK);
    assert_string_equal(fr_up_header(r, "x-id", 0), "42");
    assert_string_equal(fr_up_header(r, "x-two", 0), "abc-s3"); /* rendered before removal */
    assert_string_equal(fr_up_header(r, "x-none", 0), "[dflt]");
    assert_int_equal(gw_req_header_count(r, "x-secret"), 0);
    assert_true(gw_str_eqc(r->up_query, "keep=2&added=a%20b"));
    fr_free(r);
    gw_snapshot_release(s);
}

static void test_transformer_config_errors(void **state)
{
    const char *out = fx_errors(
        FV "plugins:\n  - name: request-transformer\n    config:\n"
           "      add: {headers: ['a:$(headers.x', 'b:$(os.getenv(\"HOME\"))', 'c:$(headers)']}\n"
           "      append: {querystring: ['q']}\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "add.headers[0]: value '$(headers.x' is not in supported format"));
    assert_non_null(strstr(out, "add.headers[1]: value '$(os.getenv(\"HOME\"))' is not in "
                                "supported format"));
    assert_non_null(strstr(out, "add.headers[2]: value '$(headers)' is not in supported format"));
    assert_non_null(strstr(out, "append.querystring[0]: key 'q' has no value"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scoping_precedence),
        cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_chain_protocols_and_body),
        cmocka_unit_test(test_key_auth),
        cmocka_unit_test(test_acl_config_errors),
        cmocka_unit_test(test_cors_origins),
        cmocka_unit_test(test_cors_preflight),
        cmocka_unit_test(test_transformer_templates),
        cmocka_unit_test(test_transformer_config_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
