#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h> /* cmocka 1.1 needs the four headers above first */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/yaml.h"
#include "config/config_int.h"
#include "support/fixtures.h"

/* A deterministic mutation test of the configuration loader: seeds (the Kong corpus, the
 * integration configs and a few inline documents) are mutated with a seeded xorshift
 * generator and each mutant is loaded as YAML and as JSON. The loader must either give a
 * snapshot or fail with at least one error; crashes, leaks and sanitizer reports are bugs.
 *
 * Environment: GATEHOUSE_CORPUS (the Kong corpus directory), GATEHOUSE_FUZZ_COUNT (number of
 * mutants), GATEHOUSE_FUZZ_SEED (generator seed), GATEHOUSE_FUZZ_SAVE (a file that receives
 * each mutant before it is loaded, to replay a crash). */

#ifndef GW_SOURCE_DIR
#define GW_SOURCE_DIR "."
#endif

/* ~0.1 s plain, ~2 s under ASan/UBSan on two cores: no need to scale down. */
#define FUZZ_DEFAULT_COUNT 3000u

#define FUZZ_MAX_SEEDS 256
#define FUZZ_MAX_LEN (256u << 10) /* a mutant never grows past this */

struct buf {
    char *p;
    size_t len;
};

static struct buf seeds[FUZZ_MAX_SEEDS];
static size_t nseeds;
static uint64_t rng_state;

static const char *const inline_seeds[] = {
    "_format_version: \"3.0\"\n"
    "services:\n"
    "  - name: api\n"
    "    url: http://127.0.0.1:9\n"
    "    routes:\n"
    "      - {name: v1, paths: [/v1], hosts: [\"*.example.com\"]}\n"
    "    plugins:\n"
    "      - name: key-auth\n"
    "consumers:\n"
    "  - username: alice\n"
    "    keyauth_credentials: [{key: k1}]\n"
    "    acls: [{group: g}]\n",
    "_format_version: \"3.0\"\n"
    "base: &b {host: example.com, port: 80}\n"
    "services:\n"
    "  - <<: *b\n"
    "    name: s\n"
    "    routes: [{name: r, paths: [\"~/a/(?<x>\\\\d+)$\"], methods: [GET]}]\n"
    "upstreams:\n"
    "  - name: up\n"
    "    targets: [{target: \"[::1]:8080\", weight: 10}]\n",
    "{\"_format_version\": \"3.0\", \"services\": [{\"name\": \"s\", \"host\": \"h\",\n"
    " \"routes\": [{\"name\": \"r\", \"paths\": [\"/x\"]}]}],\n"
    " \"consumers\": [{\"username\": \"u\", \"custom_id\": \"c\"}]}\n",
    "_format_version: \"3.0\"\n"
    "gateway:\n"
    "  listen: [\"127.0.0.1:0\"]\n"
    "certificates:\n"
    "  - cert: |\n"
    "      -----BEGIN CERTIFICATE-----\n"
    "      MIIB\n"
    "      -----END CERTIFICATE-----\n"
    "    key: \"{vault://env/GW-FUZZ-KEY}\"\n"
    "    snis: [a.example.com]\n",
};

/* Tokens that exercise the YAML parser's special paths. */
static const char *const specials[] = {
    "&a ",
    "*a",
    "<<: *a\n",
    "<<: ",
    "!!",
    "!!str ",
    "!!map ",
    "!<tag:x> ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    ":",
    ": ",
    "- ",
    "? ",
    "|\n",
    ">-\n",
    "#",
    "\n",
    "\t",
    "\r\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\\u0000",
    "\\",
    ",",
    "~",
    "null",
    "true",
    "-0",
    "0x",
    "0o",
    "1e999",
    "-9223372036854775809",
    "9223372036854775807",
    "18446744073709551616",
    ".nan",
    ".inf",
    "{vault://env/",
    "{vault://env/A}",
    "\xEF\xBB\xBF",
    "\xC3",
    "\xFF\xFE",
    "&a [*a]",
    "_format_version: \"3.0\"\n",
    "services: ",
    "routes: ",
    "plugins: ",
    "name: ",
    "id: ",
    "00000000-0000-0000-0000-000000000000",
    "paths: [/",
    "hosts: [\"*.",
    "protocols: [",
};

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void add_seed(const char *p, size_t len)
{
    if (nseeds == FUZZ_MAX_SEEDS || len > FUZZ_MAX_LEN)
        return;
    seeds[nseeds].p = malloc(len + 1);
    assert_non_null(seeds[nseeds].p);
    memcpy(seeds[nseeds].p, p, len);
    seeds[nseeds].p[len] = '\0';
    seeds[nseeds].len = len;
    nseeds++;
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    size_t n;

    if (f == NULL)
        return;
    data = malloc(FUZZ_MAX_LEN);
    assert_non_null(data);
    n = fread(data, 1, FUZZ_MAX_LEN, f);
    fclose(f);
    add_seed(data, n);
    free(data);
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every regular file of `dir` but README.md, in name order so that runs are reproducible. */
static size_t add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[FUZZ_MAX_SEEDS];
    size_t n = 0, before = nseeds;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < FUZZ_MAX_SEEDS) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
            continue;
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        add_file(path);
        free(names[i]);
    }
    return nseeds - before;
}

/* ---- JSON seeds: the YAML seeds written out as JSON -------------------------------- */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *p, size_t len)
{
    if (o->len + len + 1 > o->cap) {
        o->cap = (o->len + len + 1) * 2;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    memcpy(o->p + o->len, p, len);
    o->len += len;
}

static void put_str(struct out *o, struct gw_str s)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            put(o, "\\", 1);
            put(o, s.p + i, 1);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, s.p + i, 1);
        }
    }
    put(o, "\"", 1);
}

static void put_json(struct out *o, const struct gw_yaml *y)
{
    switch (y->type) {
    case GW_YAML_SEQ:
        put(o, "[", 1);
        for (size_t i = 0; i < y->n; i++) {
            if (i > 0)
                put(o, ",\n", 2);
            put_json(o, y->items[i]);
        }
        put(o, "]", 1);
        break;
    case GW_YAML_MAP:
        put(o, "{", 1);
        for (size_t i = 0; i < y->n; i++) {
            if (i > 0)
                put(o, ",\n", 2);
            put_str(o, y->pairs[i].key->str);
            put(o, ": ", 2);
            put_json(o, y->pairs[i].val);
        }
        put(o, "}", 1);
        break;
    case GW_YAML_NULL:
        put(o, "null", 4);
        break;
    case GW_YAML_BOOL:
        put(o, y->v.b ? "true" : "false", y->v.b ? 4 : 5);
        break;
    case GW_YAML_INT: {
        char num[32];
        int n = snprintf(num, sizeof(num), "%lld", (long long)y->v.i);
        put(o, num, (size_t)n);
        break;
    }
    case GW_YAML_FLOAT:
        if (y->v.f == y->v.f && y->v.f - y->v.f == 0) {
            char num[40];
            int n = snprintf(num, sizeof(num), "%.17g", y->v.f);
            put(o, num, (size_t)n);
        } else {
            put_str(o, y->str); /* JSON has no inf or nan */
        }
        break;
    default:
        put_str(o, y->str);
        break;
    }
}

/* Adds a JSON twin of every seed that parses as YAML into a collection. */
static void add_json_seeds(void)
{
    size_t n = nseeds;

    for (size_t i = 0; i < n; i++) {
        struct gw_arena *a = gw_arena_new();
        struct gw_err err;
        struct gw_yaml *y;

        gw_err_init(&err, "seed");
        y = gw_yaml_load_yaml(seeds[i].p, seeds[i].len, a, &err);
        if (y != NULL && (y->type == GW_YAML_MAP || y->type == GW_YAML_SEQ)) {
            struct out o = {0};
            put_json(&o, y);
            add_seed(o.p, o.len);
            free(o.p);
        }
        gw_err_dispose(&err);
        gw_arena_free(a);
    }
}

static int load_seeds(void **state)
{
    const char *corpus = getenv("GATEHOUSE_CORPUS");
    size_t from_corpus;

    from_corpus = add_dir(corpus != NULL && *corpus != '\0' ? corpus
                                                            : GW_SOURCE_DIR
                              "/../shared/reference/kong-configs");
    add_dir(GW_SOURCE_DIR "/tests/integration/configs");
    for (size_t i = 0; i < sizeof(inline_seeds) / sizeof(*inline_seeds); i++)
        add_seed(inline_seeds[i], strlen(inline_seeds[i]));
    add_json_seeds();
    print_message("fuzz: %zu seeds (%zu from the Kong corpus)\n", nseeds, from_corpus);
    return 0;
}

static int free_seeds(void **state)
{
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].p);
    nseeds = 0;
    return 0;
}

/* ---- mutations: each edits `m` in place (capacity FUZZ_MAX_LEN) ---------------------- */

static void insert(struct buf *m, size_t at, const char *p, size_t len)
{
    if (len > FUZZ_MAX_LEN - m->len)
        len = FUZZ_MAX_LEN - m->len;
    memmove(m->p + at + len, m->p + at, m->len - at);
    memcpy(m->p + at, p, len);
    m->len += len;
}

static void erase(struct buf *m, size_t at, size_t len)
{
    if (len > m->len - at)
        len = m->len - at;
    memmove(m->p + at, m->p + at + len, m->len - at - len);
    m->len -= len;
}

static void insert_fill(struct buf *m, size_t at, char c, size_t len)
{
    if (len > FUZZ_MAX_LEN - m->len)
        len = FUZZ_MAX_LEN - m->len;
    memmove(m->p + at + len, m->p + at, m->len - at);
    memset(m->p + at, c, len);
    m->len += len;
}

/* Start of the line holding `at`, and the length of that line with its newline. */
static size_t line_bounds(const struct buf *m, size_t at, size_t *len)
{
    size_t s = at, e = at;

    while (s > 0 && m->p[s - 1] != '\n')
        s--;
    while (e < m->len && m->p[e] != '\n')
        e++;
    if (e < m->len)
        e++;
    *len = e - s;
    return s;
}

/* Characters that change the structure of YAML or JSON text. */
static const char structural[] = ":-[]{}\"',&*!|>#? \n\t0a\\";

static void mutate_once(struct buf *m)
{
    size_t at = rnd_below(m->len + 1);

    /* Weighted towards edits that keep the text printable, so that most mutants get past the
     * parsers into entity validation; raw bytes and NULs are rarer. */
    switch (rnd_below(16)) {
    case 0: /* flip a few bits */
        for (unsigned i = 0, n = 1 + (unsigned)rnd_below(4); i < n && m->len > 0; i++)
            m->p[rnd_below(m->len)] ^= (char)(1u << rnd_below(8));
        break;
    case 1: /* overwrite a byte with a structural character */
        if (m->len > 0)
            m->p[rnd_below(m->len)] = structural[rnd_below(sizeof(structural) - 1)];
        break;
    case 2: { /* insert a short run of printable or raw bytes */
        char run[32];
        size_t n = 1 + rnd_below(sizeof(run));
        bool raw = rnd_below(4) == 0;
        for (size_t i = 0; i < n; i++)
            run[i] = raw ? (char)rnd() : (char)(' ' + rnd_below(95));
        insert(m, at, run, n);
        break;
    }
    case 3: /* delete a run */
        if (at < m->len)
            erase(m, at, 1 + rnd_below(rnd_below(2) ? 8 : 256));
        break;
    case 4: { /* duplicate a line */
        size_t len, s = line_bounds(m, at, &len);
        char *copy = malloc(len + 1);
        assert_non_null(copy);
        memcpy(copy, m->p + s, len);
        insert(m, s, copy, len);
        free(copy);
        break;
    }
    case 5: { /* delete a line */
        size_t len, s = line_bounds(m, at, &len);
        erase(m, s, len);
        break;
    }
    case 6: { /* splice: replace the tail with the tail of another seed */
        const struct buf *o = &seeds[rnd_below(nseeds)];
        size_t from = rnd_below(o->len + 1);
        m->len = at;
        insert(m, at, o->p + from, o->len - from);
        break;
    }
    case 7: { /* splice a line of another seed in */
        const struct buf *o = &seeds[rnd_below(nseeds)];
        size_t len, s = line_bounds(o, rnd_below(o->len + 1), &len);
        insert(m, line_bounds(m, at, &(size_t){0}), o->p + s, len);
        break;
    }
    case 8:
    case 9:
    case 10: { /* a YAML/JSON special token */
        const char *t = specials[rnd_below(sizeof(specials) / sizeof(*specials))];
        insert(m, at, t, strlen(t));
        break;
    }
    case 11: /* a NUL byte */
        insert(m, at, "", 1);
        break;
    case 12: /* a very long scalar */
        insert_fill(m, at, "aZ9/ "[rnd_below(5)], 1 + rnd_below(rnd_below(4) == 0 ? 70000 : 600));
        break;
    case 13: { /* deep nesting, flow or block */
        size_t depth = 1 + rnd_below(rnd_below(2) ? 40 : 200);
        switch (rnd_below(3)) {
        case 0:
            insert_fill(m, at, "[{"[rnd_below(2)], depth);
            break;
        case 1:
            for (size_t i = 0; i < depth && m->len + 4 <= FUZZ_MAX_LEN; i++)
                insert(m, at, "{a: ", 4);
            break;
        default:
            for (size_t i = 0; i < depth && m->len + 2 * depth + 4 <= FUZZ_MAX_LEN; i++) {
                insert(m, at, "\n", 1);
                insert_fill(m, at + 1, ' ', i);
                insert(m, at + 1 + i, "- ", 2);
                at += 3 + i;
            }
            break;
        }
        break;
    }
    default: { /* copy a chunk of the document elsewhere in it */
        size_t from = rnd_below(m->len + 1), n = rnd_below(m->len - from + 1);
        char *copy;
        if (n > 512)
            n = 512;
        copy = malloc(n + 1);
        assert_non_null(copy);
        memcpy(copy, m->p + from, n);
        insert(m, at, copy, n);
        free(copy);
        break;
    }
    }
}

/* Loads `m` once as YAML and once as JSON and checks the loader's contract. */
static void run_one(const struct buf *m)
{
    for (int json = 0; json <= 1; json++) {
        struct gw_err err;
        struct gw_snapshot *s;

        gw_err_init(&err, json ? "fuzz.json" : "fuzz.yaml");
        s = gw_snapshot_load_buf(m->p, m->len, json != 0, json ? "fuzz.json" : "fuzz.yaml", &err);
        if (s != NULL) {
            assert_int_equal(err.nerr, 0);
            gw_snapshot_release(s);
        } else {
            assert_true(err.nerr > 0);
        }
        gw_err_dispose(&err);
    }
}

static void save(const char *path, const struct buf *m)
{
    FILE *f = fopen(path, "wb");

    if (f != NULL) {
        fwrite(m->p, 1, m->len, f);
        fclose(f);
    }
}

static unsigned env_uint(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;

    if (v == NULL || *v == '\0')
        return dflt;
    n = strtoul(v, &end, 0);
    return *end == '\0' && n <= 0xFFFFFFFFul ? (unsigned)n : dflt;
}

static void test_mutants_load_or_fail_cleanly(void **state)
{
    unsigned count = env_uint("GATEHOUSE_FUZZ_COUNT", FUZZ_DEFAULT_COUNT);
    const char *save_path = getenv("GATEHOUSE_FUZZ_SAVE");
    struct buf m = {malloc(FUZZ_MAX_LEN), 0};
    struct timespec t0, t1;
    unsigned loaded = 0;

    assert_non_null(m.p);
    assert_true(nseeds > 0);
    rng_state = env_uint("GATEHOUSE_FUZZ_SEED", 0x9E3779B9u) | 1u;
    /* The vault reference in an inline seed resolves half of the time. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < count; i++) {
        const struct buf *seed = &seeds[rnd_below(nseeds)];

        if (i % 2 == 0)
            setenv("GW_FUZZ_KEY", "k", 1);
        else
            unsetenv("GW_FUZZ_KEY");
        memcpy(m.p, seed->p, seed->len);
        m.len = seed->len;
        for (unsigned j = 0, n = 1 + (unsigned)rnd_below(rnd_below(2) ? 2 : 5); j < n; j++)
            mutate_once(&m);
        if (save_path != NULL)
            save(save_path, &m);
        run_one(&m);
        loaded++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsetenv("GW_FUZZ_KEY");
    print_message("fuzz: %u mutants run (each as YAML and JSON) in %.2f s\n", loaded,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(m.p);
}

/* The unmutated seeds themselves keep the same contract. */
static void test_seeds_load_or_fail_cleanly(void **state)
{
    for (size_t i = 0; i < nseeds; i++)
        run_one(&seeds[i]);
}

/* ---- regressions for bugs the fuzzer and the analysers found ------------------------ */

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Duplicate keys were found by scanning every earlier key: a mapping of n keys cost n^2/2
 * comparisons, so a few megabytes of `kN: v` lines kept the loader busy for hours. */
static void test_wide_mapping_loads_in_linear_time(void **state)
{
    const size_t nkeys = 200000;
    size_t cap = nkeys * 16 + 64, len = 0;
    char *doc = malloc(cap);
    const char *out;
    double t0;

    assert_non_null(doc);
    len += (size_t)snprintf(doc + len, cap - len, "_format_version: \"3.0\"\n_ignore:\n");
    for (size_t i = 0; i < nkeys; i++)
        len += (size_t)snprintf(doc + len, cap - len, "  k%zu: v\n", i);
    len += (size_t)snprintf(doc + len, cap - len, "  k7: again\n"); /* line 10 repeated */
    alarm(60); /* fail instead of running for minutes when the bug is back */
    t0 = now();
    out = fx_errors(doc);
    alarm(0);
    /* Quadratic: minutes; linear: well under a second, even under ASan. */
    assert_true(now() - t0 < 10.0);
    assert_non_null(out);
    assert_non_null(strstr(out, "duplicate key 'k7' (first at line 10)"));
    free(doc);
}

/* The hash index of a wide mapping also serves merge keys: explicit keys still win, and
 * merged keys are not duplicated. */
static void test_merge_into_wide_mapping(void **state)
{
    struct gw_arena *a = gw_arena_new();
    struct gw_err err;
    const char *doc = "base: &b {a: 0, b: 0, c: 0, d: 0, e: 0, f: 0, g: 0, h: 0, i: 0, z: 9}\n"
                      "m:\n"
                      "  <<: *b\n"
                      "  a: 1\n  b: 1\n  c: 1\n  d: 1\n  e: 1\n  f: 1\n  g: 1\n  h: 1\n  i: 1\n";
    const struct gw_yaml *root, *m;

    gw_err_init(&err, "t");
    root = gw_yaml_load_yaml(doc, strlen(doc), a, &err);
    assert_non_null(root);
    m = gw_yaml_get(root, "m");
    assert_non_null(m);
    assert_int_equal(m->n, 10);
    assert_int_equal(gw_yaml_get(m, "a")->v.i, 1);
    assert_int_equal(gw_yaml_get(m, "i")->v.i, 1);
    assert_int_equal(gw_yaml_get(m, "z")->v.i, 9);
    gw_err_dispose(&err);
    gw_arena_free(a);
}

/* A private key value without `-----BEGIN` was taken for a file name and quoted whole in the
 * "cannot read PEM file" error: the key reached the log. */
static void test_pem_key_value_is_never_echoed(void **state)
{
    const char *out = fx_errors("_format_version: \"3.0\"\n"
                                "certificates:\n"
                                "  - cert: /nonexistent/cert.pem\n"
                                "    key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcSECRETSECRET\n");

    assert_non_null(out);
    assert_null(strstr(out, "SECRETSECRET"));
    assert_non_null(strstr(out, "cannot read PEM file"));
    assert_non_null(strstr(out, "'/nonexistent/cert.pem'")); /* a cert path is fine to show */
}

/* A NUL byte cut the value short before it was opened as a path: `/dev/null\0...` opened
 * /dev/null. Multi-line values are not file names either. */
static void test_pem_value_with_nul_is_not_a_path(void **state)
{
    const char *out = fx_errors("_format_version: \"3.0\"\n"
                                "certificates:\n"
                                "  - cert: \"/dev/null\\0.pem\"\n"
                                "    key: \"line one\\nline two\"\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "invalid certificate: neither PEM text nor a file name"));
    assert_non_null(strstr(out, "invalid key: neither PEM text nor a file name"));
    assert_null(strstr(out, "line one"));
}

/* A FIFO named as a PEM file blocked the loader in open() until someone wrote to it. */
static void test_pem_fifo_does_not_block(void **state)
{
    char dir[] = "/tmp/gw-fuzz-XXXXXX", fifo[64], doc[256];
    const char *out;

    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/cert.pem", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(doc, sizeof(doc),
             "_format_version: \"3.0\"\ncertificates:\n  - cert: %s\n    key: %s\n", fifo, fifo);
    alarm(20); /* fail instead of hanging when the bug is back */
    out = fx_errors(doc);
    alarm(0);
    unlink(fifo);
    rmdir(dir);
    assert_non_null(out);
    assert_non_null(strstr(out, "not a regular file"));
}

/* The id of a consumer known only by custom_id hashed custom_id.len + 10 bytes of a string
 * printed with %s, which a NUL byte shortens: it read past the end of the string. */
static void test_custom_id_with_nul_gets_its_own_id(void **state)
{
    struct gw_snapshot *s = fx_snapshot("_format_version: \"3.0\"\n"
                                        "consumers:\n"
                                        "  - custom_id: \"a\\0b\"\n"
                                        "  - custom_id: \"a\"\n");
    char want[GW_UUID_LEN + 1];
    const struct gw_consumer *c;

    assert_non_null(s);
    gw_uuid5("consumers", "custom_id:a\0b", 13, want);
    c = gw_snapshot_consumer(s, (struct gw_str){want, GW_UUID_LEN});
    assert_non_null(c);
    assert_int_equal(c->custom_id.len, 3);
    gw_snapshot_release(s);
}

/* A float outside int64_t's range was converted to int64_t before being range-checked:
 * undefined behaviour (UBSan's float-cast-overflow, which clang's -fsanitize=undefined
 * includes). It must be an ordinary error. */
static void test_huge_float_for_integer_field(void **state)
{
    const char *out = fx_errors("_format_version: \"3.0\"\n"
                                "services:\n"
                                "  - {name: a, host: h, port: 1.0e19, retries: -1.0e300}\n"
                                "  - {name: b, host: h, port: .nan, retries: .inf}\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "services[0].port: expected an integer"));
    assert_non_null(strstr(out, "services[0].retries: expected an integer"));
    assert_non_null(strstr(out, "services[1].port: expected an integer"));
    assert_non_null(strstr(out, "services[1].retries: expected an integer"));
}

/* NaN passed the `< 0 || > max` checks of healthcheck timeout and threshold. */
static void test_healthcheck_nan_is_refused(void **state)
{
    const char *out = fx_errors("_format_version: \"3.0\"\n"
                                "upstreams:\n"
                                "  - name: up\n"
                                "    healthchecks:\n"
                                "      threshold: .nan\n"
                                "      active: {timeout: .nan}\n");

    assert_non_null(out);
    assert_non_null(strstr(out, "threshold: value should be between 0 and 100"));
    assert_non_null(strstr(out, "timeout: value should be between 0 and 65535"));
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_seeds_load_or_fail_cleanly),
        cmocka_unit_test(test_mutants_load_or_fail_cleanly),
        cmocka_unit_test(test_wide_mapping_loads_in_linear_time),
        cmocka_unit_test(test_merge_into_wide_mapping),
        cmocka_unit_test(test_pem_key_value_is_never_echoed),
        cmocka_unit_test(test_pem_value_with_nul_is_not_a_path),
        cmocka_unit_test(test_pem_fifo_does_not_block),
        cmocka_unit_test(test_custom_id_with_nul_gets_its_own_id),
        cmocka_unit_test(test_huge_float_for_integer_field),
        cmocka_unit_test(test_healthcheck_nan_is_refused),
    };
    return cmocka_run_group_tests_name("fuzz", t, load_seeds, free_seeds);
}
