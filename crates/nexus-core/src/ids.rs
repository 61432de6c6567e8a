//! Typed identifiers: UUIDs behind typed wrappers, so a `SessionId` cannot be passed as a
//! `UserId`.
//!
//! New ids are random (v4) by default: random keys spread inserts across CockroachDB's ranges,
//! where keys that grow with time would send every insert to the last one. A store whose
//! indexes are local B-trees (embedded SQLite) switches the process to time-ordered (v7) ids
//! with [`use_time_ordered_ids`]: a new key then lands on the last page of each index instead
//! of a random one, so a commit writes a few pages instead of one per key inserted. Both kinds
//! are valid everywhere; only where new rows go in an index changes.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

static TIME_ORDERED: AtomicBool = AtomicBool::new(false);

/// Makes new ids of this process time-ordered (UUID v7, `true`) or random (UUID v4, `false`,
/// the default). Set by the store when it opens, before any id is made.
pub fn use_time_ordered_ids(on: bool) {
    TIME_ORDERED.store(on, Ordering::Relaxed);
}

/// A new UUID of the kind this process makes (see [`use_time_ordered_ids`]).
pub fn new_uuid() -> Uuid {
    if TIME_ORDERED.load(Ordering::Relaxed) {
        Uuid::now_v7()
    } else {
        Uuid::new_v4()
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id (random, or time-ordered: see [`use_time_ordered_ids`]).
            pub fn new() -> Self {
                Self(new_uuid())
            }

            /// Wraps an existing UUID (read from storage or the wire).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// Identifies a [`crate::User`].
    UserId
);
typed_id!(
    /// Identifies an [`crate::Agent`].
    AgentId
);
typed_id!(
    /// Identifies a [`crate::Session`].
    SessionId
);
typed_id!(
    /// Identifies a [`crate::Message`].
    MessageId
);
typed_id!(
    /// Identifies an [`crate::ApiKey`].
    ApiKeyId
);
typed_id!(
    /// Identifies a [`crate::ChannelCredential`].
    ChannelCredentialId
);
typed_id!(
    /// Identifies one turn: the processing of one inbound message (equal to its inbox item).
    TurnId
);
typed_id!(
    /// Identifies an outbound delivery record.
    DeliveryId
);
typed_id!(
    /// Identifies an [`crate::Attachment`].
    AttachmentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_display_and_parse() {
        let id = SessionId::new();
        let parsed: SessionId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn time_ordered_ids_sort_by_creation() {
        use_time_ordered_ids(true);
        let ids: Vec<MessageId> = (0..64).map(|_| MessageId::new()).collect();
        use_time_ordered_ids(false);
        assert!(ids.iter().all(|id| id.as_uuid().get_version_num() == 7));
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "each id sorts after the one made before it"
        );
        assert_eq!(MessageId::new().as_uuid().get_version_num(), 4);
    }

    #[test]
    fn malformed_id_is_an_error_not_a_panic() {
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = AgentId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
    }
}
