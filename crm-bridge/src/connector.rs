//! The one interface every CRM, ERP and helpdesk connector implements.
//!
//! Each method is one thing a call needs. A connector implements the ones
//! its system can do and leaves the rest to the default, which answers
//! [`CrmError::Unsupported`]; the configuration routes each operation to a
//! system that has it (customers from the CRM, stock from the ERP, tickets
//! from the helpdesk).
//!
//! Writes take an idempotency key: the outbox may deliver a write more than
//! once (it cannot know whether a request that timed out got through), and
//! the connector must make the second delivery a no-op, with the target's
//! idempotency support or by looking the key up first.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::CrmError;
use crate::model::{
    CallLog, Customer, CustomerQuery, NewTask, NewTicket, Order, ProductQuery, StockLevel, WriteRef,
};
use crate::phone::E164;

/// The boxed future `async_trait` methods return, for code that passes
/// connector calls around as values.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The operations, for configuration routing, errors and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    FindCustomer,
    GetCustomer,
    ListOrders,
    OrderStatus,
    Stock,
    CreateTicket,
    LogCall,
    CreateTask,
    /// Customers for an outbound campaign (`list: crm: {query: …}`).
    ListCustomers,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::FindCustomer,
        Operation::GetCustomer,
        Operation::ListOrders,
        Operation::OrderStatus,
        Operation::Stock,
        Operation::CreateTicket,
        Operation::LogCall,
        Operation::CreateTask,
        Operation::ListCustomers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::FindCustomer => "find_customer",
            Operation::GetCustomer => "get_customer",
            Operation::ListOrders => "list_orders",
            Operation::OrderStatus => "order_status",
            Operation::Stock => "stock",
            Operation::CreateTicket => "create_ticket",
            Operation::LogCall => "log_call",
            Operation::CreateTask => "create_task",
            Operation::ListCustomers => "list_customers",
        }
    }

    /// Reads may be retried freely; writes only through the outbox.
    pub fn is_read(self) -> bool {
        !matches!(
            self,
            Operation::CreateTicket | Operation::LogCall | Operation::CreateTask
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CRM, ERP or helpdesk.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The configured name of this system (`crm`, `erp`, `helpdesk`…).
    fn system(&self) -> &str;

    /// The customer whose phone number is `phone`, if any.
    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let _ = phone;
        Err(self.unsupported(Operation::FindCustomer))
    }

    /// The customer with this id in this system.
    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let _ = id;
        Err(self.unsupported(Operation::GetCustomer))
    }

    /// A customer's orders, newest first.
    async fn list_orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        let _ = customer_id;
        Err(self.unsupported(Operation::ListOrders))
    }

    /// One order by its number.
    async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        let _ = order_id;
        Err(self.unsupported(Operation::OrderStatus))
    }

    /// Stock of the products matching `query`, best match first.
    async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        let _ = query;
        Err(self.unsupported(Operation::Stock))
    }

    /// Open a ticket; a second call with the same key returns the first
    /// ticket.
    async fn create_ticket(&self, ticket: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let _ = (ticket, key);
        Err(self.unsupported(Operation::CreateTicket))
    }

    /// Write the post-call record; idempotent by key.
    async fn log_call(&self, call: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let _ = (call, key);
        Err(self.unsupported(Operation::LogCall))
    }

    /// Create a follow-up task; idempotent by key.
    async fn create_task(&self, task: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        let _ = (task, key);
        Err(self.unsupported(Operation::CreateTask))
    }

    /// The customers a campaign list query names (`follow_ups`, `all`),
    /// each with a phone number. Only the embedded CRM answers it so far.
    async fn list_customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>, CrmError> {
        let _ = query;
        Err(self.unsupported(Operation::ListCustomers))
    }

    /// The error for an operation this connector does not have.
    fn unsupported(&self, op: Operation) -> CrmError {
        CrmError::Unsupported {
            system: self.system().to_string(),
            op,
        }
    }
}
