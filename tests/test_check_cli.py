"""`jaxopt-hw check` from the command line: exit codes, output, inline forms, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxopt_hw import cli as top_cli
from jaxopt_hw.check import cli, grade

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "configs" / "answers_example.toml"


# Closed forms for Q2 (derived in tests/test_check_grade.py): a/|a|^2, (1,1,1)/sum(a), 1/(3a).
A = np.array([1.0, 0.1, 0.01])
DERIVED_THETAS = {
  "sgd": A / A.dot(A),
  "simplified_adam": np.ones(3) / A.sum(),
  "rescaled_sgd": 1 / (3 * A),
}

WRONG_SHEET = """
title = "confidently wrong"
[q1.penalty]
l2 = "-alpha * g"                          # 1/(2 alpha) convention
linf = "-alpha/2 * norminf(g) * sign(g)"   # infinity-norm-scaled sign
[q1.ball]
linf = "-alpha * g / norm2(g)"             # normalised gradient instead of sign
[q2]
simplified_adam = "a / dot(a, a)"          # the SGD answer given for Adam
rescaled_sgd = "a / dot(a, a)"             # the minimum-norm answer given for rescaling
[q5.ring_allreduce]
messages = "2*n*(n-1)"
message_size = "p"                         # swapped: the whole vector instead of a chunk
"""


@pytest.fixture
def derived_thetas(monkeypatch):
  """Grade Q2 against the closed forms instead of running the experiment (tests the plumbing)."""
  monkeypatch.setattr(grade, "experiment_thetas", lambda: DERIVED_THETAS)
  monkeypatch.setattr(grade, "homework_a", lambda: A)


def test_help_shows_usage_examples_and_the_language(capsys):
  assert cli.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert "usage: jaxopt-hw check ANSWERS.toml" in out and "jaxopt-hw check update --norm" in out
  assert "onehot_argmax" in out and "Q5 variables: n (workers), p (parameters)" in out
  for sub in ("update", "theta", "messages"):
    assert cli.main([sub, "--help"]) == 0
    assert f"usage: jaxopt-hw check {sub}" in capsys.readouterr().out


def test_no_arguments_is_a_usage_error(capsys):
  assert cli.main([]) == 2


def test_inline_messages_pass_and_fail_with_exit_codes(capsys):
  assert (
    cli.main(
      [
        "messages",
        "--paradigm",
        "ring_allreduce",
        "--messages",
        "2*n*(n-1)",
        "--message-size",
        "p/n",
      ]
    )
    == 0
  )
  assert "PASS  q5.ring_allreduce" in capsys.readouterr().out
  assert (
    cli.main(
      ["messages", "--paradigm", "ring_allreduce", "--messages", "2*n*(n-1)", "--message-size", "p"]
    )
    == 1
  )
  out = capsys.readouterr().out
  # Ring all-reduce at n=2, p=12 sends chunks of p/n = 6 entries.
  assert (
    "FAIL  q5.ring_allreduce" in out
    and "message_size differs at n=2, p=12: claim 12, measured 6" in out
  )


def test_inline_values_may_start_with_a_minus_sign(capsys, derived_thetas):
  # "-1 + ..." would be taken for an option by plain argparse.
  assert (
    cli.main(
      ["messages", "--paradigm", "all_to_all", "--messages", "-n + n*n", "--message-size", "p"]
    )
    == 0
  )
  assert cli.main(["theta", "--method", "sgd", "-(-a) / dot(a, a)"]) == 0
  capsys.readouterr()


def test_inline_theta_accepts_one_vector_or_one_value_per_coordinate(capsys, derived_thetas):
  assert cli.main(["theta", "--method", "rescaled_sgd", "[1/3, 10/3, 100/3]"]) == 0
  assert cli.main(["theta", "--method", "rescaled_sgd", "1/3", "10/3", "100/3"]) == 0
  assert cli.main(["theta", "--method", "simplified_adam", "a/dot(a,a)"]) == 1
  out = capsys.readouterr().out
  assert "claim:      theta = [0.990001, 0.0990001, 0.00990001]" in out
  assert "experiment: theta = [0.900901, 0.900901, 0.900901]" in out


def test_json_output_is_machine_readable(capsys):
  code = cli.main(
    [
      "messages",
      "--json",
      "--paradigm",
      "parameter_server",
      "--messages",
      "n",
      "--message-size",
      "p",
    ]
  )
  data = json.loads(capsys.readouterr().out)
  assert code == 1 and data["passed"] is False
  item = data["items"][0]
  assert item["item"] == "q5.parameter_server" and item["status"] == "FAIL"
  # The parameter server receives n gradients and sends back n weight copies: 2n at n=2.
  assert item["evidence"]["counterexample"] == {
    "item": "messages",
    "n": 2,
    "p": 12,
    "claim": 2.0,
    "measured": 4,
  }


BAD = [
  (
    ["update", "--norm", "l3", "-g"],
    "error: norm: 'l3' is not valid; allowed: l2, linf, l1, lp, mahalanobis, spectral",
  ),
  (
    ["update", "--norm", "l2", "--form", "boll", "-g"],
    "error: form: 'boll' is not valid (did you mean 'ball'?)",
  ),
  (
    ["update", "--norm", "l2", "g.__class__"],
    "error: q1.penalty.l2: attribute access ('.') at position 2 is not allowed",
  ),
  (["theta", "--method", "adam", "1"], "error: method: 'adam' is not valid"),
  (
    ["theta", "--method", "sgd", "1", "2"],
    "error: q2.sgd: theta has 3 coordinates; the list has 2",
  ),
  (
    ["messages", "--paradigm", "ring_allreduce", "--messages", "9**9**9", "--message-size", "p"],
    "error: q5.ring_allreduce.messages: exponent",
  ),
  (["nonexistent.toml"], "error: answers: 'nonexistent.toml' is not a file"),
  (
    ["update", "--norm", "l2", "--trials", "-1", "-g"],
    "error: --trials: -1 is not allowed; allowed: a whole number from 0 to 10000",
  ),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(b[0])[:40] for b in BAD])
def test_bad_input_is_one_line_on_stderr_with_exit_2(argv, message, capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert cli.main(argv) == 2
  captured = capsys.readouterr()
  assert captured.err.startswith(message) and captured.err.count("\n") == 1
  assert "Traceback" not in captured.err and captured.out == ""


def test_malformed_sheet_exits_2_naming_the_item(tmp_path, capsys):
  bad = tmp_path / "answers.toml"
  bad.write_text('[q1.penalty]\nl2 = "-alpha/2 * g"\nl5 = "g"\n')
  assert cli.main([str(bad)]) == 2
  err = capsys.readouterr().err
  assert (
    err == "error: q1.penalty: 'l5' is not valid; norms: l2, linf, l1, lp, mahalanobis, spectral\n"
  )


def test_a_packaged_sheet_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
  from jaxopt_hw.check import sheet

  monkeypatch.chdir(tmp_path)
  assert sheet.load("answers_example").title == sheet.load(EXAMPLE).title == "HW2 reference answers"


def test_huge_sheet_file_is_refused_before_it_is_read(tmp_path, capsys):
  big = tmp_path / "big.toml"
  big.write_text("# " + "x" * 2_000_000 + "\n")
  assert cli.main([str(big)]) == 2
  assert "a sheet may have at most 1000000" in capsys.readouterr().err


def test_hostile_sheet_is_refused_without_side_effects(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(tmp_path)
  bad = tmp_path / "answers.toml"
  bad.write_text("[q1.penalty]\nl2 = \"__import__('os').system('touch PWNED')\"\n")
  assert cli.main([str(bad)]) == 2
  assert "q1.penalty.l2: name '__import__' at position 1 is not allowed" in capsys.readouterr().err
  assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.toml"]


def test_argparse_usage_errors_return_2(capsys):
  assert cli.main(["messages", "--paradigm", "all_to_all"]) == 2
  assert (
    "the following arguments are required: --messages, --message-size" in capsys.readouterr().err
  )
  assert cli.main(["update", "--norm", "l2", "-g", "--bogus"]) == 2
  assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_the_top_level_cli_dispatches_to_check(capsys):
  assert (
    top_cli.main(
      [
        "check",
        "messages",
        "--paradigm",
        "all_to_all",
        "--messages",
        "n*(n-1)",
        "--message-size",
        "p",
      ]
    )
    == 0
  )
  assert "PASS  q5.all_to_all" in capsys.readouterr().out
  assert top_cli.main(["check", "update", "--norm", "nope", "g"]) == 2
  assert capsys.readouterr().err.startswith("error: norm: 'nope' is not valid")


def test_console_entry_point_runs_in_a_fresh_process(tmp_path):
  sheet = tmp_path / "answers.toml"
  sheet.write_text('[q5.ring_allreduce]\nmessages = "2*n*(n-1)"\nmessage_size = "p/n"\n')
  done = subprocess.run(
    [sys.executable, "-m", "jaxopt_hw", "check", str(sheet)],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=tmp_path,
  )
  assert done.returncode == 0, done.stderr
  assert "PASS  q5.ring_allreduce" in done.stdout and done.stdout.rstrip().endswith(
    "1 of 1 items pass; all pass."
  )


def test_inline_update_with_a_leading_minus_passes_and_a_wrong_one_fails(capsys):
  assert (
    cli.main(["update", "--norm", "linf", "--trials", "20", "-alpha/2 * norm1(g) * sign(g)"]) == 0
  )
  assert (
    cli.main(
      ["update", "--norm", "linf", "--form", "ball", "--trials", "20", "-alpha * g / norm2(g)"]
    )
    == 1
  )
  out = capsys.readouterr().out
  # linf ball, g = [1, -2], alpha = 1: the optimum is -alpha*||g||_1 = -3 at
  # -alpha*sign(g) = [-1, 1].
  assert "g = [1, -2], alpha = 1" in out and "optimum: -3 at u* = [-1, 1]" in out


def test_wrong_sheet_fails_every_item_with_evidence(tmp_path, capsys, derived_thetas):
  sheet = tmp_path / "wrong.toml"
  sheet.write_text(WRONG_SHEET)
  assert cli.main([str(sheet), "--trials", "20"]) == 1
  out = capsys.readouterr().out
  for key in (
    "q1.penalty.l2",
    "q1.penalty.linf",
    "q1.ball.linf",
    "q2.simplified_adam",
    "q2.rescaled_sgd",
    "q5.ring_allreduce",
  ):
    assert f"FAIL  {key}" in out
  assert "PASS" not in out and out.rstrip().endswith("0 of 6 items pass; 6 fail.")


def test_the_example_sheet_passes_end_to_end(capsys):
  # The real thing: Q2 against the experiment, Q5 against the compiled programs.
  assert cli.main([str(EXAMPLE), "--trials", "20", "--json"]) == 0
  data = json.loads(capsys.readouterr().out)
  assert data["passed"] and data["counts"] == {"pass": 18, "fail": 0, "refused": 0, "total": 18}
