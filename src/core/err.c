#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/err.h"
#include "gw/yaml.h"

void gw_err_init(struct gw_err *err, const char *file)
{
    memset(err, 0, sizeof(*err));
    err->file = file;
    err->tail = &err->head;
}

void gw_err_dispose(struct gw_err *err)
{
    for (struct gw_diag *d = err->head, *next; d != NULL; d = next) {
        next = d->next;
        free(d->path);
        free(d->msg);
        free(d);
    }
    err->head = NULL;
    err->tail = &err->head;
    err->nerr = err->nwarn = 0;
}

static char *xvprintf(const char *fmt, va_list ap)
{
    char probe[1];
    va_list ap2;
    int n;
    char *s;

    /* A NULL format would be a bug; never pass it on to vsnprintf. */
    if (fmt == NULL)
        fmt = "";
    va_copy(ap2, ap);
    n = vsnprintf(probe, sizeof(probe), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    s = gw_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int gw_err_vat(struct gw_err *err, enum gw_diag_level level, unsigned line, unsigned col,
               const char *path, const char *fmt, va_list ap)
{
    struct gw_diag *d = gw_xcalloc(1, sizeof(*d));

    if (err->tail == NULL) /* zero-initialised struct: make it usable */
        err->tail = &err->head;
    d->level = level;
    d->line = line;
    d->col = col;
    d->path = gw_xstrdup(path != NULL ? path : "");
    d->msg = xvprintf(fmt, ap);
    *err->tail = d;
    err->tail = &d->next;
    if (level == GW_DIAG_ERROR)
        err->nerr++;
    else
        err->nwarn++;
    return -1;
}

int gw_err_at(struct gw_err *err, const struct gw_yaml *node, const char *path, const char *fmt,
              ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(err, GW_DIAG_ERROR, node != NULL ? node->line : 0, node != NULL ? node->col : 0,
               path, fmt, ap);
    va_end(ap);
    return -1;
}

void gw_warn_at(struct gw_err *err, const struct gw_yaml *node, const char *path, const char *fmt,
                ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(err, GW_DIAG_WARN, node != NULL ? node->line : 0, node != NULL ? node->col : 0, path,
               fmt, ap);
    va_end(ap);
}

int gw_err_pos(struct gw_err *err, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(err, GW_DIAG_ERROR, line, col, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

void gw_err_print(const struct gw_err *err, FILE *out)
{
    for (const struct gw_diag *d = err->head; d != NULL; d = d->next) {
        fputs(err->file != NULL ? err->file : "<config>", out);
        if (d->line != 0)
            fprintf(out, ":%u:%u", d->line, d->col);
        fputs(": ", out);
        if (d->level == GW_DIAG_WARN)
            fputs("warning: ", out);
        if (d->path[0] != '\0')
            fprintf(out, "%s: ", d->path);
        fprintf(out, "%s\n", d->msg);
    }
}
