"""The files a run left in /output, as MCP content: images that clients display, the rest as
embedded resources, within a cap on what one tool result carries."""

import base64

from mcp.types import (
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)

from agentbox.limits import MCP_MAX_FILE_CONTENT_BYTES
from agentbox.result import OutputFile

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})
URI_PREFIX = "agentbox://output/"

Block = ImageContent | EmbeddedResource | TextContent


def _text(file: OutputFile) -> str | None:
    if not (file.media_type.startswith("text/") or file.media_type in _TEXT_TYPES):
        return None
    try:
        return file.data.decode("utf-8")
    except UnicodeDecodeError:
        return None


_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})


def file_blocks(files: list[OutputFile]) -> list[Block]:
    """One content block per file while the total stays within the cap; then one line listing
    what did not fit (those files are still in the structured result's list)."""
    blocks: list[Block] = []
    left_out: list[str] = []
    room = MCP_MAX_FILE_CONTENT_BYTES
    for file in files:
        if file.size > room:
            left_out.append(file.name)
            continue
        room -= file.size
        uri = URI_PREFIX + file.name
        encoded = base64.b64encode(file.data).decode("ascii")
        text = _text(file)
        if file.media_type in IMAGE_TYPES:
            blocks.append(ImageContent(type="image", data=encoded, mime_type=file.media_type))
        elif text is not None:
            resource = TextResourceContents(uri=uri, mime_type=file.media_type, text=text)
            blocks.append(EmbeddedResource(type="resource", resource=resource))
        else:
            blob = BlobResourceContents(uri=uri, mime_type=file.media_type, blob=encoded)
            blocks.append(EmbeddedResource(type="resource", resource=blob))
    if left_out:
        names = ", ".join(repr(name) for name in left_out[:5]) + (
            ", ..." if len(left_out) > 5 else ""
        )
        blocks.append(
            TextContent(
                type="text",
                text=f"[agentbox: {len(left_out)} files from /output not included, over the "
                f"{MCP_MAX_FILE_CONTENT_BYTES}-byte cap of one result: {names}]",
            )
        )
    return blocks
