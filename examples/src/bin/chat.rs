//! Chat rooms (`ExampleApp.Store.Chat`, joined with params `{room, name}`): everyone in a room
//! sees every message, pushed by the server; other rooms see nothing of it.
//!
//! Run: `cargo run -p storex-examples --bin chat`, then open http://127.0.0.1:8080/?room=lobby&name=ada
//!
//! Each instance's init returns its room as its key. `say` appends the message to the room's
//! shared history (the last [`HISTORY`] messages, which a new member starts from) and asks the
//! hub to run `receive` with that message on every instance keyed by the room, the sender's
//! included: the sender sees its message arrive as everyone else does.
//!
//! A node of a cluster: `chat --redis redis://127.0.0.1:6379/ --resume-key KEY` (or `REDIS_URL`,
//! `STOREX_RESUME_KEY`; `scripts/cluster.sh` starts two nodes behind nginx). The hub then
//! carries `receive` to the room's members on every node (a Redis backplane), and the rooms'
//! message numbers and history live in Redis, so that every node numbers a room's messages
//! alike and a newcomer on any node starts from the same history.

use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storex::{Diff, Extensions, Hub, Init, Params, Session, Store};
use storex_examples::{clean_text, now_millis, run_with, ClusterOptions, Example, REDIS_WAIT};

/// How many messages a room keeps, and each member's state holds.
const HISTORY: usize = 100;
const MAX_TEXT: usize = 500;
const MAX_NAME: usize = 40;

#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "ExampleApp.Store.Chat")]
pub struct Chat {
    room: String,
    name: String,
    messages: Vec<Message>,
}

#[derive(Diff, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    /// Numbers the room's messages from 1: a gap tells a member it missed one.
    id: u64,
    from: String,
    text: String,
    /// Milliseconds since the Unix epoch.
    at: u64,
}

/// Every room's recent messages, attached to each session by the connect hook.
#[derive(Debug)]
struct Rooms {
    hub: Hub,
    history: History,
}

/// Where the rooms' messages are numbered and kept.
#[derive(Debug)]
enum History {
    /// In this process: one server.
    Local(LocalHistory),
    /// In Redis: every node of a cluster.
    Redis(RedisHistory),
}

impl Rooms {
    fn of(session: &Session) -> Result<&Arc<Rooms>, String> {
        session
            .get::<Arc<Rooms>>()
            .ok_or_else(|| "The chat rooms are not available on this server.".to_owned())
    }

    async fn history(&self, room: &str) -> Result<Vec<Message>, String> {
        match &self.history {
            History::Local(local) => Ok(local.history(room)),
            History::Redis(redis) => redis.history(room).await,
        }
    }

    async fn post(&self, room: &str, from: &str, text: String) -> Result<(), String> {
        match &self.history {
            History::Local(local) => local.post(&self.hub, room, from, text),
            History::Redis(redis) => {
                let message = redis.post(room, from, text).await?;
                // The message is numbered and kept before it is sent: a member that receives
                // a later one first finds this one in the history (see `receive`).
                send(&self.hub, room, message);
            }
        }
        Ok(())
    }
}

/// Queues `receive` with `message` for every member of `room`, on every node.
fn send(hub: &Hub, room: &str, message: Message) {
    if let Err(error) = hub.mutate_key(room, storex::mutation!(Chat, "receive", message)) {
        // With a backplane, the members on this node have it; those on other nodes do not.
        eprintln!("chat: the message could not be sent to room {room}: {error}");
    }
}

/// The rooms' history in this process.
#[derive(Debug, Default)]
struct LocalHistory {
    rooms: Mutex<HashMap<String, VecDeque<Message>>>,
}

impl LocalHistory {
    fn history(&self, room: &str) -> Vec<Message> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(room)
            .map(|messages| messages.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn post(&self, hub: &Hub, room: &str, from: &str, text: String) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let messages = rooms.entry(room.to_owned()).or_default();
        let message = Message {
            id: messages.back().map_or(1, |last| last.id + 1),
            from: from.to_owned(),
            text,
            at: now_millis(),
        };
        if messages.len() == HISTORY {
            messages.pop_front();
        }
        messages.push_back(message.clone());
        // Under the lock: the hub only queues the command (it never waits), and the next
        // message of this room cannot be queued before this one.
        send(hub, room, message);
    }
}

/// The rooms' history in Redis, shared by the nodes: per room a counter
/// (`storex-chat:room:ROOM:last`) and a list of the last [`HISTORY`] messages as JSON
/// (`storex-chat:room:ROOM:messages`).
struct RedisHistory {
    client: redis::Client,
    /// Made at start, made again after a failure.
    connection: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory")
            .field(
                "server",
                &self.client.get_connection_info().addr().to_string(),
            )
            .finish()
    }
}

/// Numbers a message and keeps it, in one step (a script runs alone), so that whoever sees
/// message N can read every message before it from the list. KEYS: the counter, the list;
/// ARGV: the message as JSON without its id, how many messages to keep. Returns the message
/// with its id.
const POST_SCRIPT: &str = r#"
local id = redis.call('INCR', KEYS[1])
local message = string.format('{"id":%d,', id) .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return message
"#;

/// How long one exchange with Redis may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisHistory {
    /// Connects to `url`, within `within`.
    async fn connect(url: &str, within: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|error| format!("{url:?}: {error}"))?;
        let history = Self {
            client,
            connection: Mutex::new(None),
        };
        let connected = tokio::time::timeout(within, history.connection()).await;
        match connected {
            Ok(Ok(_)) => Ok(history),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(format!("Redis at {url} did not answer within {within:?}")),
        }
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let cached = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(connection) = cached {
            return Ok(connection);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| unavailable(&error))?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `command`; after a failure the next command connects again.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.connection().await?;
        let result = command.query_async(&mut connection).await;
        result.map_err(|error| {
            *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = None;
            unavailable(&error)
        })
    }

    async fn history(&self, room: &str) -> Result<Vec<Message>, String> {
        let last = -i64::try_from(HISTORY).unwrap_or(i64::MAX);
        let messages: Vec<String> = self
            .query(
                redis::cmd("LRANGE")
                    .arg(messages_key(room))
                    .arg(last)
                    .arg(-1),
            )
            .await?;
        Ok(messages
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect())
    }

    async fn post(&self, room: &str, from: &str, text: String) -> Result<Message, String> {
        let at = now_millis();
        let unnumbered = serde_json::json!({ "from": from, "text": text, "at": at }).to_string();
        let message: String = self
            .query(
                redis::cmd("EVAL")
                    .arg(POST_SCRIPT)
                    .arg(2)
                    .arg(format!("storex-chat:room:{room}:last"))
                    .arg(messages_key(room))
                    .arg(unnumbered)
                    .arg(HISTORY),
            )
            .await?;
        serde_json::from_str(&message)
            .map_err(|error| format!("Redis kept the message as something else ({error})."))
    }
}

fn messages_key(room: &str) -> String {
    format!("storex-chat:room:{room}:messages")
}

fn unavailable(error: &redis::RedisError) -> String {
    format!("The chat's history is not available right now ({error}).")
}

#[storex::mutations]
impl Chat {
    #[init]
    async fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
        let name = params.get::<String>("name").unwrap_or_default();
        if name.trim().is_empty() {
            return Err("A name is required to join the chat.".into());
        }
        let name = clean_text(&name, MAX_NAME, "A name")?;
        let room = params.get::<String>("room").unwrap_or_default();
        let room = match room.trim() {
            "" => "lobby".to_owned(),
            _ => clean_text(&room, MAX_NAME, "A room's name")?,
        };
        let messages = Rooms::of(session)?.history(&room).await?;
        let chat = Chat {
            room: room.clone(),
            name,
            messages,
        };
        Ok(Init::with_key(chat, room))
    }

    #[mutation("say")]
    async fn say(&mut self, session: &Session, text: String) -> Result<(), String> {
        let text = clean_text(&text, MAX_TEXT, "A message")?;
        Rooms::of(session)?.post(&self.room, &self.name, text).await
    }

    /// Pushed by the server to every member of the room when someone says something.
    #[mutation("receive")]
    async fn receive(&mut self, session: &Session, message: Message) -> Result<(), String> {
        // A room's messages are numbered from 1: a member without any expects number 1.
        let last = self.messages.last().map_or(0, |last| last.id);
        if message.id <= last {
            return Ok(()); // already here
        }
        if message.id == last + 1 {
            self.messages.push(message);
        } else {
            // A member that joined while this message was on its way may have missed the one
            // before (and in a cluster, messages said on two nodes at once may arrive in
            // either order): it takes the room's history instead, which holds both.
            self.messages = Rooms::of(session)?.history(&self.room).await?;
        }
        if self.messages.len() > HISTORY {
            let extra = self.messages.len() - HISTORY;
            self.messages.drain(..extra);
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let (cluster, args) = match ClusterOptions::from_env() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("chat: {message}");
            return ExitCode::from(2);
        }
    };
    let example = Example {
        name: "chat",
        page: include_str!("../../pages/chat.html"),
        routes: |_| {},
    };
    run_with(example, ClusterOptions::USAGE, args, move || async move {
        // The backplane first: it comes with the hub the rooms send through.
        let config = cluster.apply(storex::Config::default(), REDIS_WAIT).await?;
        let history = match &cluster.redis {
            Some(url) => History::Redis(RedisHistory::connect(url, REDIS_WAIT).await?),
            None => History::Local(LocalHistory::default()),
        };
        if let Some(url) = &cluster.redis {
            println!("cluster node: Redis at {url}");
        }
        let rooms = Arc::new(Rooms {
            hub: config.hub().clone(),
            history,
        });
        Ok(config.on_connect(move |_request| {
            let mut extensions = Extensions::new();
            extensions.insert(rooms.clone());
            Ok(extensions)
        }))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use storex::testing::TestStore;

    use super::*;

    /// A member of `room` named `name`, joined as the server joins it: the rooms attached as
    /// the connect hook attaches them, a live session of the rooms' hub.
    async fn member(rooms: &Arc<Rooms>, room: &str, name: &str) -> TestStore<Chat> {
        TestStore::<Chat>::joining()
            .params(json!({ "room": room, "name": name }))
            .extension(rooms.clone())
            .hub(&rooms.hub)
            .join()
            .await
            .unwrap()
    }

    /// What is said in a room is pushed to every member of it, the sender included, and to
    /// no other room; a newcomer starts from the room's history.
    #[tokio::test]
    async fn a_message_reaches_every_member_of_the_room_only() {
        let rooms = Arc::new(Rooms {
            hub: Hub::new(),
            history: History::Local(LocalHistory::default()),
        });
        let mut ada = member(&rooms, "lobby", "ada").await;
        let mut bob = member(&rooms, "lobby", "bob").await;
        let mut cy = member(&rooms, "kitchen", "cy").await;

        ada.commit("say", [json!("  hello ")]).await.unwrap();
        // The sender's own state changes when the message arrives, as everyone's.
        assert_eq!(ada.last_diff_json(), Some(json!([])));
        for member in [&mut ada, &mut bob] {
            let pushed = member.next_from_hub().await.unwrap();
            let diff = pushed.diff_json().unwrap();
            assert_eq!(diff[0]["a"], "i", "{diff}");
            assert_eq!(diff[0]["p"], json!(["messages", 0]));
            assert_eq!(
                (
                    &diff[0]["t"]["id"],
                    &diff[0]["t"]["from"],
                    &diff[0]["t"]["text"]
                ),
                (&json!(1), &json!("ada"), &json!("hello"))
            );
        }
        assert_eq!(cy.queued_from_hub().await, vec![]);
        assert!(cy.state().messages.is_empty());

        let newcomer = member(&rooms, "lobby", "dee").await;
        assert_eq!(newcomer.state().messages, bob.state().messages);

        let refused = bob.commit("say", [json!("   ")]).await.unwrap_err();
        assert!(refused.to_string().starts_with("A message"), "{refused}");
        let refused = TestStore::<Chat>::joining()
            .params(json!({"room": "lobby"}))
            .extension(rooms.clone())
            .join()
            .await
            .unwrap_err();
        assert_eq!(refused.to_string(), "A name is required to join the chat.");
    }

    #[test]
    fn rooms_keep_their_own_capped_history() {
        let rooms = LocalHistory::default();
        let hub = Hub::new();
        for n in 0..HISTORY + 5 {
            rooms.post(&hub, "lobby", "ada", format!("hello {n}"));
        }
        rooms.post(&hub, "kitchen", "bob", "soup".into());
        let lobby = rooms.history("lobby");
        assert_eq!(lobby.len(), HISTORY);
        assert_eq!(lobby.first().map(|m| m.id), Some(6));
        assert_eq!(lobby.last().map(|m| m.text.as_str()), Some("hello 104"));
        assert_eq!(rooms.history("kitchen").len(), 1);
        assert!(rooms.history("attic").is_empty());
    }
}
