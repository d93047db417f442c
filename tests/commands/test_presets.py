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
