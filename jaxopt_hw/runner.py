"""Runs studies and writes their results: ``results.json``, ``report.md``, and each figure as a
PNG with its data beside it (``.npz``, see :mod:`jaxopt_hw.studies.figures`).

Nothing is written in place: the whole output folder is built under a temporary name beside the
target and renamed into place when every study has finished, so an interrupted or failed run leaves
no half-written file, and an existing folder is replaced only when asked (``force=True``).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import sys
import tempfile
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


def default_out_dir(config_refs: Sequence[str]) -> Path:
  """``runs/<first config's stem>-<UTC time>``: a new folder each run, so nothing is overwritten."""
  stem = Path(config_refs[0]).stem if config_refs else Path(cfg.DEFAULT_CONFIG).stem
  stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
  return Path("runs") / f"{stem}-{stamp}"


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
  first). Returns the output folder. Raises :class:`UserInputError` for bad configs, overrides or
  an existing output folder (without ``force``) before any study starts.
  """
  refs = list(config_refs) or [cfg.DEFAULT_CONFIG]
  built = resolve(refs, overrides)
  out = Path(out_dir) if out_dir is not None else default_out_dir(refs)
  if out.exists() and not force:
    raise UserInputError(
      f"--out: {str(out)!r} already exists; pass --force to replace it, or choose another folder"
    )
  if out.exists() and not out.is_dir():
    raise UserInputError(f"--out: {str(out)!r} exists and is not a folder")

  out.parent.mkdir(parents=True, exist_ok=True)
  staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
  try:
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
    _replace_folder(staging, out, force)
  finally:
    if staging.exists():
      shutil.rmtree(staging, ignore_errors=True)
  return out


def _replace_folder(staging: Path, out: Path, force: bool) -> None:
  """Move the finished ``staging`` folder to ``out``; an old ``out`` goes only when forced."""
  if not out.exists():
    os.replace(staging, out)
    return
  if not force:
    raise UserInputError(f"--out: {str(out)!r} appeared while running; pass --force to replace it")
  old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
  os.replace(out, old / out.name)
  os.replace(staging, out)
  shutil.rmtree(old, ignore_errors=True)


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
