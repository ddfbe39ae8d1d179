/* origin-commit.c: commit several stores at once, for origin mode.
 *
 * An origin write that copied chunks into several stores must wait for
 * all their commits before it writes the origin.  Each commit costs two
 * syncs of its own COW device, so in turn four stores would cost four
 * times one.  Instead each store but the first has a committer thread;
 * the writer asks the committers of the other stores, commits the
 * first itself, and waits for the rest.  Concurrent writers that ask
 * the same committer share its next commit, as they would share a
 * group commit (commit.c).
 *
 * The threads start on first use, not in cow_origin_open, since a
 * server may fork between the two.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "origin-internal.h"

bool
store_all_durable (struct cow_store *s)
{
  uint64_t issued, done;
  bool committing;
  size_t pending;

  /* A record leaves s->pending only into a commit, which then makes it
   * durable, fails the store, or (ENOSPC) puts it back, all before
   * `committing` clears.  A commit starts only for a ticket not yet
   * served.  So if no ticket is waiting and no commit runs both before
   * and after pending is seen empty, with no ticket taken in between,
   * every record added before the first look is durable (or the store
   * has failed, which the caller checks).
   */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    issued = s->tickets_issued;
    done = s->tickets_done;
    committing = s->committing;
  }
  if (committing || done != issued)
    return false;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->lock);
    pending = s->pending.len;
  }
  if (pending > 0)
    return false;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->commit_lock);
    return !s->committing && s->tickets_issued == issued;
  }
}

static void *
committer_thread (void *arg)
{
  struct committer *c = arg;

  pthread_mutex_lock (&c->lock);
  for (;;) {
    uint64_t covers;
    int r;

    while (c->finished == c->asked && !c->stop)
      pthread_cond_wait (&c->work, &c->lock);
    if (c->finished == c->asked)
      break;                    /* stop, with nothing asked */
    covers = c->asked;
    pthread_mutex_unlock (&c->lock);
    r = cow_store_commit (c->s);
    pthread_mutex_lock (&c->lock);
    c->finished = covers;
    /* A waiter may read the result of a later commit than the one that
     * covered it: that one started after the request too, so its
     * success also covers the request.
     */
    c->result = r;
    pthread_cond_broadcast (&c->done);
  }
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

void
committer_init (struct committer *c, struct cow_store *s)
{
  c->s = s;
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->work, NULL);
  pthread_cond_init (&c->done, NULL);
}

void
committer_stop (struct committer *c)
{
  if (c->started) {
    pthread_mutex_lock (&c->lock);
    c->stop = true;
    pthread_cond_signal (&c->work);
    pthread_mutex_unlock (&c->lock);
    pthread_join (c->thread, NULL);
  }
  pthread_mutex_destroy (&c->lock);
  pthread_cond_destroy (&c->work);
  pthread_cond_destroy (&c->done);
}

/* Start the committers of stores 1.. once.  A store whose thread cannot
 * start is committed in the writer's thread instead.
 */
static void
start_committers (struct cow_origin *o)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&o->start_lock);

  if (o->committers_started)
    return;
  for (size_t i = 1; i < o->nr_stores; i++) {
    struct committer *c = &o->st[i].committer;

    c->started = pthread_create (&c->thread, NULL, committer_thread, c) == 0;
    if (!c->started)
      origin_message (o, COW_MSG_DEBUG, "cannot start a committer thread: "
                      "committing store %zu in turn", i);
  }
  o->committers_started = true;
}

static uint64_t
committer_ask (struct committer *c)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  uint64_t ticket = ++c->asked;

  pthread_cond_signal (&c->work);
  return ticket;
}

static int
committer_wait (struct committer *c, uint64_t ticket)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);

  while (c->finished < ticket)
    pthread_cond_wait (&c->done, &c->lock);
  return c->result;
}

/* The result of store i's commit, after the on-full policy.  A store
 * invalidated meanwhile (full, in another writer) is skipped from now
 * on, its commit's failure with it.
 */
static int
commit_result (struct cow_origin *o, size_t i, int r)
{
  if (r == -ENOSPC)
    return origin_store_full (o, i);
  if (r < 0 && !o->st[i].s->valid && !o->st[i].s->failed)
    return origin_store_usable (o, i) < 0 ? r : 0;
  return r;
}

int
origin_commit_stores (struct cow_origin *o, const bool *want)
{
  CLEANUP_FREE uint64_t *tickets = NULL;
  CLEANUP_FREE bool *use = NULL;
  CLEANUP_FREE bool *asked = NULL;
  bool inline_done = false;
  size_t count = 0;
  int r = 0;

  tickets = calloc (o->nr_stores ?: 1, sizeof *tickets);
  use = calloc (o->nr_stores ?: 1, sizeof *use);
  asked = calloc (o->nr_stores ?: 1, sizeof *asked);
  if (tickets == NULL || use == NULL || asked == NULL) {
    origin_message (o, COW_MSG_ERROR, "out of memory");
    return -ENOMEM;
  }
  /* An invalidated store needs no commit (it would fail), once its
   * header says so on disk (origin_store_usable waits for that).
   */
  for (size_t i = 0; i < o->nr_stores; i++) {
    int ru;

    if (!want[i])
      continue;
    ru = origin_store_usable (o, i);
    if (ru < 0 && r == 0)
      r = ru;
    use[i] = ru > 0;
    count += use[i];
  }
  if (count > 1)
    start_committers (o);
  /* The first store runs here, the others in their threads. */
  for (size_t i = 0; i < o->nr_stores; i++) {
    if (!use[i])
      continue;
    if (!inline_done)
      inline_done = true;
    else if (o->st[i].committer.started) {
      tickets[i] = committer_ask (&o->st[i].committer);
      asked[i] = true;
    }
  }
  for (size_t i = 0; i < o->nr_stores; i++) {
    int ri;

    if (!use[i] || asked[i])
      continue;
    ri = commit_result (o, i, cow_store_commit (o->st[i].s));
    if (r == 0)
      r = ri;
  }
  for (size_t i = 0; i < o->nr_stores; i++) {
    int ri;

    if (!asked[i])
      continue;
    ri = commit_result (o, i, committer_wait (&o->st[i].committer,
                                              tickets[i]));
    if (r == 0)
      r = ri;
  }
  return r;
}
