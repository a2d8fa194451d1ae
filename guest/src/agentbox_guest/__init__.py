"""The code that runs inside the sandbox: booted and snapshotted at build time."""
