// A store in a module, named by a path in mutation!; terminate (sync and async); other items
// of the impl pass through untouched.
mod stores {
    pub mod counter {
        use storex::{Params, Session, Store};

        #[derive(Store, serde::Serialize, Clone)]
        #[store(name = "Pass.Module.Counter")]
        pub struct Counter {
            pub counter: i64,
        }

        #[storex::mutations]
        impl Counter {
            /// A const of the impl.
            pub const START: i64 = 3;

            #[init]
            fn init(session: &Session) -> Self {
                assert_eq!(session.id(), "s1");
                Counter { counter: Self::START }
            }

            #[mutation("move")]
            fn r#move(&mut self, from: i64, to: i64) {
                self.counter += to - from;
            }

            #[terminate]
            async fn bye(&mut self, params: &Params, session: &Session) {
                let _ = (params, session);
                self.counter = -1;
            }

            pub fn doubled(&self) -> i64 {
                self.counter * 2
            }
        }

        #[derive(Store, serde::Serialize, Clone)]
        pub struct Quiet {}

        #[storex::mutations]
        impl Quiet {
            #[init]
            fn init() -> Result<Self, String> {
                Ok(Quiet {})
            }

            #[terminate]
            fn terminate(&mut self) {}
        }
    }
}

fn main() {
    let moved = storex::mutation!(crate::stores::counter::Counter, "move", 1, 2 + 3);
    assert_eq!(moved.store(), "Pass.Module.Counter");
    assert_eq!(moved.args().unwrap(), &[serde_json::json!(1), serde_json::json!(5)]);
    assert_eq!(stores::counter::Counter { counter: 2 }.doubled(), 4);

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let registry = storex::Registry::global().unwrap();
        assert_eq!(registry.names(), ["Pass.Module.Counter", "Quiet"]);
        let entry = registry.get("Pass.Module.Counter").unwrap();
        let mut store = entry.join(storex::Session::new("s1"), storex::Params::default()).await.unwrap();
        store.mutate(moved.name(), moved.args().unwrap()).await.unwrap();
        assert_eq!(store.state().unwrap(), serde_json::json!({"counter": 7}));
        store.terminate().await;
    });
}
