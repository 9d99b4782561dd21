"""`jaxopt-hw`: run the homework report, list experiments, grade answers, run benchmarks.

    jaxopt-hw run [CONFIG ...] [--out DIR] [--set key=value ...] [--force] [--verbose]
    jaxopt-hw run [CONFIG ...] [--set key=value ...] --print-config | --dry-run
    jaxopt-hw plot RUN_DIR [--out DIR]
    jaxopt-hw list
    jaxopt-hw check ANSWERS.toml | check update ... | check theta ...
    jaxopt-hw bench {sweep,collectives} [--json] ...

Errors a user can cause print one line (``error: ...``) and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

from jaxopt_hw import report, runner
from jaxopt_hw.bench import BENCHMARKS
from jaxopt_hw.config import describe, is_runnable, packaged_configs
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.platform import configure
from jaxopt_hw.studies import STUDIES, figures

# Everything above is free of JAX, so `--help`, `list` and `plot` stay fast; the modules of `check`
# and `bench` load JAX and are imported only when their command runs (importlib, below).

EXIT_USAGE = 2


def _run(args: argparse.Namespace) -> int:
  if args.print_config or args.dry_run:
    return _check_only(args)
  start = time.perf_counter()
  out = runner.run(
    args.configs,
    overrides=args.set,
    out_dir=args.out,
    force=args.force,
    show_progress=sys.stderr.isatty() and not args.no_progress,
    echo=print,
    verbose=args.verbose,
  )
  print(report.run_footer(out, time.perf_counter() - start))
  return 0


def _check_only(args: argparse.Namespace) -> int:
  """--print-config and --dry-run: resolve and check every setting, run nothing."""
  built = runner.resolve(args.configs, args.set)
  if args.print_config:
    print(config_text(built))
  if args.dry_run:
    print(
      f"dry run: {len(built)} experiment{'s' if len(built) != 1 else ''} configured correctly ("
      + ", ".join(name for name, _, _ in built)
      + "); nothing was run or written."
    )
  return 0


def config_text(built) -> str:
  """The resolved settings of every experiment as ``KEY = VALUE`` lines (what ``--set KEY=VALUE``
  takes), each with its type, default and allowed values."""
  blocks = []
  for name, config, source in built:
    rows = describe(config, prefix=name)
    pairs = [f"{r.key} = {r.value}" for r in rows]
    width = min(max(map(len, pairs)), 56)
    lines = [f"# {STUDIES[name].title} (from {source})"]
    for pair, r in zip(pairs, rows):
      lines.append(f"{pair.ljust(width)}  # {r.type}; default {r.default}; {r.allowed}")
    blocks.append("\n".join(lines))
  return "\n\n".join(blocks)


def _plot(args: argparse.Namespace) -> int:
  written = figures.redraw(args.run_dir, args.out)
  folder = written[0].parent
  print(
    f"redrew {len(written)} figure{'s' if len(written) != 1 else ''} in {folder}: "
    + ", ".join(p.name for p in written)
  )
  return 0


def _list(args: argparse.Namespace) -> int:
  print("experiments (use in a config as experiment = NAME):")
  for name, info in STUDIES.items():
    print(f"  {name:<15} {info.description}")
  runnable, sheets = [], []
  for name in packaged_configs():
    (runnable if is_runnable(name) else sheets).append(name)
  print("packaged configs (jaxopt-hw run NAME):")
  for name in runnable:
    print(f"  {name}")
  print("packaged answer sheets (jaxopt-hw check NAME):")
  for name in sheets:
    print(f"  {name}")
  print("benchmarks (jaxopt-hw bench NAME):")
  for name, (_, what) in BENCHMARKS.items():
    print(f"  {name:<15} {what}")
  return 0


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog="jaxopt-hw",
    description="Optimizers in JAX: the homework report, answer checking and benchmarks.",
  )
  parser.add_argument(
    "--debug", action="store_true", help="show tracebacks instead of one-line errors"
  )
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

  run = sub.add_parser(
    "run",
    help="run experiments (default: the whole homework report)",
    description=(
      "Run experiments from TOML configs. With no CONFIG, runs the homework report "
      "(configs/hw2.toml, shipped in the package)."
    ),
  )
  run.add_argument(
    "configs",
    nargs="*",
    metavar="CONFIG",
    help="config files, or names of packaged configs (see `jaxopt-hw list`)",
  )
  run.add_argument("--out", metavar="DIR", help="output folder (default: runs/<config>-<UTC time>)")
  run.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="override a setting, e.g. --set q2.sgd.learning_rate=0.1 (repeatable)",
  )
  run.add_argument("--force", action="store_true", help="replace an existing output folder")
  run.add_argument("--no-progress", action="store_true", help="no progress bars")
  run.add_argument(
    "--verbose",
    action="store_true",
    help="print each study's whole section of report.md, not only its summary",
  )
  run.add_argument(
    "--print-config",
    action="store_true",
    help="print every setting (after --set) with its type, default and allowed values; run nothing",
  )
  run.add_argument(
    "--dry-run", action="store_true", help="check the configs and --set overrides; run nothing"
  )
  run.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
  run.set_defaults(handler=_run)

  plot = sub.add_parser(
    "plot",
    help="redraw the figures of a finished run from its saved arrays (no computation)",
    description=(
      "Redraw every figure of a run folder from the arrays saved beside it (<figure>.npz), "
      "without JAX."
    ),
  )
  plot.add_argument("run_dir", metavar="RUN_DIR", help="the folder a `jaxopt-hw run` wrote")
  plot.add_argument("--out", metavar="DIR", help="write the PNGs here (default: RUN_DIR)")
  plot.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
  plot.set_defaults(handler=_plot)

  lst = sub.add_parser("list", help="list experiments, packaged configs and benchmarks")
  lst.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
  lst.set_defaults(handler=_list)

  # check and bench parse their own arguments; these entries exist for --help.
  sub.add_parser(
    "check",
    help="grade a claimed answer sheet against the experiments (see `jaxopt-hw check --help`)",
    add_help=False,
  )
  sub.add_parser(
    "bench",
    help="benchmarks: sweep, collectives (see `jaxopt-hw bench NAME --help`)",
    add_help=False,
  )
  return parser


def _bench(argv: list[str]) -> int:
  if not argv or argv[0] in ("-h", "--help"):
    print("usage: jaxopt-hw bench NAME [--json] [options]\n\nbenchmarks:")
    for name, (_, what) in BENCHMARKS.items():
      print(f"  {name:<12} {what}")
    return 0 if argv else EXIT_USAGE
  name, rest = argv[0], argv[1:]
  if name not in BENCHMARKS:
    raise unknown_choice("bench", name, BENCHMARKS)
  return importlib.import_module(BENCHMARKS[name][0]).main(rest)


def _check(argv: list[str]) -> int:
  return importlib.import_module("jaxopt_hw.check.cli").main(argv)


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  debug = "--debug" in argv
  try:
    passthrough = {"check": _check, "bench": _bench}
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in passthrough:
      configure()
      rest = [a for a in argv[first + 1 :] if a != "--debug"]
      return passthrough[argv[first]](rest)
    args = _parser().parse_args(argv)
    if args.command == "run":
      configure()
    return args.handler(args)
  except UserInputError as e:
    if debug:
      raise
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USAGE
  except KeyboardInterrupt:
    if debug:
      raise
    print("interrupted: nothing was written", file=sys.stderr)
    return 130
  except Exception as e:  # an internal failure: say so, and how to see it in full
    if debug:
      raise
    print(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
