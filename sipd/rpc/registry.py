"""The table of RPC methods: registration, parameter checking and the OpenRPC description.

A method is an `async def f(ctx, *, name: Annotated[type, "what it is"] = default) -> ...`.
Its signature is the single source of truth: the same annotations check incoming params (so a
user gets "params.key: expected a string, got 5" rather than a traceback) and generate the
parameter schemas `rpc.discover` returns. The first line of the docstring is the summary, the
rest the description.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

from .errors import invalid_params

Handler = Callable[..., Awaitable[Any]]


class Constraint:
    """Extra JSON-schema keywords for a param: `Annotated[int, Constraint(minimum=0), "doc"]`
    (hashable, unlike a dict, so annotated types can still be combined with `| None`)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = tuple(sorted(keywords.items()))

    def __hash__(self) -> int:
        return hash(self.keywords)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constraint) and other.keywords == self.keywords

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                                dict: "object", list: "array", type(None): "null"}


def schema_of(annotation: Any) -> dict[str, Any]:
    """JSON schema of a Python annotation (the subset methods use)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        schema = schema_of(base)
        for item in extra:
            if isinstance(item, str):
                schema["description"] = item
            elif isinstance(item, Constraint):
                schema.update(item.keywords)
        return schema
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    if origin in (Union, types.UnionType):
        options = [schema_of(a) for a in get_args(annotation)]
        descriptions = [o.pop("description") for o in options if "description" in o]
        return {"anyOf": options, **({"description": descriptions[0]} if descriptions else {})}
    if origin is typing.Literal:
        return {"enum": list(get_args(annotation))}
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return {"type": "array", "items": schema_of(item)}
    if origin is dict:
        return {"type": "object"}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    raise TypeError(f"no JSON schema for annotation {annotation!r}")


def check(value: Any, schema: dict[str, Any], where: str) -> None:
    """Raise invalid params when value does not fit schema (types, enums, min/max,
    string lengths and patterns)."""
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                check(value, option, where)
                return
            except Exception as exc:  # noqa: BLE001 - collect and report below
                errors.append(exc)
        # a value of the right type that breaks that option's limits: say which limit
        fitting = [error for option, error in zip(schema["anyOf"], errors, strict=False)
                   if "type" in option and _is_json_type(value, option["type"])]
        if len(fitting) == 1:
            raise fitting[0]
        raise invalid_params(f"{where}: {_describe(schema)} expected, got {_json_name(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise invalid_params(f"{where}: one of {schema['enum']} expected, got {value!r}")
    kind = schema.get("type")
    if kind and not _is_json_type(value, kind):
        raise invalid_params(f"{where}: {kind} expected, got {_json_name(value)}")
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], f"{where}[{index}]")
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise invalid_params(f"{where}: must be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise invalid_params(f"{where}: must be <= {schema['maximum']}, got {value}")
    if kind == "string":
        _check_string(value, schema, where)


def _check_string(value: str, schema: dict[str, Any], where: str) -> None:
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if shortest is not None and len(value) < shortest:
        raise invalid_params(f"{where}: must not be empty" if shortest == 1
                             else f"{where}: at least {shortest} characters expected")
    if longest is not None and len(value) > longest:
        raise invalid_params(f"{where}: at most {longest} characters expected, "
                             f"got {len(value)}")
    if "pattern" in schema and _pattern(schema["pattern"]).search(value) is None:
        raise invalid_params(f"{where}: must match {schema['pattern']}, got {value[:64]!r}")


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern as Python reads it: unanchored like ECMA-262's search, and `$`
    the end of the string (Python's `$` also matches before a final newline)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _is_json_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    return isinstance(value, {"string": str, "object": dict, "array": list}[kind])


def _json_name(value: Any) -> str:
    for python_type, name in _JSON_TYPES.items():
        if type(value) is python_type:
            return f"{name} {value!r}" if python_type in (int, float, bool) else name
    return type(value).__name__


def _describe(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_describe(s) for s in schema["anyOf"])
    if "enum" in schema:
        return f"one of {schema['enum']}"
    return schema.get("type", "any value")


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    required: bool
    default: Any = None


@dataclass
class Method:
    name: str
    handler: Handler
    params: list[Param]
    summary: str
    description: str
    result_schema: dict[str, Any]
    needs_auth: bool = True
    # Called with the call context when a call is refused for its params (auth.login counts
    # that as a failed login).
    on_invalid_params: Callable[[Any], None] | None = None

    def bind(self, params: Any) -> dict[str, Any]:
        """Check params (object or array) against the signature; return keyword arguments."""
        if params is None:
            params = {}
        if isinstance(params, list):
            if len(params) > len(self.params):
                raise invalid_params(f"{self.name} takes at most {len(self.params)} params, "
                                     f"got {len(params)}")
            params = {p.name: v for p, v in zip(self.params, params, strict=False)}
        known = {p.name for p in self.params}
        unknown = sorted(set(params) - known)
        if unknown:
            raise invalid_params(f"unknown param(s) {unknown} for {self.name}; "
                                 f"it takes {sorted(known) or 'no params'}")
        kwargs = {}
        for param in self.params:
            if param.name in params:
                check(params[param.name], param.schema, f"params.{param.name}")
                kwargs[param.name] = params[param.name]
            elif param.required:
                raise invalid_params(f"missing param {param.name!r} ({_describe(param.schema)})")
        return kwargs


@dataclass
class Registry:
    methods: dict[str, Method] = field(default_factory=dict)

    def method(self, name: str, *, auth: bool = True,
               on_invalid_params: Callable[[Any], None] | None = None,
               ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if name in self.methods:
                raise ValueError(f"RPC method {name} registered twice")
            method = _describe_method(name, handler, auth)
            method.on_invalid_params = on_invalid_params
            self.methods[name] = method
            return handler
        return register

    def get(self, name: str) -> Method | None:
        return self.methods.get(name)


def _describe_method(name: str, handler: Handler, auth: bool) -> Method:
    hints = typing.get_type_hints(handler, include_extras=True)
    signature = inspect.signature(handler)
    params = []
    for pname, parameter in list(signature.parameters.items())[1:]:  # the first is ctx
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{name}: param {pname} must be keyword-only")
        required = parameter.default is inspect.Parameter.empty
        params.append(Param(pname, schema_of(hints.get(pname, Any)), required,
                            None if required else parameter.default))
    doc = inspect.getdoc(handler) or ""
    summary, _, description = doc.partition("\n")
    result = schema_of(hints["return"]) if "return" in hints else {}
    return Method(name, handler, params, summary.strip(), description.strip(), result, auth)
