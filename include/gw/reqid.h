#ifndef GW_REQID_H
#define GW_REQID_H

#include <stdbool.h>

#include "gw/str.h"

/* Request ids (X-Request-Id): a fresh UUIDv4 per request, or a trusted peer's id. */

#define GW_REQID_LEN 36     /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define GW_REQID_MAX_IN 200 /* longest id accepted from a trusted peer */

/* Writes a random version-4 UUID, lower-case hex, as 36 characters plus a NUL into `out`.
 * Thread-safe and lock-free: each thread keeps its own generator (xoshiro256**), seeded from
 * getrandom(2) on its first call and again in a child after fork(). Not for secrets: later ids
 * can be predicted from earlier ones; they are for correlation only. Never fails. */
void gw_reqid_new(char out[GW_REQID_LEN + 1]);

/* True when `id`, sent by a trusted peer, may be forwarded and logged as is: 1 to
 * GW_REQID_MAX_IN bytes, each one of A-Z a-z 0-9 and . _ : @ / + = - (so no spaces, quotes,
 * commas, control or non-ASCII bytes). Reads id.p[0..id.len) only. */
bool gw_reqid_acceptable(struct gw_str id);

#endif
