#include <string.h>

#include "gw/arena.h"
#include "gw/map.h"

struct map_slot {
    struct gw_str key;
    unsigned long long hash;
    void *val; /* NULL: empty */
};

struct gw_map {
    struct gw_arena *arena;
    struct map_slot *slots;
    size_t cap, count; /* cap is a power of two, load kept under 1/2 */
    bool nocase;
};

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;

    while (c < n)
        c <<= 1;
    return c;
}

struct gw_map *gw_map_new(struct gw_arena *a, size_t expected, bool nocase)
{
    struct gw_map *m = gw_arena_zalloc(a, sizeof(*m));

    m->arena = a;
    m->nocase = nocase;
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slots = gw_arena_calloc(a, m->cap, sizeof(*m->slots));
    return m;
}

static bool key_eq(const struct gw_map *m, struct gw_str a, struct gw_str b)
{
    return m->nocase ? gw_str_caseeq(a, b) : gw_str_eq(a, b);
}

static struct map_slot *find(const struct gw_map *m, struct gw_str key, unsigned long long h)
{
    size_t mask = m->cap - 1;

    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct map_slot *s = &m->slots[i];
        if (s->val == NULL || (s->hash == h && key_eq(m, s->key, key)))
            return s;
    }
}

static void grow(struct gw_map *m)
{
    struct map_slot *old = m->slots;
    size_t oldcap = m->cap;

    /* The old array stays in the arena until it is freed: growth is rare at build time. */
    m->cap *= 2;
    m->slots = gw_arena_calloc(m->arena, m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].val != NULL)
            *find(m, old[i].key, old[i].hash) = old[i];
}

void *gw_map_put(struct gw_map *m, struct gw_str key, void *val)
{
    unsigned long long h = gw_hash(key.p, key.len, m->nocase);
    struct map_slot *s;

    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    s = find(m, key, h);
    if (s->val != NULL)
        return s->val;
    s->key = key;
    s->hash = h;
    s->val = val;
    m->count++;
    return NULL;
}

void *gw_map_get(const struct gw_map *m, struct gw_str key)
{
    if (m == NULL || m->count == 0)
        return NULL;
    return find(m, key, gw_hash(key.p, key.len, m->nocase))->val;
}
