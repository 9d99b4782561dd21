"""Every figure of the report, drawn from plain NumPy arrays; no JAX here.

A run saves the data behind each figure as ``<name>.npz`` next to ``<name>.png`` (the pattern is
described in :mod:`jaxopt_hw.studies`). ``np.load("<name>.npz")`` opens it without pickle; its key
``figure`` names the function in :data:`FIGURES` that draws it, and the other keys are documented in
that function's docstring. ``jaxopt-hw plot RUN_DIR`` redraws every PNG of a run from these files,
so a figure can be restyled, or its data reused, without computing anything again.

Strings (labels, titles) are stored as NumPy string arrays, numbers as float or int arrays, a
missing value as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from jaxopt_hw.errors import UserInputError
from jaxopt_hw.report import write_atomic

#: The key of every saved file that names its drawing function.
FIGURE_KEY = "figure"

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _text(value) -> str:
  return str(np.asarray(value).item())


def _texts(values) -> list[str]:
  return [str(v) for v in np.asarray(values).tolist()]


def _number(value) -> float:
  return float(np.asarray(value))


def subscript(k: int) -> str:
  return str(k).translate(_SUBSCRIPTS)


# ---------------------------------------------------------------------------------------------
# Q1


def draw_q1_unit_balls(a: Mapping[str, np.ndarray]) -> Figure:
  """Norm balls in 2-D with the steepest steps for one gradient.

  Keys: ``labels`` (k,) the norms' names; ``balls`` (k, K, 2) the boundary of {‖Δ‖ ≤ α}, a closed
  curve; ``g`` (2,) the gradient; ``alpha`` () α; ``ball_steps`` (k, 2) argmin gᵀΔ s.t. ‖Δ‖ ≤ α;
  ``penalty_steps`` (k, 2) argmin gᵀΔ + (1/α)‖Δ‖².
  """
  labels, balls = _texts(a["labels"]), np.asarray(a["balls"])
  g, alpha = np.asarray(a["g"]), _number(a["alpha"])
  ball_steps, penalty_steps = np.asarray(a["ball_steps"]), np.asarray(a["penalty_steps"])
  k = len(labels)
  cols = min(k, 3)
  rows = math.ceil(k / cols)
  fig = Figure(figsize=(3.6 * cols, 3.5 * rows + 0.8), layout="constrained")
  axes = fig.subplots(rows, cols, squeeze=False)
  extent = 1.15 * max(
    np.abs(balls).max(), np.abs(ball_steps).max(), np.abs(penalty_steps).max(), np.abs(g).max()
  )
  head = 0.05 * extent
  for i, ax in enumerate(axes.flat):
    if i >= k:
      ax.set_visible(False)
      continue
    ax.fill(balls[i, :, 0], balls[i, :, 1], color="0.92", zorder=0)
    ax.plot(balls[i, :, 0], balls[i, :, 1], color="0.45", linewidth=1, label="the ball ‖Δ‖ ≤ α")
    # The level line gᵀΔ = gᵀu through the ball step touches the ball there: nothing in the ball
    # lies below it.
    u, v = ball_steps[i], penalty_steps[i]
    t = np.linspace(-2 * extent, 2 * extent, 2)
    along = np.array([-g[1], g[0]]) / np.linalg.norm(g)
    ax.plot(
      u[0] + t * along[0],
      u[1] + t * along[1],
      color="C3",
      linestyle=":",
      linewidth=1,
      label="level line of gᵀΔ through the ball step",
    )
    ax.arrow(
      0,
      0,
      g[0],
      g[1],
      color="0.3",
      width=0.004 * extent,
      head_width=head,
      length_includes_head=True,
      label="g",
    )
    # Both steps lie on the ray −t·d(g): the ball step (wide, red) under the penalty step.
    ax.arrow(
      0,
      0,
      u[0],
      u[1],
      color="C3",
      width=0.03 * extent,
      head_width=2.2 * head,
      length_includes_head=True,
      alpha=0.55,
      label="ball step −α·d(g)",
    )
    ax.arrow(
      0,
      0,
      v[0],
      v[1],
      color="C0",
      width=0.008 * extent,
      head_width=head,
      length_includes_head=True,
      label="penalty step −(α/2)‖g‖*·d(g)",
    )
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.8", linewidth=0.5, zorder=0)
    ax.axvline(0, color="0.8", linewidth=0.5, zorder=0)
    ax.set_xlabel("Δ₁")
    ax.set_ylabel("Δ₂")
    ax.set_title(labels[i], fontsize=10)
  fig.legend(
    *axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8
  )
  fig.suptitle(f"Steepest steps for g = ({g[0]:g}, {g[1]:g}), α = {alpha:g}")
  return fig


# ---------------------------------------------------------------------------------------------
# Q2


def _symlog_threshold(values) -> float:
  """A linear range for a symlog axis: a tenth of the smallest non-zero magnitude to be shown."""
  values = np.abs(np.asarray(values, np.float64))
  values = values[np.isfinite(values) & (values > 0)]
  return float(values.min()) / 10 if values.size else 1.0


def _q2_lines(a):
  """The methods of a Q2 figure and their labels."""
  return _texts(a["methods"]), _texts(a["labels"])


def draw_q2_trajectories(a: Mapping[str, np.ndarray]) -> Figure:
  """θ against the step for each Q2 method, one panel per coordinate.

  Keys: ``methods`` (m,) the methods' names and ``labels`` (m,) how to show them; for each method
  ``M``: ``steps_M`` (K,) the logged steps, ``theta_M`` (K, d) θ there, ``derived_M`` (d,) the
  derived limit. Optional, one extra run without a limit: ``extra_label`` (), ``extra_steps`` (K,),
  ``extra_theta`` (K, d).
  """
  methods, labels = _q2_lines(a)
  d = np.asarray(a[f"theta_{methods[0]}"]).shape[-1]
  fig = Figure(figsize=(4.4 * d, 3.9))
  axes = fig.subplots(1, d, squeeze=False)[0]
  for j, ax in enumerate(axes):
    limits = []
    for k, (method, label) in enumerate(zip(methods, labels)):
      steps = np.maximum(np.asarray(a[f"steps_{method}"]), 0.5)
      theta = np.asarray(a[f"theta_{method}"])[:, j]
      limit = float(np.asarray(a[f"derived_{method}"])[j])
      ax.plot(steps, theta, color=f"C{k}", label=label)
      ax.axhline(limit, color=f"C{k}", linestyle="--", linewidth=0.8)
      limits.append(limit)
    if "extra_theta" in a:
      ax.plot(
        np.maximum(np.asarray(a["extra_steps"]), 0.5),
        np.asarray(a["extra_theta"])[:, j],
        color="C3",
        alpha=0.7,
        linewidth=0.8,
        label=_text(a["extra_label"]),
      )
    # One coordinate can span four decades across methods (θ₃: 0.0099, 0.90, 33.3): a symlog
    # scale shows every method's limit.
    ax.set_yscale("symlog", linthresh=_symlog_threshold(limits))
    ax.set_xscale("log")
    ax.set_xlabel("step (step 0 drawn at 0.5)")
    ax.set_ylabel(f"θ{subscript(j + 1)}")
    ax.set_title(f"θ{subscript(j + 1)} (dashed: derived limits)")
    ax.grid(True, alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  return fig


def draw_q2_loss_curves(a: Mapping[str, np.ndarray]) -> Figure:
  """The loss (1 − aᵀθ)² against the step for each Q2 method.

  Keys: ``methods`` (m,), ``labels`` (m,); for each method ``M``: ``steps_M`` (K,), ``loss_M``
  (K,). Optional: ``extra_label`` (), ``extra_steps`` (K,), ``extra_loss`` (K,).
  """
  methods, labels = _q2_lines(a)
  fig = Figure(figsize=(6, 4))
  ax = fig.subplots()
  lines = [
    (f"C{k}", label, a[f"steps_{m}"], a[f"loss_{m}"], 1.5)
    for k, (m, label) in enumerate(zip(methods, labels))
  ]
  if "extra_loss" in a:
    lines.append(("C3", _text(a["extra_label"]), a["extra_steps"], a["extra_loss"], 0.8))
  for color, label, steps, loss, width in lines:
    ax.plot(
      np.maximum(np.asarray(steps), 0.5),
      np.maximum(np.asarray(loss, np.float64), 1e-300),
      color=color,
      linewidth=width,
      label=label,
    )
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_ylim(1e-33, 10)
  ax.set_xlabel("step (step 0 drawn at 0.5)")
  ax.set_ylabel("loss (1 − aᵀθ)²")
  ax.set_title("loss (a loss of exactly 0 drops off the bottom)")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7)
  return fig


#: The four outcomes of a grid point in the step-size map, in the order of ``fractions``.
STEP_SIZE_OUTCOMES = (
  ("converged", "#4caf50"),
  ("not converged, loss below its start", "#ffeb3b"),
  ("not converged, loss above its start", "#ff9800"),
  ("diverged", "#e53935"),
)


def draw_q2_step_size_map(a: Mapping[str, np.ndarray]) -> Figure:
  """The fraction of seeds in each outcome against the learning rate, one panel per method.

  Keys: ``labels`` (c,) the panels' titles; ``learning_rates`` (P,); ``fractions`` (c, 4, P), the
  outcomes in the order of :data:`STEP_SIZE_OUTCOMES`; ``derived_thresholds`` and
  ``measured_thresholds`` (c,), NaN where there is none.
  """
  labels = _texts(a["labels"])
  lrs = np.asarray(a["learning_rates"])
  fractions = np.asarray(a["fractions"])
  derived, measured = np.asarray(a["derived_thresholds"]), np.asarray(a["measured_thresholds"])
  fig = Figure(figsize=(7, 2.0 * len(labels) + 0.8))
  axes = fig.subplots(len(labels), 1, squeeze=False)[:, 0]
  for i, ax in enumerate(axes):
    ax.stackplot(
      lrs,
      *fractions[i],
      colors=[c for _, c in STEP_SIZE_OUTCOMES],
      labels=[name for name, _ in STEP_SIZE_OUTCOMES],
    )
    if np.isfinite(derived[i]):
      ax.axvline(derived[i], color="k", linestyle="--", linewidth=1, label="derived threshold")
    if np.isfinite(measured[i]):
      ax.axvline(measured[i], color="k", linestyle=":", linewidth=1.5, label="measured threshold")
    ax.set_xscale("log")
    ax.set_xlim(lrs.min(), lrs.max())
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of seeds", fontsize=8)
    ax.set_xlabel("learning rate α (α₀ for schedules)", fontsize=8)
    ax.set_title(labels[i], fontsize=9)
  handles = {}
  for ax in axes:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  fig.legend(
    list(handles.values()),
    list(handles),
    fontsize=7,
    loc="lower center",
    ncol=3,
    bbox_to_anchor=(0.5, 1.0),
  )
  fig.tight_layout()
  return fig


# ---------------------------------------------------------------------------------------------
# Implicit bias


_REFERENCE_COLORS = {"min_l2": "C0", "weighted_min_norm": "C2", "min_linf": "C3"}
_METHOD_COLORS = {"sgd": "C0", "simplified_adam": "C1", "rescaled_sgd": "C2"}


def draw_implicit_bias_distances(a: Mapping[str, np.ndarray]) -> Figure:
  """Where each method lands: distances to each reference interpolant, and the first seed's θ.

  Keys: ``methods`` (m,) and ``method_labels`` (m,); ``references`` (r,) and ``reference_labels``
  (r,); ``distances`` (m, r, S) ‖θ − θ_ref‖₂/‖θ_ref‖₂ per seed; ``theta_first_seed`` (m, d);
  ``references_first_seed`` (r, d); ``title`` ().
  """
  methods, method_labels = _texts(a["methods"]), _texts(a["method_labels"])
  refs, ref_labels = _texts(a["references"]), _texts(a["reference_labels"])
  distances = np.asarray(a["distances"])
  fig = Figure(figsize=(12, 4.2))
  ax, ax2 = fig.subplots(1, 2)
  width = 0.8 / len(refs)
  for k, (ref, ref_label) in enumerate(zip(refs, ref_labels)):
    color = _REFERENCE_COLORS.get(ref, f"C{k + 4}")
    data = [np.maximum(distances[i, k], 1e-17) for i in range(len(methods))]
    pos = np.arange(len(methods)) + (k - (len(refs) - 1) / 2) * width
    bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=True)
    for patch in bp["boxes"]:
      patch.set_facecolor(color)
      patch.set_alpha(0.6)
    ax.plot([], [], color=color, linewidth=6, alpha=0.6, label=f"to {ref_label}")
  ax.set_xticks(np.arange(len(methods)), method_labels)
  ax.set_yscale("log")
  ax.set_xlabel("method")
  ax.set_ylabel("‖θ − θ_ref‖₂ / ‖θ_ref‖₂ over seeds (1e-17 floor)")
  ax.grid(True, axis="y", alpha=0.3)
  ax.legend(fontsize=8)
  ax.set_title(_text(a["title"]))

  theta, ref_theta = np.asarray(a["theta_first_seed"]), np.asarray(a["references_first_seed"])
  j = np.arange(theta.shape[-1])
  for k, (ref, ref_label) in enumerate(zip(refs, ref_labels)):
    color = _REFERENCE_COLORS.get(ref, f"C{k + 4}")
    ax2.plot(j, ref_theta[k], color=color, linestyle="--", linewidth=1, label=ref_label)
  for k, (method, label) in enumerate(zip(methods, method_labels)):
    ax2.plot(
      j,
      theta[k],
      color=_METHOD_COLORS.get(method, f"C{k + 4}"),
      marker="os^vD"[k % 5],
      linestyle="none",
      markersize=3,
      label=label,
    )
  ax2.set_yscale("symlog", linthresh=1e-2)
  ax2.set_xlabel("feature j (scale decreasing →)")
  ax2.set_ylabel("θ_j (first seed)")
  ax2.set_title("where each method lands, first seed")
  ax2.grid(True, alpha=0.3)
  ax2.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  return fig


# ---------------------------------------------------------------------------------------------
# Q5


#: Line styles per aggregator. Lines that coincide by design (all-to-all and parameter server send
#: messages of p entries; XLA's all-reduce is counted with the ring's model) pair a thick line with
#: big hollow marks and a thin dashed line with small marks, so both stay visible.
_BOLD = dict(linestyle="-", linewidth=3.5, markersize=10, markerfacecolor="none", alpha=0.8)
_THIN = dict(linestyle="--", linewidth=1.3, markersize=5)
_Q5_STYLES = {
  "all_to_all": dict(color="C0", marker="o", **_BOLD),
  "parameter_server": dict(color="C1", marker="s", **_THIN),
  "ring_allreduce": dict(color="C2", marker="D", **_BOLD),
  "pmean": dict(color="C3", marker="x", **_THIN),
}


def draw_q5_messages(a: Mapping[str, np.ndarray]) -> Figure:
  """Messages per iteration, message size and what the busiest device sends, against n.

  Keys: ``paradigms`` (k,) and ``labels`` (k,) (with the formulas); ``n`` (N,) the worker counts;
  ``messages``, ``message_size`` and ``busiest_sends`` (k, N), measured from the compiled programs
  (sizes in parameters; NaN where no message is sent); ``optimal`` (N,) the bandwidth-optimal
  all-reduce bound 2(n − 1)/n·p per worker; ``p`` () the gradient's size.
  """
  names, labels = _texts(a["paradigms"]), _texts(a["labels"])
  n = np.asarray(a["n"])
  p = int(np.asarray(a["p"]))
  fig = Figure(figsize=(14, 4.4))
  axes = fig.subplots(1, 3)
  panels = [
    ("messages", "messages per iteration", "messages per iteration"),
    ("message_size", "message size (parameters)", "size of each message"),
    ("busiest_sends", "parameters sent by the busiest device", "sent by the busiest device"),
  ]
  for ax, (key, ylabel, title) in zip(axes, panels):
    values = np.asarray(a[key], np.float64)
    for i, (name, label) in enumerate(zip(names, labels)):
      style = _Q5_STYLES.get(name, dict(color=f"C{i + 4}", marker="v", linestyle="-"))
      ax.plot(n, values[i], label=label, **style)
    ax.set_xlabel("n (workers)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}, p = {p:,}")
    ax.set_xticks(n)
    ax.grid(True, alpha=0.3)
  optimal = np.asarray(a["optimal"], np.float64)
  axes[2].plot(
    n,
    optimal,
    color="0.5",
    linewidth=10,
    alpha=0.3,
    zorder=0,
    label="the least any all-reduce sends per worker: 2(n−1)/n·p",
  )
  last = np.flatnonzero(optimal > 0)[-1:] if np.any(optimal > 0) else []
  for i in last:
    axes[2].annotate(
      "bound 2(n−1)/n·p",
      (n[i], optimal[i]),
      xytext=(0, -22),
      textcoords="offset points",
      ha="right",
      fontsize=8,
      color="0.3",
    )
  # The server's link grows as n·p; the workers' stay near p.
  axes[2].set_yscale("log")
  axes[1].set_yscale("log")
  handles = {}
  for ax in axes:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  fig.legend(
    list(handles.values()),
    list(handles),
    loc="lower center",
    ncol=3,
    fontsize=8,
    bbox_to_anchor=(0.5, 1.0),
  )
  fig.tight_layout()
  return fig


# ---------------------------------------------------------------------------------------------
# Data-parallel training


def draw_data_parallel_loss(a: Mapping[str, np.ndarray]) -> Figure:
  """Training loss per aggregation paradigm against the step, and one device's.

  Keys: ``labels`` (k,); ``losses`` (k, T); ``reference_losses`` (T,) full-batch training on one
  device; ``n`` () the workers.
  """
  labels = _texts(a["labels"])
  losses = np.asarray(a["losses"])
  n = int(np.asarray(a["n"]))
  fig = Figure(figsize=(6, 4))
  ax = fig.subplots()
  styles = ["-", "--", "-.", ":"]
  for k, label in enumerate(labels):
    ax.plot(losses[k], styles[k % len(styles)], linewidth=2, label=f"{label} (n = {n})")
  ax.plot(np.asarray(a["reference_losses"]), color="black", linewidth=0.8, label="one device")
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("full-batch loss")
  ax.set_title("the curves lie on top of each other")
  ax.grid(True, alpha=0.3)
  ax.legend()
  return fig


# ---------------------------------------------------------------------------------------------
# The network study


def draw_network_sensitivity(a: Mapping[str, np.ndarray]) -> Figure:
  """Final test accuracy against the learning rate, one line per optimizer.

  Keys: ``model`` () the model's name; ``labels`` (k,) the optimizers; ``learning_rates`` (k, L);
  ``accuracy`` (k, L, S) the final test accuracy of every learning rate and seed, NaN where the
  point diverged (drawn as 0). The line is the median over seeds, the band the min–max.
  """
  labels = _texts(a["labels"])
  lrs = np.asarray(a["learning_rates"], np.float64)
  acc = np.asarray(a["accuracy"], np.float64)
  fig = Figure(figsize=(6.4, 4.2))
  ax = fig.subplots()
  for k, label in enumerate(labels):
    scored = np.where(np.isnan(acc[k]), 0.0, acc[k])  # a diverged seed scores 0
    color = f"C{k % 10}"
    ax.plot(lrs[k], np.median(scored, axis=1), "o-", color=color, label=label, markersize=3)
    ax.fill_between(lrs[k], scored.min(axis=1), scored.max(axis=1), color=color, alpha=0.15)
  ax.set_xscale("log")
  ax.set_ylim(0, 1)
  ax.set_xlabel("learning rate")
  ax.set_ylabel("final test accuracy (median; band: min–max over seeds)")
  ax.set_title(f"{_text(a['model'])}: learning-rate sensitivity")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7)
  return fig


def draw_network_curves(a: Mapping[str, np.ndarray]) -> Figure:
  """Training loss and test accuracy against the epoch at each optimizer's best learning rate.

  Keys: ``model`` (); ``labels`` (k,) the optimizers with their best learning rate; ``epochs``
  (K,) the logged epochs; ``train_loss`` (k, K) the whole training set's loss and ``test_accuracy``
  (k, K), both medians over seeds.
  """
  labels = _texts(a["labels"])
  epochs = np.asarray(a["epochs"], np.float64)
  fig = Figure(figsize=(11, 4))
  ax_loss, ax_acc = fig.subplots(1, 2)
  for k, label in enumerate(labels):
    color = f"C{k % 10}"
    ax_loss.plot(epochs, np.asarray(a["train_loss"])[k], color=color)
    ax_acc.plot(epochs, np.asarray(a["test_accuracy"])[k], color=color, label=label)
  ax_loss.set_yscale("log")
  ax_loss.set_xlabel("epoch")
  ax_loss.set_ylabel("training loss (whole training set; median over seeds)")
  ax_acc.set_xlabel("epoch")
  ax_acc.set_ylabel("test accuracy (median over seeds)")
  for ax in (ax_loss, ax_acc):
    ax.grid(True, alpha=0.3)
  ax_acc.legend(fontsize=7)
  fig.suptitle(f"{_text(a['model'])}: training at each optimizer's best learning rate")
  return fig


#: The network study's models (jaxopt_hw.studies.network.MODELS): one pair of figures each.
NETWORK_MODELS = ("mlp", "cnn")

#: figure name -> the function that draws it from its arrays.
FIGURES: dict[str, Callable[[Mapping[str, np.ndarray]], Figure]] = {
  "q1_unit_balls": draw_q1_unit_balls,
  "q2_trajectories": draw_q2_trajectories,
  "q2_loss_curves": draw_q2_loss_curves,
  "q2_step_size_map": draw_q2_step_size_map,
  "implicit_bias_distances": draw_implicit_bias_distances,
  "q5_messages": draw_q5_messages,
  "data_parallel_loss": draw_data_parallel_loss,
  **{f"network_{m}_sensitivity": draw_network_sensitivity for m in NETWORK_MODELS},
  **{f"network_{m}_curves": draw_network_curves for m in NETWORK_MODELS},
}


# ---------------------------------------------------------------------------------------------
# Files


def save_arrays(path: Path, name: str, arrays: Mapping[str, object]) -> None:
  """Write ``arrays`` (and ``figure = name``) to ``path`` as an uncompressed ``.npz``."""
  if name not in FIGURES:
    raise KeyError(f"no drawing function registered for figure {name!r} in figures.FIGURES")
  data = {key: np.asarray(value) for key, value in arrays.items()}
  if any(v.dtype == object for v in data.values()):
    bad = sorted(k for k, v in data.items() if v.dtype == object)
    raise TypeError(f"figure {name!r}: arrays {bad} are not plain numbers or strings")
  data[FIGURE_KEY] = np.asarray(name)
  write_atomic(Path(path), lambda f: np.savez(f, **data), binary=True)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
  """The arrays of a saved figure (no pickle)."""
  with np.load(path, allow_pickle=False) as data:
    return {key: data[key] for key in data.files}


def draw(arrays: Mapping[str, np.ndarray], source: str = "arrays") -> Figure:
  """The figure named by ``arrays["figure"]``, drawn from ``arrays``."""
  if FIGURE_KEY not in arrays:
    raise UserInputError(f"plot: {source} has no {FIGURE_KEY!r} key; it was not saved by jaxopt-hw")
  name = _text(arrays[FIGURE_KEY])
  if name not in FIGURES:
    raise UserInputError(
      f"plot: {source} holds figure {name!r}, which this version cannot draw; known: "
      + ", ".join(FIGURES)
    )
  return FIGURES[name](arrays)


def save_png(fig: Figure, path: Path) -> None:
  write_atomic(
    Path(path), lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"), binary=True
  )


def write_figure(folder: Path, name: str, arrays: Mapping[str, object]) -> str:
  """Save ``<name>.npz`` in ``folder``, then draw ``<name>.png`` from the saved file; returns the
  PNG's file name."""
  folder = Path(folder)
  save_arrays(folder / f"{name}.npz", name, arrays)
  png = f"{name}.png"
  save_png(draw(load_arrays(folder / f"{name}.npz")), folder / png)
  return png


def redraw(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
  """Redraw every figure saved in ``run_dir`` (its ``*.npz``) into ``out_dir`` (default: the same
  folder); returns the PNGs written."""
  run_dir = Path(run_dir)
  if not run_dir.is_dir():
    raise UserInputError(f"plot: {str(run_dir)!r} is not a folder")
  saved = sorted(run_dir.glob("*.npz"))
  if not saved:
    raise UserInputError(
      f"plot: {str(run_dir)!r} holds no saved figure arrays (*.npz); "
      "give the folder of a `jaxopt-hw run`"
    )
  out = Path(out_dir) if out_dir is not None else run_dir
  out.mkdir(parents=True, exist_ok=True)
  written = []
  for path in saved:
    fig = draw(load_arrays(path), source=path.name)
    save_png(fig, out / f"{path.stem}.png")
    written.append(out / f"{path.stem}.png")
  return written
