"""A judge of clauses: tells the model's own clauses from people's, so the engine can draw the
model's least human clauses again.

Why: a small model writes clauses no person would ("使得整体的设计更加的显得更加的修长",
"让你在这款衬衫的感觉得更加的显得十分的气质"). copygen.grammar names such shapes one by one, by hand;
each rule took reading hundreds of candidates, and the next model makes new ones. Their common
trait is what a classifier learns from data: which pieces of a clause people write and the model
overuses. A logistic regression on a clause's characters, 1 to 4 at a time (the clause's edges
marked, so "更加的" at a clause's end is not the same piece as inside it), fit on the training copy
(people) against the model's own samples for the training products, tells the validation
references' clauses from the demo model's candidates' with an AUC of 0.975 (first 200 validation
products, docs/quality-log.md). It is not a measure of truth or grammar: a clause a person could
write scores high whatever it claims, and the filters still read every fact.

The pieces are hashed into BUCKETS weights (numpy, no vocabulary to keep). The judge rejects a
clause whose logit is below its threshold, set at training from the validation references: the
logit below which only `quantile` of their clauses fall. Saved in the checkpoint as FILE, with its
threshold and what it was fit on in the manifest ("clause_judge").
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "clause_judge.npz"
BUCKETS = 1 << 20  # 1M weights: few collisions among the ~10^6 pieces of 10^5 clauses
ORDERS = (1, 2, 3, 4)  # characters per piece
EDGES = ("\x02", "\x03")  # a clause's start and end, as characters of no text
_CLAUSES = re.compile(r"[^，。！？；、,.!?;\s]+")
_FNV_PRIME = 0x100000001B3


def clauses(text: str) -> list[str]:
    """text's clauses, without the marks between them."""
    return _CLAUSES.findall(text)


def pieces(batch: Sequence[str]):
    """(bucket of each piece, index of its clause in batch) for every 1- to 4-character piece of
    every clause, its edges marked: one pass over all the clauses at once."""
    import numpy as np  # lazy: nothing heavy at import

    padded = [EDGES[0] + c + EDGES[1] for c in batch]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(padded), dtype=np.int64), lengths)
    buckets, owners = [], []
    for n in ORDERS:
        if len(codes) < n:
            continue
        span = len(codes) - n + 1
        inside = owner[:span] == owner[n - 1:]  # the piece does not cross into the next clause
        h = np.full(span, np.uint64(n), dtype=np.uint64)
        with np.errstate(over="ignore"):  # the hash wraps around 2^64 by design
            for j in range(n):
                h = (h ^ codes[j:j + span]) * np.uint64(_FNV_PRIME)
        buckets.append((h[inside] % np.uint64(BUCKETS)).astype(np.int64))
        owners.append(owner[:span][inside])
    if not buckets:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(buckets), np.concatenate(owners)


class ClauseJudge:
    """Weights of hashed pieces and a bias: a clause's logit says how likely a person wrote it."""

    def __init__(self, weights, bias: float, threshold: float):
        import numpy as np  # lazy: nothing heavy at import

        self.weights = np.asarray(weights, dtype=np.float32)
        if self.weights.shape != (BUCKETS,):
            raise ValueError(f"expected {BUCKETS} weights, found shape {self.weights.shape}")
        self.bias, self.threshold = float(bias), float(threshold)

    def logits(self, batch: Sequence[str]):
        """Each clause's logit (higher: more like people's copy)."""
        import numpy as np  # lazy: nothing heavy at import

        buckets, owner = pieces(batch)
        return np.bincount(owner, weights=self.weights[buckets], minlength=len(batch)) + self.bias

    def rejects_all(self, texts: Sequence[str]):
        """For each text (a clause a row just ended, its mark and all), whether its first clause is
        below the threshold; a text of no clause (a mark alone) never is."""
        import numpy as np  # lazy: nothing heavy at import

        first = [found[0] if found else "" for found in map(clauses, texts)]
        return np.array([bool(c) for c in first]) & (self.logits(first) < self.threshold)

    def save(self, path: Path) -> None:
        import numpy as np  # lazy: nothing heavy at import

        kept = np.flatnonzero(self.weights)  # most buckets were never seen: keep the others
        with open(path, "wb") as f:
            np.savez(f, buckets=kept.astype(np.int32), weights=self.weights[kept],
                     bias=np.float32(self.bias), threshold=np.float32(self.threshold))

    @classmethod
    def load(cls, path: Path) -> ClauseJudge:
        import numpy as np  # lazy: nothing heavy at import

        with np.load(path, allow_pickle=False) as saved:
            buckets, kept = saved["buckets"], saved["weights"]
            if buckets.ndim != 1 or buckets.shape != kept.shape or (len(buckets) and not
                                                                       0 <= buckets.min() <= buckets.max() < BUCKETS):
                raise ValueError("buckets and weights do not match")
            weights = np.zeros(BUCKETS, dtype=np.float32)
            weights[buckets] = kept
            return cls(weights, float(saved["bias"]), float(saved["threshold"]))


def fit(people: Sequence[str], model: Sequence[str], held_out: Sequence[str], *, quantile: float,
        epochs: int = 4, seed: int = 0) -> tuple[ClauseJudge, dict]:
    """A judge fit on people's clauses against the model's, each side weighing half, and its record
    for the manifest; the threshold is the `quantile` of the held-out people's clauses' logits.

    Adagrad on the logistic loss, 1,024 clauses a step, a light L2 pull toward 0 (the weights of
    pieces seen once stay small)."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    if not people or not model or not held_out:
        raise ValueError("a clause judge needs people's clauses, the model's and held-out people's")
    started = time.monotonic()
    texts = list(people) + list(model)
    labels = torch.cat([torch.ones(len(people)), torch.zeros(len(model))])
    weight_of = torch.where(labels > 0, 0.5 / len(people), 0.5 / len(model)) * len(texts)
    weights = torch.zeros(BUCKETS, requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.Adagrad([weights, bias], lr=0.05)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), 1024):
            at = order[start:start + 1024]
            buckets, owner = pieces([texts[i] for i in at])
            logit = torch.zeros(len(at)).index_add(0, torch.from_numpy(owner), weights[torch.from_numpy(buckets)]) + bias
            rows = torch.from_numpy(at)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, labels[rows], reduction="none")
                    * weight_of[rows]).mean() + 1e-6 * weights.pow(2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    judge = ClauseJudge(weights.detach().numpy(), float(bias.item()), 0.0)
    judge.threshold = float(np.quantile(judge.logits(list(held_out)), quantile))
    record = {"people_clauses": len(people), "model_clauses": len(model), "held_out_clauses": len(held_out),
              "quantile": quantile, "threshold": round(judge.threshold, 4), "seconds": round(time.monotonic() - started, 1)}
    log.info("clause judge: fit on %d clauses of people's and %d of the model's in %.1f s; threshold %.2f (%g of "
             "%d held-out clauses of people's below it)", len(people), len(model), record["seconds"],
             judge.threshold, quantile, len(held_out))
    return judge, record


def auc(higher: Sequence[float], lower: Sequence[float]) -> float:
    """The chance that a score drawn from `higher` beats one drawn from `lower` (ties count half)."""
    import numpy as np  # lazy: nothing heavy at import

    lower = np.sort(np.asarray(lower, dtype=float))
    higher = np.asarray(higher, dtype=float)
    below = np.searchsorted(lower, higher, side="left")  # lower's scores under each of higher's
    tied = np.searchsorted(lower, higher, side="right") - below
    return float((below + tied / 2).sum() / (len(higher) * len(lower)))
