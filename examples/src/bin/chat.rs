//! Chat rooms (`ExampleApp.Store.Chat`, joined with params `{room, name}`): everyone in a room
//! sees every message, pushed by the server; other rooms see nothing of it.
//!
//! Run: `cargo run -p storex-examples --bin chat`, then open http://127.0.0.1:8080/?room=lobby&name=ada
//!
//! Each instance's init returns its room as its key. `say` appends the message to the room's
//! shared history (the last [`HISTORY`] messages, which a new member starts from) and, still
//! holding the history's lock so that every member receives messages in history order, asks
//! the hub to run `receive` with that message on every instance keyed by the room, the sender's
//! included: the sender sees its message arrive as everyone else does.

use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use storex::{Diff, Extensions, Hub, Init, Params, Session, Store};
use storex_examples::{clean_text, now_millis, run, Example};

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
    history: Mutex<HashMap<String, VecDeque<Message>>>,
}

impl Rooms {
    fn of(session: &Session) -> Result<&Arc<Rooms>, String> {
        session
            .get::<Arc<Rooms>>()
            .ok_or_else(|| "The chat rooms are not available on this server.".to_owned())
    }

    fn history(&self, room: &str) -> Vec<Message> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history
            .get(room)
            .map(|messages| messages.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn post(&self, room: &str, from: &str, text: String) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let messages = history.entry(room.to_owned()).or_default();
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
        let sent = self
            .hub
            .mutate_key(room, storex::mutation!(Chat, "receive", message));
        if let Err(error) = sent {
            eprintln!("chat: the message could not be sent to room {room}: {error}");
        }
    }
}

#[storex::mutations]
impl Chat {
    #[init]
    fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
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
        let messages = Rooms::of(session)?.history(&room);
        let chat = Chat {
            room: room.clone(),
            name,
            messages,
        };
        Ok(Init::with_key(chat, room))
    }

    #[mutation("say")]
    fn say(&mut self, session: &Session, text: String) -> Result<(), String> {
        let text = clean_text(&text, MAX_TEXT, "A message")?;
        Rooms::of(session)?.post(&self.room, &self.name, text);
        Ok(())
    }

    /// Pushed by the server to every member of the room when someone says something.
    #[mutation("receive")]
    fn receive(&mut self, session: &Session, message: Message) -> Result<(), String> {
        match self.messages.last() {
            Some(last) if message.id <= last.id => return Ok(()), // already here
            // A member that joined while this message was on its way may have missed the one
            // before: it takes the room's history instead.
            Some(last) if message.id != last.id + 1 => {
                self.messages = Rooms::of(session)?.history(&self.room);
            }
            _ => self.messages.push(message),
        }
        if self.messages.len() > HISTORY {
            let extra = self.messages.len() - HISTORY;
            self.messages.drain(..extra);
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let config = storex::Config::default();
    let rooms = Arc::new(Rooms {
        hub: config.hub().clone(),
        history: Mutex::default(),
    });
    let config = config.on_connect(move |_request| {
        let mut extensions = Extensions::new();
        extensions.insert(rooms.clone());
        Ok(extensions)
    });
    let example = Example {
        name: "chat",
        page: include_str!("../../pages/chat.html"),
        routes: |_| {},
    };
    run(example, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms {
            hub: Hub::new(),
            history: Mutex::default(),
        }
    }

    #[test]
    fn rooms_keep_their_own_capped_history() {
        let rooms = rooms();
        for n in 0..HISTORY + 5 {
            rooms.post("lobby", "ada", format!("hello {n}"));
        }
        rooms.post("kitchen", "bob", "soup".into());
        let lobby = rooms.history("lobby");
        assert_eq!(lobby.len(), HISTORY);
        assert_eq!(lobby.first().map(|m| m.id), Some(6));
        assert_eq!(lobby.last().map(|m| m.text.as_str()), Some("hello 104"));
        assert_eq!(rooms.history("kitchen").len(), 1);
        assert!(rooms.history("attic").is_empty());
    }
}
