"""Run the Argo CD health check (gitops/argocd/health.lua) with a real Lua 5.1.

Argo CD evaluates health scripts with gopher-lua, a Lua 5.1 implementation:
the script sees the live object as the global `obj` and returns a table with
`status` and `message`. Here the object is written as a Lua table literal, the
script runs under the `lua5.1` interpreter (Debian package `lua5.1`), and the
result is read back from its output.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cluster import REPO

ARGOCD = REPO / "gitops" / "argocd"
HEALTH_LUA = ARGOCD / "health.lua"
LUA = "lua5.1"

HARNESS = """
obj = {obj}
local check = assert(loadfile({script}))
local result = check()
assert(type(result) == "table", "the health check must return a table")
io.write(tostring(result.status), "\\n", tostring(result.message))
"""


@dataclass(frozen=True)
class Health:
    status: str
    message: str


def lua_string(text: str) -> str:
    """A Lua 5.1 string literal of `text` (UTF-8 bytes; non-printables as \\ddd)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_value(value: Any) -> str:
    """A Lua table constructor for a decoded JSON/YAML value (null -> nil)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_value(v) for v in value) + "}"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"[{lua_string(str(k))}] = {lua_value(v)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(f"cannot express {type(value).__name__} in Lua")


def lua_interpreter() -> str | None:
    return shutil.which(LUA)


def run_health_check(obj: dict[str, Any], script: Path = HEALTH_LUA) -> Health:
    """Evaluate `script` on `obj` as Argo CD does; raise on a Lua error."""
    lua = lua_interpreter()
    if lua is None:
        raise RuntimeError(f"{LUA} is missing: apt-get install lua5.1")
    program = HARNESS.format(obj=lua_value(obj), script=lua_string(str(script)))
    proc = subprocess.run(
        [lua, "-"], input=program, capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {proc.stderr}")
    status, _, message = proc.stdout.partition("\n")
    return Health(status, message)
