"""ebgan.train.checkpoint: one dict, read without unpickling code, RNG streams restored exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from tests.conftest import CodeRunningPayload

from ebgan.errors import EbganError
from ebgan.files import save_torch
from ebgan.train.checkpoint import FORMAT_VERSION, load_checkpoint, load_module_state, rng_states, set_rng_states


def test_round_trip(tmp_path):
    state = {"format": FORMAT_VERSION, "step": 7, "w": torch.arange(3.0)}
    save_torch(tmp_path / "c.pt", state)
    got = load_checkpoint(tmp_path / "c.pt")
    assert got["step"] == 7 and torch.equal(got["w"], state["w"])


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no checkpoint at"),
        (b"not a checkpoint", "cannot read checkpoint"),
        ([1, 2, 3], "is not an ebgan checkpoint"),
        ({"format": 999}, "is not an ebgan checkpoint of format"),
    ],
)
def test_what_is_not_a_checkpoint_is_named(tmp_path, content, message):
    path = tmp_path / "c.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        save_torch(path, content)
    with pytest.raises(EbganError, match=message):
        load_checkpoint(path)


def test_a_checkpoint_that_would_run_code_runs_none(tmp_path):
    marker = tmp_path / "marker"
    save_torch(tmp_path / "c.pt", {"format": FORMAT_VERSION, "x": CodeRunningPayload(marker)})
    with pytest.raises(EbganError, match=f"cannot read checkpoint {tmp_path / 'c.pt'}"):
        load_checkpoint(tmp_path / "c.pt")
    assert not marker.exists()


def test_rng_states_restore_the_stream():
    saved = rng_states()
    first = torch.rand(5)
    set_rng_states(saved)
    assert torch.equal(torch.rand(5), first)


def test_a_network_that_does_not_fit_is_named(tmp_path):
    # with torch's reason (on the lines after its heading), not its heading alone
    reason = r"size mismatch for weight: .*\[2, 4\].*\[2, 3\]"
    with pytest.raises(EbganError, match=f"the generator in .* does not fit the configured network .*{reason}"):
        load_module_state(nn.Linear(3, 2), nn.Linear(4, 2).state_dict(), "generator", tmp_path / "c.pt")
