use storex::Store;

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

    #[mutation]
    fn a(&mut self) {}

    #[mutation()]
    fn b(&mut self) {}

    #[mutation(increase)]
    fn c(&mut self) {}

    #[mutation("")]
    fn d(&mut self) {}

    #[mutation = "e"]
    fn e(&mut self) {}
}

fn main() {}
