#!/usr/bin/python3
# decode-store.py: an independent decoder of a dm-snapshot persistent COW
# store, written from /work/shared/docs/cow-format.md and not from lib/.
#
#   decode-store.py ORIGIN COW OUT [--chunk-size BYTES] [--records N]
#
# Checks the store strictly (as a cleanly stopped snapcow leaves it):
# the header (magic 0x70416e53, valid 1, version 1, a power-of-two chunk
# size, zeroes after it), the metadata areas at chunk 1 + i*(E+1), the
# terminator rule, every new_chunk a data chunk inside the file, no
# duplicate old_chunk or new_chunk, old_chunk inside the origin, the area
# after a full one present, and zeroes after the terminator of the last
# area.  Then rebuilds the snapshot (origin with every exception's chunk
# laid over it) into OUT.  Prints "records=N areas=A chunk_size=B" and
# exits 1 naming the first problem found.

import os
import struct
import sys

MAGIC = 0x70416E53
SECTOR = 512


def fail(msg):
    sys.stderr.write("decode-store.py: %s\n" % msg)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    want_chunk = None
    want_records = None
    while len(args) > 3:
        if args[-2] == "--chunk-size":
            want_chunk = int(args[-1])
        elif args[-2] == "--records":
            want_records = int(args[-1])
        else:
            fail("bad arguments")
        args = args[:-2]
    if len(args) != 3:
        fail("usage: decode-store.py ORIGIN COW OUT [--chunk-size B] "
             "[--records N]")
    origin_path, cow_path, out_path = args

    origin_size = os.path.getsize(origin_path)
    cow_size = os.path.getsize(cow_path)
    with open(cow_path, "rb") as f:
        cow = f.read()

    if cow_size < SECTOR:
        fail("COW file of %d bytes has no header" % cow_size)
    magic, valid, version, chunk_sectors = struct.unpack_from("<IIII", cow, 0)
    if magic != MAGIC:
        fail("bad magic 0x%08x" % magic)
    if valid != 1:
        fail("header valid=%d, expected 1" % valid)
    if version != 1:
        fail("header version=%d, expected 1" % version)
    if chunk_sectors == 0 or chunk_sectors & (chunk_sectors - 1):
        fail("chunk size %d sectors is not a power of two" % chunk_sectors)
    cb = chunk_sectors * SECTOR
    if want_chunk is not None and cb != want_chunk:
        fail("chunk size %d bytes, expected %d" % (cb, want_chunk))
    if cow_size < 2 * cb:
        fail("COW file of %d bytes is smaller than header + area 0"
             % cow_size)
    if any(cow[16:cb]):
        fail("header chunk is not zero after the 16-byte header")

    E = cb // 16
    cow_chunks = cow_size // cb
    origin_chunks = (origin_size + cb - 1) // cb

    def is_area(c):
        return c >= 1 and (c - 1) % (E + 1) == 0

    mapping = {}
    seen_new = set()
    area = 0
    while True:
        loc = 1 + area * (E + 1)
        if loc >= cow_chunks:
            fail("area %d (chunk %d) is past the end of the COW file "
                 "(%d chunks): a full area must be followed by a zeroed one"
                 % (area, loc, cow_chunks))
        buf = cow[loc * cb:(loc + 1) * cb]
        n = 0
        while n < E:
            old, new = struct.unpack_from("<QQ", buf, n * 16)
            if new == 0:
                break
            where = "area %d record %d" % (area, n)
            if new < 2 or is_area(new):
                fail("%s: new_chunk %d is not a data chunk" % (where, new))
            if new >= cow_chunks:
                fail("%s: new_chunk %d is past the end of the file "
                     "(%d chunks)" % (where, new, cow_chunks))
            if old >= origin_chunks:
                fail("%s: old_chunk %d is past the end of the origin "
                     "(%d chunks)" % (where, old, origin_chunks))
            if old in mapping:
                fail("%s: duplicate old_chunk %d" % (where, old))
            if new in seen_new:
                fail("%s: duplicate new_chunk %d" % (where, new))
            mapping[old] = new
            seen_new.add(new)
            n += 1
        if n < E:
            # The last area: nothing may follow the terminator.
            if any(buf[n * 16:]):
                fail("area %d: bytes after the terminator (record %d) are "
                     "not zero" % (area, n))
            break
        area += 1

    if want_records is not None and len(mapping) != want_records:
        fail("%d records, expected %d" % (len(mapping), want_records))

    with open(origin_path, "rb") as f:
        image = bytearray(f.read())
    for old, new in mapping.items():
        start = old * cb
        end = min(start + cb, origin_size)
        image[start:end] = cow[new * cb:new * cb + (end - start)]
    with open(out_path, "wb") as f:
        f.write(image)
    print("records=%d areas=%d chunk_size=%d" % (len(mapping), area + 1, cb))


main()
