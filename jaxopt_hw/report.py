"""Writing results: atomic files, JSON-ready values, the markdown report, the terminal summary."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

CHECKER_NOTE = """## Grade your own answers

`jaxopt-hw check ANSWERS.toml` grades a claimed answer to every question against these experiments:
Q1 updates by their objective and size over random gradients (and against the minimiser where it
is unique), Q2 converged θ against the runs above, Q5 message counts against the compiled programs.
A wrong answer comes back with a counterexample. The README shows a sheet being graded;
`configs/answers_example.toml` is a complete sheet.
"""


def write_atomic(path: Path, write: Callable, binary: bool = False) -> None:
  """Write ``path`` through a temporary file in the same folder, then rename it into place.

  ``write`` receives the open temporary file. A reader never sees a half-written ``path``: it is
  either the old file or the complete new one, and the temporary file is removed whatever stops the
  write (an error, a full disk, Ctrl-C). The file gets the permissions of any new file (0o666 less
  the user's umask), not ``mkstemp``'s private 0o600. An ``OSError`` names ``path``.
  """
  path = Path(path)
  tmp = None
  try:
    tmp, fd = _create_temporary(path)
    with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    tmp = None
  except OSError as e:
    if e.filename is None:  # a write to the open file (a full disk): say which file
      e.filename = str(path)
    raise
  finally:
    if tmp is not None and os.path.lexists(tmp):
      os.unlink(tmp)


def _create_temporary(path: Path) -> tuple[Path, int]:
  """A new file ``.<name>.<random>.tmp`` beside ``path``, opened for writing: (its path, its fd)."""
  for _ in range(100):
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
      # O_EXCL: never another's file; mode 0o666 is narrowed by the umask, as for any new file.
      return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
      continue
  raise FileExistsError(f"no free temporary name beside {path}")


def write_text(path: Path, text: str) -> None:
  write_atomic(path, lambda f: f.write(text))


def write_json(path: Path, data) -> None:
  write_atomic(
    path, lambda f: f.write(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
  )


def jsonable(value, nan=None):
  """Plain JSON data from numbers, arrays and containers; NaN becomes ``nan`` (None unless given),
  ±inf the strings "inf"/"-inf"."""
  if isinstance(value, dict):
    return {str(k): jsonable(v, nan) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v, nan) for v in value]
  if hasattr(value, "tolist") and not isinstance(
    value, (str, bytes)
  ):  # numpy / jax arrays and scalars
    return jsonable(value.tolist(), nan)
  if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
    return value
  if isinstance(value, float):
    if math.isnan(value):
      return nan
    if math.isinf(value):
      return "inf" if value > 0 else "-inf"
    return value
  raise TypeError(f"cannot store {type(value).__name__} in results.json: {value!r}")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
  """A GitHub markdown table; cells are shown with ``str`` (format numbers before)."""
  lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
  return "\n".join(lines)


def _seconds(seconds: float) -> str:
  if seconds < 60:
    return f"{seconds:.1f} s"
  minutes, rest = divmod(round(seconds), 60)
  return f"{minutes} min {rest:02d} s"


def summary_lines(lines: Sequence) -> list[str]:
  """A study's :class:`~jaxopt_hw.studies.SummaryLine` s as aligned terminal lines: the question,
  the answer, what was measured, the verdict."""
  if not lines:
    return []
  cells = [(ln.question, ln.answer, ln.measured, ln.verdict) for ln in lines]
  widths = [max(len(row[i]) for row in cells) for i in range(3)]
  return [
    "  "
    + "  ".join(c.ljust(w) for c, w in zip(row[:3], widths))
    + (f"  {row[3]}" if row[3] else "")
    for row in cells
  ]


def study_summary(title: str, result, seconds: float, verbose: bool = False) -> str:
  """What the terminal shows when a study has finished: its title and time, then its summary lines
  (with ``verbose``, its whole section of report.md first)."""
  text = "\n".join([f"{title} ({_seconds(seconds)})", *summary_lines(result.summary)]) + "\n"
  return f"{result.markdown.strip()}\n\n{text}" if verbose else text


def run_footer(out: Path, seconds: float) -> str:
  """The last lines of `jaxopt-hw run`: the total time, what was written where, how to redraw."""
  pngs = sorted(p.name for p in Path(out).glob("*.png"))
  arrays = sorted(p.name for p in Path(out).glob("*.npz"))
  figures = f"{len(pngs)} figure{'s' if len(pngs) != 1 else ''} (PNG)"
  if arrays:
    figures += (
      " and the arrays behind them (.npz)"
      if len(arrays) == len(pngs)
      else f" and the arrays behind {len(arrays)} of them (.npz)"
    )
  lines = [
    f"total {_seconds(seconds)}; wrote {out}{os.sep}: report.md (the full report), results.json, "
    f"{figures}"
  ]
  if arrays:
    lines.append(f"redraw the figures without recomputing: jaxopt-hw plot {out}")
  return "\n".join(lines)


def render_markdown(meta: dict, sections: Sequence[str]) -> str:
  """The whole report.md: where it ran, every study's section, and how to grade answers."""
  where = markdown_table(
    ["jax", "jaxlib", "backend", "device", "devices", "created (UTC)"],
    [
      [
        meta["jax_version"],
        meta["jaxlib_version"],
        meta["backend"],
        meta["device_kind"],
        meta["device_count"],
        meta["created_utc"],
      ]
    ],
  )
  seeds = ", ".join(f"{k}: {v}" for k, v in meta["seeds"].items())
  body = "\n\n".join(s.strip() for s in sections)
  return f"# jaxopt_hw report\n\n{where}\n\nSeeds: {seeds or 'none'}.\n\n{body}\n\n{CHECKER_NOTE}"
