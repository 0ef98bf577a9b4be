#ifndef GW_ARENA_H
#define GW_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include "gw/str.h"

/* A region allocator: everything allocated from an arena is freed at once by
 * gw_arena_free(). Allocation aborts the process on out-of-memory (callers check client-driven
 * sizes against configured limits before allocating). Not thread-safe; once a snapshot is
 * built its arena is only read. */
struct gw_arena;

struct gw_arena *gw_arena_new(void);

/* Runs the registered cleanups (last registered first), then frees every block. NULL is ok. */
void gw_arena_free(struct gw_arena *a);

/* Runs the cleanups and empties the arena for reuse, keeping one standard block: what a
 * request's pool does between two requests of a kept-alive connection. */
void gw_arena_reset(struct gw_arena *a);

void *gw_arena_alloc(struct gw_arena *a, size_t size);
void *gw_arena_zalloc(struct gw_arena *a, size_t size);

/* Zeroed array of `n` elements of `size` bytes; aborts on multiplication overflow. */
void *gw_arena_calloc(struct gw_arena *a, size_t n, size_t size);

/* Copies `len` bytes and appends a NUL: the result is a valid C string and a gw_str. */
char *gw_arena_strndup(struct gw_arena *a, const char *p, size_t len);
struct gw_str gw_arena_str(struct gw_arena *a, struct gw_str s);

__attribute__((format(printf, 2, 3))) char *gw_arena_printf(struct gw_arena *a, const char *fmt,
                                                            ...);
char *gw_arena_vprintf(struct gw_arena *a, const char *fmt, va_list ap);

/* Registers fn(arg) to run when the arena is freed (OpenSSL objects, PCRE2 code...). */
void gw_arena_on_free(struct gw_arena *a, void (*fn)(void *), void *arg);

/* Bytes handed out so far (for memory reports). */
size_t gw_arena_used(const struct gw_arena *a);

/* malloc/realloc that abort on out-of-memory. */
void *gw_xmalloc(size_t size);
void *gw_xcalloc(size_t n, size_t size);
void *gw_xrealloc(void *p, size_t size);
char *gw_xstrdup(const char *s);

#endif
