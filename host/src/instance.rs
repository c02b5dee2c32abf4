//! One running instance of a policy module, and every call into it.
//!
//! Each call sets the epoch deadline first, and everything the guest hands
//! back (addresses, lengths, codes) is checked before it is read: a guest
//! can only fault, never make the host read outside its memory or panic.

use wasmtime::{InstancePre, Memory, Store, Trap, TypedFunc};

use flowgate_sdk::Answer;
use flowgate_sdk::wire::{self, Reader};

use crate::encoded::EncodedRecords;
use crate::fault::Fault;
use crate::sandbox::{Limits, MemoryLimitExceeded, StoreState, TableLimitExceeded};

/// The names of the ABI's exports.
pub(crate) struct Exports;

impl Exports {
    pub(crate) const MEMORY: &'static str = "memory";
    const ABI_VERSION: &'static str = "flowgate_abi_version";
    const BUFFER: &'static str = "flowgate_buffer";
    const RULES: &'static str = "flowgate_rules";
    const INIT: &'static str = "flowgate_init";
    const EVALUATE: &'static str = "flowgate_evaluate";
}

/// The largest answer one record can produce: effect, remedies, obligation
/// kinds, a parameter per kind, and the fired-rule set.
const MAX_ANSWER_BYTES: usize = 1 + 2 + 2 + 4 * 9 + 8;
/// Cap on what `flowgate_rules` and a rejected `flowgate_init` may return.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

pub(crate) struct GuestInstance {
    store: Store<StoreState>,
    memory: Memory,
    abi_version: TypedFunc<(), i32>,
    buffer: TypedFunc<i32, i32>,
    rules: TypedFunc<(), i64>,
    init: TypedFunc<i32, i64>,
    evaluate: TypedFunc<i32, i64>,
    /// Address and size of the guest's input buffer, once asked for.
    input: (usize, usize),
}

impl GuestInstance {
    /// Instantiates the module (running its start function under the deadline).
    pub(crate) fn start(pre: &InstancePre<StoreState>, limits: &Limits) -> Result<GuestInstance, Fault> {
        let mut store = Store::new(pre.module().engine(), StoreState::new(limits));
        store.limiter(|state| state);
        store.set_epoch_deadline(limits.deadline_ticks());
        let instance = pre.instantiate(&mut store).map_err(|err| fault(err, limits))?;
        let missing = |what| Fault::BadAnswer(format!("export `{what}` vanished after the load check"));
        let memory = instance.get_memory(&mut store, Exports::MEMORY).ok_or_else(|| missing(Exports::MEMORY))?;
        macro_rules! func {
            ($name:expr) => {
                instance.get_typed_func(&mut store, $name).map_err(|_| missing($name))?
            };
        }
        Ok(GuestInstance {
            abi_version: func!(Exports::ABI_VERSION),
            buffer: func!(Exports::BUFFER),
            rules: func!(Exports::RULES),
            init: func!(Exports::INIT),
            evaluate: func!(Exports::EVALUATE),
            store,
            memory,
            input: (0, 0),
        })
    }

    pub(crate) fn abi_version(&mut self, limits: &Limits) -> Result<i32, Fault> {
        self.store.set_epoch_deadline(limits.deadline_ticks());
        self.abi_version.call(&mut self.store, ()).map_err(|err| fault(err, limits))
    }

    /// The module's rule table, as JSON.
    pub(crate) fn rules(&mut self, limits: &Limits) -> Result<Vec<u8>, Fault> {
        self.store.set_epoch_deadline(limits.deadline_ticks());
        let packed = self.rules.call(&mut self.store, ()).map_err(|err| fault(err, limits))?;
        Ok(self.output(packed, MAX_MESSAGE_BYTES)?.to_vec())
    }

    /// Hands the configuration to the guest: `Ok(Err(message))` if it refuses it.
    pub(crate) fn configure(&mut self, config: &[u8], limits: &Limits) -> Result<Result<(), String>, Fault> {
        let len = self.write_input(config, limits)?;
        self.store.set_epoch_deadline(limits.deadline_ticks());
        let packed = self.init.call(&mut self.store, len).map_err(|err| fault(err, limits))?;
        if packed == 0 {
            return Ok(Ok(()));
        }
        let message = self.output(packed, MAX_MESSAGE_BYTES)?;
        Ok(Err(String::from_utf8_lossy(message).into_owned()))
    }

    /// Answers the `selected` records of a batch.
    pub(crate) fn evaluate(
        &mut self,
        records: &EncodedRecords,
        selected: &[usize],
        rule_count: usize,
        limits: &Limits,
    ) -> Result<Vec<Answer>, Fault> {
        let len = records.batch_len(selected);
        let address = self.reserve_input(len, limits)?;
        let input = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(address..address + len)
            .ok_or_else(|| Fault::BadAnswer(format!("its input buffer at {address:#x} lies outside its memory")))?;
        records.write_batch(selected, input);
        self.store.set_epoch_deadline(limits.deadline_ticks());
        let packed = self.evaluate.call(&mut self.store, len as i32).map_err(|err| fault(err, limits))?;
        let output = self.output(packed, 4 + selected.len() * MAX_ANSWER_BYTES)?;
        decode_answers(output, selected.len(), rule_count).map_err(Fault::BadAnswer)
    }

    /// Makes the guest's input buffer at least `len` bytes; returns its address.
    fn reserve_input(&mut self, len: usize, limits: &Limits) -> Result<usize, Fault> {
        if len > self.input.1 {
            let request = i32::try_from(len).map_err(|_| Fault::BadAnswer("input larger than 2 GiB".into()))?;
            self.store.set_epoch_deadline(limits.deadline_ticks());
            let address = self.buffer.call(&mut self.store, request).map_err(|err| fault(err, limits))?;
            self.input = (address as u32 as usize, len);
        }
        Ok(self.input.0)
    }

    /// Copies `bytes` into the guest's input buffer.
    fn write_input(&mut self, bytes: &[u8], limits: &Limits) -> Result<i32, Fault> {
        let address = self.reserve_input(bytes.len(), limits)?;
        self.memory
            .write(&mut self.store, address, bytes)
            .map_err(|_| Fault::BadAnswer(format!("its input buffer at {address:#x} lies outside its memory")))?;
        Ok(bytes.len() as i32)
    }

    /// The guest memory a packed `(address << 32 | length)` result points at.
    fn output(&self, packed: i64, cap: usize) -> Result<&[u8], Fault> {
        let address = (packed as u64 >> 32) as usize;
        let len = (packed as u64 & 0xffff_ffff) as usize;
        if len > cap {
            return Err(Fault::BadAnswer(format!("{len} bytes, more than the {cap} allowed")));
        }
        self.memory
            .data(&self.store)
            .get(address..address + len)
            .ok_or_else(|| Fault::BadAnswer(format!("it points outside memory ({len} bytes at {address:#x})")))
    }
}

fn decode_answers(output: &[u8], count: usize, rule_count: usize) -> Result<Vec<Answer>, String> {
    let mut reader = Reader::new(output);
    let found = reader.count().map_err(|err| err.to_string())?;
    if found != count {
        return Err(format!("{found} answers for {count} records"));
    }
    let known_rules = if rule_count >= 64 { u64::MAX } else { (1u64 << rule_count) - 1 };
    let mut answers = Vec::with_capacity(count);
    for _ in 0..count {
        let answer = wire::decode_answer(&mut reader).map_err(|err| err.to_string())?;
        if answer.fired_bits() & !known_rules != 0 {
            return Err(format!("it names a rule beyond its table of {rule_count}"));
        }
        answers.push(answer);
    }
    if !reader.is_empty() {
        return Err("trailing bytes after the last answer".into());
    }
    Ok(answers)
}

/// Names what went wrong in a call.
fn fault(err: wasmtime::Error, limits: &Limits) -> Fault {
    if let Some(MemoryLimitExceeded(cap)) = err.downcast_ref() {
        return Fault::MemoryLimit(*cap);
    }
    if let Some(TableLimitExceeded(cap)) = err.downcast_ref() {
        return Fault::TableLimit(*cap);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Deadline(limits.deadline_ms),
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        Some(Trap::UnreachableCodeReached) => Fault::Unreachable,
        Some(trap) => Fault::Trap(trap.to_string()),
        None => Fault::Trap(err.to_string()),
    }
}
