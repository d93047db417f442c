"""ebgan.config: one flat namespace of typed keys; objectives own their options."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from ebgan.cli import build_parser
from ebgan.config import Config, config_diff, layered, load_config_file
from ebgan.errors import EbganError


@pytest.mark.parametrize(
    "values, message",
    [
        ({"steps": 3.7}, "steps must be a whole number, got 3.7"),
        ({"amp": "false"}, "amp must be true or false, got 'false'"),
        ({"batch_size": 8.5}, "batch_size must be a whole number"),
        ({"lr_d": "1e-3"}, "lr_d must be a number"),
        ({"margin": float("inf")}, "margin must be a finite number"),
        ({"pt_weight": float("nan")}, "pt_weight must be a finite number"),
        ({"model_args": "n_layer_g=3"}, "model_args must be a mapping"),
        ({"dataset": None}, "dataset needs a value"),
    ],
)
def test_values_of_the_wrong_type_are_refused_when_read(values, message):
    with pytest.raises(EbganError, match=message):
        Config(**values)


def test_an_int_is_a_float_but_not_the_other_way():
    cfg = Config(lr_g=1, margin=20)
    assert cfg.lr_g == 1.0 and isinstance(cfg.lr_g, float)
    assert cfg.margin == 20.0 and isinstance(cfg.margin, float)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr_g": -1e-4}, "lr_g must be a positive learning rate"),
        ({"beta1": 1.0}, "beta1 must be in \\[0, 1\\)"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"objective": "gan", "model": "mlp", "margin": 5.0}, "objective 'gan' does not use margin"),
        ({"objective": "began", "margin_schedule": "linear"}, "objective 'began' does not use margin_schedule"),
        ({"pretrain_steps": 100}, "pretrain_steps is used only by margin_schedule auto"),
        ({"margin_decay_steps": 100}, "margin_decay_steps is used by margin_schedule linear or auto"),
        ({"margin_schedule": "auto", "pretrain_steps": 5, "margin": 3.0}, "drop margin"),
    ],
)
def test_resolve_refuses_bad_or_unused_values(values, message):
    with pytest.raises(EbganError, match=message):
        Config(**values).resolve()


def test_resolved_config_holds_exactly_the_objectives_options():
    cfg = Config(objective="wgan-gp", model="dcgan").resolve()
    assert cfg.options == {"gp_weight": 10.0, "n_critic": 5}
    flat = cfg.to_dict()
    assert list(flat)[list(flat).index("objective") + 1 : list(flat).index("objective") + 3] == [
        "gp_weight",
        "n_critic",
    ]
    with pytest.raises(AttributeError, match="objective 'wgan-gp' has no option 'margin'"):
        cfg.margin  # noqa: B018


def test_yaml_round_trip_and_resolve_is_idempotent(tmp_path):
    cfg = Config(objective="ebgan", energy="l2sq", image_size=28).resolve()
    cfg.save(tmp_path / "c.yaml")
    again = Config.from_dict(load_config_file(tmp_path / "c.yaml"))
    assert again == cfg
    assert again.resolve() == cfg
    assert again.margin == 100.0  # 10 on ||r|| is 10^2 on ||r||^2


def test_a_config_saved_by_ebgan_0_1_still_loads():
    # 0.1 saved every objective's keys for every run; the run's own objective decides.
    old = {
        **Config().resolve().to_dict(),
        "gan_loss": "non-saturating",
        "gp_weight": 10.0,
        "n_critic": 5,
        "gamma": 0.5,
        "lambda_k": 0.001,
    }
    cfg = Config.from_dict(old, "old config.yaml", saved=True).resolve()
    assert cfg == Config().resolve()
    with pytest.raises(EbganError, match="does not use"):
        Config.from_dict(old).resolve()  # but not from a user's preset


def test_config_diff_ignores_resumable_keys_and_sees_options():
    a = Config(steps=10).resolve()
    b = Config(steps=20, log_every=7, margin=5.0).resolve()
    assert config_diff(a, b) == {"margin": (10.0, 5.0)}


def test_with_objective_keeps_only_the_options_the_other_one_declares():
    base = Config(energy="l2sq", pt_weight=0.3).resolve()
    twin = base.with_objective("autoencoder").resolve()
    assert twin.options == {"energy": "l2sq"}


def test_layered_merges_model_args_within_a_family_only():
    base = {"model": "mlp", "model_args": {"size_g": 800, "dropout_d": True}, "steps": 10}
    assert layered(base, {"model_args": {"dropout_d": False}, "steps": 5}) == {
        "model": "mlp",
        "model_args": {"size_g": 800, "dropout_d": False},
        "steps": 5,
    }
    assert layered(base, {"model": "mlp", "model_args": {"size_g": 400}})["model_args"] == {
        "size_g": 400,
        "dropout_d": True,
    }
    assert layered(base, {"model": "dcgan"})["model_args"] == {}
    assert layered(base, {"model": "dcgan", "model_args": {"width_g": 32}})["model_args"] == {"width_g": 32}
    assert base["model_args"] == {"size_g": 800, "dropout_d": True}  # not changed in place
    # a preset that leaves `model` out uses the default family, so naming that family keeps its options
    implicit = {"model_args": {"width_g": 32}}
    assert layered(implicit, {"model": Config.model})["model_args"] == {"width_g": 32}
    # a saved run's config: the same merge, so resume names the one option that changed
    saved = Config(model="mlp", model_args={"size_g": 800}).resolve()
    assert saved.updated(model_args={"dropout_d": True}).model_args["size_g"] == 800


def test_every_config_flag_has_help():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {a.dest: a.help for a in train._actions if a.dest in set(Config.keys())}
    assert set(flags) == set(Config.keys())
    assert all(h and len(h) > 10 for h in flags.values()), [k for k, h in flags.items() if not h]


def test_every_field_declares_help():
    for f in dataclasses.fields(Config):
        assert f.metadata.get("help"), f.name


def test_preset_with_a_bad_type_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"steps": "many"}))
    with pytest.raises(EbganError, match=f"{path}: steps must be a whole number"):
        load_config_file(path)


@pytest.mark.parametrize("text", ["[]", "0", "false", "''", "- steps: 3"])
def test_a_config_file_that_is_not_a_mapping_is_refused_even_when_falsy(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n")
    with pytest.raises(EbganError, match="p.yaml must hold a mapping of config keys to values"):
        load_config_file(path)


def test_an_empty_config_file_has_no_keys(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing set yet\n")
    assert load_config_file(tmp_path / "empty.yaml") == {} == load_config_file(tmp_path / "comments.yaml")


def test_the_model_and_objective_help_name_every_built_in_choice():
    # The help strings are written by hand; this catches a family or objective added without them.
    from ebgan.nets import FAMILIES
    from ebgan.objectives import BUILTIN

    # whole names outside the "(see ...)" pointers: "ebgan" must be listed itself, not found in "ebgan-pt"
    named = {
        f.name: set(re.findall(r"[\w-]+", re.sub(r"\(.*?\)", "", f.metadata["help"])))
        for f in dataclasses.fields(Config)
    }
    assert set(FAMILIES) <= named["model"], named["model"]
    assert {o.name for o in BUILTIN} <= named["objective"], named["objective"]


def test_a_key_given_twice_is_refused_not_last_one_wins(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("steps: 10\nmargin: 5.0\nsteps: 20\n")
    with pytest.raises(EbganError, match=r"p.yaml is not valid YAML: .*'steps' twice"):
        load_config_file(path)
    path.write_text("model_args:\n  width: 8\n  width: 16\n")  # nested mappings too
    with pytest.raises(EbganError, match="'width' twice"):
        load_config_file(path)
    path.write_text("steps: 10\nmodel_args:\n  steps: 3\n")  # one key in two mappings is fine
    assert load_config_file(path, check=False)["steps"] == 10


def test_yaml_reads_a_float_written_with_an_exponent_and_no_dot(tmp_path):
    # PyYAML (YAML 1.1) reads 2e-4 as the string '2e-4'; YAML 1.2, Python and users read a number.
    path = tmp_path / "p.yaml"
    path.write_text("lr_g: 2e-4\nlr_d: 1E-3\nmargin: +5e1\nmodel_args:\n  init_std: 3e-2\n")
    values = load_config_file(path)
    assert (values["lr_g"], values["lr_d"], values["margin"]) == (0.0002, 0.001, 50.0)
    assert Config.from_dict(values).resolve().model_args["init_std"] == 0.03
    path.write_text("steps: 1e3\n")  # a float, so still not a whole number
    with pytest.raises(EbganError, match="steps must be a whole number, got 1000.0"):
        load_config_file(path)
    path.write_text("dataset: folder:1e3\n")  # a string that merely contains one stays a string
    assert load_config_file(path)["dataset"] == "folder:1e3"


def test_model_args_flag_reads_a_float_written_with_an_exponent(capsys):
    from ebgan.cli import main

    assert main(["train", "--model", "mlp", "--model-args", "init_std_g=2e-3,size_g=16", "--dry-run"]) == 0
    args = yaml.safe_load(capsys.readouterr().out)["model_args"]
    assert (args["init_std_g"], args["size_g"]) == (0.002, 16)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"pt_weight": None}, "pt_weight needs a value"),
        ({"margin_schedule": None}, "margin_schedule needs a value"),
        ({"objective": "began", "gamma": None}, "gamma needs a value"),
        ({"objective": "wgan-gp", "model": "mlp", "gp_weight": None}, "gp_weight needs a value"),
        ({"model_args": {"embedding_dim": None}}, "embedding_dim needs a value"),
    ],
)
def test_null_is_refused_where_a_value_is_needed(values, message):
    with pytest.raises(EbganError, match=message):
        Config(**values).resolve()


def test_a_null_margin_still_means_the_computed_default():
    assert Config(margin=None).resolve().margin == 10.0  # the paper's m = 10 on the L2 norm


@pytest.mark.parametrize("model, suggests_gan", [("mlp", True), ("seed32", False), ("began", False)])
def test_the_dcgan_objective_suggests_gan_only_for_a_family_with_a_critic(model, suggests_gan):
    with pytest.raises(EbganError, match="use --model dcgan") as e:
        Config(objective="dcgan", model=model).resolve()
    assert ("--objective gan" in str(e.value)) == suggests_gan
    if suggests_gan:  # and the suggestion works
        Config(objective="gan", model=model).resolve()


def test_model_args_given_twice_adds_up(capsys):
    # argparse keeps the last value of a repeated flag; for a mapping that silently dropped size_g
    from ebgan.cli import main

    argv = ["train", "--model", "mlp", "--model-args", "size_g=16,size_d=4", "--model-args", "size_d=8", "--dry-run"]
    assert main(argv) == 0
    args = yaml.safe_load(capsys.readouterr().out)["model_args"]
    assert (args["size_g"], args["size_d"]) == (16, 8)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1: 2", "p.yaml: config keys are names, got 1"),
        ("yes: 3", "p.yaml: config keys are names, got True"),
        ("null: 3", "p.yaml: config keys are names, got None"),
        ("? [a, b]\n: 3", "p.yaml is not valid YAML: while constructing a mapping"),
    ],
)
def test_a_key_that_is_not_a_name_is_refused_in_one_line(tmp_path, text, message):
    # YAML makes 1, yes, null and [a, b] a number, a bool, None and a list, not names
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n")
    with pytest.raises(EbganError, match=re.escape(message)):
        load_config_file(path)
