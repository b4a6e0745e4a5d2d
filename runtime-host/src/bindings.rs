//! Generated bindings for what this host provides to, and calls in, the component.
//!
//! The WIT comes from the workspace's `wit/` (package `autodeploy:gateway` and its
//! vendored deps). The world below is synthesised so that only the interfaces this
//! crate implements itself are generated: the wasi 0.2 and `wasi:http` imports come from
//! `wasmtime-wasi` / `wasmtime-wasi-http`.

wasmtime::component::bindgen!({
    path: "../wit",
    inline: r#"
        package autodeploy:runtime-host;

        world runtime-host {
            import fermyon:spin/variables@2.0.0;
            import fermyon:spin/key-value@2.0.0;
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;

            export autodeploy:gateway/trigger@0.1.0;
        }
    "#,
    world: "autodeploy:runtime-host/runtime-host",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "fermyon:spin/key-value.store": crate::kv_bindings::SpinStore,
        "wasi:keyvalue/store.bucket": crate::kv_bindings::Bucket,
        "wasi:keyvalue/atomics.cas": crate::kv_bindings::Cas,
    },
    require_store_data_send: true,
});
