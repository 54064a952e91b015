"""TFDS datasets prepared as ArrayRecord, read with `tfds.data_source` (random access,
no tf.data): spec `tfds:NAME[/CONFIG][:VERSION]:SPLIT`, e.g.
`tfds:coco_captions/2017:train` or `tfds:my_pairs:validation[:500]`.

data.tfds.image_key / caption_key name the features, "/" descending into nested
features (COCO captions: image_key="image", caption_key="captions/text"); a caption
feature holding several captions gives its first. The image feature is read undecoded
(its stored JPEG / PNG bytes) and decoded by mvl/data/decode.py like every other source.
Nothing is downloaded: prepare the dataset first (`tfds build --file_format=array_record`
or `builder.download_and_prepare(file_format="array_record")`).
"""

from __future__ import annotations

from typing import Any

from mvl.data.bad_sample import BadSample
from mvl.data.sources.encoded import EncodedSource
from mvl.runtime.errors import UserError


def nested(keys: str, leaf: Any) -> dict:
    tree: Any = leaf
    for part in reversed(keys.split("/")):
        tree = {part: tree}
    return tree


def lookup(example: dict, keys: str) -> Any:
    value: Any = example
    for part in keys.split("/"):
        if not isinstance(value, dict) or part not in value:
            raise BadSample(f"no feature {keys!r} in this example", "bad_record")
        value = value[part]
    return value


class TfdsSource(EncodedSource):
    def __init__(self, spec: str, image_size: int, data_dir: str, image_key: str, caption_key: str):
        import tensorflow_datasets as tfds

        name, _, split = spec.rpartition(":")
        if not name or not split:
            raise UserError(f"data source tfds:{spec}: write it as tfds:NAME[:VERSION]:SPLIT")
        self.name, self.split, self.image_size = name, split, image_size
        self.image_key, self.caption_key = image_key, caption_key
        decoders = nested(image_key, tfds.decode.SkipDecoding())
        try:
            self._source = tfds.data_source(
                name, split=split, data_dir=data_dir or None, download=False, decoders=decoders
            )
        except Exception as e:  # noqa: BLE001 -- tfds raises many kinds; all mean "not there"
            raise UserError(
                f"data source tfds:{spec} (data.tfds.data_dir={data_dir!r}): {e}; prepare it "
                "with file_format=array_record first"
            ) from None

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"TfdsSource({self.name}:{self.split}, {len(self)} examples)"

    def describe(self, index: int) -> str:
        return f"tfds {self.name} split {self.split} example {index}"

    def record(self, index: int) -> tuple[Any, Any]:
        example = self._source[self.check_index(index)]
        return lookup(example, self.image_key), lookup(example, self.caption_key)
