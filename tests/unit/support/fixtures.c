#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fixtures.h"

static char last[65536];

static struct gw_snapshot *load(const char *text, bool json)
{
    struct gw_err err;
    struct gw_snapshot *s;
    FILE *f = fmemopen(last, sizeof(last) - 1, "w");

    gw_err_init(&err, "t.yaml");
    s = gw_snapshot_load_buf(text, strlen(text), json, json ? "t.json" : "t.yaml", &err);
    if (f != NULL) {
        gw_err_print(&err, f);
        fputc('\0', f);
        fclose(f);
    }
    last[sizeof(last) - 1] = '\0';
    gw_err_dispose(&err);
    return s;
}

struct gw_snapshot *fx_snapshot(const char *yaml)
{
    struct gw_snapshot *s = load(yaml, false);

    if (s == NULL)
        fprintf(stderr, "fx_snapshot: load failed:\n%s", last);
    return s;
}

static const char *errors(const char *text, bool json)
{
    struct gw_snapshot *s = load(text, json);

    if (s != NULL) {
        gw_snapshot_release(s);
        return NULL;
    }
    return last;
}

const char *fx_errors(const char *yaml)
{
    return errors(yaml, false);
}

const char *fx_errors_json(const char *json)
{
    return errors(json, true);
}

const char *fx_last_output(void)
{
    return last;
}

int fx_teardown(void **state)
{
    gw_snapshot_release(*state);
    return 0;
}
