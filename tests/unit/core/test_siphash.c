#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "gw/siphash.h"

/* SipHash-2-4 against the reference vectors of its paper (key 00..0f, messages 00, 01, ...). */

static void test_reference_vectors(void **state)
{
    unsigned char key[16], msg[64];

    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (unsigned char)i;
    assert_true(gw_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(gw_siphash24(key, msg, 1) == 0x74f839c593dc67fdull);
    assert_true(gw_siphash24(key, msg, 7) == 0xab0200f58b01d137ull);
    assert_true(gw_siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
    assert_true(gw_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
    assert_true(gw_siphash24(key, msg, 63) == 0x958a324ceb064572ull);
}

static void test_process_key(void **state)
{
    const unsigned char *a = gw_siphash_process_key(), *b = gw_siphash_process_key();
    static const unsigned char zero[16];

    assert_ptr_equal(a, b);                /* drawn once */
    assert_true(memcmp(a, zero, 16) != 0); /* and drawn */
    assert_true(gw_siphash24(a, "k", 1) != gw_siphash24(a, "K", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_process_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
