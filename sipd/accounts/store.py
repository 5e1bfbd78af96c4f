"""Where the accounts are kept: one file per account, so that adding, changing or removing one
costs the same at ten accounts and at ten thousand (docs/design.md §3, docs/decisions.md).

- `accounts/<id>.toml` beside the settings file (sipd.settings.tables): where `accounts.add`
  puts a new account. Each file is written atomically on its own; an admin may edit, add or
  delete files and send SIGHUP.
- `[accounts.<id>]` tables in the settings file: what sipd used before, and what an admin may
  still write there by hand. They keep working where they are; a change over RPC is written
  where the account lives.

The built-in `local` account is in neither. Every change is validated first (SettingError),
then written (PersistError: nothing changed, in memory either), then applied in memory.

    store = AccountStore(settings)                 # SettingsStore.open(...) beforehand
    alice = store.add({"aor": "sip:alice@example.test", "password": "secret"})
    alice.id                                       # "alice-example-test"
    store.update(alice.id, {"expires": 300})       # partial, validated, persisted atomically
    store.page(limit=100, after=alice.id)          # the next accounts, in id order
    store.remove(alice.id)
"""

from __future__ import annotations

import bisect
import builtins
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipd.settings.errors import ConfigError, SettingError
from sipd.settings.paths import accounts_dir_for
from sipd.settings.store import SettingsStore
from sipd.settings.tables import TableDirectory
from sipd.sip.errors import SipParseError

from .model import (
    DEFAULT_LOCAL_AOR,
    LOCAL_ID,
    SECTION,
    AccountConfig,
    AccountNotFound,
    DuplicateAccount,
    ReadOnlyAccount,
    account_id_for,
    aor_key,
    local_account,
)

__all__ = ["AccountStore", "AccountChanges"]

log = logging.getLogger(__name__)

AorKey = tuple[str | None, str, int | None]


@dataclass(frozen=True)
class AccountChanges:
    """What a reload found: ids added, removed, and changed (with the fields that changed)."""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class _Loaded:
    accounts: dict[str, AccountConfig]
    in_settings: set[str]  # ids whose table is in the settings file


class _Taken:
    """The ids a new account may not take: those in memory, and any file already in the
    directory (an admin's new file not yet read by a SIGHUP must not be overwritten)."""

    def __init__(self, store: AccountStore) -> None:
        self._store = store

    def __contains__(self, account_id: object) -> bool:
        store = self._store
        return isinstance(account_id, str) and (
            account_id in store._accounts
            or os.path.lexists(store.directory.file(account_id)))


class AccountStore:
    """The accounts, validated and indexed (by id, AOR and AOR user part), plus the built-in
    local account. Listing order: `local` first, then the others by id."""

    def __init__(self, settings: SettingsStore, *, directory: Path | None = None,
                 local_aor: str = DEFAULT_LOCAL_AOR) -> None:
        """Loads the accounts; ConfigError names the file and the account's bad field."""
        self.settings = settings
        self.directory = TableDirectory(directory or accounts_dir_for(settings.path),
                                        what="account", frozen_by=settings.path)
        self.local = local_account(local_aor)
        self._accounts: dict[str, AccountConfig] = {}
        self._in_settings: set[str] = set()
        self._order: list[str] = []  # the ids, sorted
        self._by_aor: dict[AorKey, str] = {}
        self._by_user: dict[str, set[str]] = {}
        self._install(self._load())

    # Reading.

    def list(self) -> list[AccountConfig]:
        """The local account first, then the stored ones by id."""
        return [self.local, *(self._accounts[account_id] for account_id in self._order)]

    def page(self, limit: int | None = None, after: str | None = None,
             ) -> tuple[builtins.list[AccountConfig], str | None]:
        """Up to `limit` accounts in list order, starting after the account id `after` (which
        need not exist any more: paging goes on where it was). Returns them and the id to pass
        as `after` for the next page (None: this was the last)."""
        if after is None:
            start, head = 0, [self.local]
        elif after == LOCAL_ID:
            start, head = 0, []
        else:
            start, head = bisect.bisect_right(self._order, after), []
        end = len(self._order) if limit is None else start + max(0, limit - len(head))
        accounts = head + [self._accounts[i] for i in self._order[start:end]]
        if limit is not None:
            accounts = accounts[:limit]
        more = end < len(self._order)
        return accounts, (accounts[-1].id if more and accounts else None)

    def ids(self) -> builtins.list[str]:  # `list` is a method here
        return [LOCAL_ID, *self._order]

    def get(self, account_id: str) -> AccountConfig:
        if account_id == LOCAL_ID:
            return self.local
        try:
            return self._accounts[account_id]
        except (KeyError, TypeError):
            raise AccountNotFound(account_id, self._order) from None

    def __contains__(self, account_id: object) -> bool:
        return account_id == LOCAL_ID or account_id in self._accounts

    def __len__(self) -> int:
        return len(self._accounts) + 1

    def find_by_aor(self, aor: str) -> AccountConfig | None:
        try:
            key = aor_key(aor)
        except SipParseError:
            return None
        if key == aor_key(self.local.aor):
            return self.local
        account_id = self._by_aor.get(key)
        return None if account_id is None else self._accounts[account_id]

    def with_user(self, user: str) -> builtins.list[AccountConfig]:
        """The accounts whose AOR has this user part, in list order."""
        found = [self.local] if self.local.aor_uri.user == user else []
        return found + [self._accounts[i] for i in sorted(self._by_user.get(user, ()))]

    # Changing.

    def add(self, values: Mapping[str, Any]) -> AccountConfig:
        """Validate, persist (a file of its own) and return a new account with an id derived
        from its AOR."""
        account = AccountConfig.create("pending", values)
        self._check_unique(account)
        account = dataclasses.replace(account, id=account_id_for(account.aor, _Taken(self)))
        self.directory.write(account.id, account.to_storage())
        self._put(account)
        return account

    def update(self, account_id: str, changes: Mapping[str, Any]) -> tuple[AccountConfig,
                                                                           AccountConfig]:
        """Apply a partial change; returns (old, new). Fields not given keep their values
        (the password included). Written where the account lives."""
        old = self._mutable(account_id)
        new = old.updated(changes)
        if new == old:
            return old, new
        self._check_unique(new)
        if account_id in self._in_settings:
            self.settings.set_section(SECTION, account_id, new.to_storage())
        else:
            self.directory.write(account_id, new.to_storage())
        self._drop(old)
        self._put(new)
        return old, new

    def remove(self, account_id: str) -> AccountConfig:
        """Remove the account from where it is stored; returns what it was."""
        account = self._mutable(account_id)
        if account_id in self._in_settings:
            self.settings.remove_section(SECTION, account_id)
            self._in_settings.discard(account_id)
        else:
            self.directory.remove(account_id)
        self._drop(account)
        return account

    def reload(self) -> AccountChanges:
        """Re-read the accounts after the settings file was reloaded (SIGHUP): its tables and
        the accounts directory. ConfigError leaves the accounts in memory as they were."""
        fresh = self._load()
        old = self._accounts
        new = fresh.accounts
        changes = AccountChanges(
            added=tuple(i for i in new if i not in old),
            removed=tuple(i for i in old if i not in new),
            changed={i: frozenset(old[i].changed_fields(new[i]) or {"extra"})
                     for i in new if i in old and old[i] != new[i]})
        self._install(fresh)
        return changes

    # Internals.

    def _mutable(self, account_id: str) -> AccountConfig:
        if account_id == LOCAL_ID:
            raise ReadOnlyAccount(LOCAL_ID, "the local account is built in: it cannot be "
                                            "changed or removed")
        return self.get(account_id)

    def _check_unique(self, account: AccountConfig) -> None:
        key = aor_key(account.aor)
        if key == aor_key(self.local.aor):
            raise DuplicateAccount(account.aor, LOCAL_ID)
        other = self._by_aor.get(key)
        if other is not None and other != account.id:
            raise DuplicateAccount(account.aor, other)

    def _put(self, account: AccountConfig) -> None:
        if account.id not in self._accounts:
            bisect.insort(self._order, account.id)
        self._accounts[account.id] = account
        self._by_aor[aor_key(account.aor)] = account.id
        user = account.aor_uri.user
        if user:
            self._by_user.setdefault(user, set()).add(account.id)

    def _drop(self, account: AccountConfig) -> None:
        del self._accounts[account.id]
        index = bisect.bisect_left(self._order, account.id)
        if index < len(self._order) and self._order[index] == account.id:
            del self._order[index]
        key = aor_key(account.aor)
        if self._by_aor.get(key) == account.id:
            del self._by_aor[key]
        user = account.aor_uri.user
        if user and user in self._by_user:
            self._by_user[user].discard(account.id)
            if not self._by_user[user]:
                del self._by_user[user]

    def _install(self, loaded: _Loaded) -> None:
        self._accounts, self._in_settings = {}, set(loaded.in_settings)
        self._order, self._by_aor, self._by_user = [], {}, {}
        for account in loaded.accounts.values():
            self._accounts[account.id] = account
            self._by_aor[aor_key(account.aor)] = account.id
            user = account.aor_uri.user
            if user:
                self._by_user.setdefault(user, set()).add(account.id)
        self._order = sorted(self._accounts)

    def _load(self) -> _Loaded:
        path = self.settings.path
        accounts: dict[str, AccountConfig] = {}
        where: dict[str, str] = {}  # for messages: where each account was read
        by_aor: dict[AorKey, str] = {aor_key(self.local.aor): LOCAL_ID}

        def take(account_id: str, table: Any, source: Path, label: str,
                 known: AccountConfig | None = None) -> None:
            try:
                account = known or AccountConfig.from_storage(account_id, table)
            except SettingError as error:
                raise ConfigError(f"{source}: {error}", path=source, key=error.key) from None
            key = aor_key(account.aor)
            if key in by_aor:
                other = by_aor[key]
                raise ConfigError(f"accounts {other!r} ({where.get(other, 'built in')}) and "
                                  f"{account_id!r} ({label}) have the same AOR "
                                  f"{account.aor}; remove one of them",
                                  path=source, key=f"{SECTION}.{account_id}.aor")
            by_aor[key] = account_id
            accounts[account_id] = account
            where[account_id] = label

        for account_id, table in self.settings.section(SECTION).items():
            if account_id == LOCAL_ID:
                log.warning("%s: [accounts.local] is ignored: the local account is built in "
                            "and has no settings", path)
                continue
            take(account_id, table, path, f"{path}")
        in_settings = set(accounts)
        tables = self.directory.load()
        try:
            for account_id, table in tables.items():
                source = self.directory.file(account_id)
                if account_id == LOCAL_ID:
                    log.warning("%s is ignored: the local account is built in and has no "
                                "settings", source)
                    continue
                if account_id in accounts:
                    raise ConfigError(f"account {account_id!r} is both in {path} ([accounts."
                                      f"{account_id}]) and in {source}; keep one of them",
                                      path=source, key=f"{SECTION}.{account_id}")
                known = self._accounts.get(account_id)
                if (known is not None and account_id not in self.directory.changed
                        and account_id not in self._in_settings):
                    take(account_id, None, source, f"{source}", known)  # the file is as it was
                else:
                    take(account_id, table, source, f"{source}")
        except ConfigError:
            self.directory.forget()  # so the next load reads (and checks) every file again
            raise
        return _Loaded(accounts, in_settings)
