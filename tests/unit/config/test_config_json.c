#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h> /* cmocka 1.1 needs the four headers above first */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/config_json.h"
#include "gw/err.h"
#include "gw/yaml.h"
#include "support/fixtures.h"

/* gw_config_json(): the document as JSON for GET /config, secrets redacted. Every output is
 * parsed back with jansson, and checked by an oracle independent of the implementation: under
 * a key of the exact sensitive list no scalar other than null, "[redacted]" or a vault
 * reference survives. */

#ifndef GW_SOURCE_DIR
#define GW_SOURCE_DIR "."
#endif

#define R "[redacted]"

static const char *const exact_sensitive[] = {
    "key",
    "key_alt",
    "secret",
    "password",
    "passwd",
    "client_secret",
    "client_jwk",
    "private_key",
    "session_secret",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
};

static bool oracle_sensitive(const char *key)
{
    for (size_t i = 0; i < sizeof(exact_sensitive) / sizeof(*exact_sensitive); i++)
        if (strcasecmp(key, exact_sensitive[i]) == 0)
            return true;
    for (const char *p = key; *p != '\0'; p++)
        if (strncasecmp(p, "secret", 6) == 0)
            return strcasecmp(key, "jwt_secrets") != 0;
    return false;
}

static void check_all_hidden(const json_t *j)
{
    size_t i;
    const char *k;
    json_t *v;

    switch (json_typeof(j)) {
    case JSON_NULL:
        return;
    case JSON_STRING:
        if (strcmp(json_string_value(j), R) != 0 &&
            strncmp(json_string_value(j), "{vault://", 9) != 0)
            fail_msg("secret leaked: \"%s\"", json_string_value(j));
        return;
    case JSON_ARRAY:
        json_array_foreach(j, i, v) check_all_hidden(v);
        return;
    case JSON_OBJECT:
        json_object_foreach((json_t *)j, k, v) check_all_hidden(v);
        return;
    default:
        fail_msg("secret leaked: a number or boolean under a sensitive key");
    }
}

static void oracle(const json_t *j)
{
    size_t i;
    const char *k;
    json_t *v;

    if (json_is_array(j)) {
        json_array_foreach(j, i, v) oracle(v);
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, v)
        {
            if (oracle_sensitive(k))
                check_all_hidden(v);
            else
                oracle(v);
        }
    }
    if (json_is_string(j))
        assert_null(strstr(json_string_value(j), "PRIVATE KEY"));
}

/* The output text, parsed back (asserting it is valid JSON), with the usual checks. */
struct out {
    char *text;
    size_t len;
    json_t *j;
};

static void finish(struct out *o)
{
    json_error_t e;

    assert_non_null(o->text);
    assert_int_equal(strlen(o->text), o->len);
    assert_true(o->len >= 1 && o->text[o->len - 1] == '\n');
    o->j = json_loadb(o->text, o->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (o->j == NULL)
        fail_msg("output is not JSON (%s at %d): %s", e.text, e.position, o->text);
    oracle(o->j);
}

static void convert_doc(struct out *o, const struct gw_yaml *doc)
{
    o->text = gw_config_json(doc, &o->len);
    finish(o);
}

static void convert(struct out *o, const char *text, bool json)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_err err;
    struct gw_yaml *y;

    gw_err_init(&err, "t");
    y = json ? gw_yaml_load_json(text, strlen(text), a, &err)
             : gw_yaml_load_yaml(text, strlen(text), a, &err);
    if (y == NULL && err.nerr > 0) {
        gw_err_print(&err, stderr);
        fail_msg("document did not load");
    }
    convert_doc(o, y);
    gw_err_dispose(&err);
    gw_arena_free(a);
}

static void done(struct out *o)
{
    json_decref(o->j);
    free(o->text);
}

/* json_object_get by a dotted path with [n] for array items: "a.b[1].c". */
static json_t *at(const json_t *j, const char *path)
{
    char buf[256];
    char *p = buf;

    snprintf(buf, sizeof(buf), "%s", path);
    while (j != NULL && *p != '\0') {
        if (*p == '[') {
            j = json_array_get(j, strtoul(p + 1, &p, 10));
            assert_int_equal(*p, ']');
            p++;
        } else {
            size_t n = strcspn(p, ".[");
            char save = p[n];
            p[n] = '\0';
            j = json_object_get(j, p);
            p[n] = save;
            p += n;
        }
        if (*p == '.')
            p++;
    }
    return (json_t *)j;
}

static const char *str_at(const json_t *j, const char *path)
{
    json_t *v = at(j, path);

    if (!json_is_string(v))
        fail_msg("%s is not a string", path);
    return json_string_value(v);
}

static void test_types_order_and_structure_kept(void **state)
{
    struct out o;
    const char *keys[] = {"zeta", "alpha", "mid", "i",    "neg", "f",    "b",  "n",
                          "s",    "q",     "inf", "ninf", "nan", "list", "map"};
    size_t idx = 0;
    const char *k;
    json_t *v;

    convert(&o,
            "zeta: 1\nalpha: two\nmid: [1, 2.5, true, ~, x]\ni: 9007199254740993\n"
            "neg: -7\nf: 1.5\nb: false\nn: null\ns: \"héllo\"\nq: '12'\n"
            "inf: .inf\nninf: -.Inf\nnan: .nan\n"
            "list:\n  - [a, [b, {c: d}]]\n  - {}\n  - []\n"
            "map: {z: 1, y: {x: [w]}, a: ''}\n",
            false);
    assert_int_equal(json_object_size(o.j), sizeof(keys) / sizeof(*keys));
    json_object_foreach(o.j, k, v)
    {
        assert_string_equal(k, keys[idx]);
        idx++;
    }
    assert_int_equal(json_integer_value(at(o.j, "zeta")), 1);
    assert_string_equal(str_at(o.j, "alpha"), "two");
    assert_int_equal(json_array_size(at(o.j, "mid")), 5);
    assert_true(json_is_integer(at(o.j, "mid[0]")));
    assert_true(json_is_real(at(o.j, "mid[1]")));
    assert_true(json_real_value(at(o.j, "mid[1]")) == 2.5);
    assert_true(json_is_true(at(o.j, "mid[2]")));
    assert_true(json_is_null(at(o.j, "mid[3]")));
    assert_string_equal(str_at(o.j, "mid[4]"), "x");
    assert_int_equal(json_integer_value(at(o.j, "i")), 9007199254740993LL);
    assert_int_equal(json_integer_value(at(o.j, "neg")), -7);
    assert_true(json_is_real(at(o.j, "f")));
    assert_true(json_real_value(at(o.j, "f")) == 1.5);
    assert_true(json_is_false(at(o.j, "b")));
    assert_true(json_is_null(at(o.j, "n")));
    assert_string_equal(str_at(o.j, "s"), "héllo");
    assert_string_equal(str_at(o.j, "q"), "12");
    assert_string_equal(str_at(o.j, "inf"), ".inf");
    assert_string_equal(str_at(o.j, "ninf"), "-.Inf");
    assert_string_equal(str_at(o.j, "nan"), ".nan");
    assert_string_equal(str_at(o.j, "list[0][1][1].c"), "d");
    assert_int_equal(json_object_size(at(o.j, "list[1]")), 0);
    assert_int_equal(json_array_size(at(o.j, "list[2]")), 0);
    assert_string_equal(str_at(o.j, "map.y.x[0]"), "w");
    assert_string_equal(str_at(o.j, "map.a"), "");
    assert_string_equal(json_object_iter_key(json_object_iter(at(o.j, "map"))), "z");
    /* Compact, one line, newline-terminated. */
    assert_ptr_equal(strchr(o.text, '\n'), o.text + o.len - 1);
    assert_null(strstr(o.text, ": "));
    done(&o);
}

static void test_json_document_converted(void **state)
{
    struct out o;

    convert(&o,
            "{\"b\": 1, \"a\": [1.25, -3, null, true, \"\\u00e9t\\u00e9\"], "
            "\"password\": \"pw-json-123\"}",
            true);
    assert_string_equal(json_object_iter_key(json_object_iter(o.j)), "b");
    assert_true(json_real_value(at(o.j, "a[0]")) == 1.25);
    assert_int_equal(json_integer_value(at(o.j, "a[1]")), -3);
    assert_string_equal(str_at(o.j, "a[4]"), "\xc3\xa9t\xc3\xa9");
    assert_string_equal(str_at(o.j, "password"), R);
    assert_null(strstr(o.text, "pw-json-123"));
    done(&o);
}

static void test_consumer_keyauth_keys_absent(void **state)
{
    struct gw_snapshot *s = fx_snapshot("_format_version: \"3.0\"\n"
                                        "consumers:\n"
                                        "  - username: alice\n"
                                        "    id: 0bd2cbba-7f4d-4a5c-9a3a-0f6c3e8a1c11\n"
                                        "    keyauth_credentials:\n"
                                        "      - key: alice-SECRET-key-1\n"
                                        "        id: 5f0e8e2f-6f39-4c55-9b0a-3c5c7a8d0b01\n"
                                        "  - username: bob\n"
                                        "    id: 7d0e2b44-1e1c-4f6b-8f54-2f1a1a0f6b02\n"
                                        "keyauth_credentials:\n"
                                        "  - key: bob-SECRET-key-2\n"
                                        "    consumer: bob\n"
                                        "    id: 9a3e5c1d-2b4f-4e6a-8c7d-1f2e3a4b5c03\n");
    struct out o;

    assert_non_null(s);
    assert_non_null(s->doc);
    convert_doc(&o, s->doc);
    assert_null(strstr(o.text, "alice-SECRET-key-1"));
    assert_null(strstr(o.text, "bob-SECRET-key-2"));
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "consumers[0].username"), "alice");
    assert_string_equal(str_at(o.j, "consumers[0].keyauth_credentials[0].key"), R);
    assert_string_equal(str_at(o.j, "consumers[0].keyauth_credentials[0].id"),
                        "5f0e8e2f-6f39-4c55-9b0a-3c5c7a8d0b01");
    assert_string_equal(str_at(o.j, "consumers[1].id"), "7d0e2b44-1e1c-4f6b-8f54-2f1a1a0f6b02");
    assert_string_equal(str_at(o.j, "keyauth_credentials[0].key"), R);
    assert_string_equal(str_at(o.j, "keyauth_credentials[0].consumer"), "bob");
    assert_string_equal(str_at(o.j, "keyauth_credentials[0].id"),
                        "9a3e5c1d-2b4f-4e6a-8c7d-1f2e3a4b5c03");
    assert_string_equal(str_at(o.j, "_format_version"), "3.0");
    done(&o);
    gw_snapshot_release(s);
}

static void test_jwt_secrets_walked_secret_redacted(void **state)
{
    struct out o;

    convert(&o,
            "consumers: [{username: foo}]\n"
            "jwt_secrets:\n"
            "  - consumer: foo\n"
            "    key: https://issuer.example/realms/foo\n"
            "    algorithm: HS256\n"
            "    secret: hs256-SECRET-value\n"
            "  - consumer: foo\n"
            "    algorithm: RS256\n"
            "    rsa_public_key: \"-----BEGIN PUBLIC KEY-----\\nMIGf\\n-----END PUBLIC "
            "KEY-----\"\n"
            "Jwt_Secrets: {a: {secret: map-SECRET}}\n"
            "not_jwt_secrets: plain-SECRET\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "jwt_secrets[0].secret"), R);
    assert_string_equal(str_at(o.j, "jwt_secrets[0].key"), R);
    assert_string_equal(str_at(o.j, "jwt_secrets[0].algorithm"), "HS256");
    assert_string_equal(str_at(o.j, "jwt_secrets[0].consumer"), "foo");
    assert_string_equal(str_at(o.j, "jwt_secrets[1].algorithm"), "RS256");
    assert_non_null(strstr(str_at(o.j, "jwt_secrets[1].rsa_public_key"), "BEGIN PUBLIC KEY"));
    assert_string_equal(str_at(o.j, "Jwt_Secrets.a.secret"), R);
    assert_string_equal(str_at(o.j, "not_jwt_secrets"), R);
    done(&o);
}

static void test_jwt_secrets_scalar_redacted(void **state)
{
    struct out o;

    /* Not an entity collection: nothing to walk, so the `secret` substring rule applies. */
    convert(&o, "jwt_secrets: loose-SECRET\n", false);
    assert_string_equal(str_at(o.j, "jwt_secrets"), R);
    done(&o);
}

#define PEM_KEY                                                                                    \
    "      -----BEGIN PRIVATE KEY-----\n      MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"                  \
    "      -----END PRIVATE KEY-----\n"
#define PEM_CERT                                                                                   \
    "      -----BEGIN CERTIFICATE-----\n      MIIDazCCAlOgAwIBAgIUJ\n"                             \
    "      -----END CERTIFICATE-----\n"

static void test_certificate_keys_redacted_certs_kept(void **state)
{
    struct out o;

    convert(&o,
            "certificates:\n"
            "  - id: 2e3c2d36-7b8d-4a4e-9e47-c1f3d9a1f001\n"
            "    cert: |\n" PEM_CERT "    key: |\n" PEM_KEY "    cert_alt: |\n" PEM_CERT
            "    key_alt: |\n"
            "      -----BEGIN EC PRIVATE KEY-----\n      MHcCAQEEIBalt\n"
            "      -----END EC PRIVATE KEY-----\n"
            "    snis: [a.example.com]\n",
            false);
    assert_null(strstr(o.text, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"));
    assert_null(strstr(o.text, "MHcCAQEEIBalt"));
    assert_string_equal(str_at(o.j, "certificates[0].key"), R);
    assert_string_equal(str_at(o.j, "certificates[0].key_alt"), R);
    assert_non_null(strstr(str_at(o.j, "certificates[0].cert"), "MIIDazCCAlOgAwIBAgIUJ"));
    assert_non_null(strstr(str_at(o.j, "certificates[0].cert_alt"), "BEGIN CERTIFICATE"));
    assert_string_equal(str_at(o.j, "certificates[0].snis[0]"), "a.example.com");
    assert_string_equal(str_at(o.j, "certificates[0].id"), "2e3c2d36-7b8d-4a4e-9e47-c1f3d9a1f001");
    done(&o);
}

static void test_plugin_config_secrets_redacted(void **state)
{
    struct out o;
    json_t *v;

    convert(&o,
            "plugins:\n"
            "  - name: openid-connect\n"
            "    config:\n"
            "      issuer: https://idp.example/\n"
            "      client_id: [abc]\n"
            "      client_secret: [cs-SECRET-a, cs-SECRET-b]\n"
            "      session_secret: ss-SECRET\n"
            "      client_jwk: [{kty: RSA, d: jwk-SECRET-d, n: 7, ok: true, x: ~}]\n"
            "      redis: {host: redis.local, port: 6379, password: redis-SECRET}\n"
            "      Session_Redis_Password: srp-SECRET\n"
            "      cache_tokens_salt: salt-SECRET\n"
            "      token: 12345\n"
            "      API_KEY: true\n"
            "      passwd: ~\n"
            "      headers: {Authorization: Bearer hdr-SECRET, X-Api-Key: xk-SECRET, "
            "Accept: text/plain}\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    v = at(o.j, "plugins[0].config.client_secret");
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_array_get(v, 0)), R);
    assert_string_equal(json_string_value(json_array_get(v, 1)), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.client_id[0]"), "abc");
    assert_string_equal(str_at(o.j, "plugins[0].config.session_secret"), R);
    /* Structure under a sensitive key is kept: keys and lengths; null stays null. */
    assert_int_equal(json_object_size(at(o.j, "plugins[0].config.client_jwk[0]")), 5);
    assert_string_equal(str_at(o.j, "plugins[0].config.client_jwk[0].kty"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.client_jwk[0].n"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.client_jwk[0].ok"), R);
    assert_true(json_is_null(at(o.j, "plugins[0].config.client_jwk[0].x")));
    assert_string_equal(str_at(o.j, "plugins[0].config.redis.password"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.redis.host"), "redis.local");
    assert_int_equal(json_integer_value(at(o.j, "plugins[0].config.redis.port")), 6379);
    assert_string_equal(str_at(o.j, "plugins[0].config.Session_Redis_Password"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.cache_tokens_salt"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.token"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.API_KEY"), R);
    assert_true(json_is_null(at(o.j, "plugins[0].config.passwd")));
    assert_string_equal(str_at(o.j, "plugins[0].config.headers.Authorization"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.headers.X-Api-Key"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.headers.Accept"), "text/plain");
    assert_string_equal(str_at(o.j, "plugins[0].config.issuer"), "https://idp.example/");
    assert_string_equal(str_at(o.j, "plugins[0].name"), "openid-connect");
    done(&o);
}

static void test_vault_reference_kept(void **state)
{
    struct out o;

    convert(&o,
            "certificates:\n"
            "  - cert: x\n"
            "    key: \"{vault://env/GW-CERT-KEY}\"\n"
            "plugins:\n"
            "  - config:\n"
            "      client_secret: [\"{vault://env/CS}\", literal-SECRET]\n"
            "      password: \"{vault://env/A} tail-SECRET}\"\n"
            "      secret: \"{vault://env/A}x-SECRET}\"\n"
            "      session_secret: \"{VAULT://env/upper-SECRET}\"\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "certificates[0].key"), "{vault://env/GW-CERT-KEY}");
    assert_string_equal(str_at(o.j, "plugins[0].config.client_secret[0]"), "{vault://env/CS}");
    assert_string_equal(str_at(o.j, "plugins[0].config.client_secret[1]"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.password"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.secret"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.session_secret"), R);
    done(&o);
}

static void test_vault_reference_in_snapshot_doc(void **state)
{
    struct gw_snapshot *s;
    struct out o;

    setenv("GW_CJ_TEST_KEY", "resolved-SECRET-value", 1);
    s = fx_snapshot("_format_version: \"3.0\"\n"
                    "consumers:\n"
                    "  - username: carol\n"
                    "    keyauth_credentials: [{key: \"{vault://env/GW-CJ-TEST-KEY}\"}]\n");
    assert_non_null(s);
    convert_doc(&o, s->doc);
    assert_null(strstr(o.text, "resolved-SECRET-value"));
    assert_string_equal(str_at(o.j, "consumers[0].keyauth_credentials[0].key"),
                        "{vault://env/GW-CJ-TEST-KEY}");
    done(&o);
    gw_snapshot_release(s);
    unsetenv("GW_CJ_TEST_KEY");
}

static void test_private_key_pem_anywhere_redacted(void **state)
{
    struct out o;

    convert(&o,
            "foo: \"-----BEGIN PRIVATE KEY-----\\nMIIpem-SECRET\\n-----END PRIVATE KEY-----\"\n"
            "list:\n"
            "  - \"-----BEGIN ENCRYPTED PRIVATE KEY-----\\nenc-SECRET\\n\"\n"
            "  - \"-----BEGIN RSA PRIVATE KEY-----\\nrsa-SECRET\"\n"
            "  - \"-----BEGIN OPENSSH PRIVATE KEY-----\\nssh-SECRET\"\n"
            "  - \"-----BEGIN PGP PRIVATE KEY BLOCK-----\\npgp-SECRET\"\n"
            "  - \"-----BEGIN CERTIFICATE-----\\nMIIcert\"\n"
            "  - \"cert then -----BEGIN EC PRIVATE KEY-----\\nec-SECRET\"\n"
            "bundle:\n"
            "  cert: |\n" PEM_CERT PEM_KEY,
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_null(strstr(o.text, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"));
    assert_string_equal(str_at(o.j, "foo"), R);
    assert_string_equal(str_at(o.j, "list[0]"), R);
    assert_string_equal(str_at(o.j, "list[3]"), R);
    assert_string_equal(str_at(o.j, "list[4]"), "-----BEGIN CERTIFICATE-----\nMIIcert");
    assert_string_equal(str_at(o.j, "list[5]"), R);
    assert_string_equal(str_at(o.j, "bundle.cert"), R);
    done(&o);
}

static void test_header_lines_redacted(void **state)
{
    struct out o;
    json_t *h;

    convert(&o,
            "plugins:\n"
            "  - name: request-transformer\n"
            "    config:\n"
            "      add:\n"
            "        headers: [\"Authorization:Bearer abc-SECRET\", \"X-Other:1\"]\n"
            "      append:\n"
            "        headers:\n"
            "          - \" Cookie :session=ck-SECRET\"\n"
            "          - \"x-api-key:xk-SECRET\"\n"
            "          - \"ApiKey:ak-SECRET\"\n"
            "          - \"Proxy-Authorization:Basic pa-SECRET\"\n"
            "          - \"set-cookie:sc-SECRET\"\n"
            "          - \"X-Auth-Token:tk-SECRET\"\n"
            "          - \"Content-Type:application/json\"\n"
            "          - \"Authorization\"\n"
            "        querystring: [\"api_key:qs-SECRET\", \"page:2\"]\n"
            "      rename:\n"
            "        headers: [\"X-Old:X-New\"]\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    h = at(o.j, "plugins[0].config.add.headers");
    assert_int_equal(json_array_size(h), 2);
    assert_string_equal(json_string_value(json_array_get(h, 0)), "Authorization:" R);
    assert_string_equal(json_string_value(json_array_get(h, 1)), "X-Other:1");
    h = at(o.j, "plugins[0].config.append.headers");
    assert_string_equal(json_string_value(json_array_get(h, 0)), " Cookie :" R);
    assert_string_equal(json_string_value(json_array_get(h, 1)), "x-api-key:" R);
    assert_string_equal(json_string_value(json_array_get(h, 2)), "ApiKey:" R);
    assert_string_equal(json_string_value(json_array_get(h, 3)), "Proxy-Authorization:" R);
    assert_string_equal(json_string_value(json_array_get(h, 4)), "set-cookie:" R);
    assert_string_equal(json_string_value(json_array_get(h, 5)), "X-Auth-Token:" R);
    assert_string_equal(json_string_value(json_array_get(h, 6)), "Content-Type:application/json");
    assert_string_equal(json_string_value(json_array_get(h, 7)), "Authorization");
    assert_string_equal(str_at(o.j, "plugins[0].config.append.querystring[0]"), "api_key:" R);
    assert_string_equal(str_at(o.j, "plugins[0].config.append.querystring[1]"), "page:2");
    assert_string_equal(str_at(o.j, "plugins[0].config.rename.headers[0]"), "X-Old:X-New");
    done(&o);
}

static void test_credential_shapes_redacted(void **state)
{
    struct out o;

    convert(&o,
            "services:\n"
            "  - url: http://user:url-SECRET@backend.local:8080/path?q=1\n"
            "    host: backend.local\n"
            "plugins:\n"
            "  - config:\n"
            "      http_endpoint: https://tok-SECRET@logs.example/ingest\n"
            "      note: \"see https://ok.example/a@b and ftp://u:ftp-SECRET@h\"\n"
            "      value: \"Bearer eyJ-SECRET\"\n"
            "      other: \"basic dXNlcjpwYXNz-SECRET\"\n"
            "      provision_key: pk-SECRET\n"
            "      aws_key: AKIA-SECRET\n"
            "      key_names: [apikey]\n"
            "      hide_credentials: true\n"
            "      plain_url: http://example.com/x\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "services[0].url"),
                        "http://user:" R "@backend.local:8080/path?q=1");
    assert_string_equal(str_at(o.j, "plugins[0].config.http_endpoint"),
                        "https://" R "@logs.example/ingest");
    assert_string_equal(str_at(o.j, "plugins[0].config.note"),
                        "see https://ok.example/a@b and ftp://u:" R "@h");
    assert_string_equal(str_at(o.j, "plugins[0].config.value"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.other"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.provision_key"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.aws_key"), R);
    assert_string_equal(str_at(o.j, "plugins[0].config.key_names[0]"), "apikey");
    assert_true(json_is_true(at(o.j, "plugins[0].config.hide_credentials")));
    assert_string_equal(str_at(o.j, "plugins[0].config.plain_url"), "http://example.com/x");
    done(&o);
}

static void test_yaml_escapes_stay_utf8(void **state)
{
    struct out o;

    /* YAML's \x escapes name code points, not bytes: the loaders only give valid UTF-8. */
    convert(&o,
            "a: \"ok\"\n"
            "b: \"bad \\xff byte\"\n"
            "list: [\"\\xc3\", fine]\n"
            "password: \"\\xff-SECRET\"\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "a"), "ok");
    assert_string_equal(str_at(o.j, "b"), "bad \xc3\xbf byte");
    assert_string_equal(str_at(o.j, "list[0]"), "\xc3\x83");
    assert_string_equal(str_at(o.j, "list[1]"), "fine");
    assert_string_equal(str_at(o.j, "password"), R);
    done(&o);
}

static void test_invalid_utf8_raw_bytes(void **state)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_yaml *doc = gw_arena_zalloc(a, sizeof(*doc));
    struct gw_yaml *k1 = gw_arena_zalloc(a, sizeof(*k1)), *k2 = gw_arena_zalloc(a, sizeof(*k2));
    struct gw_yaml *v1 = gw_arena_zalloc(a, sizeof(*v1)), *v2 = gw_arena_zalloc(a, sizeof(*v2));
    struct gw_yaml *k3 = gw_arena_zalloc(a, sizeof(*k3)), *v3 = gw_arena_zalloc(a, sizeof(*v3));
    struct gw_yaml_pair pairs[3] = {{k1, v1}, {k2, v2}, {k3, v3}};
    struct out o;

    /* Built by hand: the loaders may refuse such bytes, the function must not rely on it. */
    k1->type = k2->type = k3->type = v1->type = v2->type = v3->type = GW_YAML_STR;
    k1->str = GW_STR_LIT("k\xff");
    v1->str = GW_STR_LIT("v\xfe");
    k2->str = GW_STR_LIT("k\xc0");
    v2->str = GW_STR_LIT("second");
    k3->str = GW_STR_LIT("nul");
    v3->str = GW_STR_LIT("a\0b");
    doc->type = GW_YAML_MAP;
    doc->n = 3;
    doc->pairs = pairs;
    convert_doc(&o, doc);
    assert_int_equal(json_object_size(o.j), 3); /* two bad keys, two distinct placeholders */
    assert_string_equal(json_string_value(json_object_get(o.j, "[invalid utf-8]")),
                        "[invalid utf-8]");
    assert_string_equal(json_string_value(json_object_get(o.j, "[invalid utf-8]#2")), "second");
    assert_int_equal(json_string_length(at(o.j, "nul")), 3); /* NUL kept, as \u0000 */
    assert_memory_equal(json_string_value(at(o.j, "nul")), "a\0b", 3);
    done(&o);
    gw_arena_free(a);
}

static void test_null_doc_and_empty_map(void **state)
{
    size_t len = 99;
    char *t = gw_config_json(NULL, &len);
    struct out o;

    assert_string_equal(t, "{}\n");
    assert_int_equal(len, 3);
    free(t);
    t = gw_config_json(NULL, NULL);
    assert_string_equal(t, "{}\n");
    free(t);
    convert(&o, "{}\n", false);
    assert_string_equal(o.text, "{}\n");
    done(&o);
    convert(&o, "{}", true);
    assert_string_equal(o.text, "{}\n");
    done(&o);
    convert(&o, "# only a comment\n", false); /* empty document: NULL node */
    assert_string_equal(o.text, "{}\n");
    done(&o);
    convert(&o, "~\n", false);
    assert_string_equal(o.text, "{}\n");
    done(&o);
}

static void test_scalar_root(void **state)
{
    struct out o;

    convert(&o, "just text\n", false);
    assert_string_equal(o.text, "\"just text\"\n");
    done(&o);
    convert(&o, "\"-----BEGIN PRIVATE KEY-----\\nx\"\n", false);
    assert_string_equal(o.text, "\"" R "\"\n");
    done(&o);
}

static void test_aliases_and_merge_keys(void **state)
{
    struct out o;

    convert(&o,
            "base: &b {host: h, password: merged-SECRET}\n"
            "svc:\n"
            "  <<: *b\n"
            "  name: s\n"
            "copy: *b\n",
            false);
    assert_null(strstr(o.text, "SECRET"));
    assert_string_equal(str_at(o.j, "svc.host"), "h");
    assert_string_equal(str_at(o.j, "svc.password"), R);
    assert_string_equal(str_at(o.j, "copy.password"), R);
    done(&o);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

/* Secrets known to be in the corpus files: none may reach the output. */
static const char *const corpus_secrets[] = {
    "pbRmyO9dubnjPydtGcF7DKOx5PLRM9GI", /* 22: openid-connect cache_tokens_salt */
    "PRIVATE KEY",                      /* 17, 18: certificate keys */
    "\"key\":\"test\"",                 /* 03: key-auth credential */
    "\"key\":\"my-key\"",               /* 13: key-auth credential */
    "\"abcd\"",                         /* 22: client_secret */
};

static void test_kong_corpus_converts(void **state)
{
    const char *env = getenv("GATEHOUSE_CORPUS");
    const char *dir =
        env != NULL && *env != '\0' ? env : GW_SOURCE_DIR "/../shared/reference/kong-configs";
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[256];
    size_t n = 0, loaded = 0;

    if (d == NULL) {
        print_message("corpus %s not found: skipped\n", dir);
        skip();
    }
    while ((e = readdir(d)) != NULL && n < sizeof(names) / sizeof(*names))
        if (ends_with(e->d_name, ".yaml") || ends_with(e->d_name, ".json")) {
            names[n] = strdup(e->d_name);
            assert_non_null(names[n]);
            n++;
        }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct gw_arena *a = gw_arena_new();
        struct gw_err err;
        struct gw_yaml *y;
        struct out o;
        size_t len;
        char *buf;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        buf = read_all(path, &len);
        gw_err_init(&err, names[i]);
        y = ends_with(names[i], ".json") ? gw_yaml_load_json(buf, len, a, &err)
                                         : gw_yaml_load_yaml(buf, len, a, &err);
        if (y != NULL) {
            convert_doc(&o, y);
            for (size_t s = 0; s < sizeof(corpus_secrets) / sizeof(*corpus_secrets); s++)
                if (strstr(o.text, corpus_secrets[s]) != NULL)
                    fail_msg("%s: secret %s in the output", names[i], corpus_secrets[s]);
            done(&o);
            loaded++;
        }
        gw_err_dispose(&err);
        gw_arena_free(a);
        free(buf);
        free(names[i]);
    }
    print_message("corpus: %zu of %zu files loaded and converted\n", loaded, n);
    assert_true(loaded >= 24);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_types_order_and_structure_kept),
        cmocka_unit_test(test_json_document_converted),
        cmocka_unit_test(test_consumer_keyauth_keys_absent),
        cmocka_unit_test(test_jwt_secrets_walked_secret_redacted),
        cmocka_unit_test(test_jwt_secrets_scalar_redacted),
        cmocka_unit_test(test_certificate_keys_redacted_certs_kept),
        cmocka_unit_test(test_plugin_config_secrets_redacted),
        cmocka_unit_test(test_vault_reference_kept),
        cmocka_unit_test(test_vault_reference_in_snapshot_doc),
        cmocka_unit_test(test_private_key_pem_anywhere_redacted),
        cmocka_unit_test(test_header_lines_redacted),
        cmocka_unit_test(test_credential_shapes_redacted),
        cmocka_unit_test(test_yaml_escapes_stay_utf8),
        cmocka_unit_test(test_invalid_utf8_raw_bytes),
        cmocka_unit_test(test_null_doc_and_empty_map),
        cmocka_unit_test(test_scalar_root),
        cmocka_unit_test(test_aliases_and_merge_keys),
        cmocka_unit_test(test_kong_corpus_converts),
    };
    return cmocka_run_group_tests_name("config_json", t, NULL, NULL);
}
