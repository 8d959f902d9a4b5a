use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
pub struct Counter(i64);

#[derive(Store, serde::Serialize, Clone)]
pub struct Nothing;

fn main() {}
