"""docs/methods.md names the config key that controls each detail: every backticked
config path in it (`optim.lr`, `model.image.*`, `data.tokenizer_kind=clip_bpe`) must
resolve in at least one method config, so a renamed key cannot leave the account stale."""

import functools
import glob
import os
import re

import ml_collections

from mvl import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "methods.md")
# a dotted lower-case path, optionally `.*` or `=value`; no spaces, slashes or colons
CONFIG_PATH = re.compile(r"^([a-z_][a-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|\*))+)(?:=\S+)?$")


def doc_keys() -> set[str]:
    with open(DOC) as f:
        spans = re.findall(r"`([^`\n]+)`", f.read())
    keys = set()
    for span in spans:
        for part in span.split(", "):  # `a`, `b` and `a, b` alike
            match = CONFIG_PATH.match(part.strip())
            if match and not match.group(1).endswith(".py"):
                keys.add(match.group(1))
    return keys


@functools.cache
def method_configs() -> dict[str, ml_collections.ConfigDict]:
    configs = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
        for size in ("demo", "paper"):
            configs[f"{os.path.basename(path)}:{size}"] = config_lib.load_config(f"{path}:{size}")
    return configs


def resolves(cfg, key: str) -> bool:
    node = cfg
    for name in key.split("."):
        if name == "*":
            return isinstance(node, ml_collections.ConfigDict)
        if not isinstance(node, ml_collections.ConfigDict) or name not in node:
            return False
        node = node[name]
    return True


def test_the_doc_names_config_keys():
    keys = doc_keys()
    assert {"optim.lr", "teacher.momentum", "model.image.*"} <= keys, sorted(keys)


def test_every_key_the_doc_names_exists_in_some_config():
    missing = [
        key
        for key in sorted(doc_keys())
        if not any(resolves(c, key) for c in method_configs().values())
    ]
    assert not missing, f"docs/methods.md names keys no config in configs/ has: {missing}"
