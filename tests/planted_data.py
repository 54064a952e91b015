"""Small image-caption datasets written on the fly, in every format mvl reads, with
deliberately broken and awkward samples planted among the good ones.

PLANTED is one list of samples; each writer stores it in its format, so a test knows
exactly which indices are broken and under which skip kind they must be counted.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def noise(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def rgba() -> Image.Image:
    image = noise("RGBA", (40, 36), 1)
    alpha = np.zeros((36, 40), np.uint8)
    alpha[:, 20:] = 255  # left half transparent: composited on white
    image.putalpha(Image.fromarray(alpha))
    return image


def palette() -> Image.Image:
    image = noise("RGB", (36, 36), 2).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    return image


def grey16() -> Image.Image:
    ramp = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    return Image.fromarray(ramp)  # uint16 -> mode I;16


GOOD_JPEG = encode(noise("RGB", (48, 40), 0), "JPEG")


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    image: bytes | None  # None: the file / member is missing
    caption: bytes  # stored as these bytes (may be invalid UTF-8)
    kind: str | None  # the skip kind it must be counted under; None = usable
    ext: str = "jpg"


def caption(i: int) -> bytes:
    return f"a photo of thing number {i}".encode()


def planted() -> list[Sample]:
    samples = [
        Sample(f"good{i}", encode(noise("RGB", (48, 40), 10 + i), "JPEG"), caption(i), None)
        for i in range(10)
    ]
    awkward = [  # converted, not skipped
        Sample("cmyk", encode(noise("CMYK", (36, 36), 3), "JPEG"), b"a cmyk picture", None),
        Sample("rgba", encode(rgba(), "PNG"), b"a picture with alpha", None, "png"),
        Sample("palette", encode(palette(), "PNG"), b"a palette picture", None, "png"),
        Sample("grey16", encode(grey16(), "PNG"), b"a sixteen bit ramp", None, "png"),
        Sample("grey", encode(noise("L", (40, 40), 4), "JPEG"), b"a grey picture", None),
        Sample("tiny", encode(noise("RGB", (3, 5), 5), "PNG"), b"a tiny picture", None, "png"),
        Sample("webp", encode(noise("RGB", (40, 40), 6), "WEBP"), b"a webp picture", None, "webp"),
        Sample(
            "long_caption", GOOD_JPEG, b"word " * 40_000, None
        ),  # 200 kB: over csv's field limit
    ]
    broken = [
        Sample(
            "truncated", GOOD_JPEG[: len(GOOD_JPEG) // 2], b"a truncated jpeg", "truncated_image"
        ),
        Sample("garbage", b"this is not an image at all" * 4, b"garbage bytes", "not_an_image"),
        Sample("empty_caption", GOOD_JPEG, b"   ", "empty_caption"),
        Sample("not_utf8", GOOD_JPEG, b"caf\xe9 au lait", "caption_not_utf8"),
        Sample("missing", None, b"a missing file", "missing_image"),
    ]
    # Interleaved so broken samples are spread out; the last one is good, so a pass
    # over the source in order counts every skip in some batch.
    everything = awkward + broken
    mixed = []
    for i, sample in enumerate(samples):
        mixed.append(sample)
        if i < len(everything):
            mixed.append(everything[i])
    mixed.extend(everything[len(samples) :])
    mixed.append(Sample("good_last", GOOD_JPEG, b"the last good picture", None))
    return mixed


def expected_kinds(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        if s.kind:
            counts[s.kind] = counts.get(s.kind, 0) + 1
    return counts


def write_images(root: str, samples: list[Sample]) -> list[str]:
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    paths = []
    for i, s in enumerate(samples):
        relative = f"images/{i:03d}_{s.name}.{s.ext}"
        if s.image is not None:
            with open(os.path.join(root, relative), "wb") as f:
                f.write(s.image)
        paths.append(relative)
    return paths


def write_table(
    root: str, samples: list[Sample], fmt: str, image_key="filepath", caption_key="title"
) -> str:
    """csv / tsv / jsonl with image paths relative to the file; captions as raw bytes."""
    paths = write_images(root, samples)
    path = os.path.join(root, f"pairs.{fmt}")
    with open(path, "wb") as f:
        if fmt == "jsonl":
            # Built by hand so an invalid UTF-8 caption reaches the file as raw bytes.
            line = b'{"%s": "%%s", "%s": "%%s"}\n' % (image_key.encode(), caption_key.encode())
            f.writelines(line % (image.encode(), s.caption) for image, s in zip(paths, samples))
        else:
            sep = b"," if fmt == "csv" else b"\t"
            f.write(image_key.encode() + sep + caption_key.encode() + b"\n")
            f.writelines(
                image.encode() + sep + s.caption + b"\n" for image, s in zip(paths, samples)
            )
    return path


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_webdataset(root: str, samples: list[Sample], shards: int = 2) -> str:
    """img2dataset's layout: KEY.jpg + KEY.txt (every third sample: KEY.json instead)."""
    os.makedirs(root, exist_ok=True)
    per_shard = -(-len(samples) // shards)
    for shard in range(shards):
        with tarfile.open(os.path.join(root, f"{shard:05d}.tar"), "w") as tar:
            for i in range(shard * per_shard, min((shard + 1) * per_shard, len(samples))):
                s, key = samples[i], f"{i:09d}"
                if s.image is not None:
                    add_member(tar, f"{key}.{s.ext}", s.image)
                if i % 3 == 2 and s.kind != "caption_not_utf8":
                    text = s.caption.decode("utf-8")
                    add_member(
                        tar, f"{key}.json", json.dumps({"caption": text, "key": key}).encode()
                    )
                else:
                    add_member(tar, f"{key}.txt", s.caption)
    return root


def write_array_record(root: str, samples: list[Sample]) -> tuple[str, list]:
    """mvl records written directly (the converter would drop the broken ones). A missing
    image becomes a record that is not an mvl record at all (bad_record); returns the
    directory and each record's expected skip kind."""
    import msgpack
    from array_record.python.array_record_module import ArrayRecordWriter

    from mvl.data.sources import array_record

    os.makedirs(root, exist_ok=True)
    kinds, half = [], len(samples) // 2
    for part, chunk in enumerate((samples[:half], samples[half:])):
        writer = ArrayRecordWriter(os.path.join(root, f"part{part}.array_record"), "group_size:1")
        for s in chunk:
            if s.image is None:
                writer.write(b"\x00 not msgpack")
                kinds.append("bad_record")
                continue
            # The caption as bytes, so invalid UTF-8 reaches the reader as it is.
            writer.write(
                msgpack.packb(
                    {
                        "format": array_record.RECORD_FORMAT,
                        "image": s.image,
                        "caption": s.caption,
                        "key": s.name,
                    },
                    use_bin_type=True,
                )
            )
            kinds.append(s.kind)
        writer.close()
    return root, kinds
