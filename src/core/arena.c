#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"

/* Blocks are chained; big allocations get a block of their own so the current block is not
 * wasted. Alignment is that of max_align_t. */
#define ARENA_BLOCK 16384u
#define ARENA_ALIGN _Alignof(max_align_t)

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
};

struct arena_cleanup {
    void (*fn)(void *);
    void *arg;
    struct arena_cleanup *next;
};

struct gw_arena {
    struct arena_block *head;
    struct arena_cleanup *cleanups;
    size_t total;
};

static void oom(void)
{
    fputs("gatehouse: out of memory\n", stderr);
    abort();
}

void *gw_xmalloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);

    if (p == NULL)
        oom();
    return p;
}

void *gw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);

    if (p == NULL)
        oom();
    return p;
}

void *gw_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size != 0 ? size : 1);

    if (q == NULL)
        oom();
    return q;
}

char *gw_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(gw_xmalloc(n), s, n);
}

struct gw_arena *gw_arena_new(void)
{
    return gw_xcalloc(1, sizeof(struct gw_arena));
}

void gw_arena_free(struct gw_arena *a)
{
    if (a == NULL)
        return;
    for (struct arena_cleanup *c = a->cleanups; c != NULL; c = c->next)
        c->fn(c->arg);
    for (struct arena_block *b = a->head, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

void gw_arena_reset(struct gw_arena *a)
{
    struct arena_block *keep = NULL;

    for (struct arena_cleanup *c = a->cleanups; c != NULL; c = c->next)
        c->fn(c->arg);
    a->cleanups = NULL; /* they were allocated from the blocks freed below */
    for (struct arena_block *b = a->head, *next; b != NULL; b = next) {
        next = b->next;
        if (keep == NULL && b->size == ARENA_BLOCK) {
            keep = b;
            continue;
        }
        free(b);
    }
    a->head = keep;
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->total = 0;
}

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = gw_xmalloc(sizeof(*b) + size);

    b->size = size;
    b->used = 0;
    return b;
}

void *gw_arena_alloc(struct gw_arena *a, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct arena_block *b = a->head;

    if (need < size)
        oom();
    a->total += need;
    if (b != NULL && b->size - b->used >= need) {
        void *p = b->data + b->used;
        b->used += need;
        return p;
    }
    if (need > ARENA_BLOCK / 4) {
        /* Big: a dedicated block behind the current one keeps the current one in use. */
        struct arena_block *big = block_new(need);
        big->used = need;
        if (b != NULL) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->data;
    }
    b = block_new(ARENA_BLOCK);
    b->next = a->head;
    a->head = b;
    b->used = need;
    return b->data;
}

void *gw_arena_zalloc(struct gw_arena *a, size_t size)
{
    return memset(gw_arena_alloc(a, size), 0, size);
}

void *gw_arena_calloc(struct gw_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        oom();
    return gw_arena_zalloc(a, n * size);
}

char *gw_arena_strndup(struct gw_arena *a, const char *p, size_t len)
{
    char *s = gw_arena_alloc(a, len + 1);

    if (len != 0)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

struct gw_str gw_arena_str(struct gw_arena *a, struct gw_str s)
{
    return (struct gw_str){gw_arena_strndup(a, s.p, s.len), s.len};
}

char *gw_arena_vprintf(struct gw_arena *a, const char *fmt, va_list ap)
{
    char probe[1];
    va_list ap2;
    int n;
    char *s;

    /* A NULL format would be a bug; never pass it on to vsnprintf. */
    if (fmt == NULL)
        fmt = "";
    va_copy(ap2, ap);
    n = vsnprintf(probe, sizeof(probe), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    s = gw_arena_alloc(a, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *gw_arena_printf(struct gw_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = gw_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return s;
}

void gw_arena_on_free(struct gw_arena *a, void (*fn)(void *), void *arg)
{
    struct arena_cleanup *c = gw_arena_alloc(a, sizeof(*c));

    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t gw_arena_used(const struct gw_arena *a)
{
    return a->total;
}
