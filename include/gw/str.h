#ifndef GW_STR_H
#define GW_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A string view: not NUL-terminated unless said so. The bytes belong to someone else (the
 * snapshot arena, a request pool, or a string literal). */
struct gw_str {
    const char *p;
    size_t len;
};

#define GW_STR_NULL ((struct gw_str){NULL, 0})
#define GW_STR_LIT(s) ((struct gw_str){(s), sizeof(s) - 1})

static inline struct gw_str gw_str_c(const char *s)
{
    return (struct gw_str){s, s != NULL ? strlen(s) : 0};
}

static inline bool gw_str_eq(struct gw_str a, struct gw_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool gw_str_eqc(struct gw_str a, const char *b)
{
    return gw_str_eq(a, gw_str_c(b));
}

/* ASCII case-insensitive comparison (header names, host names). */
bool gw_str_caseeq(struct gw_str a, struct gw_str b);

/* ASCII lower-case of one byte. */
static inline char gw_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* 64-bit FNV-1a of the bytes, optionally lower-cased first (for case-insensitive tables). */
unsigned long long gw_hash(const char *p, size_t len, bool lower);

#endif
