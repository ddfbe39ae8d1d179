/* main.c: the snapcow command: finds the subcommand by name and runs
 * it.  Each command lives in its own file (create.c, info.c, check.c,
 * dump.c, map.c, merge.c) over lib/.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} commands[] = {
  { "create", cmd_create, "make a new, empty COW store" },
  { "info",   cmd_info,   "print the header and usage, as dmsetup status" },
  { "check",  cmd_check,  "check every record; list every problem" },
  { "dump",   cmd_dump,   "list the records in on-disk order" },
  { "map",    cmd_map,    "map the changed ranges (and the origin's)" },
  { "merge",  cmd_merge,  "write the snapshot back into its origin" },
};

static void
list_commands (FILE *fp)
{
  fprintf (fp, "Usage: snapcow COMMAND [OPTIONS] COW\n\n"
           "Inspect and make dm-snapshot persistent COW stores.\n\n"
           "Commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (fp, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf (fp, "\n'snapcow COMMAND --help' describes a command; "
           "snapcow(1) has the details.\n");
}

int
main (int argc, char **argv)
{
  static char name[64];

  if (argc < 2) {
    list_commands (stderr);
    return EXIT_USAGE;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    list_commands (stdout);
    return EXIT_OK;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("snapcow %s\n", PACKAGE_VERSION);
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (argv[1], commands[i].name) == 0) {
      snprintf (name, sizeof name, "snapcow %s", commands[i].name);
      command_name = name;
      /* getopt names the program after argv[0] in the messages it
       * prints itself (create's).
       */
      argv[1] = name;
      return commands[i].run (argc - 1, argv + 1);
    }
  fprintf (stderr, "snapcow: unknown command '%s'\n"
           "Try 'snapcow --help'.\n", argv[1]);
  return EXIT_USAGE;
}
