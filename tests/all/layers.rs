//! The host crate's layers run one way: each module uses only the modules
//! listed before it in `host/src/lib.rs`, so the load path can be read top
//! to bottom and a change has one obvious place to go.

use crate::repo_path;

/// The `mod` declarations of `lib.rs`, in order.
fn modules() -> Vec<String> {
    let lib = std::fs::read_to_string(repo_path("host/src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("mod ").or_else(|| line.trim().strip_prefix("pub mod ")))
        .map(|rest| rest.trim_end_matches(';').to_owned())
        .collect()
}

/// The crate modules `module` uses outside its unit tests.
fn uses(module: &str, known: &[String]) -> Vec<String> {
    let source = std::fs::read_to_string(repo_path(&format!("host/src/{module}.rs"))).unwrap();
    let code = source.split("#[cfg(test)]").next().unwrap();
    let mut used: Vec<String> = code
        .match_indices("crate::")
        .map(|(at, _)| code[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .filter(|name: &String| known.contains(name) && name != module)
        .collect();
    used.sort();
    used.dedup();
    used
}

#[test]
fn every_module_uses_only_the_layers_above_it() {
    let modules = modules();
    assert!(modules.len() > 20, "{modules:?}");
    let mut edges = 0;
    for (position, module) in modules.iter().enumerate() {
        for used in uses(module, &modules) {
            let above = modules.iter().position(|m| *m == used).unwrap();
            assert!(above < position, "`{module}` uses `{used}`, which lib.rs lists below it");
            edges += 1;
        }
    }
    assert!(edges > 40, "the check must see the imports ({edges} found)");
}
