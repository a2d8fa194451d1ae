"""The `asteval` engine: asteval's AST interpreter in a killable, resource-limited child process.

asteval walks the script's AST itself and never hands it to CPython's compiler, so only the
node types it implements exist (no `import`, no classes, no generators). Its attribute check
is a deny-list; this engine adds every `_` name, the frame/code walks and module-valued
attributes to it. asteval 1.0.x has no execution time limit of its own, so deadlines and
memory are the child process's (`_child`), exactly as for the `restricted` engine.
"""

import ast
import os
import re
import sys
import types
from collections.abc import Callable
from typing import Any

import asteval
from asteval.astutils import safe_getattr

from agentbox.engines._child import ChildHost, ChildProcessEngine, Script, exit_status
from agentbox.engines.restricted import is_denied
from agentbox.exit_codes import ExitCode

# The longest script asteval will parse (its default is 50,000 characters).
MAX_STATEMENT_LENGTH = 1_000_000
# Symbols of asteval's default table a script does not get: `open` reads host files, `dir`
# lists dunder names, `id` leaks addresses.
REMOVED_SYMBOLS = ("open", "dir", "id")


class AstevalEngine(ChildProcessEngine):
    """asteval plus a child process for real timeouts and memory limits."""

    name = "asteval"


class ScriptExit(Exception):
    """`sys.exit()` inside asteval, which refuses to let SystemExit through (1.0.9+)."""

    def __init__(self, code: object = None) -> None:
        super().__init__(code)
        self.code = code


def _exit(code: object = None) -> None:
    raise ScriptExit(code)


class _Interpreter(asteval.Interpreter):  # type: ignore[misc]  # asteval ships no types
    """asteval with the stricter attribute policy of the `restricted` engine."""

    def on_attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.ctx, ast.Store):
            return super().on_attribute(node)  # asteval reports this as its own error
        obj, name = self.run(node.value), node.attr
        if is_denied(obj, name):
            self.raise_exception(node, exc=AttributeError, msg=f"no safe attribute {name!r}")
        if isinstance(node.ctx, ast.Del):
            return delattr(obj, name)
        value = safe_getattr(
            obj, name, self.raise_exception, node, allow_unsafe_modules=self.allow_unsafe_modules
        )
        if isinstance(value, types.ModuleType | types.FrameType | types.CodeType):
            self.raise_exception(node, exc=AttributeError, msg=f"no safe attribute {name!r}")
        return value


def host_path_scrubber() -> Callable[[str], str]:
    """Replace every path under the host's Python, agentbox or working folder with
    `<host path>`: an error message (a library's, the interpreter's) must not show them."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.getcwd(), os.path.expanduser("~")}
    roots |= {entry for entry in sys.path if os.path.isabs(entry)}
    roots = {root.rstrip(os.sep) for root in roots if len(root.rstrip(os.sep)) > 1}
    pattern = re.compile(
        "|".join(re.escape(root) + r"[^\s'\":,)]*" for root in sorted(roots, key=len, reverse=True))
    )
    return lambda text: pattern.sub("<host path>", text)


def prepare() -> Callable[[Script, ChildHost], tuple[int, str]]:
    """Import now what a run may need: after the OS layer no file can be opened."""
    # CPython's parser imports `unicodedata` to normalise a non-ASCII identifier (NFKC).
    import unicodedata  # noqa: F401

    scrub = host_path_scrubber()

    def execute(script: Script, host: ChildHost) -> tuple[int, str]:
        sys_shim = types.SimpleNamespace(
            argv=list(script.argv),
            exit=_exit,
            stdin=script.stdin,
            stdout=host.stdout,
            stderr=host.stderr,
        )
        interpreter = _Interpreter(
            nested_symtable=True,
            use_numpy=False,
            writer=host.stdout,
            err_writer=host.stderr,
            max_statement_length=MAX_STATEMENT_LENGTH,
            user_symbols={
                "call_skill": host.call_skill,
                "exit": _exit,
                "skills": host.skills,
                "SkillError": host.skills.SkillError,
                "sys": sys_shim,
            },
        )
        for name in REMOVED_SYMBOLS:
            interpreter.symtable.pop(name, None)
        try:
            text = script.source.decode("utf-8")
        except UnicodeDecodeError as error:
            print(f"SyntaxError: script is not UTF-8: {error}", file=host.stderr)
            return ExitCode.SCRIPT_ERROR, "SyntaxError"
        interpreter.eval(text, show_errors=False, raise_errors=False)
        if not interpreter.error:
            return ExitCode.OK, ""
        failure = interpreter.error[0]
        raised = failure.exc_info[1]
        if isinstance(raised, ScriptExit):
            return exit_status(raised.code, host.stderr), ""
        exc_name, message = failure.get_error()
        lineno = failure.lineno or getattr(raised, "lineno", None) or 1
        host.stderr.write(f'  File "{script.filename}", line {lineno}\n{scrub(message)}\n')
        return ExitCode.SCRIPT_ERROR, exc_name

    return execute
