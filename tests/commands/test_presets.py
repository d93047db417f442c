"""`ebgan presets`: the list, and one preset's YAML."""

from __future__ import annotations

import pytest
import yaml

from ebgan.cli import main


def test_a_preset_by_name_prints_its_yaml(capsys):
    assert main(["presets", "fmnist-ebgan-pt"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["objective"] == "ebgan-pt"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\xff\xfesteps: 3\n", "is not valid YAML: 'utf-8' codec can't decode"),
        (b"- steps\n", "must hold a mapping of config keys to values"),
        (b"steps: many\n", "steps must be a whole number"),
    ],
)
def test_a_file_that_is_no_preset_is_a_one_line_error(tmp_path, capsys, data, message):
    path = tmp_path / "mine.yaml"
    path.write_bytes(data)
    assert main(["presets", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and len(captured.err.splitlines()) == 1


def test_the_list_shows_each_preset_s_first_sentence_or_its_head():
    from ebgan.commands.presets import headline

    # the first sentence, over wrapped lines, "et al." and "e.g." not taken for its end
    two_lines = "# BEGAN (Berthelot et al. 2017) on tiny\n# images, e.g. squares. Then more.\ndataset: mnist\n"
    assert headline(two_lines) == "BEGAN (Berthelot et al. 2017) on tiny images, e.g. squares"
    # a long sentence: what comes before its first colon outside brackets
    long = "# A preset (see mod: x) on data: " + "word " * 40 + ".\nsteps: 1\n"
    assert headline(long) == "A preset (see mod: x) on data"
    # no colon: cut at a word within 120 characters
    words = "# " + " ".join(["abcdefghi"] * 30) + ".\n"
    assert headline(words) == " ".join(["abcdefghi"] * 12) + " ..."  # 12 words and their spaces: 119 characters
    assert headline("steps: 1\n# a comment after the keys\n") == ""


def test_the_list_names_every_preset_on_one_line(capsys):
    from ebgan.config import presets

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(presets())
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # each with its headline
