#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/plugin.h"
#include "gw/router.h"

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
