#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/config.h"
#include "gw/daemon.h"
#include "gw/err.h"
#include "gw/plugin.h"
#include "gw/router.h"
#include "gw/version.h"

#define DEFAULT_CONF "conf/gatehouse.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gatehouse [-c FILE] [--pid-file FILE] [--ready-file FILE]\n"
            "       gatehouse [-c FILE] -t | --dump\n"
            "       gatehouse --version | --help | --plugins\n"
            "\n"
            "Without -t or --dump, gatehouse runs in the foreground: SIGHUP reloads the\n"
            "configuration, SIGTERM/SIGINT drain and stop, SIGUSR1 reopens the access log.\n"
            "\n"
            "  -c, --conf FILE  configuration file, .yaml/.yml or .json (default %s)\n"
            "      --pid-file FILE    write the process id to FILE\n"
            "      --ready-file FILE  once serving, write {\"pid\", \"listen\": [...]} to FILE\n"
            "  -t, --test       validate the configuration, print the result and exit:\n"
            "                   0 when valid, 1 when not (errors on stderr)\n"
            "      --dump       load the configuration and print what it defines\n"
            "      --plugins    list the compiled-in plugins, one per line\n"
            "  -v, --version    print the version\n"
            "  -h, --help       print this help\n",
            DEFAULT_CONF);
}

static void print_listen(const char *what, const struct gw_listen *l, size_t n)
{
    printf("%s:", what);
    if (n == 0)
        printf(" off");
    for (size_t i = 0; i < n; i++)
        printf(memchr(l[i].address.p, ':', l[i].address.len) ? " [%s]:%u%s" : " %s:%u%s",
               l[i].address.p, l[i].port, l[i].ssl ? " ssl" : "");
    printf("\n");
}

static const char *or_dash(struct gw_str s)
{
    return s.len > 0 ? s.p : "-";
}

static void dump(const struct gw_snapshot *s)
{
    printf("configuration_hash: %s\n", s->config_hash);
    print_listen("listen", s->gateway.listen, s->gateway.nlisten);
    print_listen("status_listen", s->gateway.status_listen, s->gateway.nstatus_listen);
    printf("workers: %u\n", s->gateway.workers);
    printf("services: %zu\n", s->nservices);
    for (size_t i = 0; i < s->nservices; i++) {
        const struct gw_service *sv = &s->services[i];
        printf("  %s %s %s://%s:%u%s%s\n", sv->id, or_dash(sv->name), gw_proto_name(sv->protocol),
               sv->host.p, sv->port, sv->path.len > 0 ? sv->path.p : "",
               sv->upstream != NULL ? " (upstream)" : "");
    }
    printf("routes: %zu\n", s->nroutes);
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct gw_route *r = &s->routes[i];
        printf("  %s %s -> %s", r->id, or_dash(r->name),
               r->service != NULL ? or_dash(r->service->name) : "(no service)");
        for (size_t j = 0; j < r->hosts.n; j++)
            printf(" host=%s", r->hosts.v[j].p);
        for (size_t j = 0; j < r->methods.n; j++)
            printf(" method=%s", r->methods.v[j].p);
        for (size_t j = 0; j < r->paths.n; j++)
            printf(" path=%s", r->paths.v[j].p);
        printf("\n");
    }
    printf("upstreams: %zu\n", s->nupstreams);
    for (size_t i = 0; i < s->nupstreams; i++) {
        const struct gw_upstream *u = &s->upstreams[i];
        printf("  %s %s", u->id, u->name.p);
        for (size_t j = 0; j < u->ntargets; j++)
            printf(" %s(weight %u)", u->targets[j].target.p, u->targets[j].weight);
        printf("\n");
    }
    printf("consumers: %zu\n", s->nconsumers);
    for (size_t i = 0; i < s->nconsumers; i++)
        printf("  %s username=%s custom_id=%s\n", s->consumers[i].id,
               or_dash(s->consumers[i].username), or_dash(s->consumers[i].custom_id));
    printf("keyauth_credentials: %zu\njwt_secrets: %zu\nacls: %zu\nplugins: %zu\n",
           s->nkeyauth_credentials, s->njwt_secrets, s->nacls, s->nplugins);
    printf("certificates: %zu\nsnis: %zu\nca_certificates: %zu\n", s->ncertificates, s->nsnis,
           s->nca_certificates);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"conf", required_argument, NULL, 'c'},
                                         {"test", no_argument, NULL, 't'},
                                         {"dump", no_argument, NULL, 'd'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"plugins", no_argument, NULL, 'p'},
                                         {"pid-file", required_argument, NULL, 'P'},
                                         {"ready-file", required_argument, NULL, 'R'},
                                         {NULL, 0, NULL, 0}};
    const char *conf = DEFAULT_CONF, *pid_file = NULL, *ready_file = NULL;
    bool test = false, want_dump = false;
    struct gw_snapshot *snap;
    struct gw_err err;
    int c;

    while ((c = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'd':
            want_dump = true;
            break;
        case 'v':
            printf("gatehouse %s\n", GW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'P':
            pid_file = optarg;
            break;
        case 'R':
            ready_file = optarg;
            break;
        case 'p':
            for (size_t i = 0; gw_plugins[i] != NULL; i++)
                printf("%s\n", gw_plugins[i]->name);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (!test && !want_dump)
        return gw_daemon_run(conf, ready_file, pid_file);
    gw_err_init(&err, conf);
    snap = gw_snapshot_load(conf, &err);
    gw_err_print(&err, stderr);
    gw_err_dispose(&err);
    if (snap == NULL) {
        if (test)
            fprintf(stderr, "configuration %s is invalid\n", conf);
        return 1;
    }
    if (test)
        printf("configuration %s is valid\n", conf);
    if (want_dump)
        dump(snap);
    gw_snapshot_release(snap);
    return 0;
}
