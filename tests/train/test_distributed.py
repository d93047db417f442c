"""Training under torchrun: 2 gloo processes on CPU against 1 process, resume, evaluation, signals.

Each test launches ``python -m torch.distributed.run --standalone`` (a free port each), so the
processes are real ones, as a user starts them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import class_images, write_idx_split

from ebgan.distributed import Distributed, GlobalBatchNorm
from ebgan.errors import EbganError

TINY = ["--model", "dcgan", "--model-args", "width_g=8,width_d=8", "--image-size", "16", "--channels", "1"]
QUIET = ["--no-progress", "--device", "cpu", "--sample-every", "0"]


def image_folder(root: Path, n: int = 48) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(root / f"{i:03d}.png")
    return root


def env() -> dict:
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    src = Path(__file__).resolve().parents[2] / "src"
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), e.get("PYTHONPATH", "")) if p)
    return e


def launch(nproc: int, args: list[str]) -> subprocess.CompletedProcess:
    """torchrun in its own session: on a timeout (a deadlock) the launcher and its workers are killed together."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "ebgan"]
    proc = subprocess.Popen(
        cmd + args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def single(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ebgan", *args], env=env(), capture_output=True, text=True, timeout=240
    )


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return p


def weights(run: Path, key: str = "G") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)[key]


def test_two_processes_with_sync_bn_end_with_the_weights_of_one(tmp_path):
    """The global batch of 16 split 8 + 8 over two gloo processes, BatchNorm in G and D synchronised
    and the pull-away term over the global batch: the generator after 4 steps is the 1-process one
    to float tolerance (the sums are taken in another order: 1e-5 absolute on weights of size ~0.1)."""
    data = image_folder(tmp_path / "imgs")
    common = ["train", "--dataset", f"folder:{data}", *TINY, *QUIET, "--objective", "ebgan-pt"]
    common += ["--steps", "4", "--batch-size", "16", "--seed", "3", "--sync-bn"]
    ok(single(common + ["--out", str(tmp_path / "one")]))
    ok(launch(2, common + ["--out", str(tmp_path / "two")]))
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=1e-4, msg=k)
    # trained weights are compared, not two initialisations: Adam took 4 steps on each
    adam = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["opt_g"]["state"]
    assert adam and all(float(s["step"]) == 4 for s in adam.values())


def test_without_sync_bn_each_process_normalises_its_slice(tmp_path):
    """The same run without --sync-bn is a different computation (per-slice BatchNorm): its weights
    differ from the 1-process run by far more than float noise, which shows the flag is what makes
    the equivalence above."""
    data = image_folder(tmp_path / "imgs")
    common = ["train", "--dataset", f"folder:{data}", *TINY, *QUIET, "--steps", "4", "--batch-size", "16"]
    ok(single(common + ["--out", str(tmp_path / "one")]))
    ok(launch(2, common + ["--out", str(tmp_path / "two")]))
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(weights(tmp_path / "one").values(), weights(tmp_path / "two").values())
    )
    assert diff > 1e-4


def test_resume_under_two_processes_is_bit_identical(tmp_path):
    """mlp networks with dropout in D: every rank's RNG state must come back from the checkpoint. D's
    BatchNorm statistics (per slice, without --sync-bn) are averaged over the ranks for each
    checkpoint; the cut run stops at step 4, where the straight one writes none, so the ranks must
    go on from their own statistics, as the straight run does, not from the average."""
    data = image_folder(tmp_path / "imgs")
    net = ["--model", "mlp", "--model-args", "n_layer_g=2,size_g=32,n_layer_d=2,size_d=32,dropout_d=true"]
    common = ["train", "--dataset", f"folder:{data}", "--image-size", "16", "--channels", "1", *net, *QUIET]
    common += ["--batch-size", "8", "--checkpoint-every", "3", "--log-every", "1"]
    # the straight run draws a grid at every step (BatchNorm statistics averaged for each): no change either
    ok(launch(2, common + ["--steps", "6", "--sample-every", "1", "--out", str(tmp_path / "straight")]))
    ok(launch(2, common + ["--steps", "4", "--out", str(tmp_path / "cut")]))
    ok(launch(2, common[:1] + ["--resume", str(tmp_path / "cut"), "--steps", "6", *QUIET]))
    for key in ("G", "D"):
        a, b = weights(tmp_path / "straight", key), weights(tmp_path / "cut", key)
        for k in a:
            assert torch.equal(a[k], b[k]), (key, k)
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])  # dropout differs per rank
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split(",")[0].split(":")[1]) for line in lines] == [1, 2, 3, 4, 5, 6]


def test_a_grid_between_checkpoints_sees_the_statistics_the_export_holds(tmp_path):
    """Without --sync-bn the ranks' BatchNorm statistics differ; the export holds their mean. A run
    of 2 steps draws its last grid after the checkpoint's averaging; a run of 4 steps draws its
    step-2 grid with no checkpoint at that step. The training to step 2 is the same (checkpoints do
    not change it), so the two step-2 grids must be the same pixels."""
    data = image_folder(tmp_path / "imgs")
    common = ["train", "--dataset", f"folder:{data}", *TINY, "--no-progress", "--device", "cpu"]
    common += ["--batch-size", "16", "--seed", "5", "--sample-every", "2", "--checkpoint-every", "4"]
    ok(launch(2, common + ["--steps", "2", "--out", str(tmp_path / "short")]))
    ok(launch(2, common + ["--steps", "4", "--out", str(tmp_path / "long")]))
    grid = "samples/step_000002.png"
    short, long = (np.asarray(Image.open(tmp_path / run / grid)) for run in ("short", "long"))
    assert np.array_equal(short, long)


def test_resume_under_another_process_count_continues_and_says_so(tmp_path):
    data = image_folder(tmp_path / "imgs")
    common = ["train", "--dataset", f"folder:{data}", *TINY, *QUIET, "--batch-size", "8"]
    ok(launch(2, common + ["--steps", "2", "--out", str(tmp_path / "run")]))
    p = ok(single(["train", "--resume", str(tmp_path / "run"), "--steps", "4", *QUIET]))
    assert "written by 2 process(es), this run has 1" in p.stdout
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 4


def test_evaluation_under_two_processes_runs_on_rank_0_and_nobody_waits_forever(tmp_path, monkeypatch):
    """--eval-every with a feature classifier: a tiny MNIST-format set (3 classes of squares, 28x28)
    and a classifier trained on it into a private cache, both in tmp_path."""
    from ebgan.metrics.classifier import train_classifier

    root, cache = tmp_path / "data", tmp_path / "cache"
    images, labels = class_images(80, classes=3, size=28)
    write_idx_split(root / "mnist", "t10k", images, labels)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))  # the subprocesses inherit it through env()
    train_classifier("mnist", root, epochs=1, log=lambda m: None)
    run = tmp_path / "r"
    args = ["train", "--dataset", "mnist", "--data-root", str(root), "--data-split", "test-fit", "--model", "mlp"]
    args += ["--model-args", "n_layer_g=2,size_g=32,n_layer_d=2,size_d=32", "--batch-size", "8", *QUIET]
    ok(launch(2, args + ["--steps", "4", "--eval-every", "2", "--log-every", "2", "--out", str(run)]))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [line["step"] for line in lines if any(k.startswith("select/") for k in line)]
    assert evals == [2, 4] and {line["step"] for line in lines} == {2, 4}, lines  # one evaluation each, rank 0's


def test_a_batch_size_the_processes_do_not_divide_is_refused_with_the_fix(tmp_path):
    data = image_folder(tmp_path / "imgs")
    p = launch(
        2,
        ["train", "--dataset", f"folder:{data}", *TINY, *QUIET, "--batch-size", "15", "--steps", "2"]
        + [
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert p.returncode != 0
    assert "--batch-size 15 (the global batch) is not divisible by the 2 processes; use --batch-size 14 or 16 (a" in (
        p.stdout + p.stderr
    )
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_the_launcher_leaves_one_checkpoint_of_a_step_every_rank_reached(tmp_path):
    data = image_folder(tmp_path / "imgs")
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ebgan"]
    cmd += ["train", "--dataset", f"folder:{data}", *TINY, *QUIET, "--batch-size", "8", "--steps", "100000"]
    cmd += ["--log-every", "1", "--checkpoint-every", "0", "--out", str(run)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (
            (run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 5
        ):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 5 and len(state["rng_ranks"]) == 2, err[-3000:]
    # the checkpoint is that of the last step logged: every rank stopped there
    last = (run / "metrics.jsonl").read_text().splitlines()[-1]
    assert f'"step": {state["step"]},' in last
    p = ok(launch(2, ["train", "--resume", str(run), "--steps", str(state["step"] + 2), *QUIET]))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == state["step"] + 2, p.stderr[-2000:]


# ---------------------------------------------------------------------- in one process
def test_one_process_is_the_identity():
    d = Distributed()
    x = torch.arange(6.0).reshape(3, 2)
    assert d.shard(x) is x and d.gather(x) is x and d.mean(x) is x and not d.active
    assert d.check_batch(7) == 7


def test_the_batch_check_names_both_neighbours():
    with pytest.raises(EbganError, match="use --batch-size 12 or 16"):
        Distributed(world_size=4, rank=1).check_batch(14)
    with pytest.raises(EbganError, match=r"use --batch-size 3 \(a multiple of 3\)"):
        Distributed(world_size=3).check_batch(2)


def test_under_torchrun_each_process_takes_its_local_rank_s_gpu_and_one_named_gpu_is_refused(monkeypatch):
    """--device cuda:0 on every rank was quietly replaced by cuda:LOCAL_RANK. (No GPU here: torch's
    device checks are stood in for.)"""
    monkeypatch.setattr("ebgan.train.loop.pick_device", torch.device)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    rank1 = Distributed(world_size=2, rank=1, local_rank=1)
    assert rank1.device("cuda") == torch.device("cuda", 1)
    with pytest.raises(EbganError, match="--device cuda:0 names one GPU.*pass --device cuda"):
        rank1.device("cuda:0")
    assert Distributed().device("cuda:1") == torch.device("cuda", 1)  # one process: the GPU named


def test_shards_make_up_the_global_batch_in_rank_order():
    x = torch.arange(12).reshape(6, 2)
    parts = [Distributed(world_size=3, rank=r).shard(x) for r in range(3)]
    assert torch.equal(torch.cat(parts), x)


def test_global_batchnorm_outside_a_process_group_is_batchnorm():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_()
        bn.bias.uniform_()
    g = GlobalBatchNorm.convert(torch.nn.Sequential(bn))[0]
    ref = torch.nn.BatchNorm2d(3, momentum=0.3)
    ref.load_state_dict(bn.state_dict())
    x = torch.randn(5, 3, 4, 4)
    torch.testing.assert_close(g(x), ref(x))
    torch.testing.assert_close(g.running_var, ref.running_var)
    assert isinstance(g, GlobalBatchNorm) and g.weight is bn.weight


def test_the_collective_timeout_is_read_from_the_environment_with_a_clear_error(monkeypatch):
    from ebgan.distributed import collective_timeout

    monkeypatch.delenv("EBGAN_DIST_TIMEOUT_MIN", raising=False)
    assert collective_timeout().total_seconds() == 3600
    monkeypatch.setenv("EBGAN_DIST_TIMEOUT_MIN", "1.5")
    assert collective_timeout().total_seconds() == 90
    for bad in ("90m", "0", "-5", "inf", "nan", ""):
        monkeypatch.setenv("EBGAN_DIST_TIMEOUT_MIN", bad)
        with pytest.raises(EbganError, match=f"must be a positive number of minutes, got {bad!r}"):
            collective_timeout()


@pytest.mark.parametrize("initialised", [False, True])
def test_the_control_group_waits_as_long_as_the_training_group(monkeypatch, initialised):
    """On CUDA the stop check and the checkpoint barrier go over a separate gloo group, where the
    other ranks wait while rank 0 evaluates: it must get EBGAN_DIST_TIMEOUT_MIN too, not torch's
    30-minute default for a new group. The groups are recorded, not created (no GPU here)."""
    import datetime

    made: list[tuple[str, object]] = []
    monkeypatch.setenv("EBGAN_DIST_TIMEOUT_MIN", "90")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: initialised)
    monkeypatch.setattr(
        torch.distributed, "init_process_group", lambda backend, timeout=None: made.append((backend, timeout))
    )
    monkeypatch.setattr(
        torch.distributed, "new_group", lambda backend=None, timeout=None: made.append((backend, timeout)) or "control"
    )
    d = Distributed(world_size=2, rank=1, local_rank=1)
    d.start(torch.device("cuda", 1))
    ninety = datetime.timedelta(minutes=90)
    assert made == ([("gloo", ninety)] if initialised else [("nccl", ninety), ("gloo", ninety)])
    assert d._control == "control"


def test_a_rank_that_loses_another_says_so_rather_than_report_a_bug(monkeypatch, capsys):
    """When one rank stops with its own error, the others' next collective fails (gloo: 'Connection
    closed by peer'); their line must point to that error, not call their own failure a bug."""
    import ebgan.commands.sample as sample
    from ebgan.cli import main

    def fails(message):
        def run(args):
            raise RuntimeError(message)

        return run

    lost = "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:3494."
    argv = ["sample", "--run", "r", "--out", "x.npz"]
    monkeypatch.setattr(sample, "run", fails(lost))
    assert main(argv) == 1  # in one process: a bug as before
    assert "internal error RuntimeError" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("ebgan: error: rank 1 stopped: a collective with the other processes failed ([/pytorch")
    assert "another process most likely stopped first (its error is above)" in err and "a bug" not in err
    monkeypatch.setattr(sample, "run", fails("mat1 and mat2 shapes cannot be multiplied"))
    assert main(argv) == 1  # any other error under torchrun is still reported as a bug
    assert "internal error RuntimeError: mat1 and mat2" in capsys.readouterr().err
