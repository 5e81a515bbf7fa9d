"""Turn what is wrong with a stack config into the fix, in words, and keep checking past the
first broken section so every problem arrives in one pass.

Pydantic says "Input should be a valid integer"; a user needs "remove the quotes". Most
config mistakes are YAML's: a quoted number, `yes` for true, `off` read as false by an
editor's YAML 1.1, a misspelt key. These helpers name the fix for each.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from components.config import PROJECT, StackConfig

# YAML 1.1 booleans: Pulumi (YAML 1.2) keeps these as text, some editors and tools do not.
_YAML11_TRUE = {"yes", "on", "y"}
_YAML11_FALSE = {"no", "off", "n"}
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """` (did you mean `x`?)` for the closest option, case-insensitively; '' if none is close."""
    options = list(options)
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.75)
    return f"did you mean `{lowered[close[0]]}`?" if close else ""


def fix_hint(error: ErrorDetails) -> str:
    """The fix for one pydantic error, in words; '' when the message already says it."""
    kind, value = error["type"], error.get("input")
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and isinstance(
            value, str) and _NUMBER.match(value.strip()):
        return f'remove the quotes: "{value}" is text; write {value.strip()}'
    if kind == "bool_type" and isinstance(value, str):
        if value.lower() in ("true", "false"):
            return f'remove the quotes: "{value}" is text; write {value.lower()}'
        if value.lower() in _YAML11_TRUE | _YAML11_FALSE:
            return (f"use true or false: Pulumi reads YAML 1.2, where `{value}` is the text "
                    f'"{value}", not a boolean')
        return "use true or false"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", (error.get("ctx") or {}).get("expected", ""))
        if isinstance(value, bool):
            words = _YAML11_TRUE if value else _YAML11_FALSE
            meant = next((e for e in expected if e.lower() in words), None)
            if meant is not None:
                return (f"quote it: write '{meant}'; YAML read {meant} as "
                        f"{str(value).lower()}")
        if isinstance(value, str):
            return did_you_mean(value, expected)
    if kind == "string_type" and isinstance(value, bool):
        return f"quote it: YAML read the value as {str(value).lower()}; write it in quotes"
    if kind == "string_type" and isinstance(value, int | float):
        return f'quote it: write "{value}"'
    if kind == "missing":
        return f"add `{error['loc'][-1]}` (required)"
    if kind == "list_type":
        return "write a list (`- item` lines, or [a, b])"
    if kind in ("model_type", "dict_type"):
        return "write a mapping (`key: value` lines)"
    return ""


def lenient_config(sections: dict[str, Any], err: ValidationError
                   ) -> tuple[StackConfig | None, set[str]]:
    """The config with every invalid key left out (so it takes its default), to run the
    cross-field rules on what is valid; and the top-level sections that had to give way.
    A section whose problem is not a single key (a missing required key, an item-level
    rule) is left out whole."""
    data = copy.deepcopy(sections)
    failed: set[str] = set()
    for _ in range(5):
        for error in err.errors():
            loc = error["loc"]
            failed.add(str(loc[0]))
            if not _drop(data, loc, error["type"]):
                data.pop(loc[0], None)
        try:
            return StackConfig.model_validate(data), failed
        except ValidationError as again:
            err = again
    return None, failed


def _drop(data: Any, loc: tuple[Any, ...], kind: str) -> bool:
    """Remove the key at `loc`; False when that cannot fix it (then the section goes)."""
    if kind == "missing" or len(loc) < 2 or isinstance(loc[-1], int):
        return False
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def depends_on(message: str, path: str, sections: set[str]) -> bool:
    """Whether a cross-field problem involves one of `sections` (by path or by naming one
    of its keys), so it may only be an echo of that section's defaults."""
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    return top in sections or any(re.search(rf"\b{re.escape(s)}\.", message) for s in sections)


def near_miss_namespace(namespace: str) -> bool:
    """`prefectstack`, `prefect_stack`, `Prefect-Stack`, `prefect-stak`, `prefect`: meant to
    be this project's. Provider namespaces (`docker`, `pulumi`, `random`) are not."""
    if namespace == PROJECT:
        return False
    squash = re.sub(r"[^a-z0-9]", "", namespace.lower())
    target = re.sub(r"[^a-z0-9]", "", PROJECT)
    return squash.startswith("prefect") or difflib.SequenceMatcher(
        None, squash, target).ratio() >= 0.75


def namespace_message(full_key: str) -> str:
    namespace, _, name = full_key.partition(":")
    return (f"namespace `{namespace}` is not this project's, so the program never reads this "
            f"key; rename it to `{PROJECT}:{name}` (or leave the namespace out: Pulumi puts "
            f"keys without one under `{PROJECT}`)")


def decoded_kind(raw: Any) -> str:
    """'structured' for an object or list value (never a secret), else 'scalar'."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return "scalar"
    return "structured" if isinstance(raw, dict | list) else "scalar"
