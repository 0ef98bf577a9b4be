#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/cidr.h"
#include "gw/str.h"

struct gw_arena;
struct gw_err;
struct gw_yaml;
struct gw_plugin;
struct gw_router;
struct gw_map;

/* The compiled configuration: `gateway:` settings plus Kong's declarative entities, built
 * once by gw_snapshot_load() and never modified afterwards. Everything hangs off the snapshot
 * arena; pointers between entities point into the same snapshot. */

#define GW_UUID_LEN 36

/* Protocol bits (Kong's protocol names). */
enum gw_proto {
    GW_PROTO_HTTP = 1u << 0,
    GW_PROTO_HTTPS = 1u << 1,
    GW_PROTO_GRPC = 1u << 2,
    GW_PROTO_GRPCS = 1u << 3,
    GW_PROTO_TCP = 1u << 4,
    GW_PROTO_TLS = 1u << 5,
    GW_PROTO_TLS_PASSTHROUGH = 1u << 6,
    GW_PROTO_UDP = 1u << 7,
    GW_PROTO_WS = 1u << 8,
    GW_PROTO_WSS = 1u << 9,
};

/* Parses one protocol name; returns 0 when unknown. */
unsigned gw_proto_parse(struct gw_str name);
const char *gw_proto_name(unsigned bit);

struct gw_strv {
    struct gw_str *v;
    size_t n;
};

/* Where an entity was written, for messages at run time. */
struct gw_pos {
    unsigned line, col;
};

struct gw_ca_certificate {
    char id[GW_UUID_LEN + 1];
    struct gw_str cert; /* PEM */
    struct gw_str cert_digest;
    struct gw_strv tags;
};

struct gw_certificate;

struct gw_sni {
    char id[GW_UUID_LEN + 1];
    struct gw_str name;
    const struct gw_certificate *certificate;
    struct gw_strv tags;
};

struct gw_certificate {
    char id[GW_UUID_LEN + 1];
    struct gw_str cert, key;         /* PEM (secret: key) */
    struct gw_str cert_alt, key_alt; /* optional second pair of another key type */
    struct gw_strv tags;
};

struct gw_target {
    char id[GW_UUID_LEN + 1];
    struct gw_str target; /* as written, with the default port added: "host:port" */
    struct gw_str host;   /* without brackets for IPv6 */
    uint16_t port;
    uint32_t weight;
    struct gw_strv tags;
};

enum gw_lb_algorithm {
    GW_LB_ROUND_ROBIN,
    GW_LB_CONSISTENT_HASHING,
    GW_LB_LEAST_CONNECTIONS,
    GW_LB_LATENCY,
};

enum gw_hash_on {
    GW_HASH_NONE,
    GW_HASH_CONSUMER,
    GW_HASH_IP,
    GW_HASH_HEADER,
    GW_HASH_COOKIE,
    GW_HASH_PATH,
    GW_HASH_QUERY_ARG,
    GW_HASH_URI_CAPTURE,
};

struct gw_healthcheck_counts {
    uint32_t interval; /* seconds, 0 = off */
    uint32_t successes;
    uint32_t http_failures, tcp_failures, timeouts;
    uint16_t *http_statuses;
    size_t nhttp_statuses;
};

struct gw_healthchecks {
    struct {
        unsigned type; /* GW_HC_* */
        double timeout;
        uint32_t concurrency;
        struct gw_str http_path, https_sni;
        bool https_verify_certificate;
        struct gw_str *header_names; /* `headers` map: name -> values */
        struct gw_strv *header_values;
        size_t nheaders;
        struct gw_healthcheck_counts healthy, unhealthy;
    } active;
    struct {
        unsigned type;
        struct gw_healthcheck_counts healthy, unhealthy;
    } passive;
    double threshold; /* percent */
};

enum gw_hc_type { GW_HC_HTTP, GW_HC_HTTPS, GW_HC_TCP, GW_HC_GRPC, GW_HC_GRPCS };

struct gw_upstream {
    char id[GW_UUID_LEN + 1];
    struct gw_str name;
    enum gw_lb_algorithm algorithm;
    enum gw_hash_on hash_on, hash_fallback;
    struct gw_str hash_on_header, hash_fallback_header;
    struct gw_str hash_on_cookie, hash_on_cookie_path;
    struct gw_str hash_on_query_arg, hash_fallback_query_arg;
    struct gw_str hash_on_uri_capture, hash_fallback_uri_capture;
    uint32_t slots;
    struct gw_str host_header;
    const struct gw_certificate *client_certificate;
    struct gw_healthchecks healthchecks;
    struct gw_target *targets;
    size_t ntargets;
    struct gw_strv tags;
};

struct gw_service {
    char id[GW_UUID_LEN + 1];
    struct gw_str name; /* empty when unnamed */
    unsigned protocol;  /* one GW_PROTO_* bit */
    struct gw_str host;
    uint16_t port;
    struct gw_str path; /* empty = none */
    uint32_t retries;
    uint32_t connect_timeout, write_timeout, read_timeout; /* ms */
    int tls_verify;                                        /* -1 unset, 0, 1 */
    int tls_verify_depth;                                  /* -1 unset */
    const struct gw_ca_certificate **ca_certificates;
    size_t nca_certificates;
    const struct gw_certificate *client_certificate;
    const struct gw_upstream *upstream; /* when `host` names an upstream */
    bool enabled;
    struct gw_strv tags;
    struct gw_pos pos;
};

enum gw_path_handling { GW_PATH_V0, GW_PATH_V1 };

struct gw_route_header {
    struct gw_str name;    /* lower-cased */
    struct gw_strv values; /* as written; a value starting with `~*` is a regex */
};

struct gw_route {
    char id[GW_UUID_LEN + 1];
    struct gw_str name;               /* empty when unnamed */
    const struct gw_service *service; /* NULL: a service-less route */
    unsigned protocols;               /* GW_PROTO_* bits; default http|https */
    struct gw_strv methods;           /* upper-case */
    struct gw_strv hosts;             /* as written, may carry `:port` and one `*` */
    struct gw_strv paths;             /* prefix, or `~`-prefixed regex (after migration) */
    struct gw_strv snis;
    struct gw_route_header *headers;
    size_t nheaders;
    bool strip_path, preserve_host, request_buffering, response_buffering;
    int64_t regex_priority;
    enum gw_path_handling path_handling;
    uint16_t https_redirect_status_code;
    unsigned index; /* position among all routes, in file order: the final tie-break */
    const struct gw_chain *chain; /* NULL: no plugin applies */
    /* true: left out of the router (its service is disabled, as Kong does, or its protocols
     * are not HTTP ones, which gatehouse does not serve) */
    bool ignored;
    struct gw_strv tags;
    struct gw_pos pos;
};

/* The plugins that may run for a route, compiled when the snapshot is built
 * (src/config/chain.c): one entry per plugin name, in Kong's order (priority descending, ties
 * by name reverse-lexicographic). */
struct gw_chain_entry {
    const struct gw_plugin *plugin;
    /* the most specific enabled instance without a consumer (route+service, route, service,
     * global) whose protocols include http [0] or https [1]; NULL: none */
    const struct gw_plugin_instance *base[2];
    bool base_route_service[2]; /* base is scoped to the route and its service */
    /* an enabled consumer-scoped instance may apply to the route: looked up once the consumer
     * is known (gw_chain_select) */
    bool by_consumer;
    size_t ctx_off; /* where its per-request context starts in the chain's block */
};

struct gw_chain {
    struct gw_chain_entry *e;
    size_t n;
    size_t ctx_size;    /* sum of the plugins' per-request contexts, each 16-byte aligned */
    bool header_filter; /* some plugin of the chain has a header_filter callback */
    bool wants_body;    /* some instance that may apply reads the request body */
};

struct gw_consumer {
    char id[GW_UUID_LEN + 1];
    struct gw_str username, custom_id; /* empty when absent */
    struct gw_strv tags;
    struct gw_strv groups;   /* its acls' groups, in file order */
    const char *groups_line; /* the same joined with ", " (X-Consumer-Groups) */
};

struct gw_keyauth_credential {
    char id[GW_UUID_LEN + 1];
    const struct gw_consumer *consumer;
    struct gw_str key;        /* secret */
    unsigned char digest[32]; /* SHA-256 of key: its identity across reloads (ttl) */
    uint64_t keyhash;         /* SipHash of key with the process's secret key: the index */
    int64_t ttl;              /* seconds, 0 = none */
    int64_t expires_at;       /* Unix time, from the first load of this credential; 0 = never */
    struct gw_strv tags;
};

struct gw_jwt_secret {
    char id[GW_UUID_LEN + 1];
    const struct gw_consumer *consumer;
    struct gw_str key;            /* the value of the key claim (iss by default) */
    struct gw_str secret;         /* HS*: secret */
    struct gw_str algorithm;      /* HS256 by default */
    struct gw_str rsa_public_key; /* PEM for RS/ES/PS/EdDSA */
    void *pkey;                   /* rsa_public_key parsed (EVP_PKEY *), NULL without one */
    struct gw_strv tags;
};

struct gw_acl {
    char id[GW_UUID_LEN + 1];
    const struct gw_consumer *consumer;
    struct gw_str group;
    struct gw_strv tags;
};

struct gw_plugin_instance {
    char id[GW_UUID_LEN + 1];
    const struct gw_plugin *plugin;
    struct gw_str name;
    struct gw_str instance_name;
    const struct gw_service *service; /* scope; NULL = any */
    const struct gw_route *route;
    const struct gw_consumer *consumer;
    void *conf; /* the plugin's parsed config */
    bool enabled;
    unsigned protocols;
    struct gw_strv tags;
    struct gw_pos pos;
};

struct gw_listen {
    struct gw_str address; /* IPv4 or IPv6 literal (no brackets), or a host name */
    uint16_t port;
    bool ssl, proxy_protocol;
};

/* `gateway:` section. Defaults are documented in docs/configuration.md. */
struct gw_gateway {
    struct gw_listen *listen;
    size_t nlisten;
    struct gw_listen *status_listen; /* nstatus_listen == 0: off */
    size_t nstatus_listen;
    unsigned workers; /* 0 before defaults: number of CPUs */
    struct {
        uint64_t max_header_size;
        uint32_t max_headers;
        uint64_t max_body_size; /* 0 = unlimited */
        uint64_t max_uri_length;
        uint32_t max_connections;    /* per worker */
        uint64_t plugin_body_buffer; /* most body bytes read whole for plugins (413 beyond) */
    } limits;
    struct {
        uint32_t client_header, client_body, keepalive, send, shutdown; /* seconds */
        uint32_t shutdown_grace; /* seconds still serving after SIGTERM, before the drain */
    } timeouts;
    bool metrics;                /* request metrics recorded and GET /metrics served */
    struct gw_str access_log;    /* path, "stdout"; empty = off */
    int log_level;               /* enum gw_log_level */
    struct gw_cidr *trusted_ips; /* peers whose X-Forwarded-* and X-Request-Id are believed */
    size_t ntrusted_ips;
    unsigned headers;                 /* GW_HEADERS_* bits sent to clients */
    struct gw_str error_default_type; /* MIME type of gateway errors when Accept says nothing */
    struct {
        uint32_t pool_size, max_requests, idle_timeout; /* idle_timeout in seconds */
    } upstream_keepalive;
    struct {
        uint32_t refresh; /* seconds between re-resolutions of upstream host names */
    } dns;
};

/* gateway.headers groups (Kong's `headers` setting, with gatehouse's names). */
enum gw_headers_group {
    GW_HEADERS_SERVER_TOKENS = 1u << 0,  /* Server, Via */
    GW_HEADERS_LATENCY_TOKENS = 1u << 1, /* X-Gatehouse-*-Latency */
    GW_HEADERS_REQUEST_ID = 1u << 2,     /* X-Request-Id */
};

struct gw_snapshot {
    atomic_uint refs;
    uint64_t generation;
    struct gw_arena *arena;
    char config_hash[33]; /* MD5 of the file's bytes, hex (Kong's configuration_hash) */

    struct gw_gateway gateway;
    const struct gw_yaml *doc; /* the document as loaded (vault references unresolved) */

    struct gw_service *services;
    size_t nservices;
    struct gw_route *routes;
    size_t nroutes;
    struct gw_upstream *upstreams;
    size_t nupstreams;
    struct gw_consumer *consumers;
    size_t nconsumers;
    struct gw_keyauth_credential *keyauth_credentials;
    size_t nkeyauth_credentials;
    struct gw_jwt_secret *jwt_secrets;
    size_t njwt_secrets;
    struct gw_acl *acls;
    size_t nacls;
    struct gw_plugin_instance *plugins;
    size_t nplugins;
    struct gw_certificate *certificates;
    size_t ncertificates;
    struct gw_sni *snis;
    size_t nsnis;
    struct gw_ca_certificate *ca_certificates;
    size_t nca_certificates;

    /* Indexes (hash maps into the arrays above). */
    struct gw_map *consumer_by_id, *consumer_by_username, *consumer_by_custom_id;
    struct gw_map *keyauth_by_hash; /* keyhash (8 bytes) -> credential */
    struct gw_map *jwt_by_key;      /* jwt_secrets by key */
    struct gw_map *upstream_by_name;
    /* consumer-scoped plugin instances by "name|route id|service id|consumer id" (ids empty
     * when unscoped) */
    struct gw_map *plugin_by_scope;
    /* query arguments whose values the access log redacts, besides apikey, jwt and
     * access_token: those the plugins name (key-auth's key_names) */
    struct gw_strv secret_query_args;

    struct gw_router *router;
};

/* Reads, validates and compiles `path`. Returns a snapshot with one reference, or NULL with
 * every error in `err` (warnings are added to `err` in both cases). No network I/O. */
struct gw_snapshot *gw_snapshot_load(const char *path, struct gw_err *err);

/* Same, from a document already in memory (tests); `json` picks the parser. */
struct gw_snapshot *gw_snapshot_load_buf(const char *buf, size_t len, bool json, const char *name,
                                         struct gw_err *err);

/* Reference counting: see DESIGN.md §3. The last release frees the snapshot. */
void gw_snapshot_acquire(struct gw_snapshot *s);
void gw_snapshot_release(struct gw_snapshot *s);

/* Look-ups (NULL when absent). */
/* The instance of `e`'s plugin that applies to a request on `rt` from `consumer` (NULL: not
 * known yet) over `tls`, in Kong's order: route+service+consumer, route+consumer,
 * service+consumer, consumer, then e->base. NULL: none. */
const struct gw_plugin_instance *gw_chain_select(const struct gw_snapshot *s,
                                                 const struct gw_route *rt,
                                                 const struct gw_chain_entry *e,
                                                 const struct gw_consumer *consumer, bool tls);

const struct gw_consumer *gw_snapshot_consumer(const struct gw_snapshot *s, struct gw_str id);

/* SHA-256 of a key-auth key. */
void gw_keyauth_digest(struct gw_str key, unsigned char out[32]);

/* The key-auth credential whose key is `key`: found by its keyed hash, then compared in
 * constant time; NULL when none.
 * Expiry is the caller's to check (expires_at). Any thread. */
const struct gw_keyauth_credential *gw_snapshot_keyauth(const struct gw_snapshot *s,
                                                        struct gw_str key);

/* The consumer named by a plugin's `anonymous` setting: an id, else a username. NULL: none. */
const struct gw_consumer *gw_snapshot_consumer_ref(const struct gw_snapshot *s, struct gw_str ref);

#endif
