"""Q5: what each distributed paradigm sends per iteration, measured from its compiled program.

Each paradigm is compiled with real JAX collectives for n workers and a p-entry gradient, and its
messages are read off the HLO (:mod:`jaxopt_hw.distributed.accounting`). The report puts the
homework's answer (formulas in n and p) beside the measured numbers, and the bytes each worker sends
beside the bandwidth-optimal bound for an all-reduce, 2(n − 1)/n · p · itemsize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from jaxopt_hw import config as cfg
from jaxopt_hw.distributed import accounting
from jaxopt_hw.names import PARADIGMS
from jaxopt_hw.report import markdown_table
from jaxopt_hw.studies import AGREES, DIFFERS, MODEL, STUDIES, StudyResult, SummaryLine

NAME = "q5"
TITLE = STUDIES[NAME].title

LABELS = {
  "all_to_all": "all-to-all",
  "parameter_server": "parameter server",
  "ring_allreduce": "ring all-reduce",
  "pmean": "`lax.pmean` (baseline)",
}

#: The homework's answer: (messages formula, message size formula, evaluate(n, p) -> (messages,
#: size)).
#: For the ring, p/n is ceil(p/n) when n does not divide p (the chunks are zero-padded).
FORMULAS = {
  "all_to_all": ("n(n−1)", "p", lambda n, p: (n * (n - 1), p)),
  "parameter_server": ("2n", "p", lambda n, p: (2 * n, p)),
  "ring_allreduce": ("2n(n−1)", "p/n", lambda n, p: (2 * n * (n - 1), math.ceil(p / n))),
  "pmean": ("2n(n−1) (model)", "p/n", lambda n, p: (2 * n * (n - 1), math.ceil(p / n))),
}

#: Bytes each worker sends, in units of p · itemsize, and the busiest device.
PER_WORKER = {
  "all_to_all": "(n−1)·p",
  "parameter_server": "p (server: n·p)",
  "ring_allreduce": "2(n−1)/n·p",
  "pmean": "2(n−1)/n·p",
}


@dataclass(frozen=True)
class Config:
  n: int = field(default=4, metadata=cfg.in_range(1, 15))
  p: int = field(default=1_000_000, metadata=cfg.positive())
  dtype: str = field(default="float32", metadata=cfg.one_of("float32", "float64", "bfloat16"))
  #: More (n, p) to measure: every n of extra_n with every p of extra_p (and the configured ones).
  extra_n: tuple[int, ...] = field(
    default=(2, 8),
    metadata=cfg.check(lambda ns: all(1 <= n <= 15 for n in ns), "each must be between 1 and 15"),
  )
  extra_p: tuple[int, ...] = field(default=(1000, 1001), metadata=cfg.each_positive())
  #: Worker counts for the bytes-per-worker plot (at the configured p).
  curve_n: tuple[int, ...] = field(
    default=(1, 2, 3, 4, 5, 6, 7, 8),
    metadata=cfg.check(lambda ns: all(1 <= n <= 15 for n in ns), "each must be between 1 and 15"),
  )
  include_pmean: bool = True


def _entry(count) -> dict:
  return {
    "n": count.n,
    "p": count.p,
    "messages": count.messages,
    "message_size": count.message_size,
    "bytes_per_worker": count.bytes_per_worker,
    "bytes_server": count.bytes_server,
    "optimal_bytes_per_worker": count.optimal_bytes_per_worker,
    "exact": count.exact,
  }


def _fmt_int(x) -> str:
  return f"{x:,}"


def _fmt_bytes(b: float) -> str:
  for unit in ("B", "KB", "MB", "GB"):
    if abs(b) < 1000 or unit == "GB":
      return f"{b:,.0f} {unit}" if unit == "B" else f"{b:,.2f} {unit}"
    b /= 1000
  return f"{b:.2f} GB"


def run(config: Config, ctx):
  names = PARADIGMS + (("pmean",) if config.include_pmean else ())
  ns = sorted({config.n, *config.extra_n})
  ps = sorted({config.p, *config.extra_p})
  grid = [(n, p) for n in ns for p in ps]
  curve = sorted(set(config.curve_n))
  total = len(names) * (len(grid) + len(curve))
  measured: dict[str, dict[tuple[int, int], object]] = {name: {} for name in names}
  with ctx.progress(total, "compiling and counting") as bar:
    for name in names:
      for n, p in grid + [(n, config.p) for n in curve]:
        if (n, p) not in measured[name]:
          measured[name][(n, p)] = accounting.measure(name, n, p, config.dtype)
        bar.update(1)

  n, p = config.n, config.p
  itemsize = jnp.dtype(config.dtype).itemsize
  rows, agree_all, verdicts = [], True, {}
  for name in names:
    c = measured[name][(n, p)]
    msg_formula, size_formula, evaluate = FORMULAS[name]
    agree = all(
      evaluate(m, q) == (measured[name][(m, q)].messages, measured[name][(m, q)].message_size)
      for (m, q) in grid
    )
    agree_all &= agree or name == "pmean"
    # lax.pmean's all-reduce is counted with a model (the HLO does not say which algorithm runs),
    # so "measured" there cannot disagree: say so rather than "yes".
    verdicts[name] = MODEL if name == "pmean" else (AGREES if agree else DIFFERS)
    ratio = (
      f"{c.bytes_per_worker / c.optimal_bytes_per_worker:.2f}"
      if c.optimal_bytes_per_worker
      else "—"
    )
    rows.append(
      [
        LABELS[name],
        msg_formula,
        _fmt_int(c.messages),
        size_formula,
        _fmt_int(c.message_size),
        PER_WORKER[name],
        _fmt_bytes(c.bytes_per_worker),
        ratio,
        _fmt_bytes(max(c.bytes_per_worker, c.bytes_server)),
        {AGREES: "yes", DIFFERS: "NO", MODEL: "model"}[verdicts[name]],
      ]
    )
  main_table = markdown_table(
    [
      "paradigm",
      "messages (formula)",
      f"messages (measured, n={n}, p={p:,})",
      "message size (formula)",
      "message size (measured)",
      "sent per worker (formula)",
      "sent per worker (measured)",
      "÷ optimal",
      "busiest device sends",
      f"formula = measured at all {len(grid)} (n, p)",
    ],
    rows,
  )
  grid_rows = []
  for name in names:
    for (m, q), c in sorted(measured[name].items()):
      if (m, q) in grid:
        ratio = (
          f"{c.bytes_per_worker / c.optimal_bytes_per_worker:.2f}"
          if c.optimal_bytes_per_worker
          else "—"
        )
        grid_rows.append(
          [
            LABELS[name],
            m,
            _fmt_int(q),
            _fmt_int(c.messages),
            _fmt_int(c.message_size),
            _fmt_bytes(c.bytes_per_worker),
            ratio,
          ]
        )
  grid_table = markdown_table(
    ["paradigm", "n", "p", "messages", "message size", "bytes sent per worker", "÷ optimal"],
    grid_rows,
  )

  arrays = {"q5_messages": _figure_arrays(measured, curve, p, names)}
  bound = _fmt_bytes(accounting.optimal_bytes_per_worker(n, p, itemsize))
  markdown = "\n\n".join(
    [
      f"## {TITLE}",
      "Each paradigm is written with `jax.lax` collectives inside `jax.shard_map`, compiled for "
      f"n workers and a p-entry {config.dtype} gradient, and its messages are counted from the "
      "compiled HLO (collective-permute source-target pairs, replica groups, loop trip counts; "
      "rules in `jaxopt_hw.distributed.accounting`). The tests check the same counts at "
      "n ∈ {2, 4, 8} and several p, and that every paradigm returns the same average "
      "as `lax.pmean`.",
      main_table,
      f"The bandwidth-optimal bound for an all-reduce among n = {n} workers is "
      f"2(n−1)/n·p·itemsize = {bound} per worker. The ring meets it (exactly when n divides p; "
      "otherwise the zero padding of the last chunk adds fewer than one entry per chunk, at "
      "most n−1 zeros in all). All-to-all sends n/2 times the bound per worker. A "
      "parameter-server worker sends only p, below the bound, because the server is an extra "
      "machine: the server itself sends n·p, and its link is the bottleneck as n grows. "
      "`lax.pmean` compiles to one `all-reduce`, whose algorithm the HLO does not state; it is "
      "counted with the model reduce-scatter + all-gather (optimal by construction), not "
      'observed, so its last column says "model".',
      f"All measured (n, p):\n\n{grid_table}",
      f"Against n, at p = {p:,} (the `lax.pmean` line lies on the ring's: the same model):\n\n"
      "![messages, message size and the busiest device's traffic against n](q5_messages.png)",
    ]
  )
  if not agree_all:
    markdown += "\n\n**A measured count differs from its formula: see the table above.**"
  results = {
    name: [_entry(c) for (m, q), c in sorted(measured[name].items()) if (m, q) in grid]
    for name in PARADIGMS
  }
  if config.include_pmean:
    results["pmean"] = [
      _entry(c) for (m, q), c in sorted(measured["pmean"].items()) if (m, q) in grid
    ]
  results["formulas"] = {
    name: {
      "messages": FORMULAS[name][0],
      "message_size": FORMULAS[name][1],
      "bytes_per_worker": PER_WORKER[name],
    }
    for name in names
  }
  results["configured"] = {"n": n, "p": p, "dtype": config.dtype}
  results["formulas_match_measured"] = agree_all
  results["curve"] = {name: [_entry(measured[name][(m, p)]) for m in curve] for name in names}
  summary = []
  for name in names:
    c = measured[name][(n, p)]
    seen = f"{_fmt_int(c.messages)} × {_fmt_int(c.message_size)} at n = {n}, p = {p:,}"
    how = "; one all-reduce" if name == "pmean" else f", and at {len(grid) - 1} more (n, p)"
    summary.append(
      SummaryLine(
        f"Q5 {LABELS[name].replace('`', '')}",
        f"{FORMULAS[name][0]} messages of {FORMULAS[name][1]}",
        seen + how,
        verdicts[name],
      )
    )
  return StudyResult(results=results, markdown=markdown, seeds=[], summary=summary, arrays=arrays)


def _figure_arrays(measured, curve, p, names) -> dict:
  """The arrays behind Q5's figure (drawn by :mod:`jaxopt_hw.studies.figures`): messages, message
  size (NaN where nothing is sent) and the busiest device's parameters sent, against n."""

  def per_n(fn):
    return np.asarray([[fn(measured[name][(m, p)]) for m in curve] for name in names], np.float64)

  def size(c):
    return c.message_size if c.messages else np.nan

  def busiest(c):  # in parameters
    return max(c.bytes_per_worker, c.bytes_server) / jnp.dtype(c.dtype).itemsize

  labels = [
    f"{LABELS[name].replace('`', '')}: {FORMULAS[name][0]} × {FORMULAS[name][1]}" for name in names
  ]
  ns = np.asarray(curve)
  return {
    "paradigms": np.asarray(names),
    "labels": np.asarray(labels),
    "n": ns,
    "messages": per_n(lambda c: c.messages),
    "message_size": per_n(size),
    "busiest_sends": per_n(busiest),
    "optimal": 2 * (ns - 1) / ns * p,
    "p": np.asarray(p),
  }
