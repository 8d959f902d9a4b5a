use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

fn main() {}
