"""The retrieve-and-edit A/B: does an exemplar in the prompt (the nearest other training copy by
attribute overlap) help a model trained under the same time budget?

`build` writes the exemplar-augmented pairs of a checkpoint's own split: each training pair's
prompt gets the nearest *other* training copy (never its own), each validation pair the nearest
training copy, after the mark 参考： and cut to 80 characters. Train on train.csv with the same
preset and minutes as the plain model, let `copygen eval` generate for val.csv, and `score` both
prediction files on the original attributes (eval cannot parse an augmented source):

    .venv/bin/python scripts/ab_retrieve_and_edit.py build models/demo --out var/rae
    .venv/bin/copygen train --data var/rae/train.csv --input-column source --output-column copy \\
        --out var/rae/model --preset demo --max-minutes 5 --val-fraction 0.02
    .venv/bin/copygen eval var/rae/model --data var/rae/val.csv --out var/rae/eval-B --seed 0 --no-worker-choice
    .venv/bin/copygen eval models/demo --data ../shared/data/advertisegen/train_first5000.json \\
        --out var/rae/eval-A --seed 0 --no-worker-choice
    .venv/bin/python scripts/ab_retrieve_and_edit.py score var/rae/eval-A/predictions.jsonl var/rae/eval-B/predictions.jsonl

An experiment, not a feature: the README reports its result, and nothing of it is in the trainer.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from copygen.catalogue import parse_attributes
from copygen.compliance import load_lexicon
from trainer import metrics
from trainer.checkpoint import load_manifest
from trainer.evaluate import attributes_of, eval_split

MARK = "参考："
CAP = 80  # characters of the exemplar: room for the copy in the model's 384 positions
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"


def build(checkpoint: Path, data: Path, out: Path) -> None:
    train, val, split = eval_split(load_manifest(checkpoint), [data])
    index = metrics.AttributeIndex([attributes_of(p.source) for p in train])
    out.mkdir(parents=True, exist_ok=True)
    for name, rows, own in (("train", train, True), ("val", val, False)):
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["source", "copy"])
            for n, pair in enumerate(rows):
                exemplar = train[index.nearest(attributes_of(pair.source), n if own else None)].copy[:CAP]
                writer.writerow([pair.source + MARK + exemplar, pair.copy])
    print(f"{split}: {len(train)} training and {len(val)} validation pairs with exemplars in {out}")


def score(paths: list[Path]) -> None:
    lexicon = load_lexicon()
    for path in paths:
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        predictions = [r["prediction"] for r in rows]
        attributes = [parse_attributes(r["content"].split(MARK)[0]) for r in rows]
        s = {**metrics.corpus_scores(predictions, [r["reference"] for r in rows], progress=False),
             **metrics.copy_quality(predictions, attributes, lexicon)}
        print(f"{path}: {len(rows)} rows, R-1 {s['rouge-1']:.2f} R-2 {s['rouge-2']:.2f} R-L {s['rouge-l']:.2f} "
              f"BLEU-4 {s['bleu-4']:.2f} coverage {s['coverage']:.1%} contradictions {s['contradiction_rate']:.1%} "
              f"distinct-4 {s['distinct_4']:.1%} length {s['mean_length']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="write train.csv and val.csv with exemplars")
    p.add_argument("checkpoint", type=Path, help="the plain model: its split is used")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=Path("var/rae"))
    p = sub.add_parser("score", help="score eval predictions on the original attributes")
    p.add_argument("predictions", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "build":
        build(args.checkpoint, args.data, args.out)
    else:
        score(args.predictions)


if __name__ == "__main__":
    main()
