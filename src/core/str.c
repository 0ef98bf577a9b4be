#include "gw/str.h"

bool gw_str_caseeq(struct gw_str a, struct gw_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (gw_lower(a.p[i]) != gw_lower(b.p[i]))
            return false;
    return true;
}

unsigned long long gw_hash(const char *p, size_t len, bool lower)
{
    unsigned long long h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)(lower ? gw_lower(p[i]) : p[i]);
        h *= 1099511628211ull;
    }
    return h;
}
