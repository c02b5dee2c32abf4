//! What a module must be to be a Flowgate policy: no imports, the ABI's
//! exports with their types, and a rule table of well-formed rules.

use serde::Deserialize;
use wasmtime::{ExternType, Module};

use flowgate_sdk::RuleId;

use crate::bundle::{Bundle, key_line};
use crate::model::{Reason, escape, is_printable, nearest, with_suggestion};
use crate::sandbox::Exports;

use super::error::LoadError;

/// One rule as the module describes it (`flowgate_rules`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    name: String,
    article: String,
    message: String,
}

/// Caps on a rule's texts: what a legal reason needs, and no more, so a
/// policy cannot make every decision megabytes long.
const MAX_RULE_NAME: usize = 64;
const MAX_ARTICLE: usize = 128;
const MAX_MESSAGE: usize = 256;
/// Cap on a configuration error message as it reaches the log.
pub(super) const MAX_CONFIG_MESSAGE: usize = 512;
/// Rule names the host gives its own reasons.
const RESERVED_RULES: [&str; 2] = ["policy-fault", "no-policy-applied"];

/// The exports the ABI requires, with their types as text for errors; the
/// version comes first, and is checked on its own first.
pub(super) const REQUIRED_FUNCS: [(&str, &[wasmtime::ValType], &[wasmtime::ValType], &str); 6] = {
    use wasmtime::ValType::{I32, I64};
    [
        (Exports::ABI_VERSION, &[], &[I32], "a function `() -> i32`"),
        (Exports::SCHEMA, &[], &[I64], "a function `() -> i64`"),
        (Exports::BUFFER, &[I32], &[I32], "a function `(i32) -> i32`"),
        (Exports::RULES, &[], &[I64], "a function `() -> i64`"),
        (Exports::INIT, &[I32], &[I64], "a function `(i32) -> i64`"),
        (Exports::EVALUATE, &[I32], &[I64], "a function `(i32) -> i64`"),
    ]
};

/// Refuses any import (the host offers none) and a module exporting none of the ABI.
pub(super) fn check_imports(origin: &str, module: &Module) -> Result<(), LoadError> {
    if let Some(import) = module.imports().next() {
        return Err(LoadError::ForbiddenImport {
            origin: origin.to_owned(),
            module: import.module().to_owned(),
            name: import.name().to_owned(),
        });
    }
    // A crate that never calls `export_policy!` (or builds with its
    // `library` feature) exports none of the ABI: say so, not which export is missing.
    if !REQUIRED_FUNCS.iter().any(|(name, ..)| module.get_export(name).is_some()) {
        return Err(LoadError::NoPolicyExported { origin: origin.to_owned() });
    }
    Ok(())
}

/// Checks the memory and the `funcs` exports, each of its type.
pub(super) fn check_exports(
    origin: &str,
    module: &Module,
    funcs: &[(&'static str, &[wasmtime::ValType], &[wasmtime::ValType], &'static str)],
) -> Result<(), LoadError> {
    let bad_export =
        |name, expected, found: String| LoadError::BadExport { origin: origin.to_owned(), name, expected, found };
    match module.get_export(Exports::MEMORY) {
        Some(ExternType::Memory(memory)) if !memory.is_64() && !memory.is_shared() => {}
        Some(other) => {
            return Err(bad_export(Exports::MEMORY, "a 32-bit unshared memory", describe(&other)));
        }
        None => {
            return Err(bad_export(Exports::MEMORY, "a 32-bit unshared memory", "nothing".into()));
        }
    }
    for &(name, params, results, expected) in funcs {
        match module.get_export(name) {
            Some(ExternType::Func(func))
                if same_types(func.params(), params) && same_types(func.results(), results) => {}
            Some(other) => return Err(bad_export(name, expected, describe(&other))),
            None => return Err(bad_export(name, expected, "nothing".into())),
        }
    }
    Ok(())
}

fn same_types(found: impl ExactSizeIterator<Item = wasmtime::ValType>, expected: &[wasmtime::ValType]) -> bool {
    found.len() == expected.len() && found.zip(expected).all(|(a, b)| wasmtime::ValType::eq(&a, b))
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => format!("a function `{func}`"),
        ExternType::Memory(memory) if memory.is_64() => "a 64-bit memory".into(),
        ExternType::Memory(_) => "a shared memory".into(),
        ExternType::Global(_) => "a global".into(),
        ExternType::Table(_) => "a table".into(),
        _ => "another kind of export".into(),
    }
}

pub(super) fn parse_rules(origin: &str, bundle: &Bundle, json: &[u8]) -> Result<Vec<Reason>, LoadError> {
    let bad = |problem: String| LoadError::Rules { origin: origin.to_owned(), problem };
    let rules: Vec<RuleText> = serde_json::from_slice(json).map_err(|err| bad(err.to_string()))?;
    if rules.len() > RuleId::MAX_RULES {
        return Err(bad(format!("{} rules, at most {} allowed", rules.len(), RuleId::MAX_RULES)));
    }
    let manifest = &bundle.manifest;
    let mut reasons: Vec<Reason> = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let valid_name = !rule.name.is_empty()
            && rule.name.len() <= MAX_RULE_NAME
            && rule.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(bad(format!(
                "rule {index} is named `{}`; a rule name is 1 to {MAX_RULE_NAME} lower-case letters, digits and hyphens",
                escape(&rule.name, MAX_RULE_NAME)
            )));
        }
        if RESERVED_RULES.contains(&rule.name.as_str()) {
            return Err(bad(format!("rule `{}` is a name the host gives its own reasons", rule.name)));
        }
        if reasons.iter().any(|reason| reason.rule() == rule.name) {
            return Err(bad(format!("rule `{}` appears twice", rule.name)));
        }
        for (part, value, cap) in [("article", &rule.article, MAX_ARTICLE), ("message", &rule.message, MAX_MESSAGE)] {
            if value.len() > cap || !is_printable(value) {
                return Err(bad(format!(
                    "the {part} of rule `{}` must be at most {cap} bytes of printable text",
                    rule.name
                )));
            }
        }
        let outcome = manifest.rules.get(&rule.name).copied();
        reasons.push(
            Reason::new(&manifest.name, &manifest.version, &rule.name, &rule.article, &rule.message)
                .with_outcome(outcome),
        );
    }
    if let Some(name) = manifest.rules.keys().find(|name| !reasons.iter().any(|reason| reason.rule() == *name)) {
        let declared = reasons.iter().map(Reason::rule);
        return Err(LoadError::UndeclaredRule {
            manifest: bundle.manifest_origin(),
            line: key_line(bundle.manifest_text(), "rules", name).unwrap_or(1),
            rule: escape(name, MAX_RULE_NAME),
            nearest: nearest(name, declared).map(str::to_owned),
        });
    }
    Ok(reasons)
}

/// The policy's refusal of its `[config]`, pointed at the manifest line
/// of the key it names, with the nearest valid word for a misspelt one.
///
/// The SDK says `config `path`: what` (`config `recipients[0]`: unknown
/// variant ...`); serde adds where in the JSON the host handed over the
/// failure was, which the author never wrote, so that is left out.
pub(super) fn config_refused(bundle: &Bundle, message: &str) -> LoadError {
    let message = without_json_position(message);
    let (path, what) = message
        .strip_prefix("config `")
        .and_then(|rest| rest.split_once("`: "))
        .map_or(("", message), |(path, what)| (path, what));
    let key = path.split(['.', '[']).next().unwrap_or_default();
    let line = key_line(bundle.manifest_text(), "config", key).unwrap_or(1);
    let message = if path.is_empty() { with_suggestion(what) } else { format!("`{path}`: {}", with_suggestion(what)) };
    LoadError::Config {
        manifest: bundle.manifest_origin(),
        line,
        policy: bundle.manifest.name.clone(),
        message: escape(&message, MAX_CONFIG_MESSAGE),
    }
}

/// `message` without serde_json's closing ` at line L column C`.
fn without_json_position(message: &str) -> &str {
    let Some((before, position)) = message.rsplit_once(" at line ") else { return message };
    let numbers = position.split_once(" column ");
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if numbers.is_some_and(|(line, column)| digits(line) && digits(column)) { before } else { message }
}
