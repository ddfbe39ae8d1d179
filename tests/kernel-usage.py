#!/usr/bin/python3
# kernel-usage.py: what the kernel's "dmsetup status" of a dm-snapshot
# should print for a persistent COW store, worked out from the store's
# bytes alone (cow-format.md, "Usage figures").
#
#   kernel-usage.py COW
#
# Prints "<allocated>/<total> <metadata>" in sectors: allocated is the
# next free chunk (one past the highest new_chunk, moved past a metadata
# area; 2 with no records) times the chunk size, total the file's size in
# whole sectors, metadata (current area + 2) chunks, where the current
# area is the first one holding a terminator (new_chunk == 0).  An
# invalidated store prints "Invalid".

import os
import struct
import sys

path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "rb") as f:
    data = f.read()

magic, valid, version, chunk_sectors = struct.unpack_from("<4I", data, 0)
if magic != 0x70416E53 or version != 1:
    sys.exit("kernel-usage.py: %s: not a persistent store" % path)
if not valid:
    print("Invalid")
    sys.exit(0)

chunk_bytes = chunk_sectors * 512
per_area = chunk_bytes // 16
highest = 0
area = 0
while True:
    base = (1 + area * (per_area + 1)) * chunk_bytes
    ended = False
    for i in range(per_area):
        if base + (i + 1) * 16 > size:
            sys.exit("kernel-usage.py: area %d is past the end" % area)
        old, new = struct.unpack_from("<2Q", data, base + i * 16)
        if new == 0:
            ended = True
            break
        highest = max(highest, new)
    if ended:
        break
    area += 1

next_free = highest + 1 if highest else 2
if next_free % (per_area + 1) == 1:
    next_free += 1
print("%d/%d %d" % (next_free * chunk_sectors, size // 512,
                    (area + 2) * chunk_sectors))
