#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/jwk.h"

/* base64url without padding (RFC 7515 §2) into a malloc'd buffer; NULL when invalid. */
static unsigned char *b64url(const char *s, size_t *outlen)
{
    size_t len = strlen(s), n = 0;
    unsigned char *out = gw_xmalloc(len * 3 / 4 + 3);
    unsigned acc = 0;
    int bits = 0;

    while (len > 0 && s[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (len % 4 == 1 || n == 0) {
        free(out);
        return NULL;
    }
    *outlen = n;
    return out;
}

static const char *member(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *key = NULL;

    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *rsa_key(json_t *k)
{
    const char *ns = member(k, "n"), *es = member(k, "e");
    unsigned char *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *key = NULL;

    if (ns == NULL || es == NULL || (n = b64url(ns, &nl)) == NULL ||
        (e = b64url(es, &el)) == NULL || nl < 128) /* RSA under 1024 bits is refused */
        goto out;
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn != NULL && be != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        key = from_params("RSA", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return key;
}

static EVP_PKEY *ec_key(json_t *k, const char *crv)
{
    static const struct {
        const char *crv;
        size_t size;
    } curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}};
    const char *xs = member(k, "x"), *ys = member(k, "y");
    unsigned char *x = NULL, *y = NULL, point[1 + 2 * 66];
    size_t xl = 0, yl = 0, size = 0;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *key = NULL;

    for (size_t i = 0; i < 3; i++)
        if (strcmp(crv, curves[i].crv) == 0)
            size = curves[i].size;
    if (size == 0 || xs == NULL || ys == NULL || (x = b64url(xs, &xl)) == NULL ||
        (y = b64url(ys, &yl)) == NULL || xl != size || yl != size)
        goto out;
    point[0] = 0x04; /* uncompressed: 04 || x || y */
    memcpy(point + 1, x, size);
    memcpy(point + 1 + size, y, size);
    bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size) == 1)
        key = from_params("EC", bld); /* the point is checked to be on the curve */
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return key;
}

static EVP_PKEY *okp_key(json_t *k, const char *crv)
{
    const char *xs = member(k, "x");
    unsigned char *x;
    size_t xl = 0;
    EVP_PKEY *key = NULL;
    int type = strcmp(crv, "Ed25519") == 0 ? EVP_PKEY_ED25519
               : strcmp(crv, "Ed448") == 0 ? EVP_PKEY_ED448
                                           : 0;

    if (type == 0 || xs == NULL || (x = b64url(xs, &xl)) == NULL)
        return NULL;
    key = EVP_PKEY_new_raw_public_key(type, NULL, x, xl);
    free(x);
    return key;
}

int gw_jwks_parse(const char *json, size_t len, struct gw_jwks *out, char *err, size_t errlen)
{
    json_t *doc = json_loadb(json, len, 0, NULL), *keys = json_object_get(doc, "keys");
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "not a JWK Set: no \"keys\" array");
        json_decref(doc);
        return -1;
    }
    out->keys = gw_xcalloc(json_array_size(keys) + 1, sizeof(*out->keys));
    for (size_t i = 0; i < json_array_size(keys) && rc == 0; i++) {
        json_t *k = json_array_get(keys, i);
        const char *kty = member(k, "kty"), *crv = member(k, "crv"), *use = member(k, "use");
        struct gw_jwk *j = &out->keys[out->n];
        EVP_PKEY *key = NULL;
        if (!json_is_object(k) || kty == NULL) {
            snprintf(err, errlen, "keys[%zu]: not a JWK (no \"kty\")", i);
            rc = -1;
            break;
        }
        /* only public signature keys: private parts or encryption keys are not ours to use */
        if ((use != NULL && strcmp(use, "sig") != 0) || json_object_get(k, "d") != NULL ||
            (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0 && strcmp(kty, "OKP") != 0)) {
            out->skipped++;
            continue;
        }
        if (strcmp(kty, "RSA") == 0)
            key = rsa_key(k);
        else if (crv != NULL)
            key = strcmp(kty, "EC") == 0 ? ec_key(k, crv) : okp_key(k, crv);
        ERR_clear_error();
        if (key == NULL) {
            snprintf(err, errlen, "keys[%zu]: invalid %s key", i, kty);
            rc = -1;
            break;
        }
        j->key = key;
        snprintf(j->kty, sizeof(j->kty), "%s", kty);
        snprintf(j->kid, sizeof(j->kid), "%s", member(k, "kid") ? member(k, "kid") : "");
        snprintf(j->alg, sizeof(j->alg), "%s", member(k, "alg") ? member(k, "alg") : "");
        snprintf(j->crv, sizeof(j->crv), "%s", crv != NULL ? crv : "");
        out->n++;
    }
    json_decref(doc);
    if (rc != 0)
        gw_jwks_free(out);
    return rc;
}

void gw_jwks_free(struct gw_jwks *set)
{
    for (size_t i = 0; i < set->n; i++)
        EVP_PKEY_free(set->keys[i].key);
    free(set->keys);
    memset(set, 0, sizeof(*set));
}

const struct gw_jwk *gw_jwks_find(const struct gw_jwks *set, const char *kid)
{
    if (kid == NULL)
        return set->n == 1 ? &set->keys[0] : NULL;
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->keys[i].kid, kid) == 0)
            return &set->keys[i];
    return NULL;
}
