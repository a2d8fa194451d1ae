"""Long-lived modes built on the public core: the session manager, the MCP server (with its
stdio transport) and the HTTP server. Nothing below this layer imports it."""
