"""Config keys as CLI flags: ``--batch-size 32``, ``--model-args n_layer_g=3,size_g=400``.

Every field of ``Config`` and every option of every registered objective is a flag, with
its help line from the one place it is declared. A command that does not use a key
leaves it out (``skip``), so argparse refuses it instead of silently ignoring it.
"""

from __future__ import annotations

import argparse
import dataclasses

from ebgan.config import FIELD_TYPES, Config, load_yaml


def _parse_mapping(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected key=value pairs, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = load_yaml(v)  # the YAML of config files: 2e-4 is a number here too
    return out


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


PRESET_HELP = "a preset name (ebgan presets lists them, e.g. fmnist-ebgan-pt) or a YAML file; flags override it"

PARSERS = {int: _parse_int, float: _parse_float, str: str}


class _MergeMapping(argparse.Action):
    """A mapping flag given twice adds up, later keys winning (argparse's store would drop the first's keys)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, {**getattr(namespace, self.dest, {}), **values})


def _add(group, key: str, kind: type, help: str) -> None:
    flag = "--" + key.replace("_", "-")
    if kind is bool:  # --amp / --no-amp
        group.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help)
    elif kind is dict:
        group.add_argument(
            flag,
            dest=key,
            action=_MergeMapping,
            type=_parse_mapping,
            default=argparse.SUPPRESS,
            metavar="V",
            help=help,
        )
    else:
        group.add_argument(flag, dest=key, type=PARSERS[kind], default=argparse.SUPPRESS, metavar="V", help=help)


def _model_args_help() -> str:
    from ebgan.nets import FAMILIES, family

    per_family = "; ".join(f"{name}: {', '.join(family(name).ARGS)}" for name in FAMILIES)
    return f"network family options as key=value pairs, each replacing the preset's ({per_family})"


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> None:
    """One flag per config key, default SUPPRESS so that only given flags override."""
    from ebgan.objectives import all_options

    group = parser.add_argument_group("config (override the preset; 'ebgan train --dry-run' shows the result)")
    for f in dataclasses.fields(Config):
        if f.name in skip or f.name not in FIELD_TYPES:
            continue
        text = _model_args_help() if f.name == "model_args" else f.metadata["help"]
        _add(
            group, f.name, FIELD_TYPES[f.name][0], f"{text} (default: {f.default if f.name != 'model_args' else '{}'})"
        )
    options = parser.add_argument_group("objective options (each is refused by the objectives that do not use it)")
    for key, owners in all_options().items():
        if key in skip:
            continue
        _, first = owners[0]
        users = ", ".join(name for name, _ in owners)
        default = "computed" if first.default is None else first.default
        _add(options, key, first.type, f"[{users}] {first.help} (default: {default})")


def config_overrides(args: argparse.Namespace) -> dict:
    keys = set(Config.keys())
    return {k: v for k, v in vars(args).items() if k in keys}
