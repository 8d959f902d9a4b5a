// #[mutation] means something only inside a #[storex::mutations] impl; elsewhere rustc does
// not know it.
#[mutation("increase")]
fn increase(counter: &mut i64) {
    *counter += 1;
}

fn main() {}
