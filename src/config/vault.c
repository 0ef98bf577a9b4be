#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"

/* `{vault://env/NAME}` as a whole string value. Kong's env vault reads the environment
 * variable upper(NAME) with `-` turned into `_`; an optional `/<key>` after the name is not
 * supported by the env vault for plain values and is refused here. */
#define VAULT_PREFIX "{vault://"
#define VAULT_MAX_NAME 256

int gw_vault_resolve(struct gw_str s, const char *path, const struct gw_yaml *node,
                     struct gw_arena *a, struct gw_err *err, struct gw_str *out)
{
    const size_t plen = sizeof(VAULT_PREFIX) - 1;
    char var[VAULT_MAX_NAME + 1];
    struct gw_str rest;
    const char *val;
    size_t n;

    if (s.len < plen + 1 || memcmp(s.p, VAULT_PREFIX, plen) != 0 || s.p[s.len - 1] != '}')
        return 0;
    rest = (struct gw_str){s.p + plen, s.len - plen - 1};
    if (rest.len < 5 || memcmp(rest.p, "env/", 4) != 0)
        return gw_err_at(err, node, path,
                         "unsupported vault reference: only {vault://env/NAME} is available");
    rest.p += 4;
    rest.len -= 4;
    if (rest.len > VAULT_MAX_NAME)
        return gw_err_at(err, node, path, "vault reference name too long");
    for (n = 0; n < rest.len; n++) {
        char c = rest.p[n];
        if (c == '-')
            c = '_';
        else if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return gw_err_at(err, node, path, "invalid vault reference: bad character in '%.*s'",
                             (int)rest.len, rest.p);
        var[n] = c;
    }
    var[n] = '\0';
    val = getenv(var);
    if (val == NULL)
        return gw_err_at(err, node, path,
                         "vault reference {vault://env/%.*s}: environment variable %s is not set",
                         (int)rest.len, rest.p, var);
    *out = gw_arena_str(a, gw_str_c(val));
    return 1;
}
