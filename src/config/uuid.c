#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

/* RFC 4122 name-based UUIDs, version 5 (SHA-1), as Kong's declarative loader makes them:
 * uuid5(uuid5(NS, "<entity table>"), "<key>") with NS fd02801f-0957-4a15-a55a-c8d9606f30b5. */

static const unsigned char kong_ns[16] = {0xfd, 0x02, 0x80, 0x1f, 0x09, 0x57, 0x4a, 0x15,
                                          0xa5, 0x5a, 0xc8, 0xd9, 0x60, 0x6f, 0x30, 0xb5};

static void uuid5_bin(const unsigned char ns[16], const char *name, size_t len,
                      unsigned char out[16])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, ns, 16);
    EVP_DigestUpdate(ctx, name, len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, 16);
    out[6] = (unsigned char)((out[6] & 0x0F) | 0x50);
    out[8] = (unsigned char)((out[8] & 0x3F) | 0x80);
}

static void uuid_text(const unsigned char u[16], char out[GW_UUID_LEN + 1])
{
    snprintf(out, GW_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

void gw_uuid5(const char *namespace_name, const char *name, size_t len, char out[GW_UUID_LEN + 1])
{
    unsigned char ns[16], u[16];

    uuid5_bin(kong_ns, namespace_name, strlen(namespace_name), ns);
    uuid5_bin(ns, name, len, u);
    uuid_text(u, out);
}

bool gw_uuid_valid(struct gw_str s)
{
    if (s.len != GW_UUID_LEN)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}
