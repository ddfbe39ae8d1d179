#!/usr/bin/python3
# origin-exports.py: drive one export of a mode=origin server and keep
# a model of it (helper of the test-origin-mode-*.sh tests).
#
#   origin-exports.py image PATH SIZE SEED
#       make an image of SIZE bytes: seeded random data with a zeroed
#       stretch in the middle
#   origin-exports.py write SOCK NAME MODEL SEED N
#       N seeded random writes (sub-chunk, straddling, whole chunks,
#       large) to the export NAME ("" is the origin), each applied to
#       the image in the file MODEL; some with FUA; a flush at the end
#   origin-exports.py check SOCK NAME MODEL
#       read the whole export, in big and in small unaligned pieces,
#       and compare it with MODEL byte for byte
#   origin-exports.py stream SOCK DIR SEED
#       flushed origin writes until the server dies: DIR/flushed is the
#       origin as of the last completed flush (renamed into place), and
#       DIR/pending logs the writes since, each before it is sent
#   origin-exports.py settle SOCK DIR
#       after a crash: every byte of the origin export holds its value
#       in DIR/flushed or one that a write in DIR/pending put there;
#       what is read becomes DIR/flushed, and DIR/pending is emptied

import os
import pickle
import random
import sys

import nbd


def connect(sock, name):
    h = nbd.NBD()
    h.set_debug(False)          # LIBNBD_DEBUG=1 would log every request
    h.set_export_name(name)
    h.connect_unix(sock)
    return h


def make_image(path, size, seed):
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(size))
    a = size // 3
    data[a:a + size // 8] = bytes(size // 8)
    with open(path, "wb") as f:
        f.write(data)


def draw(rnd, size):
    kind = rnd.randrange(4)
    if kind == 0:
        n = rnd.randint(1, 600)
    elif kind == 1:
        n = rnd.randint(1, 20000)
    elif kind == 2:
        n = 4096 << rnd.randrange(5)
    else:
        n = rnd.randint(1, 300000)
    n = min(n, size)
    off = rnd.randrange(size - n + 1)
    if kind == 2:
        off -= off % 4096
    return off, n


def do_write(sock, name, model, seed, count):
    with open(model, "rb") as f:
        img = bytearray(f.read())
    rnd = random.Random(seed)
    h = connect(sock, name)
    assert h.get_size() == len(img), (h.get_size(), len(img))
    for _ in range(count):
        off, n = draw(rnd, len(img))
        buf = rnd.randbytes(n)
        h.pwrite(buf, off, nbd.CMD_FLAG_FUA if rnd.random() < 0.1 else 0)
        img[off:off + n] = buf
    h.flush()
    h.shutdown()
    with open(model + ".tmp", "wb") as f:
        f.write(img)
    os.rename(model + ".tmp", model)


def do_check(sock, name, model):
    with open(model, "rb") as f:
        img = f.read()
    h = connect(sock, name)
    assert h.get_size() == len(img), (h.get_size(), len(img))
    got = bytearray()
    step = 1 << 20
    for off in range(0, len(img), step):
        got += h.pread(min(step, len(img) - off), off)
    rnd = random.Random(len(img))
    for _ in range(50):
        off, n = draw(rnd, len(img))
        if h.pread(n, off) != img[off:off + n]:
            raise SystemExit("export '%s': a read of %d bytes at %d differs "
                             "from the model" % (name, n, off))
    h.shutdown()
    if got != img:
        i = next(i for i in range(len(img)) if got[i] != img[i])
        raise SystemExit("export '%s': byte %d (of %d) is 0x%02x, the model "
                         "0x%02x" % (name, i, len(img), got[i], img[i]))


def do_stream(sock, d, seed):
    with open(d + "/flushed", "rb") as f:
        img = bytearray(f.read())
    rnd = random.Random(seed)
    pending = open(d + "/pending", "wb")
    try:
        h = connect(sock, "")       # the kill may come first
        while True:
            for _ in range(rnd.randint(1, 8)):
                off, n = draw(rnd, len(img))
                buf = rnd.randbytes(n)
                pickle.dump((off, buf), pending)
                pending.flush()
                h.pwrite(buf, off)
                img[off:off + n] = buf
            h.flush()
            with open(d + "/flushed.tmp", "wb") as f:
                f.write(img)
            os.rename(d + "/flushed.tmp", d + "/flushed")
            pending.truncate(0)
            pending.seek(0)
    except nbd.Error:
        pass


def do_settle(sock, d):
    with open(d + "/flushed", "rb") as f:
        img = f.read()
    later = []
    with open(d + "/pending", "rb") as f:
        while True:
            try:
                later.append(pickle.load(f))
            except EOFError:
                break
    h = connect(sock, "")
    got = h.pread(len(img), 0)
    h.shutdown()
    if got != img:
        ok = bytearray(len(img))
        for off, b in later:
            for i, c in enumerate(b):
                if got[off + i] == c:
                    ok[off + i] = 1
        for i in range(len(img)):
            if got[i] != img[i] and not ok[i]:
                raise SystemExit("origin: byte %d is neither flushed nor "
                                 "pending data (%d pending writes)" %
                                 (i, len(later)))
    with open(d + "/flushed", "wb") as f:
        f.write(got)
    open(d + "/pending", "wb").close()


def main():
    cmd = sys.argv[1]
    if cmd == "image":
        make_image(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "write":
        do_write(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                 int(sys.argv[6]))
    elif cmd == "check":
        do_check(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "stream":
        do_stream(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "settle":
        do_settle(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
