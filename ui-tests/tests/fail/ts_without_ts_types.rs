// A store marked `#[store(ts)]` whose mutation takes a type without a TypeScript type.
use serde::{Deserialize, Serialize};
use storex::Store;
use ts_rs::TS;

#[derive(Deserialize)]
pub struct Point {
    x: f64,
    y: f64,
}

#[derive(Store, TS, Serialize, Clone)]
#[store(name = "Ui.Plot", ts)]
pub struct Plot {
    points: u32,
}

#[storex::mutations]
impl Plot {
    #[init]
    fn init() -> Self {
        Plot { points: 0 }
    }

    #[mutation("add")]
    fn add(&mut self, point: Point) {
        let _ = (point.x, point.y);
        self.points += 1;
    }
}

// Not marked `ts`: it needs no TypeScript type.
#[derive(Store, Serialize, Clone)]
#[store(name = "Ui.Untyped")]
pub struct Untyped {
    points: u32,
}

#[storex::mutations]
impl Untyped {
    #[init]
    fn init() -> Self {
        Untyped { points: 0 }
    }

    #[mutation("add")]
    fn add(&mut self, point: Point) {
        let _ = point;
    }
}

fn main() {}
