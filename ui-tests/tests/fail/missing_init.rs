use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }
}

fn main() {}
