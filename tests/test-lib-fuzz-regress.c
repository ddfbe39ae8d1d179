/* test-lib-fuzz-regress.c: replay the saved fuzzer inputs of
 * tests/data/fuzz/ through the fuzzer's own harness (fuzz/fuzz-harness.c,
 * compiled in here with the ordinary compiler), one Check test per file.
 * An input passes when it is opened or refused cleanly: one message, no
 * crash (and, in the sanitizer build, no ASan or UBSan report).
 *
 * Inputs that once broke fuzz/fuzz-load join the directory (style.md,
 * "Tests"); the rest are seeds near the loader's edges.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../fuzz/fuzz-harness.c"

static char *dir;
static char **names;
static int n_names;

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
list_inputs (void)
{
  const char *srcdir = getenv ("srcdir");
  DIR *d;
  struct dirent *ent;

  if (asprintf (&dir, "%s/data/fuzz", srcdir ? srcdir : ".") < 0)
    abort ();
  d = opendir (dir);
  if (d == NULL) {
    perror (dir);
    exit (EXIT_FAILURE);
  }
  while ((ent = readdir (d)) != NULL) {
    if (ent->d_name[0] == '.')
      continue;
    names = realloc (names, (n_names + 1) * sizeof *names);
    if (names == NULL || (names[n_names] = strdup (ent->d_name)) == NULL)
      abort ();
    n_names++;
  }
  closedir (d);
  qsort (names, n_names, sizeof *names, compare_names);
}

START_TEST (test_replay)
{
  char *path;
  FILE *f;
  long size;
  uint8_t *data;
  int r;

  ck_assert (asprintf (&path, "%s/%s", dir, names[_i]) >= 0);
  f = fopen (path, "rb");
  ck_assert_msg (f != NULL, "%s: cannot open", path);
  ck_assert (fseek (f, 0, SEEK_END) == 0);
  size = ftell (f);
  ck_assert (size >= 0);
  rewind (f);
  data = malloc (size ? size : 1);
  ck_assert (data != NULL);
  ck_assert (fread (data, 1, size, f) == (size_t) size);
  fclose (f);
  r = snapcow_fuzz_one (data, size);
  fprintf (stderr, "%s: %s\n", names[_i], r ? "opened" : "refused");
  free (data);
  free (path);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("fuzz-regress");
  TCase *tc = tcase_create ("replay");
  SRunner *sr;
  int failed;

  list_inputs ();
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_replay, 0, n_names);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  printf ("replayed %d inputs from %s\n", n_names, dir);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
