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
//!
//! # Undo
//! Every change runs on the shared list as a transaction ([`storex::diff::transact`]): its
//! items are a tracked [`storex::List`], so the change costs what it touched, and the
//! transaction says how to go back. The way back of each user's last changes is kept (at most
//! [`MAX_UNDO`]); `undo` applies the latest one ([`storex::diff::apply_to`]) and syncs the tabs
//! as any change does. `undoable` in the state says how many changes can be undone, so every tab
//! enables its Undo button alike.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storex::diff::{apply_to, transact, TransactError};
use storex::{Change, Diff, Extensions, Hub, Init, List, Params, Session, Store};
use storex_examples::{clean_text, run, Example};
use ts_rs::TS;

/// Longest title, and most items in one list: a client cannot grow the server's memory at will.
const MAX_TITLE: usize = 200;
const MAX_ITEMS: usize = 500;
/// How many changes of one user can be undone.
const MAX_UNDO: usize = 50;

// `#[store(ts)]` and `TS`: its TypeScript types (pages/types/TodoStore.ts) type the page.
#[derive(Store, TS, Serialize, Clone, Debug)]
#[store(name = "ExampleApp.Store.Todo", ts)]
pub struct Todo {
    user: String,
    list: TodoList,
}

/// One user's list: nested in the state so that its diff paths read `["list", "items", 2, "done"]`.
#[derive(Diff, TS, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TodoList {
    items: List<Item>,
    /// How many items are not done yet.
    open: usize,
    /// Bumped by every change: how many changes the list has seen.
    revision: u64,
    next_id: u64,
    /// How many of the user's changes can be undone.
    undoable: usize,
}

#[derive(Diff, TS, Serialize, Deserialize, Clone, Debug, PartialEq)]
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

    fn position(&self, id: u64) -> Result<usize, String> {
        self.items
            .iter()
            .position(|item| item.id == id)
            .ok_or_else(|| format!("There is no todo with id {id}."))
    }

    /// The item `id`, to write: the list keeps its old value, and only its.
    fn item(&mut self, id: u64) -> Result<&mut Item, String> {
        let index = self.position(id)?;
        Ok(&mut self.items[index])
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
        let index = self.position(id)?;
        self.items.remove(index);
        Ok(())
    }
}

/// What every Todo instance shares, attached to each session by the connect hook.
#[derive(Debug)]
struct Lists {
    hub: Hub,
    by_user: Mutex<HashMap<String, Shared>>,
}

/// One user's list and the way back of their last changes, latest last.
#[derive(Debug, Default)]
struct Shared {
    list: TodoList,
    undo: Vec<Vec<Change>>,
}

impl Shared {
    /// After a change or an undo: a new revision, and how many changes can be undone.
    fn changed(&mut self) -> TodoList {
        self.list.revision += 1;
        self.list.undoable = self.undo.len();
        self.list.clone()
    }
}

impl Lists {
    fn of(session: &Session) -> Result<&Arc<Lists>, String> {
        session
            .get::<Arc<Lists>>()
            .ok_or_else(|| "The todo lists are not available on this server.".to_owned())
    }

    /// Runs `change` on `user`'s shared list as a transaction: refused, it leaves the list
    /// exactly as it was; done, its way back is kept for `undo`. Returns a copy of the list.
    fn change(
        &self,
        user: &str,
        change: impl FnOnce(&mut TodoList) -> Result<(), String>,
    ) -> Result<TodoList, String> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let shared = by_user.entry(user.to_owned()).or_default();
        let done = transact(&mut shared.list, |list| {
            change(list)?;
            list.open = list.items.iter().filter(|item| !item.done).count();
            Ok(())
        })
        .map_err(|error| match error {
            TransactError::Refused(message) => message,
            error => format!("The list could not be changed: {error}"),
        })?;
        if shared.undo.len() == MAX_UNDO {
            shared.undo.remove(0);
        }
        shared.undo.push(done.undo);
        Ok(shared.changed())
    }

    /// Puts `user`'s list back as it was before their last change still kept.
    fn undo(&self, user: &str) -> Result<TodoList, String> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let shared = by_user.entry(user.to_owned()).or_default();
        let back = shared.undo.pop().ok_or("Nothing to undo.")?;
        apply_to(&mut shared.list, &back)
            .map_err(|error| format!("The last change cannot be undone: {error}"))?;
        Ok(shared.changed())
    }

    fn get(&self, user: &str) -> TodoList {
        let by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user
            .get(user)
            .map(|shared| shared.list.clone())
            .unwrap_or_default()
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

    /// Reverts the user's last change (of any of their tabs).
    #[mutation("undo")]
    fn undo(&mut self, session: &Session) -> Result<(), String> {
        self.share(session, |lists, user| lists.undo(user))
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
        self.share(session, |lists, user| lists.change(user, change))
    }

    /// Runs `act` on the shared lists, takes the user's list it returns, and syncs the user's
    /// other tabs.
    fn share(
        &mut self,
        session: &Session,
        act: impl FnOnce(&Lists, &str) -> Result<TodoList, String>,
    ) -> Result<(), String> {
        let lists = Lists::of(session)?;
        self.list = act(lists, &self.user)?;
        lists
            .hub
            .mutate_key(&self.user, storex::mutation!(Todo, "sync"))
            .map_err(|error| format!("the other tabs could not be told: {error}"))?;
        Ok(())
    }
}

/// The page's script: plain JavaScript built from pages/todo.ts.
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(include_str!("../../pages/todo.js"))
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
        routes: |app| {
            app.route("/todo.js", web::get().to(script));
        },
    };
    run(example, config)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use storex::testing::{Pushed, TestStore};

    use super::*;

    /// A tab of `user`, joined as the server joins it: the shared lists attached as the connect
    /// hook attaches them, a live session of `hub`.
    async fn tab(hub: &Hub, lists: &Arc<Lists>, user: &str) -> TestStore<Todo> {
        TestStore::<Todo>::joining()
            .params(json!({ "user": user }))
            .extension(lists.clone())
            .hub(hub)
            .join()
            .await
            .unwrap()
    }

    /// A change in one tab is the answer of that tab and a push to the user's other tabs only;
    /// the committing tab's own sync changes nothing, so nothing is pushed to it twice.
    #[tokio::test]
    async fn a_change_reaches_every_tab_of_the_user_and_no_other_user() {
        let hub = Hub::new();
        let lists = Arc::new(Lists {
            hub: hub.clone(),
            by_user: Mutex::default(),
        });
        let mut ada = tab(&hub, &lists, "ada").await;
        let mut ada_again = tab(&hub, &lists, "ada").await;
        let mut bob = tab(&hub, &lists, "bob").await;
        assert_eq!((ada.key(), bob.key()), (Some("ada"), Some("bob")));

        ada.commit("add", [json!("milk")]).await.unwrap();
        let answer = ada.last_diff_json().unwrap();
        let milk = json!({"id": 1, "title": "milk", "done": false});
        assert!(
            answer
                .as_array()
                .unwrap()
                .contains(&json!({"a": "i", "p": ["list", "items", 0], "t": milk})),
            "{answer}"
        );

        let pushed = ada_again.next_from_hub().await.unwrap();
        assert_eq!(pushed.mutation.as_ref().map(|m| m.name()), Some("sync"));
        assert_eq!(pushed.message_json().unwrap()["diff"], answer);
        assert_eq!(ada_again.state_json().unwrap(), ada.state_json().unwrap());

        let own: Vec<Pushed> = ada.queued_from_hub().await;
        assert_eq!(own.len(), 1);
        assert_eq!(
            (own[0].diff_json(), &own[0].message),
            (Some(json!([])), &None)
        );
        assert_eq!(bob.queued_from_hub().await, vec![]);
        assert_eq!(bob.state().list, TodoList::default());

        // Undo in the other tab: both tabs go back.
        ada_again.commit("undo", []).await.unwrap();
        ada.next_from_hub().await.unwrap();
        assert_eq!(ada.state().list.items.len(), 0);
        assert_eq!(ada.state().list.revision, 2);
    }

    #[tokio::test]
    async fn a_tab_needs_a_user_and_the_server_s_lists() {
        let refused = TestStore::<Todo>::join().await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "A user name (1 to 40 characters) is required."
        );
        let refused = TestStore::<Todo>::joining()
            .params(json!({"user": "ada"}))
            .join()
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "The todo lists are not available on this server."
        );
    }

    /// pages/types/TodoStore.ts and the files it imports are what the store's types export now.
    #[test]
    fn the_typescript_types_of_the_page_are_current() {
        storex_examples::types::types_are_current().unwrap();
    }

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
    fn undo_reverts_the_last_changes_one_by_one() {
        let lists = Lists {
            hub: Hub::new(),
            by_user: Mutex::default(),
        };
        let empty = lists.get("ada");
        assert!(lists.change("ada", |list| list.add("milk")).is_ok());
        let one = lists.get("ada");
        assert!(lists.change("ada", |list| list.toggle(1)).is_ok());
        assert!(lists
            .change("ada", |list| list.rename(1, "oat milk"))
            .is_ok());
        assert_eq!(lists.get("ada").undoable, 3);
        // A refused change keeps nothing to undo.
        assert!(lists.change("ada", |list| list.remove(9)).is_err());
        assert_eq!(lists.get("ada").undoable, 3);

        let undone = lists.undo("ada").map(|list| list.items[0].clone());
        assert_eq!(
            undone.map(|item| (item.title, item.done)),
            Ok(("milk".to_owned(), true))
        );
        assert!(lists.undo("ada").is_ok());
        let back = lists.get("ada");
        assert_eq!((&back.items, back.open, back.undoable), (&one.items, 1, 1));
        assert!(lists.undo("ada").is_ok());
        assert_eq!(lists.get("ada").items, empty.items);
        assert_eq!(lists.undo("ada").err().as_deref(), Some("Nothing to undo."));
        // The revision only grows: 3 changes and 3 undos.
        assert_eq!(lists.get("ada").revision, 6);
        // Another user's history is their own.
        assert_eq!(lists.undo("bob").err().as_deref(), Some("Nothing to undo."));
    }

    #[test]
    fn undo_keeps_the_last_changes_only() {
        let lists = Lists {
            hub: Hub::new(),
            by_user: Mutex::default(),
        };
        for index in 0..MAX_UNDO + 5 {
            assert!(lists
                .change("ada", |list| list.add(&format!("todo {index}")))
                .is_ok());
        }
        assert_eq!(lists.get("ada").undoable, MAX_UNDO);
        for _ in 0..MAX_UNDO {
            assert!(lists.undo("ada").is_ok());
        }
        assert_eq!(lists.get("ada").items.len(), 5);
        assert!(lists.undo("ada").is_err());
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
