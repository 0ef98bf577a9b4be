#include <string.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/yaml.h"

/* acl: lets a consumer through by the groups of its `acls` entries (Kong's acl, priority 950,
 * after every auth plugin; docs/plugins.md). With `allow`, a consumer in none of the groups is
 * refused; with `deny`, one in any of them. */

struct acl_conf {
    struct gw_strv groups; /* allow or deny, whichever is set */
    bool deny;
    bool hide_groups_header, always_use_authenticated_groups;
};

static void *acl_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                       struct gw_err *err)
{
    static const char *const known[] = {"allow", "deny", "hide_groups_header",
                                        "always_use_authenticated_groups", NULL};
    struct acl_conf *c = gw_arena_zalloc(a, sizeof(*c));
    struct gw_strv allow = {NULL, 0}, deny = {NULL, 0};
    int rc = 0;

    rc |= gw_pconf_check(node, path, known, a, err);
    rc |= gw_pconf_strv(node, "allow", path, NULL, 0, &allow, a, err);
    rc |= gw_pconf_strv(node, "deny", path, NULL, 0, &deny, a, err);
    rc |= gw_pconf_bool(node, "hide_groups_header", path, &c->hide_groups_header, a, err);
    rc |= gw_pconf_bool(node, "always_use_authenticated_groups", path,
                        &c->always_use_authenticated_groups, a, err);
    if (rc != 0)
        return NULL;
    /* Kong's entity checks, with its messages */
    if (allow.n > 0 && deny.n > 0) {
        gw_err_at(err, node, path,
                  "only one of these fields must be non-empty: 'config.allow', 'config.deny'");
        return NULL;
    }
    if (allow.n == 0 && deny.n == 0) {
        gw_err_at(err, node, path,
                  "at least one of these fields must be non-empty: 'config.allow', "
                  "'config.deny'");
        return NULL;
    }
    c->deny = deny.n > 0;
    c->groups = c->deny ? deny : allow;
    return c;
}

static bool in_groups(const struct gw_strv *want, const struct gw_strv *have)
{
    for (size_t i = 0; i < want->n; i++)
        for (size_t k = 0; k < have->n; k++)
            if (gw_str_eq(want->v[i], have->v[k]))
                return true;
    return false;
}

static enum gw_rc acl_access(struct gw_req *r, const void *conf, void *ctx)
{
    const struct acl_conf *c = conf;
    const struct gw_consumer *who = gw_req_consumer(r);
    bool blocked;

    /* Groups come from the consumer's acls. gatehouse has no plugin that authenticates groups
     * without a consumer (Kong's LDAP), so always_use_authenticated_groups changes nothing. */
    if (who == NULL)
        return gw_req_exit(r, 401, NULL, NULL);
    if (who->groups.n == 0 && !c->deny) {
        if (gw_req_authenticated(r))
            return gw_req_exit(r, 403, "You cannot consume this service", NULL);
        return gw_req_exit(r, 401, NULL, NULL);
    }
    blocked = in_groups(&c->groups, &who->groups);
    if (!c->deny)
        blocked = !blocked;
    if (blocked)
        return gw_req_exit(r, 403, "You cannot consume this service", NULL);
    if (!c->hide_groups_header)
        gw_req_set_header(r, "X-Consumer-Groups", gw_str_c(who->groups_line));
    return GW_OK;
}

const struct gw_plugin gw_plugin_acl = {
    .name = "acl",
    .priority = 950,
    .consumer_scoped = false,
    .parse = acl_parse,
    .access = acl_access,
};
