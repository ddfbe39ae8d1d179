#!/usr/bin/env bash
# test-origin-nbd-reconnect.sh: an NBD origin server that dies and comes
# back.  The origin is served by qemu-nbd (not our code).  qemu-nbd is
# killed with SIGKILL while a stream of reads and first writes is in
# flight: reads of origin chunks and copies fail with EIO, chunks
# already in the store go on working, and nothing half-copied is
# recorded.  When qemu-nbd is started again on the same socket, snapcow
# reconnects by itself (no restart of nbdkit, no new client), and every
# byte is right; a server with an image of another size in between is
# refused.  The store is then checked record by record.
source ./functions.sh
set -e
set -x
requires qemu-nbd --version
requires nbdsh --version
requires nbdinfo --version

d=$(mktemp -d /tmp/snapcow-reconnect.XXXXXX)
cleanup_fn rm -rf "$d"
export CH=65536 d
$PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(3).randbytes(4 << 20))' > "$d/base.img"
before=$(md5sum < "$d/base.img")

sock="$d/origin.sock"
uri="nbd+unix:///?socket=$sock"

# qemu-nbd in the foreground as our child: read-only, raw, up to 8
# clients at once (snapcow keeps several), persistent.
start_qemu_nbd ()
{
    local i
    rm -f "$sock"
    qemu-nbd -r -f raw -k "$sock" -e 8 -t "${1:-$d/base.img}" &
    echo $! > "$d/qemu.pid"
    for (( i = 0; i < 600; i++ )); do
        if nbdinfo --size "$uri" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$d/qemu.pid")"
        sleep 0.1
    done
    echo "$0: qemu-nbd did not start" >&2
    return 1
}
kill_qemu_nbd ()
{
    if [ -s "$d/qemu.pid" ]; then
        kill -9 "$(cat "$d/qemu.pid")" 2>/dev/null
    fi
    return 0
}
cleanup_fn kill_qemu_nbd

start_qemu_nbd
# nbdkit's log in $d/log (without the shell's trace of start_nbdkit).
set +x
start_nbdkit -P "$d/snap.pid" -U "$d/snap.sock" \
    "$SNAPCOW_PLUGIN" "$uri" cow="$d/snap.cow" chunk-size=64K 2>"$d/log"
set -x
snap="nbd+unix:///?socket=$d/snap.sock"

# The model: expected.img is what the snapshot must read as, copied
# lists the chunks that must have a record.
common='
import errno, json, os, random, signal, time
CH = int(os.environ["CH"])
d = os.environ["d"]
base = open(d + "/base.img", "rb").read()
size = len(base)
nchunks = size // CH

def load():
    global exp, copied
    exp = bytearray(open(d + "/expected.img", "rb").read())
    copied = set(json.load(open(d + "/copied.json")))

def save():
    open(d + "/expected.img", "wb").write(exp)
    json.dump(sorted(copied), open(d + "/copied.json", "w"))

def eio(f):
    try:
        f()
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e
        return
    assert False, "expected EIO"
'

# Before: copies and reads all work.
nbdsh -u "$snap" -c "$common" -c '
exp = bytearray(base)
copied = set()
rnd = random.Random(1)
for c in range(0, 16):
    off = c * CH + rnd.randrange(0, CH - 4096)
    buf = rnd.randbytes(4096)
    h.pwrite(buf, off)
    exp[off:off+4096] = buf
    copied.add(c)
h.flush()
assert h.pread(size, 0) == exp
save()
'

# During: batches of requests in flight, each batch on chunks of its
# own (so that what a read must return does not depend on the order).
# The server is killed right after the sixth batch is sent.  A request
# that needed the origin may then fail, with EIO; every other request
# succeeds, and every read returns the model's bytes.
nbdsh -u "$snap" -c "$common" -c '
load()
qemu_pid = int(open(d + "/qemu.pid").read())
rnd = random.Random(2)

def dead(pid):
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"

def wait(cookie):
    while True:
        try:
            if h.aio_command_completed(cookie):
                return 0
        except nbd.Error as e:
            return e.errnum
        h.poll(-1)

killed = False
ok = { "read": 0, "write": 0, "copy": 0 }
failed = { "read": 0, "write": 0, "copy": 0 }
for batch in range(12):
    ops = []
    for c in rnd.sample(range(nchunks), 8):
        off = c * CH + rnd.randrange(0, CH - 8192)
        kind = rnd.choice(["read", "write"])
        if kind == "write":
            buf = rnd.randbytes(8192)
            cookie = h.aio_pwrite(buf, off)
            kind = "write" if c in copied else "copy"
        else:
            buf = nbd.Buffer(8192)
            cookie = h.aio_pread(buf, off)
        ops.append((kind, c, off, buf, cookie))
    if batch == 5:
        os.kill(qemu_pid, signal.SIGKILL)
        killed = True
    for kind, c, off, buf, cookie in ops:
        err = wait(cookie)
        if err != 0:
            assert killed, (kind, c, err)
            assert err == errno.EIO, (kind, c, err)
            assert kind != "write" and c not in copied, (kind, c)
            failed[kind] += 1
            continue
        # Once the server is dead, nothing that needs it can succeed.
        assert batch <= 5 or kind == "write" or c in copied, (kind, c)
        ok[kind] += 1
        if kind == "read":
            assert buf.to_bytearray() == exp[off:off+8192], (c, off)
        else:
            exp[off:off+8192] = buf
            copied.add(c)
    if killed:
        # Wait until the server is gone (a zombie has closed its
        # sockets): the next batches run with no server.
        while not dead(qemu_pid):
            time.sleep(0.1)
print("in flight: ok", ok, "failed", failed)
assert failed["read"] > 0 and failed["copy"] > 0

rnd = random.Random(3)
missing = [c for c in range(nchunks) if c not in copied]
assert len(missing) >= 9
for c in missing[:8]:
    # A read of an origin chunk, and a first write that must copy one:
    # EIO, and nothing is recorded.
    eio(lambda: h.pread(CH, c * CH))
    eio(lambda: h.pread(3 * CH, min(max(c - 1, 0), nchunks - 3) * CH))
    eio(lambda: h.pwrite(rnd.randbytes(512), c * CH + 4096))
# Chunks in the store: reads and writes work, byte for byte.
for c in sorted(copied):
    assert h.pread(CH, c * CH) == exp[c*CH:(c+1)*CH], c
    off = c * CH + rnd.randrange(0, CH - 1000)
    buf = rnd.randbytes(1000)
    h.pwrite(buf, off)
    exp[off:off+1000] = buf
    assert h.pread(CH, c * CH) == exp[c*CH:(c+1)*CH], c
# A whole-chunk write needs nothing from the origin: it works too.
c = missing[8]
buf = rnd.randbytes(CH)
h.pwrite(buf, c * CH)
exp[c*CH:(c+1)*CH] = buf
copied.add(c)
assert h.pread(CH, c * CH) == buf
h.flush()
save()
'

# The loss was logged once, however many requests failed.
test "$(grep -c "origin $uri: connection lost: " "$d/log")" = 1

# A server with another image, of another size, on the same socket:
# refused, and said so once.  Requests keep failing with EIO meanwhile.
cp "$d/base.img" "$d/other.img"
truncate -s 5M "$d/other.img"
start_qemu_nbd "$d/other.img"
nbdsh -u "$snap" -c "$common" -c '
load()
c = [c for c in range(nchunks) if c not in copied][0]
deadline = time.monotonic() + 60
while "refused the new connection" not in open(d + "/log").read():
    eio(lambda: h.pread(CH, c * CH))
    assert time.monotonic() < deadline, "no reconnection attempt after 60 s"
    time.sleep(0.1)
eio(lambda: h.pread(CH, c * CH))
assert h.pread(CH, min(copied) * CH) == exp[min(copied)*CH:(min(copied)+1)*CH]
'
kill -9 "$(cat "$d/qemu.pid")"
wait "$(cat "$d/qemu.pid")" || :
grep "origin $uri: refused the new connection: the origin is now 5242880 bytes, not 4194304 as at start-up" "$d/log"

# After: the same server again, on the same socket.  snapcow was not
# restarted; its next requests reconnect.  A connection tries at most
# once a second, so the first read may still fail: retry it (the 60 s
# limit only keeps a broken build from hanging).
start_qemu_nbd
nbdsh -u "$snap" -c "$common" -c '
load()
missing = [c for c in range(nchunks) if c not in copied]
deadline = time.monotonic() + 60
while True:
    try:
        data = h.pread(CH, missing[0] * CH)
        break
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e
        assert time.monotonic() < deadline, "no reconnection after 60 s"
        time.sleep(0.1)
assert data == exp[missing[0]*CH:(missing[0]+1)*CH]
# Every byte, then new copies (among them chunks whose copy failed).
assert h.pread(size, 0) == exp
rnd = random.Random(4)
for c in missing[:12]:
    off = c * CH + rnd.randrange(0, CH - 4096)
    buf = rnd.randbytes(4096)
    h.pwrite(buf, off)
    exp[off:off+4096] = buf
    copied.add(c)
    assert h.pread(CH, c * CH) == exp[c*CH:(c+1)*CH], c
for i in range(50):
    off = rnd.randrange(0, size - 100000)
    n = rnd.randrange(1, 100000)
    assert h.pread(n, off) == exp[off:off+n], (off, n)
h.flush()
assert h.pread(size, 0) == exp
save()
'
stop_nbdkit "$d/snap.pid"
grep -v '^libnbd: debug' "$d/log"

# Each change of state was logged once.
test "$(grep -c "origin $uri: connection lost: " "$d/log")" = 1
test "$(grep -c "origin $uri: reconnected" "$d/log")" = 1
test "$(grep -c "origin $uri: refused the new connection" "$d/log")" = 1

# The store: one record per copied chunk, none for a copy that failed,
# and each record's chunk holds the model's bytes.
snapcow_tool dump "$d/snap.cow" > "$d/dump"
$PYTHON - "$d/dump" <<'EOF'
import json, os, sys
CH = int(os.environ["CH"])
d = os.environ["d"]
exp = open(d + "/expected.img", "rb").read()
copied = set(json.load(open(d + "/copied.json")))
cow = open(d + "/snap.cow", "rb").read()
records = [tuple(int(x) for x in line.split())
           for line in open(sys.argv[1]) if not line.startswith("#")]
olds = [r[2] for r in records]
assert len(olds) == len(set(olds)), "duplicate records"
assert set(olds) == copied, sorted(set(olds) ^ copied)
for area, index, old, new in records:
    assert cow[new*CH:(new+1)*CH] == exp[old*CH:(old+1)*CH], (old, new)
print(len(records), "records, each chunk right")
EOF
test "$(md5sum < "$d/base.img")" = "$before"
