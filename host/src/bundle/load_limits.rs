//! Caps on what loading a bundle may cost: file sizes and the shape of the
//! module, checked before anything is compiled.
//!
//! Compiling WebAssembly to native code cannot be interrupted in-process,
//! and Cranelift's time grows with a function's size and, quadratically,
//! with how deeply its blocks nest. So instead of racing the compiler, the
//! host refuses modules whose shape could make it slow: every load then
//! finishes in bounded time and memory, or is refused naming the cap.
//! (Compiling in a child process under resource limits would bound any
//! shape, at the cost of a process per load and a second binary to ship;
//! the caps below leave room for any real policy: the ten reference
//! policies are 20 to 60 times under each.)

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
