"""Asking the human at the terminal, even when stdin carries the script."""

import sys


def confirm_on_terminal(question: str) -> bool:
    """True only if a human at the controlling terminal answers yes; False when there is none."""
    device = "CON" if sys.platform == "win32" else "/dev/tty"
    try:
        with open(device, "r+", encoding="utf-8", errors="replace") as terminal:
            terminal.write(f"{question} [y/N] ")
            terminal.flush()
            answer = terminal.readline().strip().lower()
    except OSError:
        return False
    return answer in ("y", "yes")
