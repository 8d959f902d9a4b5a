//! Code generation from a model that is already valid.

mod check;
mod diff;
mod mutations;
mod types;

pub use check::{mutation_call, MutationCall};
pub use diff::{diff_impl, fallback, store};
pub use mutations::mutations;
