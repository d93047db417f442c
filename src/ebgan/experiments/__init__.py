"""Experiments built from ordinary runs: budgets, and comparisons of objectives (``ebgan compare``)."""

from ebgan.experiments.budget import Budget, parse_budget, train_run
from ebgan.experiments.compare import compare, evaluate_run, plan

__all__ = ["Budget", "compare", "evaluate_run", "parse_budget", "plan", "train_run"]
