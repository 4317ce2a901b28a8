"""Imports point down only: protocol → gameserver core → gameserver.trio → clients."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {"trio", "websockets", "socket", "asyncio", "ssl", "selectors"}


def imported_top_modules(path: Path) -> set[str]:
    """Top-level names of absolute imports; "gameserver.trio" for a relative import of the shell."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level > 0
            and node.module
            and node.module.split(".")[0] == "trio"
            and "trio" not in path.parts
        ):
            # .trio from a core module would reach up into the shell.
            names.add("gameserver.trio")
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("protocol"), ids=lambda p: p.name)
def test_protocol_does_no_io_and_imports_nothing_above_it(path: Path) -> None:
    """protocol/ is pure: no I/O library, no server or client import."""
    bad = imported_top_modules(path) & (IO_LIBRARIES | {"gameserver", "clients"})
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


CORE = [p for p in modules("gameserver") if "trio" not in p.relative_to(ROOT).parts[1:-1]]
CORE = [p for p in CORE if p.name != "__main__.py"]


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_is_sans_io(path: Path) -> None:
    """The gameserver core imports neither trio, websockets nor sockets, nor the shell."""
    bad = imported_top_modules(path) & (IO_LIBRARIES | {"clients", "gameserver.trio"})
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_core_list_is_not_empty() -> None:
    """The layering check really looks at the core modules."""
    names = {p.name for p in CORE}
    assert {"session.py", "room.py", "tick.py", "latency.py", "outbox.py"} <= names


@pytest.mark.parametrize("path", modules("gameserver"), ids=lambda p: str(p.relative_to(ROOT)))
def test_server_never_imports_clients(path: Path) -> None:
    """The server does not depend on its clients."""
    assert "clients" not in imported_top_modules(path)
