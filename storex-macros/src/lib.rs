//! Procedural macros of storex (stubs until the real ones land).
use proc_macro::TokenStream;

#[proc_macro_derive(Store, attributes(store, storex))]
pub fn derive_store(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_derive(Diff, attributes(storex))]
pub fn derive_diff(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_attribute]
pub fn mutations(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
#[proc_macro]
pub fn mutation(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
