use storex::Store;

#[derive(Store, serde::Serialize, serde::Deserialize, Clone)]
#[store(name = "ExampleApp.Store.DurableCounter", durable)]
pub struct Counter {
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }
}

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.PlainCounter")]
pub struct Plain {
    counter: i64,
}

#[storex::mutations]
impl Plain {
    #[init]
    fn init() -> Self {
        Plain { counter: 0 }
    }
}

fn main() {
    let registry = storex::Registry::global().expect("a registry");
    let durable = registry.get("ExampleApp.Store.DurableCounter").expect("registered");
    assert!(durable.is_durable());
    let plain = registry.get("ExampleApp.Store.PlainCounter").expect("registered");
    assert!(!plain.is_durable());
}
