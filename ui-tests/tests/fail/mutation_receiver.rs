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

    #[mutation("peek")]
    fn peek(&self) {}

    #[mutation("take")]
    fn take(self) {}

    #[mutation("free")]
    fn free(_number: i64) {}
}

fn main() {}
