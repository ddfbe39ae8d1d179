#!/usr/bin/env bash
# test-store-mode.sh: a new store gets no more permission than its
# origin: read-write for its owner and the origin's read bits for group
# and others, never wider than 0644 (and less the umask); 0600 for an origin on an NBD server.  The store holds
# copies of the origin's data, so a private origin stays private.

source ./functions.sh
set -e
set -x
requires $PYTHON -c 'import nbd'

d=$(mktemp -d /tmp/snapcow-mode.XXXXXX)
cleanup_fn rm -rf "$d"
sock=$d/sock

truncate -s 1M $d/origin

# new_store [ORIGIN]: make the store with one write; print its mode.
# nbdkit sets its own umask to 022, whatever ours is, and the mode the
# plugin asks for is never wider than 0644: the umask takes nothing
# away, so the mode seen is the plugin's own choice.
new_store ()
{
    rm -f $d/cow
    ( start_nbdkit -P $d/pid -U $sock "$SNAPCOW_PLUGIN" "${1:-$d/origin}" \
                   cow=$d/cow
      nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"x" * 512, 4096)'
      stop_nbdkit $d/pid ) >&2
    stat -c %a $d/cow
}

chmod 0600 $d/origin; test "$(new_store)" = 600
chmod 0640 $d/origin; test "$(new_store)" = 640
chmod 0666 $d/origin; test "$(new_store)" = 644
chmod 0604 $d/origin; test "$(new_store)" = 604
chmod 0755 $d/origin; test "$(new_store)" = 644
# A read-only golden image: the owner may still write the store.
chmod 0444 $d/origin; test "$(new_store)" = 644
chmod 0400 $d/origin; test "$(new_store)" = 600

# An origin on an NBD server has no mode: 0600.
chmod 0644 $d/origin
start_nbdkit -P $d/opid -U $d/osock -r file $d/origin
test "$(new_store "nbd+unix:///?socket=$d/osock")" = 600
stop_nbdkit $d/opid
