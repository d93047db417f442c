"""ebgan.experiments.sweep: the paper's grids, seeded samples, shards, resumable results, summary."""

from __future__ import annotations

import json

import pytest

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.experiments import sweep as sw
from ebgan.metrics.classifier import train_classifier

TINY_NETS = dict(N_LAYER=(2, 3), SIZE_G=(16,), SIZE_D=(8,), DROPOUT=(False,))


def test_grid_sizes_are_the_papers():
    assert len(sw.grid_settings("paper-mnist", ["ebgan"])) == 4 * 4 * 4 * 4 * 2 == 512
    gan = sw.grid_settings("paper-mnist", ["gan"])
    assert len(gan) == 512 * 2 * 2 * 3 == 6144
    assert len({s.id for s in gan}) == 6144  # ids are unique
    margin = sw.grid_settings("paper-margin", ["ebgan"], seeds=2)
    assert sorted({s.params[0][1] for s in margin}) == [1, 2, 4, 6, 8, 12, 16, 32] and len(margin) == 16
    with pytest.raises(EbganError, match="grid 'paper-margin' has no objective gan"):
        sw.grid_settings("paper-margin", ["gan"])


def test_samples_are_seeded_and_shards_split_them_disjointly():
    settings = sw.grid_settings("paper-mnist", ["ebgan", "gan"])
    a = sw.select(settings, 10, seed=3)
    assert [s.id for s in a] == [s.id for s in sw.select(settings, 10, seed=3)]
    assert [s.id for s in a] != [s.id for s in sw.select(settings, 10, seed=4)]
    assert [s.objective for s in a].count("gan") == 10
    shards = [sw.select(settings, 10, seed=3, shard=(i, 3)) for i in range(3)]
    ids = [s.id for part in shards for s in part]
    assert sorted(ids) == sorted(s.id for s in a) and len(set(ids)) == len(ids)
    with pytest.raises(EbganError, match="--shard"):
        sw.parse_shard("3/3")


def _result(id_: str, i_prime: float) -> dict:
    return {"id": id_, "grid": "paper-mnist", "objective": "ebgan", "params": {}, "status": "ok", "i_prime": i_prime}


def test_a_torn_last_line_is_skipped_and_the_first_result_of_an_id_wins(tmp_path):
    path = tmp_path / "results-0of1.jsonl"
    sw.append_result(path, _result("a", 1.0))
    sw.append_result(path, _result("a", 2.0))
    with open(path, "a") as f:
        f.write('{"id": "b", "i_pr')
    assert sw.read_results(tmp_path) == [_result("a", 1.0)]


def test_a_line_with_an_id_but_not_a_whole_result_is_named(tmp_path):
    """A hand-made line ({"id": ...} alone) ended in an internal KeyError deep in the summary."""
    path = tmp_path / "results-0of1.jsonl"
    sw.append_result(path, _result("a", 1.0))
    sw.append_result(path, {"id": "b", "i_prime": 2.0})
    with pytest.raises(EbganError, match=r"line 2 of .*results-0of1.jsonl is not a sweep result \(grid, objective"):
        sw.read_results(tmp_path)


@pytest.fixture
def tiny_mnist_like(tiny_idx, monkeypatch):
    """A 28x28 labelled IDX dataset, its classifier, and the grid shrunk to tiny networks."""
    root, spec = tiny_idx("tiny-digits", splits={"train": 120, "test": 60}, size=28)
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    for name, value in TINY_NETS.items():
        monkeypatch.setattr(sw, name, value)
    monkeypatch.setattr(
        sw, "MARGIN_NET", {"n_layer_g": 2, "n_layer_d": 2, "size_g": 16, "size_d": 8, "dropout_d": False}
    )
    return {"dataset": "tiny-digits", "data_root": str(root), "batch_size": 8}


def test_results_diverged_runs_resume_and_shards_merge(tiny_mnist_like, tmp_path, monkeypatch):
    base = tiny_mnist_like
    rows = sw.sweep(
        "paper-mnist",
        "ebgan,gan",
        tmp_path / "s0",
        steps=3,
        sample=2,
        seed=1,
        shard=(0, 2),
        base=base,
        eval_n=50,
        log=lambda m: None,
    )
    assert len(rows) == 2 and all(r["status"] == "ok" and r["i_prime"] >= 0 for r in rows)
    assert {r["data_split"] for r in rows} == {"train"} and {r["classifier_split"] for r in rows} == {"train"}
    # nothing runs twice: the same command again trains nothing
    calls = []
    with monkeypatch.context() as m:
        m.setattr(sw, "run_setting", lambda *a: calls.append(a) or {})
        sw.sweep(
            "paper-mnist",
            "ebgan,gan",
            tmp_path / "s0",
            steps=3,
            sample=2,
            seed=1,
            shard=(0, 2),
            base=base,
            eval_n=50,
            log=lambda m: None,
        )
    assert calls == []
    # a diverged run is a result, not a crash of the sweep
    from ebgan.train.trainer import Diverged

    def diverge(self, progress=True):
        raise Diverged("training diverged at step 1: loss_d = nan")

    with monkeypatch.context() as m:
        m.setattr("ebgan.train.Trainer.train", diverge)
        other = sw.sweep(
            "paper-mnist",
            "ebgan,gan",
            tmp_path / "s1",
            steps=3,
            sample=2,
            seed=1,
            shard=(1, 2),
            base=base,
            eval_n=50,
            log=lambda m: None,
        )
    assert [r["status"] for r in other] == ["diverged", "diverged"], other
    assert all(r.get("i_prime") is None and "diverged at step 1" in r["message"] for r in other)
    summary = sw.summarise([tmp_path / "s0", tmp_path / "s1"], tmp_path / "sum")
    assert summary["settings"] == 4
    every = summary["grids"]["paper-mnist"]["all settings"]
    assert sum(v["settings"] for v in every.values()) == 4 and sum(v["failed"] for v in every.values()) == 2
    assert (tmp_path / "sum" / "histograms.png").read_bytes()[:4] == b"\x89PNG"
    assert "I' >= 2" in (tmp_path / "sum" / "summary.md").read_text()


def test_margin_grid_and_cli(tiny_mnist_like, tmp_path, capsys):
    base = tiny_mnist_like
    sw.sweep(
        "paper-margin",
        None,  # the grid's own objectives: what `ebgan sweep --grid paper-margin` passes without --objectives
        tmp_path / "m",
        steps=2,
        sample=2,
        seed=0,
        seeds=1,
        base=base,
        eval_n=40,
        log=lambda m: None,
    )
    assert main(["sweep", "summary", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "The margin (Figure 9)" in out and (tmp_path / "m" / "margin.png").is_file()
    assert main(["sweep", "--grid", "paper-margin", "--objectives", "gan", "--out", str(tmp_path / "x")]) == 2
    assert "has no objective gan" in capsys.readouterr().err


SWEEP_SCRIPT = """
import sys
from ebgan.experiments import sweep as sw
sw.N_LAYER, sw.SIZE_G, sw.SIZE_D, sw.DROPOUT = (2, 3), (16,), (8,), (False,)
base = {"data_root": sys.argv[2], "data_split": "test-fit", "batch_size": 16}
sw.sweep("paper-mnist", "ebgan,gan", sys.argv[1], steps=int(sys.argv[3]), sample=2, seed=0, workers=2, base=base,
         eval_n=100, log=lambda m: print(m, flush=True))
"""


@pytest.mark.realdata("mnist:test")
@pytest.mark.slow
def test_two_workers_killed_then_resumed_run_each_setting_once(data_root, tmp_path):
    """The real MNIST test-fit split, the honest rule, 2 spawned workers. The sweep runs in its own
    process (as from the command line), is SIGKILLed once its first result line is written (the
    runs under way are lost), and the same call finishes the rest."""
    import os
    import subprocess
    import sys
    import time

    train_classifier("mnist", data_root, epochs=1, limit=600, log=lambda m: None)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = tmp_path / "results-0of1.jsonl"
    cmd = [sys.executable, "-c", SWEEP_SCRIPT, str(tmp_path), str(data_root)]
    first = subprocess.Popen([*cmd, "300"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None and not (results.is_file() and results.read_text()):
        time.sleep(0.2)
    first.kill()
    first.wait()
    assert results.is_file() and 1 <= len(results.read_text().splitlines()) < 4, first.stderr.read()
    again = subprocess.run([*cmd, "300"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == 4 and len(set(ids)) == 4  # each setting ran to a result exactly once
    assert {r["data_split"] for r in rows} == {"test-fit"} and {r["classifier_split"] for r in rows} == {"test-fit"}


def test_a_worker_that_dies_does_not_hang_or_stop_the_sweep(monkeypatch):
    """The setting whose worker dies twice becomes an error result; every other setting finishes."""
    from tests.experiments.dying_worker import Fixed, run_or_die

    jobs = [(Fixed("paper-mnist", "ebgan", (("name", k),)), {}, 1, None, 10) for k in ("a", "b", "c")]
    rows, lines = [], []
    sw._run_pool(jobs, 2, 1, "cpu", rows.append, lines.append, fn=run_or_die)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["a", "b", "c"] and len(rows) == 3
    assert by_id["a"]["status"] == by_id["c"]["status"] == "ok"
    assert by_id["b"]["status"] == "error" and "worker process died" in by_id["b"]["message"]
    assert any("worker died" in line for line in lines)


def test_histograms_hold_every_score_however_high(tmp_path):
    # I' is unbounded above: a sample of confident, class-balanced digits scores well past log 10
    scores = {"ebgan": [0.05, 2.2, 3.71, 4.53], "gan": [0.0, 0.01, 1.09]}
    lines = []
    for objective, values in scores.items():
        for i, v in enumerate(values):
            params = {"n_layer_g": 2, "n_layer_d": 2, "size_g": 400, "size_d": 128, "dropout_d": False}
            row = {"id": f"{objective}{i}", "grid": "paper-mnist", "objective": objective, "params": params}
            lines.append({**row, "seed": 0, "status": "ok", "i_prime": v, "dataset": "mnist", "data_split": "test-fit"})
    (tmp_path / "results-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    summary = sw.summarise([tmp_path], tmp_path)
    every = summary["grids"]["paper-mnist"]["all settings"]
    edges = summary["histogram_edges"]  # one set of bins for every cell, so histograms compare
    assert edges[0] == 0 and edges[-1] >= 4.53
    for objective, values in scores.items():
        counts = every[objective]["histogram_counts"]
        assert sum(counts) == len(values) and len(counts) == len(edges) - 1
    top_bin = next(i for i, (lo, hi) in enumerate(zip(edges, edges[1:])) if lo <= 4.53 < hi)
    assert every["ebgan"]["histogram_counts"][top_bin] == 1


def test_a_missing_classifier_stops_the_sweep_before_any_result_is_written(tiny_idx, tmp_path, monkeypatch):
    """Every run needs the classifier: without one the sweep fails once, naming it, and writes no
    error results that a re-run (after training the classifier) would count as done."""
    root, _ = tiny_idx("tiny-digits", splits={"train": 120, "test": 60}, size=28)
    for name, value in TINY_NETS.items():
        monkeypatch.setattr(sw, name, value)
    base = {"dataset": "tiny-digits", "data_root": str(root), "batch_size": 8}
    with pytest.raises(EbganError, match="classifier"):
        sw.sweep("paper-mnist", "ebgan", tmp_path / "s", steps=2, sample=1, base=base, log=lambda m: None)
    assert not sw.results_path(tmp_path / "s", (0, 1)).exists()


def test_a_sweep_folder_continues_only_with_its_own_steps_and_data(tiny_mnist_like, tmp_path, monkeypatch):
    """Result ids name settings, not steps or data: results of 3 steps must not pass for 300."""
    base = tiny_mnist_like
    kw = dict(sample=1, base=base, eval_n=40, log=lambda m: None)
    sw.sweep("paper-mnist", "ebgan", tmp_path / "s", steps=3, **kw)
    monkeypatch.setattr(sw, "run_setting", lambda *a: pytest.fail("a setting ran"))
    with pytest.raises(EbganError, match="holds results of 3 steps on tiny-digits .train., not of 300 steps"):
        sw.sweep("paper-mnist", "ebgan", tmp_path / "s", steps=300, **kw)
    with pytest.raises(EbganError, match="not of 3 steps on tiny-digits .test-fit."):
        sw.sweep("paper-mnist", "ebgan", tmp_path / "s", steps=3, **{**kw, "base": {**base, "data_split": "test-fit"}})
    assert len(sw.sweep("paper-mnist", "ebgan", tmp_path / "s", steps=3, **kw)) == 1  # the same sweep continues


def test_out_that_is_a_file_and_a_summary_of_a_non_results_file_are_refused(tmp_path, capsys):
    (tmp_path / "f").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert main(["sweep", "--grid", "paper-margin", "--steps", "2", "--out", str(tmp_path / "f")]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err
    assert main(["sweep", "summary", str(tmp_path / "f")]) == 2
    assert "is not a results file" in capsys.readouterr().err
