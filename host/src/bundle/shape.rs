//! The shape check: a module's size, function count, function sizes,
//! locals and nesting, against [`LoadLimits`], before it is compiled.

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
    /// Blocks nest deeper than `nesting`.
    #[error("function {index} nests blocks deeper than the {cap} levels allowed")]
    Nesting {
        /// The function's index among those the module defines.
        index: u32,
        /// The cap.
        cap: u32,
    },
}

/// Checks `wasm` against `limits`; reading stops at the first cap exceeded.
///
/// Bytes that do not parse pass: the compiler validates the whole module
/// (in linear time) before it compiles anything, and refuses them with its
/// own, more precise message.
pub(crate) fn check(wasm: &[u8], limits: &LoadLimits) -> Result<(), ShapeError> {
    let size = wasm.len() as u64;
    if size > limits.module_bytes {
        return Err(ShapeError::ModuleSize { size, cap: limits.module_bytes });
    }
    match check_parsed(wasm, limits) {
        Err(Stop::Cap(cap)) => Err(cap),
        Ok(()) | Err(Stop::Malformed) => Ok(()),
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

fn check_parsed(wasm: &[u8], limits: &LoadLimits) -> Result<(), Stop> {
    let mut index = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
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
        assert_eq!(check(&module(&nested(8)), &limits), Ok(()));
        assert_eq!(check(&module(&nested(9)), &limits), Err(ShapeError::Nesting { index: 0, cap: 8 }));
        // Siblings do not add up: depth returns at each `end`.
        assert_eq!(check(&module(&nested(8).repeat(10)), &limits), Ok(()));
    }

    #[test]
    fn counts_and_sizes_are_capped() {
        let two = wat::parse_str("(module (func) (func))").unwrap();
        let limits = LoadLimits { functions: 1, ..LoadLimits::default() };
        assert_eq!(check(&two, &limits), Err(ShapeError::Functions { count: 2, cap: 1 }));

        let limits = LoadLimits { locals: 3, ..LoadLimits::default() };
        assert_eq!(check(&module("(local i32 i32 i32)"), &limits), Ok(()));
        assert_eq!(check(&module("(local i32 i32 i32 i64)"), &limits), Err(ShapeError::Locals { index: 0, cap: 3 }));

        let limits = LoadLimits { function_bytes: 4, ..LoadLimits::default() };
        assert!(matches!(check(&module("(drop (i32.const 1))"), &limits), Err(ShapeError::FunctionSize { .. })));

        let limits = LoadLimits { module_bytes: 8, ..LoadLimits::default() };
        assert!(matches!(check(&two, &limits), Err(ShapeError::ModuleSize { .. })));
        assert_eq!(check(b"\0asm\x01\0\0\0\x0a\xff", &LoadLimits::default()), Ok(()), "left to the compiler");
    }
}
