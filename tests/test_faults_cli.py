"""Where a run's output goes, and what can go wrong there: `--force` replaces only an empty folder
or a previous run, output-path faults name `--out` and exit 2 before any work, a full or read-only
disk leaves nothing behind, a signal cannot split the publishing renames, and folders and files get
the user's umask."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from jaxopt_hw import cli, report, runner
from jaxopt_hw.studies import STUDIES, StudyInfo

RUN_FILES = ["curve.png", "report.md", "results.json"]


@dataclass(frozen=True)
class TinyConfig:
  seed: int = 0


@pytest.fixture
def tiny(monkeypatch, tmp_path):
  """A study that writes one figure and counts its runs; the test works in tmp_path."""
  calls = []

  def run(config, ctx):
    calls.append(config.seed)
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    png = ctx.save_figure("curve", fig)
    return runner.StudyResult(results={"seed": config.seed}, markdown=f"![c]({png})", seeds=[0])

  module = types.ModuleType("tiny_study")
  module.Config, module.run = TinyConfig, run
  monkeypatch.setitem(sys.modules, "tiny_study", module)
  monkeypatch.setitem(STUDIES, "tiny", StudyInfo("tiny_study", "Tiny", "a study for these tests"))
  (tmp_path / "tiny.toml").write_text('experiment = "tiny"\n')
  monkeypatch.chdir(tmp_path)
  return calls


def run_cli(*args: str) -> int:
  return cli.main(["run", "tiny.toml", *args])


def hidden(folder: Path) -> list[str]:
  return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def error_line(capsys) -> str:
  """The last line on stderr (after the studies' progress lines), checked to be the only error."""
  err = capsys.readouterr().err.strip()
  assert "Traceback" not in err and err.count("error:") == 1, err
  return err.splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# --force


def test_force_refuses_a_folder_holding_someone_elses_files_before_any_work(tiny, tmp_path, capsys):
  # Issue 12.5: `mkdir -p p/src; echo x > p/src/thesis.tex; jaxopt-hw run ... --out p --force`
  # deleted thesis.tex.
  (tmp_path / "p" / "src").mkdir(parents=True)
  (tmp_path / "p" / "src" / "thesis.tex").write_text("x")
  assert run_cli("--out", "p", "--force") == 2
  assert error_line(capsys) == (
    "error: --out: 'p' holds 'src/', which no run writes; --force replaces only an empty folder "
    "or a previous run, so choose another folder"
  )
  assert tiny == [], "refused before any study ran"
  assert (tmp_path / "p" / "src" / "thesis.tex").read_text() == "x"
  assert hidden(tmp_path) == []


def test_force_refuses_a_results_json_that_is_not_a_run_of_this_tool(tiny, tmp_path, capsys):
  (tmp_path / "p").mkdir()
  (tmp_path / "p" / "results.json").write_text('{"grades": [1, 2]}')
  assert run_cli("--out", "p", "--force") == 2
  assert "'p' holds no results.json of a jaxopt-hw run" in error_line(capsys)
  assert (tmp_path / "p" / "results.json").read_text() == '{"grades": [1, 2]}' and tiny == []


def test_force_replaces_an_empty_folder_and_a_previous_run(tiny, tmp_path):
  (tmp_path / "empty").mkdir()
  assert run_cli("--out", "empty", "--force") == 0
  assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == RUN_FILES
  assert run_cli("--out", "empty", "--force", "--set", "tiny.seed=5") == 0
  assert json.loads((tmp_path / "empty" / "results.json").read_text())["tiny"] == {"seed": 5}
  assert hidden(tmp_path) == []


@pytest.mark.parametrize("out", [".", "..", "./"])
def test_the_current_folder_or_one_holding_it_is_refused_with_no_leftovers(
  tiny, tmp_path, capsys, out
):
  # Issue 12.5: `--out . --force` ran the study, then failed with EBUSY and left a `..old-*` folder.
  (tmp_path / "results.json").write_text('{"meta": {"created_utc": "x", "configs": {}}}')
  around = hidden(tmp_path.parent)
  assert run_cli("--out", out, "--force") == 2
  shown = repr(str(Path(out)))
  assert error_line(capsys).startswith(f"error: --out: {shown} is the current folder or holds it")
  assert tiny == [] and hidden(tmp_path) == [] and hidden(tmp_path.parent) == around


def test_force_refuses_a_link(tiny, tmp_path, capsys):
  (tmp_path / "real").mkdir()
  (tmp_path / "link").symlink_to(tmp_path / "real")
  assert run_cli("--out", "link", "--force") == 2
  assert "'link' is a symbolic link" in error_line(capsys)
  assert (tmp_path / "link").is_symlink() and tiny == []


# ---------------------------------------------------------------------------------------------
# Output-path faults: name --out, exit 2, before any work.


def test_an_output_under_a_file_names_out_and_exits_2(tiny, tmp_path, capsys):
  # Issue 12.10: `--out afile/sub` gave FileExistsError (exit 1).
  (tmp_path / "afile").write_text("")
  assert run_cli("--out", "afile/sub") == 2
  assert error_line(capsys) == f"error: --out: {str(tmp_path / 'afile')!r} is a file, not a folder"
  assert run_cli("--out", "afile") == 2
  assert error_line(capsys) == "error: --out: 'afile' exists and is not a folder"
  assert tiny == []


def test_a_read_only_file_system_names_out_and_exits_2_before_any_work(
  tiny, tmp_path, capsys, monkeypatch
):
  # Issue 12.10: read-only file systems gave exit 1. The file system is simulated at the system
  # call (the suite may run as root, for whom permission bits do not hold).
  def mkdir(path, mode=0o777, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

  monkeypatch.setattr(os, "mkdir", mkdir)
  assert run_cli("--out", "ro/run") == 2
  assert error_line(capsys) == "error: --out: cannot create 'ro/run': Read-only file system"
  assert tiny == []


def test_a_full_disk_names_out_exits_2_and_leaves_the_previous_run_intact(
  tiny, tmp_path, capsys, monkeypatch
):
  # Issue 12.10: a full file system gave exit 1. ENOSPC is raised where the kernel reports it to
  # a writer: when the written data is flushed to the disk.
  assert run_cli("--out", "out") == 0
  before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

  def fsync(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, "fsync", fsync)
  assert run_cli("--out", "out", "--force") == 2
  assert error_line(capsys) == "error: --out: cannot write 'out': No space left on device"
  assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
  assert hidden(tmp_path) == []


def test_an_unrelated_os_error_stays_an_internal_error(tiny, tmp_path, capsys, monkeypatch):
  # A negative control: only faults of the output are reported as --out.
  def run(config, ctx):
    raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/missing.csv")

  monkeypatch.setattr(sys.modules["tiny_study"], "run", run)
  assert run_cli("--out", "out") == 1
  assert error_line(capsys).startswith("error: FileNotFoundError: [Errno 2]")
  assert not (tmp_path / "out").exists() and hidden(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Publishing cannot be split by a signal; permissions follow the umask.


def test_a_signal_while_publishing_waits_until_the_new_run_is_in_place(tiny, tmp_path, monkeypatch):
  # Replacing a previous run takes two renames (old out aside, new folder in); a signal between them
  # used to leave no `out` at all. Here SIGINT arrives during the first rename.
  assert run_cli("--out", "out") == 0
  rename = os.rename

  def rename_then_signal(src, dst):
    rename(src, dst)
    signal.raise_signal(signal.SIGINT)

  monkeypatch.setattr(os, "rename", rename_then_signal)
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with pytest.raises(KeyboardInterrupt):
      runner.run(["tiny.toml"], ["tiny.seed=9"], out_dir="out", force=True, echo=lambda s: None)
  finally:
    signal.signal(signal.SIGINT, previous)
  assert json.loads((tmp_path / "out" / "results.json").read_text())["tiny"] == {"seed": 9}
  assert hidden(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_folders_and_files_follow_the_umask(tiny, tmp_path, umask):
  # Issue 11.4: run folders were drwx------ and files -rw------- (mkdtemp, mkstemp).
  previous = os.umask(umask)
  try:
    assert run_cli("--out", "out") == 0
  finally:
    os.umask(previous)
  out = tmp_path / "out"
  assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
  for name in RUN_FILES:
    assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


def test_default_folders_of_runs_started_in_the_same_second_differ(tiny, tmp_path, monkeypatch):
  first = runner.default_out_dir(["tiny.toml"])
  first.mkdir(parents=True)
  second = runner.default_out_dir(["tiny.toml"])
  assert second != first and second.parent == first.parent


def test_write_atomic_removes_its_temporary_file_when_the_write_fails(tmp_path):
  def broken(f):
    f.write("half")
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    report.write_atomic(tmp_path / "a.txt", broken)
  assert list(tmp_path.iterdir()) == []
