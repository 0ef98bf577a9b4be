#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/err.h"
#include "gw/yaml.h"

/* The document loaders: YAML 1.2 core typing, positions, anchors, hardening, JSON. */

struct fx {
    struct gw_arena *a;
    struct gw_err err;
    char out[4096];
};

static struct gw_yaml *load(struct fx *f, const char *text, bool json)
{
    FILE *m;
    struct gw_yaml *y;

    f->a = gw_arena_new();
    gw_err_init(&f->err, "t");
    y = json ? gw_yaml_load_json(text, strlen(text), f->a, &f->err)
             : gw_yaml_load_yaml(text, strlen(text), f->a, &f->err);
    m = fmemopen(f->out, sizeof(f->out) - 1, "w");
    gw_err_print(&f->err, m);
    fputc('\0', m);
    fclose(m);
    return y;
}

static void done(struct fx *f)
{
    gw_err_dispose(&f->err);
    gw_arena_free(f->a);
}

static void test_core_schema_typing(void **state)
{
    struct fx f;
    const struct gw_yaml *y = load(&f,
                                   "a: true\nb: 'true'\nc: 12\nd: \"12\"\ne: ~\nf: null\ng:\n"
                                   "h: 1.5\ni: 0x1F\nj: yes\nk: -7\nl: 9007199254740992\n"
                                   "m: 0o17\nn: .inf\n",
                                   false);

    assert_non_null(y);
    assert_int_equal(gw_yaml_get(y, "a")->type, GW_YAML_BOOL);
    assert_true(gw_yaml_get(y, "a")->v.b);
    assert_int_equal(gw_yaml_get(y, "b")->type, GW_YAML_STR); /* quoted: always a string */
    assert_int_equal(gw_yaml_get(y, "c")->type, GW_YAML_INT);
    assert_int_equal(gw_yaml_get(y, "c")->v.i, 12);
    assert_int_equal(gw_yaml_get(y, "d")->type, GW_YAML_STR);
    assert_int_equal(gw_yaml_get(y, "e")->type, GW_YAML_NULL);
    assert_int_equal(gw_yaml_get(y, "f")->type, GW_YAML_NULL);
    assert_int_equal(gw_yaml_get(y, "g")->type, GW_YAML_NULL);
    assert_int_equal(gw_yaml_get(y, "h")->type, GW_YAML_FLOAT);
    assert_int_equal(gw_yaml_get(y, "i")->v.i, 31);
    assert_int_equal(gw_yaml_get(y, "j")->type, GW_YAML_STR); /* YAML 1.2: yes is a string */
    assert_int_equal(gw_yaml_get(y, "k")->v.i, -7);
    assert_int_equal(gw_yaml_get(y, "l")->v.i, 9007199254740992LL); /* 2^53 exact */
    assert_int_equal(gw_yaml_get(y, "m")->v.i, 15);
    assert_int_equal(gw_yaml_get(y, "n")->type, GW_YAML_FLOAT);
    done(&f);
}

static void test_positions_are_one_based(void **state)
{
    struct fx f;
    const struct gw_yaml *y = load(&f, "a:\n  - x\n  - {b: 2}\n", false);
    const struct gw_yaml *seq = gw_yaml_get(y, "a");

    assert_non_null(seq);
    assert_int_equal(seq->items[0]->line, 2);
    assert_int_equal(seq->items[0]->col, 5);
    assert_int_equal(gw_yaml_get(seq->items[1], "b")->line, 3);
    assert_int_equal(gw_yaml_get(seq->items[1], "b")->col, 9);
    done(&f);
}

static void test_anchors_aliases_and_merge_keys(void **state)
{
    struct fx f;
    const struct gw_yaml *y = load(&f,
                                   "base: &b {retries: 3, port: 80}\n"
                                   "svc:\n  <<: *b\n  port: 8080\n"
                                   "list: &l [1, 2]\nagain: *l\n",
                                   false);
    const struct gw_yaml *svc = gw_yaml_get(y, "svc");

    assert_non_null(y);
    assert_int_equal(gw_yaml_get(svc, "retries")->v.i, 3);
    assert_int_equal(gw_yaml_get(svc, "port")->v.i, 8080); /* explicit key wins */
    assert_int_equal(svc->n, 2);
    assert_int_equal(gw_yaml_get(y, "again")->n, 2);
    done(&f);
}

static void test_multiline_strings(void **state)
{
    struct fx f;
    const struct gw_yaml *y = load(&f, "lit: |\n  a\n  b\nfold: >-\n  c\n  d\n", false);

    assert_string_equal(gw_yaml_get(y, "lit")->str.p, "a\nb\n");
    assert_string_equal(gw_yaml_get(y, "fold")->str.p, "c d");
    done(&f);
}

static void test_duplicate_key_is_an_error(void **state)
{
    struct fx f;

    assert_null(load(&f, "a: 1\nb: 2\na: 3\n", false));
    assert_non_null(strstr(f.out, "t:3:1: duplicate key 'a' (first at line 1)"));
    done(&f);
}

static void test_alias_cycle_is_refused(void **state)
{
    struct fx f;

    assert_null(load(&f, "a: &x [*x]\n", false));
    assert_non_null(strstr(f.out, "cycle"));
    done(&f);
}

static void test_billion_laughs_is_bounded(void **state)
{
    struct fx f;
    char doc[2048];
    size_t off = 0;

    /* 10 levels of 10 aliases each: 10^10 nodes once expanded. */
    off +=
        (size_t)snprintf(doc + off, sizeof(doc) - off, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        off += (size_t)snprintf(doc + off, sizeof(doc) - off, "l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            off += (size_t)snprintf(doc + off, sizeof(doc) - off, "%s*l%d", j ? ", " : "", i - 1);
        off += (size_t)snprintf(doc + off, sizeof(doc) - off, "]\n");
    }
    assert_null(load(&f, doc, false));
    assert_non_null(strstr(f.out, "too large after alias expansion"));
    done(&f);
}

static void test_depth_is_bounded(void **state)
{
    struct fx f;
    char doc[401];

    memset(doc, '[', 200);
    memset(doc + 200, ']', 200);
    doc[400] = '\0';
    assert_null(load(&f, doc, false));
    assert_non_null(strstr(f.out, "nested too deeply"));
    done(&f);
}

static void test_syntax_error_has_position(void **state)
{
    struct fx f;

    assert_null(load(&f, "a: [1, 2\nb: 3\n", false));
    assert_non_null(strstr(f.out, "YAML syntax error"));
    assert_non_null(strstr(f.out, "t:"));
    done(&f);
}

static void test_second_document_is_refused(void **state)
{
    struct fx f;

    assert_null(load(&f, "a: 1\n---\nb: 2\n", false));
    assert_non_null(strstr(f.out, "more than one YAML document"));
    done(&f);
}

static void test_json_values_and_positions(void **state)
{
    struct fx f;
    const struct gw_yaml *y = load(&f,
                                   "{\n  \"a\": [1, 2.5, \"x\\/y\"],\n  \"b\": {\"c\": null, "
                                   "\"d\": true}\n}\n",
                                   true);
    const struct gw_yaml *a = gw_yaml_get(y, "a");

    assert_non_null(y);
    assert_int_equal(a->line, 2);
    assert_int_equal(a->col, 8);
    assert_int_equal(a->items[0]->v.i, 1);
    assert_int_equal(a->items[1]->type, GW_YAML_FLOAT);
    assert_string_equal(a->items[2]->str.p, "x/y"); /* an escape libyaml would refuse */
    assert_int_equal(a->items[2]->col, 17);
    assert_int_equal(gw_yaml_get(gw_yaml_get(y, "b"), "c")->type, GW_YAML_NULL);
    assert_int_equal(gw_yaml_get(gw_yaml_get(y, "b"), "d")->line, 3);
    done(&f);
}

static void test_json_duplicate_key_and_syntax(void **state)
{
    struct fx f;

    assert_null(load(&f, "{\"a\": 1, \"a\": 2}", true));
    assert_non_null(strstr(f.out, "duplicate"));
    done(&f);
    assert_null(load(&f, "{\"a\": 1,}", true));
    assert_non_null(strstr(f.out, "JSON syntax error"));
    done(&f);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_core_schema_typing),
        cmocka_unit_test(test_positions_are_one_based),
        cmocka_unit_test(test_anchors_aliases_and_merge_keys),
        cmocka_unit_test(test_multiline_strings),
        cmocka_unit_test(test_duplicate_key_is_an_error),
        cmocka_unit_test(test_alias_cycle_is_refused),
        cmocka_unit_test(test_billion_laughs_is_bounded),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_syntax_error_has_position),
        cmocka_unit_test(test_second_document_is_refused),
        cmocka_unit_test(test_json_values_and_positions),
        cmocka_unit_test(test_json_duplicate_key_and_syntax),
    };
    return cmocka_run_group_tests_name("yaml", t, NULL, NULL);
}
