"""``ebgan presets``: the presets shipped with ebgan, for ``--config NAME``."""

from __future__ import annotations

import re


def register(sub) -> None:
    p = sub.add_parser("presets", help="list the presets (ebgan train --config NAME)", description=__doc__)
    p.add_argument("name", nargs="?", help="print this preset's YAML instead of the list")
    p.set_defaults(func=run)


HEADLINE = 120  # characters of a preset's comment shown in the list
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)")  # not "et al." or "e.g."


def headline(yaml_text: str) -> str:
    """A preset's first sentence, from the comment block that opens its file; a long one is cut at its
    first colon outside brackets (what comes before it names the setting), else at a word, with an ellipsis."""
    block = []
    for line in yaml_text.splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text:
            break
        block.append(text)
    text = " ".join(block)
    end = SENTENCE_END.search(text)
    text = text[: end.start()] if end else text
    if len(text) <= HEADLINE:
        return text
    depth = 0
    for i, ch in enumerate(text[:HEADLINE]):
        depth += (ch in "([") - (ch in ")]")
        if ch == ":" and depth == 0 and text[i + 1 : i + 2] == " ":
            return text[:i]
    return text[: text.rfind(" ", 0, HEADLINE)] + " ..."


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
        print(f"{name:<{width}}  {headline(found[name].read_text())}")
    return 0
