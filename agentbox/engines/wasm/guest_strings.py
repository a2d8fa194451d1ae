"""Host functions that read the guest's strings in bounded pieces instead of whole.

wasmtime-py converts every string argument of a host function to a Python `str` before the
function runs (a `bytes` copy, then the decoded `str`), and the host code then copied it again:
a 120 MB `write-output` raised the host's peak memory by ~700 MiB whatever `--max-output` was.
Here a string argument arrives as a `GuestText`: a view of the bytes wasmtime lifted, read by
the host function only as far as it needs, in pieces of at most CHUNK_BYTES.

What remains, and cannot be avoided with wasmtime's dynamic component API (wasmtime-py uses
the C API's `wasmtime_component_linker_instance_add_func`): before any host code runs, wasmtime
lifts the string out of the guest's memory (one copy, validated as UTF-8) and the C API copies
it into the argument array (a second one). Both are freed when the call returns. So one call's
transient cost is twice the string's UTF-8 size, and a guest string lies in the guest's linear
memory, so it is at most the run's `--memory` limit. No WIT type other than fixed-size scalars
avoids this; docs/security.md states the bound and the test that measures it.

This relies on wasmtime-py's `_ffi` bindings (wasmtime is pinned to an exact version).
"""

import codecs
import ctypes
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import FuncType, LinkerInstance
from wasmtime.component._enter import catch_exceptions

# The most of a guest string decoded at once.
CHUNK_BYTES = 64 * 1024


class GuestText:
    """A string argument as wasmtime lifted it: UTF-8 bytes, valid only during the call."""

    def __init__(self, vector: Any) -> None:
        self.size: int = vector.size
        self._address = ctypes.cast(vector.data, ctypes.c_void_p).value or 0

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
        """The text, decoded piece by piece (a piece never splits a character)."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for offset in range(0, self.size, chunk_bytes):
            length = min(chunk_bytes, self.size - offset)
            yield decoder.decode(ctypes.string_at(self._address + offset, length))
        yield decoder.decode(b"", final=True)

    def text(self, max_bytes: int) -> str | None:
        """The whole text, or None if it is longer than `max_bytes` (then nothing is copied)."""
        if self.size > max_bytes:
            return None
        return ctypes.string_at(self._address, self.size).decode("utf-8", "replace")

    def prefix(self, max_bytes: int) -> str:
        """The text's first `max_bytes` bytes at most (cut at a character boundary)."""
        head = ctypes.string_at(self._address, min(self.size, max_bytes))
        return codecs.getincrementaldecoder("utf-8")("replace").decode(head)


HostFunction = Callable[..., Any]
# Keeps each registered function alive for as long as wasmtime may call it.
_FUNCTIONS: dict[int, HostFunction] = {}
_keys = itertools.count(1)


def add_func(instance: LinkerInstance, name: str, function: HostFunction) -> None:
    """`instance.add_func(name, function)`, but `function` receives each string argument as a
    `GuestText` (other arguments and the result are converted as wasmtime-py does)."""
    key = next(_keys)
    _FUNCTIONS[key] = function
    encoded = name.encode("utf-8")
    error = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(),
        ctypes.create_string_buffer(encoded),
        len(encoded),
        _call,
        key,
        _finalize,
    )
    if error:
        from wasmtime import WasmtimeError

        raise WasmtimeError._from_ptr(error)


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _call(
    key: int | None,
    context: Any,
    type_pointer: Any,
    arguments: Any,
    count: int,
    results: Any,
    result_count: int,
) -> Any:
    """wasmtime-py's own callback, except that string arguments are not converted."""

    def run(store: Any) -> None:
        function = _FUNCTIONS[key or 0]
        with FuncType._from_ptr(type_pointer, owner=store) as function_type:
            parameters = [
                GuestText(arguments[index].of.string)
                if arguments[index].kind == ffi.WASMTIME_COMPONENT_STRING.value
                else value_type.convert_from_c(arguments[index])
                for index, (_, value_type) in zip(range(count), function_type.params, strict=True)
            ]
            result = function(store, *parameters)
            result_type = function_type.result
            if result_type is not None and result_count == 1:
                result_type.convert_to_c(store, result, results)

    return catch_exceptions(context, run)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _finalize(key: int | None) -> None:
    _FUNCTIONS.pop(key or 0, None)
