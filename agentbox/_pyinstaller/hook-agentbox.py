"""PyInstaller hook for agentbox: wasmtime's native library, the guest, the CLI commands.

wasmtime-py loads `wasmtime/<os>-<arch>/_libwasmtime.{so,dylib}` (`_wasmtime.dll`) relative to
its package and pyinstaller-hooks-contrib has no hook for it, so it is collected here at that
path. With AGENTBOX_PYINSTALLER_PAYLOAD set (by `packaging/build_binary.py --onefile`), the
library and the guest are left out: they travel compressed inside the PYZ and are unpacked once
into the user cache instead of on every start (see `payload_runtime.py` next to this file).
"""

import os
from pathlib import Path

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

from agentbox._pyinstaller import (
    EXCLUDED_MODULES,
    PAYLOAD_VARIABLE,
    guest_files,
    wasmtime_library,
)
from agentbox.engines._curated import LAZY_IMPORTS
from agentbox.engines.restricted import ALLOWED_MODULES

# The CLI imports each command module by name only when it is invoked (agentbox/cli/__init__.py).
hiddenimports = collect_submodules("agentbox.cli")
# The engines are chosen by name at run time (agentbox/engines/registry.py, _child.py), and the
# fallback engines' libraries are imported only inside their child process.
# The data image's init source is guest code (it imports numpy, pandas, matplotlib inside the
# image): collected as a file the build reads, never analysed as a module of the binary.
_GUEST_INIT = "agentbox.engines.wasm.data_image.guest_init"
hiddenimports += collect_submodules("agentbox.engines", filter=lambda name: name != _GUEST_INIT)
hiddenimports += collect_submodules("RestrictedPython") + collect_submodules("asteval")
# The stdlib modules a restricted script may import are imported by name in the child.
hiddenimports += sorted(ALLOWED_MODULES) + list(LAZY_IMPORTS)
# The fallback child's OS layer on Linux (it warns and runs without when this is missing).
hiddenimports += ["pyseccomp"]
# compile_cache calls importlib.metadata.version("wasmtime").
datas = copy_metadata("wasmtime")
binaries = []
if not os.environ.get(PAYLOAD_VARIABLE):
    library = wasmtime_library()
    binaries.append((str(library), f"wasmtime/{library.parent.name}"))
    datas += [(str(path), "agentbox/guest") for path in guest_files()]
# Printed by `agentbox licenses`: the package's list (the guest's licenses). A binary built by
# packaging/build_binary.py bundles, in its place, the list of everything that build collected.
_licenses = Path(__file__).parent.parent / "THIRD_PARTY_LICENSES"
if _licenses.is_file():
    datas.append((str(_licenses), "agentbox"))
datas.append(
    (
        str(Path(__file__).parent.parent / "engines" / "wasm" / "data_image" / "guest_init.py"),
        "agentbox/engines/wasm/data_image",
    )
)
excludedimports = list(EXCLUDED_MODULES)
