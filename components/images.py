"""Image references: what counts as pinned. Pure and dependency-free, so the policy pack
(policy/, its own virtualenv) applies the same rule as the config checks."""

from __future__ import annotations

import re


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when untagged; digests count as pinned)."""
    if "@sha256:" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def is_pinned(image: str) -> bool:
    tag = image_tag(image)
    return tag is not None and tag != "latest"


def is_floating_major(image: str) -> bool:
    """Tags like `3-python3.12`, `16-alpine` or `stable` move under you: a major version
    alone (plus variant suffixes) or a word without a version."""
    tag = image_tag(image)
    if tag is None or tag == "@digest":
        return False
    return bool(re.fullmatch(r"v?\d+(-[A-Za-z][A-Za-z0-9.]*)*|[A-Za-z-]+", tag))


def is_prefect_2(image: str) -> bool:
    """An official Prefect image whose tag is a 2.x version (`2`, `2-python3.11`, `2.20.3`)."""
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] \
        else image.split("@", 1)[0]
    tag = image_tag(image)
    return repository.endswith("prefecthq/prefect") and bool(tag and re.match(r"2(\D|$)", tag))
