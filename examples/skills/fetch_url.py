"""A host skill that replaces raw network access: fetch a URL, but only from allowed hosts.

    agentbox run --skills examples/skills/fetch_url.py examples/fetch_demo.py

The sandboxed script has no network at all; this function runs on the host with your authority
and decides what may be fetched. Allowed hosts come from AGENTBOX_FETCH_ALLOW (comma-separated;
default: example.com), read on the host, never visible to the sandbox.
"""

import os
import urllib.parse
import urllib.request

import agentbox

MAX_BYTES = 256 * 1024


def allowed_hosts() -> set[str]:
    names = os.environ.get("AGENTBOX_FETCH_ALLOW", "example.com")
    return {name.strip().lower() for name in names.split(",") if name.strip()}


@agentbox.skill(timeout=15)
def fetch_url(url: str) -> dict:
    """Fetch an http(s) URL from an allowed host; returns status, content type and text."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise agentbox.SkillFailure(f"only http and https URLs are allowed, not {parts.scheme!r}")
    host = (parts.hostname or "").lower()
    if host not in allowed_hosts():
        raise agentbox.SkillFailure(f"host {host!r} is not on the allowlist")
    request = urllib.request.Request(url, headers={"User-Agent": "agentbox-fetch-url/1"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read(MAX_BYTES + 1)
        return {
            "status": response.status,
            "content_type": response.headers.get_content_type(),
            "text": body[:MAX_BYTES].decode("utf-8", "replace"),
            "truncated": len(body) > MAX_BYTES,
        }
