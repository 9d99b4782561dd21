"""Runs studies and writes their results: ``results.json``, ``report.md``, and each figure as a
PNG with its data beside it (``.npz``, see :mod:`jaxopt_hw.studies.figures`).

Nothing is written in place: the whole output folder is built under a temporary name beside the
target and renamed into place when every study has finished, so an interrupted or failed run leaves
no half-written file; an existing folder is replaced only when asked (``force=True``), and only
if it is empty or a previous run (:func:`output_folder`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from jaxopt_hw import config as cfg
from jaxopt_hw import report
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.platform import device_summary
from jaxopt_hw.studies import STUDIES, StudyResult, figures, get_study


class StudyContext:
  """What a running study may use: a place for figures, a progress bar and a log."""

  def __init__(
    self,
    out_dir: Path,
    name: str,
    show_progress: bool = False,
    log: Callable[[str], None] | None = None,
  ):
    self.out_dir = Path(out_dir)
    self.name = name
    self.show_progress = show_progress
    self._log = log or (lambda msg: print(msg, file=sys.stderr))
    self.figures: list[str] = []

  def save_figure(self, name: str, fig) -> str:
    """Save a matplotlib figure as ``<name>.png`` in the output folder; returns the file name."""
    file_name = f"{name}.png"
    report.write_atomic(
      self.out_dir / file_name,
      lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"),
      binary=True,
    )
    self.figures.append(file_name)
    return file_name

  def progress(self, total: int, desc: str = ""):
    """A tqdm progress bar, silent unless the run shows progress on a terminal."""
    return tqdm(
      total=total,
      desc=f"{self.name}: {desc}" if desc else self.name,
      disable=not self.show_progress,
      leave=False,
      file=sys.stderr,
    )

  def log(self, msg: str) -> None:
    self._log(f"[{self.name}] {msg}")


def build_configs(specs: Sequence[cfg.ExperimentSpec]) -> list[tuple[str, object, str]]:
  """(name, checked Config, source) for each spec; every config is checked before anything runs."""
  seen = {}
  built = []
  for spec in specs:
    if spec.experiment in seen:
      raise cfg.ConfigError(
        f"experiment {spec.experiment!r} is configured twice in one run "
        f"({seen[spec.experiment]} and {spec.source}); run them separately"
      )
    seen[spec.experiment] = spec.source
    module = get_study(spec.experiment)
    built.append(
      (spec.experiment, cfg.load(module.Config, spec.settings, prefix=spec.experiment), spec.source)
    )
  return built


def resolve(config_refs: Sequence[str] = (), overrides: Sequence[str] = ()):
  """(name, checked Config, source) of every experiment that ``config_refs`` (default: the homework
  report) and ``overrides`` name; raises :class:`UserInputError` on the first problem."""
  refs = list(config_refs) or [cfg.DEFAULT_CONFIG]
  return build_configs(cfg.apply_overrides(cfg.read_specs(refs, list(STUDIES)), overrides))


@dataclasses.dataclass
class StudyRecord:
  """What running one study took and left: its time (figures included) and its PNG files."""

  seconds: float
  figures: list[str]


def write_figures(folder: Path, result: StudyResult) -> list[str]:
  """Save every figure's arrays (``<name>.npz``) in ``folder`` and draw its PNG from them."""
  return [figures.write_figure(folder, name, arrays) for name, arrays in result.arrays.items()]


def run_one(module, config, ctx: StudyContext) -> tuple[StudyResult, StudyRecord]:
  """Run one study, write its figures, and time both."""
  start = time.perf_counter()
  result = module.run(config, ctx)
  drawn = write_figures(ctx.out_dir, result)
  return result, StudyRecord(time.perf_counter() - start, ctx.figures + drawn)


def run_meta(records: dict[str, StudyRecord], summaries: dict[str, StudyResult]) -> dict:
  """The entries of ``results.json``'s ``meta`` about what each study took and concluded."""
  return {
    "seconds": {name: round(r.seconds, 3) for name, r in records.items()},
    "figures": {name: r.figures for name, r in records.items()},
    "summary": {
      name: [dataclasses.asdict(line) for line in result.summary]
      for name, result in summaries.items()
    },
  }


def run(
  config_refs: Sequence[str] = (),
  overrides: Sequence[str] = (),
  out_dir: str | Path | None = None,
  force: bool = False,
  show_progress: bool = False,
  echo: Callable[[str], None] = print,
  verbose: bool = False,
) -> Path:
  """Run the experiments named by ``config_refs`` (default: the homework report) into ``out_dir``.

  After each study, ``echo`` gets its summary (and, with ``verbose``, its section of report.md
  first). Returns the output folder. Raises :class:`UserInputError` for bad configs or
  overrides, and for an output folder that cannot be written or must not be replaced (see
  :func:`output_folder`), before any study starts.
  """
  refs = list(config_refs) or [cfg.DEFAULT_CONFIG]
  built = resolve(refs, overrides)
  out = Path(out_dir) if out_dir is not None else default_out_dir(refs)
  with output_folder(out, force) as staging:
    sections, results, meta_configs, seeds, records, done = [], {}, {}, {}, {}, {}
    for name, config, source in built:
      ctx = StudyContext(staging, name, show_progress=show_progress)
      ctx.log(f"running ({source})")
      result, records[name] = run_one(get_study(name), config, ctx)
      done[name] = result
      results[name] = report.jsonable(result.results)
      meta_configs[name] = {"source": source, "settings": cfg.to_dict(config)}
      seeds[name] = list(result.seeds)
      sections.append(result.markdown)
      echo(report.study_summary(STUDIES[name].title, result, records[name].seconds, verbose))
    meta = {
      **device_summary(),
      "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      "configs": meta_configs,
      "seeds": seeds,
      **run_meta(records, done),
    }
    report.write_json(staging / "results.json", {"meta": meta, **results})
    report.write_text(staging / "report.md", report.render_markdown(meta, sections))
  return out


# ---------------------------------------------------------------------------------------------
# The output folder: checked before any work, built under a temporary name, published at the end.

#: What a run writes into its folder. ``--force`` replaces a folder only if it is empty or a
#: previous run: a ``results.json`` of this tool and nothing but files with these suffixes.
RUN_FILE_SUFFIXES = (".json", ".md", ".png", ".npz")

#: File-system errors that are about where the output goes (no space, no permission).
_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Unfinished output folders of this process (see :func:`discard_unfinished`).
_UNFINISHED: set[Path] = set()
#: Held while an output folder is published or discarded, so a hard stop never cuts that in two.
_PUBLISHING = threading.RLock()


@contextlib.contextmanager
def output_folder(out: Path, force: bool = False):
  """A new folder that becomes ``out`` when the block finishes, and vanishes if it does not.

  Before any work, ``out`` is refused (:class:`UserInputError` naming ``--out``: exit status 2) when
  it is the current folder or holds it, lies under a file, is a link, exists without ``force``, or
  exists and is neither empty nor a previous run (:func:`previous_run_problem`); so is a folder
  beside it that cannot be created (a read-only or full file system, no permission). The block
  writes into the folder yielded, ``.<out name>.partial-<random>`` beside ``out``, created with the
  user's umask like any other tool's folders. A write that fails for lack of space or permission is
  reported the same way. However the block ends early (an error, Ctrl-C, SIGTERM) the folder is
  removed and an old ``out`` is untouched; on success ``out`` is replaced by renames that no signal
  can split.
  """
  out = Path(out)
  check_out_dir(out, force)
  staging = _make_staging(out)
  try:
    try:
      yield staging
    except OSError as e:
      if _is_output_fault(e, staging):
        raise _out_error(out, e, "cannot write") from e
      raise
    _publish(staging, out, force)
  finally:
    _discard(staging)


def check_out_dir(out: Path, force: bool = False) -> None:
  """Refuse an output folder that cannot be written or must not be replaced (see output_folder)."""
  shown = repr(str(out))
  if Path.cwd().resolve().is_relative_to(Path(os.path.realpath(out))):
    raise UserInputError(
      f"--out: {shown} is the current folder or holds it; a run writes a folder of its own, e.g. "
      "--out runs/mine"
    )
  for parent in out.absolute().parents:
    if os.path.lexists(parent):
      if not parent.is_dir():
        raise UserInputError(f"--out: {str(parent)!r} is a file, not a folder")
      break
  if not os.path.lexists(out):
    return
  if out.is_symlink():
    raise UserInputError(f"--out: {shown} is a symbolic link; give a folder that does not exist")
  if not out.is_dir():
    raise UserInputError(f"--out: {shown} exists and is not a folder")
  if not force:
    raise UserInputError(
      f"--out: {shown} already exists; pass --force to replace it (an empty folder or a previous "
      "run), or choose another folder"
    )
  problem = previous_run_problem(out)
  if problem:
    raise UserInputError(
      f"--out: {shown} {problem}; --force replaces only an empty folder or a previous run, so "
      "choose another folder"
    )


def previous_run_problem(folder: Path) -> str | None:
  """None when ``folder`` is empty or a previous run's; else what is wrong, in words.

  A previous run holds a ``results.json`` written by this tool (an object whose ``meta`` names the
  configs it ran and when) and nothing but files with the suffixes of :data:`RUN_FILE_SUFFIXES`:
  no sub-folder, no link, no file of another kind, which would be someone's work.
  """
  entries = sorted(os.scandir(folder), key=lambda e: e.name)
  if not entries:
    return None
  foreign = [
    e.name + ("/" if e.is_dir(follow_symlinks=False) else "")
    for e in entries
    if not e.is_file(follow_symlinks=False) or Path(e.name).suffix not in RUN_FILE_SUFFIXES
  ]
  if foreign:
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    return f"holds {', '.join(map(repr, foreign[:3]))}{more}, which no run writes"
  try:
    with open(folder / "results.json", encoding="utf-8") as f:
      meta = json.load(f)["meta"]
    ours = {"created_utc", "configs"} <= set(meta)
  except (OSError, ValueError, LookupError, TypeError):
    ours = False
  return None if ours else "holds no results.json of a jaxopt-hw run"


def default_out_dir(config_refs: Sequence[str]) -> Path:
  """``runs/<first config's stem>-<UTC time>``: a new folder each run, so nothing is overwritten
  (``-2``, ``-3``, ... after it when two runs start within one second)."""
  stem = Path(config_refs[0]).stem if config_refs else Path(cfg.DEFAULT_CONFIG).stem
  stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
  out, n = Path("runs") / f"{stem}-{stamp}", 1
  while os.path.lexists(out):
    n += 1
    out = Path("runs") / f"{stem}-{stamp}-{n}"
  return out


@contextlib.contextmanager
def held_signals():
  """SIGINT and SIGTERM wait until the block is done, then go to their handlers as usual.

  For the few steps that must not be cut in two (creating and registering a folder, the renames
  that publish one). Outside the main thread, where Python runs no signal handler, it holds nothing.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  held: list[int] = []
  previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in _SIGNALS}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, signal.SIG_DFL if handler is None else handler)
    if held:
      signal.raise_signal(held[0])


def discard_unfinished() -> None:
  """Remove every unfinished output folder of this process, after a publish under way.

  For a hard stop (the CLI's, when the program reaches no safe point after a signal): the lock is
  kept, so nothing is published after this.
  """
  _PUBLISHING.acquire()
  for staging in list(_UNFINISHED):
    shutil.rmtree(staging, ignore_errors=True)


def _make_staging(out: Path) -> Path:
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise _out_error(out, e, "cannot create") from e
  for _ in range(100):
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    with held_signals():  # created and registered, or neither
      try:
        os.mkdir(staging)  # 0o777 less the umask, as any new folder (mkdtemp's would be 0o700)
      except FileExistsError:
        continue
      except OSError as e:
        raise _out_error(out, e, "cannot create") from e
      _UNFINISHED.add(staging)
    return staging
  raise UserInputError(f"--out: no free temporary name beside {str(out)!r}")


def _publish(staging: Path, out: Path, force: bool) -> None:
  """Move the finished ``staging`` to ``out``; an old ``out`` goes only as check_out_dir allows
  (checked again: a folder may have appeared there while the studies ran)."""
  with held_signals(), _PUBLISHING:
    if os.path.lexists(out):
      if not force:
        raise UserInputError(
          f"--out: {str(out)!r} appeared while running; pass --force to replace it"
        )
      check_out_dir(out, force)
    try:
      if not os.path.lexists(out) or not any(out.iterdir()):
        os.replace(staging, out)  # an empty folder is replaced by one rename
      else:
        old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
        os.rename(out, old)
        try:
          os.rename(staging, out)
        except BaseException:
          os.rename(old, out)
          raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
      raise _out_error(out, e, "cannot replace") from e
    _UNFINISHED.discard(staging)


def _discard(staging: Path) -> None:
  with held_signals(), _PUBLISHING:
    if os.path.lexists(staging):
      shutil.rmtree(staging, ignore_errors=True)
    _UNFINISHED.discard(staging)


def _is_output_fault(e: OSError, staging: Path) -> bool:
  """Whether ``e`` is about the output folder: no space anywhere, or no permission in it."""
  if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
    return True
  return (
    e.errno in _OUTPUT_ERRNOS
    and e.filename is not None
    and Path(os.fsdecode(e.filename)).is_relative_to(staging)
  )


def _out_error(out: Path, e: OSError, what: str) -> UserInputError:
  reason = e.strerror or str(e)
  return UserInputError(f"--out: {what} {str(out)!r}: {reason}")


def run_study(
  name: str,
  settings: dict | None = None,
  out_dir: str | Path | None = None,
  show_progress: bool = True,
) -> StudyResult:
  """Run one study with ``settings`` over its defaults (the entry point of experiments/ scripts).

  Figures (PNG and their ``.npz`` arrays) go to ``out_dir`` when given (created if needed), else to
  a temporary folder.
  """
  module = get_study(name)
  config = cfg.load(module.Config, settings or {}, prefix=name)
  if out_dir is None:
    with tempfile.TemporaryDirectory() as tmp:
      return run_one(module, config, StudyContext(Path(tmp), name, show_progress=show_progress))[0]
  Path(out_dir).mkdir(parents=True, exist_ok=True)
  ctx = StudyContext(Path(out_dir), name, show_progress=show_progress)
  return run_one(module, config, ctx)[0]
