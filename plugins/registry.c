#include <string.h>

#include "gw/plugin.h"

extern const struct gw_plugin gw_plugin_acl;
extern const struct gw_plugin gw_plugin_cors;
extern const struct gw_plugin gw_plugin_jwt;
extern const struct gw_plugin gw_plugin_key_auth;
extern const struct gw_plugin gw_plugin_request_transformer;
extern const struct gw_plugin gw_plugin_request_transformer_advanced;
extern const struct gw_plugin gw_plugin_response_transformer;

/* The only list of compiled-in plugins. Adding a plugin: add its descriptor here. */
const struct gw_plugin *const gw_plugins[] = {
    &gw_plugin_acl,
    &gw_plugin_cors,
    &gw_plugin_jwt,
    &gw_plugin_key_auth,
    &gw_plugin_request_transformer,
    &gw_plugin_request_transformer_advanced,
    &gw_plugin_response_transformer,
    NULL,
};

const struct gw_plugin *gw_plugin_find(const char *name, size_t len)
{
    for (size_t i = 0; gw_plugins[i] != NULL; i++) {
        if (strlen(gw_plugins[i]->name) == len && memcmp(gw_plugins[i]->name, name, len) == 0)
            return gw_plugins[i];
    }
    return NULL;
}
