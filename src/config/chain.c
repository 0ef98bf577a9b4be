#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/map.h"
#include "gw/plugin.h"

/* Which plugin instances apply to a route, decided once per snapshot (Kong decides on every
 * request, K:kong/runloop/plugins_iterator.lua). For each plugin name at most one instance
 * applies; the most specific wins: route+service+consumer, route+consumer, service+consumer,
 * route+service, consumer, route, service, global. The instances without a consumer are
 * resolved here per route and protocol; the consumer-scoped ones are looked up by key when
 * the consumer is known, so that costs a few hash lookups and only where such instances
 * exist. Disabled instances are ignored, so a less specific one applies instead, as Kong. */

static struct gw_str scope_key(struct gw_arena *a, const char *name, const struct gw_route *rt,
                               const struct gw_service *sv, const struct gw_consumer *c)
{
    return gw_str_c(gw_arena_printf(a, "%s|%s|%s|%s", name, rt != NULL ? rt->id : "",
                                    sv != NULL ? sv->id : "", c != NULL ? c->id : ""));
}

/* Kong's order: priority descending, ties by name reverse-lexicographic. */
static int cmp_entries(const void *a, const void *b)
{
    const struct gw_plugin *x = ((const struct gw_chain_entry *)a)->plugin;
    const struct gw_plugin *y = ((const struct gw_chain_entry *)b)->plugin;

    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return -strcmp(x->name, y->name);
}

/* Specificity of an instance without a consumer for `rt`: 4 route+service, 3 route, 2
 * service, 1 global; 0 when it does not apply. */
static int base_level(const struct gw_plugin_instance *p, const struct gw_route *rt)
{
    if (p->consumer != NULL)
        return 0;
    if (p->route != NULL && p->route != rt)
        return 0;
    if (p->service != NULL && p->service != rt->service)
        return 0;
    if (p->route != NULL)
        return p->service != NULL ? 4 : 3;
    return p->service != NULL ? 2 : 1;
}

static bool consumer_may_apply(const struct gw_plugin_instance *p, const struct gw_route *rt)
{
    return p->consumer != NULL && (p->route == NULL || p->route == rt) &&
           (p->service == NULL || p->service == rt->service);
}

int gw_chain_compile(struct gw_snapshot *s, struct gw_err *err)
{
    struct gw_arena *a = s->arena;
    const struct gw_plugin **names;
    size_t nnames = 0, nscoped = 0;

    for (size_t i = 0; i < s->nplugins; i++)
        nscoped += s->plugins[i].consumer != NULL && s->plugins[i].enabled;
    s->plugin_by_scope = gw_map_new(a, nscoped, false);
    if (s->nplugins == 0)
        return 0;
    {
        size_t cap = 0, n = 0;
        struct gw_str *v = NULL;
        for (size_t i = 0; i < s->nplugins; i++) {
            const struct gw_plugin_instance *p = &s->plugins[i];
            const struct gw_strv *q =
                p->plugin != NULL && p->plugin->query_secrets != NULL && p->conf != NULL
                    ? p->plugin->query_secrets(p->conf)
                    : NULL;
            for (size_t k = 0; q != NULL && k < q->n; k++) {
                if (n == cap) {
                    struct gw_str *nv;
                    cap = cap != 0 ? cap * 2 : 8;
                    nv = gw_arena_calloc(a, cap, sizeof(*nv));
                    if (n > 0)
                        memcpy(nv, v, n * sizeof(*v));
                    v = nv;
                }
                v[n++] = q->v[k];
            }
        }
        s->secret_query_args.v = v;
        s->secret_query_args.n = n;
    }
    /* The rewrite phase is not run by this build (no compiled-in plugin has one): a plugin
     * that had one would be refused here rather than half run. */
    for (size_t i = 0; i < s->nplugins; i++) {
        const struct gw_plugin *pl = s->plugins[i].plugin;
        if (pl != NULL && pl->rewrite != NULL) {
            gw_err_pos(err, s->plugins[i].pos.line, s->plugins[i].pos.col,
                       "plugin '%s': its rewrite phase is not supported by this build", pl->name);
            return -1;
        }
    }
    /* the distinct plugins configured, enabled or not */
    names = gw_xcalloc(s->nplugins, sizeof(*names));
    for (size_t i = 0; i < s->nplugins; i++) {
        const struct gw_plugin_instance *p = &s->plugins[i];
        bool seen = false;
        if (p->plugin == NULL)
            continue;
        for (size_t k = 0; k < nnames && !seen; k++)
            seen = names[k] == p->plugin;
        if (!seen)
            names[nnames++] = p->plugin;
        if (p->consumer != NULL && p->enabled)
            gw_map_put(s->plugin_by_scope,
                       scope_key(a, p->plugin->name, p->route, p->service, p->consumer), (void *)p);
    }
    for (size_t r = 0; r < s->nroutes; r++) {
        struct gw_route *rt = &s->routes[r];
        struct gw_chain_entry *e = gw_arena_calloc(a, nnames, sizeof(*e));
        struct gw_chain *ch;
        size_t n = 0;
        bool wants_body = false;
        for (size_t k = 0; k < nnames; k++) {
            struct gw_chain_entry x = {names[k], {NULL, NULL}, {0, 0}, false, 0};
            int best[2] = {0, 0};
            for (size_t i = 0; i < s->nplugins; i++) {
                const struct gw_plugin_instance *p = &s->plugins[i];
                int lvl;
                if (p->plugin != names[k] || !p->enabled)
                    continue;
                if (consumer_may_apply(p, rt)) {
                    x.by_consumer = true;
                    wants_body |= p->plugin->wants_body != NULL && p->plugin->wants_body(p->conf);
                    continue;
                }
                lvl = base_level(p, rt);
                for (int proto = 0; proto < 2; proto++) {
                    unsigned want = proto == 0 ? GW_PROTO_HTTP : GW_PROTO_HTTPS;
                    if (lvl > best[proto] && (p->protocols & want) != 0) {
                        best[proto] = lvl;
                        x.base[proto] = p;
                        x.base_route_service[proto] = lvl == 4;
                    }
                }
            }
            for (int proto = 0; proto < 2; proto++)
                wants_body |= x.base[proto] != NULL && names[k]->wants_body != NULL &&
                              names[k]->wants_body(x.base[proto]->conf);
            if (x.base[0] != NULL || x.base[1] != NULL || x.by_consumer)
                e[n++] = x;
        }
        if (n == 0)
            continue;
        qsort(e, n, sizeof(*e), cmp_entries);
        ch = gw_arena_zalloc(a, sizeof(*ch));
        ch->e = e;
        ch->n = n;
        ch->wants_body = wants_body;
        for (size_t k = 0; k < n; k++) {
            e[k].ctx_off = ch->ctx_size;
            ch->ctx_size += (e[k].plugin->ctx_size + 15) & ~(size_t)15;
            ch->header_filter |= e[k].plugin->header_filter != NULL;
        }
        rt->chain = ch;
    }
    free(names);
    return 0;
}

static const struct gw_plugin_instance *
by_scope(const struct gw_snapshot *s, const struct gw_chain_entry *e, const struct gw_route *rt,
         const struct gw_service *sv, const struct gw_consumer *c, unsigned want)
{
    /* the key scope_key() builds, on the stack: this runs per request */
    char key[4 * (GW_UUID_LEN + 1) + 64];
    int n = snprintf(key, sizeof(key), "%s|%s|%s|%s", e->plugin->name, rt != NULL ? rt->id : "",
                     sv != NULL ? sv->id : "", c->id);
    const struct gw_plugin_instance *p;

    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    p = gw_map_get(s->plugin_by_scope, (struct gw_str){key, (size_t)n});
    return p != NULL && (p->protocols & want) != 0 ? p : NULL;
}

const struct gw_plugin_instance *gw_chain_select(const struct gw_snapshot *s,
                                                 const struct gw_route *rt,
                                                 const struct gw_chain_entry *e,
                                                 const struct gw_consumer *consumer, bool tls)
{
    const struct gw_service *sv = rt->service;
    unsigned want = tls ? GW_PROTO_HTTPS : GW_PROTO_HTTP;
    const struct gw_plugin_instance *p = NULL;
    int proto = tls ? 1 : 0;

    if (!e->by_consumer || consumer == NULL)
        return e->base[proto];
    /* route+service+consumer, route+consumer, service+consumer */
    if (sv != NULL && (p = by_scope(s, e, rt, sv, consumer, want)) != NULL)
        return p;
    if ((p = by_scope(s, e, rt, NULL, consumer, want)) != NULL)
        return p;
    if (sv != NULL && (p = by_scope(s, e, NULL, sv, consumer, want)) != NULL)
        return p;
    /* route+service outranks the consumer alone; route, service and global do not */
    if (e->base_route_service[proto])
        return e->base[proto];
    if ((p = by_scope(s, e, NULL, NULL, consumer, want)) != NULL)
        return p;
    return e->base[proto];
}
