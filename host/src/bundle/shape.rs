//! The shape check: a module's size, function count, function sizes,
//! locals and nesting, against [`LoadLimits`], before it is compiled; and
//! what an instance of it holds from the start (its memory, globals and
//! table), for the memory cap.

use wasmparser::{Operator, Parser, Payload};

use super::load_limits::LoadLimits;

/// Which cap a module exceeds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The module is larger than `module_bytes`.
    #[error("the module is {size} bytes, more than the {cap} allowed")]
    ModuleSize {
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// More functions than `functions`.
    #[error("the module defines {count} functions, more than the {cap} allowed")]
    Functions {
        /// How many it defines.
        count: u32,
        /// The cap.
        cap: u32,
    },
    /// A function body larger than `function_bytes`.
    #[error("function {index} is {size} bytes, more than the {cap} allowed")]
    FunctionSize {
        /// The function's index among those the module defines.
        index: u32,
        /// Its size.
        size: u32,
        /// The cap.
        cap: u32,
    },
    /// A function declares more locals than `locals`.
    #[error("function {index} declares more than the {cap} locals allowed")]
    Locals {
        /// The function's index among those the module defines.
        index: u32,
        /// The cap.
        cap: u32,
    },
    /// An instance would hold more from the start (initial memory, plus
    /// 16 bytes per global and 8 per table element) than the memory cap.
    #[error(
        "an instance would start with {bytes} bytes (memory, globals and tables), more than the memory cap of {cap}"
    )]
    Footprint {
        /// What an instance would hold.
        bytes: u64,
        /// The policy's memory cap.
        cap: u64,
    },
    /// Blocks nest deeper than `nesting`.
    #[error("function {index} nests blocks deeper than the {cap} levels allowed")]
    Nesting {
        /// The function's index among those the module defines.
        index: u32,
        /// The cap.
        cap: u32,
    },
}

/// What an instance of a module holds from the start, besides its code.
///
/// Globals and table elements live outside linear memory (in the
/// instance's own record), so the memory cap alone would not bound them: a
/// module of a million globals takes 16 MB per instance. They are counted
/// against the memory cap instead, at load, from the declarations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Initial linear memory, in bytes.
    pub(crate) memory_bytes: u64,
    /// Globals defined.
    pub(crate) globals: u64,
    /// Initial table elements, all tables together.
    pub(crate) table_elements: u64,
}

impl Footprint {
    /// What an instance holds from the start: memory, 16 bytes per global
    /// (the widest value), 8 per table element (a reference).
    pub(crate) fn bytes(&self) -> u64 {
        self.memory_bytes
            .saturating_add(self.globals.saturating_mul(16))
            .saturating_add(self.table_elements.saturating_mul(8))
    }

    /// Refused if an instance would start with more than `memory_cap` bytes.
    pub(crate) fn within(&self, memory_cap: u64) -> Result<(), ShapeError> {
        let bytes = self.bytes();
        if bytes > memory_cap { Err(ShapeError::Footprint { bytes, cap: memory_cap }) } else { Ok(()) }
    }
}

/// Checks `wasm` against `limits`; reading stops at the first cap exceeded.
/// Returns what an instance holds from the start.
///
/// Bytes that do not parse pass: the compiler validates the whole module
/// (in linear time) before it compiles anything, and refuses them with its
/// own, more precise message.
pub(crate) fn check(wasm: &[u8], limits: &LoadLimits) -> Result<Footprint, ShapeError> {
    let size = wasm.len() as u64;
    if size > limits.module_bytes {
        return Err(ShapeError::ModuleSize { size, cap: limits.module_bytes });
    }
    let mut footprint = Footprint::default();
    match check_parsed(wasm, limits, &mut footprint) {
        Err(Stop::Cap(cap)) => Err(cap),
        Ok(()) | Err(Stop::Malformed) => Ok(footprint),
    }
}

/// Why reading stopped early.
enum Stop {
    Cap(ShapeError),
    Malformed,
}

impl From<wasmparser::BinaryReaderError> for Stop {
    fn from(_: wasmparser::BinaryReaderError) -> Stop {
        Stop::Malformed
    }
}

fn check_parsed(wasm: &[u8], limits: &LoadLimits, footprint: &mut Footprint) -> Result<(), Stop> {
    let mut index = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::GlobalSection(globals) => footprint.globals += u64::from(globals.count()),
            Payload::TableSection(tables) => {
                for table in tables {
                    footprint.table_elements = footprint.table_elements.saturating_add(table?.ty.initial);
                }
            }
            Payload::MemorySection(memories) => {
                for memory in memories {
                    let pages = memory?.initial;
                    footprint.memory_bytes = footprint.memory_bytes.saturating_add(pages.saturating_mul(1 << 16));
                }
            }
            Payload::CodeSectionStart { count, .. } if count > limits.functions => {
                return Err(Stop::Cap(ShapeError::Functions { count, cap: limits.functions }));
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u32;
                if size > limits.function_bytes {
                    return Err(Stop::Cap(ShapeError::FunctionSize { index, size, cap: limits.function_bytes }));
                }
                let mut locals = 0u32;
                for group in body.get_locals_reader()? {
                    let (count, _) = group?;
                    locals = locals.saturating_add(count);
                    if locals > limits.locals {
                        return Err(Stop::Cap(ShapeError::Locals { index, cap: limits.locals }));
                    }
                }
                let mut depth = 0u32;
                let mut operators = body.get_operators_reader()?;
                while !operators.eof() {
                    match operators.read()? {
                        Operator::Block { .. }
                        | Operator::Loop { .. }
                        | Operator::If { .. }
                        | Operator::TryTable { .. }
                        | Operator::Try { .. } => {
                            depth += 1;
                            if depth > limits.nesting {
                                return Err(Stop::Cap(ShapeError::Nesting { index, cap: limits.nesting }));
                            }
                        }
                        Operator::End => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                index += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(body: &str) -> Vec<u8> {
        wat::parse_str(format!("(module (func {body}))")).unwrap()
    }

    fn nested(depth: usize) -> String {
        "(block ".repeat(depth) + &")".repeat(depth)
    }

    #[test]
    fn nesting_is_counted_per_function() {
        let limits = LoadLimits { nesting: 8, ..LoadLimits::default() };
        assert!(check(&module(&nested(8)), &limits).is_ok());
        assert_eq!(check(&module(&nested(9)), &limits), Err(ShapeError::Nesting { index: 0, cap: 8 }));
        // Siblings do not add up: depth returns at each `end`.
        assert!(check(&module(&nested(8).repeat(10)), &limits).is_ok());
    }

    #[test]
    fn globals_and_tables_count_against_the_memory_cap() {
        let wasm = wat::parse_str(
            "(module (memory 2) (table 100 funcref) (global i32 (i32.const 0)) (global i64 (i64.const 0)))",
        )
        .unwrap();
        let footprint = check(&wasm, &LoadLimits::default()).unwrap();
        assert_eq!(footprint, Footprint { memory_bytes: 2 << 16, globals: 2, table_elements: 100 });
        assert_eq!(footprint.bytes(), (2 << 16) + 2 * 16 + 100 * 8);
        assert_eq!(footprint.within(footprint.bytes()), Ok(()));
        assert!(matches!(footprint.within(footprint.bytes() - 1), Err(ShapeError::Footprint { .. })));
    }

    #[test]
    fn counts_and_sizes_are_capped() {
        let two = wat::parse_str("(module (func) (func))").unwrap();
        let limits = LoadLimits { functions: 1, ..LoadLimits::default() };
        assert_eq!(check(&two, &limits), Err(ShapeError::Functions { count: 2, cap: 1 }));

        let limits = LoadLimits { locals: 3, ..LoadLimits::default() };
        assert!(check(&module("(local i32 i32 i32)"), &limits).is_ok());
        assert_eq!(check(&module("(local i32 i32 i32 i64)"), &limits), Err(ShapeError::Locals { index: 0, cap: 3 }));

        let limits = LoadLimits { function_bytes: 4, ..LoadLimits::default() };
        assert!(matches!(check(&module("(drop (i32.const 1))"), &limits), Err(ShapeError::FunctionSize { .. })));

        let limits = LoadLimits { module_bytes: 8, ..LoadLimits::default() };
        assert!(matches!(check(&two, &limits), Err(ShapeError::ModuleSize { .. })));
        assert!(check(b"\0asm\x01\0\0\0\x0a\xff", &LoadLimits::default()).is_ok(), "left to the compiler");
    }
}
