"""The paper's MNIST experiments as sweeps of ordinary runs (section 4.1, Figures 2, 3 and 9).

Grids (``GRIDS``):

- ``paper-mnist``: fully connected G and D (the ``mlp`` family), nLayerG and nLayerD in
  {2,3,4,5}, sizeG in {400,800,1600,3200}, sizeD in {128,256,512,1024}, dropoutD in
  {true,false}. EBGAN: Adam, lr 1e-3, m = 10 (512 settings). GAN: the same networks x
  optimD, optimG in {adam, sgd} x lr in {0.01, 0.001, 0.0001} (6,144 settings).
  ``ebgan-pt`` is EBGAN's grid with pull-away weight 0.1.
- ``paper-margin``: Figure 9, m in {1, 2, 4, 6, 8, 12, 16, 32} at nLayerG 5, nLayerD 2,
  sizeG 1600, sizeD 1024, no dropout, Adam 1e-3, times ``seeds``.

Each setting is an ordinary run (28x28 images, the run's ``data_split``), scored when it
ends with the paper's I' = E_x KL(p(y) || p(y|x)) and the IS-style score from the project's
classifier (``ebgan classifier train``). The scores use no reference images, but the run's
training split is checked against the classifier's with the evaluation rule
(``ebgan.data.splits.reference_split``), and every result line names both.

A result line is appended (one write, flushed and fsynced) to ``results-<i>of<k>.jsonl`` as
each run finishes, so a killed sweep resumes where it stopped and a finished setting is
never trained twice; a diverged run (NaN) is a result, not a crash. ``workers`` processes
share the CPU threads (and the visible GPUs); each loads the dataset and the classifier
once. ``shard=(i, k)`` runs the i-th of k disjoint parts: a cluster's job array runs the
whole grid with no scheduler of ours, and ``summarise`` merges any number of shard files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebgan.errors import EbganError

N_LAYER, SIZE_G, SIZE_D, DROPOUT = (2, 3, 4, 5), (400, 800, 1600, 3200), (128, 256, 512, 1024), (True, False)
GAN_OPTIMS, GAN_LRS = ("adam", "sgd"), (0.01, 0.001, 0.0001)
MARGINS = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0)
MARGIN_NET = {"n_layer_g": 5, "n_layer_d": 2, "size_g": 1600, "size_d": 1024, "dropout_d": False}
GRIDS = ("paper-mnist", "paper-margin")
GRID_OBJECTIVES = {"paper-mnist": ("ebgan", "gan", "ebgan-pt"), "paper-margin": ("ebgan",)}
DEFAULT_OBJECTIVES = {"paper-mnist": ("ebgan", "gan"), "paper-margin": ("ebgan",)}  # the paper's figures
# Every run of a sweep: the paper's MNIST set-up (28x28, z of 100, batch 64, init as in the appendix).
BASE = {
    "dataset": "mnist",
    "image_size": 28,
    "model": "mlp",
    "latent_dim": 100,
    "batch_size": 64,
    "beta1": 0.5,
    "log_every": 50,
    "sample_every": 0,
    "checkpoint_every": 0,
}
EVAL_N = 2000  # samples scored per run: I' and IS from 2000 samples move by < 0.01 (see the sweep benchmark)


@dataclass(frozen=True)
class Setting:
    """One configuration of a grid: its config values and the parameters it is tabulated by."""

    grid: str
    objective: str
    params: tuple[tuple[str, Any], ...]  # name -> value, in the grid's order
    seed: int = 0
    values: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        text = json.dumps([self.grid, self.objective, list(self.params), self.seed])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _nets() -> list[dict]:
    return [
        {"n_layer_g": g, "n_layer_d": d, "size_g": sg, "size_d": sd, "dropout_d": dr}
        for g, d, sg, sd, dr in itertools.product(N_LAYER, N_LAYER, SIZE_G, SIZE_D, DROPOUT)
    ]


def grid_settings(grid: str, objectives, seeds: int = 1) -> list[Setting]:
    """Every setting of ``grid`` for ``objectives``, in a fixed order."""
    if grid not in GRIDS:
        raise EbganError(f"unknown grid {grid!r}; use one of {', '.join(GRIDS)}")
    wrong = [o for o in objectives if o not in GRID_OBJECTIVES[grid]]
    if wrong:
        raise EbganError(
            f"grid {grid!r} has no objective {', '.join(wrong)}; it has {', '.join(GRID_OBJECTIVES[grid])}"
        )
    if seeds < 1:
        raise EbganError(f"--seeds must be at least 1, got {seeds}")
    out = []
    if grid == "paper-margin":
        for m, seed in itertools.product(MARGINS, range(seeds)):
            values = {"objective": "ebgan", "model_args": dict(MARGIN_NET), "margin": m, "lr_g": 1e-3, "lr_d": 1e-3}
            out.append(Setting(grid, "ebgan", (("margin", m),), seed, values))
        return out
    for objective in objectives:
        for net, seed in itertools.product(_nets(), range(seeds)):
            params = tuple(net.items())
            if objective in ("ebgan", "ebgan-pt"):
                values = {"objective": objective, "model_args": net, "margin": 10.0, "lr_g": 1e-3, "lr_d": 1e-3}
                out.append(Setting(grid, objective, params, seed, values))
                continue
            for optim_d, optim_g, lr in itertools.product(GAN_OPTIMS, GAN_OPTIMS, GAN_LRS):
                values = {
                    "objective": "gan",
                    "model_args": net,
                    "optim_d": optim_d,
                    "optim_g": optim_g,
                    "lr_g": lr,
                    "lr_d": lr,
                }
                extra = (("optim_d", optim_d), ("optim_g", optim_g), ("lr", lr))
                out.append(Setting(grid, "gan", params + extra, seed, values))
    return out


def select(settings: list[Setting], sample: int | None, seed: int, shard: tuple[int, int] = (0, 1)) -> list[Setting]:
    """A seeded random sample of ``sample`` settings per objective (all when None), then the
    ``shard[0]``-th of ``shard[1]`` disjoint parts (every k-th setting of the selection)."""
    i, k = shard
    if not (k >= 1 and 0 <= i < k):
        raise EbganError(f"--shard must be i/k with 0 <= i < k, got {i}/{k}")
    if sample is not None and sample < 1:
        raise EbganError(f"--sample must be at least 1, got {sample}")
    chosen: list[Setting] = []
    for objective in dict.fromkeys(s.objective for s in settings):
        mine = [s for s in settings if s.objective == objective]
        if sample is not None and sample < len(mine):
            mine = random.Random(f"{seed}:{objective}").sample(mine, sample)
        chosen += mine
    return chosen[i::k]


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        raise EbganError(f"--shard must look like i/k (e.g. 0/4), got {text!r}") from None
    select([], None, 0, (i, k))  # range check
    return i, k


# ------------------------------------------------------------------ results
def results_path(out: Path, shard: tuple[int, int]) -> Path:
    return Path(out) / f"results-{shard[0]}of{shard[1]}.jsonl"


def read_results(*folders_or_files) -> list[dict]:
    """Every result line of the given sweep folders (all their results-*.jsonl) or files, one per
    setting id (the first wins); a torn last line (a kill mid-write) is skipped."""
    files: list[Path] = []
    for f in map(Path, folders_or_files):
        files += sorted(f.glob("results-*.jsonl")) if f.is_dir() else [f]
    seen: dict[str, dict] = {}
    for path in files:
        if not path.is_file():
            raise EbganError(f"{path} does not exist; pass sweep folders or their results-*.jsonl files")
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise EbganError(
                f"{path} is not a results file; pass sweep folders or their results-*.jsonl files"
            ) from None
        for number, line in enumerate(text.splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "id" in row:
                _check_result(row, path, number)
                seen.setdefault(row["id"], row)
    return list(seen.values())


RESULT_FIELDS = {"grid": str, "objective": str, "params": dict, "status": str}  # what the summary reads


def _check_result(row: dict, path: Path, number: int) -> None:
    """A line with an id must be a whole result: a hand-made or foreign one would fail deep in the summary."""
    bad = [k for k, kind in RESULT_FIELDS.items() if not isinstance(row.get(k), kind)]
    if bad:
        raise EbganError(
            f"line {number} of {path} is not a sweep result ({', '.join(bad)} missing or of the wrong type); "
            "remove the line, or pass only files that ebgan sweep wrote"
        )


def append_result(path: Path, row: dict) -> None:
    """One line, one write, flushed and fsynced: a kill leaves whole lines and at most one torn one."""
    data = (json.dumps(row, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ one run, in a worker
_WORKER: dict = {}  # per worker process: the datasets and the classifier, loaded once


def _init_worker(threads: int, device: str) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER["device"] = device


def _device_for_worker(device: str) -> str:
    import torch

    if device != "auto" or not torch.cuda.is_available():
        return "cpu" if device == "auto" else device
    import multiprocessing

    ident = multiprocessing.current_process()._identity
    return f"cuda:{(ident[0] - 1 if ident else 0) % torch.cuda.device_count()}"


def run_setting(setting: Setting, base: dict, steps: int, keep_runs: Path | None, eval_n: int = EVAL_N) -> dict:
    """Train one setting and score it; every outcome (ok, diverged, error) is a result row."""
    import torch

    from ebgan.config import Config
    from ebgan.data import to_uint8
    from ebgan.data.sources import ImageData, fit_images
    from ebgan.generator_io import sample_images
    from ebgan.metrics import scores
    from ebgan.metrics.classifier import FIT, IMAGE_SIZE, classify
    from ebgan.train import Trainer
    from ebgan.train.trainer import Diverged

    row: dict[str, Any] = {
        "id": setting.id,
        "grid": setting.grid,
        "objective": setting.objective,
        "params": dict(setting.params),
        "seed": setting.seed,
        "steps": steps,
    }
    t0 = time.perf_counter()
    folder = None
    try:
        cfg = Config(
            **{
                **base,
                **setting.values,
                "steps": steps,
                "seed": setting.seed,
                "device": _device_for_worker(_WORKER.get("device", "auto")),
            }
        ).resolve()
        row.update(dataset=cfg.dataset, data_split=cfg.data_split)
        t_load = time.perf_counter()
        data, net, meta = _inputs(cfg)
        row["classifier_split"] = meta["split_used"]
        row["load_seconds"] = round(time.perf_counter() - t_load, 2)  # once per worker: dataset and classifier
        t_train = time.perf_counter()
        folder = Path(keep_runs) / setting.id if keep_runs else Path(tempfile.mkdtemp(prefix="ebgan-sweep-"))
        if keep_runs and folder.exists():
            shutil.rmtree(folder)  # an unfinished run of this setting (it has no result line)
        trainer = Trainer(cfg, data, run_dir=folder)
        trainer.train(progress=False)
        row["train_seconds"] = round(time.perf_counter() - t_train, 2)  # the run itself, loads excluded
        t1 = time.perf_counter()
        images = to_uint8(sample_images(trainer.sampling_generator, eval_n, seed=0))
        side = images.shape[-1]
        if side != IMAGE_SIZE:  # the classifier's input: 28x28 padded to 32x32, as it trained
            blank = torch.full((len(images),), -1)
            images = fit_images(ImageData(images, blank, "samples", 0), IMAGE_SIZE, FIT).images
        _, log_probs = classify(net, images)
        row.update(
            status="ok",
            i_prime=scores.i_prime(log_probs),
            inception_score=scores.inception_score(log_probs),
            modes=scores.mode_coverage(log_probs.argmax(axis=1), net.arch["num_classes"])["modes"],
            score_seconds=round(time.perf_counter() - t1, 2),
        )
    except Diverged as e:
        row.update(status="diverged", message=str(e))
    except EbganError as e:
        row.update(status="error", message=str(e))
    finally:
        if folder is not None and not keep_runs:
            shutil.rmtree(folder, ignore_errors=True)
    for k in ("i_prime", "inception_score"):  # JSON has no infinity
        if isinstance(row.get(k), float) and not math.isfinite(row[k]):
            row[k] = None
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _run_in_worker(args) -> dict:
    return run_setting(*args)


# ------------------------------------------------------------------ the sweep
def sweep(
    grid: str,
    objectives,
    out: str | Path,
    steps: int,
    sample: int | None = None,
    seed: int = 0,
    seeds: int = 1,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    keep_runs: bool = False,
    base: dict | None = None,
    device: str = "auto",
    eval_n: int = EVAL_N,
    log=print,
) -> list[dict]:
    """Run the selected settings not yet in ``out``'s results; returns every result of this shard.
    ``objectives`` None: the grid's own (EBGAN and GAN for paper-mnist, EBGAN for paper-margin)."""
    if objectives is None:
        objectives = DEFAULT_OBJECTIVES.get(grid, ())
    if steps < 1:
        raise EbganError(f"--steps must be at least 1, got {steps}")
    if workers < 1:
        raise EbganError(f"--workers must be at least 1, got {workers}")
    names = [o.strip() for o in (objectives.split(",") if isinstance(objectives, str) else objectives) if o.strip()]
    chosen = select(grid_settings(grid, names, seeds), sample, seed, shard)
    base = {**BASE, **(base or {})}
    from ebgan.config import Config

    cfg = Config(**{**base, **chosen[0].values, "steps": steps}).resolve() if chosen else None  # config errors: now
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EbganError(f"--out {out} is a file; pass a folder (created, or continued when it exists)")
    path = results_path(out, shard)
    rows = read_results(path) if path.exists() else []
    if cfg is not None:
        _check_same_sweep(path, rows, {"steps": steps, "dataset": cfg.dataset, "data_split": cfg.data_split})
    done = {r["id"] for r in rows}
    todo = [s for s in chosen if s.id not in done]
    # Every run needs the dataset and the classifier: a missing one is one error now, not an error
    # result per setting (which a re-run would count as done). Loaded into this process's cache,
    # which the settings run here (one worker) then use.
    threads = max(1, (os.cpu_count() or 1) // workers)
    _init_worker(threads, device)
    if cfg is not None and todo:
        _inputs(cfg)
    out.mkdir(parents=True, exist_ok=True)
    log(
        f"{grid}: {len(chosen)} settings in shard {shard[0]}/{shard[1]}, {len(chosen) - len(todo)} done, "
        f"{len(todo)} to run with {workers} worker(s)"
    )
    runs_dir = out / "runs" if keep_runs else None
    jobs = [(s, base, steps, runs_dir, eval_n) for s in todo]
    t0 = time.perf_counter()
    done_now = 0

    def record(row: dict) -> None:
        nonlocal done_now
        append_result(path, row)
        done_now += 1
        score = f"I' {row['i_prime']:.3f}" if row.get("i_prime") is not None else row["status"]
        log(
            f"[{done_now}/{len(jobs)}] {row['objective']} {row['id']}: {score} ({row['seconds']:.1f} s; "
            f"{(time.perf_counter() - t0) / done_now:.1f} s/run overall)"
        )

    if workers == 1:
        for job in jobs:
            record(_run_in_worker(job))
    else:  # each worker process loads its own
        _run_pool(jobs, workers, threads, device, record, log)
    return read_results(path)


def _check_same_sweep(path: Path, rows: list[dict], want: dict) -> None:
    """Result ids name a setting, not the steps or data it ran with: results of other ones would pass
    for this sweep's, so a folder continues only the sweep that wrote it."""

    def what(r: dict) -> str:
        return f"{r.get('steps')} steps on {r.get('dataset')} ({r.get('data_split')})"

    other = next((r for r in rows if any(k in r and r[k] != v for k, v in want.items())), None)
    if other is not None:
        raise EbganError(
            f"{path} holds results of {what(other)}, not of {what(want)}; continue it with --steps "
            f"{other.get('steps')} --dataset {other.get('dataset')} --data-split {other.get('data_split')}, "
            "or choose another --out"
        )


def _inputs(cfg) -> tuple:
    """The training data and the classifier of a setting's config, loaded once per process into
    ``_WORKER``, and the classifier checked by ebgan eval's honest-split rule: (data, net, meta)."""
    from ebgan.data import load_training_data, training_data_key
    from ebgan.data.splits import reference_split
    from ebgan.metrics.classifier import load_classifier

    key = training_data_key(cfg)
    if key not in _WORKER:
        _WORKER[key] = load_training_data(cfg)
    if ("classifier", cfg.dataset) not in _WORKER:
        _WORKER[("classifier", cfg.dataset)] = load_classifier(cfg.dataset)
    net, meta = _WORKER[("classifier", cfg.dataset)]
    reference_split(cfg.data_split, meta["split_used"])
    return _WORKER[key], net, meta


def _run_pool(jobs: list, workers: int, threads: int, device: str, record, log, fn=None) -> None:
    """Jobs on ``workers`` spawned processes. A worker that dies (killed, out of memory) breaks the
    pool instead of hanging it; the jobs without a result then run one per fresh process, so the
    one that kills its process is found, recorded as an error, and the sweep goes on."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    fn = fn or _run_in_worker
    context = multiprocessing.get_context("spawn")

    def pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=context, initializer=_init_worker, initargs=(threads, device))

    pending = {job[0].id: job for job in jobs}
    try:
        with pool(workers) as executor:
            futures = {executor.submit(fn, job): key for key, job in pending.items()}
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    key = futures.pop(future)
                    record(future.result())
                    del pending[key]
    except BrokenProcessPool:
        log(f"a sweep worker died; running the {len(pending)} setting(s) left one per process to find the cause")
    for key, job in list(pending.items()):
        try:
            with pool(1) as executor:
                record(executor.submit(fn, job).result())
        except BrokenProcessPool:
            setting = job[0]
            record(
                {
                    "id": key,
                    "grid": setting.grid,
                    "objective": setting.objective,
                    "params": dict(setting.params),
                    "seed": setting.seed,
                    "status": "error",
                    "seconds": 0.0,
                    "message": "its worker process died (killed, or out of memory); run it alone to see why",
                }
            )


# ------------------------------------------------------------------ summary
THRESHOLDS = (1.0, 1.5, 2.0, 3.0)  # shares of settings at or above; I' has no upper bound (reversed KL)
SUBSETS = {  # Figure 2/3-style panels: all settings, and smaller networks
    "all settings": lambda p: True,
    "nLayerG <= 3 and nLayerD <= 3": lambda p: p.get("n_layer_g", 0) <= 3 and p.get("n_layer_d", 0) <= 3,
    "sizeG <= 800 and sizeD <= 256": lambda p: p.get("size_g", 0) <= 800 and p.get("size_d", 0) <= 256,
}


def _stats(values: list[float]) -> dict:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {
        "n": int(v.size),
        "median": float(np.median(v)),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        **{f"share_ge_{t:g}": float((v >= t).mean()) for t in THRESHOLDS},
    }


def _scored(rows: list[dict]) -> list[dict]:
    """The rows that have an I' (finished and scored; failed and diverged runs have none)."""
    return [r for r in rows if r.get("status") == "ok" and r.get("i_prime") is not None]


def histogram_bins(values: list[float], width: float = 0.1) -> list[float]:
    """Edges of ``width`` from 0 past the largest value (I' has no upper bound: a confident classifier
    on class-balanced samples scores well above log 10), the same for every objective and subset."""
    top = max([2.5, *values])
    return [round(i * width, 10) for i in range(int(math.floor(top / width)) + 2)]


def summarise(folders, out: str | Path) -> dict:
    """Merge the result lines of ``folders`` (any number of shards) into histograms of I' per objective
    (and per subset of smaller networks), Figure 9's margin curve, and a markdown table."""
    from ebgan.files import write_json, write_text
    from ebgan.plotting import pyplot, save_figure

    rows = read_results(*folders)
    if not rows:
        raise EbganError(f"no result lines in {', '.join(map(str, folders))}; run 'ebgan sweep' there first")
    out = Path(out)
    where = sorted(
        {
            f"{r.get('dataset')} ({r.get('data_split')}; classifier {r.get('classifier_split')}; "
            f"{r.get('steps')} steps)"
            for r in rows
            if r.get("status") == "ok"
        }
    )
    summary: dict[str, Any] = {"data": where, "settings": len(rows), "grids": {}}
    plt = pyplot()
    lines = [f"# Sweep summary: {len(rows)} settings", "", f"Data: {'; '.join(where) or 'none scored'}.", ""]
    mnist = [r for r in rows if r["grid"] == "paper-mnist"]
    if mnist:
        objectives = list(dict.fromkeys(r["objective"] for r in mnist))
        fig, axes = plt.subplots(1, len(SUBSETS), figsize=(5 * len(SUBSETS), 3.6), squeeze=False)
        table = [
            "| subset | objective | settings | scored | failed or diverged | median I' | mean I' | "
            + " | ".join(f"I' >= {t:g}" for t in THRESHOLDS)
            + " |",
            "|" + "---|" * (7 + len(THRESHOLDS)),
        ]
        grid_summary: dict[str, Any] = {}
        bins = histogram_bins([r["i_prime"] for r in _scored(mnist)])
        for ax, (subset, keep) in zip(axes[0], SUBSETS.items()):
            for objective in objectives:
                mine = [r for r in mnist if r["objective"] == objective and keep(r["params"])]
                scored = [r["i_prime"] for r in _scored(mine)]
                s = _stats(scored)
                counts = [0] * (len(bins) - 1)
                if scored:
                    counts = [
                        int(c) for c in ax.hist(scored, bins=bins, alpha=0.5, label=f"{objective} (n={len(scored)})")[0]
                    ]
                grid_summary.setdefault(subset, {})[objective] = {
                    **s,
                    "settings": len(mine),
                    "failed": len(mine) - len(scored),
                    "histogram_counts": counts,  # over summary["histogram_edges"], shared by every cell
                }
                cells = [f"{s[k]:.3f}" if s.get(k) is not None else "" for k in ("median", "mean")]
                shares = [f"{100 * s[f'share_ge_{t:g}']:.0f}%" if s["n"] else "" for t in THRESHOLDS]
                table.append(
                    f"| {subset} | {objective} | {len(mine)} | {len(scored)} | {len(mine) - len(scored)} | "
                    + " | ".join(cells + shares)
                    + " |"
                )
            ax.set_title(subset, fontsize=10)
            ax.set_xlabel("I' = E KL(p(y) || p(y|x))")
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("settings")
        fig.tight_layout()
        summary["grids"]["paper-mnist"] = grid_summary
        summary["histogram_edges"] = bins
        summary["histograms"] = str(save_figure(fig, out / "histograms.png"))
        lines += ["## EBGAN vs GAN over the grid (Figures 2-3)", "", "![histograms](histograms.png)", "", *table, ""]
    margin = [r for r in rows if r["grid"] == "paper-margin"]
    if margin:
        by_m: dict[float, list[float]] = {}
        for r in _scored(margin):
            by_m.setdefault(float(r["params"]["margin"]), []).append(r["i_prime"])
        curve = {m: _stats(v) for m, v in sorted(by_m.items())}
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ms = list(curve)
        ax.errorbar(ms, [curve[m]["mean"] for m in ms], yerr=[curve[m]["std"] for m in ms], marker="o", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("margin m")
        ax.set_ylabel("I' (mean and std over seeds)")
        ax.set_title("Figure 9: the margin", fontsize=10)
        fig.tight_layout()
        summary["grids"]["paper-margin"] = {str(m): s for m, s in curve.items()}
        summary["margin_curve"] = str(save_figure(fig, out / "margin.png"))
        failed = len(margin) - sum(len(v) for v in by_m.values())
        lines += [
            "## The margin (Figure 9)",
            "",
            "![margin](margin.png)",
            "",
            "| m | runs | mean I' | std |",
            "|---|---|---|---|",
            *[f"| {m:g} | {c['n']} | {c['mean']:.3f} | {c['std']:.3f} |" for m, c in curve.items()],
            "",
            f"Failed or diverged: {failed}.",
            "",
        ]
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", "\n".join(lines))
    return summary
