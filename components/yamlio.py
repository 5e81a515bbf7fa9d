"""Reading YAML fast, and reporting its errors well.

PyYAML's pure-Python parser takes about four times the CPU of libyaml's, which PyYAML wheels
ship; render and the tests parse whole stacks, so that adds up. libyaml's error messages do
not quote the offending line, so a document it refuses is parsed again by PyYAML's own
parser, whose error (the same problem) shows the line and a caret.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

FAST_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL = "tag:yaml.org,2002:bool"


def with_yaml12_booleans(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """`loader` reading booleans as YAML 1.2 (and the Pulumi CLI) does: only true/false, so
    `yes`, `on` and `off` stay strings."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver(
        _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return loader


def load(text: str, fast: type[yaml.SafeLoader] = FAST_SAFE_LOADER,
         slow: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """`text` read by `fast`; if it is not valid YAML, the error `slow` (a pure-Python loader
    with the same rules) raises, which quotes the line."""
    try:
        return yaml.load(text, Loader=fast)
    except yaml.YAMLError:
        if fast is slow:
            raise
        return yaml.load(text, Loader=slow)
