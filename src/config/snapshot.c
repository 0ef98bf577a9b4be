#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <time.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/plugin.h"
#include "gw/router.h"
#include "gw/siphash.h"

static void hash_hex(const char *buf, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    /* Kong's configuration_hash is the MD5 of the configuration: an identifier, not a MAC. */
    EVP_Digest(buf, len, md, &n, EVP_md5(), NULL);
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

__attribute__((format(printf, 3, 4))) static void warn_pos(struct gw_err *err, struct gw_pos pos,
                                                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(err, GW_DIAG_WARN, pos.line, pos.col, NULL, fmt, ap);
    va_end(ap);
}

/* Each consumer's acl groups, for the acl plugin. */
static void consumer_groups(struct gw_snapshot *s)
{
    for (size_t i = 0; i < s->nacls; i++) {
        struct gw_consumer *c = (struct gw_consumer *)s->acls[i].consumer;
        if (c != NULL)
            c->groups.n++;
    }
    for (size_t i = 0; i < s->nconsumers; i++) {
        struct gw_consumer *c = &s->consumers[i];
        c->groups.v = gw_arena_calloc(s->arena, c->groups.n + 1, sizeof(*c->groups.v));
        c->groups.n = 0;
    }
    for (size_t i = 0; i < s->nacls; i++) {
        struct gw_consumer *c = (struct gw_consumer *)s->acls[i].consumer;
        if (c != NULL)
            c->groups.v[c->groups.n++] = s->acls[i].group;
    }
    for (size_t i = 0; i < s->nconsumers; i++) {
        struct gw_consumer *c = &s->consumers[i];
        const char *line = "";
        for (size_t k = 0; k < c->groups.n; k++)
            line = gw_arena_printf(s->arena, "%s%s%s", line, k > 0 ? ", " : "", c->groups.v[k].p);
        c->groups_line = line;
    }
}

/* When each key-auth credential with a ttl was first loaded, by credential id and key digest:
 * kept for the life of the process, so that a reload does not restart a ttl. Written and read
 * while snapshots are built (main thread; the lock is for tests and tools). */
static struct {
    pthread_mutex_t mu;
    struct first_seen {
        char id[GW_UUID_LEN + 1];
        unsigned char digest[32];
        time_t at;
    } * v;
    size_t n, cap;
} first_seen = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

/* "id" + digest: the identity of a credential's key across reloads */
static struct gw_str seen_key(struct gw_arena *a, const char *id, const unsigned char *digest)
{
    char *k = gw_arena_alloc(a, GW_UUID_LEN + 1 + 32);

    memset(k, 0, GW_UUID_LEN + 1);
    memcpy(k, id, strlen(id));
    memcpy(k + GW_UUID_LEN + 1, digest, 32);
    return (struct gw_str){k, GW_UUID_LEN + 1 + 32};
}

static void keyauth_expiry(struct gw_snapshot *s)
{
    time_t now = time(NULL);
    struct gw_arena *tmp;
    struct gw_map *index;
    size_t nttl = 0;

    for (size_t i = 0; i < s->nkeyauth_credentials; i++)
        nttl += s->keyauth_credentials[i].ttl > 0;
    if (nttl == 0)
        return;
    pthread_mutex_lock(&first_seen.mu);
    tmp = gw_arena_new();
    index = gw_map_new(tmp, first_seen.n, false);
    for (size_t j = 0; j < first_seen.n; j++)
        gw_map_put(index, seen_key(tmp, first_seen.v[j].id, first_seen.v[j].digest),
                   (void *)(uintptr_t)(j + 1)); /* positions: the array may move below */
    for (size_t i = 0; i < s->nkeyauth_credentials; i++) {
        struct gw_keyauth_credential *k = &s->keyauth_credentials[i];
        uintptr_t pos;
        if (k->ttl <= 0)
            continue;
        pos = (uintptr_t)gw_map_get(index, seen_key(tmp, k->id, k->digest));
        if (pos == 0) {
            if (first_seen.n == first_seen.cap) {
                first_seen.cap = first_seen.cap != 0 ? first_seen.cap * 2 : 16;
                first_seen.v = gw_xrealloc(first_seen.v, first_seen.cap * sizeof(*first_seen.v));
            }
            memcpy(first_seen.v[first_seen.n].id, k->id, sizeof(k->id));
            memcpy(first_seen.v[first_seen.n].digest, k->digest, 32);
            first_seen.v[first_seen.n].at = now;
            first_seen.n++;
            k->expires_at = (int64_t)now + k->ttl;
        } else {
            k->expires_at = (int64_t)first_seen.v[pos - 1].at + k->ttl;
        }
    }
    gw_arena_free(tmp);
    pthread_mutex_unlock(&first_seen.mu);
}

static struct gw_snapshot *build(const struct gw_yaml *root, struct gw_arena *a, struct gw_err *err)
{
    struct gw_snapshot *s = gw_arena_zalloc(a, sizeof(*s));
    const struct gw_yaml *gw =
        root != NULL && root->type == GW_YAML_MAP ? gw_yaml_get(root, "gateway") : NULL;
    int rc = 0;

    s->arena = a;
    s->doc = root;
    atomic_init(&s->refs, 1);
    rc |= gw_gateway_parse(gw, &s->gateway, a, err);
    rc |= gw_entities_load(root, s, err);
    for (size_t i = 0; rc == 0 && i < s->nupstreams; i++) {
        const struct gw_upstream *u = &s->upstreams[i];
        const struct gw_healthchecks *h = &u->healthchecks;
        bool checks = h->active.healthy.interval != 0 || h->active.unhealthy.interval != 0 ||
                      h->passive.unhealthy.http_failures != 0 ||
                      h->passive.unhealthy.tcp_failures != 0 ||
                      h->passive.unhealthy.timeouts != 0 || h->threshold != 0;
        /* accepted as Kong's, but not acted on until load balancing lands: say so */
        if (u->algorithm != GW_LB_ROUND_ROBIN)
            warn_pos(err, (struct gw_pos){0, 0},
                     "upstream %s: algorithm is not acted on yet: weighted round-robin is used",
                     u->name.p);
        if (checks)
            warn_pos(err, (struct gw_pos){0, 0},
                     "upstream %s: healthchecks are not acted on yet: every target with a "
                     "weight receives traffic",
                     u->name.p);
    }
    for (size_t i = 0; rc == 0 && i < s->nservices; i++)
        if (s->services[i].protocol == GW_PROTO_HTTPS)
            warn_pos(err, s->services[i].pos,
                     "service %s: https upstreams are not available in this build yet; its "
                     "requests are answered 502, never sent in plaintext",
                     s->services[i].name.len > 0 ? s->services[i].name.p : s->services[i].id);
    if (rc == 0 && err->nerr == 0) {
        keyauth_expiry(s);
        consumer_groups(s);
        rc |= gw_chain_compile(s, err);
    }
    if (rc == 0 && err->nerr == 0) {
        s->router = gw_router_compile(s->routes, s->nroutes, a, err);
        if (s->router == NULL)
            rc = -1;
    }
    return rc == 0 && err->nerr == 0 ? s : NULL;
}

struct gw_snapshot *gw_snapshot_load_buf(const char *buf, size_t len, bool json, const char *name,
                                         struct gw_err *err)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_yaml *root;
    struct gw_snapshot *s;

    if (name != NULL)
        err->file = name;
    root = json ? gw_yaml_load_json(buf, len, a, err) : gw_yaml_load_yaml(buf, len, a, err);
    s = root != NULL ? build(root, a, err) : NULL;
    if (s == NULL) {
        gw_arena_free(a);
        return NULL;
    }
    hash_hex(buf, len, s->config_hash);
    return s;
}

struct gw_snapshot *gw_snapshot_load(const char *path, struct gw_err *err)
{
    size_t plen = strlen(path), len = 0;
    bool json;
    char *buf;
    struct gw_snapshot *s;

    err->file = path;
    if (plen >= 5 && strcmp(path + plen - 5, ".json") == 0)
        json = true;
    else if ((plen >= 5 && strcmp(path + plen - 5, ".yaml") == 0) ||
             (plen >= 4 && strcmp(path + plen - 4, ".yml") == 0))
        json = false;
    else {
        gw_err_pos(err, 0, 0, "unknown file type: the name must end in .yaml, .yml or .json");
        return NULL;
    }
    buf = gw_read_file(path, GW_YAML_MAX_FILE_SIZE, &len, err);
    if (buf == NULL)
        return NULL;
    s = gw_snapshot_load_buf(buf, len, json, path, err);
    free(buf);
    return s;
}

void gw_snapshot_acquire(struct gw_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void gw_snapshot_release(struct gw_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        for (size_t i = 0; i < s->nplugins; i++)
            if (s->plugins[i].plugin != NULL && s->plugins[i].plugin->destroy != NULL &&
                s->plugins[i].conf != NULL)
                s->plugins[i].plugin->destroy(s->plugins[i].conf);
        gw_arena_free(s->arena);
    }
}

const struct gw_consumer *gw_snapshot_consumer(const struct gw_snapshot *s, struct gw_str id)
{
    return gw_map_get(s->consumer_by_id, id);
}

const struct gw_consumer *gw_snapshot_consumer_ref(const struct gw_snapshot *s, struct gw_str ref)
{
    const struct gw_consumer *c = gw_map_get(s->consumer_by_id, ref);

    return c != NULL ? c : gw_map_get(s->consumer_by_username, ref);
}

void gw_keyauth_digest(struct gw_str key, unsigned char out[32])
{
    unsigned int n = 0;

    EVP_Digest(key.p, key.len, out, &n, EVP_sha256(), NULL);
}

const struct gw_keyauth_credential *gw_snapshot_keyauth(const struct gw_snapshot *s,
                                                        struct gw_str key)
{
    uint64_t h = gw_siphash24(gw_siphash_process_key(), key.p, key.len);
    const struct gw_keyauth_credential *k =
        gw_map_get(s->keyauth_by_hash, (struct gw_str){(const char *)&h, sizeof(h)});

    if (k == NULL || k->key.len != key.len || CRYPTO_memcmp(k->key.p, key.p, key.len) != 0)
        return NULL;
    return k;
}
