"""What a cell reads and assigns, from its source alone (``ast`` and ``symtable``).

*Reads* are the global names the cell (or any function, class or comprehension in it)
looks up; *assigns* are the names it binds at top level (assignments, imports, ``def``,
``class``, ``for`` targets, ``with ... as``, walrus). The kernel sends the reads that exist
in the user namespace and brings the assigns back.
"""

from __future__ import annotations

import ast
import builtins
import symtable
from dataclasses import dataclass

_BUILTINS = frozenset(dir(builtins))


class CellSyntaxError(SyntaxError):
    """The cell is not plain Python (IPython syntax such as ``!cmd`` or ``%magic`` is not
    supported in a remote cell); ``lineno`` counts from the notebook cell's first line."""


@dataclass(frozen=True)
class CellCode:
    reads: tuple[str, ...]  # in first-seen order
    assigns: tuple[str, ...]
    displays_last: bool  # the last statement is an expression whose value is shown


def parse(source: str, first_line: int = 1, filename: str = "<cell>") -> ast.Module:
    """The cell's AST with line numbers as the notebook shows them (the body of a cell
    magic starts on line 2)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        line = (exc.lineno or 1) + first_line - 1
        text = (exc.text or "").strip()
        hint = ""
        if text.startswith(("!", "%")):
            hint = " (IPython syntax such as !command or %magic cannot run in a remote cell)"
        err = CellSyntaxError(f"{exc.msg}{hint}", (filename, line, exc.offset, exc.text or ""))
        raise err from None
    if first_line != 1:
        ast.increment_lineno(tree, first_line - 1)
    return tree


def analyse(source: str, first_line: int = 1) -> CellCode:
    tree = parse(source, first_line)
    table = symtable.symtable(source, "<cell>", "exec")
    referenced: dict[str, None] = {}
    bound: dict[str, None] = {}
    _collect(table, referenced, bound, top=True)
    # a name the cell binds unconditionally before any statement that reads it needs no
    # value from the kernel (x = 1; print(x)); one it reads first does (df = df.dropna())
    first_read: dict[str, int] = {}
    first_bind: dict[str, int] = {}
    for i, node in enumerate(tree.body):
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Load, ast.Del)):
                first_read.setdefault(child.id, i)
        for name in _unconditionally_bound(node):
            first_bind.setdefault(name, i)
    reads = [
        n
        for n in referenced
        if (n not in first_bind or first_read.get(n, len(tree.body)) <= first_bind[n])
        and (n not in _BUILTINS or n in bound)
    ]
    last = tree.body[-1] if tree.body else None
    displays_last = isinstance(last, ast.Expr) and not source.rstrip().endswith(";")
    return CellCode(reads=tuple(reads), assigns=tuple(bound), displays_last=displays_last)


def _collect(table: symtable.SymbolTable, reads: dict[str, None], binds: dict[str, None], top: bool) -> None:
    """Global names looked up and bound, in this scope and the scopes nested in it."""
    for sym in table.get_symbols():
        name = sym.get_name()
        if top or sym.is_global():
            if sym.is_referenced():
                reads.setdefault(name, None)
            if (top and (sym.is_assigned() or sym.is_imported())) or (
                sym.is_declared_global() and sym.is_assigned()
            ):
                binds.setdefault(name, None)
    for child in table.get_children():
        _collect(child, reads, binds, top=False)


def _unconditionally_bound(node: ast.stmt) -> list[str]:
    """Names a top-level statement always binds (not under if/for/try)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    names: list[str] = []
    for target in targets:
        for child in ast.walk(target):
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names.append(child.id)
    return names
