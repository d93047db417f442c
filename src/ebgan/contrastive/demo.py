"""``ebgan contrastive demo-random``: the first attempt, on random tensors and on real pairs.

The first attempt: a siamese ``SmallEncoder``, the cosine of the L2-normalised embeddings fed as
the logit of BCE against "same or not", Adam 1e-3, 10 epochs on 16 pairs of random 3x32x32
tensors with random labels, tested on 8 more. ``random_pairs`` reruns it (and runs it longer);
``real_pairs`` trains the same model and loss, and the loss with a learnt temperature and bias,
on labelled pairs of a real dataset for a short run.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ebgan.contrastive.config import ContrastiveConfig
from ebgan.contrastive.encoders import SmallEncoder
from ebgan.contrastive.losses import CosineBCE, bce_floor
from ebgan.contrastive.pairs import eval_pairs
from ebgan.data.sources import to_unit_range

N_TRAIN, N_TEST, BATCH = 16, 8, 4


def random_pairs(seed: int, epochs: int) -> dict:
    """The first attempt on random data: train/test accuracy (same iff cos > 0, the logit's sign)
    and the mean training loss after ``epochs`` epochs."""
    g = torch.Generator().manual_seed(seed)
    n = N_TRAIN + N_TEST
    x1, x2 = torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)
    same = torch.randint(0, 2, (n,), generator=g).bool()
    torch.manual_seed(seed)
    encoder = SmallEncoder((3, 32, 32), 128)
    loss_fn = CosineBCE(temperature=1.0, learn=False)  # logit = cos
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    for _ in range(epochs):
        for b in torch.randperm(N_TRAIN, generator=g).split(BATCH):
            loss, _ = loss_fn(F.normalize(encoder(x1[b]), dim=1), F.normalize(encoder(x2[b]), dim=1), same[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        e1, e2 = F.normalize(encoder(x1), dim=1), F.normalize(encoder(x2), dim=1)
        loss, _ = loss_fn(e1[:N_TRAIN], e2[:N_TRAIN], same[:N_TRAIN])
        right = (F.cosine_similarity(e1, e2) > 0) == same
    return {
        "train_accuracy": right[:N_TRAIN].float().mean().item(),
        "test_accuracy": right[N_TRAIN:].float().mean().item(),
        "train_loss": loss.item(),
    }


def coin_range(n: int = N_TEST) -> tuple[float, float, float]:
    """The accuracy a fair coin gets on n pairs lies in [lo, hi] with probability p (the central interval)."""
    lo = max(k for k in range(n // 2 + 1) if sum(math.comb(n, i) for i in range(k)) / 2**n <= 0.05)
    hi = n - lo
    p = sum(math.comb(n, i) for i in range(lo, hi + 1)) / 2**n
    return lo / n, hi / n, p


def real_pairs(
    dataset: str,
    steps: int,
    seed: int,
    data_root=None,
    data_split: str | None = None,
    batch_size: int = 32,
    n_pairs: int = 2000,
) -> dict:
    """The first attempt's model and loss (and the learnt-temperature loss) on labelled pairs of a real
    dataset: test verification accuracy (threshold chosen on validation pairs) and the training loss."""
    from ebgan.contrastive.data import evaluation_data, load_split
    from ebgan.contrastive.evaluate import best_threshold, verification_accuracy
    from ebgan.contrastive.trainer import ContrastiveTrainer

    base = ContrastiveConfig(
        dataset=dataset,
        data_root=data_root,
        data_split=data_split or "train",
        encoder="small",
        loss="cosine-bce",
        batch_pairs="drawn",
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        device="cpu",
    )
    split = None
    out: dict = {}
    for name, learn in (("cosine_logit", False), ("learnt_temperature", True)):
        extra = {"temperature": 1.0, "learn_temperature": False} if not learn else {}
        cfg = base.updated(**extra).resolve()
        if split is None:
            split = load_split(cfg)
            data = evaluation_data(cfg, cfg.val_fraction, split)
        t0 = time.perf_counter()
        trainer = ContrastiveTrainer(cfg, data.train)
        trainer.train(progress=False)
        seconds = time.perf_counter() - t0
        trainer.encoder.eval()
        e1, e2, same = _pair_embeddings(trainer, data.val, n_pairs, seed)
        threshold, _ = best_threshold((1 - F.cosine_similarity(e1, e2)).numpy(), same.numpy())
        e1, e2, same = _pair_embeddings(trainer, data.test, n_pairs, seed + 1)
        test_acc = verification_accuracy((1 - F.cosine_similarity(e1, e2)).numpy(), same.numpy(), threshold)
        sign_acc = ((F.cosine_similarity(e1, e2) > 0) == same).float().mean().item()
        e1, e2, same = _pair_embeddings(trainer, data.train, n_pairs, seed + 2)
        loss_fn = trainer.loss_fn
        with torch.no_grad():
            train_loss = loss_fn(e1, e2, same)[0].item()
        out[name] = {
            "test_verification_accuracy": test_acc,
            "test_accuracy_cos_positive": sign_acc,
            "train_loss": train_loss,
            "scale": math.exp(float(loss_fn.state_dict()["log_scale"])),
            "bias": float(loss_fn.state_dict()["bias"]),
            "seconds": seconds,
        }
    out["num_classes"] = int(data.train.labels.max()) + 1
    out["floor"] = bce_floor(out["num_classes"])
    return out


@torch.no_grad()
def _pair_embeddings(trainer, part, n_pairs: int, seed: int):
    i, j, same = eval_pairs(part.labels, n_pairs, seed, "the evaluation images")
    e1 = trainer.embed(to_unit_range(part.images[i]))
    e2 = trainer.embed(to_unit_range(part.images[j]))
    return e1, e2, same


def report(random_runs: dict[int, list[dict]], real: dict | None, dataset: str, steps: int) -> str:
    floor = bce_floor()
    lo, hi, p = coin_range()
    lines = [
        "The first attempt: siamese CNN (two 3x3 conv + ReLU + max-pool stages, 64 and 128 channels, linear to",
        "128-d, L2-normalised), cosine of the embeddings as the logit of BCE, Adam 1e-3, batches of 4,",
        f"on {N_TRAIN} pairs of random 3x32x32 tensors with random labels, tested on {N_TEST} more "
        f"(mean over {len(next(iter(random_runs.values())))} seeds; same iff cos > 0):",
        "",
        f"  {'epochs':>6}  {'train accuracy':>14}  {'test accuracy':>13}  {'train loss':>10}",
    ]
    for epochs, runs in random_runs.items():
        mean = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
        acc = f"{mean['train_accuracy']:>14.1%}  {mean['test_accuracy']:>13.1%}"
        lines.append(f"  {epochs:>6}  {acc}  {mean['train_loss']:>10.4f}")
    lines += [
        "",
        "Why it cannot learn:",
        "- nothing to learn: the labels were drawn independently of the tensors, so no function of a test",
        "  pair predicts its label better than a coin. 50% is the best expected test accuracy there is, and on",
        f"  {N_TEST} test pairs a coin scores anywhere from {lo:.0%} to {hi:.0%} (probability {p:.2f}): a single "
        "run's test accuracy is noise.",
        f"- the training accuracy climbs anyway: {N_TRAIN} pairs are memorised by a network of over a million",
        "  parameters, which says nothing about new pairs (train accuracy vs test accuracy above).",
        "- and the loss can never get small: a cosine in [-1, 1] used as the logit keeps the sigmoid within",
        f"  [{1 / (1 + math.e):.2f}, {1 / (1 + math.exp(-1)):.2f}], so every pair costs at least "
        f"log(1 + e^-1) = {floor:.4f}, whatever the weights.",
    ]
    if real is not None:
        k = real["num_classes"]
        a, b = real["cosine_logit"], real["learnt_temperature"]
        lines += [
            "",
            f"The same model on real pairs ({dataset}: half same class, half different classes; {steps} steps of",
            "32 pairs; threshold chosen on validation pairs, accuracy on 2000 test pairs of the test split):",
            "",
            f"  {'loss':<38}  {'test verification':>17}  {'cos > 0 rule':>12}  {'train loss':>10}",
            f"  {'cosine as the logit (the first attempt)':<38}  {a['test_verification_accuracy']:>17.1%}  "
            f"{a['test_accuracy_cos_positive']:>12.1%}  {a['train_loss']:>10.4f}",
            f"  {'logit = cos * exp(t) + b, t and b learnt':<38}  {b['test_verification_accuracy']:>17.1%}  "
            f"{b['test_accuracy_cos_positive']:>12.1%}  {b['train_loss']:>10.4f}",
            "",
            f"With {k} classes the first attempt's loss cannot average below {real['floor']:.4f} on balanced pairs",
            f"(positives >= {floor:.4f}; the mean cosine of pairs of distinct classes is >= -1/{k - 1}); the",
            f"learnt scale exp(t) = {b['scale']:.3g} and bias b = {b['bias']:.3g} "
            + (
                "take it below that."
                if b["train_loss"] < real["floor"]
                else f"have not brought it below that yet (after {steps} steps)."
            ),
            "Real pairs share structure between training and test images, so the same network learns.",
        ]
    return "\n".join(lines)
