"""The WebAssembly engine and everything only it uses.

`engine` runs scripts in instances of the snapshotted guest (`GuestInstance`, `WasmEngine`);
`runtime` holds the process-wide wasmtime Engine, Linker and epoch ticker; `compile_cache`
keeps the guest compiled for this machine; `guest_image` locates the packaged guest;
`host_functions` are the WIT imports the guest calls; `threads` and `pool` are the run threads
and the warm pool; `stdlib_support` lists the standard-library modules the guest cannot offer.

Nothing is imported here: `agentbox run` and the `auto` engine's probe load wasmtime only when
they use this engine.
"""
