#ifndef GW_JWK_H
#define GW_JWK_H

#include <stddef.h>

/* JSON Web Keys (RFC 7517) into OpenSSL public keys, for tokens signed by an identity
 * provider: RSA (`n`, `e`), EC (`crv` P-256/P-384/P-521, `x`, `y`) and OKP (`crv` Ed25519 or
 * Ed448, `x`). Keys are built once, when a key set is read, never per request. Any thread. */

struct evp_pkey_st;

struct gw_jwk {
    char kid[128];           /* "" when absent */
    char alg[16];            /* the key's `alg`, "" when absent */
    char kty[8];             /* RSA, EC or OKP */
    char crv[16];            /* EC and OKP */
    struct evp_pkey_st *key; /* owned */
};

struct gw_jwks {
    struct gw_jwk *keys;
    size_t n;
    size_t skipped; /* keys left out: private, for encryption (`use: enc`), or of another type */
};

/* Reads a JWK Set document (`{"keys": [...]}`). Keys that cannot serve to verify signatures
 * are skipped and counted; a malformed key of a supported type is an error. Returns 0, or -1
 * with a message in err (no key material in it). */
int gw_jwks_parse(const char *json, size_t len, struct gw_jwks *out, char *err, size_t errlen);

void gw_jwks_free(struct gw_jwks *set);

/* The key with `kid` (NULL: the only key, when there is exactly one), or NULL. */
const struct gw_jwk *gw_jwks_find(const struct gw_jwks *set, const char *kid);

#endif
