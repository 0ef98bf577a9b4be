/* Request ids. A UUIDv4 per request must cost next to nothing and never contend between
 * worker threads, so each thread runs its own xoshiro256** generator; only the seed comes from
 * the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "gw/reqid.h"

struct rng {
    uint64_t s[4];
    unsigned fork_gen; /* value of `fork_gen` when seeded */
    bool seeded;
};

static _Thread_local struct rng rng;

/* A forked child inherits the parent's generator state and would repeat its ids; the atfork
 * hook bumps this counter in the child, and a thread that sees it moved reseeds. */
static atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fills buf from the kernel; returns false if no kernel source answered. */
static bool kernel_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EINTR)
            break;
    }
    if (got == len)
        return true;
    /* Kernels before 3.17 (ENOSYS) or seccomp filters: fall back to the device. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    for (got = 0; got < len;) {
        ssize_t n = read(fd, p + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    close(fd);
    return got == len;
}

static void seed(struct rng *r, unsigned gen)
{
    uint64_t k[4] = {0};

    if (!kernel_random(k, sizeof(k))) {
        /* Last resort: still distinct per thread, process and instant, which is all a
         * correlation id needs. */
        struct timespec ts;
        uint64_t x;

        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)r;
        for (int i = 0; i < 4; i++)
            k[i] = splitmix(&x);
    }
    memcpy(r->s, k, sizeof(k));
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 0x9e3779b97f4a7c15ULL; /* xoshiro's one forbidden state */
    r->fork_gen = gen;
    r->seeded = true;
}

void gw_reqid_new(char out[GW_REQID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    struct rng *r = &rng;
    unsigned gen;
    unsigned char b[16];
    uint64_t hi, lo;
    char *w = out;

    if (!r->seeded)
        pthread_once(&atfork_once, register_atfork);
    gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    if (!r->seeded || r->fork_gen != gen)
        seed(r, gen);
    hi = next(r);
    lo = next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *w++ = '-';
        *w++ = hex[b[i] >> 4];
        *w++ = hex[b[i] & 0xf];
    }
    *w = '\0';
}

bool gw_reqid_acceptable(struct gw_str id)
{
    const unsigned char *p = (const unsigned char *)id.p;

    if (id.len == 0 || id.len > GW_REQID_MAX_IN || p == NULL)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = p[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if (c == '.' || c == '_' || c == ':' || c == '@' || c == '/' || c == '+' || c == '=' ||
            c == '-')
            continue;
        return false;
    }
    return true;
}
