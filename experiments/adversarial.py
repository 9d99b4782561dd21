r"""The adversarial catalogue: hostile inputs and faults, each run as a user would run it.

  python experiments/adversarial.py                     # every case of experiments/adversarial/
  python experiments/adversarial.py --area cli -k force # the cli cases whose name has "force"

Every ``experiments/adversarial/<area>.toml`` lists cases (one ``[[case]]`` table each):

  [[case]]
  name = "--force refuses a folder holding someone's files"
  issue = "12.5"            # optional: the issue item it came from (counted as fixed this round)
  command = ["jaxopt-hw", "run", "hw2_q5", "--out", "p", "--force"]
  expect = "refused"        # ok | refused | fail | interrupted
  timeout = 60              # seconds; running past it is a hang
  files = { "p/src/thesis.tex" = "x" }        # optional: created in the case's folder first
  signal = { name = "SIGINT", after = 4.0 }   # optional: sent `after` seconds after the start

Each case runs in a fresh temporary folder. In ``command``, ``"python"`` is this interpreter and
``"jaxopt-hw"`` is ``python -m jaxopt_hw`` (from this checkout). A case is *handled* when:

- ``ok``: exit status 0;
- ``refused``: exit status 2, and stderr's last line is its one line starting ``error: ``;
- ``fail``: exit status 1 (a graded FAIL);
- ``interrupted``: exit status 130 for SIGINT, 143 for SIGTERM;

and, whatever is expected, it ends within its timeout, prints no ``Traceback`` and no ``Fatal
Python error``, and leaves no temporary file behind (``*.partial-*``, ``*.old-*``, ``*.tmp``). The
table counts per area the cases tried, handled, and fixed this round (handled cases with an
``issue``); every case not handled is listed after it, and the exit status is 1 if there is one.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = Path(__file__).resolve().parent / "adversarial"

EXPECTS = ("ok", "refused", "fail", "interrupted")
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
KEYS = {"name", "issue", "command", "expect", "timeout", "files", "signal"}
LEFTOVER_MARKS = (".partial-", ".old-")


@dataclass
class Case:
  area: str
  name: str
  command: list[str]
  expect: str
  timeout: float = 60.0
  issue: str | None = None
  files: dict[str, str] = field(default_factory=dict)
  signal: dict | None = None


@dataclass
class Outcome:
  case: Case
  handled: bool
  why: str = ""
  stderr: str = ""
  seconds: float = 0.0


class CatalogueError(ValueError):
  """A catalogue file that does not follow the format above."""


def load_catalogue(folder: Path, areas: list[str] | None = None) -> list[Case]:
  """Every case of every ``<area>.toml`` in ``folder`` (only ``areas`` when given), checked."""
  cases = []
  for path in sorted(Path(folder).glob("*.toml")):
    if areas and path.stem not in areas:
      continue
    with open(path, "rb") as f:
      try:
        data = tomllib.load(f)
      except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{path}: not valid TOML ({e})") from None
    if set(data) - {"case"}:
      raise CatalogueError(f"{path}: only [[case]] tables are allowed; found {sorted(data)}")
    for i, raw in enumerate(data.get("case", [])):
      cases.append(_case(path.stem, raw, f"{path}: case {i + 1}"))
  return cases


def _case(area: str, raw: dict, where: str) -> Case:
  unknown = set(raw) - KEYS
  if unknown:
    raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(KEYS)}")
  for key in ("name", "command", "expect"):
    if key not in raw:
      raise CatalogueError(f"{where}: no {key!r}")
  command = raw["command"]
  if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
    raise CatalogueError(f"{where}: command must be a non-empty list of strings")
  if raw["expect"] not in EXPECTS:
    raise CatalogueError(f"{where}: expect = {raw['expect']!r}; allowed: {', '.join(EXPECTS)}")
  sig = raw.get("signal")
  if sig is not None and (sig.get("name") not in SIGNAL_EXIT or "after" not in sig):
    raise CatalogueError(f"{where}: signal must be {{ name = SIGINT|SIGTERM, after = seconds }}")
  return Case(
    area=area,
    name=raw["name"],
    command=command,
    expect=raw["expect"],
    timeout=float(raw.get("timeout", 60)),
    issue=raw.get("issue"),
    files=dict(raw.get("files", {})),
    signal=sig,
  )


def resolve(command: list[str]) -> list[str]:
  """``python`` is this interpreter; ``jaxopt-hw`` is ``python -m jaxopt_hw``."""
  head = {"python": [sys.executable], "jaxopt-hw": [sys.executable, "-m", "jaxopt_hw"]}
  return head.get(command[0], [command[0]]) + command[1:]


def _default_signals() -> None:
  """In the child, before it starts: SIGINT and SIGTERM do what they do in a terminal. A shell
  starts a background job (`cmd &`) with SIGINT ignored, and children inherit that; a Python
  started so never raises KeyboardInterrupt, and every Ctrl-C case would hang."""
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_DFL)


def run_case(case: Case) -> Outcome:
  """Run one case in a fresh temporary folder and judge it."""
  with tempfile.TemporaryDirectory(prefix="adversarial-") as tmp:
    folder = Path(tmp)
    for name, text in case.files.items():
      path = folder / name
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(text, encoding="utf-8")
    env = {
      **os.environ,
      "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.monotonic()
    proc = subprocess.Popen(
      resolve(case.command),
      cwd=folder,
      env=env,
      stdin=subprocess.DEVNULL,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      start_new_session=True,  # a hang is killed with everything it started
      preexec_fn=_default_signals,
    )
    try:
      if case.signal is not None:
        try:
          proc.wait(case.signal["after"])
        except subprocess.TimeoutExpired:
          proc.send_signal(getattr(signal, case.signal["name"]))
      _, err = proc.communicate(timeout=max(case.timeout - (time.monotonic() - start), 0.1))
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)
      _, err = proc.communicate()
      seconds = time.monotonic() - start
      text = err.decode("utf-8", "replace")
      return Outcome(case, False, f"hang: still running after {case.timeout:g} s", text, seconds)
    seconds = time.monotonic() - start
    text = err.decode("utf-8", "replace")
    why = judge(case, proc.returncode, text) or leftovers(folder)
    return Outcome(case, not why, why, text, seconds)


def judge(case: Case, code: int, stderr: str) -> str:
  """Why the outcome is not what the case expects; empty when it is."""
  if "Traceback" in stderr:
    return f"exit {code} with a traceback"
  if "Fatal Python error" in stderr or code < 0:
    return f"crashed (exit {code})"
  lines = [line for line in stderr.splitlines() if line.strip()]
  if case.expect == "ok":
    return "" if code == 0 else f"exit {code}, expected 0"
  if case.expect == "refused":
    if code != 2:
      return f"exit {code}, expected 2"
    errors = [line for line in lines if line.startswith("error: ")]
    if len(errors) != 1 or lines[-1] != errors[0]:
      return "exit 2 but not one closing line starting 'error: '"
    return ""
  if case.expect == "fail":
    return "" if code == 1 else f"exit {code}, expected 1"
  wanted = {SIGNAL_EXIT[case.signal["name"]]} if case.signal else set(SIGNAL_EXIT.values())
  return "" if code in wanted else f"exit {code}, expected {' or '.join(map(str, wanted))}"


def leftovers(folder: Path) -> str:
  """Temporary files or folders a run left behind, if any."""
  left = sorted(
    str(p.relative_to(folder))
    for p in folder.rglob("*")
    if any(m in p.name for m in LEFTOVER_MARKS) or p.name.endswith(".tmp")
  )
  return f"left temporary files: {', '.join(left[:3])}" if left else ""


def table(outcomes: list[Outcome]) -> str:
  """The markdown table: per area, the cases tried, handled and fixed this round."""
  areas = sorted({o.case.area for o in outcomes})
  rows = []
  for area in [*areas, None]:
    mine = [o for o in outcomes if area is None or o.case.area == area]
    handled = sum(o.handled for o in mine)
    fixed = sum(o.handled and o.case.issue is not None for o in mine)
    rows.append((area or "**total**", len(mine), handled, fixed))
  lines = ["| area | tried | handled | fixed this round |", "|---|---:|---:|---:|"]
  lines += [f"| {a} | {t} | {h} | {f} |" for a, t, h, f in rows]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--catalogue", type=Path, default=CATALOGUE, help=f"folder of <area>.toml (default {CATALOGUE})"
  )
  parser.add_argument("--area", action="append", help="only this area (repeatable)")
  parser.add_argument("-k", dest="match", help="only the cases whose name contains this")
  parser.add_argument("-q", "--quiet", action="store_true", help="no line per case while running")
  args = parser.parse_args(argv)
  try:
    cases = load_catalogue(args.catalogue, args.area)
  except (CatalogueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.match:
    cases = [c for c in cases if args.match in c.name]
  if not cases:
    print(f"error: no cases in {args.catalogue}", file=sys.stderr)
    return 2
  outcomes = []
  for case in cases:
    outcome = run_case(case)
    outcomes.append(outcome)
    if not args.quiet:
      verdict = "handled" if outcome.handled else f"NOT HANDLED: {outcome.why}"
      print(f"[{case.area}] {case.name}: {verdict} ({outcome.seconds:.1f} s)", file=sys.stderr)
  print(table(outcomes))
  failed = [o for o in outcomes if not o.handled]
  if failed:
    print(f"\nnot handled ({len(failed)}):")
    for o in failed:
      tail = " | ".join(o.stderr.strip().splitlines()[-3:])
      print(f"- [{o.case.area}] {o.case.name}: {o.why}" + (f"\n    stderr: {tail}" if tail else ""))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
