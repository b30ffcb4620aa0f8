"""Figures logged with a training run: precision–recall curves, per-scheme recall, feature importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def pr_curves(truth: dict[str, tuple[np.ndarray, np.ndarray]], k: int, path: Path) -> Path:
    """Precision–recall curves (one per level: ``{"providers": (y, score), "claims": (y, score)}``)
    and provider precision among the top n for n = 1..; the budget ``k`` is marked."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, (ax, ax_k) = plt.subplots(1, 2, figsize=(11, 4.2))
    for level, (y, s) in truth.items():
        y = np.asarray(y, dtype=bool)
        if y.all() or not y.any():
            continue
        s = np.nan_to_num(np.asarray(s, dtype=float), nan=-1.0)
        precision, recall, _ = precision_recall_curve(y, s)
        ax.step(recall, precision, where="post", label=f"{level} (AP {average_precision_score(y, s):.3f}, base {y.mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision–recall on held-out data", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=8)
    if "providers" in truth:
        y, s = truth["providers"]
        order = np.argsort(-np.nan_to_num(np.asarray(s, dtype=float), nan=-1.0), kind="stable")
        hits = np.asarray(y, dtype=bool)[order]
        n = np.arange(1, len(hits) + 1)
        ax_k.plot(n, np.cumsum(hits) / n, label="precision among top n")
        ax_k.axvline(k, color="grey", linestyle="--", label=f"inspection budget k = {k}")
        ax_k.set(xlabel="providers inspected (n)", ylabel="precision", title="Providers: precision at n",
                 xlim=(1, max(len(n), 2)), ylim=(0, 1.02))
        ax_k.set_xscale("log")
        ax_k.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scheme_recall(metrics: dict, path: Path) -> Path | None:
    """Bar chart of the per-scheme recall metrics (``…recall_at_k.<scheme>``, ``…recall_top.<scheme>``)."""
    rows = [(key.split(".")[0], key.split(".", 2)[2], value) for key, value in metrics.items()
            if key.count(".") >= 2 and (".recall_at_k." in key or ".recall_top." in key)]
    if not rows:
        return None
    plt = _pyplot()
    frame = pd.DataFrame(rows, columns=["level", "scheme", "recall"])
    table = frame.pivot(index="scheme", columns="level", values="recall").sort_index(ascending=False)  # a..z from the top
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.6))
    table.plot.barh(ax=ax)
    ax.set(xlabel="recall", xlim=(0, 1), ylabel="", title="Recall per scheme (providers: top k; claims: top 5 %)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def feature_importance(importance: pd.DataFrame, path: Path, top: int = 12) -> Path | None:
    """Horizontal bars per level of :func:`fraudkit.tracking.feature_importance`'s table."""
    if importance.empty:
        return None
    plt = _pyplot()
    levels = list(dict.fromkeys(importance["level"]))
    fig, axes = plt.subplots(1, len(levels), figsize=(4.6 * len(levels), 4.6), squeeze=False)
    for ax, level in zip(axes[0], levels):
        part = importance[importance["level"] == level].nlargest(top, "importance").iloc[::-1]
        ax.barh(part["feature"], part["importance"])
        ax.set(title=level, xlabel="mean −log tail probability" if level.startswith("detectors")
               else "mean contribution log(1 + |robust z|)")
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("What drives the most suspicious entities")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
