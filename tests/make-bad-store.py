#!/usr/bin/python3
# make-bad-store.py CASE COW: write a corrupt (or, for "valid" and
# "big-origin", a well-formed) dm-snapshot persistent store into COW, for
# test-bad-store.sh.  Written from /work/shared/docs/cow-format.md, not
# from lib/.  The stores use 4K chunks (8 sectors, E = 256 records per
# area) unless the case is about the chunk size, and expect an origin of
# 1 MiB (256 chunks), except "big-origin", made for a 4 MiB origin.
#
# Cases:
#   magic            a magic that is neither 0 nor 0x70416e53
#   version2         header version 2
#   chunk0 chunk3    chunk size 0 / 3 sectors
#   chunk4096        4096 sectors (2 MiB): above snapcow's 1 MiB cap
#   chunk4m          1 << 22 sectors (2 GiB): above the kernel's limit
#   invalid          header valid=0 over good records
#   new-meta         area 0 record 1 has new_chunk 258, area 1's chunk
#   new-header       area 0 record 0 has new_chunk 1, area 0's own chunk
#   new-past-end     new_chunk 100 in a store of 6 chunks
#   old-past-origin  old_chunk 1000 with a 256-chunk origin
#   dup-old          records 0 and 1 both for old_chunk 3
#   dup-new          records 0 and 1 both in new_chunk 2
#   full-no-next     area 0 full (256 records), the file ends after its
#                    data chunks: no room for area 1
#   tiny             one chunk and 100 bytes: no room for area 0
#   big-origin       10 good records for old chunks 990..999
#   valid            10 good records for old chunks 0..9

import struct
import sys

MAGIC = 0x70416E53
CS = 8                          # sectors
CB = CS * 512                   # bytes
E = CB // 16


def header(magic=MAGIC, valid=1, version=1, cs=CS, size=CB):
    return struct.pack("<IIII", magic, valid, version, cs).ljust(size, b"\0")


def area(records):
    return b"".join(struct.pack("<QQ", o, n)
                    for o, n in records).ljust(CB, b"\0")


def data_chunk(i):
    """The i-th data chunk (0-based) in allocation order."""
    return 2 + i + i // E


def store(records, data_chunks=None, **hdr):
    """Header, area 0, then data chunks: enough for the records, or
    data_chunks of them."""
    assert len(records) < E
    if data_chunks is None:
        data_chunks = max([n for o, n in records] + [1]) - 1
    return header(**hdr) + area(records) + bytes(data_chunks * CB)


def good(olds):
    return [(o, data_chunk(i)) for i, o in enumerate(olds)]


def build(case):
    if case == "magic":
        return store(good(range(3)), magic=0x12345678)
    if case == "version2":
        return store(good(range(3)), version=2)
    if case == "chunk0":
        return header(cs=0) + bytes(2 * CB)
    if case == "chunk3":
        return header(cs=3) + bytes(2 * CB)
    if case == "chunk4096":
        return header(cs=4096) + bytes(2 * CB)
    if case == "chunk4m":
        return header(cs=1 << 22) + bytes(2 * CB)
    if case == "invalid":
        return store(good(range(3)), valid=0)
    if case == "new-meta":
        return store([(0, 2), (1, E + 2)], data_chunks=E + 4)
    if case == "new-header":
        return store([(0, 1)], data_chunks=4)
    if case == "new-past-end":
        return store([(0, 100)], data_chunks=4)
    if case == "old-past-origin":
        return store([(5, 2), (1000, 3)])
    if case == "dup-old":
        return store([(3, 2), (3, 3)])
    if case == "dup-new":
        return store([(3, 2), (4, 2)])
    if case == "full-no-next":
        recs = good(range(E))
        return header() + b"".join(struct.pack("<QQ", o, n)
                                   for o, n in recs) + bytes(E * CB)
    if case == "tiny":
        return header() + bytes(100)
    if case == "big-origin":
        return store(good(range(990, 1000)))
    if case == "valid":
        return store(good(range(10)))
    sys.exit("make-bad-store.py: unknown case %s" % case)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make-bad-store.py CASE COW")
    with open(sys.argv[2], "wb") as f:
        f.write(build(sys.argv[1]))


if __name__ == "__main__":
    main()
