"""Sandboxed side of the fetch_url example: no sockets, only the skill the host offers."""

import sys

import skills

url = sys.argv[1] if len(sys.argv) > 1 else "https://example.com/"
try:
    page = skills.fetch_url(url=url)
    print(page["status"], page["content_type"], len(page["text"]), "characters")
except skills.SkillError as error:
    print("refused:", error)

try:
    import urllib.request

    urllib.request.urlopen(url, timeout=2)
except OSError as error:
    print("direct network access fails:", type(error).__name__)
