"""settings.get / set / reset / schema: validated, persisted, applied live, announced."""

from __future__ import annotations

from typing import Annotated, Any

from ...settings import schema as settings_schema
from ...settings.errors import PersistError, SettingError
from ..api import method
from ..registry import Constraint
from ..dispatch import CallContext
from ..errors import STORAGE_ERROR, RpcError, invalid_params

KEY = Annotated[str, Constraint(minLength=1), "a dotted setting key, e.g. sip.local_udp_port"]


def _known(key: str) -> None:
    try:
        settings_schema.lookup(key)
    except SettingError as exc:
        raise invalid_params(str(exc), key=key,
                             did_you_mean=settings_schema.close_keys(key)) from None


@method("settings.get")
async def get(ctx: CallContext, *, key: KEY | None = None) -> dict:
    """One setting ({key, value, is_default, secret}) or, without key, {"settings": [...]}.

    Secret values (passwords) are never returned: they show as null, with "set" saying
    whether one is stored."""
    if key is None:
        return {"settings": ctx.service.settings.public_views()}
    _known(key)
    return ctx.service.settings.public_view(key)


def _apply(change: Any, key: str) -> None:
    try:
        change()
    except SettingError as exc:
        raise invalid_params(str(exc), key=key) from None
    except PersistError as exc:
        raise RpcError(STORAGE_ERROR, "Storage error", {"reason": str(exc), "key": key}) from None


@method("settings.set")
async def set_(ctx: CallContext, *, key: KEY,
               value: Annotated[Any, "the new value, of the setting's type"]) -> dict:
    """Validate, save (atomically) and apply a setting; emits settings.changed.

    A bad value is refused with the reason and changes nothing. `restart_required` says the
    new value takes effect at the next start (SIP ports and addresses, media, TLS)."""
    _known(key)
    _apply(lambda: ctx.service.set_setting(key, value), key)
    return {**ctx.service.settings.public_view(key),
            "restart_required": not ctx.service.applies_live(key)}


@method("settings.reset")
async def reset(ctx: CallContext, *, key: KEY) -> dict:
    """Put a setting back to its default; emits settings.changed if that changes it."""
    _known(key)
    _apply(lambda: ctx.service.reset_setting(key), key)
    return ctx.service.settings.public_view(key)


@method("settings.schema")
async def schema_(ctx: CallContext) -> dict:
    """Every setting with its type, default, allowed values and help text."""
    return {"settings": settings_schema.describe()}
