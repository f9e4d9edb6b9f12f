"""The built-in pipeline steps, under fleetdist's names and distman's.

A dist.json written for distman names `distman.transform.replace_tokens`;
fleetdist maps that name (and `fleetdist.distman.transforms.replace_tokens`)
to these functions without importing distman.  Each is called as distman
calls a step, `func(input=, output=, **options)`, plus `values`: the `{VAR}`
lookup of this run, which `replace_tokens` resolves its token values with.
"""

from __future__ import annotations

import importlib
import os
import py_compile
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fleetdist.config.distman import DistError
from fleetdist.distman.env import resolve
from fleetdist.distman.files import walk

Transform = Callable[..., Any]


def _is_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" in f.read(1024)


def _text_files(root: Path) -> list[Path]:
    return [p for p in walk(root, all_files=False) if p.is_file() and not p.is_symlink()]


def _seed(input: str, output: str) -> Path:
    """`output` holding a copy of `input` (file or tree), for steps that edit in place."""
    src, dst = Path(input), Path(output)
    if src.resolve() == dst.resolve():
        return dst
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return dst


def replace_tokens(
    input: str, output: str, tokens: Mapping[str, str], values: Mapping[str, str] = {}, **_: Any
) -> str:
    """Replace each token key by its value (`{VAR}` in values resolved) in text files."""
    dst = _seed(input, output)
    resolved = {k: resolve(str(v), values, f"replace_tokens {k}") for k, v in tokens.items()}
    for path in _text_files(dst) if dst.is_dir() else [dst]:
        if path.stat().st_size == 0 or _is_binary(path):
            continue
        text = path.read_text(encoding="utf-8")
        for key, value in resolved.items():
            text = text.replace(key, value)
        path.write_text(text, encoding="utf-8")
    return output


def chmod(input: str, output: str, mode: str, **_: Any) -> str:
    """Set the mode (octal string, e.g. "750") of the output."""
    dst = _seed(input, output)
    try:
        os.chmod(dst, int(str(mode), 8))
    except ValueError:
        raise DistError(f"chmod: mode {mode!r} is not an octal number") from None
    return output


def byte_compile(input: str, output: str, **_: Any) -> str:
    """Replace .py files by their .pyc (a directory), or write the .pyc of one file."""
    src = Path(input)
    if src.is_dir():
        dst = _seed(input, output)
        for path in _text_files(dst):
            py_compile.compile(str(path), cfile=f"{path}c", dfile=str(path.relative_to(dst)))
            os.chmod(f"{path}c", path.stat().st_mode & 0o7777)
            path.unlink()
        return output
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(input, cfile=output, dfile=src.name)
    os.chmod(output, src.stat().st_mode & 0o7777)
    return output


def _optional(module: str) -> Any:
    """jsmin / htmlmin, distman's optional minifiers, if installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DistError(f"minify: needs the {module} package (pip install {module})") from None


def _minified(path: Path, strict: bool) -> str | None:
    ext = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if ext in (".css", ".css3"):
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        text = re.sub(r"\s+", " ", text)
        return re.sub(r"\s*([{}:;,])\s*", r"\1", text)
    if ext == ".txt":
        return re.sub(r"\s+", " ", text.strip())
    if ext == ".js":
        return str(_optional("jsmin").jsmin(text, quote_chars="'\"`"))
    if ext in (".html", ".htm"):
        return str(_optional("htmlmin").minify(text, remove_comments=True, remove_empty_space=True))
    if strict:
        raise DistError(f"minify: unsupported file type {ext or path.name}")
    return None


def minify(input: str, output: str, strict: bool = False, **_: Any) -> str:
    """Collapse whitespace in .css and .txt files (others copied, or refused if strict)."""
    dst = _seed(input, output)
    for path in _text_files(dst) if dst.is_dir() else [dst]:
        if _is_binary(path):
            continue
        text = _minified(path, strict)
        if text is not None:
            path.write_text(text, encoding="utf-8")
    return output


def dummy_transform(input: str, output: str, **_: Any) -> str:
    """Upper-case a text file (distman's example step)."""
    Path(output).write_text(Path(input).read_text(encoding="utf-8").upper(), encoding="utf-8")
    return output


BUILTINS: dict[str, Transform] = {
    f.__name__: f for f in (replace_tokens, chmod, byte_compile, minify, dummy_transform)
}
PREFIXES = ("distman.transform.", "fleetdist.distman.transforms.")


def builtin(dotted: str) -> Transform | None:
    """The built-in a dotted name stands for, under either package's name."""
    for prefix in PREFIXES:
        if dotted.startswith(prefix):
            return BUILTINS.get(dotted[len(prefix) :])
    return None
