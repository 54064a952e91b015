"""python -m mvl.weights open_clip|hf|export ...

Import CLIP weights into an mvl run directory:
  python -m mvl.weights open_clip --arch ViT-B-32 --checkpoint open_clip_model.safetensors \\
      --tokenizer bpe_simple_vocab_16e6.txt.gz --out DIR
  python -m mvl.weights hf --checkpoint clip-vit-base-patch32/model.safetensors \\
      --tokenizer clip-vit-base-patch32/tokenizer.json --out DIR
(`--arch`: a name, e.g. ViT-B-16 or ViT-B-16-quickgelu for OpenAI's weights, or an
open_clip model-config JSON; for hf it defaults to the config.json beside the weights.
`--checkpoint`: .safetensors, or .bin / .pt read by torch with weights_only=True.)
Then: --config.teacher.checkpoint=DIR (MVP), --config.init.checkpoint=DIR plus the flags
in DIR/config_overrides.txt, python -m mvl.embed --checkpoint DIR ...

Export a run's CLIP-shaped towers to open_clip's state-dict layout (+ its model config):
  python -m mvl.weights export --checkpoint DIR --out model.safetensors
(Import appends a [MASK] row to the token embedding, for text-masking methods; export
drops it, so open_clip sees CLIP's vocabulary.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np

from mvl.runtime import cli
from mvl.runtime.errors import UserError


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m mvl.weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for kind in ("open_clip", "hf"):
        sub = commands.add_parser(kind, help=f"import a {kind} CLIP checkpoint")
        sub.add_argument("--checkpoint", required=True, help=".safetensors (or .bin / .pt)")
        sub.add_argument("--arch", help="architecture name or model-config .json")
        sub.add_argument(
            "--tokenizer",
            required=True,
            help="the text tower's BPE vocabulary: merges .txt[.gz] or tokenizer.json",
        )
        sub.add_argument("--out", required=True, help="the mvl run directory to write")
    export = commands.add_parser("export", help="an mvl run -> open_clip safetensors")
    export.add_argument("--checkpoint", required=True, help="an mvl run directory")
    export.add_argument("--out", required=True, help="the .safetensors file to write")
    return parser.parse_args(argv)


def import_clip(args):
    from mvl.weights import architectures, hf, open_clip, run_dir, weights_file

    arch = architectures.resolve(args.arch, args.command, args.checkpoint)
    state = weights_file.load(args.checkpoint)
    to_mvl = open_clip.to_mvl if args.command == "open_clip" else hf.to_mvl
    params = to_mvl(state, f"--checkpoint {args.checkpoint}")
    source = {
        "format": args.command,
        "checkpoint": os.path.abspath(args.checkpoint),
        "arch": args.arch or "config.json",
    }
    cfg = run_dir.write(args.out, params, arch, args.tokenizer, source)
    print(
        f"wrote {args.out}: {arch.vision_layers}-layer ViT/{arch.patch_size} at "
        f"{arch.image_size} px, {arch.text_layers}-layer text, vocab {arch.vocab_size} "
        f"+ [MASK], act {arch.act}"
    )
    print(f"  MVP teacher:  --config.teacher.checkpoint={os.path.abspath(args.out)}")
    print(
        f"  init a run:   --config.init.checkpoint={os.path.abspath(args.out)} "
        f"$(cat {os.path.join(args.out, 'config_overrides.txt')})"
    )
    return cfg


def export(args):
    from mvl.weights import architectures, open_clip, run_dir, weights_file

    if not args.out.endswith(".safetensors"):
        raise UserError(f"--out {args.out}: export writes a .safetensors file")
    cfg, params = run_dir.read(args.checkpoint)
    arch = architectures.from_config(cfg.model.to_dict())
    state = open_clip.from_mvl(params)
    # open_clip's layout has CLIP's rows only: the [MASK] row import appended goes.
    embedding = state["token_embedding.weight"]
    vocab = run_dir.clip_rows(cfg, args.checkpoint, embedding.shape[0])
    state["token_embedding.weight"] = np.ascontiguousarray(embedding[:vocab])
    arch = dataclasses.replace(arch, vocab_size=vocab)
    # open_clip normalises pixels outside the model: say with which statistics.
    metadata = {
        "pixel_mean": json.dumps(list(arch.pixel_mean)),
        "pixel_std": json.dumps(list(arch.pixel_std)),
        "ln_eps": str(arch.ln_eps),
    }
    weights_file.save(args.out, state, metadata)
    config_path = args.out[: -len(".safetensors")] + ".json"
    with open(config_path, "w") as f:
        json.dump(architectures.to_open_clip(arch), f, indent=1)
    print(f"wrote {args.out} ({len(state)} tensors) and its open_clip model config {config_path}")
    if arch.ln_eps != 1e-5:
        print(f"note: model.ln_eps={arch.ln_eps}; open_clip's LayerNorm uses 1e-5")


def main(argv=None) -> int:
    return cli.run_main("mvl.weights", _convert, argv)


def _convert(argv) -> int:
    args = parse_args(argv)
    export(args) if args.command == "export" else import_clip(args)
    return 0


if __name__ == "__main__":
    cli.exit_with(main())
