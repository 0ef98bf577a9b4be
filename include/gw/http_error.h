#ifndef GW_HTTP_ERROR_H
#define GW_HTTP_ERROR_H

#include <event2/buffer.h>

#include "gw/str.h"

/* Gateway-generated responses (404 no route, 401/403 from auth plugins, 502/503/504 from the
 * proxy, 400/408/413/414/431 for bad client input), byte for byte as Kong 3.x renders them
 * (K:kong/tools/http.lua, K:kong/pdk/response.lua, K:kong/error_handlers.lua).
 * Every function here is pure, never blocks, and is safe to call from any thread. */

enum gw_body_type { GW_BODY_JSON, GW_BODY_HTML, GW_BODY_XML, GW_BODY_TEXT };

/* Picks the body type from a request's Accept value, as Kong's get_response_type(): the value
 * is split on ',', each element is matched against Kong's media-range grammar (elements that
 * do not match are skipped), q defaults to 1, and the first element with the strictly highest
 * q wins (so q=0 never wins and ties go to the earlier element). The winning media range maps,
 * case-sensitively as in Kong, as follows (wildcards written (*) here):
 *   application/json, application/(*), (*)/(*)  -> JSON
 *   text/html -> HTML;  application/xml -> XML;  text/plain, text/(*) -> TEXT
 *   anything else (text/xml, application/grpc, TEXT/HTML, image/png...) -> `dflt`
 * so an unsupported range with the top q gives `dflt` even when a supported one came lower.
 * An empty `accept`, or one with no usable element, gives `dflt`. Join several Accept headers
 * with ',' first, as Kong does. `accept` is untrusted client input: any bytes are fine, the
 * work is linear in accept.len, nothing is allocated. */
enum gw_body_type gw_error_negotiate(struct gw_str accept, enum gw_body_type dflt);

/* Maps gateway.error_default_type ("application/json", "text/html", "application/xml",
 * "text/plain", compared exactly) to a body type; anything else gives `dflt`. */
enum gw_body_type gw_body_type_from_mime(struct gw_str mime, enum gw_body_type dflt);

/* The reason phrase for a status line (RFC 9110 names, plus 102, 103, 207, 208, 226, 421-429,
 * 431, 451, 506-511 from their RFCs), e.g. 413 "Content Too Large"; "Unknown" for any other
 * status. Returns a static string. */
const char *gw_status_reason(int status);

/* Kong's default error message for `status` (the table of kong.response.error(), plus 494 from
 * Kong's nginx error handler), e.g. 404 "Not found", 502 "An invalid response was received
 * from the upstream server". 431 gives "Request header or cookie too large", the text Kong
 * sends (as a 400) for an oversize header block. Statuses without an entry, 100-599, give
 * "The upstream server responded with <status>"; statuses outside 100-599 give 500's message.
 * Returns a static string. */
const char *gw_error_default_message(int status);

/* Appends an error body to `out` and returns its Content-Type (a static string):
 *   GW_BODY_JSON  {\n  "message":"<msg>",\n  "request_id":"<id>"\n}   (no final newline)
 *   GW_BODY_TEXT  <msg>\nrequest_id: <id>\n
 *   GW_BODY_HTML  Kong's HTML page, with "<p><msg>.</p>" and "<p>request_id: <id></p>"
 *   GW_BODY_XML   Kong's <?xml ...?><error><message>..</message><requestid>..</requestid>...
 * with Content-Types "application/json; charset=utf-8", "text/plain; charset=utf-8",
 * "text/html; charset=utf-8" and "application/xml; charset=utf-8"; an out-of-range `t` is
 * treated as JSON. Kong pastes the message in unescaped; gatehouse escapes it (and the id) for
 * the body's syntax, which changes nothing for messages without ", \, control bytes (JSON) or
 * <, >, &, ", ' (HTML, XML).
 * When request_id.len == 0 the body is instead that of Kong's kong.response.exit(status,
 * {message = msg}), whatever `t` is: {"message":"<msg>"} escaped as lua-cjson does (so "/"
 * becomes "\/"), Content-Type "application/json; charset=utf-8" (the jwt plugin's replies).
 * In HTML and XML, C0 control bytes other than \t \n \r become U+FFFD (XML cannot carry them).
 * The body is appended in one piece: on failure (out of memory, or a message or id over
 * 1 MiB) nothing is appended and NULL is returned. `message` and `request_id` are only read;
 * `out` stays the caller's. */
const char *gw_error_body(struct evbuffer *out, enum gw_body_type t, struct gw_str message,
                          struct gw_str request_id);

#endif
