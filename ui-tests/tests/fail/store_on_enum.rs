use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
pub enum Light {
    On,
    Off,
}

fn main() {}
