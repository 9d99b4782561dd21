"""The CLI and the runner: outputs, atomic writes, --force, and one-line errors with exit code 2."""

import json
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxopt_hw import cli, runner
from jaxopt_hw import config as cfg
from jaxopt_hw.studies import STUDIES, StudyInfo, SummaryLine, figures


@dataclass(frozen=True)
class FakeConfig:
  seed: int = 0
  learning_rate: float = field(default=0.5, metadata=cfg.positive())
  fail: str = field(default="", metadata=cfg.one_of("", "interrupt", "error"))


def _fake_run(config, ctx):
  fig = Figure()
  ax = fig.subplots()
  ax.plot([0, 1], [1, 0])
  png = ctx.save_figure("curve", fig)  # a ready-made figure (no arrays): still supported
  if config.fail == "interrupt":
    raise KeyboardInterrupt
  if config.fail == "error":
    raise RuntimeError("study broke")
  return runner.StudyResult(
    results={"lr": config.learning_rate, "nan": float("nan"), "arr": np.arange(3)},
    markdown=f"## Fake\n\nlearning rate {config.learning_rate}\n\n![curve]({png})\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n![line](fake_line.png)",
    seeds=[config.seed],
    summary=[
      SummaryLine.check("Q0 the rate", "lr = 1/2", f"lr = {config.learning_rate}", True),
      SummaryLine.check("Q0 the seed", "seed = 0", f"seed = {config.seed}", config.seed == 0),
      SummaryLine("Q0 a model", "42 messages", "42 (model)", "model"),
    ],
    arrays={"fake_line": {"x": np.arange(4.0), "y": np.arange(4.0) * config.learning_rate}},
  )


def _draw_fake_line(a):
  fig = Figure()
  fig.subplots().plot(a["x"], a["y"])
  return fig


@pytest.fixture
def fake_study(monkeypatch, tmp_path):
  module = types.ModuleType("fake_study")
  module.NAME = "fake"
  module.Config, module.run = FakeConfig, _fake_run
  monkeypatch.setitem(sys.modules, "fake_study", module)
  monkeypatch.setitem(STUDIES, "fake", StudyInfo("fake_study", "Fake", "a study for the CLI tests"))
  monkeypatch.setitem(figures.FIGURES, "fake_line", _draw_fake_line)
  conf = tmp_path / "fake.toml"
  conf.write_text('experiment = "fake"\nseed = 7\n')
  monkeypatch.chdir(tmp_path)
  return conf


def _leftovers(folder: Path):
  return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_run_writes_results_report_and_figures(fake_study, tmp_path, capsys):
  out = tmp_path / "out"
  assert (
    cli.main(["run", str(fake_study), "--out", str(out), "--set", "fake.learning_rate=0.25"]) == 0
  )
  assert sorted(p.name for p in out.iterdir()) == FILES
  results = json.loads((out / "results.json").read_text())
  assert results["fake"] == {"lr": 0.25, "nan": None, "arr": [0, 1, 2]}
  meta = results["meta"]
  assert meta["seeds"] == {"fake": [7]}
  assert meta["configs"]["fake"]["settings"] == {"seed": 7, "learning_rate": 0.25, "fail": ""}
  assert {"jax_version", "device_kind", "backend"} <= set(meta)
  assert meta["figures"] == {"fake": ["curve.png", "fake_line.png"]}
  assert isinstance(meta["seconds"]["fake"], float) and meta["seconds"]["fake"] >= 0
  assert [line["verdict"] for line in meta["summary"]["fake"]] == ["agrees", "DIFFERS", "model"]
  report = (out / "report.md").read_text()
  assert "learning rate 0.25" in report and "jaxopt-hw check" in report
  assert _leftovers(tmp_path) == []


FILES = ["curve.png", "fake_line.npz", "fake_line.png", "report.md", "results.json"]


def test_run_prints_a_short_summary_not_the_report(fake_study, tmp_path, capsys):
  out = tmp_path / "out"
  assert (
    cli.main(["run", str(fake_study), "--out", str(out), "--set", "fake.learning_rate=0.25"]) == 0
  )
  printed = capsys.readouterr().out
  lines = printed.splitlines()
  # no raw markdown: no headings, tables or image links
  assert not any(ln.startswith(("#", "|", "![")) for ln in lines), printed
  assert "learning rate 0.25" not in printed
  # the study's title with its time, then one line per summary item: question, answer, measured,
  # verdict
  assert re.fullmatch(r"Fake \(\d+\.\d s\)", lines[0]), lines[0]
  assert re.fullmatch(r"  Q0 the rate +lr = 1/2 +lr = 0\.25 +agrees", lines[1]), lines[1]
  assert re.fullmatch(r"  Q0 the seed +seed = 0 +seed = 7 +DIFFERS", lines[2]), lines[2]
  assert re.fullmatch(r"  Q0 a model +42 messages +42 \(model\) +model", lines[3]), lines[3]
  # the columns line up
  assert lines[1].index("lr = 1/2") == lines[2].index("seed = 0") == lines[3].index("42 messages")
  assert lines[1].index("lr = 0.25") == lines[2].index("seed = 7") == lines[3].index("42 (model)")
  footer = "\n".join(lines[-2:])
  assert re.search(r"^total \d+\.\d s; wrote " + re.escape(str(out)), footer, re.M), footer
  assert "report.md" in footer and "results.json" in footer and "2 figures" in footer
  assert f"jaxopt-hw plot {out}" in footer


def test_verbose_prints_each_section_of_the_report_and_the_summary(fake_study, tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(["run", str(fake_study), "--out", str(out), "--verbose"]) == 0
  printed = capsys.readouterr().out
  assert "## Fake\n\nlearning rate 0.5" in printed and "![line](fake_line.png)" in printed
  assert re.search(r"^  Q0 the rate +lr = 1/2 +lr = 0\.5 +agrees$", printed, re.M)


def test_default_output_folder_is_new_each_run(fake_study, tmp_path):
  assert cli.main(["run", str(fake_study)]) == 0
  (made,) = (tmp_path / "runs").iterdir()
  assert made.name.startswith("fake-") and (made / "results.json").is_file()


def test_existing_output_is_kept_without_force_and_a_previous_run_replaced_with_it(
  fake_study, tmp_path, capsys
):
  out = tmp_path / "out"
  assert cli.main(["run", str(fake_study), "--out", str(out)]) == 0
  assert cli.main(["run", str(fake_study), "--out", str(out), "--set", "fake.seed=8"]) == 2
  assert "already exists; pass --force" in capsys.readouterr().err
  assert json.loads((out / "results.json").read_text())["meta"]["seeds"] == {"fake": [7]}
  assert (
    cli.main(["run", str(fake_study), "--out", str(out), "--force", "--set", "fake.seed=8"]) == 0
  )
  assert sorted(p.name for p in out.iterdir()) == FILES
  assert json.loads((out / "results.json").read_text())["meta"]["seeds"] == {"fake": [8]}
  assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("fail, code", [("interrupt", 130), ("error", 1)])
def test_an_interrupted_or_failed_run_leaves_no_file_and_keeps_old_results(
  fake_study, tmp_path, capsys, fail, code
):
  out = tmp_path / "out"
  assert cli.main(["run", str(fake_study), "--out", str(out)]) == 0
  before = {p.name: p.read_bytes() for p in out.iterdir()}
  assert (
    cli.main(["run", str(fake_study), "--out", str(out), "--force", "--set", f"fake.fail={fail}"])
    == code
  )
  assert {p.name: p.read_bytes() for p in out.iterdir()} == before
  assert _leftovers(tmp_path) == []
  assert (
    cli.main(["run", str(fake_study), "--out", str(tmp_path / "new"), "--set", f"fake.fail={fail}"])
    == code
  )
  assert not (tmp_path / "new").exists()
  assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
  "args, message",
  [
    (
      ["--set", "fake.learnig_rate=0.1"],
      (
        "error: fake.learnig_rate: unknown key (did you mean 'learning_rate'?); "
        "allowed: seed, learning_rate, fail"
      ),
    ),
    (
      ["--set", "fake.learning_rate=0"],
      "error: fake.learning_rate: 0.0 is not allowed; must be > 0",
    ),
    (
      ["--set", "fake.learning_rate=-1e-3"],
      "error: fake.learning_rate: -0.001 is not allowed; must be > 0",
    ),
    (["--set", "fake.seed=x"], "error: fake.seed: 'x' is a string; expected an integer"),
    (
      ["--set", "fak.seed=1"],
      (
        "error: --set fak.seed=1: no experiment 'fak' in this run (did you mean 'fake'?); "
        "experiments: fake"
      ),
    ),
  ],
)
def test_bad_input_is_one_line_and_exit_code_2(fake_study, tmp_path, capsys, args, message):
  assert cli.main(["run", str(fake_study), "--out", str(tmp_path / "o"), *args]) == 2
  err = capsys.readouterr().err
  assert err.strip() == message
  assert not (tmp_path / "o").exists()


def test_debug_shows_the_traceback(fake_study):
  with pytest.raises(cfg.ConfigError):
    cli.main(["--debug", "run", str(fake_study), "--set", "fake.seed=x"])


def test_unknown_subcommand_and_bench_name_exit_2(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["frobnicate"])
  assert e.value.code == 2
  assert cli.main(["bench", "swep"]) == 2
  assert "bench: 'swep' is not valid (did you mean 'sweep'?)" in capsys.readouterr().err


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
  bad = tmp_path / "bad.toml"
  bad.write_text('experiment = "q22"\n')
  env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
  proc = subprocess.run(
    [sys.executable, "-m", "jaxopt_hw", "run", str(bad), "--out", str(tmp_path / "o")],
    capture_output=True,
    text=True,
    env=env,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.startswith(
    f"error: {bad}: experiment = 'q22' is not known (did you mean 'q2'?)"
  )
  assert "Traceback" not in proc.stderr


def test_every_packaged_experiment_config_is_valid_for_its_study():
  from jaxopt_hw.runner import build_configs

  runnable = [name for name in cfg.packaged_configs() if cfg.is_runnable(name)]
  assert {"hw2.toml", "hw2_q1.toml", "hw2_q2.toml", "hw2_q5.toml"} <= set(runnable)
  for name in runnable:
    build_configs(cfg.read_specs([name], list(STUDIES)))  # raises ConfigError on any bad key


def test_the_default_report_runs_q1_q2_and_q5():
  specs = cfg.read_specs([cfg.DEFAULT_CONFIG], list(STUDIES))
  assert [s.experiment for s in specs] == ["q1", "q2", "q5"]


def test_list_names_experiments_configs_sheets_and_benchmarks(capsys):
  assert cli.main(["list"]) == 0
  out = capsys.readouterr().out
  for name in [*STUDIES, "hw2.toml", "answers_example.toml", "sweep", "collectives"]:
    assert name in out
  runnable, sheets = out.split("packaged answer sheets")
  assert "answers_example.toml" in sheets and "answers_example.toml" not in runnable


@pytest.mark.parametrize(
  "override, message",
  [
    (
      "q1.norms=['l2', 'l3']",
      (
        "error: q1.norms: ['l2', 'l3'] is not allowed; "
        "a non-empty list of: l2, linf, l1, lp, mahalanobis, spectral"
      ),
    ),
    (
      "q1.p_values=[1.0]",
      "error: q1.p_values: [1.0] is not allowed; a non-empty list of p with 1 < p < inf",
    ),
    ("q2.sgd.learning_rate=0", "error: q2.sgd.learning_rate: 0.0 is not allowed; must be > 0"),
    ("q2.sgd.learning_rate=-0.5", "error: q2.sgd.learning_rate: -0.5 is not allowed; must be > 0"),
    (
      "q2.sgd.learnig_rate=0.1",
      "error: q2.sgd.learnig_rate: unknown key (did you mean 'learning_rate'?)",
    ),
    ("q2.sgd.steps=1.5", "error: q2.sgd.steps: 1.5 is a float; expected an integer"),
    ("q5.n=0", "error: q5.n: 0"),
    # issue 12.8: crashed with OverflowError after the study had started
    (
      "q2.sgd.steps=3000000000",
      "error: q2.sgd.steps: 3000000000 is not allowed; integers must be between -2147483648 and "
      "2147483647 (32 bits)",
    ),
    ("q2.sgd.steps=1e20", "error: q2.sgd.steps: 1e+20 is a float; expected an integer"),
    ("q2.sgd.steps=100000000000000000000", "error: q2.sgd.steps: 100000000000000000000 is not"),
    # issue 12.9: a 10-million-point grid made a 190 MB results.json
    (
      "q2.step_size_map.points=10000000",
      "error: q2.step_size_map.points: 10000000 is not allowed; must be between 2 and 10000",
    ),
    # issue 12.14: an empty grid silently became [learning_rate]
    ("q2.sgd.grid=[]", "error: q2.sgd.grid: [] is not allowed; a non-empty list of numbers > 0"),
    ("q2.simplified_adam.grid=[]", "error: q2.simplified_adam.grid: [] is not allowed"),
    ("q2.rescaled_sgd.grid=[]", "error: q2.rescaled_sgd.grid: [] is not allowed"),
    ("q1.norms=[3]", "error: q1.norms[0]: 3 is an integer; expected a string"),
  ],
)
def test_the_default_report_refuses_bad_settings_before_running(
  tmp_path, capsys, override, message
):
  assert cli.main(["run", "--out", str(tmp_path / "o"), "--set", override]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(message), err
  assert "\n" not in err and not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# --print-config and --dry-run


def _all_keys(cls, prefix):
  """Every dotted key of a Config dataclass, read from its fields (nested tables flattened)."""
  import dataclasses
  import typing

  keys = []
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    if dataclasses.is_dataclass(hints[f.name]):
      keys += _all_keys(hints[f.name], f"{prefix}.{f.name}")
    else:
      keys.append(f"{prefix}.{f.name}")
  return keys


def test_print_config_shows_every_key_type_default_and_allowed_values(fake_study, tmp_path, capsys):
  args = ["run", str(fake_study), "--out", str(tmp_path / "o"), "--set", "fake.learning_rate=0.25"]
  assert cli.main([*args, "--print-config"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == f"# Fake (from {fake_study})"
  # the file sets seed = 7, --set the learning rate; the defaults come from FakeConfig
  assert re.fullmatch(r"fake\.seed = 7 +# integer; default 0; any integer", lines[1]), lines[1]
  assert re.fullmatch(
    r"fake\.learning_rate = 0\.25 +# number; default 0\.5; must be > 0", lines[2]
  ), lines[2]
  assert re.fullmatch(
    r'fake\.fail = "" +# string; default ""; allowed: , interrupt, error', lines[3]
  ), lines[3]
  assert len(lines) == 4
  assert not (tmp_path / "o").exists(), "nothing runs"


def test_print_config_of_the_homework_lists_every_field_and_each_line_is_a_valid_set(
  tmp_path, capsys
):
  from jaxopt_hw.studies import q1, q2, q5

  assert cli.main(["run", "--print-config"]) == 0
  printed = capsys.readouterr().out
  pairs = [ln.split("  #")[0].strip() for ln in printed.splitlines() if ln and ln[0] != "#"]
  keys = [pair.split(" = ")[0] for pair in pairs]
  assert keys == _all_keys(q1.Config, "q1") + _all_keys(q2.Config, "q2") + _all_keys(
    q5.Config, "q5"
  )
  # every line, given back as --set KEY=VALUE, is accepted and changes nothing
  sets = [arg for pair in pairs for arg in ("--set", pair.replace(" = ", "=", 1))]
  assert cli.main(["run", "--dry-run", *sets]) == 0
  specs = cfg.apply_overrides(
    cfg.read_specs([cfg.DEFAULT_CONFIG], list(STUDIES)),
    [pair.replace(" = ", "=", 1) for pair in pairs],
  )
  assert runner.build_configs(specs) == runner.resolve()
  assert "q2.sgd.learning_rate = 0.5" in printed and "q1.norms = [" in printed


def test_dry_run_checks_everything_and_runs_nothing(fake_study, tmp_path, capsys, monkeypatch):
  def must_not_run(config, ctx):
    raise AssertionError("--dry-run ran a study")

  monkeypatch.setattr(sys.modules["fake_study"], "run", must_not_run)
  out = tmp_path / "o"
  assert cli.main(["run", str(fake_study), "--out", str(out), "--dry-run"]) == 0
  assert capsys.readouterr().out.strip() == (
    "dry run: 1 experiment configured correctly (fake); nothing was run or written."
  )
  assert not out.exists() and not (tmp_path / "runs").exists()
  assert cli.main(["run", str(fake_study), "--dry-run", "--set", "fake.learning_rate=-1"]) == 2
  assert capsys.readouterr().err.strip() == (
    "error: fake.learning_rate: -1.0 is not allowed; must be > 0"
  )


@pytest.mark.parametrize(
  "overrides, message",
  [
    # issue 12.7: Q5 ran first, then the run failed naming `norm:`; lp and mahalanobis passed the
    # check but cannot work on a model's parameters (no p, no M).
    (
      ["data_parallel.optimizer=steepest", "data_parallel.norm=l3"],
      "error: data_parallel.norm: 'l3' is not allowed; allowed: l2, linf, l1, spectral",
    ),
    (["data_parallel.norm=lp"], "error: data_parallel.norm: 'lp' is not allowed"),
    (["data_parallel.norm=mahalanobis"], "error: data_parallel.norm: 'mahalanobis' is not allowed"),
    (
      ["data_parallel.batch=63"],
      "error: data_parallel.batch: 63 is not allowed with n = 4; the batch must split into n "
      "equal shards (a multiple of 4)",
    ),
  ],
)
def test_every_field_of_every_experiment_is_checked_before_the_first_runs(
  tmp_path, capsys, overrides, message
):
  args = ["run", "hw2_q5", "data_parallel", "--out", str(tmp_path / "o")]
  assert cli.main([*args, *(a for o in overrides for a in ("--set", o))]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(message), err
  assert "[q5] running" not in err and "\n" not in err and not (tmp_path / "o").exists()


def test_an_implicit_bias_config_that_is_not_over_parameterised_is_refused_before_running(
  tmp_path, capsys
):
  args = ["run", "hw2_q5", "implicit_bias", "--out", str(tmp_path / "o")]
  assert cli.main([*args, "--set", "implicit_bias.n=64"]) == 2
  err = capsys.readouterr().err.strip()
  assert err == (
    "error: implicit_bias.n: 64 is not allowed; must be smaller than d = 64 (over-parameterised)"
  )


@pytest.mark.parametrize(
  "content, message",
  [
    (  # offset 32 = len('experiment = "q1"\n') + len('seed = 1 # caf') = 18 + 14
      b'experiment = "q1"\nseed = 1 # caf\xe9\n',
      "not UTF-8 text (byte 0xe9 at offset 32); TOML files are UTF-8",
    ),
    (b"include = []\n", "include = []; a suite must include at least one config"),
    (
      b'experiment = "q1"\ndims = ' + b"[" * 5000 + b"]" * 5000,
      "values nested more than 32 deep; no config needs that",
    ),
  ],
)
def test_a_config_file_that_cannot_be_read_is_one_line_and_exit_2(
  tmp_path, capsys, content, message
):
  # issue 12.9 (non-UTF-8: UnicodeDecodeError, exit 1; 5,000-deep arrays: RecursionError) and
  # 12.14 (`include = []` exited 0 with an empty report).
  conf = tmp_path / "c.toml"
  conf.write_bytes(content)
  assert cli.main(["run", str(conf), "--out", str(tmp_path / "o")]) == 2
  assert capsys.readouterr().err.strip() == f"error: {conf}: {message}"
  assert not (tmp_path / "o").exists()


def test_a_closed_pipe_on_stdout_stops_the_program_quietly():
  # `jaxopt-hw list | head -0`: the reader is gone before the program writes; it must stop with
  # the status of a program killed by SIGPIPE (128 + 13), with nothing on stderr (no traceback, no
  # "Exception ignored ... BrokenPipeError" from the interpreter's final flush)
  proc = subprocess.Popen(
    [sys.executable, "-m", "jaxopt_hw", "list"],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    cwd=Path(__file__).resolve().parents[1],
  )
  proc.stdout.close()
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + 13, err
  assert err == b"", err
