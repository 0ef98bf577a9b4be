#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/config_json.h"
#include "gw/str.h"
#include "gw/yaml.h"

/* The document as JSON for `GET /config`. The rules are in gw/config_json.h; the guiding
 * choice is that a doubtful value is redacted: a few hidden non-secrets cost nothing, one
 * leaked key is a security bug. */

#define REDACTED "[redacted]"
#define INVALID_UTF8 "[invalid utf-8]"
#define VAULT_PREFIX "{vault://"
#define VAULT_MAX_LEN 1024

/* jansson returns NULL on out-of-memory; the project aborts instead (h2o policy). */
static json_t *must(json_t *j)
{
    if (j == NULL)
        abort();
    return j;
}

static bool ci_starts(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (gw_lower(p[i]) != prefix[i])
            return false;
    return true;
}

/* Lengths, not NUL: document strings may hold NUL bytes. `needle` is lower-case. */
static bool ci_contains(struct gw_str s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++)
        if (ci_starts(s.p + i, s.len - i, needle))
            return true;
    return false;
}

static bool ci_ends(struct gw_str s, const char *suffix)
{
    size_t n = strlen(suffix);

    return s.len >= n && ci_starts(s.p + s.len - n, n, suffix);
}

static bool ci_eq(struct gw_str s, const char *lit)
{
    return s.len == strlen(lit) && ci_starts(s.p, s.len, lit);
}

static const char *const sensitive_exact[] = {
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

/* Rule 1, without the jwt_secrets exception (the caller applies it). `salt` covers
 * openid-connect's cache_tokens_salt. The suffix rule catches Kong fields outside the exact
 * list (oauth2 provision_key, aws-lambda aws_key, acme eab_hmac_key, X-Auth-Token headers);
 * `public` spares rsa_public_key and the like. */
static bool sensitive_name(struct gw_str k)
{
    for (size_t i = 0; i < sizeof(sensitive_exact) / sizeof(*sensitive_exact); i++)
        if (ci_eq(k, sensitive_exact[i]))
            return true;
    if (ci_contains(k, "secret") || ci_contains(k, "password") || ci_contains(k, "passwd") ||
        ci_contains(k, "passphrase") || ci_contains(k, "salt"))
        return true;
    if ((ci_ends(k, "_key") || ci_ends(k, "-key") || ci_ends(k, "_token") ||
         ci_ends(k, "-token")) &&
        !ci_contains(k, "public"))
        return true;
    return false;
}

/* Rule 4's header names: wider than rule 1, since a header line is always a credential
 * candidate and a false positive only hides the value of one header. */
static bool sensitive_header(struct gw_str name)
{
    return sensitive_name(name) || ci_contains(name, "auth") || ci_contains(name, "token") ||
           ci_contains(name, "cookie") || ci_contains(name, "session");
}

/* Strict on purpose: `{vault://x} plus a secret}` must not pass as a reference. */
static bool is_vault_ref(struct gw_str s)
{
    const size_t plen = sizeof(VAULT_PREFIX) - 1;

    if (s.len <= plen + 1 || s.len > VAULT_MAX_LEN || memcmp(s.p, VAULT_PREFIX, plen) != 0 ||
        s.p[s.len - 1] != '}')
        return false;
    for (size_t i = plen; i < s.len - 1; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= 0x20 || c >= 0x7f || c == '{' || c == '}' || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_auth_scheme_value(struct gw_str s)
{
    size_t i = 0;

    while (i < s.len && is_blank(s.p[i]))
        i++;
    if (ci_starts(s.p + i, s.len - i, "bearer"))
        i += 6;
    else if (ci_starts(s.p + i, s.len - i, "basic"))
        i += 5;
    else
        return false;
    return i < s.len && is_blank(s.p[i]);
}

/* Length of the name of a `Name:value` line whose name is sensitive, else 0. */
static size_t sensitive_header_line(struct gw_str s)
{
    const char *colon = memchr(s.p, ':', s.len);
    struct gw_str name;

    if (colon == NULL)
        return 0;
    name = (struct gw_str){s.p, (size_t)(colon - s.p)};
    while (name.len > 0 && is_blank(name.p[0])) {
        name.p++;
        name.len--;
    }
    while (name.len > 0 && is_blank(name.p[name.len - 1]))
        name.len--;
    if (name.len == 0 || !sensitive_header(name))
        return 0;
    return (size_t)(colon - s.p);
}

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const char *p, size_t len)
{
    if (len > b->cap - b->len) {
        size_t cap = b->cap > 0 ? b->cap : 64;
        while (cap - b->len < len)
            cap *= 2;
        b->p = gw_xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->p + b->len, p, len);
    b->len += len;
}

/* `scheme://user:pass@host` -> `scheme://user:[redacted]@host`; a user information without a
 * password is often a token (`https://TOKEN@host`) and is replaced whole. Returns true with
 * the new string in `out` (caller frees out->p) when something was redacted. */
static bool redact_userinfo(struct gw_str s, struct buf *out)
{
    size_t copied = 0;
    bool changed = false;

    for (size_t i = 0; i + 3 <= s.len; i++) {
        size_t a, e, at = SIZE_MAX, colon = SIZE_MAX;

        if (memcmp(s.p + i, "://", 3) != 0)
            continue;
        a = i + 3;
        for (e = a; e < s.len; e++) {
            char c = s.p[e];
            if (c == '/' || c == '?' || c == '#' || is_blank(c))
                break;
            if (c == '@')
                at = e; /* the last '@' ends the user information (RFC 3986) */
        }
        if (at == SIZE_MAX || at == a) {
            i = e - 1; /* e >= i + 3: go on after the authority */
            continue;
        }
        for (size_t j = a; j < at; j++)
            if (s.p[j] == ':') {
                colon = j;
                break;
            }
        if (colon != SIZE_MAX)
            a = colon + 1;
        buf_put(out, s.p + copied, a - copied);
        buf_put(out, REDACTED, sizeof(REDACTED) - 1);
        copied = at;
        changed = true;
        i = e - 1;
    }
    if (changed)
        buf_put(out, s.p + copied, s.len - copied);
    return changed;
}

/* jansson refuses invalid UTF-8 (and returns NULL on out-of-memory too: then the placeholder
 * fails as well and must() aborts). */
static json_t *jstr(const char *p, size_t len)
{
    json_t *j = json_stringn(p, len);

    return j != NULL ? j : must(json_string(INVALID_UTF8));
}

static json_t *redacted(void)
{
    return must(json_string(REDACTED));
}

static json_t *string_value(struct gw_str s, bool secret)
{
    struct buf b = {0};
    size_t name_len;
    json_t *j;

    if (is_vault_ref(s))
        return jstr(s.p, s.len);
    if (secret || ci_contains(s, "private key") || is_auth_scheme_value(s))
        return redacted();
    name_len = sensitive_header_line(s);
    if (name_len > 0) {
        buf_put(&b, s.p, name_len);
        buf_put(&b, ":" REDACTED, sizeof(":" REDACTED) - 1);
    } else if (!redact_userinfo(s, &b)) {
        return jstr(s.p, s.len);
    }
    j = jstr(b.p, b.len);
    free(b.p);
    return j;
}

static json_t *scalar_value(const struct gw_yaml *y, bool secret)
{
    switch (y->type) {
    case GW_YAML_NULL:
        return must(json_null()); /* nothing to hide */
    case GW_YAML_STR:
        return string_value(y->str, secret);
    default:
        break;
    }
    if (secret)
        return redacted();
    switch (y->type) {
    case GW_YAML_BOOL:
        return must(json_boolean(y->v.b));
    case GW_YAML_INT:
        return must(json_integer((json_int_t)y->v.i));
    case GW_YAML_FLOAT:
        if (isfinite(y->v.f))
            return must(json_real(y->v.f));
        return jstr(y->str.p, y->str.len); /* JSON has no .inf/.nan: keep the YAML text */
    default:
        return must(json_null());
    }
}

/* Adds `val` under `key`, making the key unique when a placeholder ("[redacted]",
 * "[invalid utf-8]") collides with another key: a value is never silently dropped. */
static void object_add(json_t *obj, struct gw_str key, json_t *val)
{
    json_t *probe = json_stringn(key.p, key.len);
    char *tmp = NULL;

    if (probe == NULL)
        key = GW_STR_LIT(INVALID_UTF8);
    json_decref(probe);
    if (ci_contains(key, "private key"))
        key = GW_STR_LIT(REDACTED);
    if (json_object_getn(obj, key.p, key.len) != NULL) {
        size_t cap = key.len + 24;
        tmp = gw_xmalloc(cap);
        for (unsigned n = 2;; n++) {
            int w = snprintf(tmp, cap, "%.*s#%u", (int)key.len, key.p, n);
            if (json_object_getn(obj, tmp, (size_t)w) == NULL) {
                key = (struct gw_str){tmp, (size_t)w};
                break;
            }
        }
    }
    if (json_object_setn_new(obj, key.p, key.len, val) != 0)
        abort(); /* the key was checked above: only out-of-memory is left */
    free(tmp);
}

static json_t *node_value(const struct gw_yaml *y, bool secret)
{
    json_t *j;

    if (y == NULL)
        return must(json_null());
    switch (y->type) {
    case GW_YAML_SEQ:
        j = must(json_array());
        for (size_t i = 0; i < y->n; i++)
            if (json_array_append_new(j, node_value(y->items[i], secret)) != 0)
                abort();
        return j;
    case GW_YAML_MAP:
        j = must(json_object());
        for (size_t i = 0; i < y->n; i++) {
            const struct gw_yaml *k = y->pairs[i].key, *v = y->pairs[i].val;
            struct gw_str name = k != NULL && k->str.p != NULL ? k->str : GW_STR_LIT("");
            bool collection = v != NULL && (v->type == GW_YAML_SEQ || v->type == GW_YAML_MAP);
            bool child =
                secret || (sensitive_name(name) && !(collection && ci_eq(name, "jwt_secrets")));
            object_add(j, name, node_value(v, child));
        }
        return j;
    default:
        return scalar_value(y, secret);
    }
}

static int dump_cb(const char *p, size_t size, void *data)
{
    buf_put(data, p, size);
    return 0;
}

char *gw_config_json(const struct gw_yaml *doc, size_t *len)
{
    /* An empty file is a NULL document or a null root: either way, no settings. */
    json_t *root = gw_yaml_is_null(doc) ? must(json_object()) : node_value(doc, false);
    struct buf b = {0};

    if (json_dump_callback(root, dump_cb, &b,
                           JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        abort(); /* every string was validated when it was built: only out-of-memory */
    json_decref(root);
    buf_put(&b, "\n", 2); /* the newline and the NUL */
    if (len != NULL)
        *len = b.len - 1;
    return b.p;
}
