/* fuzz-load.c: the libFuzzer target for the store loader.  Built with
 * clang -fsanitize=fuzzer,address,undefined by `make fuzz`; the input
 * format is described in fuzz-harness.c.
 */
#include <config.h>

#include <stddef.h>
#include <stdint.h>

#include "fuzz-harness.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  snapcow_fuzz_one (data, size);
  return 0;
}
