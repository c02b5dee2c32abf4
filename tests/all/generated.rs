//! Generated and mutated modules, over 5,000 of them, each population
//! built to reach the code it is named for, and each counting what it
//! reached:
//!
//! - wasm-smith code inside a valid ABI shell: the shell passes the load
//!   checks, so most modules load and their random `flowgate_evaluate` runs
//!   on every record; every fault is a `deny` naming the policy;
//! - wasm-smith modules of any shape: every one refused at load, by the
//!   check that applies (imports, exports, validation);
//! - valid guests whose answers are random bytes at random addresses: the
//!   test knows the guest's memory, so it knows what each answer says; a
//!   lie is a `deny` naming `policy-fault`, never `not_applicable`;
//! - reference policies with bytes flipped, cut or repeated, under their
//!   own manifests (configuration and vectors): refused, or answering
//!   exactly like the original, or fault-denying; the rare flip that
//!   changes the logic where the vectors do not look is another policy
//!   passing its own tests, which only a signature tells apart (counted).
//!
//! Every population is seeded, so every run sees the same modules.

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use flowgate::sdk::{Answer, Effect, wire};
use flowgate::{Bundle, Decision, Error, Fault, Host, Limits, LoadError};
use flowgate_reference_set::sample::{self, Rng};

const SHELLED_MODULES: u64 = 2_000;
const SHAPELESS_MODULES: u64 = 1_000;
const LIARS: u64 = 2_500;
const MUTATIONS_PER_POLICY: u64 = 20;

const MANIFEST: &str = "name = \"generated\"\nversion = \"0.0.0\"\nregulator = \"fuzz\"\narticles = []\n";

/// Tallies, by name, of what happened (refusal variants, fault variants, ...).
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, u64>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }

    fn get(&self, what: &str) -> u64 {
        self.0.get(what).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The name of a load error's variant, for tallies.
fn refusal(err: &Error) -> &'static str {
    match err {
        Error::Load(LoadError::Shape { .. }) => "shape",
        Error::Load(LoadError::InvalidModule { .. }) => "invalid module",
        Error::Load(LoadError::ForbiddenImport { .. }) => "forbidden import",
        Error::Load(LoadError::BadExport { .. }) => "bad export",
        Error::Load(LoadError::NoPolicyExported { .. }) => "no policy exported",
        Error::Load(LoadError::AbiVersion { .. }) => "abi version",
        Error::Load(LoadError::Schema { .. }) => "schema",
        Error::Load(LoadError::Start { .. }) => "start",
        Error::Load(LoadError::Rules { .. }) => "rules",
        Error::Load(LoadError::Config { .. }) => "config",
        Error::Load(LoadError::VectorsFailed { .. }) => "vectors failed",
        _ => "other",
    }
}

/// The name of a fault's variant, for tallies.
fn fault_kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::Deadline(_) => "deadline",
        Fault::MemoryLimit(_) => "memory limit",
        Fault::TableLimit(_) => "table limit",
        Fault::StackOverflow => "stack overflow",
        Fault::Unreachable => "unreachable",
        Fault::Trap(_) => "trap",
        Fault::BadAnswer(_) => "bad answer",
        Fault::Quarantined(_) => "quarantined",
        _ => "other",
    }
}

/// A host with no policies and a short deadline, for loading modules one by one.
fn empty_host(deadline_ms: u64) -> Host {
    Host::builder().limits(Limits { deadline_ms, ..Limits::default() }).build().unwrap()
}

/// What the policy `name` answered in `decision`: `None` for `not_applicable`.
fn outcome<'a>(decision: &'a Decision, name: &str) -> Option<&'a Result<Answer, Fault>> {
    decision.answers.iter().find(|answer| answer.policy.name == name).map(|answer| &answer.outcome)
}

/// A fault must deny the flow and say so: reason `policy-fault` of the policy.
fn assert_fault_denies(decision: &Decision, name: &str) {
    assert_eq!(decision.effect, Effect::Deny, "a fault of `{name}` did not deny: {}", decision.to_json());
    assert!(
        decision.reasons.iter().any(|r| r.policy() == name && r.rule() == "policy-fault"),
        "a fault of `{name}` is not named: {}",
        decision.to_json()
    );
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

// ---------------------------------------------------------------------------
// wasm-smith code inside the ABI shell

/// The ABI every generated module keeps: memory and the six exports. The
/// first five bodies are copied into each generated module (`[]` is an
/// empty rule table, written at 16; the schema writes itself at 200,000);
/// `flowgate_evaluate` keeps wasm-smith's random body.
fn abi_shell() -> String {
    format!(
        r#"(module
    (memory (export "memory") 4)
    (func (export "flowgate_abi_version") (result i32) (i32.const {version}))
    {schema}
    (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 1024))
    (func (export "flowgate_rules") (result i64)
        (i32.store16 (i32.const 16) (i32.const 0x5d5b))
        (i64.const 0x0000001000000002))
    (func (export "flowgate_init") (param i32) (result i64) (i64.const 0))
    (func (export "flowgate_evaluate") (param i32) (result i64) (unreachable)))"#,
        schema = crate::schema_func(200_000),
        version = flowgate::sdk::ABI_VERSION,
    )
}

/// The ABI functions whose bodies the shell fixes, in the shell's order.
const FIXED: [&str; 5] =
    ["flowgate_abi_version", "flowgate_schema", "flowgate_buffer", "flowgate_rules", "flowgate_init"];

/// Just enough of the binary format to swap function bodies: sections,
/// exports and the code section.
mod binary {
    pub fn read_leb(bytes: &[u8], at: &mut usize) -> u32 {
        let (mut value, mut shift) = (0u32, 0);
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    pub fn write_leb(mut value: u32, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// `(id, contents)` of each section, in order.
    pub fn sections(module: &[u8]) -> Vec<(u8, &[u8])> {
        let mut sections = Vec::new();
        let mut at = 8;
        while at < module.len() {
            let id = module[at];
            at += 1;
            let len = read_leb(module, &mut at) as usize;
            sections.push((id, &module[at..at + len]));
            at += len;
        }
        sections
    }

    /// The function index of each exported function, by name.
    pub fn exported_functions(module: &[u8]) -> Vec<(String, u32)> {
        let mut found = Vec::new();
        for (_, contents) in sections(module).into_iter().filter(|(id, _)| *id == 7) {
            let mut at = 0;
            for _ in 0..read_leb(contents, &mut at) {
                let len = read_leb(contents, &mut at) as usize;
                let name = String::from_utf8_lossy(&contents[at..at + len]).into_owned();
                at += len;
                let kind = contents[at];
                at += 1;
                let index = read_leb(contents, &mut at);
                if kind == 0 {
                    found.push((name, index));
                }
            }
        }
        found
    }

    /// The function bodies of the code section (each with its locals).
    pub fn bodies(module: &[u8]) -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        for (_, contents) in sections(module).into_iter().filter(|(id, _)| *id == 10) {
            let mut at = 0;
            for _ in 0..read_leb(contents, &mut at) {
                let len = read_leb(contents, &mut at) as usize;
                bodies.push(contents[at..at + len].to_vec());
                at += len;
            }
        }
        bodies
    }

    /// The functions that the exported function `export` calls, directly or
    /// through others (calls through tables are not followed): where a
    /// damaged body shows when that export runs.
    pub fn reachable_from(module: &[u8], export: &str) -> Vec<usize> {
        let mut callees: Vec<Vec<usize>> = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(module) {
            if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut calls = Vec::new();
                let mut operators = body.get_operators_reader().unwrap();
                while !operators.eof() {
                    if let wasmparser::Operator::Call { function_index } = operators.read().unwrap() {
                        calls.push(function_index as usize);
                    }
                }
                callees.push(calls);
            }
        }
        let (_, root) = exported_functions(module).into_iter().find(|(name, _)| name == export).unwrap();
        let mut reached = vec![false; callees.len()];
        let mut next = vec![root as usize];
        while let Some(function) = next.pop() {
            if !std::mem::replace(&mut reached[function], true) {
                next.extend(&callees[function]);
            }
        }
        (0..callees.len()).filter(|&function| reached[function]).collect()
    }

    /// `module` with its code section holding `bodies` instead.
    pub fn with_bodies(module: &[u8], bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = module[..8].to_vec();
        for (id, contents) in sections(module) {
            let contents = if id == 10 {
                let mut code = Vec::new();
                write_leb(bodies.len() as u32, &mut code);
                for body in bodies {
                    write_leb(body.len() as u32, &mut code);
                    code.extend_from_slice(body);
                }
                code
            } else {
                contents.to_vec()
            };
            out.push(id);
            write_leb(contents.len() as u32, &mut out);
            out.extend_from_slice(&contents);
        }
        out
    }
}

/// The shell's own bodies of the [`FIXED`] functions.
fn shell_bodies(shell: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let exports = binary::exported_functions(shell);
    let bodies = binary::bodies(shell);
    FIXED
        .iter()
        .map(|name| {
            let (_, index) = exports.iter().find(|(n, _)| n == name).unwrap();
            (*name, bodies[*index as usize].clone())
        })
        .collect()
}

/// `module` (no imports, so function index = body index) with the shell's
/// bodies for every fixed function but `random_too`.
fn in_shell(module: &[u8], fixed: &[(&'static str, Vec<u8>)], random_too: Option<&str>) -> Vec<u8> {
    let exports = binary::exported_functions(module);
    let mut bodies = binary::bodies(module);
    for (name, body) in fixed.iter().filter(|(name, _)| Some(*name) != random_too) {
        let (_, index) = exports.iter().find(|(n, _)| n == name).expect("wasm-smith keeps the shell's exports");
        bodies[*index as usize] = body.clone();
    }
    binary::with_bodies(module, &bodies)
}

/// wasm-smith settings for code wasmtime runs as configured by the host
/// (no threads, GC or `externref`, exceptions, 64-bit memories), so that
/// refusals are the host's checks rather than unsupported proposals.
fn shelled_config(shell: &[u8]) -> wasm_smith::Config {
    wasm_smith::Config {
        exports: Some(shell.to_vec()),
        max_imports: 0,
        // The shell's memory is the only one.
        max_memories: 0,
        max_funcs: 8,
        max_instructions: 64,
        threads_enabled: false,
        // externref needs wasmtime's GC, which the host compiles out.
        reference_types_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        ..Default::default()
    }
}

#[test]
fn random_code_inside_the_abi_shell_reaches_evaluation_and_faults_deny() {
    let shell = wat::parse_str(abi_shell()).unwrap();
    let fixed = shell_bodies(&shell);
    // A short deadline: random code loops often, and only has to be stopped.
    let host = empty_host(2);
    let flows = sample::flows(1, 3);
    let mut rng = Rng::new(2024);
    let (mut refused, mut faults, mut answered) = (Tally::default(), Tally::default(), 0u64);
    let mut loaded = 0u64;
    for n in 0..SHELLED_MODULES {
        let seed = random_bytes(&mut rng, 2048);
        let module = wasm_smith::Module::new(shelled_config(&shell), &mut Unstructured::new(&seed))
            .expect("wasm-smith makes a module from any bytes");
        // One module in four keeps a second random body, in one of the
        // probes the host calls at load, to reach the load-time refusals.
        let random_too = (n % 4 == 3).then(|| FIXED[(n / 4) as usize % FIXED.len()]);
        let wasm = in_shell(&module.to_bytes(), &fixed, random_too);
        let bundle = Bundle::from_bytes("generated", MANIFEST, wasm).unwrap();
        match host.load(&bundle) {
            Err(err) => refused.add(refusal(&err)),
            Ok(_) => {
                loaded += 1;
                let decisions = host.evaluate_batch(&flows);
                assert_eq!(decisions.len(), flows.len());
                for (flow, decision) in flows.iter().zip(&decisions) {
                    assert_eq!(decision.id, flow.id);
                    match outcome(decision, "generated") {
                        Some(Err(fault)) => {
                            assert_fault_denies(decision, "generated");
                            faults.add(fault_kind(fault));
                        }
                        _ => answered += 1,
                    }
                }
                assert!(host.remove("generated"));
            }
        }
    }
    let summary = format!("loaded {loaded}, refused {refused:?}, faults {faults:?}, answered {answered}");
    // The shell is what the host checks at load: the code inside it is what
    // is being fuzzed, so most modules must reach evaluation.
    assert!(loaded >= SHELLED_MODULES / 2, "{summary}");
    assert_eq!(faults.total() + answered, 3 * loaded, "{summary}");
    // The exports are the shell's, so no module is refused for them; the
    // random probes are refused by the check each one fails.
    let export_refusals =
        refused.get("forbidden import") + refused.get("bad export") + refused.get("no policy exported");
    assert_eq!(export_refusals, 0, "{summary}");
    for reason in ["abi version", "schema", "rules", "config", "start"] {
        assert!(refused.get(reason) > 0, "no refusal for `{reason}`: {summary}");
    }
    // Random code fails in every way a guest can.
    for kind in ["bad answer", "trap", "unreachable", "deadline"] {
        assert!(faults.get(kind) > 0, "no `{kind}` fault: {summary}");
    }
    eprintln!("shelled wasm-smith modules: {summary}");
}

#[test]
fn modules_of_any_shape_are_refused_by_the_check_that_applies() {
    let host = empty_host(5);
    let mut rng = Rng::new(2025);
    let mut refused = Tally::default();
    for _ in 0..SHAPELESS_MODULES {
        let seed = random_bytes(&mut rng, 1024);
        let config = wasm_smith::Config { max_funcs: 8, max_instructions: 64, ..Default::default() };
        let module = wasm_smith::Module::new(config, &mut Unstructured::new(&seed)).unwrap();
        let bundle = Bundle::from_bytes("generated", MANIFEST, module.to_bytes()).unwrap();
        let err = host.load(&bundle).map(|_| ()).expect_err("a module without the ABI's exports loaded");
        refused.add(refusal(&err));
    }
    assert_eq!(refused.total(), SHAPELESS_MODULES);
    // Random modules export none of the ABI: refused as exporting no policy.
    for reason in ["forbidden import", "no policy exported"] {
        assert!(refused.get(reason) > 0, "no refusal for `{reason}`: {refused:?}");
    }
    assert_eq!(refused.get("other"), 0, "{refused:?}");
    eprintln!("wasm-smith modules of any shape: refused {refused:?}");
}

// ---------------------------------------------------------------------------
// Guests that lie in their answers

/// The liar's memory: 4 pages, never grown.
const LIAR_MEMORY: u64 = 4 << 16;
/// Where the liar scribbles (and mostly points its answers).
const SCRIBBLE: u64 = 196_600;

/// A valid guest whose `flowgate_evaluate` writes random bytes near
/// [`SCRIBBLE`] and answers with a random address and count. Its memory is
/// zero there but for those bytes, so the test knows exactly what each answer
/// holds.
struct Liar {
    stores: Vec<(u64, u8)>,
    address: u64,
    count: u64,
}

impl Liar {
    fn random(rng: &mut Rng) -> Liar {
        let stores = (0..8 + rng.below(64)).map(|_| (SCRIBBLE + rng.below(80) as u64, rng.next_u64() as u8)).collect();
        let address = match rng.below(4) {
            0 => SCRIBBLE + 8,
            1 => LIAR_MEMORY + rng.next_u64() % ((1 << 32) - LIAR_MEMORY),
            2 => LIAR_MEMORY - rng.below(40) as u64,
            _ => SCRIBBLE + rng.below(16) as u64,
        };
        let count = match rng.below(3) {
            0 => 1 + rng.below(2) as u64,
            1 => rng.next_u64() & 0xffff_ffff,
            _ => rng.below(4) as u64,
        };
        Liar { stores, address, count }
    }

    fn wat(&self) -> String {
        let stores: String = self
            .stores
            .iter()
            .map(|(address, byte)| format!("(i32.store8 (i32.const {address}) (i32.const {byte}))\n"))
            .collect();
        format!(
            r#"(module
                (memory (export "memory") 4)
                (data (i32.const 16) "[]")
                (func (export "flowgate_abi_version") (result i32) (i32.const {version}))
                {schema}
                (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 1024))
                (func (export "flowgate_rules") (result i64) (i64.const {rules}))
                (func (export "flowgate_init") (param i32) (result i64) (i64.const 0))
                (func (export "flowgate_evaluate") (param i32) (result i64)
                    {stores}
                    (i64.const {packed})))"#,
            version = flowgate::sdk::ABI_VERSION,
            rules = (16u64 << 32) | 2,
            packed = ((self.address << 32) | self.count) as i64,
            // Away from the answers the test reads back.
            schema = crate::schema_func(100_000),
        )
    }

    /// What the answer to a batch of `count` records says, read as the ABI
    /// reads it; `None` if it is a lie (outside memory, wrong count, bad
    /// codes or reserved bytes, a rule beyond the empty table).
    fn answers(&self, count: usize) -> Option<Vec<Answer>> {
        let len = count as u64 * wire::ANSWER_BYTES as u64;
        if self.count != count as u64 || self.address + len > LIAR_MEMORY {
            return None;
        }
        let mut memory = vec![0u8; len as usize];
        for &(address, byte) in &self.stores {
            if (self.address..self.address + len).contains(&address) {
                memory[(address - self.address) as usize] = byte;
            }
        }
        let (slots, _) = memory.as_chunks::<{ wire::ANSWER_BYTES }>();
        let answers = slots.iter().map(|slot| wire::read_answer(slot).ok()).collect::<Option<Vec<_>>>()?;
        answers.iter().all(|answer| answer.fired_bits() == 0).then_some(answers)
    }
}

#[test]
fn every_lie_in_an_answer_is_a_fault_that_denies() {
    let host = empty_host(100);
    let flows = sample::flows(2, 2);
    let mut rng = Rng::new(7);
    let (mut lies, mut truths, mut loaded) = (0u64, 0u64, 0u64);
    for _ in 0..LIARS {
        let liar = Liar::random(&mut rng);
        let bundle = Bundle::from_bytes("liar", MANIFEST, wat::parse_str(liar.wat()).unwrap()).unwrap();
        host.load(&bundle).unwrap_or_else(|err| panic!("a valid guest is refused: {err:?}"));
        loaded += 1;
        // A batch whose answer is a lie is asked again record by record.
        let expected: Vec<Option<Answer>> = match liar.answers(flows.len()) {
            Some(answers) => answers.into_iter().map(Some).collect(),
            None => flows.iter().map(|_| liar.answers(1).map(|answers| answers[0])).collect(),
        };
        for (decision, expected) in host.evaluate_batch(&flows).iter().zip(expected) {
            match (expected, outcome(decision, "generated")) {
                (None, Some(Err(Fault::BadAnswer(_)))) => {
                    assert_fault_denies(decision, "generated");
                    lies += 1;
                }
                (Some(answer), None) if answer.effect() == Effect::NotApplicable => truths += 1,
                (Some(answer), Some(Ok(got))) if *got == answer => truths += 1,
                (expected, got) => panic!(
                    "liar answering {} answers at {:#x} after {:?}: expected {}, got {} in {}",
                    liar.count,
                    liar.address,
                    liar.stores,
                    expected.map_or("a fault (it lies)".into(), |answer| format!("{answer:?}")),
                    got.map_or("not_applicable".into(), |outcome| format!("{outcome:?}")),
                    decision.to_json()
                ),
            }
        }
        assert!(host.remove("generated"));
    }
    assert_eq!(loaded, LIARS);
    // Nearly every generated answer is a lie; the few that decode are honest
    // answers and are taken as such.
    assert!(lies >= 2 * LIARS * 95 / 100, "only {lies} lies, {truths} truths");
    eprintln!("liars: {lies} lies denied, {truths} answers that happened to be valid");
}

// ---------------------------------------------------------------------------
// Damaged reference policies

/// One random mutation: the body of a function the evaluation calls
/// replaced by `unreachable` (the module stays valid, and traps wherever that
/// function is called), bytes
/// flipped, the module cut short, or a range repeated.
fn mutate(rng: &mut Rng, wasm: &[u8]) -> Vec<u8> {
    let mut mutant = wasm.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(mutant.len());
                mutant[at] = rng.next_u64() as u8;
            }
        }
        1 => mutant.truncate(rng.below(mutant.len())),
        2 => {
            let at = rng.below(mutant.len());
            let end = (at + rng.below(256)).min(mutant.len());
            let copy = mutant[at..end].to_vec();
            mutant.splice(at..at, copy);
        }
        _ => {
            // A function the evaluation reaches, so the damage can show there.
            let reached = binary::reachable_from(wasm, "flowgate_evaluate");
            let mut bodies = binary::bodies(wasm);
            let victim = reached[rng.below(reached.len())];
            // No locals, `unreachable`, `end`: valid whatever the signature.
            bodies[victim] = vec![0x00, 0x00, 0x0b];
            mutant = binary::with_bodies(wasm, &bodies);
        }
    }
    mutant
}

#[test]
fn mutated_reference_policies_are_refused_or_answer_like_the_original() {
    // The default deadline: the reference policies' configuration parse must
    // not be mistaken for a hang on a busy machine.
    let host = empty_host(Limits::default().deadline_ms);
    let flows = sample::flows(3, 32);
    let mut rng = Rng::new(99);
    let (mut refused, mut faults) = (Tally::default(), Tally::default());
    let (mut loaded, mut alike, mut unlike) = (0u64, 0u64, 0u64);
    for (name, manifest, wasm) in flowgate_reference_set::bundles() {
        // The original, under the same manifest and host, is the baseline.
        host.load(&Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
            .unwrap_or_else(|err| panic!("the original `{name}` is refused: {err:?}"));
        let original: Vec<Option<Result<Answer, Fault>>> =
            host.evaluate_batch(&flows).iter().map(|d| outcome(d, name).cloned()).collect();
        assert!(original.iter().flatten().all(Result::is_ok), "the original `{name}` faults");
        assert!(original.iter().any(Option::is_some), "the records never concern `{name}`");
        assert!(host.remove(name));

        for _ in 0..MUTATIONS_PER_POLICY {
            let bundle = Bundle::from_bytes(name, manifest, mutate(&mut rng, wasm)).unwrap();
            match host.load(&bundle) {
                Err(err) => refused.add(refusal(&err)),
                Ok(_) => {
                    loaded += 1;
                    let (mut faulted, mut differs) = (false, false);
                    for (decision, original) in host.evaluate_batch(&flows).iter().zip(&original) {
                        match outcome(decision, name) {
                            Some(Err(fault)) => {
                                assert_fault_denies(decision, name);
                                faults.add(fault_kind(fault));
                                faulted = true;
                            }
                            answer => differs |= answer != original.as_ref(),
                        }
                    }
                    alike += u64::from(!faulted && !differs);
                    unlike += u64::from(differs);
                    assert!(host.remove(name));
                }
            }
        }
    }
    let summary = format!("loaded {loaded} ({alike} alike, {unlike} unlike), refused {refused:?}, faults {faults:?}");
    // A flip in the policy's own logic where its vectors do not look makes
    // another policy that passes its own tests: loadable by design (only a
    // signature tells it from a new version), and rare.
    assert!(unlike * 10 <= loaded, "{summary}");
    assert_eq!(loaded + refused.total(), 10 * MUTATIONS_PER_POLICY, "{summary}");
    // Damage is caught at load: bytes by validation, a body that traps on
    // the evaluation path by the start-up probes or by the bundle's own
    // vectors. What loads anyway runs: damage off the paths taken.
    assert!(refused.get("invalid module") + refused.get("shape") > 0, "{summary}");
    assert!(refused.get("vectors failed") > 0 && refused.get("start") > 0, "{summary}");
    assert!(loaded >= 20, "{summary}");
    assert_eq!(refused.get("other"), 0, "{summary}");
    eprintln!("mutated reference policies: {summary}");
}
