//! What the fakes of chat platforms (Telegram, Discord, Slack) have in common, so one channel
//! conformance suite can drive any of them: a person says something, the bot's messages are
//! read back.

use std::future::Future;

/// Where a person writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A direct message to the bot.
    Direct,
    /// A group chat / guild channel / shared channel, optionally inside a thread or topic.
    Group {
        /// The platform's chat id (a Telegram supergroup id such as `-1001`, a Discord channel
        /// id, a Slack channel id such as `C1`).
        chat_id: String,
        /// A thread or forum topic id inside it.
        thread_id: Option<String>,
    },
}

/// A file a person attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Something a person says to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSays {
    /// The person's platform user id (digits for Telegram and Discord, `U…` for Slack).
    pub user_id: String,
    /// Their display name.
    pub user_name: String,
    /// Whether the author is a bot.
    pub is_bot: bool,
    /// Where.
    pub place: Place,
    /// The text, without any mention.
    pub text: String,
    /// Whether the message starts by mentioning the bot (the fake writes the platform's
    /// mention syntax and entities).
    pub mention_bot: bool,
    /// The platform id of a message this one replies to.
    pub reply_to: Option<String>,
    /// An attached file.
    pub file: Option<FakeFile>,
}

impl UserSays {
    /// A direct message `text` from user `user_id`.
    pub fn direct(user_id: &str, text: &str) -> Self {
        UserSays {
            user_id: user_id.to_owned(),
            user_name: format!("user {user_id}"),
            is_bot: false,
            place: Place::Direct,
            text: text.to_owned(),
            mention_bot: false,
            reply_to: None,
            file: None,
        }
    }

    /// A group message `text` from user `user_id` in `chat_id`.
    pub fn group(user_id: &str, chat_id: &str, text: &str) -> Self {
        UserSays {
            place: Place::Group {
                chat_id: chat_id.to_owned(),
                thread_id: None,
            },
            ..UserSays::direct(user_id, text)
        }
    }

    /// The same, mentioning the bot.
    pub fn mentioning(mut self) -> Self {
        self.mention_bot = true;
        self
    }

    /// The same, inside thread or topic `thread_id` (of a group).
    pub fn in_thread(mut self, thread_id: &str) -> Self {
        if let Place::Group { thread_id: t, .. } = &mut self.place {
            *t = Some(thread_id.to_owned());
        }
        self
    }

    /// The same, written by a bot.
    pub fn from_bot(mut self) -> Self {
        self.is_bot = true;
        self
    }

    /// The same, replying to message `id`.
    pub fn replying_to(mut self, id: &str) -> Self {
        self.reply_to = Some(id.to_owned());
        self
    }

    /// The same, with a file.
    pub fn with_file(mut self, file: FakeFile) -> Self {
        self.file = Some(file);
        self
    }
}

/// How the platform took what the person said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The platform's id of the person's message.
    pub message_id: String,
    /// The chat it landed in (for a direct message, the DM chat/channel id).
    pub chat_id: String,
}

/// A message the bot sent, as the platform shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotMessage {
    /// The platform's message id.
    pub id: String,
    /// The chat it is in.
    pub chat_id: String,
    /// The thread or topic it is in.
    pub thread_id: Option<String>,
    /// Its current text, as sent (in the platform's markup).
    pub text: String,
    /// How many times it was edited.
    pub edits: u32,
    /// The message it replies to, if any.
    pub reply_to: Option<String>,
}

/// A fake chat platform a conformance suite can drive.
pub trait ChatPlatform: Send + Sync {
    /// The platform's name (`telegram`, `discord`, `slack`).
    fn name(&self) -> &'static str;

    /// The bot's user id on the fake.
    fn bot_user_id(&self) -> String;

    /// Makes the person say something and hands the event to the bot the way the platform
    /// does in the current mode (queued for long polling, pushed over the gateway or socket,
    /// POSTed to the webhook). Returns once the platform has handed it over (for webhooks:
    /// once the bot answered the HTTP request).
    fn say(&self, says: UserSays) -> impl Future<Output = Said> + Send;

    /// Every message the bot has sent so far, oldest first, with its current text.
    fn bot_messages(&self) -> Vec<BotMessage>;

    /// How many typing indicators the bot has sent to `chat_id`.
    fn typing_count(&self, chat_id: &str) -> u32;
}
