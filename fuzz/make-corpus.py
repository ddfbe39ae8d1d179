#!/usr/bin/python3
# make-corpus.py DIR: write the seed corpus of fuzz-load into DIR.
#
# Valid stores at 4K, 16K and 64K chunks with 0, 1, E-1, E and E+1
# records, and a few near-miss corrupt ones, in the input format of
# fuzz-harness.c (a 16-byte prefix, then a raw or packed body).  Written
# from cow-format.md, not from lib/.

import os
import struct
import sys

MAGIC = 0x70416E53
SECTOR = 512
F_RO, F_SET_WRITABLE, F_PACKED = 1, 2, 4

# pwrite 2.25K at 1/25 of the origin, pread 1K, commit, extents of 6.25K.
OPS = bytes([2 | 2 << 3, 10, 0 | 1 << 3, 10, 5, 0, 7 | 4 << 3, 0])


def prefix(flags, origin_bytes, tail=0, trim=0, ops=OPS):
    sectors = (origin_bytes + SECTOR - 1) // SECTOR
    return (bytes([flags]) + struct.pack("<IHB", sectors - 1, tail, trim)
            + ops)


def header(cs, magic=MAGIC, valid=1, version=1):
    return struct.pack("<IIII", magic, valid, version, cs).ljust(cs * SECTOR,
                                                                 b"\0")


def data_chunks(E):
    """Data chunk numbers in allocation order, skipping the areas."""
    c = 2
    while True:
        if c % (E + 1) == 1:
            c += 1
        yield c
        c += 1


def areas(cs, records):
    """The metadata areas for records (old, new), with the empty area
    after a full last one, as bytes."""
    cb = cs * SECTOR
    E = cb // 16
    out = b""
    for k in range(len(records) // E + 1):
        part = records[k * E:(k + 1) * E]
        out += b"".join(struct.pack("<QQ", o, n) for o, n in part).ljust(
            cb, b"\0")
    return out


def valid_store(cs, n):
    """A packed input: n records, old_chunk i -> the i-th data chunk,
    and two spare data chunks after the last used one."""
    E = cs * SECTOR // 16
    gen = data_chunks(E)
    recs = [(i, next(gen)) for i in range(n)]
    used_in_last = n - (n // E) * E
    body = header(cs) + areas(cs, recs)
    origin = (n + 3) * cs * SECTOR
    return prefix(F_PACKED, origin, tail=used_in_last + 2) + body


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for cs in (8, 32, 128):
        E = cs * SECTOR // 16
        for n in (0, 1, E - 1, E, E + 1):
            seeds["valid-%dk-%d" % (cs // 2, n)] = valid_store(cs, n)
        # Read-only, then made writable.
        s = bytearray(valid_store(cs, 1))
        s[0] |= F_RO | F_SET_WRITABLE
        seeds["valid-%dk-1-ro" % (cs // 2)] = bytes(s)
    # Raw bodies: a new (all-zero) store of three 4K chunks, and a store
    # with one record, byte for byte.
    seeds["raw-new-4k"] = prefix(0, 1 << 20) + bytes(3 * 16384)
    seeds["raw-new-4k-ro"] = prefix(F_RO | F_SET_WRITABLE, 1 << 20) + \
        bytes(3 * 16384)
    seeds["raw-4k-1"] = prefix(0, 1 << 20) + header(8) + \
        areas(8, [(5, 2)]) + bytes(4096)
    # Near misses.
    cs, E = 8, 256
    seeds["bad-dup-old"] = prefix(F_PACKED, 1 << 20, tail=4) + header(cs) + \
        areas(cs, [(3, 2), (3, 3)])
    seeds["bad-dup-new"] = prefix(F_PACKED, 1 << 20, tail=4) + header(cs) + \
        areas(cs, [(3, 2), (4, 2)])
    seeds["bad-meta"] = prefix(F_PACKED, 1 << 20, tail=4) + header(cs) + \
        areas(cs, [(3, E + 2)])
    seeds["bad-old-past-origin"] = prefix(F_PACKED, 4096, tail=4) + \
        header(cs) + areas(cs, [(1, 2)])
    gen = data_chunks(E)
    full = [(i, next(gen)) for i in range(E)]
    seeds["bad-full-no-successor"] = prefix(F_PACKED, 2 << 20, tail=E) + \
        header(cs) + areas(cs, full)[:2 * 4096 - 4096]
    seeds["bad-magic"] = prefix(0, 1 << 20) + header(cs, magic=0x12345678) + \
        bytes(2 * 4096)
    seeds["bad-chunk-3"] = prefix(0, 1 << 20) + header(3) + bytes(3 * 16384)
    seeds["bad-invalid"] = prefix(F_PACKED, 1 << 20, tail=2) + \
        header(cs, valid=0) + areas(cs, [(1, 2)])
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("make-corpus.py: %d seeds in %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
