//! The script an answered outbound call runs, and what it produced.
//!
//! The call runs the request's script (not `dialog.script`), started with
//! the contact's CRM profile as `customer`; the list's extra fields join
//! that profile (`customer.<field>`, the CRM's own value wins), and stand
//! in for it when the CRM has none, so a CSV list drives the script alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use voxbridge_dialog::interp::{CallRecord as ScriptRecord, Speaker};
use voxbridge_dialog::value::Value;

use crate::call::{FlowFactory, FlowStart};
use crate::dialing::{FollowUpTask, ScriptResult};
use crate::flow::CallFlow;
use crate::script_flow::ScriptFlow;
use crate::script_store::ScriptStore;

/// The scripts outbound calls run, loaded once per file and reloaded when
/// a file changes (a stat per attempt), so an attempt's INVITE does not
/// wait for YAML to be parsed and checked: that took 15–250 ms on a busy
/// box and spread a campaign's paced starts into bursts at the callee.
#[derive(Default)]
pub struct Scripts(Mutex<HashMap<PathBuf, Arc<ScriptStore>>>);

impl Scripts {
    /// The script at `path`, current.
    pub fn get(&self, path: &Path) -> Result<Arc<ScriptStore>, String> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = map.get(path) {
            store.reload_if_changed();
            return Ok(store.clone());
        }
        let store = ScriptStore::load(path)?;
        map.insert(path.to_path_buf(), store.clone());
        Ok(store)
    }
}

/// The flow factory for one outbound call.
pub fn flow_factory(
    store: Arc<ScriptStore>,
    fields: BTreeMap<String, String>,
    zone: jiff::tz::TimeZone,
) -> FlowFactory {
    Box::new(move |start: &FlowStart| {
        let customer = profile(start, &fields);
        Box::new(
            ScriptFlow::new(store.current(), start.caller.clone(), customer)
                .with_today(crate::calendar::today(&zone)),
        ) as Box<dyn CallFlow>
    })
}

/// The script's `customer`: the CRM profile with the list's fields added.
fn profile(start: &FlowStart, fields: &BTreeMap<String, String>) -> Option<Value> {
    let crm = start
        .customer
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .map(crate::crm::script_view);
    let mut map = match crm {
        Some(serde_json::Value::Object(m)) => m,
        Some(other) => return Some(Value::from(other)),
        None if fields.is_empty() => return None,
        None => serde_json::Map::new(),
    };
    for (k, v) in fields {
        map.entry(k.clone())
            .or_insert_with(|| serde_json::Value::String(v.clone()));
    }
    Some(Value::from(serde_json::Value::Object(map)))
}

/// The intent the script's global handler names when the callee asks not
/// to be called again.
pub const STOP_CALLING: &str = "stop_calling";

/// What the script produced, for the campaign's write-back.
pub fn result(call_id: &str, record: Option<&ScriptRecord>) -> ScriptResult {
    let Some(r) = record else {
        return ScriptResult {
            call_id: call_id.to_string(),
            ..Default::default()
        };
    };
    let slots = r
        .facts
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Null | Value::Map(_) | Value::List(_)))
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    ScriptResult {
        call_id: call_id.to_string(),
        intents: r.intents.clone(),
        slots,
        transcript: r
            .transcript
            .iter()
            .filter(|t| t.speaker == Speaker::Caller)
            .map(|t| t.text.clone())
            .collect(),
        score: r.score,
        tasks: r
            .follow_ups
            .iter()
            .map(|f| FollowUpTask {
                subject: f.subject.clone(),
                body: f.body.clone(),
            })
            .collect(),
        tickets: r.tickets.clone(),
        stop_calling: r.intents.iter().any(|i| i == STOP_CALLING),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxbridge_crm::model::Customer;

    #[test]
    fn the_records_score_tasks_and_tickets_reach_the_result() {
        use voxbridge_dialog::interp::{EndedBy, FollowUp};
        let record = ScriptRecord {
            script: "outbound-follow-up".into(),
            caller: "+12125550101".into(),
            customer_id: None,
            language: voxbridge_dialog::format::Lang::En,
            ended_by: EndedBy::Bot,
            disposition: "callback_booked".into(),
            facts: [("score".to_string(), Value::Number(90.0))].into(),
            intents: vec![],
            tickets: vec!["1001".into()],
            score: Some(90.0),
            follow_ups: vec![FollowUp {
                trigger: "quote".into(),
                subject: "Send a quote".into(),
                body: "The caller said: \"price\"".into(),
                state: "ask_interest".into(),
            }],
            transferred_to: None,
            path: vec![],
            transcript: vec![],
        };
        let r = result("abc@vb", Some(&record));
        assert_eq!(r.score, Some(90.0));
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(r.tasks[0].subject, "Send a quote");
        // The ticket was opened during the call: not a task to write again.
        assert_eq!(r.tickets, vec!["1001".to_string()]);
    }

    #[test]
    fn fields_join_the_profile_and_stand_in_for_it() {
        let fields: BTreeMap<String, String> = [
            ("interest".to_string(), "solar panels".to_string()),
            ("name".to_string(), "From The List".to_string()),
        ]
        .into();
        let alone = profile(
            &FlowStart {
                caller: "+1".into(),
                customer: None,
            },
            &fields,
        )
        .unwrap();
        let Value::Map(m) = alone else {
            panic!("a map")
        };
        assert_eq!(m["interest"], Value::from("solar panels"));

        let customer = Customer {
            id: "c1".into(),
            system: "demo".into(),
            name: "Ann Lee".into(),
            phone: None,
            email: None,
            tier: None,
            language: None,
            fields: Default::default(),
        };
        let with = profile(
            &FlowStart {
                caller: "+1".into(),
                customer: Some(customer),
            },
            &fields,
        )
        .unwrap();
        let Value::Map(m) = with else { panic!("a map") };
        // The CRM's own name wins over the list's.
        assert_eq!(m["name"], Value::from("Ann Lee"));
        assert_eq!(m["interest"], Value::from("solar panels"));
        assert!(profile(
            &FlowStart {
                caller: "+1".into(),
                customer: None
            },
            &BTreeMap::new()
        )
        .is_none());
    }
}
