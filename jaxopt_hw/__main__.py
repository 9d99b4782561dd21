"""The program: ``python -m jaxopt_hw`` and the ``jaxopt-hw`` command (pyproject's entry point).

SIGINT and SIGTERM are blocked first thing, before the command line's modules are imported: a
signal that arrives meanwhile waits in the kernel, and :func:`jaxopt_hw.cli.main` takes it as soon
as the program can stop cleanly (exit status 130 or 143, one line, nothing half-written) instead of
Python's KeyboardInterrupt breaking an import in two.
"""

import signal
import sys


def entry() -> None:
  if hasattr(signal, "pthread_sigmask"):  # POSIX
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
  from jaxopt_hw.cli import main  # imported once the signals wait (the CLI entry's exception)

  sys.exit(main())


if __name__ == "__main__":
  entry()
