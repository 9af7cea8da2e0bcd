//! Media direction as negotiated in SDP (`a=sendrecv` and friends), from our side.

/// Which way audio flows, seen from voxbridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// We send and receive.
    #[default]
    SendRecv,
    /// We only send (the peer put us on hold with `recvonly`, or we hold them).
    SendOnly,
    /// We only receive (the peer holds us with `sendonly`: music on hold from them).
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// Whether we may transmit RTP in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether we expect to receive RTP (and so run the inactivity timer).
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The SDP attribute name, e.g. `sendrecv`.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parse an SDP direction attribute name.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Our answer to a peer's offered direction (RFC 3264 §6.1).
    pub fn answer_to(offered: Direction) -> Direction {
        match offered {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}
