#include <event2/buffer.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/metrics.h"

/* Kong's prometheus plugin buckets: KONG_LATENCY_BUCKETS for the latency the gateway adds,
 * UPSTREAM_LATENCY_BUCKETS for the upstream's and the whole request's. */
const double gw_metric_buckets_gateway_ms[17] = {1,  2,   5,   7,   10,  15,   20,   30,  50,
                                                 75, 100, 200, 500, 750, 1000, 3000, 6000};
const double gw_metric_buckets_upstream_ms[13] = {25,   50,   80,   100,   250,   400,  700,
                                                  1000, 2000, 5000, 10000, 30000, 60000};

struct gw_series {
    struct gw_series *next;  /* the shard's list, newest first: what the scrape walks */
    struct gw_series *hnext; /* the shard's hash chain: its owner thread only */
    uint64_t hash;
    char *key; /* the label pairs as exposed: a="x",b="y" ("" without labels) */
    size_t keylen;
    _Atomic double value;         /* counter and gauge; a histogram's sum */
    atomic_uint_fast64_t *counts; /* histogram: per bucket, not cumulative, then +Inf */
    const struct gw_metric *m;
};

struct shard {
    _Atomic(struct gw_series *) head; /* published with release: the scrape may walk it */
    struct gw_series **table;         /* owner thread only */
    size_t cap, n;
};

struct gw_metric {
    struct gw_metric *next;
    enum gw_metric_type type;
    char *name, *help;
    char *labels[GW_METRIC_MAX_LABELS];
    size_t nlabels;
    double buckets[GW_METRIC_MAX_BUCKETS];
    size_t nbuckets;
    struct shard *shards;
    unsigned nshards;
    gw_metric_collect_fn collect;
    void *arg;
};

struct gw_metric_out {
    const struct gw_metric *m;
    struct evbuffer *buf;
    bool any;
};

static struct {
    pthread_mutex_t mu;
    struct gw_metric *head, *tail;
    unsigned nshards;
} reg = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 1};

static _Thread_local unsigned tl_shard;

/* ---- registry ---------------------------------------------------------------------------- */

static void resize_shards(struct gw_metric *m, unsigned n)
{
    if (n <= m->nshards)
        return;
    m->shards = gw_xrealloc(m->shards, n * sizeof(*m->shards));
    memset(m->shards + m->nshards, 0, (n - m->nshards) * sizeof(*m->shards));
    m->nshards = n;
}

void gw_metrics_init(unsigned nshards)
{
    if (nshards == 0)
        nshards = 1;
    pthread_mutex_lock(&reg.mu);
    reg.nshards = nshards;
    /* families registered before (at configuration load): no other thread records yet */
    for (struct gw_metric *m = reg.head; m != NULL; m = m->next)
        resize_shards(m, nshards);
    pthread_mutex_unlock(&reg.mu);
    tl_shard = nshards - 1;
}

void gw_metrics_set_thread(unsigned shard)
{
    tl_shard = shard;
}

static void free_family(struct gw_metric *m)
{
    for (unsigned i = 0; i < m->nshards; i++) {
        struct gw_series *s = atomic_load(&m->shards[i].head);
        while (s != NULL) {
            struct gw_series *next = s->next;
            free(s->key);
            free(s->counts);
            free(s);
            s = next;
        }
        free(m->shards[i].table);
    }
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->shards);
    free(m->name);
    free(m->help);
    free(m);
}

void gw_metrics_reset(void)
{
    pthread_mutex_lock(&reg.mu);
    while (reg.head != NULL) {
        struct gw_metric *m = reg.head;
        reg.head = m->next;
        free_family(m);
    }
    reg.tail = NULL;
    reg.nshards = 1;
    pthread_mutex_unlock(&reg.mu);
    tl_shard = 0;
}

static bool valid_name(const char *s, bool colon)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colon && *s == ':')))
            return false;
    return true;
}

static struct gw_metric *family_new(enum gw_metric_type type, const char *name, const char *help,
                                    const char *const *labels)
{
    struct gw_metric *m;

    /* names and labels are the program's, not the configuration's: a bad one is a bug */
    if (!valid_name(name, true)) {
        fprintf(stderr, "gatehouse: invalid metric name '%s'\n", name != NULL ? name : "");
        abort();
    }
    m = gw_xcalloc(1, sizeof(*m));
    m->type = type;
    m->name = gw_xstrdup(name);
    m->help = gw_xstrdup(help != NULL ? help : "");
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i++) {
        if (i == GW_METRIC_MAX_LABELS || !valid_name(labels[i], false) ||
            strcmp(labels[i], "le") == 0) {
            fprintf(stderr, "gatehouse: metric %s: invalid label '%s'\n", name, labels[i]);
            abort();
        }
        m->labels[m->nlabels++] = gw_xstrdup(labels[i]);
    }
    return m;
}

/* Returns the family named `name` (registry locked), or NULL. */
static struct gw_metric *find_family(const char *name)
{
    for (struct gw_metric *m = reg.head; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static struct gw_metric *add_family(struct gw_metric *m)
{
    struct gw_metric *old;

    pthread_mutex_lock(&reg.mu);
    old = find_family(m->name);
    if (old == NULL) {
        resize_shards(m, reg.nshards);
        if (reg.tail != NULL)
            reg.tail->next = m;
        else
            reg.head = m;
        reg.tail = m;
    }
    pthread_mutex_unlock(&reg.mu);
    if (old != NULL) {
        if (old->type != m->type || old->nlabels != m->nlabels) {
            fprintf(stderr, "gatehouse: metric %s registered twice differently\n", m->name);
            abort();
        }
        free_family(m);
        return old;
    }
    return m;
}

struct gw_metric *gw_metric_register(enum gw_metric_type type, const char *name, const char *help,
                                     const char *const *labels, const double *buckets,
                                     size_t nbuckets)
{
    struct gw_metric *m = family_new(type, name, help, labels);

    if (type == GW_METRIC_HISTOGRAM) {
        if (nbuckets > GW_METRIC_MAX_BUCKETS) {
            fprintf(stderr, "gatehouse: metric %s: too many buckets\n", name);
            abort();
        }
        for (size_t i = 0; i < nbuckets; i++) {
            if (i > 0 && !(buckets[i] > buckets[i - 1])) {
                fprintf(stderr, "gatehouse: metric %s: buckets must ascend\n", name);
                abort();
            }
            m->buckets[i] = buckets[i];
        }
        m->nbuckets = nbuckets;
    }
    return add_family(m);
}

struct gw_metric *gw_metric_register_collector(enum gw_metric_type type, const char *name,
                                               const char *help, const char *const *labels,
                                               gw_metric_collect_fn fn, void *arg)
{
    struct gw_metric *m = family_new(type, name, help, labels);

    if (type == GW_METRIC_HISTOGRAM) {
        fprintf(stderr, "gatehouse: metric %s: a collector cannot be a histogram\n", name);
        abort();
    }
    m->collect = fn;
    m->arg = arg;
    return add_family(m);
}

/* ---- label text ---------------------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    char small[256];
};

static void text_put(struct text *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *np = gw_xmalloc(cap);
        memcpy(np, t->p, t->len);
        if (t->p != t->small)
            free(t->p);
        t->p = np;
        t->cap = cap;
    }
    memcpy(t->p + t->len, p, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_escaped(struct text *t, const char *s, bool quote)
{
    for (const char *run = s;; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && quote)
            rep = "\\\"";
        if (rep != NULL || *s == '\0') {
            text_put(t, run, (size_t)(s - run));
            if (*s == '\0')
                return;
            text_put(t, rep, strlen(rep));
            run = s + 1;
        }
    }
}

/* a="x",b="y" for `values`, as the exposition writes them */
static void label_text(struct text *t, const struct gw_metric *m, const char *const *values)
{
    t->p = t->small;
    t->len = 0;
    t->cap = sizeof(t->small);
    t->small[0] = '\0';
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i > 0)
            text_put(t, ",", 1);
        text_put(t, m->labels[i], strlen(m->labels[i]));
        text_put(t, "=\"", 2);
        text_escaped(t, values != NULL && values[i] != NULL ? values[i] : "", true);
        text_put(t, "\"", 1);
    }
}

static void text_dispose(struct text *t)
{
    if (t->p != t->small)
        free(t->p);
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* ---- recording ----------------------------------------------------------------------------- */

static void table_insert(struct shard *sh, struct gw_series *s)
{
    if (sh->n + 1 > sh->cap) { /* grow: rehash the chains */
        size_t cap = sh->cap != 0 ? sh->cap * 2 : 16;
        struct gw_series **t = gw_xcalloc(cap, sizeof(*t));
        for (size_t i = 0; i < sh->cap; i++) {
            for (struct gw_series *e = sh->table[i], *next; e != NULL; e = next) {
                next = e->hnext;
                e->hnext = t[e->hash & (cap - 1)];
                t[e->hash & (cap - 1)] = e;
            }
        }
        free(sh->table);
        sh->table = t;
        sh->cap = cap;
    }
    s->hnext = sh->table[s->hash & (sh->cap - 1)];
    sh->table[s->hash & (sh->cap - 1)] = s;
    sh->n++;
}

struct gw_series *gw_metric_series(struct gw_metric *m, const char *const *values)
{
    struct shard *sh = &m->shards[tl_shard < m->nshards ? tl_shard : 0];
    struct text t;
    struct gw_series *s;
    uint64_t h;

    label_text(&t, m, values);
    h = hash_bytes(t.p, t.len);
    if (sh->cap != 0)
        for (s = sh->table[h & (sh->cap - 1)]; s != NULL; s = s->hnext)
            if (s->hash == h && s->keylen == t.len && memcmp(s->key, t.p, t.len) == 0) {
                text_dispose(&t);
                return s;
            }
    s = gw_xcalloc(1, sizeof(*s));
    s->m = m;
    s->hash = h;
    s->keylen = t.len;
    s->key = gw_xmalloc(t.len + 1);
    memcpy(s->key, t.p, t.len + 1);
    text_dispose(&t);
    atomic_init(&s->value, 0.0);
    if (m->type == GW_METRIC_HISTOGRAM) {
        s->counts = gw_xcalloc(m->nbuckets + 1, sizeof(*s->counts));
        for (size_t i = 0; i <= m->nbuckets; i++)
            atomic_init(&s->counts[i], 0);
    }
    table_insert(sh, s);
    s->next = atomic_load_explicit(&sh->head, memory_order_relaxed);
    atomic_store_explicit(&sh->head, s, memory_order_release);
    return s;
}

void gw_series_add(struct gw_series *s, double v)
{
    atomic_store_explicit(&s->value, atomic_load_explicit(&s->value, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void gw_series_set(struct gw_series *s, double v)
{
    atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void gw_series_observe(struct gw_series *s, double v)
{
    const struct gw_metric *m = s->m;
    size_t i = 0;

    while (i < m->nbuckets && v > m->buckets[i]) /* le is inclusive */
        i++;
    gw_stat_add(&s->counts[i], 1);
    gw_series_add(s, v);
}

void gw_metric_add(struct gw_metric *m, const char *const *values, double v)
{
    gw_series_add(gw_metric_series(m, values), v);
}

/* ---- exposition ----------------------------------------------------------------------------- */

/* The shortest text that reads back as `v` (integers without a fraction) into buf[40]. */
static const char *fmt_value(char *buf, size_t size, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static void put_value(struct evbuffer *b, double v)
{
    char buf[40];
    const char *t = fmt_value(buf, sizeof(buf), v);

    evbuffer_add(b, t, strlen(t));
}

static void put_head(struct evbuffer *b, const struct gw_metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    struct text t = {.p = NULL};

    t.p = t.small;
    t.cap = sizeof(t.small);
    t.small[0] = '\0';
    text_escaped(&t, m->help, false);
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, t.p, m->name, types[m->type]);
    text_dispose(&t);
}

static void put_sample(struct evbuffer *b, const char *name, const char *suffix, const char *key,
                       size_t keylen, const char *extra, double v)
{
    evbuffer_add_printf(b, "%s%s", name, suffix);
    if (keylen > 0 || extra != NULL) {
        evbuffer_add(b, "{", 1);
        evbuffer_add(b, key, keylen);
        if (extra != NULL)
            evbuffer_add_printf(b, "%s%s", keylen > 0 ? "," : "", extra);
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, " ", 1);
    put_value(b, v);
    evbuffer_add(b, "\n", 1);
}

void gw_metric_emit(struct gw_metric_out *out, const char *const *values, double v)
{
    struct text t;

    if (!out->any)
        put_head(out->buf, out->m);
    out->any = true;
    label_text(&t, out->m, values);
    put_sample(out->buf, out->m->name, "", t.p, t.len, NULL, v);
    text_dispose(&t);
}

/* One series summed over the shards. */
struct merged {
    const struct gw_series *first; /* key and hash */
    double value;
    uint64_t *counts;
};

static void put_merged(struct evbuffer *b, const struct gw_metric *m, const struct merged *x)
{
    const char *key = x->first->key;
    size_t keylen = x->first->keylen;
    uint64_t cum = 0;
    char le[64], num[40];

    if (m->type != GW_METRIC_HISTOGRAM) {
        put_sample(b, m->name, "", key, keylen, NULL, x->value);
        return;
    }
    /* cumulative buckets and a count derived from them: consistent even while workers record */
    for (size_t i = 0; i <= m->nbuckets; i++) {
        cum += x->counts[i];
        snprintf(le, sizeof(le), "le=\"%s\"",
                 i < m->nbuckets ? fmt_value(num, sizeof(num), m->buckets[i]) : "+Inf");
        put_sample(b, m->name, "_bucket", key, keylen, le, (double)cum);
    }
    put_sample(b, m->name, "_sum", key, keylen, NULL, x->value);
    put_sample(b, m->name, "_count", key, keylen, NULL, (double)cum);
}

static int cmp_merged(const void *a, const void *b)
{
    return strcmp(((const struct merged *)a)->first->key, ((const struct merged *)b)->first->key);
}

static void scrape_family(struct evbuffer *b, const struct gw_metric *m)
{
    size_t total = 0, cap, nout = 0;
    struct merged *out, **slots;

    for (unsigned i = 0; i < m->nshards; i++)
        for (struct gw_series *s = atomic_load_explicit(&m->shards[i].head, memory_order_acquire);
             s != NULL; s = s->next)
            total++;
    if (total == 0)
        return;
    for (cap = 16; cap < total * 2; cap *= 2)
        ;
    slots = gw_xcalloc(cap, sizeof(*slots));
    out = gw_xcalloc(total, sizeof(*out));
    for (unsigned i = 0; i < m->nshards; i++) {
        struct gw_series *s = atomic_load_explicit(&m->shards[i].head, memory_order_acquire);
        for (size_t seen = 0; s != NULL && seen < total; s = s->next, seen++) {
            size_t h = s->hash & (cap - 1);
            struct merged *x;
            while (slots[h] != NULL &&
                   !(slots[h]->first->hash == s->hash && slots[h]->first->keylen == s->keylen &&
                     memcmp(slots[h]->first->key, s->key, s->keylen) == 0))
                h = (h + 1) & (cap - 1);
            if (slots[h] == NULL) {
                if (nout == total)
                    break; /* created since the count: the next scrape shows it */
                x = &out[nout++];
                x->first = s;
                if (m->type == GW_METRIC_HISTOGRAM)
                    x->counts = gw_xcalloc(m->nbuckets + 1, sizeof(*x->counts));
                slots[h] = x;
            }
            x = slots[h];
            x->value += atomic_load_explicit(&s->value, memory_order_relaxed);
            for (size_t k = 0; x->counts != NULL && k <= m->nbuckets; k++)
                x->counts[k] += atomic_load_explicit(&s->counts[k], memory_order_relaxed);
        }
    }
    put_head(b, m);
    /* sorted by labels: stable from scrape to scrape whichever worker saw a series first */
    qsort(out, nout, sizeof(*out), cmp_merged);
    for (size_t i = 0; i < nout; i++) {
        put_merged(b, m, &out[i]);
        free(out[i].counts);
    }
    free(out);
    free(slots);
}

void gw_metrics_scrape(struct evbuffer *b)
{
    pthread_mutex_lock(&reg.mu);
    for (struct gw_metric *m = reg.head; m != NULL; m = m->next) {
        if (m->collect != NULL) {
            struct gw_metric_out o = {m, b, false};
            m->collect(&o, m->arg);
        } else {
            scrape_family(b, m);
        }
    }
    pthread_mutex_unlock(&reg.mu);
}
