"""Print the config reference (Markdown) from the pydantic models: `python -m components.docs`.

The README embeds this output between markers; a test fails when they drift apart.
`python -m components.docs --write-readme` rewrites that part of README.md in place.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from components.config import StackConfig


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map {type_name(args[0])} → {type_name(args[1])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def default_text(default: Any) -> str:
    if default is PydanticUndefined:
        return "**required**"
    if isinstance(default, BaseModel):
        return "(object)"
    if isinstance(default, list) and default and isinstance(default[0], BaseModel):
        return "`" + json.dumps([d.model_dump(by_alias=True, exclude_defaults=True)
                                 for d in default]) + "`"
    return f"`{json.dumps(default)}`"


def nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        is_list = typing.get_origin(field.annotation) is list
        out.append(f"| `{key}` | {type_name(field.annotation)} | {default_text(field.default)} "
                   f"| {field.description or ''} |")
        inner = nested_model(field.annotation)
        if inner is not None:
            out += rows(inner, f"{key}[]." if is_list else f"{key}.")
    return out


def reference() -> str:
    lines = []
    for name, field in StackConfig.model_fields.items():
        section = field.alias or name
        lines += [f"#### `prefect-stack:{section}`", "", field.description or "", "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        inner = nested_model(field.annotation)
        if inner is None:
            lines.append(f"| `{section}` | {type_name(field.annotation)} | "
                         f"{default_text(field.default)} | {field.description or ''} |")
        else:
            is_list = typing.get_origin(field.annotation) is list
            lines += rows(inner, f"{section}[]." if is_list else f"{section}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"


def write_readme(path: Path = README) -> None:
    """Replace the README's embedded reference with the current one."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + START + reference() + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.docs",
        description="Print the stack config reference (Markdown), generated from the models.")
    parser.add_argument("--write-readme", action="store_true",
                        help="rewrite the reference embedded in README.md instead of printing")
    args = parser.parse_args(argv)
    if args.write_readme:
        write_readme()
    else:
        print(reference(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
