"""The domain stays pure: no I/O, no web, database or messaging imports, no wall clock; and no
layer imports a higher one (domain < infra < projections < services < api < tools)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = {"eventsourcing.domain",  # the library's pure aggregate base classes
                       # Ed25519 as pure computation (domain/note.py: signed notes)
                       "cryptography.exceptions", "cryptography.hazmat.primitives.asymmetric.ed25519",
                       "cryptography.hazmat.primitives.serialization"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "open"}


def imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_domain_imports_only_the_standard_library_and_itself():
    for path in DOMAIN.glob("*.py"):
        for name in imports(ast.parse(path.read_text())):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "domain" or name in ALLOWED_THIRD_PARTY, (path.name, name)


def test_domain_never_reads_the_wall_clock():
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in FORBIDDEN_CALLS or path.name == "clock.py", (path.name, node.func.attr)


# Layers, lowest first: a module may import its own layer and those below, never one above.
LAYERS = ["domain", "infra", "projections", "services", "api", "tools"]
ROOT = DOMAIN.parent


def test_no_layer_imports_a_higher_one():
    wrong = []
    for rank, layer in enumerate(LAYERS):
        for path in sorted((ROOT / layer).rglob("*.py")):
            for name in imports(ast.parse(path.read_text())):  # deferred imports count too
                top = name.split(".")[0]
                if top in LAYERS and LAYERS.index(top) > rank:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == [], "\n".join(wrong)
