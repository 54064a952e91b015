"""open_clip's PyTorch training step for the architecture of an mvl CLIP config, timed
the way mvl.bench times mvl's step: `python -m mvl.bench ... --compare open_clip`.

Same sizes (image and patch size, widths, depths, heads, MLP widths, text length,
vocabulary, embedding size, activation), same batch, the config's compute dtype (float32,
or bfloat16 as torch autocast), AdamW with the config's hyperparameters and gradient
clipping, open_clip's own contrastive loss, one fixed random batch (input is not timed on
either side), on the GPU when torch sees one (else the CPU). The towers differ where it does not
change the arithmetic: open_clip's text transformer is causal and pools the end-of-text
token, mvl's pools [CLS]; dense attention costs the same either way.

The step runs in a child process (`python -m mvl.perf.open_clip_step SPEC_JSON`), so its
peak memory is its own; `--compare_python` picks the interpreter that has torch and
open_clip_torch installed (default: this one).
"""

from __future__ import annotations

import json
import subprocess
import sys


def open_clip_spec(cfg, vocab_size: int, steps: int) -> dict:
    """The open_clip model and optimizer settings matching an mvl config."""
    image, text = cfg.model.image, cfg.model.text
    return {
        "embed_dim": cfg.model.embed_dim,
        "quick_gelu": cfg.model.act == "quick_gelu",
        "vision_cfg": {
            "image_size": image.image_size,
            "patch_size": image.patch_size,
            "width": image.width,
            "layers": image.depth,
            "head_width": image.width // image.num_heads,
            "mlp_ratio": image.mlp_dim / image.width,
        },
        "text_cfg": {
            "context_length": cfg.data.max_text_len,
            "vocab_size": vocab_size,
            "width": text.width,
            "heads": text.num_heads,
            "layers": text.depth,
            "mlp_ratio": text.mlp_dim / text.width,
        },
        "batch_size": cfg.batch_size,
        "dtype": cfg.model.dtype,
        "optim": {
            "lr": cfg.optim.lr,
            "betas": [cfg.optim.b1, cfg.optim.b2],
            "eps": cfg.optim.eps,
            "weight_decay": cfg.optim.weight_decay,
            "grad_clip_norm": cfg.optim.grad_clip_norm,
        },
        "steps": steps,
        "warmup": 2,
    }


def compare(cfg, vocab_size: int, steps: int, python: str | None = None) -> dict:
    """Runs the open_clip step in a child process; returns its numbers."""
    spec = json.dumps(open_clip_spec(cfg, vocab_size, steps))
    done = subprocess.run(
        [python or sys.executable, "-m", "mvl.perf.open_clip_step", spec],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(
            "the open_clip step failed (is open_clip_torch installed for "
            f"{python or sys.executable}? pass --compare_python):\n{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_open_clip_step(spec: dict) -> dict:
    import time

    import numpy as np
    import open_clip
    import torch

    from mvl.perf.peak_memory import peak_rss_bytes

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # mvl's bfloat16 keeps float32 parameters and computes in bfloat16: torch's autocast
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=spec.get("dtype") == "bfloat16"
    )
    model = open_clip.CLIP(
        embed_dim=spec["embed_dim"],
        vision_cfg=spec["vision_cfg"],
        text_cfg=spec["text_cfg"],
        quick_gelu=spec["quick_gelu"],
    )
    model.to(device).train()
    o = spec["optim"]
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=o["lr"],
        betas=tuple(o["betas"]),
        eps=o["eps"],
        weight_decay=o["weight_decay"],
    )
    loss_fn = open_clip.ClipLoss()
    v, t, batch = spec["vision_cfg"], spec["text_cfg"], spec["batch_size"]
    images = torch.rand(batch, 3, v["image_size"], v["image_size"], device=device)
    texts = torch.randint(0, t["vocab_size"], (batch, t["context_length"]), device=device)

    def step() -> float:
        with autocast:
            image_features, text_features, logit_scale = model(images, texts)[:3]
            loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip_norm"])
        optimizer.step()
        return float(loss.detach())

    times = []
    for i in range(spec["warmup"] + spec["steps"]):
        start = time.perf_counter()
        loss = step()
        if i >= spec["warmup"]:
            times.append(time.perf_counter() - start)
    step_s = float(np.median(times))
    return {
        "torch_version": torch.__version__,
        "open_clip_version": open_clip.__version__,
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_s_median": step_s,
        "step_s_min": float(np.min(times)),
        "examples_per_s": batch / step_s,
        "process_peak_rss_bytes": peak_rss_bytes(),
        "device": str(device),
        "device_peak_bytes": (torch.cuda.max_memory_allocated() if device.type == "cuda" else None),
        "final_loss": loss,
    }


if __name__ == "__main__":
    print(json.dumps(time_open_clip_step(json.loads(sys.argv[1]))))
