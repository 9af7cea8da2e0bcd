//! Demo CRM data for the simulator and conversation tests: customers,
//! orders and products from a YAML file (fixtures/dialog/demo-crm.yaml),
//! answering the lookups scripts make. The engine talks to the real CRM
//! through crm-bridge; this only stands in when there is none.

use std::path::Path;

use serde::Deserialize;

use crate::diag::Problem;
use crate::value::Value;

/// The demo data.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoCrm {
    #[serde(default)]
    pub customers: Vec<Value>,
    #[serde(default)]
    pub orders: Vec<Value>,
    #[serde(default)]
    pub products: Vec<Value>,
}

fn same(a: &Value, b: &str) -> bool {
    !a.is_null() && a.to_string().trim().eq_ignore_ascii_case(b.trim())
}

impl DemoCrm {
    pub fn load(path: &Path) -> Result<DemoCrm, Problem> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: name.clone(),
            line: 0,
            column: 0,
            severity: crate::diag::Severity::Error,
            message: format!("cannot read: {e}"),
        })?;
        crate::load::parse_yaml(&name, &text)
    }

    /// A customer by id, or by phone number.
    pub fn customer(&self, id_or_phone: &str) -> Option<&Value> {
        self.customers
            .iter()
            .find(|c| same(c.field("id"), id_or_phone) || same(c.field("phone"), id_or_phone))
    }

    /// A customer's orders, newest first.
    pub fn orders_of(&self, customer: &str) -> Vec<Value> {
        let mut list: Vec<Value> = self
            .orders
            .iter()
            .filter(|o| same(o.field("customer"), customer))
            .cloned()
            .collect();
        list.sort_by_key(|o| std::cmp::Reverse(o.field("placed").to_string()));
        list
    }

    /// Answer a script's lookup: `Ok(Null)` is "not found", `Err` a failure.
    pub fn lookup(
        &self,
        name: &str,
        args: &std::collections::BTreeMap<String, String>,
    ) -> Result<Value, String> {
        let arg = |k: &str| args.get(k).map(String::as_str).unwrap_or("");
        Ok(match name {
            "customer" => self.customer(arg("phone")).cloned().unwrap_or(Value::Null),
            "orders" => Value::List(self.orders_of(arg("customer"))),
            "latest_order" => self
                .orders_of(arg("customer"))
                .into_iter()
                .next()
                .unwrap_or(Value::Null),
            "order_status" => self
                .orders
                .iter()
                .find(|o| same(o.field("id"), arg("order_id")))
                .cloned()
                .unwrap_or(Value::Null),
            "stock" => {
                let p = arg("product");
                self.products
                    .iter()
                    .find(|x| {
                        same(x.field("id"), p)
                            || same(x.field("name").field("en"), p)
                            || same(x.field("name").field("zh"), p)
                    })
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            other => return Err(format!("the demo CRM has no lookup `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn crm() -> DemoCrm {
        serde_saphyr::from_str(
            r#"
customers:
  - { id: C1, phone: "+1555", name: Ann }
orders:
  - { id: "1", customer: C1, placed: 2026-01-01, status: delivered }
  - { id: "2", customer: C1, placed: 2026-02-01, status: shipped }
products:
  - { id: kettle, name: { en: electric kettle }, available: 3 }
"#,
        )
        .unwrap()
    }

    fn args(k: &str, v: &str) -> BTreeMap<String, String> {
        [(k.to_string(), v.to_string())].into_iter().collect()
    }

    #[test]
    fn answers_lookups() {
        let c = crm();
        assert_eq!(
            c.customer("+1555")
                .map(|c| c.field("name").to_string())
                .as_deref(),
            Some("Ann")
        );
        let latest = c.lookup("latest_order", &args("customer", "C1")).unwrap();
        assert_eq!(latest.field("id"), &Value::from("2"));
        let o = c.lookup("order_status", &args("order_id", "1")).unwrap();
        assert_eq!(o.field("status"), &Value::from("delivered"));
        assert!(c
            .lookup("order_status", &args("order_id", "9"))
            .unwrap()
            .is_null());
        let s = c
            .lookup("stock", &args("product", "Electric Kettle"))
            .unwrap();
        assert_eq!(s.field("available"), &Value::from(3i64));
        assert!(c.lookup("weather", &BTreeMap::new()).is_err());
    }
}
