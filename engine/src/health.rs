//! Whether the parts a call depends on are running: the SIP listener, the
//! call-record writer and the CRM outbox worker. Each part sets its own
//! state when it starts, stops or fails; `/ready` answers 503 naming the
//! parts that are down, and `/metrics` exports one `voxbridge_component_up`
//! gauge per part in use.

use std::sync::atomic::{AtomicU8, Ordering};

/// A part of the engine that readiness depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The SIP endpoint and the dispatcher that turns INVITEs into calls.
    Sip,
    /// The thread that writes call records.
    Cdr,
    /// The worker that delivers the CRM outbox.
    Outbox,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Sip, Component::Cdr, Component::Outbox];

    pub fn label(self) -> &'static str {
        match self {
            Component::Sip => "sip",
            Component::Cdr => "cdr",
            Component::Outbox => "outbox",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

// 0, the default: a part nobody configured (no CRM: no outbox) is neither
// up nor down.
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The state of every component; shared by the parts and the admin server.
#[derive(Debug, Default)]
pub struct Health {
    states: [AtomicU8; 3],
}

impl Health {
    /// Record that `component` is running (`true`) or has stopped or failed.
    pub fn set(&self, component: Component, up: bool) {
        let v = if up { UP } else { DOWN };
        self.states[component.index()].store(v, Ordering::Relaxed);
    }

    /// `Some(true)` up, `Some(false)` down, `None` not in use.
    pub fn state(&self, component: Component) -> Option<bool> {
        match self.states[component.index()].load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    /// The components in use that are down, in a fixed order.
    pub fn down(&self) -> Vec<&'static str> {
        Component::ALL
            .into_iter()
            .filter(|c| self.state(*c) == Some(false))
            .map(Component::label)
            .collect()
    }
}

/// `voxbridge_component_up{component="…"}` for each component in use.
impl crate::exposition::Exposed for Health {
    fn expose(&self, f: &mut crate::exposition::Families<'_, '_>) -> std::fmt::Result {
        f.gauges(
            "voxbridge_component_up",
            "Whether a part calls depend on is running (1) or stopped (0).",
            Component::ALL.iter().filter_map(|c| {
                self.state(*c)
                    .map(|up| ([("component", c.label())], u8::from(up) as u64))
            }),
        )
    }
}

/// Marks a component down when dropped: held by a component's thread or
/// task so that ending it, by return or panic, is never missed.
pub struct DownOnDrop<'a> {
    pub health: &'a Health,
    pub component: Component,
}

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        self.health.set(self.component, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_parts_are_neither_up_nor_down() {
        let h = Health::default();
        assert!(h.down().is_empty());
        let text = crate::exposition::render(&std::sync::Arc::new(h));
        assert!(!text.contains("component=\""), "{text}");
    }

    #[test]
    fn down_names_what_stopped_and_metrics_follow() {
        let h = Health::default();
        h.set(Component::Sip, true);
        h.set(Component::Cdr, true);
        h.set(Component::Outbox, false);
        assert_eq!(h.down(), vec!["outbox"]);
        h.set(Component::Sip, false);
        assert_eq!(h.down(), vec!["sip", "outbox"]);
        h.set(Component::Outbox, true);
        assert_eq!(h.down(), vec!["sip"]);
        let text = crate::exposition::render(&std::sync::Arc::new(h));
        assert!(text.contains("voxbridge_component_up{component=\"sip\"} 0\n"));
        assert!(text.contains("voxbridge_component_up{component=\"cdr\"} 1\n"));
        assert!(text.contains("voxbridge_component_up{component=\"outbox\"} 1\n"));
    }

    #[test]
    fn a_panicking_holder_marks_its_part_down() {
        let h = std::sync::Arc::new(Health::default());
        h.set(Component::Cdr, true);
        let held = h.clone();
        let result = std::thread::spawn(move || {
            let _guard = DownOnDrop {
                health: &held,
                component: Component::Cdr,
            };
            panic!("writer failed");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(h.state(Component::Cdr), Some(false));
    }
}
