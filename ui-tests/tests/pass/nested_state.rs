// Nested state: #[derive(Diff)] on structs (generic too), enums and tuple structs; vectors,
// maps and options; #[storex(replace)] on a field whose type has no Diff.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::json;
use storex::{Diff, Params, Registry, Session, Store};

#[derive(Serialize, Clone, Debug, PartialEq, Diff)]
struct Todo {
    title: String,
    done: bool,
    tags: Vec<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq, Diff)]
enum Filter {
    All,
    Done,
    Matching(String),
}

#[derive(Serialize, Clone, Debug, PartialEq, Diff)]
struct Version(u32, u32);

#[derive(Serialize, Clone, Debug, PartialEq, Diff)]
struct Page<T> {
    items: Vec<T>,
    total: usize,
}

// Not Diff: sent whole when it changes.
#[derive(Serialize, Clone, Debug, PartialEq)]
struct Theme {
    dark: bool,
}

#[derive(Store, Serialize, Clone)]
struct Todos {
    todos: Page<Todo>,
    filter: Filter,
    version: Version,
    by_user: HashMap<String, u32>,
    sorted: BTreeMap<String, Option<Todo>>,
    selected: Option<usize>,
    #[storex(replace)]
    theme: Theme,
}

#[storex::mutations]
impl Todos {
    #[init]
    fn init() -> Self {
        Todos {
            todos: Page { items: vec![], total: 0 },
            filter: Filter::All,
            version: Version(1, 0),
            by_user: HashMap::new(),
            sorted: BTreeMap::new(),
            selected: None,
            theme: Theme { dark: false },
        }
    }

    #[mutation("add")]
    fn add(&mut self, title: String) {
        self.todos.items.push(Todo { title: title.clone(), done: false, tags: vec![] });
        self.todos.total += 1;
        self.sorted.insert(title, None);
    }

    #[mutation("done")]
    fn done(&mut self, index: usize, tag: String) -> Result<(), String> {
        let todo = self.todos.items.get_mut(index).ok_or("no such todo")?;
        todo.done = true;
        todo.tags.push(tag);
        self.selected = Some(index);
        Ok(())
    }

    #[mutation("look")]
    fn look(&mut self, filter: String, dark: bool) {
        self.filter = if filter.is_empty() { Filter::Done } else { Filter::Matching(filter) };
        self.theme = Theme { dark };
        self.version = Version(1, 1);
        self.by_user.insert("ada".into(), 1);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        // The default name is the type's name.
        let entry = Registry::global().unwrap().get("Todos").unwrap();
        let mut store = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        let diff = |applied: storex::Applied| serde_json::to_value(&applied.diff).unwrap();

        let applied = store.mutate("add", &[json!("milk")]).await.unwrap();
        assert_eq!(
            diff(applied),
            json!([
                {"a":"i","p":["todos","items",0],"t":{"title":"milk","done":false,"tags":[]}},
                {"a":"u","p":["todos","total"],"t":1},
                {"a":"i","p":["sorted","milk"],"t":null}
            ])
        );
        let applied = store.mutate("done", &[json!(0), json!("home")]).await.unwrap();
        assert_eq!(
            diff(applied),
            json!([
                {"a":"u","p":["todos","items",0,"done"],"t":true},
                {"a":"i","p":["todos","items",0,"tags",0],"t":"home"},
                {"a":"u","p":["selected"],"t":0}
            ])
        );
        let applied = store.mutate("look", &[json!("mi"), json!(true)]).await.unwrap();
        assert_eq!(
            diff(applied),
            json!([
                {"a":"u","p":["filter"],"t":{"Matching":"mi"}},
                {"a":"u","p":["version"],"t":[1,1]},
                {"a":"i","p":["by_user","ada"],"t":1},
                {"a":"u","p":["theme"],"t":{"dark":true}}
            ])
        );
        assert!(store.mutate("done", &[json!(5), json!("x")]).await.is_err());
    });
}
