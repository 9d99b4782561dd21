"""README.md as a user reads it: every ```python block runs as pasted, and every link it makes
points inside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Every fenced block whose info string is "python", in order; however many there are.
BLOCKS = re.findall(r"^```python[^\n]*\n(.*?)^```", README, re.S | re.M)


def _block_id(block: str) -> str:
  first = next((ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")), "")
  return first[:40]


def test_the_readme_has_python_blocks_and_the_extraction_sees_them_all():
  assert BLOCKS, "no ```python block found"
  assert len(BLOCKS) == README.count("```python")


@pytest.mark.parametrize(
  "block", BLOCKS, ids=[f"{i}: {_block_id(b)}" for i, b in enumerate(BLOCKS)]
)
def test_every_python_block_runs_as_pasted(block, tmp_path):
  # a fresh interpreter in an empty folder, with none of the test suite's settings: the emulated
  # devices and float64 that conftest.py turns on must be asked for by the block itself
  script = tmp_path / "snippet.py"
  script.write_text(block, encoding="utf-8")
  env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  env["PYTHONPATH"] = str(ROOT)
  proc = subprocess.run(
    [sys.executable, str(script)],
    capture_output=True,
    text=True,
    cwd=tmp_path,
    env=env,
    timeout=300,
  )
  assert proc.returncode == 0, f"the block fails as pasted:\n{block}\n{proc.stderr[-4000:]}"


def test_every_link_points_inside_the_repository():
  targets = re.findall(r"\]\(([^)\s]+)\)", README)
  local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t)]
  assert "docs/homework.md" in local
  missing = [t for t in local if t and not (ROOT / t).exists()]
  assert not missing, f"README links to files the repository does not have: {missing}"
  # the homework is stated in the repository, not in a file outside it
  assert "HW2.md" not in README and "shared notes" not in README


def test_the_homework_is_stated_in_the_repository():
  text = (ROOT / "docs" / "homework.md").read_text(encoding="utf-8")
  for heading in ("## Q1.", "## Q2.", "## Q5."):
    assert heading in text
  # the questions, with the homework's α kept as written and its data
  assert "(1/α)·‖Δθ‖²" in text and "a = [1, 0.1, 0.01]" in text
  for paradigm in ("All-to-all", "Parameter server", "Ring all-reduce"):
    assert paradigm in text
