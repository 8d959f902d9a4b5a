use storex::Store;

#[derive(Store, Clone, Copy)]
pub union Bits {
    int: u32,
    float: f32,
}

#[derive(storex::Diff)]
pub union MoreBits {
    int: u32,
}

fn main() {}
