"""``ebgan presets``: the presets shipped with ebgan, for ``--config NAME``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("presets", help="list the presets (ebgan train --config NAME)", description=__doc__)
    p.add_argument("name", nargs="?", help="print this preset's YAML instead of the list")
    p.set_defaults(func=run)


def run(args) -> int:
    from ebgan.config import load_config_file, preset_path, presets

    if args.name:
        path = preset_path(args.name)
        load_config_file(path)  # a file given by path: its encoding, YAML, keys and types, in one line
        print(path.read_text(), end="")
        return 0
    found = presets()
    width = max(map(len, found))
    for name in sorted(found):
        first = next(
            (line.lstrip("# ").strip() for line in found[name].read_text().splitlines() if line.startswith("#")), ""
        )
        print(f"{name:<{width}}  {first}")
    return 0
