//! A todo list per user (`ExampleApp.Store.Todo`, joined with params `{user}`): every tab of one
//! user shows the same list, live; another user has their own.
//!
//! Run: `cargo run -p storex-examples --bin todo`, then open http://127.0.0.1:8080/?user=ada
//!
//! # How the tabs of one user stay in sync
//! The source of truth is one shared map, user → [`TodoList`] (in memory here; a database in a
//! real app). Each tab is one store instance whose init returned the user name as its key.
//! - A client's mutation (add, toggle, rename, remove) changes the *shared* list under its lock,
//!   copies the result into its own instance (so the committing tab gets its diff in the answer),
//!   then asks the hub to run `sync` on every instance keyed by that user.
//! - `sync` copies the shared list into the instance. An instance that already holds it (the
//!   committing tab itself, or a tab a later sync already refreshed) gets an empty diff, and the
//!   runtime sends no push for an empty diff. So the committing tab never applies a change twice,
//!   and every tab ends at the latest list whatever order the syncs run in.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use storex::{Diff, Extensions, Hub, Init, Params, Session, Store};
use storex_examples::{clean_text, run, Example};

/// Longest title, and most items in one list: a client cannot grow the server's memory at will.
const MAX_TITLE: usize = 200;
const MAX_ITEMS: usize = 500;

#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "ExampleApp.Store.Todo")]
pub struct Todo {
    user: String,
    list: TodoList,
}

/// One user's list: nested in the state so that its diff paths read `["list", "items", 2, "done"]`.
#[derive(Diff, Serialize, Clone, Debug, Default, PartialEq)]
pub struct TodoList {
    items: Vec<Item>,
    /// How many items are not done yet.
    open: usize,
    /// Bumped by every change: how many changes the list has seen.
    revision: u64,
    next_id: u64,
}

#[derive(Diff, Serialize, Clone, Debug, PartialEq)]
pub struct Item {
    id: u64,
    title: String,
    done: bool,
}

impl TodoList {
    fn add(&mut self, title: &str) -> Result<(), String> {
        let title = clean_text(title, MAX_TITLE, "A todo's title")?;
        if self.items.len() >= MAX_ITEMS {
            return Err(format!("A list holds at most {MAX_ITEMS} todos."));
        }
        self.next_id += 1;
        self.items.push(Item {
            id: self.next_id,
            title,
            done: false,
        });
        Ok(())
    }

    fn item(&mut self, id: u64) -> Result<&mut Item, String> {
        self.items
            .iter_mut()
            .find(|item| item.id == id)
            .ok_or_else(|| format!("There is no todo with id {id}."))
    }

    fn toggle(&mut self, id: u64) -> Result<(), String> {
        let item = self.item(id)?;
        item.done = !item.done;
        Ok(())
    }

    fn rename(&mut self, id: u64, title: &str) -> Result<(), String> {
        let title = clean_text(title, MAX_TITLE, "A todo's title")?;
        self.item(id)?.title = title;
        Ok(())
    }

    fn remove(&mut self, id: u64) -> Result<(), String> {
        let index = self
            .items
            .iter()
            .position(|item| item.id == id)
            .ok_or_else(|| format!("There is no todo with id {id}."))?;
        self.items.remove(index);
        Ok(())
    }
}

/// What every Todo instance shares, attached to each session by the connect hook.
#[derive(Debug)]
struct Lists {
    hub: Hub,
    by_user: Mutex<HashMap<String, TodoList>>,
}

impl Lists {
    fn of(session: &Session) -> Result<&Arc<Lists>, String> {
        session
            .get::<Arc<Lists>>()
            .ok_or_else(|| "The todo lists are not available on this server.".to_owned())
    }

    /// Runs `change` on `user`'s shared list; on success bumps its revision and returns a copy.
    fn change(
        &self,
        user: &str,
        change: impl FnOnce(&mut TodoList) -> Result<(), String>,
    ) -> Result<TodoList, String> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let list = by_user.entry(user.to_owned()).or_default();
        // Work on a copy: a refused change leaves the shared list exactly as it was.
        let mut changed = list.clone();
        change(&mut changed)?;
        changed.open = changed.items.iter().filter(|item| !item.done).count();
        changed.revision += 1;
        *list = changed.clone();
        Ok(changed)
    }

    fn get(&self, user: &str) -> TodoList {
        let by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user.get(user).cloned().unwrap_or_default()
    }
}

#[storex::mutations]
impl Todo {
    #[init]
    fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
        let user = params.get::<String>("user").unwrap_or_default();
        let user = clean_text(&user, 40, "A user name")
            .map_err(|_| "A user name (1 to 40 characters) is required.".to_owned())?;
        let list = Lists::of(session)?.get(&user);
        Ok(Init::with_key(
            Todo {
                list,
                user: user.clone(),
            },
            user,
        ))
    }

    #[mutation("add")]
    fn add(&mut self, session: &Session, title: String) -> Result<(), String> {
        self.change(session, |list| list.add(&title))
    }

    #[mutation("toggle")]
    fn toggle(&mut self, session: &Session, id: u64) -> Result<(), String> {
        self.change(session, |list| list.toggle(id))
    }

    #[mutation("rename")]
    fn rename(&mut self, session: &Session, id: u64, title: String) -> Result<(), String> {
        self.change(session, |list| list.rename(id, &title))
    }

    #[mutation("remove")]
    fn remove(&mut self, session: &Session, id: u64) -> Result<(), String> {
        self.change(session, |list| list.remove(id))
    }

    /// Pushed by the server to every tab of the user after a change (see the module's doc).
    #[mutation("sync")]
    fn sync(&mut self, session: &Session) -> Result<(), String> {
        self.list = Lists::of(session)?.get(&self.user);
        Ok(())
    }
}

impl Todo {
    fn change(
        &mut self,
        session: &Session,
        change: impl FnOnce(&mut TodoList) -> Result<(), String>,
    ) -> Result<(), String> {
        let lists = Lists::of(session)?;
        self.list = lists.change(&self.user, change)?;
        lists
            .hub
            .mutate_key(&self.user, storex::mutation!(Todo, "sync"))
            .map_err(|error| format!("the other tabs could not be told: {error}"))?;
        Ok(())
    }
}

fn main() -> ExitCode {
    let config = storex::Config::default();
    let lists = Arc::new(Lists {
        hub: config.hub().clone(),
        by_user: Mutex::default(),
    });
    let config = config.on_connect(move |_request| {
        let mut extensions = Extensions::new();
        extensions.insert(lists.clone());
        Ok(extensions)
    });
    let example = Example {
        name: "todo",
        page: include_str!("../../pages/todo.html"),
        routes: |_| {},
    };
    run(example, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_refused_and_leaves_the_list_as_it_was() {
        let lists = Lists {
            hub: Hub::new(),
            by_user: Mutex::default(),
        };
        let list = lists.change("ada", |list| list.add(" milk ")).ok();
        assert_eq!(
            list.as_ref().map(|l| l.items[0].title.as_str()),
            Some("milk")
        );
        for refused in [
            lists.change("ada", |list| list.add("   ")),
            lists.change("ada", |list| list.toggle(42)),
            lists.change("ada", |list| list.rename(1, "")),
            lists.change("ada", |list| list.remove(7)),
        ] {
            assert!(refused.is_err());
        }
        assert_eq!(lists.get("ada"), list.unwrap_or_default());
        assert_eq!(lists.get("ada").revision, 1);
        assert_eq!(lists.get("bob"), TodoList::default());
    }

    #[test]
    fn open_counts_items_not_done() {
        let lists = Lists {
            hub: Hub::new(),
            by_user: Mutex::default(),
        };
        for title in ["a", "b", "c"] {
            assert!(lists.change("ada", |list| list.add(title)).is_ok());
        }
        let list = lists.change("ada", |list| list.toggle(2));
        assert_eq!(list.map(|list| list.open), Ok(2));
    }
}
