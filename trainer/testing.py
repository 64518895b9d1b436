"""A tiny but really trained checkpoint, for tests of everything that needs a model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.presets import Preset

# 2 layers × 64 wide: trains 40 steps in a few seconds on one core.
TINY = Preset(n_layer=2, n_embd=64, n_head=2, n_positions=256, batch_size=8,
              learning_rate=3e-3, warmup_steps=5, dropout=0.0)

_COPY = [
    ("类型#上衣*颜色#白色*材质#棉*风格#简约", "这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦。"),
    ("类型#裙*颜色#黑色*裙长#连衣裙*风格#复古", "复古的黑色连衣裙，优雅的裙摆随风摇曳，穿出迷人的女人味。"),
    ("类型#裤*版型#宽松*裤型#阔腿裤*材质#牛仔布", "宽松的阔腿裤，牛仔布挺括有型，遮肉显腿长，轻松穿出时髦感。"),
    ("类型#上衣*颜色#粉色*衣样式#卫衣*图案#字母", "粉色卫衣点缀字母图案，活力满满，宽松的廓形慵懒又舒适。"),
    ("类型#裙*材质#雪纺*图案#碎花*裙型#a字", "碎花雪纺a字裙，轻盈飘逸，浪漫的碎花满满都是春天的气息。"),
    ("类型#上衣*材质#针织*衣样式#毛衣*颜色#灰色", "灰色针织毛衣，软糯亲肤又保暖，简单的设计百搭不挑人。"),
]


@dataclass(frozen=True)
class _Pair:
    source: str
    copy: str
    style: str = "ad"
    origin: str = "testing"
    torn: tuple[str, ...] = ()


def tiny_pairs(n: int = 48) -> list[_Pair]:
    return [_Pair(*_COPY[i % len(_COPY)]) for i in range(n)]


def tiny_checkpoint(out: Path, steps: int = 40, seed: int = 0, ngram_order: int = 0) -> Path:
    """Train a 2-layer model on a handful of copy lines and save it as a real checkpoint (without
    the n-gram model training makes by default, unless ngram_order asks: most tests are of the network)."""
    from trainer.clausebook import WORD_COPIES
    from trainer.train import TrainOptions, train_on

    pairs = tiny_pairs(len(_COPY) * WORD_COPIES)  # each copy often enough for its words to stay in the clause book
    opts = TrainOptions(data=[], out=Path(out), preset="tiny", epochs=steps * TINY.batch_size / len(pairs),
                        seed=seed, device="cpu", progress=False, eval_every=steps, ngram_order=ngram_order)
    return train_on(opts, pairs, pairs[:8], [], {"source": "trainer.testing"}, preset=TINY)
