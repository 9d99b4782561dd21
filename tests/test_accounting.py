"""Message accounting: the HLO parser on hand-written snippets, and each paradigm's compiled program
against the counts that follow from the paradigm's definition (HW2 Q5).

The HLO snippets below are written from the HLO text grammar (instruction = name "=" shape opcode
"(" operands ")" attributes; computations; ``ENTRY``), not copied from any compiler output.
"""

import math

import numpy as np
import pytest

from jaxopt_hw.distributed import accounting as acc
from jaxopt_hw.distributed import hlo

F32 = 4

# ---------------------------------------------------------------------------------------------
# The paradigms, compiled and counted, against their definitions.


def definition(paradigm, n, p):
  """(messages, message size, entries each worker sends) from the homework's definitions."""
  if paradigm == "all_to_all":  # each of n workers sends its p entries to each of the n-1 others
    return n * (n - 1), p, (n - 1) * p
  if paradigm == "parameter_server":  # n gradients up, n weight vectors down, p entries each
    return 2 * n, p, p
  if (
    paradigm == "ring_allreduce"
  ):  # 2(n-1) steps, in each all n workers pass one chunk of ceil(p/n)
    c = math.ceil(p / n)
    return 2 * (n - 1) * n, c, 2 * (n - 1) * c
  raise AssertionError(paradigm)


@pytest.mark.parametrize("p", [12, 1000, 1001, 4096])
@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("paradigm", ["all_to_all", "parameter_server", "ring_allreduce"])
def test_measured_messages_match_the_paradigm_definition(paradigm, n, p):
  messages, size, per_worker = definition(paradigm, n, p)
  got = acc.measure(paradigm, n, p)
  assert (got.messages, got.message_size) == (messages, size)
  assert got.message_sizes == {size: messages}
  assert got.bytes_per_worker == per_worker * F32
  assert got.bytes_total == messages * size * F32
  assert got.exact
  if paradigm == "parameter_server":
    assert got.bytes_server == n * p * F32  # the server sends the new weights to each worker


@pytest.mark.parametrize("n", [3, 5])  # n = 2 would be a 1-trip loop, which XLA removes
def test_unrolled_ring_sends_the_same_messages_as_the_looped_ring(n):
  looped, unrolled = (
    acc.measure("ring_allreduce", n, 100),
    acc.measure("ring_allreduce", n, 100, unroll=True),
  )
  assert (
    (looped.messages, looped.bytes_per_worker)
    == (unrolled.messages, unrolled.bytes_per_worker)
    == (2 * n * (n - 1), 2 * (n - 1) * math.ceil(100 / n) * F32)
  )
  # The looped ring's collectives sit in while bodies run n-1 times each.
  assert any(f"x{n - 1}" in line for line in looped.collectives)


def test_one_worker_sends_nothing_except_to_and_from_the_server():
  assert acc.measure("all_to_all", 1, 50).messages == 0
  assert acc.measure("ring_allreduce", 1, 50).messages == 0
  assert acc.measure("parameter_server", 1, 50).messages == 2


def test_float64_messages_have_eight_byte_entries():
  got = acc.measure("ring_allreduce", 4, 64, "float64")
  assert got.bytes_per_worker == 2 * 3 * 16 * 8


def test_pmean_is_counted_with_the_all_reduce_model_and_meets_the_optimal_bound():
  n, p = 4, 1000
  got = acc.measure("pmean", n, p)
  assert (got.messages, got.message_size) == (2 * n * (n - 1), p // n)
  assert got.bytes_per_worker == got.optimal_bytes_per_worker == 2 * (n - 1) / n * p * F32


def test_ring_meets_the_bandwidth_optimal_bound_when_n_divides_p():
  got = acc.measure("ring_allreduce", 8, 4096)
  assert got.bytes_per_worker == 2 * 7 / 8 * 4096 * F32 == got.optimal_bytes_per_worker


def test_measure_refuses_bad_p():
  from jaxopt_hw.errors import UserInputError

  with pytest.raises(UserInputError, match="p: 0"):
    acc.measure("ring_allreduce", 2, 0)


# ---------------------------------------------------------------------------------------------
# The parser on hand-written HLO.

PERMUTE = """\
HloModule permute_test, num_partitions=4

ENTRY %main (x: f32[16]) -> f32[16] {
  %x = f32[16]{0} parameter(0)
  ROOT %cp = f32[16]{0} collective-permute(f32[16]{0} %x), channel_id=1, source_target_pairs={{0,1},{1,2},{2,2},{3,0}}
}
"""  # noqa: E501


def test_collective_permute_is_one_message_per_pair_and_self_pairs_are_free():
  t = acc.count_messages(PERMUTE)
  assert t.messages == 3  # {2,2} stays on device 2
  assert t.message_sizes() == {16: 3}
  assert t.bytes_sent() == {0: 64, 1: 64, 3: 64}


GROUPS = """\
HloModule groups_test, num_partitions=4

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %sum = f32[] add(%a, %b)
}

%addbf (c: bf16[], d: bf16[]) -> bf16[] {
  %c = bf16[] parameter(0)
  %d = bf16[] parameter(1)
  ROOT %sumbf = bf16[] add(%c, %d)
}

ENTRY %main (x: f32[8], y: f32[12], z: bf16[10]) -> (f32[16], f32[32], f32[3], f32[12], bf16[10]) {
  %x = f32[8]{0} parameter(0)
  %y = f32[12]{0} parameter(1)
  %z = bf16[10]{0} parameter(2)
  %ag = f32[16]{0} all-gather(%x), channel_id=1, replica_groups={{0,1},{2,3}}, dimensions={0}
  %ag4 = f32[32]{0} all-gather(%x), channel_id=2, replica_groups=[1,4]<=[4], dimensions={0}
  %rs = f32[3]{0} reduce-scatter(%y), channel_id=3, replica_groups={}, dimensions={0}, to_apply=%add
  %a2a = f32[12]{0} all-to-all(%y), channel_id=4, replica_groups={{0,1,2,3}}, dimensions={0}
  %ar = bf16[10]{0} all-reduce(%z), channel_id=5, replica_groups={{0,1,2,3}}, to_apply=%addbf
  ROOT %t = (f32[16]{0}, f32[32]{0}, f32[3]{0}, f32[12]{0}, bf16[10]{0}) tuple(%ag, %ag4, %rs, %a2a, %ar)
}
"""  # noqa: E501


def test_group_collectives_follow_the_documented_rules():
  t = acc.count_messages(GROUPS)
  by_name = {c.name: c for c in t.collectives}
  # all-gather: m(m-1) messages of the shard per group; two groups of 2 -> 2·2 = 4 messages of 8.
  assert (by_name["ag"].messages, by_name["ag"].message_size) == (4, 8)
  # iota groups [1,4]<=[4]: one group of 4 -> 12 messages of 8.
  assert (by_name["ag4"].messages, by_name["ag4"].message_size) == (12, 8)
  # reduce-scatter over {} = all 4 partitions: 12 messages of 12/4 = 3.
  assert (by_name["rs"].messages, by_name["rs"].message_size) == (12, 3)
  # all-to-all: 12 messages of 12/4 = 3.
  assert (by_name["a2a"].messages, by_name["a2a"].message_size) == (12, 3)
  # all-reduce as reduce-scatter + all-gather: 2·4·3 = 24 messages of ceil(10/4) = 3 bf16 entries.
  assert (by_name["ar"].messages, by_name["ar"].message_size, by_name["ar"].message_bytes) == (
    24,
    3,
    6,
  )
  assert t.messages == 4 + 12 + 12 + 12 + 24
  # device 0 sends: ag 1·32 B, ag4 3·32 B, rs 3·12 B, a2a 3·12 B, ar 6·6 B
  assert t.bytes_sent()[0] == 32 + 96 + 36 + 36 + 36


LOOPS = """\
HloModule loop_test, num_partitions=2

%inner_body (a: (s32[], f32[6])) -> (s32[], f32[6]) {
  %a = (s32[], f32[6]{0}) parameter(0)
  %i = s32[] get-tuple-element(%a), index=0
  %v = f32[6]{0} get-tuple-element(%a), index=1
  %sent = f32[6]{0} collective-permute(%v), channel_id=2, source_target_pairs={{0,1},{1,0}}
  ROOT %r = (s32[], f32[6]{0}) tuple(%i, %sent)
}

%inner_cond (b: (s32[], f32[6])) -> pred[] {
  %b = (s32[], f32[6]{0}) parameter(0)
  %k = s32[] get-tuple-element(%b), index=0
  %lim = s32[] constant(3)
  ROOT %lt = pred[] compare(%k, %lim), direction=LT
}

%outer_body (c: (s32[], f32[6])) -> (s32[], f32[6]) {
  %c = (s32[], f32[6]{0}) parameter(0)
  %w = (s32[], f32[6]{0}) while(%c), condition=%inner_cond, body=%inner_body, backend_config={"known_trip_count":{"n":"3"}}
  %u = f32[6]{0} get-tuple-element(%w), index=1
  %g = f32[12]{0} all-gather(%u), channel_id=1, replica_groups={{0,1}}, dimensions={0}
  %j = s32[] get-tuple-element(%w), index=0
  %s = f32[6]{0} slice(%g), slice={[0:6]}
  ROOT %o = (s32[], f32[6]{0}) tuple(%j, %s)
}

%outer_cond (d: (s32[], f32[6])) -> pred[] {
  %d = (s32[], f32[6]{0}) parameter(0)
  %m = s32[] get-tuple-element(%d), index=0
  %lim2 = s32[] constant(5)
  ROOT %lt2 = pred[] compare(%m, %lim2), direction=LT
}

ENTRY %main (x: f32[6]) -> (s32[], f32[6]) {
  %x = f32[6]{0} parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], f32[6]{0}) tuple(%zero, %x)
  ROOT %loop = (s32[], f32[6]{0}) while(%init), condition=%outer_cond, body=%outer_body, backend_config={"known_trip_count":{"n":"5"}}
}
"""  # noqa: E501


def test_collectives_in_loops_count_trip_count_times_and_nested_loops_multiply():
  t = acc.count_messages(LOOPS)
  times = {c.name: c.times for c in t.collectives}
  assert times == {"sent": 15, "g": 5}  # inner permute: 3 per outer trip × 5 trips
  # The permute's operand shape is found through the symbol table (%v is not annotated inline).
  assert t.messages == 15 * 2 + 5 * 2
  assert t.message_sizes() == {6: 40}
  assert t.exact


def test_a_loop_without_known_trip_count_is_counted_once_and_flagged():
  text = LOOPS.replace(', backend_config={"known_trip_count":{"n":"3"}}', "")
  t = acc.count_messages(text)
  assert {c.name: c.times for c in t.collectives} == {"sent": 5, "g": 5}
  assert not t.exact and "no known trip count" in t.notes[0]


ASYNC_GPU = """\
HloModule async_test, num_partitions=2

%sum (l: f32[], r: f32[]) -> f32[] {
  %l = f32[] parameter(0)
  %r = f32[] parameter(1)
  ROOT %s = f32[] add(%l, %r)
}

ENTRY %main (x: f32[1024], y: f32[256]) -> (f32[1024], f32[1024], f32[512]) {
  %x = f32[1024]{0} parameter(0)
  %y = f32[256]{0} parameter(1)
  %cps = (f32[1024]{0}, f32[1024]{0}, u32[], u32[]) collective-permute-start(f32[1024]{0} %x), channel_id=1, source_target_pairs={{0,1},{1,0}}, backend_config={"is_sync":false}
  %cpd = f32[1024]{0} collective-permute-done((f32[1024]{0}, f32[1024]{0}, u32[], u32[]) %cps)
  %ars = f32[1024]{0} all-reduce-start(f32[1024]{0} %x), channel_id=2, replica_groups={{0,1}}, to_apply=%sum
  %ard = f32[1024]{0} all-reduce-done(f32[1024]{0} %ars)
  %ags = (f32[256]{0}, f32[512]{0}) all-gather-start(f32[256]{0} %y), channel_id=3, replica_groups={{0,1}}, dimensions={0}
  %agd = f32[512]{0} all-gather-done((f32[256]{0}, f32[512]{0}) %ags)
  ROOT %t = (f32[1024]{0}, f32[1024]{0}, f32[512]{0}) tuple(%cpd, %ard, %agd)
}
"""  # noqa: E501


def test_async_start_done_pairs_count_once():
  t = acc.count_messages(ASYNC_GPU)
  kinds = sorted((c.kind, c.name) for c in t.collectives)
  assert kinds == [("all-gather", "ags"), ("all-reduce", "ars"), ("collective-permute", "cps")]
  by_name = {c.name: c for c in t.collectives}
  assert (by_name["cps"].messages, by_name["cps"].message_size) == (2, 1024)
  assert (by_name["ars"].messages, by_name["ars"].message_size) == (2 * 2 * 1, 512)
  assert (by_name["ags"].messages, by_name["ags"].message_size) == (2, 256)
  assert t.bytes_sent() == {0: 4096 + 2 * 2048 + 1024, 1: 4096 + 2 * 2048 + 1024}


ASYNC_WRAPPED = """\
HloModule wrapped_test, num_partitions=4

%wrapped_all_to_all (p0: f32[8]) -> f32[8] {
  %p0 = f32[8]{0} parameter(0)
  ROOT %a2a = f32[8]{0} all-to-all(%p0), channel_id=1, replica_groups={{0,1,2,3}}, dimensions={0}
}

ENTRY %main (x: f32[8]) -> f32[8] {
  %x = f32[8]{0} parameter(0)
  %start = ((f32[8]{0}), f32[8]{0}, s32[]) async-start(%x), calls=%wrapped_all_to_all
  %update = ((f32[8]{0}), f32[8]{0}, s32[]) async-update(%start), calls=%wrapped_all_to_all
  ROOT %done = f32[8]{0} async-done(%update), calls=%wrapped_all_to_all
}
"""


def test_generic_async_wrappers_count_the_wrapped_collective_once():
  t = acc.count_messages(ASYNC_WRAPPED)
  assert [(c.kind, c.times, c.messages, c.message_size) for c in t.collectives] == [
    ("all-to-all", 1, 12, 2)
  ]


CONDITIONAL = """\
HloModule cond_test, num_partitions=2

%heavy (a: f32[4]) -> f32[4] {
  %a = f32[4]{0} parameter(0)
  %c1 = f32[4]{0} collective-permute(%a), channel_id=1, source_target_pairs={{0,1},{1,0}}
  ROOT %c2 = f32[4]{0} collective-permute(%c1), channel_id=2, source_target_pairs={{0,1},{1,0}}
}

%light (b: f32[4]) -> f32[4] {
  ROOT %b = f32[4]{0} parameter(0)
}

ENTRY %main (pr: pred[], x: f32[4]) -> f32[4] {
  %pr = pred[] parameter(0)
  %x = f32[4]{0} parameter(1)
  ROOT %r = f32[4]{0} conditional(%pr, %x, %x), true_computation=%heavy, false_computation=%light
}
"""


def test_conditional_counts_its_heaviest_branch_and_is_flagged():
  t = acc.count_messages(CONDITIONAL)
  assert t.messages == 4 and not t.exact


@pytest.mark.parametrize(
  "text,devices,groups",
  [
    ("{{0,1},{2,3}}", 4, [[0, 1], [2, 3]]),
    ("{}", 3, [[0, 1, 2]]),
    ("[2,2]<=[4]", 4, [[0, 1], [2, 3]]),
    ("[2,2]<=[2,2]T(1,0)", 4, [[0, 2], [1, 3]]),  # transpose of [[0,1],[2,3]]
    ("[1,8]<=[8]", 8, [list(range(8))]),
    # mesh-axes form (XLA with jax >= 0.12): devices row-major over the axes, a group varies
    # only along the braced axes.
    ("mesh['workers'=4] {'workers'}", 4, [[0, 1, 2, 3]]),
    ("mesh['a'=2,'b'=4] {'b'}", 8, [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("mesh['a'=2,'b'=4] {'a'}", 8, [[0, 4], [1, 5], [2, 6], [3, 7]]),
    ("mesh['a'=2,'b'=2,'c'=2] {'a','c'}", 8, [[0, 1, 4, 5], [2, 3, 6, 7]]),
  ],
)
def test_replica_group_forms(text, devices, groups):
  assert hlo.parse_replica_groups(text, devices) == groups


def test_metadata_strings_do_not_confuse_the_parser():
  text = PERMUTE.replace(
    "source_target_pairs={{0,1},{1,2},{2,2},{3,0}}",
    "source_target_pairs={{0,1}}, "
    'metadata={op_name="while/body=%x source_target_pairs={{0,1},{1,0}}"}',
  )
  assert acc.count_messages(text).messages == 1


def test_parse_shape_counts_elements_and_bytes():
  s = hlo.parse_shape("(f32[4,2]{1,0}, bf16[3], pred[], s64[2,2,2])")
  assert s.elements == 8 + 3 + 1 + 8 and s.bytes == 32 + 6 + 1 + 64


# ---------------------------------------------------------------------------------------------
# The Q5 study and its config.


def test_q5_config_file_is_valid():
  from pathlib import Path

  from jaxopt_hw import config as cfg
  from jaxopt_hw.studies import q5

  (spec,) = cfg.read_specs(
    [str(Path(__file__).resolve().parent.parent / "configs" / "hw2_q5.toml")], ["q5"]
  )
  config = cfg.load(q5.Config, spec.settings, prefix="q5")
  assert spec.experiment == "q5" and config.p % config.n == 0  # the homework's p is divisible by n


def test_q5_study_reports_measured_entries_per_paradigm(tmp_path):
  from jaxopt_hw.runner import run_study
  from jaxopt_hw.studies import figures

  result = run_study(
    "q5",
    {"n": 4, "p": 1000, "extra_n": [2], "extra_p": [10], "curve_n": [1, 2, 4]},
    tmp_path,
    show_progress=False,
  )
  for paradigm in ("all_to_all", "parameter_server", "ring_allreduce"):
    entries = {(e["n"], e["p"]): e for e in result.results[paradigm]}
    assert set(entries) == {(2, 10), (2, 1000), (4, 10), (4, 1000)}
    for (n, p), e in entries.items():
      messages, size, per_worker = definition(paradigm, n, p)
      assert (e["messages"], e["message_size"], e["bytes_per_worker"]) == (
        messages,
        size,
        per_worker * F32,
      )
  assert result.results["formulas_match_measured"] is True
  assert (
    result.markdown.startswith("## Q5")
    and "| ring all-reduce | 2n(n−1) | 24 | p/n | 250 |" in result.markdown
  )
  # lax.pmean's count is a model (one all-reduce, algorithm unstated): its cell says so
  main_table = [row for row in result.markdown.splitlines() if "| 2n(n−1)" in row]
  assert [row.rsplit("|", 2)[1].strip() for row in main_table] == ["yes", "model"]
  assert main_table[1].startswith("| `lax.pmean` (baseline) |")
  verdicts = {line.question: line.verdict for line in result.summary}
  assert verdicts == {
    "Q5 all-to-all": "agrees",
    "Q5 parameter server": "agrees",
    "Q5 ring all-reduce": "agrees",
    "Q5 lax.pmean (baseline)": "model",
  }

  # the figure plots what the homework asks, per paradigm against n, from its saved arrays
  a = figures.load_arrays(tmp_path / "q5_messages.npz")
  assert (tmp_path / "q5_messages.png").stat().st_size > 0
  assert a["n"].tolist() == [1, 2, 4] and int(a["p"]) == 1000
  names = a["paradigms"].tolist()
  for i, paradigm in enumerate(names[:3]):
    for j, n in enumerate([1, 2, 4]):
      messages, size, _ = definition(paradigm, n, 1000)
      assert a["messages"][i, j] == messages
      assert a["message_size"][i, j] == size or (
        messages == 0 and np.isnan(a["message_size"][i, j])
      )
  np.testing.assert_allclose(a["optimal"], [0, 1000, 1500])  # 2(n−1)/n·p
  fig = figures.draw_q5_messages(a)
  for ax in fig.axes:
    styles = [
      (ln.get_color(), ln.get_linestyle(), ln.get_marker(), ln.get_linewidth()) for ln in ax.lines
    ]
    assert len(set(styles)) == len(styles), "two lines drawn alike"
    assert ax.get_xlabel() == "n (workers)" and ax.get_ylabel()
  labels = [t.get_text() for t in fig.legends[0].get_texts()]
  assert any("2(n−1)/n·p" in t for t in labels) and any("pmean" in t for t in labels)


SEND_RECV_LOOP = """\
HloModule p2p_test, num_partitions=4

%body (state: (u32[], f32[2,2])) -> (u32[], f32[2,2]) {
  %state = (u32[], f32[2,2]{1,0}) parameter(0)
  %i = u32[] get-tuple-element(%state), index=0
  %data = f32[2,2]{1,0} get-tuple-element(%state), index=1
  %after_all = token[] after-all()
  %recv_ctx = (f32[2,2]{1,0}, u32[], token[]) recv(%after_all), channel_id=2, frontend_attributes={_xla_send_recv_source_target_pairs={{0,1},{1,2},{2,3}}}
  %send_ctx = (f32[2,2]{1,0}, u32[], token[]) send(%data, %after_all), channel_id=1, frontend_attributes={_xla_send_recv_source_target_pairs="{{0,1},{1,2},{2,3}}"}
  %recv_done = (f32[2,2]{1,0}, token[]) recv-done(%recv_ctx), channel_id=2
  %send_done = token[] send-done(%send_ctx), channel_id=1
  %got = f32[2,2]{1,0} get-tuple-element(%recv_done), index=0
  %one = u32[] constant(1)
  %next = u32[] add(%i, %one)
  ROOT %out = (u32[], f32[2,2]{1,0}) tuple(%next, %got)
}

%cond (c: (u32[], f32[2,2])) -> pred[] {
  %c = (u32[], f32[2,2]{1,0}) parameter(0)
  %k = u32[] get-tuple-element(%c), index=0
  %four = u32[] constant(4)
  ROOT %lt = pred[] compare(%k, %four), direction=LT
}

ENTRY %main (x: f32[2,2]) -> (u32[], f32[2,2]) {
  %x = f32[2,2]{1,0} parameter(0)
  %zero = u32[] constant(0)
  %init = (u32[], f32[2,2]{1,0}) tuple(%zero, %x)
  ROOT %w = (u32[], f32[2,2]{1,0}) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"4"}}
}
"""  # noqa: E501


def test_send_recv_pairs_count_at_the_send_only():
  t = acc.count_messages(SEND_RECV_LOOP)
  assert [(c.kind, c.times, c.messages, c.message_size) for c in t.collectives] == [
    ("send", 4, 3, 4)
  ]
  assert t.messages == 12 and t.bytes_sent() == {0: 64, 1: 64, 2: 64} and t.exact


def test_the_mesh_axes_form_is_read_from_an_instruction_with_commas_inside():
  # Written from the HLO grammar of newer XLA: the group spec holds commas, so it must be read as
  # one bracketed attribute, not cut at the first comma.
  text = """HloModule m, num_partitions=8

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}

ENTRY %main (x: f32[16]) -> f32[16] {
  %x = f32[16]{0} parameter(0)
  ROOT %ar = f32[16]{0} all-reduce(%x), channel_id=1, replica_groups=mesh['a'=2,'b'=4] {'b'}, use_global_device_ids=true, to_apply=%add
}
"""  # noqa: E501
  # two groups of m = 4, each all-reduce modelled as 2m(m-1) = 24 messages of 16/4 = 4 entries.
  traffic = acc.count_messages(text)
  assert traffic.messages == 48 and traffic.message_sizes() == {4: 48}


def test_unsupported_mesh_axes_spellings_are_refused_not_guessed():
  with pytest.raises(ValueError, match="unsupported mesh-axes form"):
    hlo.parse_replica_groups("mesh['a'=2] {'a'} <=[2]", 2)
  with pytest.raises(ValueError, match="not in the mesh"):
    hlo.parse_replica_groups("mesh['a'=2] {'z'}", 2)
