#ifndef GW_CONFIG_JSON_H
#define GW_CONFIG_JSON_H

#include <stddef.h>

struct gw_yaml;

/* The loaded configuration document (`snap->doc`) as compact JSON text with every secret
 * redacted, for `GET /config` on the status listener.
 *
 * Returns a malloc'd, NUL-terminated text ending in a newline; its length (without the NUL) is
 * stored in *len when len != NULL. The caller owns the text and frees it with free(). A NULL
 * document or a null root (empty file, `~`) gives `{}`. Never returns NULL: out-of-memory aborts
 * (gw_xmalloc policy). `doc` is only read. Main thread (or any single thread holding a snapshot
 * reference): it builds a jansson tree, so it is synchronous and may take a few milliseconds on a
 * big document; call it outside the request hot path.
 *
 * Output: map keys in document order; INT as a JSON integer; FLOAT as a JSON real, except
 * .inf/.nan which become their original text as a string; BOOL, NULL and STR as themselves.
 * A string (or key) that is not valid UTF-8 becomes "[invalid utf-8]".
 *
 * Redaction (a redacted value becomes the string "[redacted]"; over-redaction is preferred to
 * a leak):
 * 1. Sensitive keys, compared case-insensitively: key, key_alt, secret, password, passwd,
 *    client_secret, client_jwk, private_key, session_secret, api_key, apikey, access_token,
 *    refresh_token, id_token, token, authorization, proxy-authorization, cookie, set-cookie,
 *    x-api-key; any key containing `secret`, `password`, `passwd`, `passphrase` or `salt`; any key
 *    ending in `_key`, `-key`, `_token` or `-token` unless it contains `public`. The entity
 *    collection `jwt_secrets` (when a list or map) is the exception and is walked normally.
 *    Under a sensitive key a scalar is replaced, and in a list or map every scalar at any
 *    depth is replaced while list lengths and map keys are kept. null stays null.
 * 2. A string that is exactly a vault reference (`{vault://...}`, no spaces or braces inside)
 *    is kept, even under a sensitive key: the document never holds resolved values.
 * 3. Any string (value or key) containing `PRIVATE KEY` (PEM/PGP private keys), any case.
 * 4. Header lines `Name:value` whose trimmed Name is authorization, proxy-authorization,
 *    cookie, set-cookie, x-api-key, apikey or a sensitive key by rule 1, or contains `auth`,
 *    `token`, `cookie` or `session`: `Name:[redacted]`, the name kept as written.
 * 5. Strings starting with `Bearer ` or `Basic ` (any case) are replaced; the password of a
 *    URL's user information (`scheme://user:pass@host`) becomes `[redacted]`, and a user
 *    information without a password (`scheme://token@host`) is replaced whole.
 * Everything else is copied unchanged. */
char *gw_config_json(const struct gw_yaml *doc, size_t *len);

#endif
