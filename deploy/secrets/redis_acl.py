"""The Redis ACL file: one least-privilege user per role, the default user off.

Passwords appear only as SHA-256 hashes (``#<hex>``), so the file reveals none of them.
Key patterns are globs on the key prefix P (``~P*``: P itself and every key starting with
it, so a test may use ``P_1a2b`` as its prefix). Redis checks every command a Lua script
runs against the caller's rules, so a read-only user cannot write through EVAL either.

- ``worker``: read and write under the prefix, run the apply script; connection commands;
  no dangerous command (FLUSHALL, CONFIG, KEYS, DEBUG, ...), no key enumeration (SCAN,
  RANDOMKEY), no pub/sub.
- ``exporter``, ``reader``: read-only commands and the read script under the prefix (a
  write inside the script is refused: no write command is granted). The keys are not
  narrowed to ``%R~`` (read-only key access): Redis 7 treats EVAL's keys as read-write,
  so ``%R~`` would refuse the read script itself.
- ``replay``: its own registry (``P*:registry``) and send records (``P*:replay:*``) only,
  with the few set and hash commands and scripts a registration needs.
- ``admin``: every command under the prefix except the dangerous ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

KEY_PREFIX = re.compile(r"^[a-z0-9_]{1,32}$")

# Connection commands (AUTH, HELLO, PING, CLIENT SETNAME/ID/INFO/..., SELECT, RESET, ...)
# minus the dangerous ones (CLIENT LIST/KILL/PAUSE, ...).
CONNECTION = ("+@connection",)
SCRIPTS = ("+eval", "+evalsha", "+script|load", "+script|exists")
# apply.lua's bucket versions take Redis's own clock (TIME: neither @read nor @write).
CLOCK = ("+time",)
READ_SCRIPTS = (*SCRIPTS, "+eval_ro", "+evalsha_ro")
NO_DANGER = ("-@dangerous",)
NO_ENUMERATION = ("-scan", "-randomkey")
REPLAY_COMMANDS = (
    "+sadd",
    "+sismember",
    "+scard",
    "+smembers",
    "+hincrby",
    "+hset",
    "+hget",
)

ROLES = ("admin", "worker", "replay", "exporter", "reader")


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def role_rules(role: str, key_prefix: str) -> tuple[str, ...]:
    """The keys and commands ``role`` may use, in ACL rule syntax (order matters: later
    rules take away from earlier ones)."""
    if not KEY_PREFIX.fullmatch(key_prefix):
        raise ValueError("key prefix must be 1-32 characters of a-z 0-9 _")
    p = key_prefix
    if role == "admin":
        return (f"~{p}*", "resetchannels", "+@all", *NO_DANGER)
    if role == "worker":
        return (
            f"~{p}*",
            "resetchannels",
            *CONNECTION,
            "+@read",
            "+@write",
            *SCRIPTS,
            *CLOCK,
            *NO_DANGER,
            *NO_ENUMERATION,
        )
    if role in ("exporter", "reader"):
        return (
            f"~{p}*",
            "resetchannels",
            *CONNECTION,
            "+@read",
            *READ_SCRIPTS,
            *NO_DANGER,
            *NO_ENUMERATION,
        )
    if role == "replay":
        return (
            f"~{p}*:registry",
            f"~{p}*:replay:*",
            "resetchannels",
            *CONNECTION,
            *NO_DANGER,
            *REPLAY_COMMANDS,
            *SCRIPTS,
        )
    raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")


def acl_file(passwords: Mapping[str, str], key_prefix: str) -> str:
    """The ``aclfile`` text for the users in ``passwords`` (role -> password)."""
    # The ACL file has no comment syntax. The default user: off, no password, no keys,
    # no commands, so an unauthenticated connection can do nothing but AUTH / HELLO.
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    for role in ROLES:
        if role not in passwords:
            continue
        rules = " ".join(role_rules(role, key_prefix))
        lines.append(f"user {role} on #{password_hash(passwords[role])} {rules}")
    return "\n".join(lines) + "\n"
