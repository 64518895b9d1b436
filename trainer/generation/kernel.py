"""The fused decode-step attention kernel for CPU: built ahead of time by torch's Inductor in a
child process, once per machine, and loaded with torch's C++ loader (see _attention_kernel).

torch is imported inside the functions (importing trainer.generation does not load it).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

_KERNEL_VERSION = 3
_KERNEL_BUILD = r"""
import os, sys, tempfile, traceback

out, head_dim, lock, failed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    import torch

    class Attention(torch.nn.Module):
        def forward(self, q, keys, values, bias):
            seen = bias.shape[-1]
            scores = (q[:, :, None, :] * keys[:, :, :seen].float()).sum(-1) + bias
            weights = scores.softmax(-1)
            return (weights[..., None] * values[:, :, :seen].float()).sum(2)

    slots, heads = torch.export.Dim("slots", min=2, max=65536), torch.export.Dim("heads", min=2, max=1024)
    span, seen = torch.export.Dim("span", min=4, max=65536), torch.export.Dim("seen", min=2, max=65536)
    keys, values = (torch.zeros(6, 3, 40, head_dim, dtype=torch.bfloat16) for _ in range(2))  # not aliased
    example = (torch.randn(6, 3, head_dim), keys, values, torch.zeros(6, 1, 30))
    program = torch.export.export(Attention(), example, dynamic_shapes=(
        {0: slots, 1: heads}, {0: slots, 1: heads, 2: span}, {0: slots, 1: heads, 2: span}, {0: slots, 2: seen}))
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
        staged = os.path.join(work, os.path.basename(out))
        torch._inductor.aoti_compile_and_package(program, package_path=staged)
        os.replace(staged, out)
except BaseException:
    with open(failed, "w") as fh:
        fh.write(traceback.format_exc())
finally:
    os.unlink(lock)
"""


def _kernel_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copygen" / "kernels"


def _kernel_path(head_dim: int, threads: int) -> Path:
    import torch  # lazy: nothing heavy at import

    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        flags = ""
    # Inductor writes the ISA and the thread count into the kernel: both are part of its name.
    key = f"{_KERNEL_VERSION}|{torch.__version__}|{platform.machine()}|{flags}|{threads}"
    return _kernel_dir() / f"attention-hd{head_dim}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt2"


KERNEL_BUILD_SECONDS = 900  # a build lock older than this belongs to a build that died


def _attention_kernel(head_dim: int, threads: int | None = None, *, wait: bool = False):
    """Decode-step attention over a bfloat16 KV cache as one fused loop (read each cached key and
    value once, accumulate in float32), or None while it is not available.

    torch's Inductor compiles it ahead of time in a child process, once per machine, torch
    version, head size and thread count (~20-40 s, cached under ~/.cache/copygen/kernels), and
    this process loads the shared library with torch's C++ loader: no compiler and none of its
    ~170 MB of Python state in the worker. It reads half the bytes of a float32 cache and beats
    two float32 batched matrix products by ~2.5x (bfloat16 batched products of one query row are
    slow on CPU). The first process that needs it starts the build in the background and carries
    on with the matmul path (wait=True blocks for it instead); a failed build (no C++ compiler)
    is remembered (a .failed file next to it) and not retried.
    """
    import torch  # lazy: nothing heavy at import

    threads = threads or torch.get_num_threads()
    path = _kernel_path(head_dim, threads)
    failed, lock = path.with_suffix(".failed"), path.with_suffix(".building")
    if path.exists():
        return _load_kernel(str(path), head_dim)
    if failed.exists():
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime > KERNEL_BUILD_SECONDS:
            lock.unlink(missing_ok=True)
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # one builder per machine
    except FileExistsError:
        builder = None  # another process is building it
    except OSError as exc:
        log.warning("no fused attention kernel (%s); decoding with batched matrix products", exc)
        return None
    else:
        log.info("building the fused attention kernel for head size %d in the background (once per machine)",
                 head_dim)
        builder = subprocess.Popen(
            [sys.executable, "-c", _KERNEL_BUILD, str(path), str(head_dim), str(lock), str(failed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if not wait:
        return None
    deadline = time.monotonic() + KERNEL_BUILD_SECONDS
    while not path.exists() and not failed.exists() and time.monotonic() < deadline:
        if builder is not None and builder.poll() is not None and not path.exists():
            break
        time.sleep(0.2)
    return _load_kernel(str(path), head_dim) if path.exists() else None


@functools.cache
def _load_kernel(path: str, head_dim: int):
    import torch  # lazy: nothing heavy at import

    try:
        loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
    except Exception as exc:  # noqa: BLE001  (a damaged cache file: the matmul path runs)
        log.warning("cannot load the fused attention kernel %s (%s); decoding with batched matrix products",
                    path, exc)
        return None

    def attend(q, keys, values, bias):
        return loader.boxed_run([q, keys, values, bias])[0]

    g = torch.Generator().manual_seed(0)
    q, bias = torch.randn(5, 3, head_dim, generator=g), torch.zeros(5, 1, 7)
    bias[0, 0, 4:] = float("-inf")
    keys, values = (torch.randn(5, 3, 9, head_dim, generator=g).to(torch.bfloat16) for _ in range(2))
    scores = ((q[:, :, None, :] * keys[:, :, :7].float()).sum(-1) + bias).softmax(-1)
    expected = (scores[..., None] * values[:, :, :7].float()).sum(2)
    if not torch.allclose(attend(q, keys, values, bias), expected, atol=1e-4):
        log.warning("the fused attention kernel at %s gives wrong results; not using it", path)
        return None
    return attend
