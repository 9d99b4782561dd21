"""Configs: every user mistake is one clear line naming the field, the value and what is allowed."""

import re
from dataclasses import dataclass, field

import pytest

from jaxopt_hw import config as cfg


@dataclass(frozen=True)
class Inner:
  learning_rate: float = field(default=0.5, metadata=cfg.positive())
  steps: int = field(default=10, metadata=cfg.at_least(1))


@dataclass(frozen=True)
class Example:
  seed: int = 0
  norm: str = field(default="l2", metadata=cfg.one_of("l1", "l2", "linf"))
  norms: tuple[str, ...] = field(default=("l2",), metadata=cfg.each_one_of("l1", "l2", "linf"))
  p: float = field(default=3.0, metadata=cfg.greater_than(1.0))
  grid: tuple[float, ...] = field(default=(0.1,), metadata=cfg.each_positive())
  verbose: bool = False
  sgd: Inner = Inner()


def test_defaults_when_the_mapping_is_empty():
  assert cfg.load(Example, {}) == Example()


def test_values_are_read_and_integers_are_accepted_as_numbers():
  c = cfg.load(Example, {"seed": 3, "p": 2, "grid": [1, 0.5], "sgd": {"learning_rate": 1}})
  assert c.seed == 3 and c.p == 2.0 and isinstance(c.p, float)
  assert c.grid == (1.0, 0.5) and c.sgd == Inner(learning_rate=1.0)


def test_unknown_key_suggests_the_nearest_one():
  with pytest.raises(
    cfg.ConfigError,
    match=(
      r"q2\.sgd\.learnig_rate: unknown key \(did you mean 'learning_rate'\?\); "
      r"allowed: learning_rate, steps"
    ),
  ):
    cfg.load(Example, {"sgd": {"learnig_rate": 0.1}}, prefix="q2")


def test_wrong_type_names_field_value_and_expected_type():
  with pytest.raises(cfg.ConfigError, match=r"^p: 'three' is a string; expected a number$"):
    cfg.load(Example, {"p": "three"})
  with pytest.raises(cfg.ConfigError, match=r"seed: True is a boolean; expected an integer"):
    cfg.load(Example, {"seed": True})
  with pytest.raises(cfg.ConfigError, match=r"sgd: 0.1 is a float; expected a table"):
    cfg.load(Example, {"sgd": 0.1})
  with pytest.raises(cfg.ConfigError, match=r"grid\[1\]: 'x' is a string; expected a number"):
    cfg.load(Example, {"grid": [0.1, "x"]})


def test_values_outside_what_is_allowed_are_refused():
  with pytest.raises(
    cfg.ConfigError, match=r"^sgd\.learning_rate: -0\.1 is not allowed; must be > 0$"
  ):
    cfg.load(Example, {"sgd": {"learning_rate": -0.1}})
  with pytest.raises(cfg.ConfigError, match=r"norm: 'l3' is not allowed; allowed: l1, l2, linf"):
    cfg.load(Example, {"norm": "l3"})
  with pytest.raises(cfg.ConfigError, match=r"p: 1\.0 is not allowed; must be > 1\.0"):
    cfg.load(Example, {"p": 1})
  with pytest.raises(
    cfg.ConfigError, match=r"norms: \['l2', 'lx'\] is not allowed; each must be one of"
  ):
    cfg.load(Example, {"norms": ["l2", "lx"]})
  with pytest.raises(
    cfg.ConfigError, match=r"grid: \[0\.1, 0\.0\] is not allowed; every entry must be > 0"
  ):
    cfg.load(Example, {"grid": [0.1, 0]})


def test_non_finite_numbers_are_refused():
  with pytest.raises(cfg.ConfigError, match=r"p: nan is not finite"):
    cfg.load(Example, {"p": float("nan")})


def test_config_errors_are_user_input_errors_and_value_errors():
  with pytest.raises(ValueError):
    cfg.load(Example, {"nope": 1})


@pytest.mark.parametrize(
  "text, path, value",
  [
    ("q2.sgd.learning_rate=0.1", ["q2", "sgd", "learning_rate"], 0.1),
    ("q1.norm=linf", ["q1", "norm"], "linf"),
    ('q1.norm="linf"', ["q1", "norm"], "linf"),
    ("q1.norms=['l1', 'l2']", ["q1", "norms"], ["l1", "l2"]),
    ("q1.verbose=true", ["q1", "verbose"], True),
  ],
)
def test_overrides_parse_toml_values_and_bare_strings(text, path, value):
  assert cfg.parse_override(text) == (path, value)


@pytest.mark.parametrize("text", ["q2", "=3", "q2..x=1", ".x=1"])
def test_malformed_overrides_are_refused(text):
  with pytest.raises(cfg.ConfigError, match="--set"):
    cfg.parse_override(text)


def test_suites_expand_their_includes_relative_to_the_file(tmp_path):
  (tmp_path / "a.toml").write_text('experiment = "q1"\nseed = 1\n')
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "b.toml").write_text('experiment = "q2"\n')
  (tmp_path / "suite.toml").write_text('include = ["a.toml", "sub/b.toml"]\n')
  specs = cfg.read_specs([str(tmp_path / "suite.toml")], ["q1", "q2"])
  assert [(s.experiment, s.settings) for s in specs] == [("q1", {"seed": 1}), ("q2", {})]


def test_a_suite_including_itself_is_refused(tmp_path):
  (tmp_path / "loop.toml").write_text('include = ["loop.toml"]\n')
  with pytest.raises(cfg.ConfigError, match="nested more than 8 deep"):
    cfg.read_specs([str(tmp_path / "loop.toml")], ["q1"])


def test_unknown_experiment_and_bad_files_are_named(tmp_path):
  (tmp_path / "x.toml").write_text('experiment = "q22"\n')
  with pytest.raises(
    cfg.ConfigError, match=r"experiment = 'q22' is not known \(did you mean 'q2'\?\)"
  ):
    cfg.read_specs([str(tmp_path / "x.toml")], ["q1", "q2"])
  (tmp_path / "y.toml").write_text("seed = 1\n")
  with pytest.raises(cfg.ConfigError, match=r"no 'experiment' key"):
    cfg.read_specs([str(tmp_path / "y.toml")], ["q1"])
  (tmp_path / "z.toml").write_text("seed = = 1\n")
  with pytest.raises(cfg.ConfigError, match=r"not valid TOML"):
    cfg.read_specs([str(tmp_path / "z.toml")], ["q1"])
  with pytest.raises(cfg.ConfigError, match=r"is not a file"):
    cfg.read_specs([str(tmp_path / "missing.toml")], ["q1"])


def test_overrides_must_name_an_experiment_of_the_run():
  specs = [cfg.ExperimentSpec("q1", {"seed": 0}, "x")]
  assert cfg.apply_overrides(specs, ["q1.seed=4"])[0].settings == {"seed": 4}
  assert specs[0].settings == {"seed": 0}, "overrides must not change the specs they were given"
  with pytest.raises(cfg.ConfigError, match=r"no experiment 'q3' in this run"):
    cfg.apply_overrides(specs, ["q3.seed=1"])


# ---------------------------------------------------------------------------------------------
# Issues 12.8, 12.9 and 12.14: the reader and the checks refuse what cannot work, in one line.


def test_a_value_of_the_wrong_kind_is_named_with_the_right_article():
  # "3 is a int" before; every TOML kind is named in words.
  with pytest.raises(cfg.ConfigError, match=r"^norms\[0\]: 3 is an integer; expected a string$"):
    cfg.load(Example, {"norms": [3]})
  with pytest.raises(cfg.ConfigError, match=r"^norm: \['l2'\] is a list; expected a string$"):
    cfg.load(Example, {"norm": ["l2"]})
  with pytest.raises(cfg.ConfigError, match=r"^norm: \{'a': 1\} is a table; expected a string$"):
    cfg.load(Example, {"norm": {"a": 1}})


@pytest.mark.parametrize("steps", [2**31, 3_000_000_000, 10**20, -(2**31) - 1])
def test_integers_beyond_32_bits_are_refused(steps):
  # 12.8: 3000000000 steps crashed with OverflowError once the study had started (int32 counters).
  with pytest.raises(
    cfg.ConfigError,
    match=rf"^q2\.sgd\.steps: {steps} is not allowed; integers must be between -2147483648 and "
    r"2147483647 \(32 bits\)$",
  ):
    cfg.load(Example, {"sgd": {"steps": steps}}, prefix="q2")
  assert cfg.load(Inner, {"steps": 2**31 - 1}).steps == 2**31 - 1  # the largest allowed


def test_a_list_longer_than_the_limit_is_refused_in_a_short_line():
  with pytest.raises(
    cfg.ConfigError, match=r"^grid: a list of 10001 entries is not allowed; at most 10000$"
  ):
    cfg.load(Example, {"grid": [0.5] * 10_001})
  with pytest.raises(cfg.ConfigError) as e:  # a long value is cut in the message
    cfg.load(Example, {"grid": [-1.0] * 5000})
  assert len(str(e.value)) < 200 and str(e.value).startswith("grid: [-1.0, -1.0")


def test_checks_between_fields_run_when_the_config_is_loaded():
  @dataclass(frozen=True)
  class Range:
    lo: float = 0.0
    hi: float = 1.0

    def validate(self):
      if self.lo > self.hi:
        raise cfg.ConfigError(f"x.lo: {self.lo} is not allowed; must be <= hi = {self.hi}")

  assert cfg.load(Range, {"lo": 0.5}) == Range(0.5, 1.0)
  with pytest.raises(cfg.ConfigError, match=r"^x\.lo: 2\.0 is not allowed; must be <= hi = 1\.0$"):
    cfg.load(Range, {"lo": 2.0})


def test_a_config_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
  # 12.9: UnicodeDecodeError without the file's name (exit 1).
  bad = tmp_path / "latin1.toml"
  bad.write_bytes(b'experiment = "q1"\n# caf\xe9\n')
  with pytest.raises(
    cfg.ConfigError,
    # offset: len('experiment = "q1"\n# caf') = 18 + 5
    match=rf"^{re.escape(str(bad))}: not UTF-8 text \(byte 0xe9 at offset 23\); TOML files are "
    "UTF-8$",
  ):
    cfg.read_specs([str(bad)], ["q1"])


def test_deeply_nested_values_are_refused_naming_the_file_or_the_override(tmp_path):
  # 12.9: arrays nested 5,000 deep gave RecursionError.
  deep = tmp_path / "deep.toml"
  deep.write_text('experiment = "q1"\ndims = ' + "[" * 5000 + "]" * 5000 + "\n")
  with pytest.raises(
    cfg.ConfigError, match=rf"^{re.escape(str(deep))}: values nested more than 32 deep"
  ):
    cfg.read_specs([str(deep)], ["q1"])
  shallow = tmp_path / "shallow.toml"  # deeper than any config, below Python's recursion limit
  shallow.write_text('experiment = "q1"\ndims = ' + "[" * 40 + "]" * 40 + "\n")
  with pytest.raises(
    cfg.ConfigError, match=rf"^{re.escape(str(shallow))}: values nested more than 32 deep"
  ):
    cfg.read_specs([str(shallow)], ["q1"])
  with pytest.raises(cfg.ConfigError, match=r"^--set q1\.dims: the value nests more than 32 deep"):
    cfg.parse_override("q1.dims=" + "[" * 5000 + "]" * 5000)


def test_a_config_over_the_size_limit_is_refused_before_parsing(tmp_path):
  # 12.9: no size limit (a 10-million-point grid made a 190 MB results.json).
  big = tmp_path / "big.toml"
  big.write_text('experiment = "q2"\n' + "# padding\n" * 120_000)
  with pytest.raises(
    cfg.ConfigError, match=rf"^{re.escape(str(big))}: over 1048576 bytes, too big for a config$"
  ):
    cfg.read_specs([str(big)], ["q2"])


def test_a_suite_including_nothing_is_refused(tmp_path):
  # 12.14: `include = []` ran nothing and exited 0 with an empty report.
  (tmp_path / "empty.toml").write_text("include = []\n")
  with pytest.raises(
    cfg.ConfigError, match=r"empty\.toml: include = \[\]; a suite must include at least one config$"
  ):
    cfg.read_specs([str(tmp_path / "empty.toml")], ["q1"])


def test_an_unreadable_config_is_refused_naming_it(tmp_path, monkeypatch):
  conf = tmp_path / "c.toml"
  conf.write_text('experiment = "q1"\n')

  def refuse(*args, **kwargs):
    raise PermissionError(13, "Permission denied", str(conf))

  monkeypatch.setattr("builtins.open", refuse)
  with pytest.raises(
    cfg.ConfigError, match=rf"^config: cannot read '{re.escape(str(conf))}': Permission denied$"
  ):
    cfg.read_specs([str(conf)], ["q1"])
