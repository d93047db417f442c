"""Config fields as CLI flags: ``--batch-size 32``, ``--model-args n_layer_g=3,size_g=400``."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import yaml

from ebgan.config import Config


def _parse_mapping(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected key=value pairs, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def _parser_for(f: dataclasses.Field):
    hint = typing.get_type_hints(Config)[f.name]
    base = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    t = base[0]
    if t is dict:
        return _parse_mapping
    if t is bool:
        return None
    return t


def add_config_flags(parser: argparse.ArgumentParser, skip: set[str] = frozenset()) -> None:
    """One flag per Config field, default SUPPRESS so that only given flags override."""
    group = parser.add_argument_group("config (override the preset; see 'ebgan train --dry-run')")
    for f in dataclasses.fields(Config):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if _parser_for(f) is None:  # booleans: --amp / --no-amp
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            group.add_argument(flag, dest=f.name, type=_parser_for(f), default=argparse.SUPPRESS, metavar="V")


def config_overrides(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k in Config.keys()}

