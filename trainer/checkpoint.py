"""The checkpoint contract: save_pretrained files (safetensors only) plus the manifest copygen.json.

The worker trusts nothing else: a directory without a compatible manifest, with weights in a
pickle format, or asking for custom code is refused with one line that says why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from copygen import prompt

MANIFEST = "copygen.json"
MANIFEST_FORMAT = 1
PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack", "training_args.bin")
REQUIRED_KEYS = ("format_version", "name", "prompt", "tokenizer", "base", "data", "training", "metrics", "created_at")


class CheckpointError(ValueError):
    """A directory that is not a usable copygen checkpoint; the message is one line."""


def new_manifest(*, name: str, tokenizer_kind: str, base: str, length_edges, data: dict,
                 training: dict, metrics: dict) -> dict:
    return {
        "format_version": MANIFEST_FORMAT,
        "name": name,
        "prompt": {
            "format_version": prompt.FORMAT_VERSION,
            "template": prompt.TEMPLATE,
            "length_codes": dict(zip(prompt.LENGTHS, prompt.LENGTH_CODES)),
            "length_edges": list(length_edges),
            "style_codes": dict(prompt.STYLE_CODES),
        },
        "tokenizer": tokenizer_kind,
        "base": base,
        "data": data,
        "training": training,
        "metrics": metrics,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a checkpoint directory, after checking that the directory is one we can load."""
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    pickles = [name for name in PICKLE_WEIGHTS if (path / name).exists()]
    if pickles:
        raise CheckpointError(f"{path}: refusing pickle weights ({', '.join(pickles)}); only safetensors load")
    if not (path / MANIFEST).is_file():
        raise CheckpointError(f"{path}: not a copygen checkpoint ({MANIFEST} is missing)")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {MANIFEST} is unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: {MANIFEST} must hold a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise CheckpointError(f"{path}: {MANIFEST} lacks {', '.join(missing)}")
    if manifest["format_version"] != MANIFEST_FORMAT:
        raise CheckpointError(f"{path}: manifest format {manifest['format_version']!r}, this copygen reads {MANIFEST_FORMAT}")
    if manifest["prompt"].get("format_version") != prompt.FORMAT_VERSION:
        raise CheckpointError(f"{path}: prompt format {manifest['prompt'].get('format_version')!r} "
                              f"is not this copygen's ({prompt.FORMAT_VERSION})")
    if not list(path.glob("*.safetensors")):
        raise CheckpointError(f"{path}: no *.safetensors weights")
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{path}: config.json is missing")
    try:
        model_config = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: config.json is unreadable ({exc})") from None
    if model_config.get("auto_map"):
        raise CheckpointError(f"{path}: refusing a model that needs custom code (auto_map in config.json)")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise CheckpointError(f"{path}: no tokenizer files")
    return manifest


def load_model_and_tokenizer(directory: str | os.PathLike, *, device: str = "cpu", dtype=None):
    """Model (eval mode) and tokenizer of a validated checkpoint; never runs code from the directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    manifest = load_manifest(directory)
    hf_logging.disable_progress_bar()  # a bar for loading a few MB of weights is noise in worker logs
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            directory, trust_remote_code=False, use_safetensors=True, dtype=dtype,
        )
    except Exception as exc:  # noqa: BLE001  (safetensors raises its own types; any failure is one line)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{directory}: cannot load the model ({first_line})") from None
    return model.to(device).eval(), tokenizer, manifest


def save_checkpoint(model, tokenizer, manifest: dict, out: str | os.PathLike, extra_files: dict | None = None) -> Path:
    """Write a checkpoint atomically: into a temporary sibling directory, then one rename."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, staging / name)
        if out.exists():
            retired = out.with_name(f".{out.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            out.rename(retired)
            staging.rename(out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
