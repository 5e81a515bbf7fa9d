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
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config import Resources, StackConfig


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


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found |= _bounds(item.metadata)
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(item, attr, None) is not None:
                found[attr] = getattr(item, attr)
    return found


def allowed_range(field: FieldInfo) -> str:
    """`0–50`, `> 0 – 256`, `at least 1 item`: the limits a value must keep to."""
    found = _bounds(field.metadata)
    for arg in typing.get_args(field.annotation):  # Optional[Annotated[int, Field(...)]]
        if typing.get_origin(arg) is typing.Annotated:
            found |= _bounds(list(typing.get_args(arg)[1:]))
    low = f"{found['ge']:g}" if "ge" in found else f"> {found['gt']:g}" if "gt" in found else ""
    high = f"{found['le']:g}" if "le" in found else f"< {found['lt']:g}" if "lt" in found else ""
    parts = []
    if low and high:
        parts.append(f"{low}–{high}" if "ge" in found and "le" in found else f"{low} – {high}")
    elif low or high:
        parts.append(f"≥ {low}" if "ge" in found else low or f"≤ {high}" if "le" in found
                     else high)
    if "min_length" in found:
        n = found["min_length"]
        parts.append(f"at least {n} item{'s' if n != 1 else ''}"
                     if typing.get_origin(field.annotation) is list else f"at least {n} chars")
    if "max_length" in found and typing.get_origin(field.annotation) is not list:
        parts.append(f"at most {found['max_length']} chars")
    return ", ".join(parts)


def effective_default(model: type[BaseModel], field: FieldInfo, name: str,
                      parent: BaseModel | None, parent_key: str) -> str:
    """The default as it applies: inside a parent whose own default sets this key
    (`api.route` defaults to `{prefix: /api, stripPrefix: true}`), that value; an unset
    container limit, the stack-wide `resources.defaults` one (as the plan applies it)."""
    own = default_text(field.default)
    if model is Resources and field.default is None and parent_key != "resources.defaults":
        fallback = getattr(StackConfig().resources.defaults, name)
        return (f"`resources.defaults.{field.alias}` ({default_text(fallback)})"
                if parent is None or getattr(parent, name) is None
                else f"{default_text(getattr(parent, name))} (from `{parent_key}`'s default)")
    if parent is None:
        return own
    applied = getattr(parent, name)
    if isinstance(applied, BaseModel) or applied == field.default:
        return own
    return (f"{default_text(applied)} (from `{parent_key}`'s default; {own} in a "
            f"`{parent_key}` you set)")


def rows(model: type[BaseModel], prefix: str, parent: BaseModel | None = None) -> list[str]:
    """One table row per key; `parent` is the default object these keys sit in, if any."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        is_list = typing.get_origin(field.annotation) is list
        limits = allowed_range(field)
        kind = type_name(field.annotation) + (f", {limits}" if limits else "")
        default = effective_default(model, field, name, parent, prefix.rstrip("."))
        out.append(f"| `{key}` | {kind} | {default} | {field.description or ''} |")
        inner = nested_model(field.annotation)
        if inner is not None:
            applied = getattr(parent, name) if parent is not None else field.default
            out += rows(inner, f"{key}[]." if is_list else f"{key}.",
                        applied if isinstance(applied, BaseModel) else None)
    return out


def reference(only: str | None = None) -> str:
    """The whole reference, or one section's (`only`: `server`, `workers` ...)."""
    lines = []
    for name, field in StackConfig.model_fields.items():
        section = field.alias or name
        if only is not None and section != only:
            continue
        lines += [f"#### `prefect-stack:{section}`", "", field.description or "", "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        inner = nested_model(field.annotation)
        if inner is None:
            limits = allowed_range(field)
            lines.append(f"| `{section}` | {type_name(field.annotation)}"
                         f"{', ' + limits if limits else ''} | "
                         f"{default_text(field.default)} | {field.description or ''} |")
        else:
            is_list = typing.get_origin(field.annotation) is list
            lines += rows(inner, f"{section}[]." if is_list else f"{section}.",
                          field.default if isinstance(field.default, BaseModel) else None)
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
    from components.config import SECTIONS

    parser = argparse.ArgumentParser(
        prog="python -m components.docs",
        description="Print the stack config reference (Markdown), generated from the models: "
        "every prefect-stack:<section> key with its type, allowed range, default (as it "
        "applies, including defaults that come from a parent's default) and description.",
        epilog="Set keys in Pulumi.<stack>.yaml, or with `pulumi config set --path "
        "server.port 4200`. `./render <stack>` shows what a stack turns into.")
    parser.add_argument("--section", choices=SECTIONS, metavar="SECTION",
                        help=f"print one section only: {', '.join(SECTIONS)}")
    parser.add_argument("--write-readme", action="store_true",
                        help="rewrite the reference embedded in README.md instead of printing")
    args = parser.parse_args(argv)
    if args.write_readme:
        if args.section:
            parser.error("--write-readme writes the whole reference; leave out --section")
        write_readme()
    else:
        print(reference(args.section), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
