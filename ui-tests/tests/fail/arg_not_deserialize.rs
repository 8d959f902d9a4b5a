use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

pub struct Point {
    x: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[mutation("move")]
    fn r#move(&mut self, to: Point) {
        self.counter = to.x;
    }
}

fn main() {}
