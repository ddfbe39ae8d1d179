/* merge.c: snapcow merge ORIGIN COW: write the snapshot back into its
 * origin, offline, as the kernel's snapshot-merge does online
 * (lib/merge.c does the work; snapcow(1), "snapcow merge").
 *
 * Order: the store's exclusive lock (a server holding it makes this
 * refuse: there is no --force, since the server would go on serving
 * records that the merge clears and an origin that it changes), then
 * the checks of `snapcow check` with the origin's size, refusing a
 * store with any error before the origin is opened for writing, then
 * the merge in steps of MERGE_BUDGET bytes, each ending in the kernel's
 * commit.  Killed at any point, it is simply run again.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

/* Bytes copied between two commits (two syncs of the origin's worth):
 * big enough that syncs cost little beside the copy, small enough that
 * an interrupted merge redoes little.
 */
#define MERGE_BUDGET (UINT64_C (256) << 20)
/* Errors named when the check refuses the store. */
#define FIRST_ERRORS 3

static const char merge_usage[] =
  "Usage: snapcow merge [--quiet] [--json] [--rate=SIZE] ORIGIN COW\n"
  "\n"
  "Write the snapshot's chunks back into ORIGIN, last record first, as\n"
  "the kernel's snapshot-merge does: afterwards ORIGIN holds what the\n"
  "snapshot showed and COW holds no records.  The store is checked first\n"
  "and a store with errors is refused before ORIGIN is touched.  A merge\n"
  "that is interrupted (killed, power lost) finishes when run again.\n"
  "A store that a running server holds is refused.\n"
  "\n"
  "  --quiet      no progress bar and no summary line\n"
  "  --json       print a JSON summary on stdout at the end\n"
  "  --rate=SIZE  copy at most SIZE bytes per second (K, M, G suffixes)\n"
  "  --help       this text\n";

struct progress {
  bool bar;                     /* draw the bar on stderr */
  uint64_t rate;                /* bytes per second; 0: no limit */
  uint64_t total;               /* bytes to copy, as the records say */
  uint64_t done;
  double start, last_draw;
};

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
draw (struct progress *p, bool final)
{
  double t = now (), elapsed = t - p->start;
  double frac = p->total ? (double) p->done / p->total : 1;
  double rate = elapsed > 0 ? p->done / elapsed : 0;
  char eta[32] = "--:--";
  int width = 30, filled;

  if (frac > 1 || final)
    frac = 1;
  if (!final && t - p->last_draw < 0.2)
    return;
  p->last_draw = t;
  if (rate > 0) {
    uint64_t left = final ? 0 : (uint64_t) ((p->total - (frac * p->total))
                                            / rate + 0.5);
    snprintf (eta, sizeof eta, "%" PRIu64 ":%02" PRIu64, left / 60,
              left % 60);
  }
  filled = (int) (frac * width);
  fprintf (stderr, "\r[%.*s%*s] %3d%% %8.1f MiB/s ETA %s ",
           filled, "##############################", width - filled, "",
           (int) (frac * 100), rate / (1 << 20), eta);
  if (final)
    fputc ('\n', stderr);
  fflush (stderr);
}

/* After each piece the library copies: the bar, and the rate limit,
 * which sleeps until the bytes so far fit the rate.
 */
static int
on_piece (void *opaque, uint64_t bytes)
{
  struct progress *p = opaque;

  p->done += bytes;
  if (p->rate) {
    double due = p->start + (double) p->done / p->rate, t = now ();

    if (due > t) {
      double wait = due - t;
      struct timespec ts = {
        .tv_sec = (time_t) wait,
        .tv_nsec = (long) ((wait - (time_t) wait) * 1e9),
      };
      while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
    }
  }
  if (p->bar)
    draw (p, false);
  return 0;
}

static void
print_error (void *opaque, enum cow_severity sev, const char *msg)
{
  struct { const char *path; uint64_t errors; bool quiet; } *c = opaque;

  if (sev == COW_PROBLEM_ERROR) {
    if (++c->errors <= FIRST_ERRORS)
      tool_error (c->path, "error: %s", msg);
  }
  else if (!c->quiet)
    tool_error (c->path, "warning: %s", msg);
}

static void
print_json (const char *origin, const char *path,
            const struct cow_merge_totals *t, double seconds,
            const char *status)
{
  printf ("{\n  \"origin\": ");
  json_string (stdout, origin);
  printf (",\n  \"cow\": ");
  json_string (stdout, path);
  printf (",\n  \"records\": %" PRIu64 ",\n  \"runs\": %" PRIu64
          ",\n  \"bytes\": %" PRIu64 ",\n  \"seconds\": %.3f"
          ",\n  \"status\": ", t->records, t->runs, t->bytes, seconds);
  json_string (stdout, status);
  printf ("\n}\n");
}

/* Open ORIGIN and COW for writing, lock COW, check it.  Returns 0, or
 * an exit status with the message printed.
 */
static int
open_and_check (const char *origin_path, const char *path, bool quiet,
                struct cow_io **cowp, struct cow_io **originp,
                bool *is_new)
{
  struct { const char *path; uint64_t errors; bool quiet; } c = {
    path, 0, quiet,
  };
  struct cow_check_summary sum;
  struct stat cst, ost;
  uint64_t origin_size;
  int fd, r;

  *cowp = open_device (path, O_RDWR, &fd);
  if (*cowp == NULL)
    return EXIT_FAILED;
  r = cow_lock_fd (fd, true);
  if (r == -EBUSY) {
    tool_error (path, "in use by a running server: stop it first (a "
                "store cannot be merged while it is served)");
    return EXIT_FAILED;
  }
  if (r < 0) {
    tool_error (path, "cannot lock: %s", strerror (-r));
    return EXIT_FAILED;
  }
  if (fstat (fd, &cst) == -1) {
    tool_error (path, "%m");
    return EXIT_FAILED;
  }
  /* Read-only until the store has passed its check. */
  *originp = open_device (origin_path, O_RDONLY, &fd);
  if (*originp == NULL)
    return EXIT_FAILED;
  if (fstat (fd, &ost) == -1) {
    tool_error (origin_path, "%m");
    return EXIT_FAILED;
  }
  if (cow_same_file (&cst, &ost)) {
    tool_error (path, "the store and the origin are the same file");
    return EXIT_FAILED;
  }
  r = cow_io_get_size (*originp, &origin_size);
  if (r < 0 || origin_size == 0) {
    tool_error (origin_path, "cannot get the origin's size%s",
                r < 0 ? "" : " (it is empty)");
    return EXIT_FAILED;
  }
  cow_io_close (*originp);
  *originp = NULL;

  r = cow_check (*cowp, origin_size, print_error, &c, &sum);
  if (r < 0) {
    tool_error (path, "cannot read the store: %s", strerror (-r));
    return EXIT_FAILED;
  }
  if (sum.errors) {
    tool_error (path, "refusing to merge: the check found %" PRIu64
                " error%s%s; the origin is unchanged ('snapcow check "
                "--origin=%s %s' lists them all)", sum.errors,
                plural_s (sum.errors),
                sum.errors > FIRST_ERRORS ? ", the first above" : " above",
                origin_path, path);
    return EXIT_FAILED;
  }
  *is_new = sum.is_new;
  if (sum.is_new)
    return 0;
  *originp = open_device (origin_path, O_RDWR, NULL);
  if (*originp == NULL)
    return EXIT_FAILED;
  return 0;
}

int
cmd_merge (int argc, char **argv)
{
  static const struct option opts[] = {
    { "quiet", no_argument, NULL, 'q' },
    { "json", no_argument, NULL, 'j' },
    { "rate", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL },
  };
  bool quiet = false, json = false, is_new = false;
  const char *origin_path, *path;
  struct cow_io *cow = NULL, *origin = NULL;
  struct cow_store *s = NULL;
  struct cow_merge *m = NULL;
  struct cow_merge_totals t = { 0 };
  struct cow_usage u;
  struct progress p = { 0 };
  char status[COW_USAGE_STATUS_LEN] = "";
  int64_t rate = 0, n;
  uint64_t budget;
  int c, r, ret = EXIT_FAILED;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":hq", opts, NULL)) != -1) {
    switch (c) {
    case 'q': quiet = true; break;
    case 'j': json = true; break;
    case 'r':
      rate = parse_size (optarg);
      if (rate <= 0)
        return usage_error ("--rate=%s: not a size in bytes per second "
                            "above 0 (4096, 512K, 100M, 1G)", optarg);
      break;
    case 'h': return usage (merge_usage, true);
    default: return bad_option (c, argv, opts);
    }
  }
  if (argc - optind != 2) {
    if (argc - optind < 2)
      return usage_error ("needs two arguments: ORIGIN COW");
    return usage_error ("unexpected argument '%s' (ORIGIN COW only)",
                        argv[optind + 2]);
  }
  origin_path = argv[optind];
  path = argv[optind + 1];

  p.start = now ();
  r = open_and_check (origin_path, path, quiet, &cow, &origin, &is_new);
  if (r != 0) {
    ret = r;
    goto out;
  }
  if (is_new) {
    /* Never initialised: nothing to merge, and nothing is written. */
    if (!quiet && !json)
      printf ("%s: a new store (magic 0): nothing to merge\n", path);
    if (json)
      print_json (origin_path, path, &t, 0, "new");
    ret = EXIT_OK;
    goto out;
  }

  {
    struct cow_store_params params = {
      .message = tool_message, .message_opaque = (void *) path,
    };
    if (cow_store_open (cow, origin, &params, &s) < 0)
      goto out;
  }
  if (cow_merge_begin (s, &m) < 0)
    goto out;
  cow_store_usage (s, &u);
  p.total = u.records * ((uint64_t) u.chunk_sectors * COW_SECTOR_SIZE);
  p.rate = rate;
  p.bar = !quiet && isatty (STDERR_FILENO);
  /* Slowed down, it still commits about four times a second, so that
   * an interrupted merge keeps most of what it did.
   */
  budget = MERGE_BUDGET;
  if (rate && (uint64_t) rate / 4 < budget)
    budget = rate / 4;
  do
    n = cow_merge_step (m, budget, on_piece, &p);
  while (n > 0);
  if (p.bar)
    draw (&p, n == 0);
  if (n < 0)
    goto out;
  cow_merge_get_totals (m, &t);
  cow_merge_end (m);
  m = NULL;
  cow_store_usage (s, &u);
  cow_usage_status (&u, status, sizeof status);
  r = cow_store_close (s);
  s = NULL;
  if (r < 0)
    goto out;
  if (json)
    print_json (origin_path, path, &t, now () - p.start, status);
  else if (!quiet)
    printf ("%s: merged %" PRIu64 " record%s (%" PRIu64 " bytes, %" PRIu64
            " run%s) into %s in %.1f s; the store is empty: %s\n", path,
            t.records, plural_s (t.records), t.bytes, t.runs,
            plural_s (t.runs), origin_path, now () - p.start, status);
  ret = EXIT_OK;

 out:
  cow_merge_end (m);
  if (s)
    cow_store_close (s);
  cow_io_close (cow);
  cow_io_close (origin);
  return ret;
}
