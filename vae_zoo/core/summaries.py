"""Summaries of per-datapoint numbers as the cards and manifests print them."""

from __future__ import annotations

import numpy as np


def mean_and_se(values: np.ndarray) -> dict:
    """Mean and its standard error (std / sqrt(n)), rounded to 3 decimals (nats); the standard
    error of fewer than two values is undefined (None), and of non-finite values NaN."""
    values = np.asarray(values, np.float64)
    se = None if len(values) < 2 else round(float(np.std(values) / np.sqrt(len(values))), 3)
    return {"mean": round(float(np.mean(values)), 3), "standard_error": se}


def plus_minus(summary: dict, digits: int = 3) -> str:
    """"mean +- standard error" of a `mean_and_se` summary ("+- undefined" for one value)."""
    se = summary["standard_error"]
    return f"{summary['mean']:.{digits}f} +- " + ("undefined" if se is None else f"{se:.{digits}f}")
