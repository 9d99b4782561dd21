"""`jaxopt-hw check`: grade an answer sheet, or one claim given on the command line.

    jaxopt-hw check ANSWERS.toml [--json] [--trials N] [--seed S]
    jaxopt-hw check update --norm NORM [--form penalty|ball] EXPR
    jaxopt-hw check theta --method METHOD EXPR | X1 X2 X3
    jaxopt-hw check messages --paradigm PARADIGM --messages EXPR --message-size EXPR

Exit status: 0 when every item passes, 1 when one fails, 2 for input that cannot be graded (a
malformed sheet, an expression outside the language), printed as one ``error: ...`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from jaxopt_hw.check import grade
from jaxopt_hw.check import sheet as sheet_lib
from jaxopt_hw.check.expr import describe_language
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.platform import configure

EXIT_FAIL = 1
EXIT_USAGE = 2
PROG = "jaxopt-hw check"
SUBCOMMANDS = ("update", "theta", "messages")

_LANGUAGE = f"""\
claims are expressions in a small language (never run as Python):
  Q1 variables: g, alpha (+ p and q = p/(p-1) for lp, M for mahalanobis; g is a matrix for spectral)
  Q2 variable: a = [1, 0.1, 0.01];  Q5 variables: n (workers), p (parameters)
{describe_language()}"""

_EXAMPLES = """\
examples:
  jaxopt-hw check answers_example        # the correct example sheet shipped in the package
  jaxopt-hw check my_answers.toml --json
  jaxopt-hw check update --norm linf "-alpha/2 * norm1(g) * sign(g)"
  jaxopt-hw check update --norm l2 --form ball "-alpha * g / norm2(g)"
  jaxopt-hw check theta --method rescaled_sgd "[1/3, 10/3, 100/3]"
  jaxopt-hw check messages --paradigm ring_allreduce --messages "2*n*(n-1)" --message-size "p/n"
"""


def _common(parser: argparse.ArgumentParser, q1: bool) -> None:
  parser.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")
  if q1:
    parser.add_argument(
      "--trials",
      type=int,
      default=None,
      metavar="N",
      help=f"random Q1 cases per item, after the fixed small ones: 0 to {grade.MAX_TRIALS} "
      f"(default: {grade.DEFAULT_TRIALS})",
    )
    parser.add_argument(
      "--seed",
      type=int,
      default=0,
      metavar="S",
      help="seed of the random Q1 cases, a whole number >= 0 (default: 0)",
    )


def _sheet_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog=PROG,
    usage=f"{PROG} ANSWERS.toml [--json] [--trials N] [--seed S]\n"
    f"       {PROG} update --norm NORM [--form penalty|ball] EXPR\n"
    f"       {PROG} theta --method METHOD EXPR | X1 X2 X3\n"
    f"       {PROG} messages --paradigm PARADIGM --messages EXPR --message-size EXPR",
    description="Grade claimed answers to the homework against the experiments: Q1 updates by "
    "their objective and size (and, where the minimiser is unique, against it) over many random "
    "gradients, Q2 converged thetas against the experiment, Q5 message counts against the "
    "compiled programs. Prints PASS/FAIL per item with the evidence (REFUSED for an answer that "
    "cannot be read or evaluated within the limits; the other items are still graded); exit "
    "status 0 only if every item passes (1 if one fails, 2 for input that cannot be graded).",
    epilog=_EXAMPLES
    + "\n"
    + _LANGUAGE
    + "\n\nthe sheet format is described in the README; a full example: "
    "configs/answers_example.toml",
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,
  )
  parser.add_argument(
    "answers",
    metavar="ANSWERS.toml",
    help="the answer sheet (TOML), or the name of a sheet shipped in the package (answers_example)",
  )
  _common(parser, q1=True)
  return parser


def _update_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog=f"{PROG} update",
    description="Grade one claimed Q1 update u by its objective and size, and against the "
    "minimiser where it is unique: penalty form argmin g.u + (1/alpha)||u||^2, ball form argmin "
    "g.u subject to ||u|| <= alpha.",
    epilog=_LANGUAGE,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,
  )
  parser.add_argument("--norm", required=True, help=f"one of: {', '.join(sheet_lib.NORMS)}")
  parser.add_argument("--form", default="penalty", help="penalty (default) or ball")
  parser.add_argument("expression", metavar="EXPR", help='the claimed update, e.g. "-alpha/2 * g"')
  _common(parser, q1=True)
  return parser


def _theta_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog=f"{PROG} theta",
    description="Grade one claimed Q2 converged theta against the experiment.",
    epilog=_LANGUAGE,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,
  )
  parser.add_argument("--method", required=True, help=f"one of: {', '.join(sheet_lib.METHODS)}")
  parser.add_argument(
    "values",
    nargs="+",
    metavar="VALUE",
    help='one expression giving the vector ("a / dot(a, a)", "[1/3, 10/3, 100/3]") or one value '
    "per coordinate",
  )
  _common(parser, q1=False)
  return parser


def _messages_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog=f"{PROG} messages",
    description="Grade one claimed Q5 message count against the compiled paradigm "
    "at several (n, p).",
    epilog=_LANGUAGE,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,
  )
  parser.add_argument("--paradigm", required=True, help=f"one of: {', '.join(sheet_lib.PARADIGMS)}")
  parser.add_argument(
    "--messages", required=True, metavar="EXPR", help='total messages per iteration, e.g. "n*(n-1)"'
  )
  parser.add_argument(
    "--message-size", required=True, metavar="EXPR", help='parameters per message, e.g. "p"'
  )
  _common(parser, q1=False)
  return parser


def _protect_expressions(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
  """Let expressions start with '-' ("-alpha/2 * g"), which argparse would take for options.

  Tokens that are this parser's options stay options (``--opt value`` becomes ``--opt=value`` so a
  value may start with '-' too); every other token is positional.
  """
  takes_value, flags = set(), {"-h", "--help"}
  for action in parser._actions:  # argparse has no public API for this
    for opt in action.option_strings:
      (takes_value if action.nargs != 0 else flags).add(opt)
  options, positionals = [], []
  i = 0
  while i < len(argv):
    arg = argv[i]
    name = arg.split("=", 1)[0]
    if arg == "--":
      positionals += argv[i + 1 :]
      break
    if name in takes_value:
      if "=" in arg or i + 1 >= len(argv):
        options.append(arg)
      else:
        options.append(f"{arg}={argv[i + 1]}")
        i += 1
    elif arg in flags or (arg.startswith("--") and arg[2:3].isalpha()):
      options.append(arg)  # a known flag, or an unknown --option argparse should report
    else:
      positionals.append(arg)
    i += 1
  return options + (["--"] + positionals if positionals else [])


def _exit_status(report: grade.Report) -> int:
  """0 when every item passes, 2 when one could not be graded (its reason on stderr), else 1."""
  refused = report.refused
  if refused:
    more = f" (and {len(refused) - 1} more refused; see the report)" if refused[1:] else ""
    print(f"error: {refused[0].evidence['reason']}{more}", file=sys.stderr)
    return EXIT_USAGE
  return 0 if report.passed else EXIT_FAIL


def _print(report: grade.Report, as_json: bool) -> int:
  if as_json:
    print(json.dumps(report.to_dict(), indent=2))
  else:
    print(report.format_text())
  return _exit_status(report)


def _run(argv: list[str]) -> int:
  if not argv or argv[0] in ("-h", "--help"):
    _sheet_parser().print_help()
    return 0 if argv else EXIT_USAGE
  command = argv[0]
  if command in SUBCOMMANDS:
    parser = {"update": _update_parser, "theta": _theta_parser, "messages": _messages_parser}[
      command
    ]()
    args = parser.parse_args(_protect_expressions(parser, argv[1:]))
  else:
    parser = _sheet_parser()
    args = parser.parse_args(argv)
  if command == "update" or command not in SUBCOMMANDS:  # the Q1 commands: --trials, --seed
    trials = grade.check_trials(
      grade.DEFAULT_TRIALS if args.trials is None else args.trials, "--trials"
    )
    seed = grade.check_seed(args.seed, "--seed")

  configure()  # float64 and emulated CPU devices (Q5), before JAX starts; harmless if it has
  source = "<command line>"
  # One claim: an answer outside the language is refused here (exit 2, one line), labelled with
  # the item's key as in a sheet (q1.penalty.l2, q2.sgd, q5.ring_allreduce.messages).
  if command == "update":
    claim = sheet_lib.update_claim(args.norm, args.form, args.expression)
    report = grade.Report([grade.grade_update(claim, trials=trials, seed=seed)], source)
  elif command == "theta":
    value = args.values[0] if len(args.values) == 1 else list(args.values)
    claim = sheet_lib.theta_claim(args.method, value)
    report = grade.Report([grade.grade_theta(claim)], source)
  elif command == "messages":
    claim = sheet_lib.message_claim(args.paradigm, args.messages, args.message_size)
    report = grade.Report([grade.grade_messages(claim)], source)
  else:
    sheet = sheet_lib.load(args.answers)
    if args.json:
      return _print(grade.grade_sheet(sheet, trials=trials, seed=seed), as_json=True)
    # Text: print each verdict as soon as it is known (Q1 takes a few seconds per item).
    width = grade.key_width(c.key for c in sheet.claims)
    # answers that cannot be read are known now; one refused later (over the work limit) is rare
    status = grade.status_width(bool(sheet.refused))
    print(grade.format_header(sheet.source, sheet.title), flush=True)
    report = grade.grade_sheet(
      sheet,
      trials=trials,
      seed=seed,
      on_result=lambda r: print(grade.format_item(r, width, status), flush=True),
    )
    print(grade.format_footer(report.results), flush=True)
    return _exit_status(report)
  return _print(report, args.json)


def main(argv: Sequence[str] | None = None) -> int:
  """Run ``jaxopt-hw check`` with ``argv`` (the arguments after ``check``); return the exit
  status."""
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    return _run(argv)
  except UserInputError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USAGE
  except SystemExit as e:  # argparse: --help (0) or a usage error (2, message already printed)
    return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
  except KeyboardInterrupt:  # Ctrl-C while grading (`python -m jaxopt_hw.check.cli`)
    print("interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
