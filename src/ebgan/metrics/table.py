"""Human-readable ``ebgan eval`` results: one table of scores beside their real-vs-real floor."""

from __future__ import annotations

ROWS = [  # (key, label, format)
    ("frechet", None, ".3f"),
    ("kid", None, ".5f"),
    ("is", "is (exp E KL(p(y|x)||p(y)))", ".3f"),
    ("i_prime", "i_prime (E KL(p(y)||p(y|x)))", ".3f"),
    ("precision", "precision (k=3)", ".4f"),
    ("recall", "recall (k=3)", ".4f"),
    ("modes", None, "d"),
    ("kl_uniform", "kl_uniform (modes)", ".4f"),
]


def _fmt(v, spec: str) -> str:
    return "inf" if v is None else format(v, spec)


def format_table(r: dict) -> str:
    """An image evaluation (``evaluate_samples`` / ``evaluate_run_folder``) as a table with its provenance."""
    floor = r.get("real_vs_real", {})
    labels = {
        "frechet": r.get("frechet_name", "frechet"),
        "kid": r.get("kid_name", "kid"),
        "modes": f"modes (of {r['modes_of']})" if "modes_of" in r else "modes",
    }
    rows = [
        (label or labels.get(key, key), _fmt(r[key], f), _fmt(floor[key], f) if key in floor else "")
        for key, label, f in ROWS
        if key in r
    ]
    inc = r.get("inception", {})
    if inc.get("available"):
        for key in ("fid_inception", "kid_inception"):
            rows.append((key, f"{inc[key]:.4f}", f"{inc['real_vs_real'][key]:.4f}"))
    width = max(len(a) for a, _, _ in rows)
    lines = [f"{r['source']}: {r['n']} images vs {r['reference']}"]
    if r.get("reference_note"):
        lines.append(f"reference: {r['reference_note']}")
    if r.get("selection"):
        lines.append(f"selection: {r['selection']}")
    lines += [
        f"features: {r['feature_extractor']}",
        "",
        f"{'score':<{width}}  {'samples':>12}  {'real vs real':>12}",
        "-" * (width + 28),
    ]
    lines += [f"{a:<{width}}  {b:>12}  {c:>12}" for a, b, c in rows]
    if "histogram" in r:
        lines += [
            "",
            f"predicted classes: samples {r['histogram']}",
            f"                   real    {floor.get('histogram')}",
        ]
    if floor.get("n") is not None:
        lines.append(f"real vs real: {floor.get('description', '')} (n={floor['n']})")
    if not inc.get("available", True):
        lines.append(inc["message"])
    return "\n".join(lines)


def format_result(r: dict) -> str:
    """Any ``ebgan eval`` result: the image table, or a toy run's mode coverage."""
    if r.get("evaluation") == "toy-modes":
        from ebgan.metrics.toy import format_toy_metrics

        return format_toy_metrics(r if "n_modes" in r else {})
    return format_table(r)
