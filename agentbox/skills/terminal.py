"""Asking the human at the terminal, even when stdin carries the script."""

import os
import sys

# An answer is a word: a longer line is read no further (the rest is discarded with the line).
_MAX_ANSWER_BYTES = 256


def shown_safely(text: str) -> str:
    """`text` with every character a terminal could act on (control, format, separator and
    unassigned characters: escape sequences, bidi overrides) written as a Python escape."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def confirm_on_terminal(question: str) -> bool:
    """True only if a human at the controlling terminal answers yes; False when there is none.

    The terminal is used unbuffered and in bytes: a text-mode `open('/dev/tty', 'r+')` needs a
    seekable file and fails on every real terminal, which used to read as "no terminal".
    """
    prompt = f"{shown_safely(question)} [y/N] ".encode("utf-8", "replace")
    try:
        answer = _ask_windows(prompt) if sys.platform == "win32" else _ask_posix(prompt)
    except OSError:
        return False
    return answer.strip().lower() in (b"y", b"yes")


def _ask_posix(prompt: bytes) -> bytes:
    descriptor = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    try:
        _write_all(descriptor, prompt)
        return _read_line(descriptor)
    finally:
        os.close(descriptor)


def _ask_windows(prompt: bytes) -> bytes:
    with open("CONOUT$", "wb", buffering=0) as output, open("CONIN$", "rb", buffering=0) as term:
        output.write(prompt)
        return _read_line(term.fileno())


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _read_line(descriptor: int) -> bytes:
    """One line (without reading past it); empty at end of input."""
    line = bytearray()
    while True:
        byte = os.read(descriptor, 1)
        if not byte or byte == b"\n":
            return bytes(line)
        if len(line) < _MAX_ANSWER_BYTES:
            line += byte
