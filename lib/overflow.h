/* overflow.h: checked arithmetic for numbers that come from disk or a
 * client.  Each returns true when the result overflowed.
 */
#ifndef SNAPCOW_OVERFLOW_H
#define SNAPCOW_OVERFLOW_H

#define ADD_OVERFLOW(a, b, r) __builtin_add_overflow ((a), (b), (r))
#define MUL_OVERFLOW(a, b, r) __builtin_mul_overflow ((a), (b), (r))

#endif /* SNAPCOW_OVERFLOW_H */
