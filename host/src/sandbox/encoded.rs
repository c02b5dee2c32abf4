//! Records in their binary form, encoded once per batch and copied into
//! each policy that applies to them, as that policy reads them.

use flowgate_sdk::FlowRecord;
use flowgate_sdk::wire;

use super::translation::Translation;

/// A batch of records, each encoded once.
#[derive(Default)]
pub(crate) struct EncodedRecords {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl EncodedRecords {
    pub(crate) fn new(flows: &[FlowRecord]) -> EncodedRecords {
        let mut records = EncodedRecords::default();
        records.encode(flows);
        records
    }

    /// Encodes `flows` in place of the records held, reusing the buffers.
    pub(crate) fn encode(&mut self, flows: &[FlowRecord]) {
        self.bytes.clear();
        self.ends.clear();
        for flow in flows {
            wire::encode_record(flow, &mut self.bytes);
            self.ends.push(self.bytes.len());
        }
    }

    /// The binary form of record `i`.
    pub(crate) fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// The size of a batch of the `selected` records as the policy of
    /// `translation` receives it: a count, then the records.
    pub(crate) fn batch_len(&self, selected: &[usize], translation: &Translation) -> usize {
        4 + selected.iter().map(|&i| translation.record_len(self.record(i))).sum::<usize>()
    }

    /// Writes the batch of the `selected` records into `out`, which is
    /// exactly [`EncodedRecords::batch_len`] bytes long.
    pub(crate) fn write_batch(&self, selected: &[usize], translation: &Translation, out: &mut [u8]) {
        let count = u32::try_from(selected.len()).expect("a batch holds fewer than 2^32 records");
        out[..4].copy_from_slice(&count.to_le_bytes());
        let mut at = 4;
        for &i in selected {
            let record = self.record(i);
            let len = translation.record_len(record);
            translation.write_record(record, &mut out[at..at + len]);
            at += len;
        }
    }
}
