#!/usr/bin/python3
# rw-model.py: drive a snapcow export with seeded random writes and keep
# a model of the expected image (helper for test-rw-restart-*.sh).
#
#   rw-model.py origin PATH SIZE SEED
#       make an origin of SIZE bytes: seeded random data with a zeroed
#       stretch in the middle
#   rw-model.py write SOCK MODEL SEED CHUNK FILL
#       write to the export (sub-chunk, chunk-straddling, whole-chunk,
#       multi-chunk and last-partial-chunk writes, rewrites of chunks
#       already copied, some with FUA, flushes in between), then whole
#       chunks until at least FILL distinct chunks have been written;
#       apply each write to the image in MODEL and save it; keep the set
#       of written chunks in MODEL.chunks; flush at the end
#   rw-model.py verify SOCK MODEL SEED CHUNK
#       read the whole export (in big pieces and in seeded unaligned
#       pieces) and compare with MODEL byte for byte; check the
#       preferred block size is CHUNK
#
# Prints the number of distinct chunks written so far (after "write").

import json
import os
import random
import sys

import nbd


def connect(sock):
    h = nbd.NBD()
    h.set_debug(False)          # LIBNBD_DEBUG=1 would log every request
    h.connect_unix(sock)
    return h


def make_origin(path, size, seed):
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(size))
    # A zeroed stretch, so some chunks start out as zeroes.
    a = size // 3
    data[a:a + size // 8] = bytes(size // 8)
    with open(path, "wb") as f:
        f.write(data)


def load_model(model):
    with open(model, "rb") as f:
        img = bytearray(f.read())
    try:
        with open(model + ".chunks") as f:
            chunks = set(json.load(f))
    except FileNotFoundError:
        chunks = set()
    return img, chunks


def do_write(sock, model, seed, cb, fill):
    img, chunks = load_model(model)
    size = len(img)
    nchunks = (size + cb - 1) // cb
    rnd = random.Random(seed * 1000 + cb)
    h = connect(sock)
    assert h.get_size() == size
    assert h.can_fua() and h.can_flush() and h.can_multi_conn()

    def write(off, n, fua=False):
        assert 0 < n and off + n <= size, (off, n)
        buf = rnd.randbytes(n)
        h.pwrite(buf, off, nbd.CMD_FLAG_FUA if fua else 0)
        img[off:off + n] = buf
        for c in range(off // cb, (off + n - 1) // cb + 1):
            chunks.add(c)

    ops = []
    for _ in range(40):                 # inside one chunk, unaligned
        def op():
            c = rnd.randrange(nchunks - 1)
            i = rnd.randrange(cb - 1)
            write(c * cb + i, rnd.randint(1, cb - i))
        ops.append(op)
    for _ in range(40):                 # straddling a chunk boundary
        def op():
            b = rnd.randrange(1, nchunks - 1) * cb
            a = b - rnd.randint(1, cb - 1)
            write(a, b - a + rnd.randint(1, cb - 1))
        ops.append(op)
    for _ in range(30):                 # one whole aligned chunk
        def op():
            write(rnd.randrange(nchunks - 1) * cb, cb)
        ops.append(op)
    for _ in range(20):                 # several chunks, unaligned
        def op():
            n = rnd.randint(2 * cb, 5 * cb)
            write(rnd.randrange(size - n), n)
        ops.append(op)
    last = (nchunks - 1) * cb           # the origin's last partial chunk
    ops.append(lambda: write(last + rnd.randrange(size - last - 1), 1))
    ops.append(lambda: write(last - cb // 2, cb // 2 + 10))
    ops.append(lambda: write(size - 7, 7, True))
    for _ in range(30):                 # rewrite chunks already copied
        def op():
            if chunks:
                c = rnd.choice(sorted(chunks))
                if c < nchunks - 1:
                    i = rnd.randrange(cb)
                    write(c * cb + i, rnd.randint(1, cb - i), rnd.random() < .3)
        ops.append(op)
    for _ in range(5):
        ops.append(lambda: h.flush())
    rnd.shuffle(ops)
    for op in ops:
        op()

    # Fill: runs of whole chunks until FILL distinct chunks are written
    # (several metadata areas at small chunk sizes).
    tries = 0
    while len(chunks) < fill and tries < 100000:
        tries += 1
        c = rnd.randrange(nchunks - 1)
        run = 0
        while c + run < nchunks - 1 and run < 32 and c + run not in chunks:
            run += 1
        if run:
            write(c * cb, run * cb)
    assert len(chunks) >= fill, "origin too small for FILL"
    h.flush()
    h.shutdown()

    with open(model, "wb") as f:
        f.write(img)
    with open(model + ".chunks", "w") as f:
        json.dump(sorted(chunks), f)
    print(len(chunks))


def do_verify(sock, model, seed, cb):
    img, _ = load_model(model)
    size = len(img)
    h = connect(sock)
    assert h.get_size() == size, (h.get_size(), size)
    assert h.get_block_size(nbd.SIZE_PREFERRED) == cb, \
        h.get_block_size(nbd.SIZE_PREFERRED)
    step = 1 << 20
    for off in range(0, size, step):
        n = min(step, size - off)
        got = h.pread(n, off)
        if got != img[off:off + n]:
            for i in range(n):
                if got[i] != img[off + i]:
                    sys.exit("mismatch at byte %d (chunk %d): got %d, "
                             "expected %d" % (off + i, (off + i) // cb,
                                              got[i], img[off + i]))
    rnd = random.Random(seed)
    for _ in range(300):
        off = rnd.randrange(size)
        n = rnd.randint(1, min(size - off, 6 * cb))
        assert h.pread(n, off) == img[off:off + n], (off, n)
    h.shutdown()


def main():
    a = sys.argv[1:]
    if a[0] == "origin":
        make_origin(a[1], int(a[2]), int(a[3]))
    elif a[0] == "write":
        do_write(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif a[0] == "verify":
        do_verify(a[1], a[2], int(a[3]), int(a[4]))
    else:
        sys.exit("rw-model.py: unknown command " + a[0])


main()
