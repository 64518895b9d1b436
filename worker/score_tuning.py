"""Fitting the selection score's weights to reviewers' decisions: `copygen tune-score`.

Examples. Every variant whose latest decision is approved or edited (label 1) or rejected (label 0)
and that passed every check: a flagged variant ranks below every passing one through its flag
penalty whatever the weights, so it has nothing to teach them. Its features are the score's own
terms (worker.selection.WEIGHTS), measured again from what the store holds:

    coverage, length   from its text, its product and its job, exactly as the worker measured them
    distinct           1 - its largest similarity to the variants ranked above it, as choose() scores it
    fluency            exp(mean log p) of its text under its own checkpoint, by teacher forcing
                       (trainer.rescore): the worker does not store it
    agreement          mean similarity to the product's other stored variants: the worker compared
                       all m candidates it generated, of which only the k kept are stored, so this
                       is the same term over fewer samples

Fit. A plain logistic regression, P(approved) = sigmoid(b + w . x), with every weight held at 0 or
more (projected gradient descent; a negative weight would let a passing candidate score below 0,
where only flagged ones may be) and a small L2 penalty, then scaled to sum 1 like the defaults
(scaling changes no ranking, and keeps the flag penalty above every positive total).

Too few decisions. Logistic regression needs about 10 examples of its rarer outcome per weight to
give stable weights (Peduzzi et al. 1996, "events per variable"): 6 weights need MIN_PER_CLASS =
60 approved and 60 rejected passing variants in the part it is fitted on. With fewer, nothing is
written and the worker keeps its default weights.

Held out. A fifth of the products (by a seeded hash of job item id, so a product's variants stay
together) is kept from the fit; on them, for every (approved or edited, rejected) pair of variants
of the same product, does the score rank the approved one higher? The share (ties count half) is
reported for the tuned and for the default weights. The weights written are the ones measured.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from copygen.catalogue import Product
from copygen.compliance import Lexicon
from copygen.prompt import render_prompt
from copygen.textnorm import normalise
from db.engine import session_scope
from db.model_versions import get_model_version
from db.reviews import decided_variants, product_variants
from trainer.checkpoint import load_manifest
from trainer.rescore import mean_logprobs
from worker import filters, selection

log = logging.getLogger(__name__)

FEATURES = tuple(selection.DEFAULT_WEIGHTS)  # coverage, fluency, agreement, length, distinct, varied
MIN_PER_CLASS = 10 * len(FEATURES)  # 10 events per weight; see the module docstring
HELD_OUT_SHARE = 0.2
L2 = 1e-3  # keeps the fit finite when decisions separate perfectly; small against the data's pull
ITERATIONS = 5000


@dataclass(frozen=True)
class Example:
    product: int  # job_item_id: the pairs compared on held-out products are within one product
    label: int  # 1 approved or edited, 0 rejected
    x: tuple[float, ...]  # FEATURES, in order


@dataclass
class TuneReport:
    weights: dict[str, float] | None  # None: too few decisions, the defaults stay
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)


# -- examples from the store ------------------------------------------------------------------------


def rescoring_items(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(prompt, continuation) per decided variant: what the worker asked its model, and what it wrote."""
    items = []
    for row in rows:
        settings = row.get("settings") or {}
        product = Product.from_json({k: row[k] for k in ("external_id", "title", "category", "attributes",
                                                         "description")})
        opening = normalise(settings.get("opening") or "")
        text = row["text"]
        continuation = text[len(opening):] if opening and text.startswith(opening) else text
        items.append((render_prompt(product.source(), settings.get("length") or "medium",
                                    settings.get("style") or "ad", settings.get("opening") or ""), continuation))
    return items


def examples_from(rows: Sequence[Mapping[str, Any]], siblings: Mapping[int, Sequence[Mapping[str, Any]]],
                  logprobs: Sequence[float], lexicon: Lexicon,
                  edges_of: Callable[[str | None], Sequence[int] | None]) -> list[Example]:
    """Examples from decided variants (db.reviews.decided_variants rows, passing ones), the stored
    variants of their products (db.reviews.product_variants) and each row's rescored log-probability."""
    by_product: dict[int, list[tuple[Mapping[str, Any], float]]] = defaultdict(list)
    for row, logprob in zip(rows, logprobs, strict=True):
        by_product[row["job_item_id"]].append((row, logprob))
    examples = []
    for item_id, decided in by_product.items():
        first = decided[0][0]
        product = Product.from_json({k: first[k] for k in ("external_id", "title", "category", "attributes",
                                                           "description")})
        stored = list(siblings[item_id])
        texts = [v["text"] for v in stored]
        fluency = {row["variant_no"]: logprob for row, logprob in decided}
        # assess gives coverage, fluency, agreement among the stored variants, and length fit
        assessed = selection.assess(texts, [fluency.get(v["variant_no"], 0.0) for v in stored], product, lexicon,
                                    length=(first.get("settings") or {}).get("length") or "medium",
                                    edges=edges_of(first.get("model_version")))
        terms = {v["variant_no"]: dict(c.terms) for v, c in zip(stored, assessed)}
        for v in stored:
            above = [o["text"] for o in stored if (o["rank"] or 0) < (v["rank"] or 0)]
            terms[v["variant_no"]]["distinct"] = 1.0 - max((filters.similarity(v["text"], t) for t in above),
                                                           default=0.0)
        for row, _ in decided:
            t = terms[row["variant_no"]]
            examples.append(Example(item_id, int(row["decision"] in ("approved", "edited")),
                                    tuple(float(t[name]) for name in FEATURES)))
    return examples


def store_examples(engine: Engine, lexicon: Lexicon, *, campaign: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, checkpoint: str | os.PathLike | None = None) -> list[Example]:
    """Examples from the copy store: passing variants decided in [since, until) (in the campaign).
    Each is rescored by the checkpoint its model version names (model_versions.path), or by
    `checkpoint` for all of them."""
    with session_scope(engine) as s:
        rows = [r for r in decided_variants(s, campaign=campaign, since=since, until=until) if r["passed"]]
        siblings = product_variants(s, {r["job_item_id"] for r in rows})
        versions = {name: get_model_version(s, name) for name in {r["model_version"] for r in rows} if name}
    paths: dict[str | None, Path] = {}
    for name in {r["model_version"] for r in rows}:
        found = Path(checkpoint) if checkpoint else Path(versions[name]["path"]) if versions.get(name) else None
        if found is None or not found.is_dir():
            raise ValueError(f"model version {name!r} wrote decided copy, and its checkpoint "
                             f"{found or '(not registered)'} is not here to measure its fluency again: "
                             "give one with --checkpoint DIR")
        paths[name] = found
    logprobs = [0.0] * len(rows)
    for name, path in paths.items():
        mine = [n for n, r in enumerate(rows) if r["model_version"] == name]
        log.info("measuring the fluency of %d decided variants with %s", len(mine), path)
        for n, value in zip(mine, mean_logprobs(path, rescoring_items([rows[n] for n in mine]))):
            logprobs[n] = value
    edges = {name: tuple(load_manifest(path).get("prompt", {}).get("length_edges") or ()) or None
             for name, path in paths.items()}
    return examples_from(rows, siblings, logprobs, lexicon, lambda name: edges.get(name))


# -- the fit ------------------------------------------------------------------------------------------


def fit_weights(x: np.ndarray, y: np.ndarray, *, l2: float = L2, iterations: int = ITERATIONS) -> np.ndarray:
    """Logistic regression weights (0 or more, summing to 1) for features x (n x d) and labels y."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])  # the last column carries the intercept
    # step 1/L for the mean logistic loss, whose gradient is Lipschitz with L <= max eig(X'X)/4n + l2
    lipschitz = np.linalg.eigvalsh(design.T @ design / n).max() / 4 + l2
    step = 1.0 / lipschitz
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - y) / n
        grad[:d] += l2 * theta[:d]
        theta -= step * grad
        theta[:d] = np.maximum(theta[:d], 0.0)  # the projection: no negative weight
    w = theta[:d]
    total = w.sum()
    return w / total if total > 0 else np.full(d, 1.0 / d)


def pairwise_agreement(examples: Sequence[Example], weights: Sequence[float]) -> tuple[float | None, int]:
    """(share of same-product (approved, rejected) pairs whose approved one scores higher, ties half;
    how many pairs); share None without pairs."""
    w = np.asarray(weights, dtype=float)
    products: dict[int, list[Example]] = defaultdict(list)
    for e in examples:
        products[e.product].append(e)
    wins = pairs = 0.0
    for group in products.values():
        good = [float(np.dot(w, e.x)) for e in group if e.label == 1]
        bad = [float(np.dot(w, e.x)) for e in group if e.label == 0]
        for g in good:
            for b in bad:
                pairs += 1
                wins += 1.0 if g > b + 1e-12 else 0.5 if abs(g - b) <= 1e-12 else 0.0
    return (wins / pairs if pairs else None), int(pairs)


def held_out_products(products: Sequence[int], seed: int, share: float = HELD_OUT_SHARE) -> set[int]:
    """The products kept from the fit: a seeded hash of each id, so the choice does not depend on the rest."""
    def side(product: int) -> float:
        digest = hashlib.blake2b(f"{seed}:{product}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    return {p for p in set(products) if side(p) < share}


def tune(examples: Sequence[Example], *, seed: int = 0, min_per_class: int = MIN_PER_CLASS,
         held_out_share: float = HELD_OUT_SHARE) -> TuneReport:
    """Fit the weights on most products and measure them on the held-out rest (see the module docstring)."""
    held = held_out_products([e.product for e in examples], seed, held_out_share)
    fit_on = [e for e in examples if e.product not in held]
    test_on = [e for e in examples if e.product in held]
    counts = {"examples": len(examples), "approved": sum(e.label for e in examples),
              "rejected": sum(1 - e.label for e in examples), "fit_approved": sum(e.label for e in fit_on),
              "fit_rejected": sum(1 - e.label for e in fit_on), "held_out_products": len(held),
              "held_out_examples": len(test_on)}
    rarer = min(counts["fit_approved"], counts["fit_rejected"])
    if rarer < min_per_class:
        return TuneReport(None, (
            f"too few decisions to fit: {counts['fit_approved']} approved or edited and {counts['fit_rejected']} "
            f"rejected passing variants outside the held-out products, and the fit needs {min_per_class} of each "
            f"(10 per weight for {len(FEATURES)} weights); the default weights stay"), counts)
    x = np.array([e.x for e in fit_on])
    y = np.array([e.label for e in fit_on], dtype=float)
    fitted = fit_weights(x, y)
    weights = {name: float(v) for name, v in zip(FEATURES, fitted)}
    default = [selection.DEFAULT_WEIGHTS[name] for name in FEATURES]
    tuned_share, pairs = pairwise_agreement(test_on, fitted)
    default_share, _ = pairwise_agreement(test_on, default)
    held_out = {"pairs": pairs, "tuned": tuned_share, "default": default_share}
    return TuneReport(weights, "fitted", counts, held_out)


def describe(report: TuneReport) -> list[str]:
    """The report as lines for a person."""
    c = report.counts
    lines = [(f"decisions on passing variants: {c.get('approved', 0)} approved or edited, "
             f"{c.get('rejected', 0)} rejected; {c.get('held_out_products', 0)} products "
             f"({c.get('held_out_examples', 0)} decisions) held out")]
    if report.weights is None:
        return lines + [report.reason]
    lines.append("weights: " + ", ".join(f"{k} {v:.3f} (default {selection.DEFAULT_WEIGHTS[k]:.2f})"
                                         for k, v in report.weights.items()))
    h = report.held_out
    if h["pairs"]:
        lines.append(f"held out: of {h['pairs']} (approved, rejected) pairs of the same product, the approved one "
                     f"ranks higher {100 * h['tuned']:.1f}% of the time with the tuned weights, "
                     f"{100 * h['default']:.1f}% with the default weights")
    else:
        lines.append("held out: no product has both an approved and a rejected passing variant; nothing to compare")
    return lines

