"""Generation throughput of copygen against its peers and the machine's limit, in one run (issue 5).

A benchmark, not a test. Every measured row runs in its own child process (a fresh interpreter:
its peak RSS is its own), one after the other, on the same prompts, the same number of variants,
the same token budget with natural end-of-sequence, and the same sampling settings:

  (1) loop     the original recipe: one `model.generate(num_return_sequences=k)` per product
  (2) batched  plain Hugging Face `generate` over left-padded batches of products
  (3) engine   copygen's Generator, the code the worker runs (banned phrases blocked, as there)
  (4) ct2      CTranslate2 on the converted checkpoint, float32 and int8 (when `import ctranslate2`
               works: `pip install 'copygen[bench]'`)
  (5) limit    the measured matmul rate / FLOPs per generated token, where FLOPs per token =
               2 x non-embedding parameters + 2 x d_model x vocab (LM head)
               + 4 x layers x d_model x mean attended context (QK^T and AV)

Usage (the README has the same commands):

    python bench/throughput.py --checkpoint models/demo                  # the table, rows 1-5
    python bench/throughput.py --checkpoint models/demo --mode e2e       # enqueue -> Redis -> worker -> PostgreSQL
    python bench/throughput.py --mode db                                 # variant rows/s, 100k-product submission
    python bench/throughput.py --mode train --preset demo                # trainer tokens/s vs 6 x params
    python bench/throughput.py --mode quality --products 64              # bfloat16 vs float32 greedy copy
    python bench/throughput.py --make-checkpoint small --out var/bench/random-small   # random weights

Results print as a table and go to --json (var/bench/<mode>.json by default).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from copygen.catalogue import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

DEFAULT_CATALOGUE = ROOT / "samples" / "advertisegen_sample.jsonl"
RESULT = "BENCH-RESULT "  # the line a child prints its measurement on
E2E_BROKER = "redis://127.0.0.1:6379/11"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SAMPLE = {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P}  # the worker's defaults


# -- inputs --------------------------------------------------------------------------------------


def read_products(path: Path, limit: int | None):
    """Products of a catalogue (.csv/.xlsx/.jsonl) or of AdvertiseGen lines ({"content": ...})."""
    from copygen.catalogue import Product, parse_attributes, read_catalogue

    first = path.open(encoding="utf-8").readline() if path.suffix in (".jsonl", ".json") else ""
    if first.lstrip().startswith("{") and '"content"' in first:
        products = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if limit and len(products) >= limit:
                    break
                products.append(Product(external_id=f"adgen-{n + 1}", attributes=parse_attributes(
                    json.loads(line)["content"])))
    else:
        products, _ = read_catalogue(path)
        products = products[:limit] if limit else products
    return products


def model_shape(checkpoint: Path) -> dict:
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    d = config["n_embd"]
    inner = config.get("n_inner") or 4 * d
    layer = 3 * d * d + 3 * d + d * d + d + 2 * d * inner + inner + d + 4 * d  # attention, MLP, 2 LayerNorms
    return {"layers": config["n_layer"], "d_model": d, "vocab": config["vocab_size"],
            "positions": config["n_positions"], "non_embedding_params": config["n_layer"] * layer + 2 * d}


def flops_per_token(shape: dict, context: float) -> float:
    return (2 * shape["non_embedding_params"] + 2 * shape["d_model"] * shape["vocab"]
            + 4 * shape["layers"] * shape["d_model"] * context)


def model_bytes(checkpoint: Path) -> int:
    return sum(p.stat().st_size for p in checkpoint.glob("*.safetensors"))


# -- child processes: one measurement each -------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _prompts(spec):
    """(generator wrapper for prompt ids, requests, prompt ids per product) — the engine's prompts."""
    from trainer.checkpoint import load_model_and_tokenizer
    from trainer.generation import Generator, Request, pick_dtype

    dtype = pick_dtype(spec["device"], spec.get("dtype", "float32"))
    model, tokenizer, manifest = load_model_and_tokenizer(Path(spec["checkpoint"]), device=spec["device"], dtype=dtype)
    wrapper = Generator(model, tokenizer, manifest, spec["device"], spec["batch_size"])
    requests = [Request(source, variants=spec["variants"]) for source in spec["sources"]]
    return wrapper, requests, [wrapper.prompt_ids(r, spec["budget"]) for r in requests]


def _hf_counts(out, prompt_width: int, eos: int, pad: int) -> list[int]:
    counts = []
    for row in out[:, prompt_width:].tolist():
        n = 0
        for t in row:
            if t in (eos, pad):
                break
            n += 1
        counts.append(n)
    return counts


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def row_hf(spec, batched: bool) -> dict:
    import torch

    gen, _, prompts = _prompts(spec)
    model, k = gen.model, spec["variants"]
    kwargs = {"do_sample": True, "temperature": spec["temperature"], "top_p": spec["top_p"], "top_k": 0,
                  "max_new_tokens": spec["budget"], "eos_token_id": gen.eos_id, "pad_token_id": gen.pad_id,
                  "num_return_sequences": k}
    per_batch = max(1, spec["batch_size"] // k) if batched else 1
    limit = spec.get("loop_products") if not batched else None
    prompts = prompts[:limit] if limit else prompts

    def run(prompts, **extra):
        counts = []
        for start in range(0, len(prompts), per_batch):
            part = prompts[start:start + per_batch]
            width = max(len(p) for p in part)
            ids = torch.full((len(part), width), gen.pad_id, dtype=torch.long)
            mask = torch.zeros((len(part), width), dtype=torch.long)
            for r, p in enumerate(part):  # left padding
                ids[r, width - len(p):] = torch.tensor(p)
                mask[r, width - len(p):] = 1
            with torch.inference_mode():
                out = model.generate(ids.to(gen.device), attention_mask=mask.to(gen.device), **{**kwargs, **extra})
            counts += _hf_counts(out.cpu(), width, gen.eos_id, gen.pad_id)
        return counts

    torch.manual_seed(spec["seed"])
    run(prompts[:2], max_new_tokens=8)  # warm-up
    _sync(spec["device"])
    started = time.perf_counter()
    counts = run(prompts)
    _sync(spec["device"])
    seconds = time.perf_counter() - started
    return {"tokens": sum(counts), "seconds": seconds, "products": len(prompts), "sequences": len(counts)}


def row_engine(spec) -> dict:
    from copygen.compliance import load_lexicon
    from trainer.generation import NO_REPEAT_NGRAM, Generator, Request

    engine = Generator.load(spec["checkpoint"], device=spec["device"], batch_size=spec["batch_size"],
                            dtype=spec["dtype"])
    banned = load_lexicon().terms  # as the worker passes them
    requests = [Request(source, variants=spec["variants"]) for source in spec["sources"]]
    sample = {"temperature": spec["temperature"], "top_p": spec["top_p"], "max_new_tokens": spec["budget"],
              "banned": banned, "no_repeat_ngram": NO_REPEAT_NGRAM}  # as the worker decodes
    engine.generate(requests[:2], seed=0, **{**sample, "max_new_tokens": 8})  # warm-up
    profile = None
    if spec.get("profile"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    _sync(spec["device"])
    started = time.perf_counter()
    ids = engine.generate_ids(requests, seed=spec["seed"], **sample)
    texts = engine.tokenizer.batch_decode([row for variants in ids for row in variants], skip_special_tokens=True)
    _sync(spec["device"])
    seconds = time.perf_counter() - started
    if profile is not None:
        import io
        import pstats

        profile.disable()
        buffer = io.StringIO()
        pstats.Stats(profile, stream=buffer).sort_stats("tottime").print_stats(14)
        print(buffer.getvalue(), file=sys.stderr)
    prompt_len = [len(engine.prompt_ids(r, spec["budget"])) for r in requests]
    counts = [(p, len(row)) for p, variants in zip(prompt_len, ids) for row in variants]
    context = sum(n * p + n * (n - 1) / 2 for p, n in counts) / max(1, sum(n for _, n in counts))
    return {"tokens": sum(n for _, n in counts), "seconds": seconds, "products": len(requests),
            "sequences": len(counts), "mean_context": context, "texts": texts[:3],
            "dtype": str(next(engine.model.parameters()).dtype).removeprefix("torch.")}


def row_candidates(spec) -> dict:
    """The engine alone writing the worker's first pass: k x oversample candidates per product, each
    product's excluded words blocked and its own values nudged, the worker's token budget."""
    from copygen.catalogue import JobSettings, Product
    from copygen.compliance import banned_phrases_for_decoding, load_lexicon
    from trainer.generation import NO_REPEAT_NGRAM, Generator
    from worker.pipeline import candidate_requests

    engine = Generator.load(spec["checkpoint"], device=spec["device"], batch_size=spec["batch_size"],
                            dtype=spec["dtype"])
    products = [Product.from_json(p) for p in spec["products"]]
    nudge = tuple(spec["nudge"])
    requests = candidate_requests(products, JobSettings(variants=spec["variants"], length="medium"),
                                  spec["variants"] * spec["oversample"], nudge)  # as the worker asks
    sample = {"temperature": spec["temperature"], "top_p": spec["top_p"], "nudge": nudge,
              "banned": banned_phrases_for_decoding(load_lexicon()), "no_repeat_ngram": NO_REPEAT_NGRAM}
    engine.generate_candidates(requests[:2], seed=0, **{**sample, "max_new_tokens": 8})  # warm-up
    _sync(spec["device"])
    started = time.perf_counter()
    candidates = engine.generate_candidates(requests, seed=spec["seed"], **sample)
    _sync(spec["device"])
    seconds = time.perf_counter() - started
    return {"tokens": sum(c.tokens for row in candidates for c in row), "seconds": seconds,
            "products": len(requests), "sequences": sum(len(row) for row in candidates)}


def convert_ct2(checkpoint: Path, quantization: str) -> Path:
    import ctranslate2

    out = ROOT / "var" / "bench" / "ct2" / f"{checkpoint.resolve().name}-{quantization}"
    stamp = out / "source.json"
    source = {"checkpoint": str(checkpoint.resolve()), "mtime": (checkpoint / "config.json").stat().st_mtime,
              "weights": model_bytes(checkpoint)}
    if not stamp.exists() or json.loads(stamp.read_text()) != source:
        out.parent.mkdir(parents=True, exist_ok=True)
        ctranslate2.converters.TransformersConverter(str(checkpoint)).convert(
            str(out), quantization=None if quantization == "float32" else quantization, force=True)
        stamp.write_text(json.dumps(source))
    return out


def row_ct2(spec) -> dict:
    import ctranslate2
    from transformers import AutoTokenizer

    from copygen import prompt as prompt_format
    from trainer.generation import Generator, Request

    quantization = spec["quantization"]
    path = convert_ct2(Path(spec["checkpoint"]), quantization)
    tokenizer = AutoTokenizer.from_pretrained(spec["checkpoint"])

    # Generator.prompt_ids needs only the tokenizer and the model's positions: the same prompt ids.
    shim = SimpleNamespace(tokenizer=tokenizer, max_positions=spec["positions"], _heads={})
    prompts = [tokenizer.convert_ids_to_tokens(Generator.prompt_ids(shim, Request(s), spec["budget"]))
               for s in spec["sources"]]
    compute = {"float32": "float32", "int8": "int8"}[quantization]
    if spec["device"].startswith("cuda"):
        compute = {"float32": "bfloat16", "int8": "int8_bfloat16"}[quantization]
    generator = ctranslate2.Generator(str(path), device="cuda" if spec["device"].startswith("cuda") else "cpu",
                                      compute_type=compute, intra_threads=spec["threads"] or 0)
    kwargs = {"max_batch_size": max(1, spec["batch_size"] // spec["variants"]), "sampling_topk": 0,
                  "sampling_topp": spec["top_p"], "sampling_temperature": spec["temperature"],
                  "num_hypotheses": spec["variants"], "include_prompt_in_result": False, "end_token": prompt_format.EOS,
                  "max_length": spec["budget"]}
    generator.generate_batch(prompts[:2], **{**kwargs, "max_length": 8})  # warm-up
    started = time.perf_counter()
    results = generator.generate_batch(prompts, **kwargs)
    seconds = time.perf_counter() - started
    counts = [len(seq) for r in results for seq in r.sequences_ids]
    return {"tokens": sum(counts), "seconds": seconds, "products": len(prompts), "sequences": len(counts),
            "compute_type": compute}


def row_matmul(spec) -> dict:
    """GFLOP/s of an n x n x n matmul in float32 and bfloat16: best of 5 after warming up."""
    import torch

    n, rates = spec.get("n", 2048), {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.randn(n, n, device=spec["device"]).to(dtype)
        b = torch.randn(n, n, device=spec["device"]).to(dtype)
        best = float("inf")
        for rep in range(7):
            _sync(spec["device"])
            started = time.perf_counter()
            torch.mm(a, b)
            _sync(spec["device"])
            if rep >= 2:
                best = min(best, time.perf_counter() - started)
        rates[name] = 2 * n**3 / best / 1e9
    return {"gflops": rates, "n": n}


CHILD_ROWS = {
    "loop": lambda spec: row_hf(spec, batched=False),
    "batched": lambda spec: row_hf(spec, batched=True),
    "engine": row_engine,
    "candidates": row_candidates,
    "ct2": row_ct2,
    "matmul": row_matmul,
}


def child_main(kind: str, spec_path: str) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec.get("threads"):
        import torch

        torch.set_num_threads(spec["threads"])
    result = CHILD_ROWS[kind](spec)
    result["peak_rss_mb"] = peak_rss_mb()
    print(RESULT + json.dumps(result, ensure_ascii=False), flush=True)


def run_child(kind: str, spec: dict, timeout: float = 3600) -> dict:
    """Run one measurement in a fresh interpreter and return what it printed."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(spec, fh, ensure_ascii=False)
    try:
        done = subprocess.run([sys.executable, __file__, "--child", kind, fh.name], check=False, cwd=ROOT, text=True,
                              capture_output=True, timeout=timeout)
    finally:
        os.unlink(fh.name)
    if spec.get("profile") and done.stderr:
        print(done.stderr, file=sys.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip(" ^~")]
    raise RuntimeError(f"{kind} failed (exit {done.returncode}): " + " | ".join(lines[-3:]))


# -- mode: the table -----------------------------------------------------------------------------


def bf16_native(device: str) -> bool:
    from trainer.fit import bf16_available

    return bf16_available(device)


def table_specs(args, sources: list[str], shape: dict) -> list[tuple[str, str, dict]]:
    from trainer.generation import DEFAULT_MAX_NEW_TOKENS

    budget = min(args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS["medium"], shape["positions"] // 2)
    base = {"checkpoint": str(args.checkpoint), "device": args.device, "sources": sources,
            "variants": args.variants, "budget": budget, "seed": args.seed, "batch_size": args.batch_size,
            "threads": args.threads, "positions": shape["positions"], "vocab": shape["vocab"],
            "loop_products": args.loop_products, **SAMPLE}
    rows = args.rows.split(",")
    specs = []
    if "loop" in rows:
        specs.append(("(1) per-product model.generate loop", "loop", {**base, "dtype": "float32"}))
    if "batched" in rows:
        specs.append(("(2) HF generate, left-padded batches", "batched", {**base, "dtype": "float32"}))
    if "engine" in rows:
        dtypes = args.engine_dtypes.split(",") if args.engine_dtypes else \
            ["float32"] + (["bfloat16"] if bf16_native(args.device) else [])
        for dtype in dtypes:
            specs.append((f"(3) copygen engine, {dtype}", "engine", {**base, "dtype": dtype, "profile": args.profile}))
    if "ct2" in rows:
        try:
            import ctranslate2  # noqa: F401
        except ImportError:
            print("CTranslate2 is not installed (pip install 'copygen[bench]'): rows (4) skipped", file=sys.stderr)
        else:
            for quantization in ("float32", "int8"):
                specs.append((f"(4) CTranslate2 {quantization}", "ct2", {**base, "quantization": quantization}))
    return specs


def mode_table(args) -> dict:
    shape = model_shape(args.checkpoint)
    products = read_products(args.catalogue, args.products)
    sources = [p.source() for p in products]
    specs = table_specs(args, sources, shape)
    results = []
    for label, kind, spec in specs:
        print(f"... {label}", file=sys.stderr, flush=True)
        try:
            measured = run_child(kind, spec)
        except Exception as exc:  # noqa: BLE001  (a failed peer is reported, the others still run)
            print(f"    failed: {exc}", file=sys.stderr)
            results.append({"row": label, "kind": kind, "error": str(exc)})
            continue
        measured.update(row=label, kind=kind, tokens_per_s=measured["tokens"] / measured["seconds"],
                        products_per_s=measured["products"] / measured["seconds"])
        print(f"    {measured['tokens_per_s']:,.0f} tokens/s, {measured['products_per_s']:.2f} products/s",
              file=sys.stderr, flush=True)
        results.append(measured)
    matmul = run_child("matmul", {"device": args.device, "threads": args.threads})
    return summarise(args, shape, products, specs, results, matmul)


def summarise(args, shape, products, specs, results, matmul) -> dict:
    ok = [r for r in results if "error" not in r]
    loop = next((r for r in ok if r["kind"] == "loop"), None)
    peers = [r for r in ok if r["kind"] in ("loop", "batched", "ct2")]
    best_peer = max(peers, key=lambda r: r["tokens_per_s"]) if peers else None
    engines = [r for r in ok if r["kind"] == "engine"]
    context = engines[0]["mean_context"] if engines else shape["positions"] / 2
    fpt = flops_per_token(shape, context)
    limits = {dtype: rate * 1e9 / fpt for dtype, rate in matmul["gflops"].items()}
    for r in ok:
        r["x_loop"] = r["tokens_per_s"] / loop["tokens_per_s"] if loop else None
        r["x_best_peer"] = r["tokens_per_s"] / best_peer["tokens_per_s"] if best_peer else None
        dtype = r.get("dtype", "float32")
        r["limit_dtype"] = dtype if dtype in limits else "float32"
        r["of_limit"] = r["tokens_per_s"] / limits[r["limit_dtype"]]
    spec = specs[0][2] if specs else {}
    return {
        "mode": "table", "checkpoint": str(args.checkpoint), "device": args.device, "threads": args.threads,
        "products": len(products), "variants": args.variants, "budget": spec.get("budget"),
        "batch_size": args.batch_size, "sampling": SAMPLE, "shape": shape, "mean_context": context,
        "flops_per_token": fpt, "matmul_gflops": matmul["gflops"], "limit_tokens_per_s": limits,
        "best_peer": best_peer["row"] if best_peer else None, "rows": results,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def print_table(summary: dict) -> None:
    s = summary
    shape = s["shape"]
    print(f"checkpoint {s['checkpoint']} ({shape['layers']} layers x {shape['d_model']}, vocab {shape['vocab']}, "
          f"{shape['non_embedding_params'] / 1e6:.1f}M non-embedding parameters) on {s['device']}, "
          f"{s['threads'] or 'default'} threads")
    print(f"{s['products']} products x {s['variants']} variants, up to {s['budget']} new tokens (natural EOS), "
          f"temperature {s['sampling']['temperature']}, top-p {s['sampling']['top_p']}, batch {s['batch_size']} rows")
    header = f"{'row':<40} {'tokens/s':>10} {'products/s':>11} {'x (1)':>7} {'x best peer':>12} {'of limit':>9} " \
             f"{'peak RSS':>9}"
    print(header)
    print("-" * len(header))
    for r in s["rows"]:
        if "error" in r:
            print(f"{r['row']:<40} failed: {r['error'][:70]}")
            continue
        x_loop = f"{r['x_loop']:.1f}x" if r.get("x_loop") else "-"
        x_peer = f"{r['x_best_peer']:.2f}x" if r.get("x_best_peer") else "-"
        print(f"{r['row']:<40} {r['tokens_per_s']:>10,.0f} {r['products_per_s']:>11.2f} {x_loop:>7} {x_peer:>12} "
              f"{r['of_limit']:>8.1%} {r['peak_rss_mb']:>7.0f}MB")
    for dtype, limit in s["limit_tokens_per_s"].items():
        print(f"{'(5) compute limit, ' + dtype:<40} {limit:>10,.0f}   = {s['matmul_gflops'][dtype]:,.0f} GFLOP/s "
              f"matmul / {s['flops_per_token'] / 1e6:.2f} MFLOP per token")
    print(f"FLOPs per token = 2 x {shape['non_embedding_params'] / 1e6:.2f}M non-embedding params + 2 x "
          f"{shape['d_model']} x {shape['vocab']} (LM head) + 4 x {shape['layers']} x {shape['d_model']} x "
          f"{s['mean_context']:.0f} (attention over the mean context); best peer: {s['best_peer']}")


# -- mode: bfloat16 quality ----------------------------------------------------------------------


def mode_quality(args) -> dict:
    """What the engine's reduced precision changes, against float32 weights with a float32 KV
    cache: the bfloat16 KV cache (the default on CPU), and bfloat16 weights on top. Greedy copy
    (identical? where does it first differ?) on the same prompts, and the per-token loss of the
    reference copy under each weight dtype."""
    import torch

    from trainer.generation import Generator, Request

    lines = [json.loads(line) for line in args.catalogue.open(encoding="utf-8")][: args.products]
    requests = [Request(line["content"]) for line in lines]
    configs = {"float32 weights, float32 cache": ("float32", "matmul"),
               "float32 weights, bfloat16 cache (default)": ("float32", "auto"),
               "bfloat16 weights, bfloat16 cache": ("bfloat16", "auto")}
    out = {}
    for label, (dtype, attention) in configs.items():
        engine = Generator.load(args.checkpoint, device=args.device, batch_size=args.batch_size, dtype=dtype,
                                attention=attention)
        started = time.perf_counter()
        ids = [v[0] for v in engine.generate_ids(requests, greedy=True, max_new_tokens=args.max_new_tokens)]
        seconds = time.perf_counter() - started
        nll, count = 0.0, 0
        with torch.inference_mode():
            for request, line in zip(requests, lines):
                prompt = engine.prompt_ids(request, 200)
                target = engine.tokenizer.encode(line["summary"], add_special_tokens=False)[:190] + [engine.eos_id]
                x = torch.tensor([prompt + target])
                logits = engine.model(input_ids=x).logits[0, len(prompt) - 1:-1].float()
                nll += torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="sum").item()
                count += len(target)
        out[label] = {"ids": ids, "loss": nll / count, "tokens_per_s": sum(map(len, ids)) / seconds}

    def first_difference(x, y):
        return next((i for i, (s, t) in enumerate(zip(x, y)) if s != t), min(len(x), len(y)))

    reference = out["float32 weights, float32 cache"]["ids"]
    rows = {}
    for label, o in out.items():
        agree = [first_difference(x, y) / max(1, len(x)) for x, y in zip(reference, o["ids"])]
        rows[label] = {"identical": sum(x == y for x, y in zip(reference, o["ids"])),
                       "mean_agreeing_prefix": sum(agree) / len(agree), "loss": o["loss"],
                       "greedy_tokens_per_s": o["tokens_per_s"]}
    return {"mode": "quality", "checkpoint": str(args.checkpoint), "prompts": len(reference), "rows": rows,
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def print_quality(s: dict) -> None:
    print(f"{s['checkpoint']}: greedy copy for {s['prompts']} AdvertiseGen prompts against float32 weights with "
          "a float32 cache; loss = per-token loss of the reference copy (teacher-forced, weights' dtype)")
    print(f"{'configuration':<44} {'identical':>10} {'agreeing prefix':>16} {'loss':>8} {'greedy tok/s':>13}")
    for label, r in s["rows"].items():
        print(f"{label:<44} {r['identical']:>4} of {s['prompts']:<3} {r['mean_agreeing_prefix']:>15.0%} "
              f"{r['loss']:>8.4f} {r['greedy_tokens_per_s']:>13,.0f}")


# -- mode: end to end ----------------------------------------------------------------------------


def fresh_database(tag: str) -> str:
    from sqlalchemy import create_engine, text

    from db.engine import upgrade

    name = f"copygen_bench_{tag}_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int, name: str) -> float:
    """One unlabelled sample of the worker's Prometheus /metrics."""
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise RuntimeError(f"the worker's /metrics has no {name}")


def peak_rss_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mode_e2e(args) -> dict:
    import signal

    from copygen.catalogue import JobSettings
    from copygen.settings import Settings
    from db.engine import make_engine, session_scope
    from db.jobs import job_progress
    from db.variants import job_variants
    from worker.submit import submit, wait_for_job

    shape = model_shape(args.checkpoint)
    products = read_products(args.catalogue, args.products)
    sources = [p.source() for p in products]
    defaults = Settings()
    _, _, spec = next(s for s in table_specs(args, sources, shape) if s[1] == "engine")
    spec = {**spec, "dtype": "auto", "products": [p.to_json() for p in products],  # the worker's dtype
            "oversample": defaults.oversample, "nudge": [defaults.nudge_start, defaults.nudge_follow]}
    label = (f"the engine alone, the worker's first pass ({args.variants} x {defaults.oversample} candidates "
             "per product, one call)")
    print(f"... {label}", file=sys.stderr, flush=True)
    engine_row = run_child("candidates", spec)
    engine_row["products_per_s"] = engine_row["products"] / engine_row["seconds"]
    engine_row["tokens_per_s"] = engine_row["tokens"] / engine_row["seconds"]
    metrics_port = free_port()

    url = fresh_database("e2e")
    flush_redis(E2E_BROKER)
    env = {**os.environ, "COPYGEN_DATABASE_URL": url, "COPYGEN_BROKER_URL": E2E_BROKER,
           "COPYGEN_CHECKPOINT": str(args.checkpoint.resolve()), "COPYGEN_DEVICE": args.device,
           "COPYGEN_BATCH_SIZE": str(args.batch_size), "COPYGEN_METRICS_PORT": str(metrics_port)}
    if args.chunk_size:
        env["COPYGEN_CHUNK_SIZE"] = str(args.chunk_size)
    log_path = ROOT / "var" / "bench" / "e2e-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "solo", "-c", "1",
         "-Q", "interactive,batch,celery", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while " ready." not in log_path.read_text(errors="ignore"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {log_path}")
            time.sleep(0.5)
        settings = Settings(database_url=url, broker_url=E2E_BROKER, checkpoint=args.checkpoint,
                            chunk_size=args.chunk_size or Settings().chunk_size, batch_size=args.batch_size)
        print(f"... end to end: {len(products)} products through Redis, a worker and PostgreSQL",
              file=sys.stderr, flush=True)
        started = time.perf_counter()
        job_id = submit(products, JobSettings(variants=args.variants, length="medium"), settings=settings).job_id
        submitted = time.perf_counter()
        engine = make_engine(url)
        progress = wait_for_job(engine, job_id, poll=0.2, timeout=3600)
        seconds = time.perf_counter() - started
        rss = peak_rss_of(worker.pid)
        generated = scrape(metrics_port, "copygen_tokens_generated_total")
        with session_scope(engine) as s:
            variants = job_variants(s, job_id)
            progress = job_progress(s, job_id)
        engine.dispose()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        drop_database(url)
        flush_redis(E2E_BROKER)
    e2e_rate = len(products) / seconds
    worker_tokens_per_s = generated / seconds
    weights = model_bytes(args.checkpoint)
    return {
        "mode": "e2e", "checkpoint": str(args.checkpoint), "products": len(products), "variants": args.variants,
        "status": progress["status"], "seconds": seconds, "submit_seconds": submitted - started,
        "products_per_s": e2e_rate, "engine_products_per_s": engine_row["products_per_s"],
        "engine_row": {k: v for k, v in engine_row.items() if k != "texts"}, "engine_label": label,
        "worker_tokens": generated, "worker_tokens_per_s": worker_tokens_per_s,
        "engine_tokens_per_s": engine_row["tokens_per_s"],
        "fraction_of_engine": worker_tokens_per_s / engine_row["tokens_per_s"],
        "variants_stored": len(variants), "flagged": progress["flagged"],
        "regenerations": sum(v["regenerations"] for v in variants),
        "worker_peak_rss_mb": rss, "model_mb": weights / 2**20, "rss_budget_mb": weights / 2**20 + 400,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def print_e2e(s: dict) -> None:
    print(f"end to end: {s['products']} products x {s['variants']} variants, enqueue -> Redis -> worker -> "
          f"PostgreSQL: {s['seconds']:.1f} s, job {s['status']}")
    print(f"{'products/s end to end':<44} {s['products_per_s']:>8.2f}")
    print(f"{'products/s of the engine alone':<44} {s['engine_products_per_s']:>8.2f}   ({s['engine_label']})")
    print(f"{'generated tokens/s end to end (all rounds)':<44} {s['worker_tokens_per_s']:>8.0f}   "
          f"({s['worker_tokens']:,.0f} tokens, the worker's copygen_tokens_generated_total)")
    print(f"{'generated tokens/s of the engine alone':<44} {s['engine_tokens_per_s']:>8.0f}")
    print(f"{'end to end as a fraction of the engine':<44} {s['fraction_of_engine']:>8.1%}   (tokens/s; "
          "target >= 85%)")
    print(f"{'variants stored / flagged / regenerations':<44} {s['variants_stored']} / {s['flagged']} / "
          f"{s['regenerations']}")
    print(f"{'worker peak RSS':<44} {s['worker_peak_rss_mb']:>6.0f}MB   (target <= model {s['model_mb']:.0f}MB "
          f"+ 400MB = {s['rss_budget_mb']:.0f}MB)")


# -- mode: database ------------------------------------------------------------------------------


def synthetic_products(n: int, catalogue: Path) -> list[dict]:
    base = read_products(catalogue, 300)
    out = []
    for i in range(n):
        p = base[i % len(base)]
        out.append({"external_id": f"SKU-{i:07d}", "title": f"商品 {i}", "category": "上衣",
                    "attributes": {k: list(v) for k, v in p.attributes.items()},
                    "description": "通勤和日常都好搭的基础款。"})
    return out


def mode_db(args) -> dict:
    from sqlalchemy import delete, select

    from copygen.catalogue import JobSettings, validate_products
    from copygen.settings import Settings
    from db.engine import make_engine, session_scope
    from db.models import JobItem, Variant
    from db.variants import upsert_variants
    from worker import runtime
    from worker.dispatch import send_chunks
    from worker.submit import submit, write_job

    n = args.submit_products
    rows = synthetic_products(n, args.catalogue)
    url = fresh_database("db")
    flush_redis(E2E_BROKER)
    settings = Settings(database_url=url, broker_url=E2E_BROKER)
    job = JobSettings(variants=args.variants)
    try:
        print(f"... submitting {n:,} products (validate, one transaction, enqueue)", file=sys.stderr, flush=True)
        started = time.perf_counter()
        submission = submit(rows, job, settings=settings)
        submit_seconds = time.perf_counter() - started
        # The same three phases timed one by one, for the breakdown.
        started = time.perf_counter()
        products, _ = validate_products(rows)
        validate_seconds = time.perf_counter() - started
        engine = make_engine(url)
        started = time.perf_counter()
        with session_scope(engine) as s:
            job_id, _ = write_job(s, products, job, settings=settings, idempotency_key=None)
        write_seconds = time.perf_counter() - started
        chunks = (n + settings.chunk_size - 1) // settings.chunk_size
        started = time.perf_counter()
        send_chunks(runtime.current().sender(settings), [(job_id, c, job.queue) for c in range(chunks)])
        enqueue_seconds = time.perf_counter() - started
        flush_redis(E2E_BROKER)

        with session_scope(engine) as s:
            items = s.execute(select(JobItem.id).where(JobItem.job_id == submission.job_id)
                              .order_by(JobItem.item_no)).scalars().all()
        text = "这款上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，通勤和日常都好搭，" * 2
        variant_rows = [{"job_item_id": item, "variant_no": v + 1, "text": text, "rank": v + 1, "score": 0.5,
                         "flags": [] if v else ["length"], "passed": v > 0, "model_version": "bench",
                         "regenerations": 0} for item in items for v in range(args.variants)]
        per_chunk = settings.chunk_size * args.variants
        results = {}
        for label, size, share in (("worker-sized transactions", per_chunk, 0.25), ("5,000-row transactions", 5000, 0.75)):
            part = variant_rows[: int(len(variant_rows) * share)] if label.startswith("worker") else \
                variant_rows[int(len(variant_rows) * 0.25):]
            print(f"... writing {len(part):,} variant rows in {label}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            for start in range(0, len(part), size):
                with session_scope(engine) as s:
                    upsert_variants(s, part[start:start + size])
            seconds = time.perf_counter() - started
            results[label] = {"rows": len(part), "seconds": seconds, "rows_per_s": len(part) / seconds}
        # Several workers write at once: four threads, worker-sized transactions, one connection each.
        from concurrent.futures import ThreadPoolExecutor

        again_rows = variant_rows[: int(len(variant_rows) * 0.25)]
        with session_scope(engine) as s:  # make room: the same rows again, written concurrently
            s.execute(delete(Variant).where(Variant.job_item_id.in_({r["job_item_id"] for r in again_rows})))
        batches = [again_rows[i:i + per_chunk] for i in range(0, len(again_rows), per_chunk)]

        def write(batch):
            with session_scope(engine) as s:
                upsert_variants(s, batch)

        print(f"... writing {len(again_rows):,} variant rows from 4 concurrent writers", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, batches))
        seconds = time.perf_counter() - started
        results["worker-sized, 4 writers"] = {"rows": len(again_rows), "seconds": seconds,
                                              "rows_per_s": len(again_rows) / seconds}
        started = time.perf_counter()
        with session_scope(engine) as s:  # a redelivery: every row conflicts, nothing is written
            again = upsert_variants(s, variant_rows[:per_chunk * 50])
        results["redelivered (all conflicts)"] = {"rows": per_chunk * 50, "seconds": time.perf_counter() - started,
                                                  "written": again}
        results["redelivered (all conflicts)"]["rows_per_s"] = per_chunk * 50 / results[
            "redelivered (all conflicts)"]["seconds"]
        engine.dispose()
    finally:
        drop_database(url)
        flush_redis(E2E_BROKER)
    return {"mode": "db", "products": n, "variants": args.variants, "submit_seconds": submit_seconds,
            "phases": {"validate": validate_seconds, "write (one transaction)": write_seconds,
                       "enqueue": enqueue_seconds},
            "writes": results, "command": " ".join([Path(sys.executable).name, *sys.argv])}


def print_db(s: dict) -> None:
    print(f"submission of {s['products']:,} products: {s['submit_seconds']:.1f} s (target <= 30 s); phases: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in s["phases"].items()))
    for label, w in s["writes"].items():
        print(f"variant rows, {label:<30} {w['rows_per_s']:>10,.0f} rows/s  ({w['rows']:,} rows in {w['seconds']:.2f} s)"
              + ("   (target >= 20,000/s)" if label.startswith("worker-sized") else ""))


# -- mode: training ------------------------------------------------------------------------------


def mode_train(args) -> dict:
    spec = {"preset": args.preset, "tokenizer": str(args.tokenizer), "catalogue": str(args.train_data),
            "seconds": args.train_seconds, "device": args.device, "threads": args.threads}
    print(f"... training the {args.preset} preset for {args.train_seconds:.0f} s", file=sys.stderr, flush=True)
    result = run_child("train", spec)
    matmul = run_child("matmul", {"device": args.device, "threads": args.threads})
    dtype = result["autocast"]
    limit = matmul["gflops"][dtype] * 1e9 / (6 * result["matmul_params"])
    return {"mode": "train", **result, "matmul_gflops": matmul["gflops"], "limit_dtype": dtype,
            "limit_tokens_per_s": limit, "of_limit": result["tokens_per_s"] / limit,
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def row_train(spec) -> dict:
    import tempfile

    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from trainer.data import read_pairs
    from trainer.fit import FitConfig, bf16_available, fit
    from trainer.presets import PRESETS, gpt2_config
    from trainer.train import encode_pair, length_edges

    preset = PRESETS[spec["preset"]]
    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    pairs, _ = read_pairs([Path(spec["catalogue"])])
    edges = length_edges([p.copy for p in pairs])
    examples = [e for e in (encode_pair(tokenizer, p, edges, preset.n_positions) for p in pairs) if e]
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    d = preset.n_embd
    matmul_params = preset.n_layer * 12 * d * d + d * len(tokenizer)  # blocks' weights + the (tied) LM head
    cfg = FitConfig(batch_size=preset.batch_size, learning_rate=preset.learning_rate, warmup_steps=10,
                    epochs=100, max_seconds=spec["seconds"], eval_every=10**9, device=spec["device"])
    with tempfile.TemporaryDirectory() as work:
        result = fit(model, examples, examples[:16], pad_id=tokenizer.pad_token_id, cfg=cfg, work_dir=Path(work),
                     resume=False, progress=False)
    return {"preset": spec["preset"], "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_second, "matmul_params": matmul_params,
            "autocast": "bfloat16" if bf16_available(spec["device"]) else "float32"}


CHILD_ROWS["train"] = row_train


def print_train(s: dict) -> None:
    print(f"training, {s['preset']} preset: {s['tokens_per_s']:,.0f} tokens/s ({s['steps']} steps, "
          f"{s['tokens']:,} tokens in {s['seconds']:.0f} s, {s['autocast']} autocast)")
    print(f"compute limit: {s['matmul_gflops'][s['limit_dtype']]:,.0f} GFLOP/s {s['limit_dtype']} matmul / "
          f"(6 x {s['matmul_params'] / 1e6:.2f}M params) = {s['limit_tokens_per_s']:,.0f} tokens/s; "
          f"the trainer runs at {s['of_limit']:.1%} of it")


# -- random-weight checkpoints for speed-only runs -----------------------------------------------


def make_checkpoint(preset_name: str, out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A checkpoint of the preset's shape with random weights and a trained checkpoint's tokenizer.

    Its copy is noise and rarely ends on its own (every row runs to the token budget): for
    speed only.
    """
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from trainer import checkpoint
    from trainer.presets import PRESETS, gpt2_config

    preset = PRESETS[preset_name]
    if (tokenizer_dir / checkpoint.MANIFEST).is_file():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        source = checkpoint.load_manifest(tokenizer_dir)
        kind, edges = source["tokenizer"], source["prompt"]["length_edges"]
    else:  # no trained checkpoint here (a fresh GPU machine): characters of the committed sample
        from trainer.data import read_pairs
        from trainer.tokenizer import build_char_tokenizer
        from trainer.train import length_edges

        pairs, _ = read_pairs([DEFAULT_CATALOGUE])
        tokenizer = build_char_tokenizer([p.source + p.copy for p in pairs], min_count=1)
        kind, edges = f"char:corpus:{len(tokenizer)}", length_edges([p.copy for p in pairs])
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(gpt2_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    manifest = checkpoint.new_manifest(
        name=f"random-{preset_name}", tokenizer_kind=kind, base=f"scratch:{preset_name}",
        length_edges=edges, data={"note": "random weights, for speed only"},
        training={"preset": preset_name, "seed": seed}, metrics={})
    return checkpoint.save_checkpoint(model.eval(), tokenizer, manifest, out)


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("table", "e2e", "db", "train", "quality"), default="table",
                        help="table: rows 1-5; e2e: through Redis, a worker and PostgreSQL; db: write and "
                             "submission rates; train: trainer tokens/s; quality: bfloat16 vs float32")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "demo", help="checkpoint directory")
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE,
                        help="catalogue (.csv/.xlsx/.jsonl) or AdvertiseGen JSON lines")
    parser.add_argument("--products", type=int, default=32, help="products taken from the catalogue")
    parser.add_argument("--loop-products", type=int, default=None,
                        help="run row (1) on only the first N products (its rates are per product)")
    parser.add_argument("--variants", type=int, default=3, help="variants per product (k)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="token budget per variant (default: the worker's, 200 for medium copy, at most "
                             "half the model's positions)")
    parser.add_argument("--batch-size", type=int, default=96,
                        help="rows per batch (slots of the engine; 96, as COPYGEN_BATCH_SIZE)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--rows", default="loop,batched,engine,ct2", help="which rows of the table to run")
    parser.add_argument("--engine-dtypes", default=None,
                        help="dtypes of row (3), comma-separated (default: float32, and bfloat16 where native)")
    parser.add_argument("--seed", type=int, default=1234, help="sampling seed")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the engine rows to stderr")
    parser.add_argument("--chunk-size", type=int, default=None, help="e2e: products per chunk task")
    parser.add_argument("--submit-products", type=int, default=100_000, help="db: products in the submitted job")
    parser.add_argument("--preset", default="demo", help="train: model preset")
    parser.add_argument("--train-seconds", type=float, default=60.0, help="train: seconds of training")
    parser.add_argument("--train-data", type=Path, default=DEFAULT_CATALOGUE, help="train: AdvertiseGen lines")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "models" / "demo",
                        help="train and --make-checkpoint: checkpoint whose tokenizer to use")
    parser.add_argument("--make-checkpoint", metavar="PRESET", default=None,
                        help="write a random-weight checkpoint of PRESET to --out and exit")
    parser.add_argument("--out", type=Path, default=None, help="--make-checkpoint: where to write it")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (var/bench/<mode>.json)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
        return 0
    args = parse_args(argv)
    if args.make_checkpoint:
        out = args.out or ROOT / "var" / "bench" / f"random-{args.make_checkpoint}"
        print(make_checkpoint(args.make_checkpoint, out, args.tokenizer))
        return 0
    summary = {"table": mode_table, "e2e": mode_e2e, "db": mode_db, "train": mode_train,
               "quality": mode_quality}[args.mode](args)
    {"table": print_table, "e2e": print_e2e, "db": print_db, "train": print_train,
     "quality": print_quality}[args.mode](summary)
    out = args.json or ROOT / "var" / "bench" / f"{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
