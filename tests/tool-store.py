#!/usr/bin/python3
# tool-store.py: build and read dm-snapshot stores for the tool tests,
# written from cow-format.md (independent of lib/ and of the tool).
#
#   tool-store.py build COW CHUNK_BYTES COW_BYTES RECORDS [OPTIONS]
#       RECORDS is "old:new,old:new,..." in on-disk order, or "seq:N"
#       for N records old=i, new=the i-th data chunk.  OPTIONS:
#       valid=0, magic=0xNNNNNNNN, version=N, stray-after-terminator,
#       dirty-next-area, data-past-next-free
#   tool-store.py records COW      print "area index old new" per record
#   tool-store.py usage COW        print the kernel's "alloc/total meta"

import struct
import sys

MAGIC = 0x70416E53


def data_chunk(i, E):
    """The i-th data chunk (0-based) of a store with E records an area."""
    return 2 + i + i // E


def build(path, cb, size, records, opts):
    E = cb // 16
    if records.startswith("seq:"):
        n = int(records[4:])
        recs = [(i, data_chunk(i, E)) for i in range(n)]
    elif records:
        recs = [tuple(int(x) for x in r.split(":")) for r in records.split(",")]
    else:
        recs = []
    img = bytearray(size)
    magic, valid, version = MAGIC, 1, 1
    for o in opts:
        k, _, v = o.partition("=")
        if k == "magic":
            magic = int(v, 0)
        elif k == "valid":
            valid = int(v)
        elif k == "version":
            version = int(v)
    img[0:16] = struct.pack("<IIII", magic, valid, version, cb // 512)
    area = 0
    for k, (old, new) in enumerate(recs):
        area, idx = divmod(k, E)
        at = (1 + area * (E + 1)) * cb + idx * 16
        img[at:at + 16] = struct.pack("<QQ", old, new)
        if new % (E + 1) > 1 and new * cb + cb <= size:
            img[new * cb:new * cb + 8] = struct.pack("<Q", old + 1)
    cur = len(recs) // E
    if "stray-after-terminator" in opts:
        idx = len(recs) % E + 2
        at = (1 + cur * (E + 1)) * cb + idx * 16
        img[at:at + 16] = struct.pack("<QQ", 7, 9)
    if "dirty-next-area" in opts:
        at = (1 + (cur + 1) * (E + 1)) * cb
        img[at:at + 4] = b"junk"
    if "data-past-next-free" in opts:
        top = max([n for _, n in recs], default=1) + 3
        img[top * cb:top * cb + 4] = b"left"
    open(path, "wb").write(img)


def read_records(path):
    img = open(path, "rb").read()
    magic, valid, version, cs = struct.unpack_from("<IIII", img, 0)
    cb = cs * 512
    E = cb // 16
    out = []
    area = 0
    while True:
        base = (1 + area * (E + 1)) * cb
        for i in range(E):
            old, new = struct.unpack_from("<QQ", img, base + i * 16)
            if new == 0:
                return cb, E, area, out, len(img)
            out.append((area, i, old, new))
        area += 1


def main():
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
              sys.argv[6:])
    elif cmd == "records":
        for r in read_records(sys.argv[2])[3]:
            print("%d %d %d %d" % r)
    elif cmd == "usage":
        cb, E, cur, recs, size = read_records(sys.argv[2])
        nf = 2
        if recs:
            nf = max(r[3] for r in recs) + 1
            if nf % (E + 1) == 1:
                nf += 1
        cs = cb // 512
        print("%d/%d %d" % (nf * cs, size // 512, (cur + 2) * cs))


main()
