//! Caps on what loading a bundle may cost: file sizes and the shape of the
//! module, checked before anything is compiled.
//!
//! The caps bound what a module can make the host read, parse and hold:
//! its bytes, its functions, their sizes, locals and nesting. They leave
//! room for any real policy (the ten reference policies are 20 to 60 times
//! under each). They do not bound compile time: Cranelift cannot be
//! interrupted in-process, and its time is not linear in anything a shape
//! shows (a few kilobytes of loops around live locals take minutes, see
//! docs/threat-model.md). What bounds it is a compile child under a
//! CPU-time limit (`sandbox::child`,
//! [`HostBuilder::compile_in_child`](crate::HostBuilder::compile_in_child)).

/// Caps on a bundle's files and on its module's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest `manifest.toml`, in bytes.
    pub manifest_bytes: u64,
    /// Largest `policy.wasm`, in bytes.
    pub module_bytes: u64,
    /// Most functions a module may define.
    pub functions: u32,
    /// Largest function body, in bytes.
    pub function_bytes: u32,
    /// Most locals one function may declare.
    pub locals: u32,
    /// Deepest nesting of blocks, loops and ifs in one function.
    pub nesting: u32,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            manifest_bytes: 1 << 20,
            module_bytes: 16 << 20,
            functions: 20_000,
            function_bytes: 1 << 20,
            locals: 50_000,
            nesting: 512,
        }
    }
}
