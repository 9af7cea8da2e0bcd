//! The contacts of a campaign: read from a CSV file (or built from CRM
//! customers), numbers normalised to E.164, each contact's time zone found.
//!
//! CSV columns (header names, any order, case-insensitive): `phone`
//! (required), `id`, `name`, `customer_id`, `language`, `time_zone`; every
//! other column is an extra field the script gets as a slot.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use thiserror::Error;
use voxbridge_crm::model::Customer;
use voxbridge_crm::{Country, E164};

use super::zones;

/// Why a list cannot be imported.
#[derive(Debug, Error)]
pub enum ListError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// One person to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Stable across imports: the `id` column, else the customer id, else the number.
    pub id: String,
    /// E.164.
    pub number: String,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    pub language: Option<String>,
    /// The IANA zone the contact's calling hours are counted in.
    pub time_zone: String,
    /// Where the zone came from: `list` or `number`.
    pub zone_source: ZoneSource,
    pub fields: BTreeMap<String, String>,
}

/// Where a contact's zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// The list's `time_zone` column (or the CRM record).
    List,
    /// The number's country (its most populous zone).
    Number,
}

impl ZoneSource {
    pub fn label(self) -> &'static str {
        match self {
            ZoneSource::List => "list",
            ZoneSource::Number => "number",
        }
    }
}

/// What an import produced.
#[derive(Debug, Default)]
pub struct Imported {
    pub contacts: Vec<Contact>,
    /// Rows whose number was already in the list (kept once).
    pub duplicates: usize,
}

/// Normalise `raw`: `+…` numbers as they are, national ones in `country`.
pub fn normalise(raw: &str, country: Option<&str>) -> Result<E164, String> {
    let raw = raw.trim();
    let home = match country {
        Some(iso) => Country::by_iso(iso).map_err(|e| e.to_string())?,
        None if raw.starts_with('+') || raw.starts_with("00") => {
            // Any country reads an international number the same way.
            Country::by_iso("US").map_err(|e| e.to_string())?
        }
        None => {
            return Err(format!(
                "{raw:?} is a national number: write it as +… or set `list.country`"
            ))
        }
    };
    E164::parse(raw, home).map_err(|e| format!("{raw:?}: {e}"))
}

/// The zone for a contact: its own if given (checked), else its number's
/// country's.
pub fn zone_for(number: &E164, given: Option<&str>) -> Result<(String, ZoneSource), String> {
    if let Some(name) = given.map(str::trim).filter(|s| !s.is_empty()) {
        TimeZone::get(name).map_err(|_| format!("time zone {name:?} is not an IANA zone name"))?;
        return Ok((name.to_string(), ZoneSource::List));
    }
    let country = number.country().ok_or_else(|| {
        format!(
            "{}: no country for this number; add a time_zone",
            number.as_str()
        )
    })?;
    let zone = zones::for_country(country.iso()).ok_or_else(|| {
        format!(
            "{}: no time zone known for {}; add a time_zone",
            number.as_str(),
            country.iso()
        )
    })?;
    Ok((zone.to_string(), ZoneSource::Number))
}

/// Read a CSV list. A bad row fails the import, naming its line.
pub fn read_csv(path: &Path, country: Option<&str>) -> Result<Imported, ListError> {
    let file_err = |message: String| ListError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(path)
        .map_err(|e| file_err(e.to_string()))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| file_err(e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase().replace([' ', '-'], "_"))
        .collect();
    let column = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let phone = column(&["phone", "number", "phone_number"])
        .ok_or_else(|| file_err("no `phone` column in the header".into()))?;
    let id = column(&["id", "contact_id"]);
    let name = column(&["name"]);
    let customer = column(&["customer_id", "customer"]);
    let language = column(&["language", "lang"]);
    let zone = column(&["time_zone", "timezone", "tz"]);
    let known: Vec<usize> = [Some(phone), id, name, customer, language, zone]
        .into_iter()
        .flatten()
        .collect();
    let mut out = Imported::default();
    let mut seen = HashSet::new();
    for row in reader.records() {
        let row = row.map_err(|e| file_err(e.to_string()))?;
        let line = row.position().map_or(0, |p| p.line());
        let row_err = |message: String| ListError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        let get = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let Some(raw_number) = get(Some(phone)) else {
            return Err(row_err("empty phone".into()));
        };
        let number = normalise(&raw_number, country).map_err(row_err)?;
        let (time_zone, zone_source) = zone_for(&number, get(zone).as_deref()).map_err(row_err)?;
        let customer_id = get(customer);
        let contact_id = get(id)
            .or_else(|| customer_id.clone())
            .unwrap_or_else(|| number.as_str().to_string());
        if !seen.insert(number.as_str().to_string()) || !seen.insert(format!("id:{contact_id}")) {
            out.duplicates += 1;
            continue;
        }
        let fields = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| !known.contains(i))
            .filter_map(|(i, h)| Some((h.clone(), row.get(i)?.to_string())))
            .collect();
        out.contacts.push(Contact {
            id: contact_id,
            number: number.as_str().to_string(),
            name: get(name),
            customer_id,
            language: get(language),
            time_zone,
            zone_source,
            fields,
        });
    }
    Ok(out)
}

/// Contacts from CRM customers (those without a usable number are skipped
/// and counted as `duplicates`' sibling: returned as the second value).
pub fn from_customers(customers: &[Customer], country: Option<&str>) -> (Imported, Vec<String>) {
    let mut out = Imported::default();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    for c in customers {
        let Some(raw) = c.phone.as_deref() else {
            skipped.push(format!("{}: no phone", c.id));
            continue;
        };
        let number = match normalise(raw, country) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(format!("{}: {e}", c.id));
                continue;
            }
        };
        let given = c.fields.get("time_zone").map(String::as_str);
        let (time_zone, zone_source) = match zone_for(&number, given) {
            Ok(z) => z,
            Err(e) => {
                skipped.push(format!("{}: {e}", c.id));
                continue;
            }
        };
        if !seen.insert(number.as_str().to_string()) {
            out.duplicates += 1;
            continue;
        }
        out.contacts.push(Contact {
            id: c.id.clone(),
            number: number.as_str().to_string(),
            name: Some(c.name.clone()).filter(|n| !n.is_empty()),
            customer_id: Some(c.id.clone()),
            language: c.language.clone(),
            time_zone,
            zone_source,
            fields: c.fields.clone(),
        });
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("list.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// A throwaway folder (std only: the engine has no tempfile crate).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "vb-camp-list-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn columns_zones_and_extra_fields() {
        let (_d, path) = write(
            "Phone,Name,Customer ID,Language,Time Zone,order\n\
             +1 212 555 0101,Ann,C-1,en,,SO-1\n\
             030 1234567,Bernd,,de,Europe/Berlin,SO-2\n\
             +8613800138000,Li,C-3,zh,,\n",
        );
        let list = read_csv(&path, Some("DE")).unwrap();
        assert_eq!(list.contacts.len(), 3);
        let ann = &list.contacts[0];
        assert_eq!(ann.number, "+12125550101");
        assert_eq!(ann.id, "C-1");
        assert_eq!(ann.time_zone, "America/New_York");
        assert_eq!(ann.zone_source, ZoneSource::Number);
        assert_eq!(ann.fields["order"], "SO-1");
        let bernd = &list.contacts[1];
        assert_eq!(bernd.number, "+49301234567");
        assert_eq!(bernd.id, "+49301234567");
        assert_eq!(bernd.zone_source, ZoneSource::List);
        assert_eq!(list.contacts[2].time_zone, "Asia/Shanghai");
    }

    #[test]
    fn bad_rows_name_their_line_and_duplicates_are_kept_once() {
        let (_d, path) = write("phone,time_zone\n+12125550101,\n+12125550101,\n0301234567,\n");
        let err = read_csv(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("list.csv:4:") && err.contains("list.country"),
            "{err}"
        );
        let (_d, path) = write("phone,time_zone\n+12125550101,Mars/Olympus\n");
        let err = read_csv(&path, None).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("IANA"), "{err}");
        let (_d, path) = write("phone\n+12125550101\n+1 (212) 555-0101\n");
        let list = read_csv(&path, None).unwrap();
        assert_eq!((list.contacts.len(), list.duplicates), (1, 1));
        let (_d, path) = write("name\nAnn\n");
        assert!(read_csv(&path, None)
            .unwrap_err()
            .to_string()
            .contains("phone"));
    }
}
