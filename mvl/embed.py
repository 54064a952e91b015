"""python -m mvl.embed --checkpoint DIR (--images FILE.npy | --image-dir DIR)
                      (--texts FILE.txt | --token-ids FILE.npy) --out FILE.npz

L2-normalised image and text embeddings (the projections ITC / SigLIP train) of the
newest checkpoint of any mvl run with both towers, converted CLIP weights included.
Either side may be left out.

--images     .npy [N, H, W, 3]: float in [0, 1], or uint8 (divided by 255); H and W
             must be the model's image size. The model normalises pixels itself.
--image-dir  every .jpg / .jpeg / .png / .webp in DIR (sorted by name), resized
             (shorter side, bicubic) and centre-cropped to the model's image size,
             as CLIP's preprocessing does.
--texts      one caption per line, tokenized with the run's tokenizer.
--token-ids  .npy [M, L] int ids as the run's tokenizer writes them (CLIP BPE:
             start token, ids, end token, then 0 padding).

The .npz holds `image_embeddings` [N, D] and/or `text_embeddings` [M, D] (float32),
plus `image_files` / `texts` naming the rows when they came from files or lines.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from mvl.runtime import cli
from mvl.runtime.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m mvl.embed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="an mvl run directory")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--images", help=".npy of images [N, H, W, 3]")
    images.add_argument("--image-dir", help="a folder of image files")
    texts = parser.add_mutually_exclusive_group()
    texts.add_argument("--texts", help="a text file, one caption per line")
    texts.add_argument("--token-ids", help=".npy of token ids [M, L]")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    if not (args.images or args.image_dir or args.texts or args.token_ids):
        parser.error("give images (--images / --image-dir), texts (--texts / --token-ids) or both")
    return args


def check_inputs_exist(args):
    for flag, path, is_dir in (
        ("--images", args.images, False),
        ("--image-dir", args.image_dir, True),
        ("--texts", args.texts, False),
        ("--token-ids", args.token_ids, False),
    ):
        if path and not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            kind = "directory" if is_dir else "file"
            raise UserError(f"{flag} {path}: no such {kind}")


def load_images(args, size: int) -> tuple[np.ndarray, list[str]]:
    if args.images:
        images = np.load(args.images)
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / 255.0
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise UserError(
                f"--images {args.images}: shape {images.shape}, expected [N, {size}, {size}, 3]"
            )
        return images.astype(np.float32), []
    names = sorted(n for n in os.listdir(args.image_dir) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise UserError(f"--image-dir {args.image_dir} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    return np.stack([read_image(os.path.join(args.image_dir, n), size) for n in names]), names


def read_image(path: str, size: int) -> np.ndarray:
    """[size, size, 3] in [0, 1]: shorter side resized to `size`, centre crop."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = size / min(image.size)
        width, height = (max(size, round(d * scale)) for d in image.size)
        image = image.resize((width, height), Image.Resampling.BICUBIC)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, np.float32) / 255.0


def load_token_ids(args, cfg, run_dir: str) -> tuple[np.ndarray, list[str]]:
    if args.token_ids:
        ids = np.load(args.token_ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise UserError(f"--token-ids {args.token_ids}: expected integer ids [M, L]")
        if ids.shape[1] > cfg.model.text.max_len:
            raise UserError(
                f"--token-ids {args.token_ids}: {ids.shape[1]} ids per row, the text tower "
                f"holds {cfg.model.text.max_len}"
            )
        return ids.astype(np.int32), []
    with open(args.texts, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if not lines:
        raise UserError(f"--texts {args.texts} holds no captions")
    tokenizer = run_tokenizer(cfg, run_dir)
    return tokenizer.encode(lines, cfg.data.max_text_len).astype(np.int32), lines


def find_moved_vocabulary(cfg, run_dir: str) -> None:
    """A vocabulary recorded by absolute path is also looked for in the run directory
    (a converted run that was moved): data.tokenizer is pointed at it there."""
    path = cfg.data.tokenizer
    moved = os.path.join(run_dir, os.path.basename(path)) if path else ""
    if path and not os.path.exists(path) and os.path.exists(moved):
        cfg.data.tokenizer = moved


def run_tokenizer(cfg, run_dir: str):
    """The run's tokenizer (see find_moved_vocabulary)."""
    from mvl.train.run_tokenizer import load_tokenizer

    find_moved_vocabulary(cfg, run_dir)
    return load_tokenizer(cfg, run_dir, train_if_missing=False)


def embed(args) -> dict[str, np.ndarray]:
    import jax

    from mvl.evaluate.embeddings import Embedder
    from mvl.models.model import build_model
    from mvl.runtime import sharding
    from mvl.train.run_tokenizer import special_ids
    from mvl.weights import run_dir

    cfg, params = run_dir.read(args.checkpoint)
    embedding = params.get("text", {}).get("token_embedding", {}).get("embedding")
    vocab = embedding.shape[0] if embedding is not None else 1
    find_moved_vocabulary(cfg, args.checkpoint)
    # The run's tokenizer's ids: a CLIP BPE run pads with 0, which is also a real token.
    model = build_model(cfg, vocab, special_ids(cfg))
    if "image_projection" not in params:
        raise UserError(
            f"--checkpoint {args.checkpoint}: this run has no image / text projections "
            "(no contrastive objective), so no shared embedding space"
        )
    mesh = sharding.make_mesh(cfg.mesh)
    params = jax.device_put(params, sharding.replicated(mesh))
    embedder = Embedder(model, mesh, args.batch_size, sharding.rules(cfg.mesh))
    out = {}
    if args.images or args.image_dir:
        images, files = load_images(args, cfg.model.image.image_size)
        out["image_embeddings"] = embedder.images(params, images)
        if files:
            out["image_files"] = np.array(files)
    if args.texts or args.token_ids:
        ids, lines = load_token_ids(args, cfg, args.checkpoint)
        out["text_embeddings"] = embedder.texts(params, ids)
        if lines:
            out["texts"] = np.array(lines)
    return out


def main(argv=None) -> int:
    return cli.run_main("mvl.embed", _embed, argv)


def _embed(argv) -> int:
    args = parse_args(argv)
    check_inputs_exist(args)  # before the checkpoint is read (seconds)
    out = embed(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, **out)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in out.items() if k.endswith("embeddings"))
    print(f"wrote {args.out}: {shapes}")
    return 0


if __name__ == "__main__":
    cli.exit_with(main())
