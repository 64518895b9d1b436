"""Choose the worker's decoding knobs on a checkpoint's validation split: the nudge toward a
product's own values (COPYGEN_NUDGE_START / COPYGEN_NUDGE_FOLLOW), the oversampling factor, the
sampling temperature and the rest of a job's decoding settings (--length short as make demo's job).

Each setting runs the worker's own choice (worker.pipeline.worker_choice: candidates, per-product
blocking and nudging, filters, score) on the same validation rows `copygen eval` scores, and prints
the reference metrics and faithfulness of the rank-1 copy, one line per setting (unst%: the share
of rank-1 copies naming a colour, fibre, print, length... their product does not state, the words a
`--stated-only` job blocks; other%: the share naming a part or garment of another type; splice%:
the share of their clauses joining two words the training copy never joins, trainer.wordpairs;
unfin%, ungr% and misp%: the share with an unfinished sentence (不仅 that never goes on...), an
ungrammatical phrase (a degree adverb on a bare noun...) and a misplaced effect (袖口→脖颈),
copygen.grammar; rep/100: the words a rank-1 copy says again, per 100 characters,
worker.selection.restated_words):

    .venv/bin/python scripts/tune_worker_choice.py models/small \\
        --data ../shared/data/advertisegen/train_first5000.json --limit 200 \\
        --nudge 0:0 1:3 2:4 --oversample 3 --temperature 0.95 0.7

For a checkpoint with an n-gram model (trainer.ngram), --ngram-share tries the network's share of
the mixture (`off`: the network alone); --judge CKPT adds the perplexity of the rank-1 copy under
another checkpoint's network (a larger model reading the copy: lower is more like the copy it
was trained on, a fluency proxy).

Only the validation split is used (never a test set); the figures are for choosing, the README's
table comes from `copygen eval` with the chosen defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from copygen import grammar, prompt
from copygen.attributes import unstated_found
from copygen.catalogue import DEFAULT_TEMPERATURE
from copygen.compliance import load_lexicon
from trainer import metrics, wordpairs
from trainer.checkpoint import load_manifest
from trainer.evaluate import attributes_of, eval_split
from trainer.generation import Generator
from trainer.rescore import mean_logprobs
from worker.pipeline import worker_choice
from worker.selection import restated_words

# Words of another garment type: legs and trousers in a top's copy, shirts and sleeves in trousers'
# copy, trousers in a skirt's. Not a contradiction (7% of the validation references name one, to
# suggest what to wear it with), but a model whose n-gram counts are not kept apart by type names
# them three to seven times as often (trainer/ngram.py).
OTHER_TYPE_WORDS = {"上衣": ("腿", "裤", "裙摆", "脚踝"),
                    "裤": ("衬衫", "衬衣", "上衣", "连衣裙", "半身裙", "袖", "领口", "羽绒服"),
                    "裙": ("裤",)}


def names_another_type(text: str, attributes: dict) -> bool:
    kind = (attributes.get("类型") or [""])[0]
    return any(word in text for word in OTHER_TYPE_WORDS.get(kind, ()))


def spliced_share(generator: Generator, texts: list[str]) -> float:
    """The share of the clauses of texts two of whose neighbouring words never meet in the
    checkpoint's training copy (trainer.wordpairs); nan for a checkpoint without word pairs."""
    clauses = [c for text in texts for c in wordpairs.clauses(text)]
    if generator.word_pairs is None or not clauses:
        return math.nan
    return sum(bool(generator.word_pairs.unseen(c)) for c in clauses) / len(clauses)


def nudge_pair(text: str) -> tuple[float, float]:
    start, _, follow = text.partition(":")
    return float(start), float(follow or start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N validation rows (default: all)")
    parser.add_argument("--nudge", nargs="+", default=["0:0"], help="START:FOLLOW logit bonuses to try")
    parser.add_argument("--oversample", nargs="+", type=int, default=[3])
    parser.add_argument("--temperature", nargs="+", type=float, default=[DEFAULT_TEMPERATURE])
    parser.add_argument("--clause-floor", nargs="+", default=["off"],
                        help="clause floors to try (a mean log-probability per token, or off)")
    parser.add_argument("--word-pairs", nargs="+", default=["off"], choices=["off", "on"],
                        help="draw a clause again when two neighbouring words never meet in the training copy")
    parser.add_argument("--known-clauses", nargs="+", default=["off"], choices=["off", "on"],
                        help="write only clauses of the training copy (trainer.clausebook)")
    parser.add_argument("--stated-only", action="store_true", help="choose as a job with stated_only does")
    parser.add_argument("--length", nargs="+", default=["medium"], choices=prompt.LENGTHS,
                        help="the job's length setting (short, medium, long)")
    parser.add_argument("--ngram-share", nargs="+", default=["saved"],
                        help="the network's share of the n-gram mixture: saved (the manifest's), off, or 0-1")
    parser.add_argument("--judge", type=Path, default=None, help="a checkpoint whose network reads the rank-1 copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write every setting's rank-1 copy here (JSON Lines)")
    args = parser.parse_args()

    manifest = load_manifest(args.checkpoint)
    _, rows, split = eval_split(manifest, args.data)
    rows = rows[: args.limit] if args.limit else rows
    lexicon = load_lexicon()
    references = [p.copy for p in rows]
    attributes = [attributes_of(p.source) for p in rows]
    print(f"{len(rows)} rows, {split}, {manifest['name']}")
    print(f"{'share':>5} {'nudge':>9} {'over':>4} {'temp':>4} {'R-L':>6} {'BLEU-4':>6} {'cov%':>6} {'contra%':>7} "
          f"{'pass%':>6} {'dist-4%':>7} {'unst%':>6} {'other%':>6} {'len':>5} {'judge':>6} {'s':>5} {'floor':>5} {'pairs':>5} {'splice%':>7} {'unfin%':>6} {'ungr%':>5} {'misp%':>5} {'known':>5} {'rep/100':>7} {'length':>6}")
    out = args.out.open("w", encoding="utf-8") if args.out else None
    settings = [(share, oversample, nudge, temperature, floor, pairs, known, length) for share in args.ngram_share
                for oversample in args.oversample for nudge in map(nudge_pair, args.nudge)
                for temperature in args.temperature for floor in args.clause_floor for pairs in args.word_pairs
                for known in args.known_clauses for length in args.length]
    for share, oversample, nudge, temperature, floor, pairs, known, length in settings:
        generator = Generator.load(args.checkpoint, device="auto", batch_size=96, use_ngram=share != "off",
                                   ngram_share=None if share in ("saved", "off") else float(share))
        started = time.monotonic()
        chosen = worker_choice(generator, [(p.source, p.style) for p in rows], args.seed,
                               oversample=oversample, nudge=nudge, temperature=temperature,
                               stated_only=args.stated_only, lexicon=lexicon,
                               clause_floor=None if floor == "off" else float(floor), word_pairs=pairs == "on",
                               known_clauses=known == "on", length=length)
        seconds = time.monotonic() - started
        texts = [t for t, _ in chosen]
        scores = {**metrics.corpus_scores(texts, references, progress=False),
                  **metrics.copy_quality(texts, attributes, lexicon)}
        passing = sum(p for _, p in chosen) / len(chosen)
        unstated = sum(bool(unstated_found(t, a)) for t, a in zip(texts, attributes)) / len(texts)
        other = sum(names_another_type(t, a) for t, a in zip(texts, attributes)) / len(texts)
        judged = math.nan
        spliced = spliced_share(generator, texts)
        left_unfinished = sum(bool(grammar.unfinished(t)) for t in texts) / len(texts)
        ungrammatical = sum(bool(grammar.ungrammatical(t)) for t in texts) / len(texts)
        misplaced = sum(bool(grammar.misplaced(t)) for t in texts) / len(texts)
        nudge_text = ":".join(f"{x:g}" for x in nudge)
        repeats = 100 * sum(map(restated_words, texts)) / max(1, sum(map(len, texts)))  # words said again per 100 characters
        if args.judge:
            logps = mean_logprobs(args.judge, [(prompt.render_prompt(p.source, style=p.style), t)
                                               for p, t in zip(rows, texts)], use_ngram=False)
            judged = math.exp(-sum(logps) / len(logps))
        print(f"{share:>5} {nudge_text:>9} {oversample:>4} {temperature:>4g} {scores['rouge-l']:>6.2f} "
              f"{scores['bleu-4']:>6.2f} {scores['coverage'] * 100:>6.1f} {scores['contradiction_rate'] * 100:>7.1f} "
              f"{passing * 100:>6.1f} {scores['distinct_4'] * 100:>7.1f} {unstated * 100:>6.1f} {other * 100:>6.1f} "
              f"{scores['mean_length']:>5.0f} {judged:>6.2f} {seconds:>5.0f} {floor:>5} {pairs:>5} {spliced * 100:>7.1f} {left_unfinished * 100:>6.1f} {ungrammatical * 100:>5.1f} {misplaced * 100:>5.1f} {known:>5} {repeats:>7.2f} {length:>6}", flush=True)
        if out:
            for pair, (text, passed) in zip(rows, chosen):
                out.write(json.dumps({"ngram_share": share, "nudge": nudge, "oversample": oversample,
                                      "temperature": temperature, "clause_floor": floor, "word_pairs": pairs, "known_clauses": known, "length": length, "content": pair.source,
                                      "choice": text, "passed": passed}, ensure_ascii=False) + "\n")
    if out:
        out.close()


if __name__ == "__main__":
    main()
