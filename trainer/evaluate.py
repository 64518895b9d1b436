"""copygen eval: a checkpoint's copy scored the way published AdvertiseGen numbers are scored.

Metrics follow the ChatGLM-6B P-Tuning v2 evaluation (ROUGE-1/2/L F on jieba words, BLEU-4 on
characters with smoothing method 3, plain means), so our figures sit next to theirs. Beside them
the same run scores a retrieval baseline (the training copy of the most similar attribute set):
a model that cannot beat copying the nearest training example has learnt nothing worth serving.

With a `choose` function (the CLI passes the worker's, worker.pipeline.worker_choice: the trainer
knows nothing of the worker) a third system is scored: the rank-1 variant of k = 3 chosen the
way the worker chooses it (oversampling, per-product blocking, filters, score), which is what a
campaign tool would publish; with the share of products that got a passing variant. The
references' contradiction rate is the checker's false-positive rate: it is printed as such.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLE = {"temperature": 0.95, "top_p": 0.7}   # the ChatGLM-6B protocol's sampling settings
WORKER_CHOICE = "worker choice (k=3)"

# choose(generator, [(source, style)], seed) -> [(rank-1 text, passed)] per row
Choose = Callable[[object, Sequence[tuple[str, str]], int], list[tuple[str, bool]]]


@dataclass
class EvalOptions:
    checkpoint: Path
    data: list[Path]
    out: Path
    limit: int | None = None
    decoding: str = "sample"
    no_repeat_ngram: int = 0  # 0: the protocol exactly; the worker decodes with NO_REPEAT_NGRAM
    # False: Hugging Face's top-p, as the published protocol samples; True: copy as long as its
    # length setting asks (Generator.generate's honour_length), as the worker decodes
    honour_length: bool = False
    # False: the network alone, for an A/B against the mixture with the checkpoint's n-gram model
    use_ngram: bool = True
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    progress: bool = True


def _origin_file(pair) -> Path:
    return Path(pair.origin.rsplit(":", 1)[0]).resolve()


def _within(file: Path, paths: list[Path]) -> bool:
    return any(file == p or p in file.parents for p in paths)


def attributes_of(source: str) -> dict:
    """A source's attributes ({} for a source that is not an attribute string)."""
    from copygen.catalogue import parse_attributes

    try:
        return parse_attributes(source)
    except ValueError:
        return {}


def eval_split(manifest: dict, data_paths: list[Path]):
    """(train pairs, eval pairs, split name).

    When the given data is (part of) what the checkpoint was trained on, the split is remade from
    the manifest's seed and the evaluation rows are its validation rows from those files, so
    nothing the model was trained on is scored. Other data is scored whole, with the retrieval
    baseline drawing on the checkpoint's training data when it is on this machine.
    """
    from trainer.train import TrainOptions, load_data

    recorded = manifest["data"]
    trained_on = [Path(p) for p in recorded.get("paths", [])]
    given = [p.resolve() for p in data_paths]
    opts = TrainOptions(data=trained_on, out=Path("unused"), seed=recorded.get("seed", 42),
                        val_fraction=recorded.get("val_fraction", 0.1),
                        input_column=recorded.get("input_column"), output_column=recorded.get("output_column"),
                        style=recorded.get("style"))
    available = bool(trained_on) and all(t.exists() for t in trained_on)
    trained = [t.resolve() for t in trained_on]
    if available and all(_within(g, trained) for g in given):
        train, val, _, _ = load_data(opts)
        pick = [p for p in val if _within(_origin_file(p), given)]
        base = [p for p in train if _within(_origin_file(p), given)]
        return base, pick, "validation split of the training data"
    opts.data = data_paths
    rows_train, rows_val, _, _ = load_data(opts)
    base = []
    if available:
        opts.data = trained_on
        base, _, _, _ = load_data(opts)
    else:
        log.warning("the checkpoint's training data is not found from here: no retrieval baseline")
        namesakes = sorted({g.name for g in given} & {t.name for t in trained_on})
        if namesakes:  # a checkpoint trained before paths were recorded absolute, evaluated from elsewhere
            log.warning("%s: the name of a file this checkpoint was trained on, which is not found from here: "
                        "every row is scored, training rows included; run eval from the directory it was "
                        "trained in to score its validation split", ", ".join(namesakes))
    return base, rows_train + rows_val, "all rows of the given data"


def run_eval(opts: EvalOptions, choose: Choose | None = None) -> dict:
    from tqdm import tqdm

    from copygen.attributes import contradictions  # noqa: F401  (imported early: fail before generating)
    from copygen.compliance import load_lexicon
    from trainer import metrics
    from trainer.checkpoint import load_manifest
    from trainer.generation import Generator, Request

    manifest = load_manifest(opts.checkpoint)
    train, rows, split = eval_split(manifest, opts.data)
    if opts.limit:
        rows = rows[: opts.limit]
    if not rows:
        raise ValueError("no evaluation rows: --data gave nothing that survived cleaning")
    generator = Generator.load(opts.checkpoint, device=opts.device, batch_size=opts.batch_size,
                               use_ngram=opts.use_ngram)
    lexicon = load_lexicon()

    predictions: list[str] = []
    chunk = opts.batch_size
    bar = tqdm(total=len(rows), disable=not opts.progress, desc="generating", unit="copy")
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        texts = generator.generate(
            [Request(source=p.source, variants=1, style=p.style) for p in part],
            seed=opts.seed + start, greedy=opts.decoding == "greedy", no_repeat_ngram=opts.no_repeat_ngram,
            honour_length=opts.honour_length, **SAMPLE)
        predictions.extend(t[0] for t in texts)
        bar.update(len(part))
    bar.close()

    references = [p.copy for p in rows]
    attributes = [attributes_of(p.source) for p in rows]
    results = {"model": {**metrics.corpus_scores(predictions, references, progress=opts.progress),
                         **metrics.copy_quality(predictions, attributes, lexicon)}}
    baseline = []
    if train:
        baseline = metrics.retrieval_baseline([(attributes_of(p.source), p.copy) for p in train], attributes)
        results["retrieval baseline"] = {**metrics.corpus_scores(baseline, references, progress=opts.progress),
                                         **metrics.copy_quality(baseline, attributes, lexicon)}
    chosen = []
    if choose is not None:
        chosen = choose(generator, [(p.source, p.style) for p in rows], opts.seed)
        texts = [text for text, _ in chosen]
        results[WORKER_CHOICE] = {**metrics.corpus_scores(texts, references, progress=opts.progress),
                                  **metrics.copy_quality(texts, attributes, lexicon),
                                  "passing_share": sum(passed for _, passed in chosen) / len(chosen)}
    results["references"] = metrics.copy_quality(references, attributes, lexicon)

    opts.out.mkdir(parents=True, exist_ok=True)
    with (opts.out / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for i, (pair, prediction) in enumerate(zip(rows, predictions)):
            line = {"content": pair.source, "reference": pair.copy, "prediction": prediction}
            if baseline:
                line["baseline"] = baseline[i]
            if chosen:
                line["worker_choice"], line["worker_choice_passed"] = chosen[i]
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    summary = {"checkpoint": str(opts.checkpoint), "model_version": manifest["name"], "split": split,
               "examples": len(rows), "decoding": opts.decoding,
               "sampling": SAMPLE if opts.decoding == "sample" else None, "no_repeat_ngram": opts.no_repeat_ngram,
               "honour_length": opts.honour_length, "seed": opts.seed,
               "ngram": None if generator.ngram_weight is None else {"network_share": generator.ngram_weight},
               "lexicon_version": lexicon.version, "results": results}
    (opts.out / "metrics.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


COLUMNS = [  # (key, heading, scale): rates are shown as percentages
    ("rouge-1", "R-1", 1), ("rouge-2", "R-2", 1), ("rouge-l", "R-L", 1), ("bleu-4", "BLEU-4", 1),
    ("distinct_4", "dist-4%", 100), ("coverage", "attr-cov%", 100), ("contradiction_rate", "contra%", 100),
    ("law_term_rate", "ad-law%", 100), ("stutter_rate", "stutter%", 100),
    ("mean_length", "length", 1), ("passing_share", "passing%", 100),
]


def format_table(summary: dict) -> str:
    """The metrics as a fixed-width table, one row per system."""
    header = f"{'system':<20}" + "".join(f"{label:>10}" for _, label, _ in COLUMNS)
    rule = f", no repeated {summary['no_repeat_ngram']}-grams" if summary.get("no_repeat_ngram") else ""
    if summary.get("honour_length"):
        rule += ", lengths honoured"
    if summary.get("ngram"):
        rule += f", mixed with the n-gram model ({1 - summary['ngram']['network_share']:.0%})"
    lines = [f"{summary['examples']} examples, {summary['split']}, {summary['decoding']} decoding{rule}", header,
             "-" * len(header)]
    for system, values in summary["results"].items():
        cells = "".join(f"{values[key] * scale:>10.2f}" if key in values else f"{'':>10}"
                        for key, _, scale in COLUMNS)
        lines.append(f"{system:<20}{cells}")
    references = summary["results"].get("references")
    if references:
        lines.append(f"the faithfulness checker flags {references['contradiction_rate'] * 100:.2f}% of the human "
                     "references (its false-positive rate)")
    return "\n".join(lines)
