#ifndef GW_BODY_H
#define GW_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "gw/str.h"

/* Request bodies and query strings as plugins read and rewrite them (key-auth's key_in_body,
 * request-transformer): application/x-www-form-urlencoded (also the query string), JSON
 * (through jansson, in the plugin) and multipart/form-data. Parsing never changes its input;
 * rewriting keeps what it does not touch byte for byte. Results are allocated from `a`. */

struct gw_arena;

enum gw_body_kind {
    GW_BODY_OTHER,
    GW_BODY_FORM,      /* application/x-www-form-urlencoded */
    GW_BODY_JSON,      /* application/json */
    GW_BODY_MULTIPART, /* multipart/form-data */
};

/* What a Content-Type says (Kong: the type contained in it, case-insensitive). */
enum gw_body_kind gw_body_kind(struct gw_str content_type);

/* Percent-decoding with '+' as a space (form encoding). */
struct gw_str gw_urldecode(struct gw_arena *a, struct gw_str s);

/* Argument `name` of a form or query string: how many times it occurs (names compared after
 * decoding); *value receives the first, decoded: "" for `name=`, .p == NULL for `name` alone. */
size_t gw_urlencoded_get(struct gw_arena *a, struct gw_str text, const char *name,
                         struct gw_str *value);

/* `text` without any `name` argument; the others kept as written, in order. */
struct gw_str gw_urlencoded_remove(struct gw_arena *a, struct gw_str text, struct gw_str name);

/* One part of a multipart/form-data body. */
struct gw_part {
    struct gw_str name;    /* from Content-Disposition, "" when absent */
    struct gw_str head;    /* the part's header lines, as received (ends with CRLF CRLF) */
    struct gw_str content; /* its content */
};

/* Splits `body` by the boundary of `content_type`. Returns the number of parts and sets *parts
 * and *boundary, or -1 for a body that is not well-formed multipart. */
int gw_multipart_parse(struct gw_arena *a, struct gw_str body, struct gw_str content_type,
                       struct gw_part **parts, struct gw_str *boundary);

/* The body made of `parts` with `boundary`. */
struct gw_str gw_multipart_build(struct gw_arena *a, struct gw_str boundary,
                                 const struct gw_part *parts, size_t n);

#endif
