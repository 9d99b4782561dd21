"""The two layers: the library core never imports the application layer, and the light commands of
the CLI (``--help``, ``list``) run without importing JAX.

The imports are read from the source with :mod:`ast` (every ``import`` and ``from ... import``,
also inside functions, ``importlib.import_module("...")`` calls and module paths written as
strings, which is how lazy registries name modules), not guessed from a list.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import jaxopt_hw

PACKAGE_DIR = Path(jaxopt_hw.__file__).resolve().parent

#: The application layer, as README's "Architecture" section names it.
APPLICATION = (
  "jaxopt_hw.__main__",
  "jaxopt_hw.cli",
  "jaxopt_hw.runner",
  "jaxopt_hw.config",
  "jaxopt_hw.report",
  "jaxopt_hw.studies",
  "jaxopt_hw.check",
  "jaxopt_hw.bench",
)

_MODULE_PATH = re.compile(r"^jaxopt_hw(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_application(module: str) -> bool:
  return any(module == a or module.startswith(a + ".") for a in APPLICATION)


def module_name(path: Path) -> str:
  parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def referenced_modules(source: str, module: str, is_package: bool = False) -> set[str]:
  """Every jaxopt_hw module that ``source`` (the text of ``module``) imports or names."""
  tree = ast.parse(source)
  package = module if is_package else module.rpartition(".")[0]
  found: set[str] = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
      else:
        origin = node.module or ""
      found.add(origin)
      found.update(f"{origin}.{alias.name}" for alias in node.names)  # submodules imported by name
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
      if _MODULE_PATH.match(node.value):
        found.add(node.value)
  return {m for m in found if m == "jaxopt_hw" or m.startswith("jaxopt_hw.")}


def core_modules() -> list[tuple[str, Path]]:
  out = []
  for path in sorted(PACKAGE_DIR.rglob("*.py")):
    name = module_name(path)
    if not is_application(name):
      out.append((name, path))
  return out


def test_the_core_is_most_of_the_package_and_the_application_layer_exists():
  core = {name for name, _ in core_modules()}
  assert {"jaxopt_hw", "jaxopt_hw.duality", "jaxopt_hw.engine", "jaxopt_hw.testing"} <= core
  assert "jaxopt_hw.transforms.steepest" in core and "jaxopt_hw.distributed.hlo" in core
  for app in APPLICATION:
    dotted = app.replace("jaxopt_hw.", "").replace(".", "/")
    assert (PACKAGE_DIR / f"{dotted}.py").exists() or (PACKAGE_DIR / dotted).is_dir(), app


@pytest.mark.parametrize("name,path", core_modules(), ids=lambda x: str(x))
def test_core_module_imports_nothing_from_the_application_layer(name, path):
  refs = referenced_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
  upward = sorted(m for m in refs if is_application(m))
  assert not upward, f"{name} (library core) refers to the application layer: {upward}"


@pytest.mark.parametrize(
  "source",
  [
    "from jaxopt_hw import runner",
    "import jaxopt_hw.studies.q2",
    "def f():\n  from jaxopt_hw.check.grade import grade_sheet\n",
    "import importlib\nimportlib.import_module('jaxopt_hw.cli')",
    "from ..studies import q1",
    "LAZY = {'x': 'jaxopt_hw.report'}",
  ],
)
def test_the_import_reader_catches_every_way_of_reaching_the_application_layer(source):
  # negative controls: each snippet, placed in a core module, must be caught
  refs = referenced_modules(source, "jaxopt_hw.transforms.steepest")
  assert any(is_application(m) for m in refs), refs


def test_the_import_reader_does_not_flag_core_imports():
  source = "from jaxopt_hw import duality\nfrom . import steepest\nimport jaxopt_hw.engine\n"
  refs = referenced_modules(source, "jaxopt_hw.transforms.simplified_adam")
  assert refs == {
    "jaxopt_hw",
    "jaxopt_hw.duality",
    "jaxopt_hw.transforms",
    "jaxopt_hw.transforms.steepest",
    "jaxopt_hw.engine",
  }


_PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
if argv is None:
  import jaxopt_hw
  rc = 0
else:
  from jaxopt_hw.cli import main
  try:
    rc = main(argv)
  except SystemExit as e:
    rc = e.code
heavy = sorted(
  m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'optax', 'flax', 'matplotlib')
)
print(json.dumps({'rc': rc, 'heavy': heavy}))
"""


@pytest.mark.parametrize(
  "argv",
  [None, ["--help"], ["list"], ["run", "--help"]],
  ids=["import jaxopt_hw", "--help", "list", "run --help"],
)
def test_light_commands_import_neither_jax_nor_matplotlib(argv):
  proc = subprocess.run(
    [sys.executable, "-c", _PROBE, json.dumps(argv)],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 0, proc.stderr
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["rc"] in (0, None), proc.stdout
  assert out["heavy"] == [], f"{argv} imported {out['heavy'][:5]}"


def test_scipy_and_scikit_learn_load_only_when_a_function_needs_them():
  # SciPy's stats and optimize take about 0.8 s to import and scikit-learn about 0.9 s: every sweep
  # and every refused configuration would wait for them, though only quasi-random grids (Halton),
  # the min-ℓ∞ interpolant (linprog) and the digits (load_digits) use them
  probe = (
    "import sys, jaxopt_hw.engine, jaxopt_hw.grids, jaxopt_hw.problems, jaxopt_hw.datasets, "
    "jaxopt_hw.studies.network, jaxopt_hw.studies.implicit_bias\n"
    "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'sklearn'))[:5])"
  )
  proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "[]"
