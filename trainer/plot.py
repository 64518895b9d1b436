"""Pictures of a training run."""

from __future__ import annotations

from pathlib import Path


def loss_curve(history: list[dict], path: Path, title: str, stage_ends: list[int] = ()) -> Path:
    """Training loss (smoothed) and validation loss against optimiser steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train), label="training loss (smoothed)", color="#4C72B0")
    if val:
        ax.plot(*zip(*val), marker="o", label="validation loss", color="#DD8452")
        best_step, best = min(val, key=lambda p: p[1])
        ax.annotate(f"best {best:.3f}", (best_step, best), textcoords="offset points", xytext=(0, 10),
                    ha="center", fontsize=8)
    for end in stage_ends:  # pre-training ends, fine-tuning begins
        ax.axvline(end, color="grey", linestyle="--", linewidth=1)
        ax.annotate("fine-tuning →", (end, 1), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", fontsize=8, color="grey")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy per token (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
