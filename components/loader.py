"""Read and validate the whole stack config before any resource exists.

Pulumi hands the program every `prefect-stack:*` value as a string (objects as JSON) plus
the list of keys that are secret. Everything wrong with them (types, unknown keys, bad
combinations, missing or plaintext secrets) is collected into one `ConfigError`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from components import checks, diagnose, plan
from components.config import PROJECT, SECTIONS, StackConfig
from components.errors import ConfigError, Problem, key_path
from components.spec import StackPlan

SecretSource = Literal["config", "generate"]


@dataclass(frozen=True)
class LoadedStack:
    config: StackConfig
    plan: StackPlan
    secret_sources: dict[str, SecretSource]  # config key -> where its value comes from


def read_pulumi_config() -> tuple[dict[str, str], set[str]]:
    """This project's config values (prefix removed) and which keys are secret. Keys in a
    namespace that looks like a misspelling of this project's (`prefectstack:server`) are
    kept whole, so `load` can point at them; other namespaces (providers) are not ours."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    env_secrets = set(runtime_config.get_config_secret_keys_env())
    prefix = f"{PROJECT}:"
    values = {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
    values.update({k: v for k, v in merged.items()
                   if ":" in k and diagnose.near_miss_namespace(k.split(":", 1)[0])})
    secret = {k[len(prefix):] for k in merged if k.startswith(prefix) and
              (k in env_secrets or runtime_config.is_config_secret(k))}
    return values, secret


def load(values: dict[str, str], secret_keys: set[str]) -> LoadedStack:
    """Validate everything; raise one ConfigError listing every problem.

    One pass: type errors, unknown keys and sections, misplaced namespaces and the
    cross-field rules (on the sections that are valid) are reported together; the secret
    checks join them once every section is valid (until then, which secrets the stack needs
    is not known)."""
    sections: dict[str, Any] = {}
    problems: list[Problem] = [Problem(key, diagnose.namespace_message(key))
                               for key in sorted(values) if ":" in key]
    values = {k: v for k, v in values.items() if ":" not in k}
    for key in SECTIONS:
        if key not in values:
            continue
        if key in secret_keys:
            problems.append(Problem(key, "is stored as a secret (a value under it was set with "
                                    "--secret); keep secrets in their own keys and name them "
                                    "in the section, e.g. secretEnv: {API_KEY: apiKey}"))
            continue
        sections[key] = _decode(values[key])
    failed: set[str] = set()
    try:
        cfg: StackConfig | None = StackConfig.model_validate(sections)
    except ValidationError as err:
        problems += pydantic_problems(err)
        cfg, failed = diagnose.lenient_config(sections, err)
    unknown = sorted(set(values) - set(SECTIONS))
    # An object or list is never a secret: a misspelt section. Nor, most likely, is a
    # near-miss of a section's name; while the sections are broken (so the secrets the stack
    # needs are unknown) report those now too.
    # (A key set with --secret may hold a JSON document: credentials JSON, a JWK.)
    for key in [k for k in unknown if k not in secret_keys
                and diagnose.decoded_kind(values[k]) == "structured"
                or (failed and diagnose.did_you_mean(k, SECTIONS))]:
        problems.append(_unknown_key(key, []))
        unknown.remove(key)
    if cfg is not None:
        problems += [p for p in checks.problems(cfg)
                     if not diagnose.depends_on(p.message, p.path, failed)]
    if problems or cfg is None:
        raise ConfigError(problems)

    stack_plan = plan.build_plan(cfg)
    sources: dict[str, SecretSource] = {}
    for secret in stack_plan.secrets:
        if secret.key in values:
            if secret.key not in secret_keys:
                problems.append(Problem(secret.key, f"holds a secret (used by {secret.used_by}) "
                                        "but is stored in plain text; set it with `pulumi "
                                        f"config set --secret {secret.key} <value>`"))
            sources[secret.key] = "config"
        elif secret.generatable and cfg.secrets.generate_missing:
            sources[secret.key] = "generate"
        else:
            why = ("secrets.generateMissing is false" if secret.generatable
                   else "it cannot be generated")
            problems.append(Problem(secret.key, f"secret is not set (used by {secret.used_by}; "
                                    f"{why}); set it with `pulumi config set --secret "
                                    f"{secret.key} <value>`"))
    used = [s.key for s in stack_plan.secrets]
    problems += [_unknown_key(key, used) for key in unknown if key not in used]
    problems += checks.rotation_problems(cfg, sources)
    if problems:
        raise ConfigError(problems)
    return LoadedStack(cfg, stack_plan, sources)


def _unknown_key(key: str, secrets: list[str]) -> Problem:
    hint = diagnose.did_you_mean(key, [*SECTIONS, *secrets])
    return Problem(key, f"unknown key; {hint + ' ' if hint else ''}expected a section "
                   f"({', '.join(SECTIONS)}) or a secret this stack uses "
                   f"({', '.join(secrets) or 'none'})")


def _decode(raw: Any) -> Any:
    """Objects and lists arrive as JSON text; scalars as text ("true", "4200")."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def pydantic_problems(err: ValidationError) -> list[Problem]:
    out = []
    for error in err.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            allowed = allowed_keys(loc[:-1])
            hint = diagnose.did_you_mean(str(loc[-1]), allowed)
            message = f"unknown key `{loc[-1]}`" + (f"; {hint}" if hint else "") + (
                f"; expected one of: {', '.join(allowed)}" if allowed else "")
        else:
            if not isinstance(error.get("input"), dict | list):
                message += f" (got {error['input']!r})"
            hint = diagnose.fix_hint(error)
            message += f"; {hint}" if hint else ""
        out.append(Problem(key_path(*loc), message))
    return out


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts, for "did you mean" style messages."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _inner_model(annotation: Any) -> Any:
    """Unwrap Optional[...] and list[...] down to a model class."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            inner = _inner_model(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation
