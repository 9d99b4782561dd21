"""Configs: every user mistake is one clear line naming the field, the value and what is allowed."""

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
  with pytest.raises(cfg.ConfigError, match=r"^p: 'three' is a str; expected a number$"):
    cfg.load(Example, {"p": "three"})
  with pytest.raises(cfg.ConfigError, match=r"seed: True is a bool; expected an integer"):
    cfg.load(Example, {"seed": True})
  with pytest.raises(cfg.ConfigError, match=r"sgd: 0.1 is a float; expected a table"):
    cfg.load(Example, {"sgd": 0.1})
  with pytest.raises(cfg.ConfigError, match=r"grid\[1\]: 'x' is a str"):
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
