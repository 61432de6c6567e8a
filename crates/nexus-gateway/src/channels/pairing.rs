//! Direct-message pairing codes: short, unambiguous to read aloud, unique, expiring.

use chrono::{DateTime, Duration, Utc};
use nexus_core::ChannelCredentialId;
use nexus_store::{Pairing, Store, StoreError};
use rand::Rng;

/// Letters and digits that cannot be mistaken for each other (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Code length: 31^8 ≈ 8.5·10^11 codes.
const CODE_LEN: usize = 8;
/// How many fresh codes are drawn when one collides.
const DRAWS: usize = 4;

/// A new random code.
pub(crate) fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A code as typed by a person: trimmed, upper case, without spaces or dashes.
pub(crate) fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The sender's pairing: the one they have (approved, or a code still valid), else a new code
/// valid for `ttl`.
pub(crate) async fn offer(
    store: &dyn Store,
    channel_id: ChannelCredentialId,
    sender_id: &str,
    sender_name: Option<&str>,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Pairing, StoreError> {
    let mut last = None;
    for _ in 0..DRAWS {
        let offer = Pairing {
            channel_id,
            sender_id: sender_id.to_owned(),
            sender_name: sender_name.map(str::to_owned),
            code: new_code(),
            created_at: now,
            expires_at: now + ttl,
            approved_at: None,
        };
        match store.offer_pairing(&offer).await {
            Err(err @ StoreError::Conflict { .. }) => last = Some(err),
            other => return other,
        }
    }
    Err(last.unwrap_or(StoreError::Conflict {
        what: "pairing code",
    }))
}

/// What an unknown sender is told.
pub(crate) fn message(pairing: &Pairing) -> String {
    format!(
        "Hi! This bot only talks to people its owner approved. Your pairing code is \
         `{}`. Send it to the bot's owner; they approve it with `nexus channel approve {}`. \
         The code expires at {} UTC.",
        pairing.code,
        pairing.code,
        pairing.expires_at.format("%Y-%m-%d %H:%M")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_normalize_as_typed() {
        let code = new_code();
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        assert_eq!(normalize(" abcd-ef23 "), "ABCDEF23");
    }
}
