use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

pub struct Report {
    total: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[mutation("report")]
    fn report(&mut self) -> storex::Reply<Report> {
        storex::Reply(Report { total: self.counter })
    }

    #[mutation("count")]
    fn count(&mut self) -> i64 {
        self.counter
    }
}

fn main() {}
