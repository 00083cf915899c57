"""The README's custom space, as the code a user copies: loaded as a module, or installed as
a plugin package (a folder on ``PYTHONPATH`` with its ``*.dist-info`` and entry point)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MODULE = "wide_mlp"
SPACE = "wide-mlp"


def readme_space_code() -> str:
    """The python block under the README's "Your own space" heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Your own space") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, "the README's custom space section has no python block"
    return match.group(1)


def load_readme_module() -> types.ModuleType:
    """The README's code as the module ``wide_mlp`` (registered in ``sys.modules``, so that
    its space pickles by reference)."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    module = types.ModuleType(MODULE)
    module.__file__ = f"<README.md: {MODULE}.py>"
    sys.modules[MODULE] = module
    exec(compile(readme_space_code(), module.__file__, "exec"), module.__dict__)
    return module


def install_plugin(
    root: Path, *, entry: str = f"{MODULE}:register", code: str | None = None
) -> Path:
    """Write the README's module and an installed-package record whose ``nasforge.plugins``
    entry point names ``entry`` into ``root``; put ``root`` on ``PYTHONPATH`` to use it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{MODULE}.py").write_text(code if code is not None else readme_space_code())
    info = root / f"{MODULE}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {MODULE}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nasforge.plugins]\n{SPACE} = {entry}\n")
    return root
