"""The training loop, the checkpoint contract and the generation engine, on tiny real models."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from trainer import checkpoint
from trainer import fit as fit_module
from trainer.checkpoint import CheckpointError, load_manifest
from trainer.fit import WIDTH_MULTIPLE, FitConfig, collate, collate_weights, evaluate_loss, fit
from trainer.generation import Generator, Request
from trainer.testing import TINY, tiny_checkpoint, tiny_pairs
from trainer.tokenizer import build_char_tokenizer
from trainer.train import encode_pair, length_edges, mention_weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=60)


def _examples():
    pairs = tiny_pairs(32)
    tokenizer = build_char_tokenizer([p.source + p.copy for p in pairs])
    edges = length_edges([p.copy for p in pairs])
    return tokenizer, [encode_pair(tokenizer, p, edges, 256) for p in pairs]


def _model(tokenizer, *, dropout: float = TINY.dropout, seed: int = 0):
    from transformers import GPT2LMHeadModel

    from trainer.presets import gpt2_config

    torch.manual_seed(seed)
    preset = dataclasses.replace(TINY, dropout=dropout)
    return GPT2LMHeadModel(gpt2_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))


def test_short_cpu_stages_train_with_eager_attention_which_computes_what_sdpa_computes():
    # fit picks eager attention for a CPU stage of short examples (faster there: trainer.fit); the
    # model must compute the same function, padding included, and a stage of long examples keeps SDPA.
    tokenizer, examples = _examples()
    ours = _model(tokenizer, dropout=0.0)
    assert ours.config.activation_function == "gelu"  # the exact GELU (trainer.presets)
    peer = _model(tokenizer, dropout=0.0)
    fit_module._pick_attention(ours, examples, "cpu")
    assert (ours.config._attn_implementation, peer.config._attn_implementation) == ("eager", "sdpa")
    ids, labels, mask = collate(examples, [0, 1, 2], pad_id=tokenizer.pad_token_id)
    assert (mask == 0).any(), "the batch must hold padding"
    outputs = [model(input_ids=ids, attention_mask=mask, labels=labels) for model in (ours, peer)]
    real = mask.bool()
    torch.testing.assert_close(outputs[0].logits[real], outputs[1].logits[real], atol=1e-5, rtol=1e-5)
    for output in outputs:
        output.loss.backward()
    torch.testing.assert_close(ours.transformer.h[0].attn.c_attn.weight.grad,
                               peer.transformer.h[0].attn.c_attn.weight.grad, atol=1e-5, rtol=1e-4)

    long = [([1] * (fit_module.EAGER_ATTENTION_UP_TO + 1), [1] * (fit_module.EAGER_ATTENTION_UP_TO + 1))] * 3
    fit_module._pick_attention(ours, long, "cpu")
    assert ours.config._attn_implementation == "sdpa"


def test_loss_is_taken_on_the_copy_only():
    tokenizer, examples = _examples()
    ids, labels = examples[0]
    sep = ids.index(tokenizer.convert_tokens_to_ids("[SEP]"))
    assert all(label == -100 for label in labels[: sep + 1])
    assert labels[sep + 1:] == ids[sep + 1:]
    assert tokenizer.decode(labels[sep + 1:-1]) == tiny_pairs(1)[0].copy


def test_batches_are_padded_to_a_few_widths_within_the_position_limit():
    examples = [([5] * n, [-100] + [5] * (n - 1)) for n in (3, 17, 40, 250)]
    ids, labels, mask = collate(examples, [0, 1], pad_id=0)
    assert ids.shape[1] == 2 * WIDTH_MULTIPLE  # 17 tokens -> 32: the kernels see few shapes
    assert mask.sum(dim=1).tolist() == [3, 17] and (labels[mask == 0] == -100).all()  # padding is not learned
    assert collate(examples, [2, 3], pad_id=0, max_width=256)[0].shape[1] == 256  # 250 -> 256 fits
    assert collate(examples, [2, 3], pad_id=0, max_width=252)[0].shape[1] == 252  # the model takes no more
    assert collate(examples, [3], pad_id=0, max_width=200)[0].shape[1] == 250  # never cuts an example


def test_a_few_steps_of_training_lower_the_validation_loss(tmp_path):
    tokenizer, examples = _examples()
    model = _model(tokenizer)
    before = evaluate_loss(model, examples[:8], tokenizer.pad_token_id, "cpu")
    cfg = FitConfig(batch_size=8, learning_rate=3e-3, warmup_steps=2, epochs=6, eval_every=12, device="cpu")
    result = fit(model, examples, examples[:8], pad_id=tokenizer.pad_token_id, cfg=cfg, work_dir=tmp_path,
                 progress=False)
    after = evaluate_loss(model, examples[:8], tokenizer.pad_token_id, "cpu")
    assert after < before - 1.0
    assert result.best_val_loss == pytest.approx(after, rel=1e-4)
    assert result.tokens > 0 and result.steps == 24


def test_the_mention_weight_falls_on_the_characters_that_name_the_products_own_values():
    @dataclasses.dataclass
    class Pair:
        source: str
        copy: str
        style: str = "ad"

    pair = Pair("类型#裤*版型#宽松*裤型#阔腿裤", "宽松的阔腿裤，穿上很舒服，裤腿宽松")
    tokenizer = build_char_tokenizer([pair.source + pair.copy])
    example = encode_pair(tokenizer, pair, (10, 20), 256)
    ids, labels, weights = mention_weights(pair, example, 3.0)
    first = len(ids) - len(pair.copy) - 1
    heavy = "".join(ch if weights[first + i] == 3.0 else "_" for i, ch in enumerate(pair.copy))
    assert heavy == "宽松_阔腿裤___________"  # each value's first mention: 宽松 again is plain
    assert set(weights[:first]) == {1.0} and weights[-1] == 1.0  # the prompt and the end token: plain
    assert labels[first:] == ids[first:]  # the labels are untouched
    assert mention_weights(pair, example, 1.0) is example  # no weighting asked
    titled = Pair("夏季新款宽松阔腿裤", pair.copy)  # a title, not key#value: nothing to weigh by
    assert mention_weights(titled, encode_pair(tokenizer, titled, (10, 20), 256), 3.0) == \
        encode_pair(tokenizer, titled, (10, 20), 256)


def test_a_weighted_loss_is_the_plain_loss_at_weight_one_and_leans_toward_the_heavy_tokens():
    tokenizer, examples = _examples()
    model = _model(tokenizer, dropout=0.0)
    ids, labels, mask = collate(examples, [0, 1, 2], pad_id=tokenizer.pad_token_id)
    assert collate_weights(examples, [0, 1, 2], ids.shape[1]) is None  # no example carries weights
    plain = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    logits = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(fit_module._weighted_loss(logits, labels, torch.ones(ids.shape)), plain)
    # all the weight on one copy token: the loss is that token's alone
    weights = torch.zeros(ids.shape)
    at = int((labels[0] != -100).nonzero()[3])
    weights[0, at] = 5.0
    alone = torch.nn.functional.cross_entropy(logits[0, at - 1][None], labels[0, at][None])
    torch.testing.assert_close(fit_module._weighted_loss(logits, labels, weights), alone)
    # an example's weights reach the batch where it sits; the others weigh 1
    weighted = [(*examples[0], [2.0] * len(examples[0][0])), examples[1]]
    batch_weights = collate_weights(weighted, [1, 0], ids.shape[1])
    assert batch_weights[1, : len(examples[0][0])].eq(2.0).all() and batch_weights[0].eq(1.0).all()


def test_training_with_mention_weights_runs_and_learns(tmp_path):
    tokenizer, examples = _examples()
    model = _model(tokenizer)
    weighted = [(ids, labels, [2.0 if label != -100 and i % 3 == 0 else 1.0 for i, label in enumerate(labels)])
                for ids, labels in examples]
    before = evaluate_loss(model, examples[:8], tokenizer.pad_token_id, "cpu")
    cfg = FitConfig(batch_size=8, learning_rate=3e-3, warmup_steps=2, epochs=6, eval_every=12, device="cpu")
    fit(model, weighted, examples[:8], pad_id=tokenizer.pad_token_id, cfg=cfg, work_dir=tmp_path, progress=False)
    assert evaluate_loss(model, examples[:8], tokenizer.pad_token_id, "cpu") < before - 1.0


class _Killed(Exception):
    """Stands in for the process dying in the middle of a run."""


def test_an_interrupted_run_resumes_from_its_saved_step_and_optimizer_state(tmp_path, monkeypatch):
    tokenizer, examples = _examples()
    pad = tokenizer.pad_token_id
    # with dropout the restored random state matters too; 16 steps, state saved every 4
    cfg = FitConfig(batch_size=8, learning_rate=3e-3, warmup_steps=2, epochs=4, eval_every=4, device="cpu", seed=3)
    straight = _model(tokenizer, dropout=0.1)
    expected = fit(straight, examples, examples[:8], pad_id=pad, cfg=cfg, work_dir=tmp_path / "a", progress=False)

    # fit calls _lr_at once per optimiser step, with the step it starts from: count them, and die at one
    steps_run, kill_at = [], [10]

    def lr_at(step, *args):
        steps_run.append(step)
        if step in kill_at:  # dies in step 11: steps 9 and 10 were done but not saved, the state is step 8's
            raise _Killed
        return real_lr_at(step, *args)

    real_lr_at = fit_module._lr_at
    monkeypatch.setattr(fit_module, "_lr_at", lr_at)
    with pytest.raises(_Killed):
        fit(_model(tokenizer, dropout=0.1), examples, examples[:8], pad_id=pad, cfg=cfg, work_dir=tmp_path / "b",
            progress=False)
    assert steps_run == list(range(11))

    steps_run.clear()
    kill_at.clear()
    # a model initialised differently: only the saved weights can bring it back on the straight run's path
    resumed = _model(tokenizer, dropout=0.1, seed=1)
    result = fit(resumed, examples, examples[:8], pad_id=pad, cfg=cfg, work_dir=tmp_path / "b", progress=False)
    assert steps_run == list(range(8, 16))  # continued from the saved step 8, not from step 0
    assert result.steps == expected.steps == 16 and result.tokens == expected.tokens
    assert [h["step"] for h in result.history if "val_loss" in h] == [4, 8, 12, 16]  # the saved history goes on
    # the saved weights, AdamW moments, batch position and random state: it ends where the straight run ends
    assert result.best_val_loss == pytest.approx(expected.best_val_loss, rel=1e-5)
    for name, weight in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], weight, rtol=1e-4, atol=1e-5)


def test_resuming_with_another_loss_weighting_is_refused_and_keeps_the_saved_state(tmp_path, monkeypatch):
    tokenizer, examples = _examples()
    pad = tokenizer.pad_token_id
    cfg = FitConfig(batch_size=8, learning_rate=3e-3, warmup_steps=2, epochs=2, eval_every=2, device="cpu")

    def lr_at(step, *args):
        if step == 3:  # dies after the state of step 2 was saved
            raise _Killed
        return real_lr_at(step, *args)

    real_lr_at = fit_module._lr_at
    monkeypatch.setattr(fit_module, "_lr_at", lr_at)
    with pytest.raises(_Killed):
        fit(_model(tokenizer), examples, examples[:8], pad_id=pad, cfg=cfg, work_dir=tmp_path, progress=False)
    saved = (tmp_path / fit_module.STATE_FILE).read_bytes()

    weighted = dataclasses.replace(cfg, mention_weight=3.0)
    with pytest.raises(fit_module.ResumeError, match=r"mention_weight 1.0 \(now 3.0\).*--no-resume"):
        fit(_model(tokenizer), examples, examples[:8], pad_id=pad, cfg=weighted, work_dir=tmp_path, progress=False)
    assert (tmp_path / fit_module.STATE_FILE).read_bytes() == saved  # the interrupted run can still resume
    monkeypatch.setattr(fit_module, "_lr_at", real_lr_at)
    assert fit(_model(tokenizer), examples, examples[:8], pad_id=pad, cfg=cfg, work_dir=tmp_path,
               progress=False).steps == 8


def test_a_checkpoint_round_trips_with_its_manifest(tiny):
    manifest = load_manifest(tiny)
    assert manifest["format_version"] == checkpoint.MANIFEST_FORMAT
    assert manifest["prompt"]["length_codes"] == {"short": "[LEN_S]", "medium": "[LEN_M]", "long": "[LEN_L]"}
    assert manifest["tokenizer"].startswith("char:corpus:")
    assert set(manifest["metrics"]) >= {"val_loss", "val_perplexity"}
    assert (tiny / "loss.png").stat().st_size > 1000
    assert not list(tiny.glob("*.bin")) and list(tiny.glob("*.safetensors"))
    model, tokenizer, _ = checkpoint.load_model_and_tokenizer(tiny)
    text = "白色上衣"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    assert model.config.n_layer == TINY.n_layer


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "copygen.json").unlink(), "copygen.json is missing"),
    (lambda d: (d / "copygen.json").write_text("{not json"), "unreadable"),
    (lambda d: (d / "copygen.json").write_text(json.dumps({"format_version": 99})), "lacks"),
    (lambda d: (d / "model.safetensors").unlink(), "no *.safetensors"),
    (lambda d: (d / "pytorch_model.bin").write_bytes(b"\x80\x04pickle"), "refusing pickle"),
    (lambda d: (d / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "evil.Model"}})), "custom code"),
])
def test_a_damaged_checkpoint_is_refused_with_one_line(tiny, tmp_path, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    damage(broken)
    with pytest.raises(CheckpointError) as exc:
        Generator.load(broken, device="cpu")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_corrupt_weights_file_is_refused(tiny, tmp_path):
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot load the model"):
        Generator.load(broken, device="cpu")


def test_a_manifest_of_a_newer_format_is_refused(tiny, tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(tiny, newer)
    manifest = json.loads((newer / "copygen.json").read_text())
    manifest["format_version"] = checkpoint.MANIFEST_FORMAT + 1
    (newer / "copygen.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="manifest format"):
        load_manifest(newer)


def test_generation_gives_k_variants_that_start_with_the_opening(tiny):
    generator = Generator.load(tiny, device="cpu", batch_size=4)
    requests = [Request("类型#上衣*颜色#白色", variants=3, opening="新品上市，"),
                Request("类型#裙*颜色#黑色*风格#复古", variants=2)]
    texts = generator.generate(requests, seed=7, max_new_tokens=30)
    assert [len(t) for t in texts] == [3, 2]
    assert all(t.startswith("新品上市，") and len(t) > len("新品上市，") for t in texts[0])
    assert all("[" not in t for variants in texts for t in variants)  # no control codes leak out


def test_generation_with_a_seed_is_repeatable(tiny):
    generator = Generator.load(tiny, device="cpu")
    requests = [Request("类型#裤*版型#宽松", variants=2)]
    assert generator.generate(requests, seed=11, max_new_tokens=20) == \
        generator.generate(requests, seed=11, max_new_tokens=20)


def test_banned_phrases_are_blocked_at_decode_time(tiny):
    generator = Generator.load(tiny, device="cpu")
    tokenizer = generator.tokenizer
    # "百搭" stands in for a banned term: the tiny corpus writes it often, so after "百" the model
    # would likely continue with "搭" — and at high temperature, surely some of the time.
    table = generator._banned_table(["百搭"])
    assert table == {(tokenizer.convert_tokens_to_ids("百"),): {tokenizer.convert_tokens_to_ids("搭")}}
    free = generator.generate([Request("类型#上衣", variants=12, opening="百")], seed=1, max_new_tokens=2)
    assert any(t.startswith("百搭") for t in free[0])
    blocked = generator.generate([Request("类型#上衣", variants=12, opening="百")], seed=1, max_new_tokens=2,
                                 banned=["百搭"])
    assert not any(t.startswith("百搭") for t in blocked[0])


def test_greedy_decoding_ignores_the_seed(tiny):
    generator = Generator.load(tiny, device="cpu")
    requests = [Request("类型#上衣*颜色#白色")]
    assert generator.generate(requests, greedy=True, seed=1, max_new_tokens=20) == \
        generator.generate(requests, greedy=True, seed=2, max_new_tokens=20)
