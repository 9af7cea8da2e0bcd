//! Calls the engine places: the SIP dialler behind [`crate::dialing::Dialer`]
//! (a campaign's attempts, `POST /calls`, `voxbridge dial`).
//!
//! - [`route`]: from a request's number and `via` to the INVITE's URIs,
//!   proxy and credentials;
//! - [`leg`]: the answered call's leg as the call shell sees it;
//! - [`script`]: the flow the answered call runs (the request's script, the
//!   contact's profile and fields) and what it produced;
//! - [`dialer`]: one attempt from admission to its [`crate::dialing::DialOutcome`];
//! - [`api`]: the admin route that places one call.

pub mod api;
mod dialer;
mod leg;
mod route;
mod script;

pub use dialer::SipDialer;
pub use route::RouteError;
