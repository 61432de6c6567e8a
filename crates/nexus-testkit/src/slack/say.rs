//! What a person says, as Slack's events: a `message` event (subtype `file_share` with a file,
//! `bot_message` from a bot), and for a mention outside a DM also an `app_mention` event for
//! the same channel and `ts` with its own `event_id`, each wrapped in an `event_callback`.

use serde_json::{Value, json};

use super::Shared;
use super::events::now_secs;
use super::world::{ChannelType, Stored, StoredFile};
use crate::chat::{Place, Said, UserSays};
use crate::journal::lock;

fn random_upper(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// Wraps `event` in an `event_callback` envelope with a fresh `event_id`.
pub(crate) fn envelope(shared: &Shared, event: Value) -> Value {
    let c = &shared.config;
    json!({
        "token": "fake-verification-token",
        "team_id": c.team_id,
        "api_app_id": c.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": format!("Ev{}", random_upper(10)),
        "event_time": now_secs(),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": c.team_id,
            "user_id": c.bot_user_id,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": format!("4-{}", random_upper(24)),
    })
}

fn file_json(shared: &Shared, id: &str, file: &StoredFile, user: &str) -> Value {
    let base = format!(
        "http://{}/files-pri/{}-{id}",
        shared.addr, shared.config.team_id
    );
    let filetype = file.name.rsplit_once('.').map_or("binary", |(_, ext)| ext);
    let now = now_secs();
    json!({
        "id": id,
        "created": now,
        "timestamp": now,
        "name": file.name,
        "title": file.name,
        "mimetype": file.content_type,
        "filetype": filetype,
        "user": user,
        "mode": "hosted",
        "editable": false,
        "is_external": false,
        "size": file.bytes.len(),
        "url_private": format!("{base}/{}", file.name),
        "url_private_download": format!("{base}/download/{}", file.name),
    })
}

/// Records what `says` in the workspace and builds its `event_callback` envelopes, in the
/// order Slack sends them.
pub(crate) fn build(shared: &Shared, says: UserSays) -> (Said, Vec<Value>) {
    let c = &shared.config;
    let mut world = lock(&shared.world);
    let (channel, thread) = match &says.place {
        Place::Direct => (world.dm_channel(&says.user_id), None),
        Place::Group { chat_id, thread_id } => {
            world.create_channel(chat_id);
            (chat_id.clone(), thread_id.clone())
        }
    };
    // A reply to a message is a reply in its thread: Slack has no other kind.
    let thread_ts = thread.or_else(|| says.reply_to.clone());
    let ts = world.next_ts();
    let text = if says.mention_bot {
        format!("<@{}> {}", c.bot_user_id, says.text)
    } else {
        says.text.clone()
    };
    let parent_user = thread_ts.as_deref().and_then(|t| world.author(&channel, t));
    let file = says.file.as_ref().map(|f| {
        let stored = StoredFile {
            name: f.name.clone(),
            content_type: f.content_type.clone(),
            bytes: f.bytes.clone(),
        };
        let id = world.add_file(stored.clone());
        file_json(shared, &id, &stored, &says.user_id)
    });
    world.messages.push(Stored {
        channel: channel.clone(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        text: text.clone(),
        user: says.user_id.clone(),
        by_bot: false,
        edits: 0,
    });
    drop(world);

    let channel_type = ChannelType::of(&channel);
    let mut message = json!({
        "type": "message",
        "channel": channel,
        "user": says.user_id,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type.as_str(),
        "team": c.team_id,
    });
    if says.is_bot {
        message["bot_id"] = json!(format!("B{}", says.user_id.trim_start_matches('U')));
        message["username"] = json!(says.user_name);
        if file.is_none() {
            message["subtype"] = json!("bot_message");
        }
    } else {
        message["user_profile"] = json!({
            "name": says.user_name,
            "display_name": says.user_name,
            "real_name": says.user_name,
        });
    }
    if let Some(thread) = &thread_ts {
        message["thread_ts"] = json!(thread);
        if let Some(parent) = &parent_user {
            message["parent_user_id"] = json!(parent);
        }
    }
    if let Some(file) = &file {
        message["subtype"] = json!("file_share");
        message["files"] = json!([file]);
        message["upload"] = json!(false);
    }
    let mut payloads = Vec::new();
    if says.mention_bot && channel_type != ChannelType::Im {
        let mut mention = json!({
            "type": "app_mention",
            "user": says.user_id,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": c.team_id,
        });
        if let Some(thread) = &thread_ts {
            mention["thread_ts"] = json!(thread);
        }
        if let Some(file) = &file {
            mention["files"] = json!([file]);
        }
        if let Some(bot_id) = message.get("bot_id") {
            mention["bot_id"] = bot_id.clone();
        }
        payloads.push(envelope(shared, mention));
    }
    payloads.push(envelope(shared, message));
    let said = Said {
        message_id: ts,
        chat_id: channel,
    };
    (said, payloads)
}
