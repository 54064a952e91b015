"""python -m mvl.evaluate.throughput --config FILE:ARGS [--config.x=y ...] [--images N]

How long a benchmark evaluator takes per 10k images on this machine, in its two
sequential parts: decoding (JPEGs of --jpeg_size, COCO's typical 640x480, centre-cropped
and resized to data.image_size on every core, mvl/evaluate/benchmarks/streaming.py) and
the image tower + projection on the mesh (random weights: speed does not depend on
them), after one warm-up batch. Also prints the tower's FLOPs per image (counted from
its parameters and attention), from which a GPU / TPU estimate is FLOPs x 10k / (peak x utilisation).
Text towers (class prompts, captions) are cheap beside this: 1000 classes x 80
templates once, or 5 captions per image at a fraction of an image's cost.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from mvl import config as config_lib
from mvl.runtime import cli, sharding


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.evaluate.throughput", __doc__)
    parser.add_argument("--config", required=True, help="configs/X.py[:arg]")
    parser.add_argument("--images", type=int, default=64, help="images to time")
    parser.add_argument("--jpeg_size", type=int, nargs=2, default=(640, 480))
    return config_lib.parse_command_line(parser, argv)


def random_jpegs(count: int, size) -> list[bytes]:
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(count):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    return jpegs


def main(argv=None) -> int:
    return cli.run_main("mvl.evaluate.throughput", _throughput, argv)


def _throughput(argv) -> int:
    from mvl.evaluate.benchmarks import streaming
    from mvl.evaluate.embeddings import Embedder
    from mvl.models.model import build_model

    overrides, args = parse_args(argv)
    cfg = config_lib.load_config(args.config)
    config_lib.apply_overrides(cfg, overrides)
    size, count = cfg.data.image_size, args.images
    jpegs = random_jpegs(count, args.jpeg_size)
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        start = time.perf_counter()
        pixels = streaming.decode_chunk(jpegs, range(count), size, pool, "throughput")
        decode_s = time.perf_counter() - start

    mesh = sharding.make_mesh(cfg.mesh)
    model = build_model(cfg, cfg.data.vocab_size)
    ids = jnp.zeros((1, cfg.data.max_text_len), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(pixels[:1]), ids)["params"]
    embedder = Embedder(model, mesh, cfg.eval.batch_size, sharding.rules(cfg.mesh))
    embedder.images(params, pixels[: min(count, cfg.eval.batch_size)])  # compile
    start = time.perf_counter()
    embedder.images(params, pixels)
    embed_s = time.perf_counter() - start
    flops = image_flops(cfg, params)

    per_10k = 10_000 / count
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; {os.cpu_count()} cores")
    print(f"decode {args.jpeg_size[0]}x{args.jpeg_size[1]} JPEG -> {size}px: "
          f"{count / decode_s:.1f} images/s, {decode_s * per_10k / 60:.1f} min per 10k")  # fmt: skip
    print(f"image tower + projection: {count / embed_s:.1f} images/s, "
          f"{embed_s * per_10k / 60:.1f} min per 10k")  # fmt: skip
    print(f"benchmark images total: {(decode_s + embed_s) * per_10k / 60:.1f} min per 10k")
    print(f"image tower FLOPs per image: {flops / 1e9:.2f} GFLOP "
          f"({flops * 1e4 / 1e12:.1f} TFLOP per 10k)")  # fmt: skip
    return 0


def image_flops(cfg, params) -> float:
    """Analytic FLOPs of embedding one image: 2 x (tower + projection parameters) per
    token (every weight is one multiply-add per token; the patch stem per patch) plus
    attention's QK^T and AV, 4 x depth x tokens^2 x width. (XLA's CPU cost analysis
    misses the matmuls it hands to oneDNN, so it is not used.)"""
    image = cfg.model.image
    tokens = (image.image_size // image.patch_size) ** 2 + 1
    weights = sum(
        x.size for key in ("image", "image_projection") for x in jax.tree.leaves(params[key])
    )
    return 2.0 * weights * tokens + 4.0 * image.depth * tokens**2 * image.width


if __name__ == "__main__":
    cli.exit_with(main())
