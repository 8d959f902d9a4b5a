// A tuple struct of several fields is a store sent whole when it changes (a JSON array), and a
// unit struct is a store whose state is `null` (mutations that only reply).
use serde_json::json;
use storex::{Params, Registry, Reply, Session, Store};

#[derive(Debug, Clone, PartialEq, serde::Serialize, Store)]
pub struct Cursor(i64, i64);

#[storex::mutations]
impl Cursor {
    #[init]
    fn init() -> Self {
        Cursor(0, 0)
    }

    #[mutation("right")]
    fn right(&mut self) {
        self.0 += 1;
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Store)]
#[store(name = "Ui.Unit.Clock")]
pub struct Clock;

#[storex::mutations]
impl Clock {
    #[init]
    fn init() -> Self {
        Clock
    }

    #[mutation("echo")]
    fn echo(&mut self, text: String) -> Reply<String> {
        Reply(text)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let registry = Registry::global().unwrap();
        let mut cursor = registry.get("Cursor").unwrap().join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(cursor.state().unwrap(), json!([0, 0]));
        let applied = cursor.mutate("right", &[]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":[],"t":[1,0]}]));

        let mut clock = registry.get("Ui.Unit.Clock").unwrap().join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(clock.state().unwrap(), json!(null));
        let applied = clock.mutate("echo", &[json!("hi")]).await.unwrap();
        assert!(applied.diff.is_empty());
        assert_eq!(applied.reply, Some(json!("hi")));
    });
    let _ = storex::mutation!(Clock, "echo", "tick");
}
