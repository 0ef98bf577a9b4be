#ifndef GW_SIPHASH_H
#define GW_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash. With a secret random key its
 * values cannot be predicted, so a table keyed by them leaks nothing through collisions or
 * lookup times (key-auth's credential index). */
uint64_t gw_siphash24(const unsigned char key[16], const void *data, size_t len);

/* The process's secret key, drawn from OpenSSL's RAND once (any thread). */
const unsigned char *gw_siphash_process_key(void);

#endif
