"""copygen tune-score's fit, on synthetic decisions whose true weights are known, and the weights file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from copygen.score_weights import write_weights
from worker import selection
from worker.score_tuning import FEATURES, Example, pairwise_agreement, tune

# the order reviewers care about, on purpose unlike the defaults (coverage first there)
TRUE = {"distinct": 0.40, "length": 0.22, "agreement": 0.15, "fluency": 0.10, "varied": 0.08, "coverage": 0.05}


def synthetic(products: int, seed: int, scale: float = 20.0) -> list[Example]:
    """Three variants per product; each is approved with probability sigmoid(scale x (TRUE . x - 0.5))."""
    rng = np.random.default_rng(seed)
    w = np.array([TRUE[name] for name in FEATURES])
    examples = []
    for product in range(products):
        for x in rng.uniform(0, 1, size=(3, len(FEATURES))):
            p = 1 / (1 + np.exp(-scale * (w @ x - 0.5)))
            examples.append(Example(product, int(rng.random() < p), tuple(float(v) for v in x)))
    return examples


def test_the_fit_recovers_the_order_of_the_true_weights_and_ranks_held_out_decisions_better():
    report = tune(synthetic(4000, seed=1), seed=0)
    assert report.weights is not None
    assert sorted(report.weights, key=report.weights.get, reverse=True) == list(TRUE)
    assert abs(sum(report.weights.values()) - 1) < 1e-9 and min(report.weights.values()) >= 0
    held = report.held_out
    assert held["pairs"] > 1000
    assert held["tuned"] > held["default"] + 0.05
    truth, _ = pairwise_agreement(synthetic(4000, seed=1), [TRUE[n] for n in FEATURES])
    assert abs(held["tuned"] - truth) < 0.03  # as good as the true weights, within sampling noise


def test_a_feature_the_decisions_punish_gets_weight_zero_not_a_negative_one():
    coverage, distinct = FEATURES.index("coverage"), FEATURES.index("distinct")
    # reviewers here approve distinct copy that covers little of the product
    examples = [Example(e.product, int(e.x[coverage] < 0.5 and e.x[distinct] > 0.3), e.x)
                for e in synthetic(2000, seed=2)]
    report = tune(examples, seed=0)
    assert report.weights["coverage"] == 0.0 and report.weights["distinct"] > 0.5
    assert min(report.weights.values()) >= 0


def test_too_few_decisions_keep_the_default_weights_and_say_how_many_are_needed():
    report = tune(synthetic(30, seed=3), seed=0)
    assert report.weights is None
    assert "the fit needs 60 of each (10 per weight for 6 weights); the default weights stay" in report.reason


def test_a_weights_file_round_trips_into_the_score_and_a_bad_one_is_refused_by_name(tmp_path):
    weights = {"coverage": 0.1, "fluency": 0.1, "agreement": 0.1, "length": 0.2, "distinct": 0.5}
    path = write_weights(tmp_path / "w.json", "score-test", weights, {"method": "test"})
    try:
        # a file fitted before the varied term existed gives it no weight
        assert selection.use_weights(str(path)) == {**weights, "varied": 0.0}
        assert selection.weigh({"distinct": 1.0, "varied": 1.0}, []) == 0.5  # the score uses them
    finally:
        selection.use_weights(None)
    assert selection.weigh({"distinct": 1.0}, []) == selection.DEFAULT_WEIGHTS["distinct"]
    body = json.loads(path.read_text(encoding="utf-8"))
    for broken, message in [
        ({**body, "weights": {**weights, "distinct": 0.9}}, "sum to 1.4000, more than 1.0"),
        ({**body, "weights": {k: v for k, v in weights.items() if k != "length"}}, "must give exactly"),
        ({**body, "weights": {**weights, "length": -0.1}}, "weights.length must be a number, 0 or more"),
        ({**body, "format": "other"}, "not a copygen.score_weights file"),
        ({**body, "version": 2}, "version 2, this copygen reads 1"),
    ]:
        path.write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(ValueError, match=message) as exc:
            selection.use_weights(str(path))
        assert str(path) in str(exc.value)
    assert selection.WEIGHTS == selection.DEFAULT_WEIGHTS  # a refused file changes nothing


def test_the_embedded_mode_ranks_with_the_weights_file_too(tmp_path):
    from copygen.settings import Settings
    from db.engine import make_engine, session_scope
    from db.variants import job_variants
    from trainer.testing import tiny_checkpoint
    from worker import runtime
    from worker.submit import submit_job

    only_length = {"coverage": 0.0, "fluency": 0.0, "agreement": 0.0, "length": 1.0, "distinct": 0.0, "varied": 0.0}
    path = write_weights(tmp_path / "w.json", "score-length-only", only_length, {"method": "test"})
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'copy.db'}", broker_url="memory://", threads=1,
                        checkpoint=tiny_checkpoint(tmp_path / "tiny"), score_weights=path, regenerate_rounds=0)
    products = [{"external_id": f"E-{n}", "title": "白色棉衬衫", "attributes": {"颜色": ["白色"], "材质": ["棉"]}}
                for n in range(3)]
    try:
        job_id = submit_job(products, 2, seed=0, settings=settings)
        engine = make_engine(settings.database_url)
        with session_scope(engine) as s:
            variants = job_variants(s, job_id)
        engine.dispose()
    finally:
        selection.use_weights(None)
        runtime.reset()
    passing = [v for v in variants if v["passed"]]
    assert passing
    # with all the weight on length fit, a passing variant's score is its length fit: at most 1,
    # and exactly 1 for one inside the length bounds (the default weights would add coverage etc.)
    assert all(0.0 <= v["score"] <= 1.0 for v in passing)
    assert any(v["score"] == 1.0 for v in passing)
