"""`jaxopt-hw`: run the homework report, list experiments, grade answers, run benchmarks.

    jaxopt-hw run [CONFIG ...] [--out DIR] [--set key=value ...] [--force] [--verbose]
    jaxopt-hw run [CONFIG ...] [--set key=value ...] --print-config | --dry-run
    jaxopt-hw plot RUN_DIR [--out DIR]
    jaxopt-hw list
    jaxopt-hw check ANSWERS.toml | check update ... | check theta ...
    jaxopt-hw bench {sweep,network,optimizers,collectives} [--json] ...

Errors a user can cause print one line (``error: ...``) and exit with status 2; ``--debug`` shows
the traceback instead. Ctrl-C and SIGTERM stop the program cleanly with status 130 and 143 (see
:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import traceback
import typing
from collections.abc import Sequence

from jaxopt_hw.bench import BENCHMARKS
from jaxopt_hw.config import describe, is_runnable, packaged_configs
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.platform import configure
from jaxopt_hw.studies import STUDIES

# Everything above is free of JAX and of matplotlib, so `--help` and `list` stay fast; the runner
# and the figures (matplotlib) are imported by the commands that use them, and the modules of
# `check` and `bench`, which load JAX, only when their command runs (importlib, below).

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program killed by SIGPIPE


def _run(args: argparse.Namespace) -> int:
  if args.print_config or args.dry_run:
    return _check_only(args)
  from jaxopt_hw import report, runner

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
  from jaxopt_hw import runner

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
  from jaxopt_hw.studies import figures

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
    help="benchmarks: " + ", ".join(BENCHMARKS) + " (see `jaxopt-hw bench NAME --help`)",
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


# ---------------------------------------------------------------------------------------------
# Exit codes, errors and signals: what main() does around every command.

EXIT_INTERNAL = 1
#: 128 + the signal's number, as shells report a program stopped by it.
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(KeyboardInterrupt):
  """SIGINT or SIGTERM, raised in the main thread where Python can stop cleanly.

  A KeyboardInterrupt, so every ``finally`` and ``except BaseException`` cleans up as for Ctrl-C,
  and no ``except Exception`` swallows it.
  """

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


class _SignalGuard:
  """How the program answers SIGINT and SIGTERM (installed by :func:`main` when it is the program).

  While *holding* (start-up: importing JAX and creating its backend; after the command is done) the
  two signals are blocked: one that arrives waits in the kernel. Once *armed* they are unblocked and
  the first raises :class:`Interrupted` at the next point where the main thread runs Python — which
  may be inside a native call that polls for signals (JAX's compile does) — and later ones are only
  noted, so the clean-up is not cut short. ``python -m jaxopt_hw`` and the ``jaxopt-hw`` command
  block them before this module is even imported (``jaxopt_hw.__main__``).

  Why not Python's default: a KeyboardInterrupt raised inside an extension's initialisation breaks
  the import (a traceback, ``ImportError``), and one raised inside ``backend.compile_and_load``
  leaves XLA compiling on its own thread pool; the interpreter's teardown then destroys the client
  under that thread, which dereferences freed memory (a segmentation fault, seen in a core dump as
  ``PjRtClient::~PjRtClient`` joining a thread inside ``PjRtLoadedExecutable::Create``). So the
  program, once interrupted, cleans up, flushes and leaves with ``os._exit`` (:meth:`stop`),
  skipping that teardown. SIGTERM had no handler at all and killed the program mid-write.

  A raise can be swallowed where Python ignores exceptions (a garbage-collector callback, a
  ``__del__``: JAX has both); :func:`sys.unraisablehook` notices, hides the "Exception ignored"
  report and has the signal delivered again. A watchdog thread reads the signal numbers that the
  C-level handler writes to a wake-up pipe; if the program is still running :data:`GRACE_S` seconds
  after the first signal (the main thread waits in native code that does not poll for signals: a
  long XLA computation), it removes the unfinished output folders and stops the process itself.
  Native code that never releases the GIL (NumPy's LAPACK spinning on an ``inf``) stops every
  thread of Python, this one too; only SIGKILL ends that.
  """

  GRACE_S = 3.0

  def __init__(self):
    self.armed = False
    self.first: int | None = None
    self._raised = False
    self._again = threading.Event()
    self._exiting = threading.Lock()
    self._unraisablehook = sys.unraisablehook

  @classmethod
  def install(cls) -> _SignalGuard | None:
    if threading.current_thread() is not threading.main_thread():
      return None
    if not hasattr(signal, "pthread_sigmask"):  # Windows: Python's own handling
      return None
    guard = cls()
    guard.hold()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    for s in EXIT_SIGNAL:
      signal.signal(s, guard._handle)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    sys.unraisablehook = guard._unraisable
    threading.Thread(
      target=guard._watch, args=(read_fd, threading.get_ident()), name="watchdog", daemon=True
    ).start()
    return guard

  def arm(self) -> None:
    """Unblock the signals; one that waited is raised now (by ``pthread_sigmask`` itself)."""
    self.armed = True
    signal.pthread_sigmask(signal.SIG_UNBLOCK, tuple(EXIT_SIGNAL))

  def hold(self) -> None:
    self.armed = False
    signal.pthread_sigmask(signal.SIG_BLOCK, tuple(EXIT_SIGNAL))

  def _handle(self, signum: int, frame) -> None:
    if self.first is None:
      self.first = signum
    if self.armed and not self._raised:
      self._raised = True
      raise Interrupted(signum)

  def _unraisable(self, unraisable) -> None:
    if isinstance(unraisable.exc_value, Interrupted):
      self._raised = False  # it did not stop the program: raise it again at the next safe point
      self._again.set()
      return
    self._unraisablehook(unraisable)

  def _watch(self, read_fd: int, main_thread: int) -> None:
    while True:
      data = os.read(read_fd, 1)
      if not data:
        return
      if data[0] in EXIT_SIGNAL:
        break
    signum = data[0]
    deadline = time.monotonic() + self.GRACE_S
    while (left := deadline - time.monotonic()) > 0:
      if self._again.wait(left):
        self._again.clear()
        signal.pthread_kill(main_thread, signum)
    name = signal.Signals(signum).name
    self.stop(
      EXIT_SIGNAL[signum],
      f"interrupted ({name}): no safe point within {self.GRACE_S:g} s, stopped at once; "
      "unfinished output removed",
      hard=True,
    )

  def stop(self, code: int, message: str, hard: bool = False) -> typing.NoReturn:
    """Say ``message``, flush and end the process now, skipping the interpreter's teardown (see
    the class). Whoever comes first (the main thread or the watchdog) stops it."""
    with self._exiting:
      runner = sys.modules.get("jaxopt_hw.runner")  # only a run has unfinished output
      if hard and runner is not None:
        runner.discard_unfinished()
      _say(message)
      for stream in (sys.stdout, sys.stderr):
        try:
          stream.flush()
        except (OSError, ValueError):
          pass
      os._exit(code)


def _say(message: str) -> None:
  try:
    print(message, file=sys.stderr, flush=True)
  except (OSError, ValueError):
    pass


def _interrupted(signum: int, guard: _SignalGuard | None) -> int:
  message = f"interrupted ({signal.Signals(signum).name}): stopped; no partial output left"
  if guard is not None:
    guard.stop(EXIT_SIGNAL[signum], message)
  _say(message)
  return EXIT_SIGNAL[signum]


def _start_jax(guard: _SignalGuard | None) -> None:
  """Import JAX and apply its settings with signals held (an import cut in two breaks), then arm."""
  configure()
  if guard is not None:
    guard.arm()


def main(argv: Sequence[str] | None = None) -> int:
  """Run the command line; returns the exit status.

  0: done; 1: an internal failure (a one-line ``error: <kind>: ...``, or the traceback with
  ``--debug``); 2: input that cannot be used (``error: ...`` naming the field, the value and what is
  allowed; results already written stay intact); 130 / 143: stopped by SIGINT (Ctrl-C) / SIGTERM,
  with one line saying so and no partial output left; 141: the reader of standard output went
  away (a closed pipe), silently.

  Called without ``argv`` it is the program (``jaxopt-hw``, ``python -m jaxopt_hw``) and owns the
  process: it answers SIGINT and SIGTERM (see :class:`_SignalGuard`) and, when stopped by one,
  ends the process itself with 130 or 143. Called with ``argv`` (tests, other programs) it leaves
  the signals alone and returns 130 for a KeyboardInterrupt.
  """
  guard = _SignalGuard.install() if argv is None else None
  argv = list(sys.argv[1:] if argv is None else argv)
  debug = "--debug" in argv
  try:
    passthrough = {"check": _check, "bench": _bench}
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in passthrough:
      _start_jax(guard)
      rest = [a for a in argv[first + 1 :] if a != "--debug"]
      return passthrough[argv[first]](rest)
    args = _parser().parse_args(argv)
    if args.command == "run":
      _start_jax(guard)
    elif guard is not None:
      guard.arm()
    return args.handler(args)
  except UserInputError as e:
    if debug:
      raise
    _say(f"error: {e}")
    return EXIT_USAGE
  except KeyboardInterrupt as e:
    if debug:
      traceback.print_exc()
    return _interrupted(e.signum if isinstance(e, Interrupted) else signal.SIGINT, guard)
  except BrokenPipeError:
    # the reader of stdout went away (`jaxopt-hw list | head -1`): stop quietly, as a program
    # killed by SIGPIPE would, and keep the interpreter from complaining when it flushes stdout
    with contextlib.suppress(OSError, ValueError):
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE
  except Exception as e:  # an internal failure: say so, and how to see it in full
    if guard is not None and guard.first is not None:
      # A signal broke what was running into another error (an import of an extension module
      # raises ImportError): it was an interruption all the same.
      return _interrupted(guard.first, guard)
    if debug:
      raise
    _say(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)")
    return EXIT_INTERNAL
  finally:
    if guard is not None:
      guard.hold()  # a signal after the command is done must not turn the teardown into a traceback


if __name__ == "__main__":
  sys.exit(main())
