#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/arena.h"
#include "gw/body.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/log.h"
#include "gw/map.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/yaml.h"

/* jwt: a signed JSON Web Token identifies the consumer through its `jwt_secrets` (Kong's jwt
 * plugin, priority 1450; reference §4, docs/plugins.md). The token's key claim picks the
 * credential; the credential's algorithm, never the token's `alg`, decides how the signature
 * is checked, on OpenSSL's EVP with keys parsed when the configuration is loaded. */

struct jwt_conf {
    struct gw_strv uri_param_names, cookie_names, header_names;
    const char *key_claim_name;
    bool secret_is_base64, verify_exp, verify_nbf, run_on_preflight;
    int64_t maximum_expiration;
    struct gw_str anonymous;
    const char *auth_missing, *auth_invalid; /* WWW-Authenticate lines */
};

static const char *check_claim(struct gw_str item, struct gw_arena *a)
{
    return gw_str_eqc(item, "exp") || gw_str_eqc(item, "nbf") ? NULL : "expected one of: exp, nbf";
}

static void *jwt_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                       struct gw_err *err)
{
    static const char *const known[] = {"uri_param_names",
                                        "cookie_names",
                                        "header_names",
                                        "key_claim_name",
                                        "secret_is_base64",
                                        "claims_to_verify",
                                        "maximum_expiration",
                                        "anonymous",
                                        "run_on_preflight",
                                        "realm",
                                        NULL};
    struct jwt_conf *c = gw_arena_zalloc(a, sizeof(*c));
    struct gw_strv claims = {NULL, 0};
    struct gw_str kcn = GW_STR_LIT("iss"), realm = GW_STR_NULL;
    int rc = 0;

    c->uri_param_names.v = gw_arena_zalloc(a, sizeof(struct gw_str));
    c->uri_param_names.v[0] = GW_STR_LIT("jwt");
    c->uri_param_names.n = 1;
    c->header_names.v = gw_arena_zalloc(a, sizeof(struct gw_str));
    c->header_names.v[0] = GW_STR_LIT("authorization");
    c->header_names.n = 1;
    c->run_on_preflight = true;
    rc |= gw_pconf_check(node, path, known, a, err);
    rc |= gw_pconf_strv(node, "uri_param_names", path, NULL, 0, &c->uri_param_names, a, err);
    rc |= gw_pconf_strv(node, "cookie_names", path, NULL, 0, &c->cookie_names, a, err);
    rc |= gw_pconf_strv(node, "header_names", path, gw_pconf_header_name, 0, &c->header_names, a,
                        err);
    rc |= gw_pconf_str(node, "key_claim_name", path, &kcn, a, err);
    rc |= gw_pconf_bool(node, "secret_is_base64", path, &c->secret_is_base64, a, err);
    rc |= gw_pconf_strv(node, "claims_to_verify", path, check_claim, 0, &claims, a, err);
    rc |=
        gw_pconf_int(node, "maximum_expiration", path, 0, 31536000, &c->maximum_expiration, a, err);
    rc |= gw_pconf_str(node, "anonymous", path, &c->anonymous, a, err);
    rc |= gw_pconf_bool(node, "run_on_preflight", path, &c->run_on_preflight, a, err);
    rc |= gw_pconf_str(node, "realm", path, &realm, a, err);
    for (size_t i = 0; i < claims.n; i++) {
        c->verify_exp |= gw_str_eqc(claims.v[i], "exp");
        c->verify_nbf |= gw_str_eqc(claims.v[i], "nbf");
    }
    if (c->maximum_expiration > 0 && !c->verify_exp)
        rc = gw_err_at(err, gw_yaml_get(node, "maximum_expiration"),
                       gw_arena_printf(a, "%s.maximum_expiration", path),
                       "expected claims_to_verify to contain 'exp' when maximum_expiration is "
                       "set");
    if (realm.len > 0 &&
        (memchr(realm.p, '"', realm.len) != NULL || memchr(realm.p, '\r', realm.len) != NULL ||
         memchr(realm.p, '\n', realm.len) != NULL))
        rc = gw_err_at(err, gw_yaml_get(node, "realm"), gw_arena_printf(a, "%s.realm", path),
                       "must not contain '\"' or line breaks");
    if (rc != 0)
        return NULL;
    c->key_claim_name = kcn.p;
    if (realm.len > 0) {
        c->auth_missing = gw_arena_printf(a, "WWW-Authenticate: Bearer realm=\"%s\"\r\n", realm.p);
        c->auth_invalid = gw_arena_printf(
            a, "WWW-Authenticate: Bearer realm=\"%s\", error=\"invalid_token\"\r\n", realm.p);
    } else {
        c->auth_missing = "WWW-Authenticate: Bearer\r\n";
        c->auth_invalid = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
    }
    return c;
}

/* ---- tokens ---- */

/* base64url (padding optional) into `a`; .p == NULL when it is not base64url */
static struct gw_str b64url_decode(struct gw_arena *a, struct gw_str s)
{
    unsigned char *out = gw_arena_alloc(a, s.len * 3 / 4 + 3);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (s.len > 0 && s.p[s.len - 1] == '=')
        s.len--;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '-' || ch == '+')
            v = 62;
        else if (ch == '_' || ch == '/')
            v = 63;
        else
            return GW_STR_NULL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (s.len % 4 == 1)
        return GW_STR_NULL;
    out[n] = '\0';
    return (struct gw_str){(const char *)out, n};
}

/* The value of cookie `name` in the Cookie header(s); .p == NULL when absent. */
static struct gw_str cookie_value(struct gw_req *r, struct gw_str name)
{
    struct gw_str vals[8];
    size_t n = gw_req_header_values(r, "cookie", vals, 8);

    for (size_t k = 0; k < n && k < 8; k++) {
        const char *p = vals[k].p, *end = vals[k].p + vals[k].len;
        while (p < end) {
            const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
            const char *eq;
            while (p < stop && *p == ' ')
                p++;
            eq = memchr(p, '=', (size_t)(stop - p));
            if (eq != NULL && gw_str_eq((struct gw_str){p, (size_t)(eq - p)}, name))
                return (struct gw_str){eq + 1, (size_t)(stop - eq - 1)};
            p = stop + 1;
        }
    }
    return GW_STR_NULL;
}

#define MAX_TOKENS 8

static void add_token(struct gw_str *toks, size_t *n, struct gw_str t)
{
    if (t.p == NULL || t.len == 0)
        return;
    for (size_t i = 0; i < *n; i++)
        if (gw_str_eq(toks[i], t))
            return; /* the same token twice counts once */
    if (*n < MAX_TOKENS)
        toks[(*n)++] = t;
}

/* Kong's retrieve_tokens: query arguments, cookies, then `Bearer` headers. */
static size_t find_tokens(struct gw_req *r, const struct jwt_conf *c, struct gw_str *toks)
{
    size_t n = 0;
    struct gw_str q = gw_req_query(r);

    for (size_t i = 0; i < c->uri_param_names.n; i++) { /* every value of each name */
        const char *p = q.p, *end = q.p != NULL ? q.p + q.len : NULL;
        while (p != NULL && p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
            struct gw_str arg = {p, (size_t)(stop - p)}, v = GW_STR_NULL;
            if (gw_urlencoded_get(gw_req_pool(r), arg, c->uri_param_names.v[i].p, &v) == 1)
                add_token(toks, &n, v);
            p = stop + 1;
        }
    }
    for (size_t i = 0; i < c->cookie_names.n; i++)
        add_token(toks, &n, cookie_value(r, c->cookie_names.v[i]));
    for (size_t i = 0; i < c->header_names.n; i++) {
        struct gw_str h = gw_req_header(r, c->header_names.v[i].p);
        size_t k = 0;
        if (h.p == NULL)
            continue;
        while (k < h.len && (h.p[k] == ' ' || h.p[k] == '\t'))
            k++;
        if (h.len - k > 7 && (h.p[k] == 'B' || h.p[k] == 'b') &&
            memcmp(h.p + k + 1, "earer", 5) == 0 && (h.p[k + 6] == ' ' || h.p[k + 6] == '\t')) {
            k += 7;
            while (k < h.len && (h.p[k] == ' ' || h.p[k] == '\t'))
                k++;
            add_token(toks, &n, (struct gw_str){h.p + k, h.len - k});
        }
    }
    return n;
}

/* ---- signatures ---- */

static const EVP_MD *md_of(const char *alg)
{
    const char *bits = alg + 2; /* HS256, RS384, ES512, PS256 */

    if (strcmp(bits, "256") == 0)
        return EVP_sha256();
    if (strcmp(bits, "384") == 0)
        return EVP_sha384();
    if (strcmp(bits, "512") == 0)
        return EVP_sha512();
    return NULL;
}

/* JWS ECDSA signatures are R || S; OpenSSL verifies DER. */
static unsigned char *ecdsa_der(struct gw_str sig, size_t *len)
{
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    unsigned char *der = NULL;
    int n;

    if (sig.len == 0 || sig.len % 2 != 0)
        return NULL;
    r = BN_bin2bn((const unsigned char *)sig.p, (int)(sig.len / 2), NULL);
    s = BN_bin2bn((const unsigned char *)sig.p + sig.len / 2, (int)(sig.len / 2), NULL);
    es = ECDSA_SIG_new();
    if (r == NULL || s == NULL || es == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *len = (size_t)n;
    return der;
}

/* True when `sig` signs `data` under `alg` with `secret` (HS*) or `pkey` (the others). */
static bool verify(const char *alg, struct gw_str data, struct gw_str sig, struct gw_str secret,
                   EVP_PKEY *pkey)
{
    bool ok = false;

    if (alg[0] == 'H') {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (HMAC(md_of(alg), secret.p, (int)secret.len, (const unsigned char *)data.p, data.len,
                 mac, &n) == NULL)
            return false;
        return sig.len == n && CRYPTO_memcmp(mac, sig.p, n) == 0;
    }
    if (pkey == NULL)
        return false;
    {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : md_of(alg);
        unsigned char *der = NULL;
        size_t dlen = 0;
        const unsigned char *s = (const unsigned char *)sig.p;
        size_t slen = sig.len;
        if (ctx == NULL)
            return false;
        if (alg[0] == 'E' && md != NULL) {
            der = ecdsa_der(sig, &dlen);
            s = der;
            slen = dlen;
        }
        if (s != NULL && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) == 1) {
            bool ready = true;
            if (alg[0] == 'P')
                ready = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
            else if (alg[0] == 'R')
                ready = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
            ok = ready &&
                 EVP_DigestVerify(ctx, s, slen, (const unsigned char *)data.p, data.len) == 1;
        }
        OPENSSL_free(der);
        EVP_MD_CTX_free(ctx);
        ERR_clear_error(); /* a key of the wrong type is just a failed verification */
    }
    return ok;
}

/* ---- access ---- */

static enum gw_rc fail_message(struct gw_req *r, const char *header, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum gw_rc fail_message(struct gw_req *r, const char *header, const char *fmt, ...)
{
    char msg[512];
    json_t *o;
    char *text;
    enum gw_rc rc;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    o = json_pack("{s:s}", "message", msg);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    rc = gw_req_exit_json(r, 401, text != NULL ? text : "{}", header);
    free(text);
    return rc;
}

static const char *const ALGS[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
                                   "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA", NULL};

static bool supported_alg(const char *alg)
{
    for (const char *const *a = ALGS; *a != NULL; a++)
        if (strcmp(*a, alg) == 0)
            return true;
    return false;
}

/* GW_OK when authenticated, else the answer (made with gw_req_exit_json). */
static enum gw_rc authenticate(struct gw_req *r, const struct jwt_conf *c)
{
    struct gw_str toks[MAX_TOKENS], parts[3], hdr, claims_text, sig, secret;
    struct gw_arena *a = gw_req_pool(r);
    const struct gw_jwt_secret *cred;
    json_t *header = NULL, *claims = NULL, *kc, *alg;
    const char *dot1, *dot2, *algname;
    size_t n = find_tokens(r, c, toks);
    enum gw_rc rc = GW_OK;
    char key[512];

    if (n == 0)
        return fail_message(r, c->auth_missing, "Unauthorized");
    if (n > 1)
        return fail_message(r, c->auth_invalid, "Multiple tokens provided");
    dot1 = memchr(toks[0].p, '.', toks[0].len);
    dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', toks[0].len - (size_t)(dot1 + 1 - toks[0].p)) : NULL;
    if (dot2 == NULL)
        return fail_message(r, c->auth_invalid, "Bad token; invalid JSON");
    parts[0] = (struct gw_str){toks[0].p, (size_t)(dot1 - toks[0].p)};
    parts[1] = (struct gw_str){dot1 + 1, (size_t)(dot2 - dot1 - 1)};
    parts[2] = (struct gw_str){dot2 + 1, toks[0].len - (size_t)(dot2 + 1 - toks[0].p)};
    hdr = b64url_decode(a, parts[0]);
    claims_text = b64url_decode(a, parts[1]);
    sig = b64url_decode(a, parts[2]);
    if (hdr.p != NULL)
        header = json_loadb(hdr.p, hdr.len, 0, NULL);
    if (claims_text.p != NULL)
        claims = json_loadb(claims_text.p, claims_text.len, 0, NULL);
    if (!json_is_object(header) || !json_is_object(claims) || sig.p == NULL) {
        rc = fail_message(r, c->auth_invalid, "Bad token; invalid JSON");
        goto out;
    }
    alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || !supported_alg(json_string_value(alg))) {
        rc = fail_message(r, c->auth_invalid, "Bad token; invalid alg");
        goto out;
    }
    algname = json_string_value(alg);
    kc = json_object_get(claims, c->key_claim_name);
    if (kc == NULL)
        kc = json_object_get(header, c->key_claim_name);
    if (kc == NULL) {
        rc = fail_message(r, c->auth_invalid, "No mandatory '%s' in claims", c->key_claim_name);
        goto out;
    }
    if (json_is_string(kc) && json_string_length(kc) == 0) {
        rc = fail_message(r, c->auth_invalid, "Invalid '%s' in claims", c->key_claim_name);
        goto out;
    }
    if (json_is_string(kc))
        snprintf(key, sizeof(key), "%s", json_string_value(kc));
    else if (json_is_integer(kc))
        snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(kc));
    else
        key[0] = '\0';
    cred = key[0] != '\0' ? gw_map_get(gw_req_snapshot(r)->jwt_by_key, gw_str_c(key)) : NULL;
    if (cred == NULL) {
        rc = fail_message(r, c->auth_invalid, "No credentials found for given '%s'",
                          c->key_claim_name);
        goto out;
    }
    if (!gw_str_eqc(cred->algorithm, algname)) { /* the credential decides, not the token */
        rc = fail_message(r, c->auth_invalid, "Invalid algorithm");
        goto out;
    }
    secret = cred->secret;
    if (algname[0] == 'H' && c->secret_is_base64)
        secret = b64url_decode(a, cred->secret);
    if ((algname[0] == 'H' && (secret.p == NULL || secret.len == 0)) ||
        (algname[0] != 'H' && cred->pkey == NULL)) {
        rc = fail_message(r, c->auth_invalid, "Invalid key/secret");
        goto out;
    }
    if (!verify(algname, (struct gw_str){toks[0].p, (size_t)(dot2 - toks[0].p)}, sig, secret,
                cred->pkey)) {
        rc = fail_message(r, c->auth_invalid, "Invalid signature");
        goto out;
    }
    {
        json_t *errors = json_object();
        time_t now = time(NULL);
        if (c->verify_nbf) {
            json_t *v = json_object_get(claims, "nbf");
            if (!json_is_number(v))
                json_object_set_new(errors, "nbf", json_string("must be a number"));
            else if (json_number_value(v) > (double)now)
                json_object_set_new(errors, "nbf", json_string("token not valid yet"));
        }
        if (c->verify_exp) {
            json_t *v = json_object_get(claims, "exp");
            if (!json_is_number(v))
                json_object_set_new(errors, "exp", json_string("must be a number"));
            else if (json_number_value(v) <= (double)now)
                json_object_set_new(errors, "exp", json_string("token expired"));
        }
        if (json_object_size(errors) == 0 && c->maximum_expiration > 0) {
            json_t *v = json_object_get(claims, "exp");
            if (!json_is_number(v) ||
                json_number_value(v) - (double)now > (double)c->maximum_expiration)
                json_object_set_new(errors, "exp",
                                    json_string("exceeds maximum allowed expiration"));
        }
        if (json_object_size(errors) > 0) {
            char *text = json_dumps(errors, JSON_COMPACT | JSON_PRESERVE_ORDER);
            rc = gw_req_exit_json(r, 401, text != NULL ? text : "{}", c->auth_invalid);
            free(text);
            json_decref(errors);
            goto out;
        }
        json_decref(errors);
    }
    /* X-Credential-Identifier carries the jwt_secret's key, as Kong */
    gw_req_authenticate(r, cred->consumer, cred->key.p, false);
out:
    json_decref(header);
    json_decref(claims);
    return rc;
}

static enum gw_rc jwt_access(struct gw_req *r, const void *conf, void *ctx)
{
    const struct jwt_conf *c = conf;
    const struct gw_consumer *anon;
    enum gw_rc rc;

    if (!c->run_on_preflight && gw_str_eqc(gw_req_method(r), "OPTIONS"))
        return GW_OK;
    if (c->anonymous.len > 0 && gw_req_authenticated(r))
        return GW_OK; /* another auth plugin already succeeded: logical OR */
    rc = authenticate(r, c);
    if (rc == GW_OK || c->anonymous.len == 0)
        return rc;
    anon = gw_snapshot_consumer_ref(gw_req_snapshot(r), c->anonymous);
    if (anon == NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "anonymous consumer %s is configured but doesn't exist",
                 c->anonymous.p);
        gw_log(GW_LOG_ERROR, "req=%.*s jwt: %s", (int)gw_req_id(r).len, gw_req_id(r).p, msg);
        return gw_req_exit(r, 500, msg, NULL);
    }
    /* the failure's answer was only prepared: the anonymous consumer stands in instead */
    gw_req_exit(r, 0, NULL, NULL);
    gw_req_authenticate(r, anon, NULL, true);
    return GW_OK;
}

static const struct gw_strv *jwt_query_secrets(const void *conf)
{
    return &((const struct jwt_conf *)conf)->uri_param_names;
}

const struct gw_plugin gw_plugin_jwt = {
    .name = "jwt",
    .priority = 1450,
    .consumer_scoped = false,
    .parse = jwt_parse,
    .query_secrets = jwt_query_secrets,
    .access = jwt_access,
};
