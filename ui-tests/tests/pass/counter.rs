// The Storex README's counter: sync mutations, no reply, a reply, an error, and a
// compile-time checked server-side mutation.
use serde_json::json;
use storex::{MutationError, Params, Registry, Reply, Session, Store};

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }

    #[mutation("decrease")]
    fn decrease(&mut self) -> Reply<&'static str> {
        self.counter -= 1;
        Reply("decreased")
    }

    #[mutation("set")]
    fn set(&mut self, number: i64) -> Result<(), String> {
        if number < 0 {
            return Err("the counter cannot go below zero".into());
        }
        self.counter = number;
        Ok(())
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("ExampleApp.Store.Counter").unwrap();
        let mut store = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(store.state().unwrap(), json!({"counter": 0}));

        let applied = store.mutate("increase", &[]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":["counter"],"t":1}]));
        let applied = store.mutate("decrease", &[]).await.unwrap();
        assert_eq!(applied.reply, Some(json!("decreased")));
        let error = store.mutate("set", &[json!(-5)]).await.unwrap_err();
        assert_eq!(error, MutationError::Refused("the counter cannot go below zero".into()));

        let set = storex::mutation!(Counter, "set", 10);
        store.mutate(set.name(), set.args().unwrap()).await.unwrap();
        assert_eq!(store.state().unwrap(), json!({"counter": 10}));
    });
    assert_eq!(Counter::NAME, "ExampleApp.Store.Counter");
}
