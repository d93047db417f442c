"""The readable ``ebgan eval`` output: provenance lines, the score table beside its floor, toy results."""

from __future__ import annotations

from ebgan.metrics import format_result, format_table

RESULT = {
    "source": "run r (step 5, noise seed 0)",
    "n": 100,
    "reference": "mnist test-heldout split (4000 images)",
    "reference_note": "disjoint from the generator's training images (test-fit) and the classifier's (test-fit)",
    "selection": "this generator was kept by --eval-every as the best on 6000 of the run's own training images",
    "feature_extractor": "mnist_cls: ...",
    "frechet_name": "fid_mnist_cls",
    "kid_name": "kid_mnist_cls",
    "frechet": 12.5,
    "kid": None,
    "modes": 9,
    "modes_of": 10,
    "histogram": [10] * 10,
    "real_vs_real": {
        "frechet": 0.25,
        "kid": 0.00012,
        "modes": 10,
        "n": 100,
        "histogram": [10] * 10,
        "description": "100 test-fit images vs the test-heldout split",
    },
    "inception": {"available": False, "message": "Inception FID/KID skipped"},
}


def test_table_says_what_was_compared_and_why_it_is_honest():
    lines = format_table(RESULT).splitlines()
    assert lines[0] == "run r (step 5, noise seed 0): 100 images vs mnist test-heldout split (4000 images)"
    assert lines[1].startswith("reference: disjoint from the generator's training images (test-fit)")
    assert lines[2].startswith("selection: this generator was kept by --eval-every")
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("fid_", "kid_", "modes"))}
    assert rows["fid_mnist_cls"] == ["12.500", "0.250"]
    assert rows["kid_mnist_cls"] == ["inf", "0.00012"]  # JSON null (non-finite) prints as inf
    assert rows["modes"] == ["(of", "10)", "9", "10"]
    assert "real vs real: 100 test-fit images vs the test-heldout split (n=100)" in lines
    assert lines[-1] == "Inception FID/KID skipped"


def test_without_selection_or_note_those_lines_are_absent():
    text = format_table({k: v for k, v in RESULT.items() if k not in ("selection", "reference_note")})
    assert "selection:" not in text and "reference:" not in text


def test_toy_results():
    toy = {
        "evaluation": "toy-modes",
        "modes": 7,
        "n_modes": 8,
        "min_samples": 20,
        "high_quality": 0.5,
        "n_samples": 2500,
        "per_mode": [1] * 8,
    }
    assert format_result(toy).startswith("modes captured: 7 of 8")
    assert "no known modes" in format_result({"evaluation": "toy-modes", "source": "run x"})
