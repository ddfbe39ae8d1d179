#!/usr/bin/python3
# origin-writer.py: write to the origin export of "nbdkit snapcow
# mode=origin", keep a model of what the origin must then hold, and check
# every export against it (helper for test-kernel-origin-*.sh).
#
#   origin-writer.py SOCK ORIGINAL MODEL SEED CHUNK FILL [SNAPSHOT...]
#
# MODEL holds what the origin holds before (for a fresh origin, a copy
# of ORIGINAL); it is updated in place.  Seeded writes of every shape go
# to the default export (""): unaligned inside one CHUNK, straddling two,
# several chunks at once, the origin's last partial chunk, zeroes,
# rewrites of chunks written before, some with FUA, flushes in between,
# from two connections; then whole chunks, many in flight at once, until
# FILL distinct chunks of CHUNK bytes have been written.  Afterwards the
# default export must read as MODEL and each export named SNAPSHOT (a
# cow= value) as ORIGINAL, byte for byte.  Prints the number of distinct
# chunks written.

import random
import sys

import nbd

sock, original, model = sys.argv[1:4]
seed, cb, fill = (int(a) for a in sys.argv[4:7])
snapshots = sys.argv[7:]


def connect(name=""):
    h = nbd.NBD()
    h.set_debug(False)
    h.set_export_name(name)
    h.connect_unix(sock)
    return h


def read_all(h, size):
    out = bytearray()
    for off in range(0, size, 1 << 20):
        out += h.pread(min(1 << 20, size - off), off)
    return out


def compare(what, got, want):
    if got == want:
        return
    first = next(i for i in range(len(want)) if got[i] != want[i])
    sys.exit("origin-writer.py: %s differs first at byte %d" % (what, first))


with open(original, "rb") as f:
    orig = f.read()
with open(model, "rb") as f:
    img = bytearray(f.read())
size = len(img)
assert len(orig) == size
nch = (size + cb - 1) // cb
rnd = random.Random(seed)
hs = [connect(), connect()]
h = hs[0]
assert h.get_size() == size
written = set()


def touch(off, n):
    for c in range(off // cb, (off + n - 1) // cb + 1):
        written.add(c)


def write(off, n):
    assert 0 < n and off + n <= size, (off, n)
    buf = rnd.randbytes(n)
    fua = h.can_fua() and rnd.random() < 0.2
    rnd.choice(hs).pwrite(buf, off, nbd.CMD_FLAG_FUA if fua else 0)
    img[off:off + n] = buf
    touch(off, n)


def zero(off, n):
    h.zero(n, off)
    img[off:off + n] = bytes(n)
    touch(off, n)


ops = []
for _ in range(40):                         # inside one chunk
    def op():
        c = rnd.randrange(nch - 1)
        i = rnd.randrange(cb - 1)
        write(c * cb + i, rnd.randint(1, min(cb - i, 3000)))
    ops.append(op)
for _ in range(20):                         # across a chunk boundary
    def op():
        c = rnd.randrange(1, nch - 1)
        a = rnd.randint(1, cb - 1)
        write(c * cb - a, a + rnd.randint(1, cb - 1))
    ops.append(op)
for _ in range(10):                         # several chunks, unaligned
    def op():
        off = rnd.randrange(size - 8 * cb)
        write(off, rnd.randint(2 * cb, 8 * cb))
    ops.append(op)
for _ in range(3):                          # the last, partial chunk
    def op():
        last = (nch - 1) * cb
        i = rnd.randrange(size - last)
        write(last + i, size - last - i)
    ops.append(op)
if h.can_zero():
    for _ in range(6):
        def op():
            off = rnd.randrange(size - 3 * cb) // 512 * 512
            zero(off, rnd.randint(1, 3 * cb // 512) * 512)
        ops.append(op)
for _ in range(20):                         # rewrites of written chunks
    def op():
        if written:
            c = rnd.choice(sorted(written))
            off = c * cb + rnd.randrange(min(cb, size - c * cb))
            write(off, rnd.randint(1, min(cb, size - off)))
    ops.append(op)
rnd.shuffle(ops)
for i, op in enumerate(ops):
    op()
    if i % 10 == 9:
        rnd.choice(hs).flush()

# Whole chunks, 16 in flight at once on each connection.
todo = [c for c in range(nch - 1) if c not in written]
rnd.shuffle(todo)
todo = todo[:max(0, fill - len(written))]
for k in range(0, len(todo), 32):
    issued = []
    for c in todo[k:k + 32]:
        buf = rnd.randbytes(cb)
        img[c * cb:(c + 1) * cb] = buf
        x = hs[c % 2]
        b = nbd.Buffer.from_bytearray(bytearray(buf))
        issued.append((x, b, x.aio_pwrite(b, c * cb)))
        written.add(c)
    for x in hs:
        while x.aio_in_flight() > 0:
            x.poll(-1)
    for x, b, cookie in issued:
        assert x.aio_command_completed(cookie)   # raises if it failed
    if k % 256 == 0:
        h.flush()
for x in hs:
    x.flush()

compare("the origin export", read_all(h, size), img)
for x in hs:
    x.shutdown()
for name in snapshots:
    s = connect(name)
    assert s.get_size() == size
    compare("snapshot export %s" % name, read_all(s, size), orig)
    s.shutdown()

with open(model, "wb") as f:
    f.write(img)
print(len(written))
