/* fuzz-harness.h: turn fuzzer input into a COW store and drive lib/ on
 * it.  Shared by the libFuzzer target (fuzz-load.c) and the replay of
 * saved inputs in `make check` (tests/test-lib-fuzz-regress.c), so a
 * saved input means the same thing to both.
 */
#ifndef SNAPCOW_FUZZ_HARNESS_H
#define SNAPCOW_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The fixed prefix of every input (see fuzz-harness.c for its fields). */
#define FUZZ_PREFIX_BYTES 16

/* Run one input.  Returns 1 if the store opened, 0 if it was refused
 * (cleanly: one non-empty line of message), and aborts on anything a
 * sanitizer does not already catch (a refusal without a message, a
 * message with a newline).
 */
extern int snapcow_fuzz_one (const uint8_t *data, size_t size);

#endif /* SNAPCOW_FUZZ_HARNESS_H */
