//! The do-not-call list: numbers from the campaign's `dnc` file and those
//! added since (a caller's `stop_calling`), kept in the store and in memory
//! so the check at each release costs a hash lookup.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use jiff::Timestamp;

use super::list::normalise;
use super::store::{Store, StoreError};

/// Read a DNC file: one number a line, blank lines and `#` comments
/// ignored. A line that is not a number fails the file, naming its line.
pub fn read_file(path: &Path, country: Option<&str>) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let number =
            normalise(line, country).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(number.as_str().to_string());
    }
    Ok(out)
}

/// The list as the runners check it.
pub struct Dnc {
    store: Arc<Store>,
    numbers: RwLock<HashSet<String>>,
}

impl Dnc {
    /// Load the stored list.
    pub fn load(store: Arc<Store>) -> Result<Dnc, StoreError> {
        let numbers = store.dnc()?;
        Ok(Dnc {
            store,
            numbers: RwLock::new(numbers),
        })
    }

    pub fn contains(&self, number: &str) -> bool {
        self.numbers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(number)
    }

    /// Add numbers (E.164): stored first, then visible to the check.
    pub fn add(
        &self,
        numbers: &[String],
        source: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let added = self.store.add_dnc(numbers, source, now)?;
        let mut set = self.numbers.write().unwrap_or_else(|p| p.into_inner());
        set.extend(numbers.iter().cloned());
        Ok(added)
    }

    pub fn len(&self) -> usize {
        self.numbers.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
