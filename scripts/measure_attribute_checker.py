"""How often the attribute checker flags human copy (false positives) and another product's copy.

Each AdvertiseGen row is a product (``content``) with its own human reference (``summary``). The
references are taken as faithful, so a reference the checker flags is a false positive. The
sensitivity is the same count on shuffled copy: each product judged against another product's
reference (a fixed random pairing). Both are reported per family (share of the products the
family checks, and of all rows) and overall (share of all rows with any flag).

    .venv/bin/python scripts/measure_attribute_checker.py                  # the table
    .venv/bin/python scripts/measure_attribute_checker.py --show 裤长      # its flagged references
    .venv/bin/python scripts/measure_attribute_checker.py --json          # the vocabulary's blocks
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from copygen.attributes import AttributeVocab, coverage, load_vocab
from copygen.compliance import fold
from trainer.data import parse_content

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"
SEED = 0  # the shuffled pairing; fixed so the numbers in the vocabulary can be reproduced


def read_rows(path: Path, limit: int | None) -> list[tuple[dict[str, list[str]], str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.append((parse_content(row["content"]), row["summary"]))
    return rows[:limit]


def shuffled_copies(rows: list, seed: int) -> list[str]:
    """For each product, another product's reference (never its own)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [rows[j if j != i else (i + 1) % len(rows)][1] for i, j in enumerate(order)]


def family_flags(text: str, attributes: dict, vocab: AttributeVocab) -> dict[str, list[str]]:
    """Family name -> the words it flags in the text (only families that check this product)."""
    folded = fold(text)
    flags = {}
    for group in vocab.closed:
        judged = group.judge(attributes)
        if judged is not None:
            flags[group.name] = group.flagged(folded, judged[1])
    return flags


def mean_coverage(rows: list, copies: list[str], vocab: AttributeVocab) -> float:
    total = sum(coverage(text, attributes, vocab=vocab) for (attributes, _), text in zip(rows, copies))
    return round(total / len(rows), 4)


def measure(rows: list, vocab: AttributeVocab, seed: int) -> dict:
    others = shuffled_copies(rows, seed)
    checked, ref_flagged, shuf_flagged = Counter(), Counter(), Counter()
    ref_any = shuf_any = 0
    for (attributes, reference), other in zip(rows, others):
        ref = family_flags(reference, attributes, vocab)
        shuf = family_flags(other, attributes, vocab)
        checked.update(list(ref))
        ref_flagged.update(name for name, words in ref.items() if words)
        shuf_flagged.update(name for name, words in shuf.items() if words)
        ref_any += any(ref.values())
        shuf_any += any(shuf.values())
    n = len(rows)
    families = {
        g.name: {
            "products": checked[g.name],
            "reference_flagged": ref_flagged[g.name],
            "reference_rate": round(ref_flagged[g.name] / max(checked[g.name], 1), 4),
            "shuffled_rate": round(shuf_flagged[g.name] / max(checked[g.name], 1), 4),
            "reference_share_of_rows": round(ref_flagged[g.name] / n, 4),
        }
        for g in vocab.closed
    }
    return {
        "rows": n,
        "reference_rate": round(ref_any / n, 4),
        "shuffled_rate": round(shuf_any / n, 4),
        "coverage_reference": mean_coverage(rows, [reference for _, reference in rows], vocab),
        "coverage_shuffled": mean_coverage(rows, others, vocab),
        "families": families,
    }


def show(rows: list, vocab: AttributeVocab, family: str) -> None:
    """The references the family flags, with the product's values and the words flagged."""
    group = next(g for g in vocab.closed if g.name == family)  # main() checked the name
    pairs = Counter()
    for number, (attributes, reference) in enumerate(rows, 1):
        words = family_flags(reference, attributes, vocab).get(family)
        if words:
            values = [v for k in group.keys for v in attributes.get(k, [])]
            pairs.update(f"{'+'.join(values)} -> {w}" for w in set(words))
            print(f"row {number}: {'+'.join(values)} -> {', '.join(words)}\n    {reference}")
    print("\n".join(f"{c:4d}  {p}" for p, c in pairs.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="AdvertiseGen JSON lines with content and summary (default: the 5,000 rows)")
    parser.add_argument("--rows", type=int, default=None, help="only the first ROWS rows (default: all)")
    parser.add_argument("--vocab", type=Path, default=None,
                        help="a vocabulary file (default: the packaged one)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the shuffled pairing")
    parser.add_argument("--show", metavar="FAMILY", help="print the references FAMILY flags, then stop")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    vocab = load_vocab(args.vocab)
    rows = read_rows(args.data, args.rows)
    if args.show:
        names = [g.name for g in vocab.closed]
        if args.show not in names:
            parser.error(f"--show {args.show}: no such family (families: {', '.join(names)})")
        show(rows, vocab, args.show)
        return
    result = measure(rows, vocab, args.seed)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    print(f"{'family':8s} {'checked':>8s} {'ref FP':>7s} {'ref %':>7s} {'% rows':>7s} {'shuffled %':>11s}")
    for name, f in result["families"].items():
        print(f"{name:8s} {f['products']:8d} {f['reference_flagged']:7d} {100 * f['reference_rate']:6.2f}% "
              f"{100 * f['reference_share_of_rows']:6.2f}% {100 * f['shuffled_rate']:10.2f}%")
    print(f"overall: {result['rows']} rows, references flagged {100 * result['reference_rate']:.2f}%, "
          f"shuffled copy flagged {100 * result['shuffled_rate']:.2f}%; "
          f"coverage {result['coverage_reference']} (reference) / {result['coverage_shuffled']} (shuffled)")


if __name__ == "__main__":
    main()
