#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/jwk.h"

/* JWK Sets into OpenSSL keys: keys generated here are written as JWKs, read back, and must be
 * the same keys; malformed and unusable keys are refused or skipped. */

static void b64url(const unsigned char *p, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = a[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static void bn_param(EVP_PKEY *k, const char *name, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    n = BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
    BN_free(bn);
}

struct keys {
    EVP_PKEY *rsa, *ec, *ed;
    char json[8192];
};

static void make_keys(struct keys *k)
{
    char n[1024], e[16], x[128], y[128], ox[128];
    unsigned char pub[200];
    size_t len = 0;

    k->rsa = EVP_RSA_gen(2048);
    k->ec = EVP_EC_gen("P-256");
    k->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k->rsa);
    assert_non_null(k->ec);
    assert_non_null(k->ed);
    bn_param(k->rsa, OSSL_PKEY_PARAM_RSA_N, n);
    bn_param(k->rsa, OSSL_PKEY_PARAM_RSA_E, e);
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(k->ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
    assert_int_equal(len, 65); /* 04 || x || y */
    b64url(pub + 1, 32, x);
    b64url(pub + 33, 32, y);
    len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k->ed, pub, &len), 1);
    b64url(pub, len, ox);
    snprintf(k->json, sizeof(k->json),
             "{\"keys\": ["
             "{\"kty\": \"RSA\", \"kid\": \"r1\", \"alg\": \"RS256\", \"use\": \"sig\", "
             "\"n\": \"%s\", \"e\": \"%s\"},"
             "{\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": \"%s\", \"y\": \"%s\"},"
             "{\"kty\": \"OKP\", \"kid\": \"o1\", \"crv\": \"Ed25519\", \"x\": \"%s\"},"
             "{\"kty\": \"oct\", \"kid\": \"s1\", \"k\": \"c2VjcmV0\"},"
             "{\"kty\": \"RSA\", \"kid\": \"enc\", \"use\": \"enc\", \"n\": \"%s\", \"e\": \"%s\"}"
             "]}",
             n, e, x, y, ox, n, e);
}

static void free_keys(struct keys *k)
{
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    EVP_PKEY_free(k->ed);
}

static void test_round_trip(void **state)
{
    struct keys k;
    struct gw_jwks set;
    char err[256];
    const struct gw_jwk *j;

    make_keys(&k);
    assert_int_equal(gw_jwks_parse(k.json, strlen(k.json), &set, err, sizeof(err)), 0);
    assert_int_equal(set.n, 3);
    assert_int_equal(set.skipped, 2); /* the symmetric key and the encryption key */
    j = gw_jwks_find(&set, "r1");
    assert_non_null(j);
    assert_string_equal(j->alg, "RS256");
    assert_int_equal(EVP_PKEY_eq(j->key, k.rsa), 1);
    j = gw_jwks_find(&set, "e1");
    assert_non_null(j);
    assert_string_equal(j->crv, "P-256");
    assert_int_equal(EVP_PKEY_eq(j->key, k.ec), 1);
    j = gw_jwks_find(&set, "o1");
    assert_non_null(j);
    assert_int_equal(EVP_PKEY_eq(j->key, k.ed), 1);
    assert_null(gw_jwks_find(&set, "s1"));
    assert_null(gw_jwks_find(&set, "enc"));
    assert_null(gw_jwks_find(&set, NULL)); /* three keys: a kid is needed */
    gw_jwks_free(&set);
    free_keys(&k);
}

static void expect_error(const char *json, const char *msg)
{
    struct gw_jwks set;
    char err[256] = "";

    assert_int_equal(gw_jwks_parse(json, strlen(json), &set, err, sizeof(err)), -1);
    assert_string_equal(err, msg);
    assert_int_equal(set.n, 0);
}

static void test_malformed(void **state)
{
    expect_error("[]", "not a JWK Set: no \"keys\" array");
    expect_error("{\"keys\": [{\"kid\": \"x\"}]}", "keys[0]: not a JWK (no \"kty\")");
    /* a point that is not on the curve */
    expect_error("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\","
                 "\"x\": \"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                 "\"y\": \"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
                 "keys[0]: invalid EC key");
    expect_error(
        "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-192\", \"x\": \"AQ\", \"y\": \"AQ\"}]}",
        "keys[0]: invalid EC key");
    expect_error("{\"keys\": [{\"kty\": \"RSA\", \"n\": \"not base64!\", \"e\": \"AQAB\"}]}",
                 "keys[0]: invalid RSA key");
    /* RSA under 1024 bits */
    expect_error("{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}",
                 "keys[0]: invalid RSA key");
    expect_error("{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"X25519\", \"x\": \"AQAB\"}]}",
                 "keys[0]: invalid OKP key");
}

static void test_single_key_without_kid(void **state)
{
    struct keys k;
    struct gw_jwks set;
    char err[256], *one, *end;

    make_keys(&k);
    /* keep only the Ed25519 key, without its kid */
    one = strstr(k.json, "{\"kty\": \"OKP\"");
    end = strchr(one, '}');
    end[1] = '\0';
    {
        char doc[1024];
        snprintf(doc, sizeof(doc), "{\"keys\": [%s]}", one);
        memmove(strstr(doc, "\"kid\": \"o1\", "), strstr(doc, "\"kid\": \"o1\", ") + 13,
                strlen(strstr(doc, "\"kid\": \"o1\", ") + 13) + 1);
        assert_int_equal(gw_jwks_parse(doc, strlen(doc), &set, err, sizeof(err)), 0);
    }
    assert_int_equal(set.n, 1);
    assert_non_null(gw_jwks_find(&set, NULL));
    assert_string_equal(gw_jwks_find(&set, NULL)->kid, "");
    gw_jwks_free(&set);
    free_keys(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_single_key_without_kid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
