//! One running instance of a policy module, and every call into it.
//!
//! Every call goes through `call`, which sets the epoch deadline and names
//! the fault; everything the guest hands back (addresses, lengths, codes) is
//! checked before it is read: a guest can only fault, never make the host
//! read outside its memory or panic.

use std::time::{Duration, Instant};

use wasmtime::{InstancePre, Memory, PoolConcurrencyLimitError, Store, Trap, TypedFunc, WasmParams, WasmResults};

use flowgate_sdk::Answer;
use flowgate_sdk::schema::MAX_SCHEMA_BYTES;
use flowgate_sdk::wire::ANSWER_BYTES;

use crate::model::{AnswerError, Fault};

use super::encoded::EncodedRecords;
use super::limits::{Limits, MemoryLimitExceeded, StoreState, TICK, TableLimitExceeded};
use super::translation::Translation;

/// The names of the ABI's exports.
pub(crate) struct Exports;

impl Exports {
    pub(crate) const MEMORY: &'static str = "memory";
    pub(crate) const ABI_VERSION: &'static str = "flowgate_abi_version";
    pub(crate) const SCHEMA: &'static str = "flowgate_schema";
    pub(crate) const BUFFER: &'static str = "flowgate_buffer";
    pub(crate) const RULES: &'static str = "flowgate_rules";
    pub(crate) const INIT: &'static str = "flowgate_init";
    pub(crate) const EVALUATE: &'static str = "flowgate_evaluate";
}

/// Cap on what `flowgate_rules` and a rejected `flowgate_init` may return.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A started instance with its exports looked up once.
pub(crate) struct GuestInstance {
    store: Store<StoreState>,
    instance: wasmtime::Instance,
    memory: Memory,
    schema: TypedFunc<(), i64>,
    buffer: TypedFunc<i32, i32>,
    rules: TypedFunc<(), i64>,
    init: TypedFunc<i32, i64>,
    evaluate: TypedFunc<i32, i64>,
    /// Address and size of the guest's input buffer, once asked for.
    input: (usize, usize),
}

/// The ABI version a module speaks, asked of an instance of its own before
/// any other export is looked up, so that a module of another version is
/// refused for its version and not for an export that version lacks.
pub(crate) fn abi_version(pre: &InstancePre<StoreState>, limits: Limits) -> Result<i32, Fault> {
    let (mut store, instance) = instantiate(pre, limits, limits.deadline_ms)?;
    let version = instance
        .get_typed_func::<(), i32>(&mut store, Exports::ABI_VERSION)
        .map_err(|_| Fault::BadAnswer(AnswerError::MissingExport(Exports::ABI_VERSION)))?;
    call(&mut store, &version, (), limits.deadline_ms)
}

/// A store under `limits` and an instance in it, its start function run
/// under `deadline_ms` (at most the deadline of `limits`).
fn instantiate(
    pre: &InstancePre<StoreState>,
    limits: Limits,
    deadline_ms: u64,
) -> Result<(Store<StoreState>, wasmtime::Instance), Fault> {
    let deadline_ms = deadline_ms.min(limits.deadline_ms);
    let started = Instant::now();
    loop {
        let mut store = Store::new(pre.module().engine(), StoreState { limits });
        store.limiter(|state| state);
        store.set_epoch_deadline(Limits::ticks(deadline_ms));
        match pre.instantiate(&mut store) {
            Ok(instance) => return Ok((store, instance)),
            // Every slot of the pool is taken: each is held for one call at
            // most, so one frees soon. Waited for within the deadline, in a
            // new store (a failed instantiation counts against its store).
            Err(err)
                if err.downcast_ref::<PoolConcurrencyLimitError>().is_some()
                    && started.elapsed() < Duration::from_millis(deadline_ms) =>
            {
                std::thread::sleep(TICK / 4);
            }
            Err(err) => return Err(fault(err, deadline_ms)),
        }
    }
}

impl GuestInstance {
    /// Instantiates the module (running its start function within
    /// `deadline_ms`, at most the deadline of `limits`); every later call
    /// runs under the same `limits`.
    pub(crate) fn start(
        pre: &InstancePre<StoreState>,
        limits: Limits,
        deadline_ms: u64,
    ) -> Result<GuestInstance, Fault> {
        let (mut store, instance) = instantiate(pre, limits, deadline_ms)?;
        let missing = |name| Fault::BadAnswer(AnswerError::MissingExport(name));
        let memory = instance.get_memory(&mut store, Exports::MEMORY).ok_or_else(|| missing(Exports::MEMORY))?;
        macro_rules! func {
            ($name:expr) => {
                instance.get_typed_func(&mut store, $name).map_err(|_| missing($name))?
            };
        }
        Ok(GuestInstance {
            schema: func!(Exports::SCHEMA),
            buffer: func!(Exports::BUFFER),
            rules: func!(Exports::RULES),
            init: func!(Exports::INIT),
            evaluate: func!(Exports::EVALUATE),
            store,
            instance,
            memory,
            input: (0, 0),
        })
    }

    /// Where the guest's input buffer is, and its size (0 before one is asked for).
    pub(super) fn input(&self) -> (usize, usize) {
        self.input
    }

    /// This instance, its input buffer where the instance it was
    /// snapshotted from had it: the host asks for a buffer only when it
    /// needs a larger one, so a snapshot's instance must know its own.
    pub(super) fn with_input(mut self, input: (usize, usize)) -> GuestInstance {
        self.input = input;
        self
    }

    /// Its store and instance, for a snapshot to read.
    pub(super) fn parts(&mut self) -> (&mut Store<StoreState>, wasmtime::Instance) {
        (&mut self.store, self.instance)
    }

    /// The deadline of one call, from the instance's limits.
    fn deadline_ms(&self) -> u64 {
        self.store.data().limits.deadline_ms
    }

    /// The module's schema, as text ([`flowgate_sdk::schema`]).
    pub(crate) fn schema(&mut self) -> Result<Vec<u8>, Fault> {
        let deadline = self.deadline_ms();
        let packed = call(&mut self.store, &self.schema, (), deadline)?;
        Ok(self.output(packed, MAX_SCHEMA_BYTES)?.to_vec())
    }

    /// The module's rule table, as JSON.
    pub(crate) fn rules(&mut self) -> Result<Vec<u8>, Fault> {
        let deadline = self.deadline_ms();
        let packed = call(&mut self.store, &self.rules, (), deadline)?;
        Ok(self.output(packed, MAX_MESSAGE_BYTES)?.to_vec())
    }

    /// Hands the configuration to the guest, within `deadline_ms` (at most
    /// the instance's own deadline): `Ok(Err(message))` if it refuses it.
    pub(crate) fn configure(&mut self, config: &[u8], deadline_ms: u64) -> Result<Result<(), String>, Fault> {
        let deadline = deadline_ms.min(self.deadline_ms());
        let len = self.write_input(config, deadline)?;
        let packed = call(&mut self.store, &self.init, len, deadline)?;
        if packed == 0 {
            return Ok(Ok(()));
        }
        let message = self.output(packed, MAX_MESSAGE_BYTES)?;
        Ok(Err(String::from_utf8_lossy(message).into_owned()))
    }

    /// The guest's answers for the `selected` records of a batch, handed
    /// over and read back through `translation`, in one call that may take
    /// `deadline_ms` (at most the instance's own deadline). The guest
    /// writes one fixed-size answer per record into its answer area; they
    /// are read where they lie, checked, and appended to `out`. On a fault
    /// some may have been appended, and the caller drops them.
    pub(crate) fn answer_batch(
        &mut self,
        records: &EncodedRecords,
        selected: &[usize],
        translation: &Translation,
        rule_count: usize,
        deadline_ms: u64,
        out: &mut Vec<Result<Answer, Fault>>,
    ) -> Result<(), Fault> {
        let deadline = deadline_ms.min(self.deadline_ms());
        let len = records.batch_len(selected, translation);
        let address = self.reserve_input(len, deadline)?;
        let input = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(address..address + len)
            .ok_or(Fault::BadAnswer(AnswerError::InputOutsideMemory { address }))?;
        records.write_batch(selected, translation, input);
        let packed = call(&mut self.store, &self.evaluate, len as i32, deadline)?;
        let (address, found) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
        if found != selected.len() {
            return Err(Fault::BadAnswer(AnswerError::WrongCount { found, expected: selected.len() }));
        }
        let len = found * ANSWER_BYTES;
        let area = self
            .memory
            .data(&self.store)
            .get(address..address + len)
            .ok_or(Fault::BadAnswer(AnswerError::OutsideMemory { address, len }))?;
        read_answers(area, translation, rule_count, out).map_err(Fault::BadAnswer)
    }

    /// Makes the guest's input buffer at least `len` bytes; returns its address.
    fn reserve_input(&mut self, len: usize, deadline: u64) -> Result<usize, Fault> {
        if len > self.input.1 {
            let request = i32::try_from(len).map_err(|_| Fault::BadAnswer(AnswerError::InputTooLarge(len)))?;
            let address = call(&mut self.store, &self.buffer, request, deadline)?;
            self.input = (address as u32 as usize, len);
        }
        Ok(self.input.0)
    }

    /// Copies `bytes` into the guest's input buffer.
    fn write_input(&mut self, bytes: &[u8], deadline: u64) -> Result<i32, Fault> {
        let address = self.reserve_input(bytes.len(), deadline)?;
        self.memory
            .write(&mut self.store, address, bytes)
            .map_err(|_| Fault::BadAnswer(AnswerError::InputOutsideMemory { address }))?;
        Ok(bytes.len() as i32)
    }

    /// The guest memory a packed `(address << 32 | length)` result points at.
    fn output(&self, packed: i64, cap: usize) -> Result<&[u8], Fault> {
        let address = (packed as u64 >> 32) as usize;
        let len = (packed as u64 & 0xffff_ffff) as usize;
        if len > cap {
            return Err(Fault::BadAnswer(AnswerError::TooLarge { len, cap }));
        }
        self.memory
            .data(&self.store)
            .get(address..address + len)
            .ok_or(Fault::BadAnswer(AnswerError::OutsideMemory { address, len }))
    }
}

/// Calls one export with a deadline, naming any fault.
fn call<Params: WasmParams, Results: WasmResults>(
    store: &mut Store<StoreState>,
    func: &TypedFunc<Params, Results>,
    params: Params,
    deadline_ms: u64,
) -> Result<Results, Fault> {
    store.set_epoch_deadline(Limits::ticks(deadline_ms));
    func.call(store, params).map_err(|err| fault(err, deadline_ms))
}

/// Appends the answers of an answer area, each checked: its codes, its
/// reserved bytes, its parts against its effect, its rules against the
/// policy's table.
fn read_answers(
    area: &[u8],
    translation: &Translation,
    rule_count: usize,
    out: &mut Vec<Result<Answer, Fault>>,
) -> Result<(), AnswerError> {
    let known_rules = if rule_count >= 64 { u64::MAX } else { (1u64 << rule_count) - 1 };
    let (slots, _) = area.as_chunks::<ANSWER_BYTES>();
    out.reserve(slots.len());
    for slot in slots {
        let answer = translation.read_answer(slot).map_err(AnswerError::Malformed)?;
        if answer.fired_bits() & !known_rules != 0 {
            return Err(AnswerError::UnknownRule { rules: rule_count });
        }
        out.push(Ok(answer));
    }
    Ok(())
}

/// Names what went wrong in a call that had `deadline_ms`.
fn fault(err: wasmtime::Error, deadline_ms: u64) -> Fault {
    if let Some(MemoryLimitExceeded(cap)) = err.downcast_ref() {
        return Fault::MemoryLimit(*cap);
    }
    if let Some(TableLimitExceeded(cap)) = err.downcast_ref() {
        return Fault::TableLimit(*cap);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Deadline(deadline_ms),
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        Some(Trap::UnreachableCodeReached) => Fault::Unreachable,
        Some(trap) => Fault::Trap(trap.to_string()),
        None => Fault::Trap(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::engine::Allocation;
    use crate::sandbox::runtime::{DEFAULT_STACK_BYTES, Runtime};

    #[test]
    fn a_caller_finding_the_pool_full_waits_for_a_slot_within_its_deadline() {
        let limits = Limits::default();
        let pooled = Allocation::Pooled { slots: 1, ceilings: Limits::DEFAULT_CEILINGS };
        let runtime = Runtime::new(DEFAULT_STACK_BYTES, pooled, None).unwrap();
        let module = runtime.compile(&wat::parse_str("(module (memory 1))").unwrap()).unwrap();
        let pre = wasmtime::Linker::new(runtime.engine()).instantiate_pre(&module).unwrap();
        let held = instantiate(&pre, limits, 100).unwrap();

        // Nobody frees the slot: the caller waits out its deadline, then faults.
        let started = Instant::now();
        let fault = instantiate(&pre, limits, 20).err().expect("no slot");
        assert!(started.elapsed() >= Duration::from_millis(20), "waited {:?}: {fault:?}", started.elapsed());
        assert!(matches!(&fault, Fault::Trap(message) if message.contains("limit")), "{fault:?}");

        // The slot frees meanwhile: the caller gets it.
        let started = Instant::now();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(held);
        });
        instantiate(&pre, limits, 2_000).map(drop).expect("the freed slot");
        assert!(started.elapsed() >= Duration::from_millis(25), "it waited for the slot");
        releaser.join().unwrap();
    }
}
